//! Images: the local images are built from busybox, a missing image that cannot be pulled (no registry here)
//! gives ErrImagePull then ImagePullBackOff, and `Never` refuses to pull.

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;

const MINUTE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn the_local_images_have_a_shell_httpd_and_a_pause_that_stops_at_once() {
    let docker = kubelab_kubelet::docker::connect().await.unwrap();
    kubelab_kubelet::images::ensure_local_images(&docker).await.unwrap();
    let out =
        docker_run(&["run", "--rm", "kubelab/busybox:1", "sh", "-c", "echo $((6*7)); which httpd sleep wget cat"]);
    assert_eq!(out, "42\n/bin/httpd\n/bin/sleep\n/bin/wget\n/bin/cat\n");

    let pause = Removed(docker_run(&["run", "-d", "kubelab/pause:1"]).trim().to_string());
    let started = std::time::Instant::now();
    docker_run(&["stop", "-t", "10", &pause.0]);
    let stopped_in = started.elapsed();
    let code = docker_run(&["inspect", "--format", "{{.State.ExitCode}}", &pause.0]);
    assert!(stopped_in < Duration::from_secs(5), "pause ignored SIGTERM: stopped in {stopped_in:?}");
    assert_eq!(code.trim(), "0");
}

fn docker_run(args: &[&str]) -> String {
    docker(args)
}

/// A container removed when the test ends, even if it fails.
struct Removed(String);

impl Drop for Removed {
    fn drop(&mut self) {
        docker(&["rm", "-f", &self.0]);
    }
}

#[tokio::test]
async fn a_missing_image_that_cannot_be_pulled_gives_err_image_pull_then_image_pull_back_off() {
    let node = TestNode::start("pull").await;
    node.create_pod(json!({
        "metadata": {"name": "nope"},
        "spec": {"containers": [{"name": "main", "image": "kubelab.invalid/nothing:1", "imagePullPolicy": "IfNotPresent"}]}
    }))
    .await;
    let pod = node.wait_pod("nope", "ErrImagePull", MINUTE, |p| waiting_reason(p) == Some("ErrImagePull")).await;
    let message = container_status(&pod)["state"]["waiting"]["message"].as_str().unwrap().to_string();
    assert!(message.starts_with("Failed to pull image \"kubelab.invalid/nothing:1\": "), "{message}");
    assert_eq!(phase(&pod), "Pending");
    let pod =
        node.wait_pod("nope", "ImagePullBackOff", MINUTE, |p| waiting_reason(p) == Some("ImagePullBackOff")).await;
    assert_eq!(
        container_status(&pod)["state"]["waiting"]["message"],
        "Back-off pulling image \"kubelab.invalid/nothing:1\""
    );
    let reasons = node.event_reasons("nope").await;
    for reason in ["Pulling", "Failed", "BackOff"] {
        assert!(reasons.iter().any(|r| r == reason), "no {reason} event in {reasons:?}");
    }
}

#[tokio::test]
async fn a_missing_image_with_pull_policy_never_is_never_pulled() {
    let node = TestNode::start("never").await;
    node.create_pod(json!({
        "metadata": {"name": "offline"},
        "spec": {"containers": [{"name": "main", "image": "kubelab/absent:1", "imagePullPolicy": "Never"}]}
    }))
    .await;
    let pod =
        node.wait_pod("offline", "ErrImageNeverPull", MINUTE, |p| waiting_reason(p) == Some("ErrImageNeverPull")).await;
    assert_eq!(
        container_status(&pod)["state"]["waiting"]["message"],
        "Container image \"kubelab/absent:1\" is not present with pull policy of Never"
    );
    assert!(!node.event_reasons("offline").await.iter().any(|r| r == "Pulling"));
}
