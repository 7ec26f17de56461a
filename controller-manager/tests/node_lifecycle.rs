//! The node lifecycle controller against a real apiserver, with every timing shortened by configuration.
//!
//! No kubelet runs: the test creates two Nodes and plays their kubelets — it renews the Lease of `alive` and
//! lets the Lease of `dead` go stale, as if its machine had been switched off.

use anyhow::{Context, bail};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use kubelab_api::client::{Client, ListParams, PatchParams, PatchType};
use kubelab_api::time::now;
use kubelab_controller_manager::Config;
use kubelab_controller_manager::node_lifecycle::{
    NodeLifecycleConfig, NodeLifecycleController, eviction::EvictionTimings, health::HealthTimings,
};
use kubelab_testkit::wait_for;
use serde_json::{Value, json};
use std::time::Duration;

mod common;
use common::{Cluster, TIMEOUT, condition, resource};

/// Kubernetes' timings divided by about 25: a node is `Unknown` after 2 s of silence, its pods tolerate it 2 s.
const CONFIG: NodeLifecycleConfig = NodeLifecycleConfig {
    monitor_period: Duration::from_millis(100),
    health: HealthTimings { grace_period: Duration::from_secs(2), startup_grace_period: Duration::from_secs(2) },
    eviction: EvictionTimings { default_toleration: Duration::from_secs(2) },
};

#[tokio::test]
async fn a_node_whose_lease_goes_stale_is_marked_unknown_tainted_and_emptied_then_untainted_when_it_returns()
-> anyhow::Result<()> {
    let cluster = start().await?;
    for node in ["alive", "dead"] {
        cluster.register_node(node).await?;
    }
    let mut kubelets = tokio::task::JoinSet::new();
    kubelets.spawn(renew_forever(cluster.client.clone(), "alive"));

    let patient = json!([{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
        "tolerationSeconds": 3600}]);
    cluster
        .create(Some("default"), "Pod", json!({"metadata": {"name": "doomed"}, "spec": spec("dead", json!([]))}))
        .await?;
    cluster
        .create(Some("default"), "Pod", json!({"metadata": {"name": "patient"}, "spec": spec("dead", patient)}))
        .await?;
    cluster
        .create(Some("default"), "Pod", json!({"metadata": {"name": "safe"}, "spec": spec("alive", json!([]))}))
        .await?;

    // 1. Unknown and tainted.
    let dead = wait_for("the silent node to be marked Unknown and tainted", TIMEOUT, || async {
        let node = cluster.get(None, "Node", "dead").await?.context("the node is gone")?;
        let ready = condition(&node, "Ready").context("no Ready condition")?;
        if ready["status"] != "Unknown" {
            bail!("Ready is {}", ready["status"]);
        }
        if taints(&node).len() < 2 {
            bail!("taints: {:?}", taints(&node));
        }
        Ok(node)
    })
    .await?;
    let ready = condition(&dead, "Ready").context("no Ready condition")?;
    assert_eq!(ready["reason"], "NodeStatusUnknown");
    assert_eq!(ready["message"], "Kubelet stopped posting node status.");
    assert_eq!(
        taints(&dead),
        ["node.kubernetes.io/unreachable:NoSchedule", "node.kubernetes.io/unreachable:NoExecute"]
    );
    let tainted_at = dead["spec"]["taints"][1]["timeAdded"].as_str().context("NoExecute taints carry timeAdded")?;
    // The event is recorded just after the status is written: wait for it rather than race it.
    let not_ready = wait_for("the NodeNotReady event", TIMEOUT, || async {
        cluster.event("dead", "NodeNotReady").await?.context("no NodeNotReady event yet")
    })
    .await?;
    assert_eq!(not_ready["message"], "Node dead status is now: NodeNotReady");

    // 2. The pod without a toleration of its own goes after the default 2 s; the others stay.
    wait_for("the doomed pod to be evicted", TIMEOUT, || async {
        let pod = cluster.get(Some("default"), "Pod", "doomed").await?;
        match pod.and_then(|p| p.pointer("/metadata/deletionTimestamp").cloned()) {
            Some(_) => Ok(()),
            None => bail!("not evicted yet"),
        }
    })
    .await?;
    let eviction = wait_for("the eviction event", TIMEOUT, || async {
        cluster.event("doomed", "TaintManagerEviction").await?.context("no eviction event yet")
    })
    .await?;
    assert_eq!(eviction["message"], "Marking for deletion Pod default/doomed");
    let evicted_at = eviction["firstTimestamp"].as_str().context("events carry a firstTimestamp")?;
    assert!(seconds(evicted_at)? >= seconds(tainted_at)? + 2, "evicted at {evicted_at}, tainted at {tainted_at}");
    for pod in ["patient", "safe"] {
        let pod = cluster.get(Some("default"), "Pod", pod).await?.context("pod gone")?;
        assert!(pod.pointer("/metadata/deletionTimestamp").is_none(), "{pod:#}");
    }
    let alive = cluster.get(None, "Node", "alive").await?.context("the node is gone")?;
    assert!(taints(&alive).is_empty() && condition(&alive, "Ready").is_some_and(|r| r["status"] == "True"));

    // 3. The kubelet comes back: it reports Ready and renews its lease; the taints go.
    cluster.report_ready("dead").await?;
    kubelets.spawn(renew_forever(cluster.client.clone(), "dead"));
    wait_for("the recovered node to lose its taints", TIMEOUT, || async {
        let node = cluster.get(None, "Node", "dead").await?.context("the node is gone")?;
        if !taints(&node).is_empty() {
            bail!("taints: {:?}", taints(&node));
        }
        Ok(())
    })
    .await
}

#[tokio::test]
async fn when_every_node_goes_silent_no_pod_is_evicted() -> anyhow::Result<()> {
    let cluster = start().await?;
    cluster.register_node("only").await?;
    let spec = json!({"nodeName": "only", "containers": [{"name": "web", "image": "nginx"}]});
    cluster.create(Some("default"), "Pod", json!({"metadata": {"name": "web"}, "spec": spec})).await?;

    wait_for("the node to be marked Unknown and kept from scheduling", TIMEOUT, || async {
        let node = cluster.get(None, "Node", "only").await?.context("the node is gone")?;
        if taints(&node) != ["node.kubernetes.io/unreachable:NoSchedule"] {
            bail!("taints: {:?}", taints(&node));
        }
        Ok(())
    })
    .await?;
    // Full disruption: no NoExecute taint, so nothing counts down. Check for well past the toleration.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while tokio::time::Instant::now() < deadline {
        let pod = cluster.get(Some("default"), "Pod", "web").await?.context("the pod is gone")?;
        assert!(pod.pointer("/metadata/deletionTimestamp").is_none(), "evicted in a full disruption: {pod:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// A pod spec bound to `node` with these tolerations.
fn spec(node: &str, tolerations: Value) -> Value {
    json!({"nodeName": node, "tolerations": tolerations, "containers": [{"name": "web", "image": "nginx"}]})
}

/// Renews a node's Lease every 200 ms, as its kubelet would every 10 s.
async fn renew_forever(client: Client, node: &'static str) {
    let Ok(leases) = resource("Lease") else { return };
    loop {
        let patch = json!({"spec": {"renewTime": MicroTime(now())}});
        let params = PatchParams::default();
        if let Err(err) = client.patch(leases, Some("kube-node-lease"), node, PatchType::Merge, &patch, &params).await {
            eprintln!("renewing the lease of {node}: {err}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

// ---- harness ----

/// A cluster running the node lifecycle controller with [`CONFIG`].
async fn start() -> anyhow::Result<Cluster> {
    let mut cluster = Cluster::start().await?;
    cluster.run::<NodeLifecycleController>(&Config { node_lifecycle: CONFIG, ..common::config() });
    Ok(cluster)
}

/// What these tests add to the common cluster: playing the nodes' kubelets, and reading events.
impl Cluster {
    /// What a kubelet does when it starts: create its Node, report it Ready, create its Lease.
    async fn register_node(&self, name: &str) -> anyhow::Result<()> {
        self.client
            .create(
                resource("Node")?,
                None,
                &json!({"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name}}),
            )
            .await?;
        self.report_ready(name).await?;
        let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": name, "namespace": "kube-node-lease"},
            "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": MicroTime(now())}});
        self.client.create(resource("Lease")?, Some("kube-node-lease"), &lease).await?;
        Ok(())
    }

    /// The kubelet's status report: Ready, heartbeat now.
    async fn report_ready(&self, name: &str) -> anyhow::Result<()> {
        let heartbeat = Time(now());
        let status = json!({"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
            "message": "kubelet is posting ready status", "lastHeartbeatTime": heartbeat,
            "lastTransitionTime": heartbeat}]}});
        self.client.patch_status(resource("Node")?, None, name, PatchType::Merge, &status).await?;
        Ok(())
    }

    /// The first event with this reason about the object named `about` (events of Nodes and of the test's pods
    /// are all in `default`).
    async fn event(&self, about: &str, reason: &str) -> anyhow::Result<Option<Value>> {
        let events = self.client.list(resource("Event")?, Some("default"), &ListParams::default()).await?;
        Ok(events.items.into_iter().find(|e| e["involvedObject"]["name"] == about && e["reason"] == reason))
    }
}

/// `key:effect` of each taint of a node.
fn taints(node: &Value) -> Vec<String> {
    let taints = node.pointer("/spec/taints").and_then(Value::as_array).cloned().unwrap_or_default();
    taints
        .iter()
        .map(|t| format!("{}:{}", t["key"].as_str().unwrap_or(""), t["effect"].as_str().unwrap_or("")))
        .collect()
}

/// Seconds since the epoch of an RFC 3339 time.
fn seconds(time: &str) -> anyhow::Result<i64> {
    Ok(chrono::DateTime::parse_from_rfc3339(time).with_context(|| format!("bad time {time}"))?.timestamp())
}
