//! What the kubelet cannot do, it says: a sandbox that dies at once reports its own exit code and output (not
//! the containers' "cannot join network of a non running container"), and a pod asking for init containers or a
//! startup probe is reported `CreateContainerConfigError` naming the field, with none of its containers started.

mod common;

use common::*;
use serde_json::{Value, json};
use std::process::Command;
use std::time::Duration;

const MINUTE: Duration = Duration::from_secs(60);

/// A pause image that cannot run, made as the machine made it: `FROM scratch` with a dynamically linked
/// `/bin/sh` (Debian's `dash` here, like the dynamic busybox there) and no loader, so it dies at once with
/// `exec /bin/sh: no such file or directory`. Removed when dropped. (Kept in this file: no other test builds
/// images.)
struct BrokenPause(String);

impl BrokenPause {
    fn build() -> BrokenPause {
        let context = tempfile::tempdir().unwrap();
        std::fs::create_dir(context.path().join("bin")).unwrap();
        std::fs::copy("/bin/dash", context.path().join("bin/sh")).unwrap();
        let dockerfile = "FROM scratch\nCOPY bin/ /bin/\nCMD [\"/bin/sh\", \"-c\", \"sleep 3600\"]\n";
        std::fs::write(context.path().join("Dockerfile"), dockerfile).unwrap();
        let tag = format!("kubelab/test-broken-pause:{}", std::process::id());
        let built = Command::new("docker")
            .args(["build", "-q", "-t", &tag])
            .arg(context.path())
            .env("DOCKER_BUILDKIT", "0")
            .output()
            .expect("docker build");
        assert!(built.status.success(), "docker build of {tag}: {}", String::from_utf8_lossy(&built.stderr));
        BrokenPause(tag)
    }
}

impl Drop for BrokenPause {
    fn drop(&mut self) {
        docker(&["rmi", "-f", &self.0]);
    }
}

fn messages(events: &[Value], reason: &str) -> Vec<String> {
    events.iter().filter(|e| e["reason"] == reason).map(|e| e["message"].as_str().unwrap_or_default().into()).collect()
}

#[tokio::test]
async fn a_sandbox_that_exits_at_once_reports_its_exit_code_and_output() {
    // Declared first, dropped last: the node's containers are removed before their image.
    let image = BrokenPause::build();
    let mut node = TestNode::without_kubelet("badpause").await;
    let mut config = node.config();
    config.pod_infra_container_image = image.0.clone();
    node.start_kubelet_with(config);
    node.wait_node_ready().await;

    node.create_pod(json!({
        "metadata": {"name": "stuck"},
        "spec": {"containers": [{"name": "main", "image": "kubelab/busybox:1", "command": ["sleep", "3600"]}]}
    }))
    .await;

    let pod = node
        .wait_pod("stuck", "the container to wait with the sandbox's exit", MINUTE, |p| {
            container_status(p)["state"]["waiting"]["message"].as_str().is_some_and(|m| m.contains("exited with code"))
        })
        .await;
    let waiting = &container_status(&pod)["state"]["waiting"];
    assert_eq!(waiting["reason"], "ContainerCreating");
    let message = waiting["message"].as_str().unwrap();
    assert!(message.starts_with("Failed to create pod sandbox: pod sandbox k8s_POD_stuck_default_"), "{message}");
    assert!(message.contains("exited with code 1"), "{message}");
    assert!(message.contains("no such file or directory"), "{message}");
    assert_eq!(phase(&pod), "Pending");

    let events = node.events("stuck").await;
    let failed = messages(&events, "FailedCreatePodSandBox");
    assert!(failed.iter().any(|m| m.contains("exited with code 1") && m.contains("exec /bin/sh")), "{failed:?}");
    let all: Vec<String> = events.iter().map(|e| e["message"].as_str().unwrap_or_default().to_string()).collect();
    assert!(!all.iter().any(|m| m.contains("cannot join network")), "the downstream error leaked: {all:?}");
    // The sandbox is replaced at once the first time, then after the back-off (2 s in these tests), not as fast
    // as Docker can go.
    let failure_of = |attempt: u32| {
        let node = &node;
        move || async move {
            let events = node.events("stuck").await;
            let needle = format!("_{attempt} exited with code 1");
            messages(&events, "FailedCreatePodSandBox").iter().any(|m| m.contains(&needle)).then_some(())
        }
    };
    wait_for("the second sandbox to fail", MINUTE, failure_of(1)).await;
    let second_failed = std::time::Instant::now();
    wait_for("the third sandbox to fail", MINUTE, failure_of(2)).await;
    let waited = second_failed.elapsed();
    assert!(waited > Duration::from_millis(1500), "the third sandbox came {waited:?} after the second");

    // A container may have been created in the instant the sandbox still ran; none may be running.
    let node_label = format!("label=kubelab.node={}", node.node);
    let running =
        docker(&["ps", "-q", "--filter", &node_label, "--filter", "label=io.kubernetes.docker.type=container"]);
    assert_eq!(running, "", "a container runs in a dead sandbox");
}

#[tokio::test]
async fn init_containers_and_startup_probes_are_reported_and_nothing_is_started() {
    let node = TestNode::start("unsupported").await;
    node.create_pod(json!({
        "metadata": {"name": "with-init"},
        "spec": {
            "initContainers": [{"name": "migrate", "image": "kubelab/busybox:1", "command": ["true"]}],
            "containers": [{"name": "main", "image": "kubelab/busybox:1", "command": ["sleep", "3600"]}]
        }
    }))
    .await;
    node.create_pod(json!({
        "metadata": {"name": "with-startup"},
        "spec": {"containers": [{"name": "main", "image": "kubelab/busybox:1", "command": ["sleep", "3600"],
                                  "startupProbe": {"exec": {"command": ["true"]}}}]}
    }))
    .await;

    let pod = node
        .wait_pod("with-init", "the init container to be reported", MINUTE, |p| {
            p["status"]["initContainerStatuses"][0]["state"]["waiting"]["reason"] == "CreateContainerConfigError"
                && waiting_reason(p) == Some("CreateContainerConfigError")
        })
        .await;
    let init_message = pod["status"]["initContainerStatuses"][0]["state"]["waiting"]["message"].as_str().unwrap();
    assert!(init_message.starts_with("container \"migrate\": spec.initContainers is not supported"), "{init_message}");
    let main_message = container_status(&pod)["state"]["waiting"]["message"].as_str().unwrap();
    assert!(main_message.starts_with("container \"main\": spec.initContainers is not supported"), "{main_message}");
    let initialized =
        pod["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Initialized").unwrap().clone();
    assert_eq!(
        (initialized["status"].as_str(), initialized["reason"].as_str()),
        (Some("False"), Some("ContainersNotInitialized"))
    );
    assert_eq!(phase(&pod), "Pending");

    let pod = node
        .wait_pod("with-startup", "the startup probe to be reported", MINUTE, |p| {
            waiting_reason(p) == Some("CreateContainerConfigError")
        })
        .await;
    let message = container_status(&pod)["state"]["waiting"]["message"].as_str().unwrap();
    assert!(message.contains("spec.containers[0].startupProbe is not supported by kubelab"), "{message}");

    for name in ["with-init", "with-startup"] {
        let events = node.events(name).await;
        let failed = messages(&events, "Failed");
        assert!(failed.iter().any(|m| m.starts_with("Error: container \"main\": spec.")), "{name}: {failed:?}");
        assert!(events.iter().any(|e| e["reason"] == "Failed" && e["type"] == "Warning"), "{name}: {events:?}");
    }
    assert!(node.containers("io.kubernetes.docker.type=container").is_empty(), "a container was started anyway");
}
