//! The scheduler against a real apiserver, with fake nodes: Node objects created by the test, Ready and with
//! capacity, but no kubelet behind them (as kwok does). Each scenario starts its own apiserver on a free port
//! with its store in a temporary directory, runs the scheduler in-process with short back-offs, and reads back
//! what a user would see: `spec.nodeName`, the pod's conditions, and the events.

use kubelab_api::client::{Client, ListParams, PatchType};
use kubelab_api::resources::{self, Resource};
use kubelab_testkit::{TestServer, spawn_apiserver, wait_for_some};
use serde_json::{Value, json};
use std::time::Duration;

/// How long any expectation may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(20);

/// An apiserver, a scheduler, and a client, cleaned up when dropped (the temporary directory too, even when a
/// test fails).
struct Cluster {
    client: Client,
    _server: TestServer,
    scheduler: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Cluster {
    async fn start() -> Cluster {
        // `RUST_LOG=kubelab_scheduler=debug cargo test -- --nocapture` shows the scheduler's decisions.
        let server = spawn_apiserver().await.expect("the apiserver starts");
        let client = server.client().unwrap();
        let mut config = kubelab_scheduler::Config::new();
        config.initial_backoff = Duration::from_millis(100);
        config.max_backoff = Duration::from_millis(400);
        let scheduler = tokio::spawn(kubelab_scheduler::run(client.clone(), config));
        Cluster { client, _server: server, scheduler }
    }

    /// Stops the scheduler. The apiserver is not shut down gracefully: the informers' watch tasks outlive the
    /// aborted scheduler (kubelab-api's `Informer` cannot be stopped yet), and a graceful shutdown would wait
    /// for their connections. It stops with the test's runtime; the temporary directory goes with `_server`.
    fn stop(self) {
        self.scheduler.abort();
    }

    /// A Ready node with `cpu` and `memory`, room for 110 pods, and `extra` merged into it (labels, taints...).
    async fn add_node(&self, name: &str, cpu: &str, memory: &str, extra: Value) {
        let mut node = json!({"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}}, "spec": {}});
        merge(&mut node, extra);
        self.client.create(res("Node"), None, &node).await.expect("node created");
        // Status is not taken at creation: a kubelet reports it through the status subresource, and so do we.
        let status = json!({"status": {
            "capacity": {"cpu": cpu, "memory": memory, "pods": "110"},
            "allocatable": {"cpu": cpu, "memory": memory, "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
        }});
        self.client.patch_status(res("Node"), None, name, PatchType::Merge, &status).await.expect("node status");
    }

    /// A pod in `default` with one container requesting `cpu`, and `extra` merged into it.
    async fn add_pod(&self, name: &str, cpu: &str, extra: Value) {
        let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "main", "image": "busybox",
                "resources": {"requests": {"cpu": cpu, "memory": "64Mi"}}}]}});
        merge(&mut pod, extra);
        self.client.create(res("Pod"), Some("default"), &pod).await.expect("pod created");
    }

    async fn pod(&self, name: &str) -> Value {
        self.client.get(res("Pod"), Some("default"), name).await.expect("pod readable")
    }

    /// Waits until the pod is bound, and returns its node.
    async fn node_of(&self, name: &str) -> String {
        wait_for_some(&format!("pod {name} to be bound"), PATIENCE, || async {
            let pod = self.pod(name).await;
            pod.pointer("/spec/nodeName").and_then(Value::as_str).filter(|n| !n.is_empty()).map(String::from)
        })
        .await
    }

    /// Waits for an event about the pod with this reason and message, and returns it.
    async fn event(&self, pod: &str, reason: &str, message: &str) -> Value {
        wait_for_some(&format!("a {reason} event about {pod} saying {message:?}"), PATIENCE, || async {
            let events = self.client.list(res("Event"), Some("default"), &ListParams::default()).await.ok()?;
            events
                .items
                .into_iter()
                .find(|e| e["involvedObject"]["name"] == pod && e["reason"] == reason && e["message"] == message)
        })
        .await
    }

    /// Waits until the pod says `PodScheduled=False` with this message, and returns the condition. (A pod created
    /// right after its nodes may first be tried before the scheduler's watch shows them: it then says "no nodes
    /// available", and is tried again when they appear.)
    async fn unschedulable_condition(&self, name: &str, message: &str) -> Value {
        wait_for_some(&format!("pod {name} to be unschedulable with {message:?}"), PATIENCE, || async {
            let pod = self.pod(name).await;
            let conditions = pod.pointer("/status/conditions")?.as_array()?.clone();
            conditions
                .into_iter()
                .find(|c| c["type"] == "PodScheduled" && c["status"] == "False" && c["message"] == message)
        })
        .await
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.scheduler.abort();
    }
}

fn res(kind: &str) -> &'static Resource {
    resources::by_kind("v1", kind).expect("a core kind")
}

/// Merges `patch` into `target`, objects key by key.
fn merge(target: &mut Value, patch: Value) {
    match (target, patch) {
        (Value::Object(target), Value::Object(patch)) => {
            for (key, value) in patch {
                merge(target.entry(key).or_insert(Value::Null), value);
            }
        }
        (target, patch) => *target = patch,
    }
}

fn control_plane_taint() -> Value {
    json!({"spec": {"taints": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_land_on_the_nodes_their_requests_selectors_and_tolerations_allow() {
    let cluster = Cluster::start().await;
    cluster.add_node("node-a", "2", "4Gi", json!({"metadata": {"labels": {"disk": "ssd"}}})).await;
    cluster.add_node("node-b", "2", "4Gi", json!({})).await;
    cluster.add_node("control-plane", "8", "16Gi", control_plane_taint()).await;

    cluster.add_pod("db", "1500m", json!({"spec": {"nodeSelector": {"disk": "ssd"}}})).await;
    assert_eq!(cluster.node_of("db").await, "node-a");
    // node-a has 500m left: a 1500m pod without a selector can only go to node-b.
    cluster.add_pod("web", "1500m", json!({})).await;
    assert_eq!(cluster.node_of("web").await, "node-b");
    // Only the control plane has 4 CPUs free, and this pod tolerates its taint.
    let toleration =
        json!({"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"});
    cluster.add_pod("batch", "4", json!({"spec": {"tolerations": [toleration]}})).await;
    assert_eq!(cluster.node_of("batch").await, "control-plane");

    let event = cluster.event("db", "Scheduled", "Successfully assigned default/db to node-a").await;
    assert_eq!(event["type"], "Normal");
    assert_eq!(event["source"]["component"], "default-scheduler");
    let db = cluster.pod("db").await;
    let scheduled =
        db["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "PodScheduled").cloned();
    assert_eq!(scheduled.unwrap()["status"], "True");
    cluster.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_that_fits_nowhere_says_why_and_lands_when_a_fitting_node_is_added() {
    let cluster = Cluster::start().await;
    cluster.add_node("control-plane", "8", "16Gi", control_plane_taint()).await;
    cluster.add_node("small-1", "1", "4Gi", json!({})).await;
    cluster.add_node("small-2", "1", "4Gi", json!({})).await;
    cluster.add_pod("huge", "2", json!({})).await;

    let expected = "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, \
                    2 Insufficient cpu.";
    let condition = cluster.unschedulable_condition("huge", expected).await;
    assert_eq!(condition["reason"], "Unschedulable");
    let event = cluster.event("huge", "FailedScheduling", expected).await;
    assert_eq!(event["type"], "Warning");
    assert!(cluster.pod("huge").await.pointer("/spec/nodeName").is_none(), "it stays Pending");

    cluster.add_node("big", "4", "8Gi", json!({})).await;
    assert_eq!(cluster.node_of("huge").await, "big");
    cluster.event("huge", "Scheduled", "Successfully assigned default/huge to big").await;
    cluster.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uncordoning_a_node_lets_the_waiting_pod_in() {
    let cluster = Cluster::start().await;
    cluster.add_node("only", "2", "4Gi", json!({"spec": {"unschedulable": true}})).await;
    cluster.add_pod("waiting", "1", json!({})).await;
    cluster.unschedulable_condition("waiting", "0/1 nodes are available: 1 node(s) were unschedulable.").await;

    let uncordon = json!({"spec": {"unschedulable": false}});
    cluster.client.patch(res("Node"), None, "only", PatchType::Merge, &uncordon, &Default::default()).await.unwrap();
    assert_eq!(cluster.node_of("waiting").await, "only");
    cluster.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_pod_gives_its_room_to_a_waiting_one() {
    let cluster = Cluster::start().await;
    cluster.add_node("node-a", "1", "4Gi", json!({})).await;
    cluster.add_pod("job", "1", json!({})).await;
    assert_eq!(cluster.node_of("job").await, "node-a");
    cluster.add_pod("next", "1", json!({})).await;
    cluster.unschedulable_condition("next", "0/1 nodes are available: 1 Insufficient cpu.").await;

    // What the kubelet would report when the job's containers exit.
    let done = json!({"status": {"phase": "Succeeded"}});
    cluster.client.patch_status(res("Pod"), Some("default"), "job", PatchType::Merge, &done).await.unwrap();
    assert_eq!(cluster.node_of("next").await, "node-a");
    cluster.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_replicas_spreads_over_the_nodes_without_overcommitting_any() {
    let cluster = Cluster::start().await;
    for name in ["node-a", "node-b", "node-c"] {
        cluster.add_node(name, "2", "8Gi", json!({})).await;
    }
    // Six pods of one CPU, created at once: they fit only if each decision sees the ones before it, two per node.
    let owner = json!({"metadata": {"ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
        "name": "web", "uid": "rs-web", "controller": true}]}});
    let names: Vec<String> = (0..6).map(|i| format!("web-{i}")).collect();
    futures::future::join_all(names.iter().map(|n| cluster.add_pod(n, "1", owner.clone()))).await;
    let mut per_node = std::collections::BTreeMap::<String, usize>::new();
    for name in &names {
        *per_node.entry(cluster.node_of(name).await).or_default() += 1;
    }
    assert_eq!(
        per_node.into_iter().collect::<Vec<_>>(),
        [("node-a".into(), 2), ("node-b".into(), 2), ("node-c".into(), 2)]
    );
    cluster.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_for_another_scheduler_and_pods_with_a_node_are_left_alone() {
    let cluster = Cluster::start().await;
    cluster.add_node("node-a", "2", "4Gi", json!({})).await;
    cluster.add_node("node-b", "2", "4Gi", json!({})).await;
    cluster.add_pod("theirs", "100m", json!({"spec": {"schedulerName": "my-scheduler"}})).await;
    cluster.add_pod("pinned", "100m", json!({"spec": {"nodeName": "node-b"}})).await;
    cluster.add_pod("ours", "100m", json!({})).await;
    assert_eq!(cluster.node_of("ours").await, "node-a");

    // "ours" was created last and is bound: the scheduler has seen the two others and let them be.
    let theirs = cluster.pod("theirs").await;
    assert!(theirs.pointer("/spec/nodeName").is_none(), "{theirs}");
    assert_eq!(cluster.pod("pinned").await["spec"]["nodeName"], "node-b");
    let events = cluster.client.list(res("Event"), Some("default"), &ListParams::default()).await.unwrap();
    assert!(events.items.iter().all(|e| e["involvedObject"]["name"] == "ours"), "{:?}", events.items);
    cluster.stop();
}
