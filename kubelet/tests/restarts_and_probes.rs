//! Containers that crash, probes that fail or pass: restarts with back-off, CrashLoopBackOff, readiness gating
//! Ready, liveness restarting a container. The test node's back-off is 2 s doubling to 4 s.

mod common;

use common::*;
use serde_json::{Value, json};
use std::time::Duration;

const MINUTE: Duration = Duration::from_secs(60);

fn condition(pod: &Value, kind: &str) -> String {
    let conditions = pod["status"]["conditions"].as_array().cloned().unwrap_or_default();
    conditions.iter().find(|c| c["type"] == kind).and_then(|c| c["status"].as_str()).unwrap_or("").to_string()
}

#[tokio::test]
async fn a_crashing_container_is_restarted_with_back_off_and_shows_crash_loop_back_off() {
    let node = TestNode::start("crash").await;
    node.create_pod(json!({
        "metadata": {"name": "crasher"},
        "spec": {"containers": [{"name": "main", "image": "kubelab/busybox:1", "command": ["sh", "-c", "echo attempt; exit 1"]}]}
    }))
    .await;
    let pod = node
        .wait_pod("crasher", "CrashLoopBackOff after restarts", MINUTE, |p| {
            waiting_reason(p) == Some("CrashLoopBackOff") && container_status(p)["restartCount"].as_i64() >= Some(1)
        })
        .await;
    let status = container_status(&pod);
    assert!(
        status["state"]["waiting"]["message"]
            .as_str()
            .unwrap()
            .starts_with("back-off 2s restarting failed container=main pod=crasher_default(")
    );
    assert_eq!(status["lastState"]["terminated"]["exitCode"], 1);
    assert_eq!(status["lastState"]["terminated"]["reason"], "Error");
    assert_eq!(phase(&pod), "Running", "a pod restarting its containers is Running");
    assert!(node.event_reasons("crasher").await.iter().any(|r| r == "BackOff"));

    // It keeps being restarted, ever more slowly, and only the two newest attempts are kept.
    node.wait_pod("crasher", "a third restart", MINUTE, |p| container_status(p)["restartCount"].as_i64() >= Some(3))
        .await;
    wait_for("old attempts to be removed", MINUTE, || async {
        (node.containers("io.kubernetes.container.name=main").len() <= 2).then_some(())
    })
    .await;
    let port = node.kubelet_port().await;
    let (code, previous) = kubelet_get(port, "/containerLogs/default/crasher/main?previous=true").await;
    assert_eq!((code, previous.as_str()), (200, "attempt\n"));
}

#[tokio::test]
async fn a_container_that_fails_under_on_failure_is_restarted_until_it_succeeds() {
    let node = TestNode::start("onfailure").await;
    node.create_pod(json!({
        "metadata": {"name": "retry"},
        "spec": {
            "restartPolicy": "OnFailure",
            "volumes": [{"name": "state", "emptyDir": {}}],
            "containers": [{"name": "main", "image": "kubelab/busybox:1",
                "command": ["sh", "-c", "if [ -f /state/tried ]; then exit 0; fi; touch /state/tried; exit 1"],
                "volumeMounts": [{"name": "state", "mountPath": "/state"}]}]
        }
    }))
    .await;
    let pod = node.wait_pod("retry", "success on the second attempt", MINUTE, |p| phase(p) == "Succeeded").await;
    assert_eq!(container_status(&pod)["restartCount"], 1);
    assert_eq!(container_status(&pod)["lastState"]["terminated"]["exitCode"], 1);
}

#[tokio::test]
async fn a_readiness_probe_gates_ready_until_it_passes() {
    let node = TestNode::start("ready").await;
    node.create_pod(json!({
        "metadata": {"name": "slow"},
        "spec": {"containers": [
            {"name": "web", "image": "kubelab/busybox:1",
             "command": ["sh", "-c", "sleep 3; mkdir -p /www; echo ok > /www/index.html; exec httpd -f -p 8080 -h /www"],
             "ports": [{"name": "http", "containerPort": 8080}],
             "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1}},
            {"name": "tcp", "image": "kubelab/busybox:1",
             "command": ["sh", "-c", "sleep 2; exec httpd -f -p 9090 -h /tmp"],
             "readinessProbe": {"tcpSocket": {"port": 9090}, "periodSeconds": 1}}
        ]}
    }))
    .await;
    let running = node.wait_pod("slow", "the pod to run", MINUTE, |p| phase(p) == "Running").await;
    assert_eq!(condition(&running, "Ready"), "False", "not ready before the probes pass");
    let ready = node.wait_pod("slow", "the pod to be Ready", MINUTE, |p| condition(p, "Ready") == "True").await;
    assert_eq!(condition(&ready, "ContainersReady"), "True");
    let statuses = ready["status"]["containerStatuses"].as_array().unwrap();
    assert!(statuses.iter().all(|s| s["ready"] == true), "{statuses:?}");
    let messages: Vec<String> =
        node.events("slow").await.iter().filter_map(|e| e["message"].as_str().map(String::from)).collect();
    assert!(messages.iter().any(|m| m.starts_with("Readiness probe failed: Get \"http://")), "{messages:?}");
    assert!(messages.iter().any(|m| m.starts_with("Readiness probe failed: dial tcp ")), "{messages:?}");
}

#[tokio::test]
async fn a_failing_liveness_probe_restarts_the_container() {
    let node = TestNode::start("liveness").await;
    node.create_pod(json!({
        "metadata": {"name": "sick"},
        "spec": {"terminationGracePeriodSeconds": 2, "containers": [{
            "name": "main", "image": "kubelab/busybox:1",
            "command": ["sh", "-c", "touch /tmp/healthy; sleep 2; rm /tmp/healthy; sleep 3600"],
            "livenessProbe": {"exec": {"command": ["cat", "/tmp/healthy"]}, "periodSeconds": 1, "failureThreshold": 2}
        }]}
    }))
    .await;
    let pod = node
        .wait_pod("sick", "a restart by the liveness probe", MINUTE, |p| {
            container_status(p)["restartCount"].as_i64() >= Some(1)
        })
        .await;
    assert_eq!(
        pod["status"]["containerStatuses"][0]["lastState"]["terminated"]["exitCode"], 137,
        "killed after its grace period"
    );
    let events = node.events("sick").await;
    let messages: Vec<&str> = events.iter().filter_map(|e| e["message"].as_str()).collect();
    assert!(
        messages.iter().any(|m| m.starts_with("Liveness probe failed: cat: can't open '/tmp/healthy'")),
        "{messages:?}"
    );
    assert!(messages.contains(&"Container main failed liveness probe, will be restarted"), "{messages:?}");
}

#[tokio::test]
async fn a_killed_sandbox_is_replaced_and_the_containers_restart_in_the_new_one() {
    let node = TestNode::start("sandbox").await;
    node.create_pod(json!({
        "metadata": {"name": "steady"},
        "spec": {"terminationGracePeriodSeconds": 2,
                 "containers": [{"name": "main", "image": "kubelab/busybox:1", "command": ["sleep", "3600"]}]}
    }))
    .await;
    node.wait_pod("steady", "the pod to run", MINUTE, |p| phase(p) == "Running").await;
    let sandbox = node.containers("io.kubernetes.docker.type=podsandbox");
    docker(&["kill", &sandbox[0]]);

    let pod = node
        .wait_pod("steady", "the container to restart in a new sandbox", MINUTE, |p| {
            phase(p) == "Running"
                && container_status(p)["restartCount"].as_i64() >= Some(1)
                && container_status(p)["state"]["running"].is_object()
        })
        .await;
    let running_sandbox = docker(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=kubelab.node={}", node.node),
        "--filter",
        "label=io.kubernetes.docker.type=podsandbox",
        "--filter",
        "label=io.kubernetes.container.attempt=1",
    ]);
    assert_eq!(running_sandbox.lines().count(), 1, "one new sandbox, attempt 1");
    assert!(pod["status"]["podIP"].as_str().is_some_and(|ip| ip.starts_with(node.pod_cidr.trim_end_matches("0/24"))));
}
