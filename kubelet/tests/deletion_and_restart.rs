//! Graceful deletion (SIGTERM honoured, SIGKILL after the grace period, the Pod object gone after), and a kubelet
//! restart that adopts its running containers and removes those of pods that no longer exist.

mod common;

use common::*;
use serde_json::json;
use std::time::{Duration, Instant};

const MINUTE: Duration = Duration::from_secs(60);

fn pod_with(name: &str, script: &str, grace: i64) -> serde_json::Value {
    json!({
        "metadata": {"name": name},
        "spec": {"terminationGracePeriodSeconds": grace,
                 "containers": [{"name": "main", "image": "kubelab/busybox:1", "command": ["sh", "-c", script]}]}
    })
}

async fn delete(node: &TestNode, name: &str) {
    node.client.delete(pods(), Some("default"), name, Default::default()).await.unwrap();
}

#[tokio::test]
async fn a_container_that_honours_sigterm_stops_before_its_grace_period() {
    let node = TestNode::start("sigterm").await;
    node.create_pod(pod_with("polite", "trap 'echo bye; exit 0' TERM; while :; do sleep 0.2; done", 30)).await;
    node.wait_pod("polite", "the pod to run", MINUTE, |p| phase(p) == "Running").await;
    let asked = Instant::now();
    delete(&node, "polite").await;
    wait_for("the pod object to be gone", MINUTE, || async { node.pod("polite").await.is_none().then_some(()) }).await;
    assert!(
        asked.elapsed() < Duration::from_secs(15),
        "took {:?} for a container that exits on SIGTERM",
        asked.elapsed()
    );
    assert!(node.containers("").is_empty(), "the pod's containers are removed before its object");
    let reasons = node.event_reasons("polite").await;
    assert!(reasons.iter().any(|r| r == "Killing"), "{reasons:?}");
}

#[tokio::test]
async fn a_container_that_ignores_sigterm_is_killed_after_its_grace_period() {
    let node = TestNode::start("sigkill").await;
    // A shell as PID 1 with no handler for SIGTERM ignores it.
    node.create_pod(pod_with("stubborn", "while :; do sleep 0.2; done", 3)).await;
    node.wait_pod("stubborn", "the pod to run", MINUTE, |p| phase(p) == "Running").await;
    let asked = Instant::now();
    delete(&node, "stubborn").await;
    let terminating = node.pod("stubborn").await.expect("a bound pod lingers while its kubelet stops it");
    assert!(terminating["metadata"]["deletionTimestamp"].is_string());
    wait_for("the pod object to be gone", MINUTE, || async { node.pod("stubborn").await.is_none().then_some(()) })
        .await;
    let took = asked.elapsed();
    assert!(took >= Duration::from_millis(2500), "SIGKILL came before the 3 s grace period: {took:?}");
    assert!(node.containers("").is_empty());
}

#[tokio::test]
async fn kubectl_delete_returns_once_the_containers_are_gone() {
    let node = TestNode::start("kubectl").await;
    node.create_pod(pod_with("web", "trap 'exit 0' TERM; while :; do sleep 0.2; done", 30)).await;
    node.wait_pod("web", "the pod to run", MINUTE, |p| phase(p) == "Running").await;
    let cache = node.dir.path().join("kubectl-cache");
    // Run asynchronously: the kubelet shares this test's runtime and must keep working while kubectl waits.
    let output = tokio::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(node.kubeconfig())
        .arg("--cache-dir")
        .arg(&cache)
        .args(["delete", "pod", "web", "--timeout=60s"])
        .output()
        .await
        .expect("kubectl runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "pod \"web\" deleted\n");
    assert!(node.containers("").is_empty(), "containers still there when kubectl returned");
}

#[tokio::test]
async fn a_restarted_kubelet_adopts_its_containers_and_removes_orphans() {
    let mut node = TestNode::start("adopt").await;
    node.create_pod(pod_with("steady", "sleep 3600", 2)).await;
    let before = node.wait_pod("steady", "the pod to run", MINUTE, |p| phase(p) == "Running").await;
    let container_id = container_status(&before)["containerID"].clone();

    node.stop_kubelet().await;
    // While the kubelet is away, a container of a pod that no longer exists appears (left by an older run).
    let network = node.network.clone();
    let orphan_labels = [
        "io.kubernetes.pod.uid=gone-uid",
        "io.kubernetes.pod.name=gone",
        "io.kubernetes.pod.namespace=default",
        "io.kubernetes.container.name=POD",
        "io.kubernetes.docker.type=podsandbox",
    ];
    let mut args = vec!["run", "-d", "--network", &network];
    let node_label = format!("kubelab.node={}", node.node);
    for label in orphan_labels.iter().chain([&node_label.as_str()]) {
        args.extend(["--label", label]);
    }
    args.push("kubelab/pause:1");
    docker(&args);
    assert_eq!(node.containers("io.kubernetes.pod.uid=gone-uid").len(), 1);
    // The pod kept running without its kubelet.
    assert_eq!(node.containers("io.kubernetes.container.name=main").len(), 1);

    node.start_kubelet();
    wait_for("the orphan to be removed", MINUTE, || async {
        node.containers("io.kubernetes.pod.uid=gone-uid").is_empty().then_some(())
    })
    .await;
    // Give the new kubelet a few syncs: it must not start a second sandbox or container.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = node.pod("steady").await.unwrap();
    assert_eq!(container_status(&after)["containerID"], container_id, "the running container was adopted");
    assert_eq!(container_status(&after)["restartCount"], 0);
    assert_eq!(node.containers("io.kubernetes.docker.type=podsandbox").len(), 1);
    assert_eq!(node.containers("io.kubernetes.docker.type=container").len(), 1);
    assert_eq!(phase(&after), "Running");
}
