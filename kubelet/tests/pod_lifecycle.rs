//! A pod from creation to its end, against the real Docker engine: the node registers, the pod runs in a
//! sandbox with an IP of the node's network, ends Succeeded or Failed with its exit code, and its logs come back
//! through the kubelet's server.

mod common;

use common::*;
use serde_json::{Value, json};
use std::time::Duration;

const MINUTE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn the_node_registers_with_capacity_and_keeps_its_lease() {
    let node = TestNode::start("register").await;
    let nodes = kubelab_api::resources::by_kind("v1", "Node").unwrap();
    let object = node.client.get(nodes, None, &node.node).await.unwrap();
    assert_eq!(object["metadata"]["labels"]["kubernetes.io/hostname"], node.node.as_str());
    assert_eq!(object["metadata"]["labels"]["kubernetes.io/os"], "linux");
    assert_eq!(object["status"]["capacity"]["pods"], "110");
    assert!(object["status"]["capacity"]["cpu"].as_str().is_some_and(|c| c.parse::<u32>().unwrap() >= 1));
    assert_eq!(object["status"]["addresses"][0], json!({"type": "InternalIP", "address": "127.0.0.1"}));
    assert_eq!(object["status"]["nodeInfo"]["kubeletVersion"], "v1.32.0-kubelab");
    assert!(object["status"]["nodeInfo"]["containerRuntimeVersion"].as_str().unwrap().starts_with("docker://"));
    let ready = object["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Ready").unwrap();
    assert_eq!(
        (ready["reason"].as_str(), ready["message"].as_str()),
        (Some("KubeletReady"), Some("kubelet is posting ready status"))
    );

    let leases = kubelab_api::resources::by_kind("coordination.k8s.io/v1", "Lease").unwrap();
    let first = wait_for("the lease", MINUTE, || async {
        node.client.get(leases, Some("kube-node-lease"), &node.node).await.ok()
    })
    .await;
    assert_eq!(first["spec"]["holderIdentity"], node.node.as_str());
    assert_eq!(first["spec"]["leaseDurationSeconds"], 40);
    wait_for("the lease to be renewed", MINUTE, || async {
        let lease = node.client.get(leases, Some("kube-node-lease"), &node.node).await.ok()?;
        (lease["spec"]["renewTime"] != first["spec"]["renewTime"]).then_some(())
    })
    .await;

    let port = node.kubelet_port().await;
    assert_eq!(kubelet_get(port, "/healthz").await, (200, "ok".to_string()));
    let (code, spec) = kubelet_get(port, "/spec").await;
    assert_eq!(code, 200);
    assert!(serde_json::from_str::<Value>(&spec).unwrap()["num_cores"].as_u64().unwrap() >= 1);
}

#[tokio::test]
async fn a_pod_runs_to_succeeded_with_its_exit_code_and_logs() {
    let node = TestNode::start("succeeded").await;
    node.create_pod(json!({
        "metadata": {"name": "hello"},
        "spec": {"restartPolicy": "Never", "containers": [{
            "name": "main", "image": "kubelab/busybox:1",
            "command": ["sh", "-c", "echo hello from $(POD_NAME) in $(POD_NAMESPACE) at $POD_IP; sleep 0.2; echo to stderr >&2"],
            "env": [
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}
            ]
        }]}
    }))
    .await;
    let pod = node.wait_pod("hello", "the pod to succeed", MINUTE, |p| phase(p) == "Succeeded").await;
    let terminated = &container_status(&pod)["state"]["terminated"];
    assert_eq!((terminated["exitCode"].as_i64(), terminated["reason"].as_str()), (Some(0), Some("Completed")));
    assert!(container_status(&pod)["containerID"].as_str().unwrap().starts_with("docker://"));
    let ip = pod["status"]["podIP"].as_str().expect("a pod IP");
    let prefix = node.pod_cidr.trim_end_matches("0/24");
    assert!(ip.starts_with(prefix), "pod IP {ip} is not in {}", node.pod_cidr);
    assert_eq!(pod["status"]["hostIP"], "127.0.0.1");
    let ready = pod["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Ready").unwrap();
    assert_eq!(ready["reason"], "PodCompleted");

    let port = node.kubelet_port().await;
    let (code, logs) = kubelet_get(port, "/containerLogs/default/hello/main").await;
    assert_eq!(code, 200);
    assert_eq!(logs, format!("hello from hello in default at {ip}\nto stderr\n"));
    let (_, tail) = kubelet_get(port, "/containerLogs/default/hello/main?tailLines=1&timestamps=true").await;
    assert!(tail.ends_with(" to stderr\n") && tail.starts_with("20"), "{tail}");

    let (code, list) = kubelet_get(node.read_only_port, "/pods").await;
    assert_eq!(code, 200);
    let list: Value = serde_json::from_str(&list).unwrap();
    assert_eq!(
        (list["kind"].as_str(), list["items"][0]["metadata"]["name"].as_str()),
        (Some("PodList"), Some("hello"))
    );

    // The finished pod's sandbox is stopped; its container stays, for its logs.
    assert_eq!(node.containers("io.kubernetes.docker.type=container").len(), 1);
    let reasons = node.event_reasons("hello").await;
    for reason in ["Pulled", "Created", "Started"] {
        assert!(reasons.iter().any(|r| r == reason), "no {reason} event in {reasons:?}");
    }
}

#[tokio::test]
async fn a_failing_container_fails_the_pod_with_its_exit_code() {
    let node = TestNode::start("failed").await;
    node.create_pod(json!({
        "metadata": {"name": "broken"},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "kubelab/busybox:1", "command": ["sh", "-c", "exit 3"]}]}
    }))
    .await;
    let pod = node.wait_pod("broken", "the pod to fail", MINUTE, |p| phase(p) == "Failed").await;
    let terminated = &container_status(&pod)["state"]["terminated"];
    assert_eq!((terminated["exitCode"].as_i64(), terminated["reason"].as_str()), (Some(3), Some("Error")));
    assert_eq!(container_status(&pod)["restartCount"], 0);
}

#[tokio::test]
async fn containers_of_a_pod_share_the_sandbox_network_and_its_limits_apply() {
    let node = TestNode::start("shared").await;
    node.create_pod(json!({
        "metadata": {"name": "duo"},
        "spec": {
            "volumes": [{"name": "shared", "emptyDir": {}}],
            "containers": [
                {"name": "web", "image": "kubelab/busybox:1",
                 "command": ["sh", "-c", "mkdir -p /www && echo hi > /www/index.html && exec httpd -f -p 8080 -h /www"],
                 "resources": {"limits": {"cpu": "500m", "memory": "64Mi"}},
                 "volumeMounts": [{"name": "shared", "mountPath": "/shared"}]},
                {"name": "client", "image": "kubelab/busybox:1", "workingDir": "/shared",
                 "command": ["sh", "-c", "until wget -q -O page http://localhost:8080/; do sleep 0.2; done; cat page; sleep 3600"],
                 "volumeMounts": [{"name": "shared", "mountPath": "/shared"}]}
            ]
        }
    }))
    .await;
    node.wait_pod("duo", "the pod to run", MINUTE, |p| phase(p) == "Running").await;
    let port = node.kubelet_port().await;
    let logs = wait_for("the client to fetch the page over localhost", MINUTE, || async {
        let (_, logs) = kubelet_get(port, "/containerLogs/default/duo/client").await;
        (logs == "hi\n").then_some(logs)
    })
    .await;
    assert_eq!(logs, "hi\n");
    // The page landed in the emptyDir, on the node, under the kubelet's data directory.
    let pod = node.pod("duo").await.unwrap();
    let uid = pod["metadata"]["uid"].as_str().unwrap();
    let page = node.dir.path().join("kubelet/pods").join(uid).join("volumes/kubernetes.io~empty-dir/shared/page");
    assert_eq!(std::fs::read_to_string(page).unwrap(), "hi\n");

    let web = node.containers("io.kubernetes.container.name=web");
    let limits = docker(&[
        "inspect",
        "--format",
        "{{.HostConfig.NanoCpus}} {{.HostConfig.Memory}} {{.HostConfig.NetworkMode}}",
        &web[0],
    ]);
    let sandbox = node.containers("io.kubernetes.docker.type=podsandbox");
    assert_eq!(
        limits.trim(),
        format!("500000000 67108864 container:{}", docker(&["inspect", "--format", "{{.Id}}", &sandbox[0]]).trim())
    );
}
