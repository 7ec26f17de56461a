//! Nodes and pods end to end: a two-node cluster (the code `kubelab up --nodes 2` runs), driven by the real
//! kubectl, with pods running as real Docker containers.

use kubelab_tests::{spawn_cluster, wait_for};
use std::time::Duration;

const POD_TIMEOUT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_register_ready_and_run_schedule_log_and_finish_pods() -> anyhow::Result<()> {
    let cluster = spawn_cluster(2, |_| {}).await?;
    let kubectl = cluster.kubectl();
    let nodes = cluster.nodes.clone();

    // Both nodes register and report Ready, with their capacity.
    wait_for("both nodes Ready", POD_TIMEOUT, || async {
        let out = kubectl.ok(&["get", "nodes", "--no-headers"]).await?;
        let ready = out.lines().filter(|l| l.split_whitespace().nth(1) == Some("Ready")).count();
        anyhow::ensure!(ready == 2, "{out}");
        Ok(())
    })
    .await?;
    let capacity = kubectl
        .ok(&["get", "node", &nodes[0], "-o", "jsonpath={.status.capacity.cpu} {.status.capacity.pods}"])
        .await?;
    assert!(capacity.ends_with(" 110") && !capacity.starts_with(' '), "capacity: {capacity:?}");

    // A pod that prints and exits with 3, pinned to the second node by a nodeSelector.
    let manifest = cluster.dir().join("pods.yaml");
    std::fs::write(
        &manifest,
        format!(
            r#"apiVersion: v1
kind: Pod
metadata:
  name: batch
spec:
  restartPolicy: Never
  nodeSelector:
    kubernetes.io/hostname: {node}
  containers:
  - name: main
    image: kubelab/busybox:1
    command: ["sh", "-c", "echo computing; echo done with $POD_NAME; exit 3"]
    env:
    - name: POD_NAME
      valueFrom:
        fieldRef: {{fieldPath: metadata.name}}
---
apiVersion: v1
kind: Pod
metadata:
  name: too-big
spec:
  containers:
  - name: main
    image: kubelab/busybox:1
    command: ["sleep", "3600"]
    resources:
      requests: {{cpu: "500", memory: 1000Gi}}
"#,
            node = nodes[1]
        ),
    )?;
    kubectl.ok(&["apply", "-f", &manifest.to_string_lossy()]).await?;

    // It is scheduled where the selector says, with a Scheduled event, runs with a pod IP and fails with exit code 3.
    let phase = wait_for("the batch pod to finish", POD_TIMEOUT, || async {
        let phase = kubectl.ok(&["get", "pod", "batch", "-o", "jsonpath={.status.phase}"]).await?;
        anyhow::ensure!(phase == "Succeeded" || phase == "Failed", "phase {phase:?}");
        Ok(phase)
    })
    .await?;
    assert_eq!(phase, "Failed");
    let status = kubectl
        .ok(&[
            "get",
            "pod",
            "batch",
            "-o",
            "jsonpath={.spec.nodeName} {.status.podIP} {.status.containerStatuses[0].state.terminated.exitCode} {.status.containerStatuses[0].state.terminated.reason}",
        ])
        .await?;
    let fields: Vec<&str> = status.split_whitespace().collect();
    assert_eq!(fields.len(), 4, "{status}");
    assert_eq!(fields[0], nodes[1]);
    let pod_cidr = kubectl.ok(&["get", "node", &nodes[1], "-o", "jsonpath={.spec.podCIDR}"]).await?;
    assert!(fields[1].starts_with(pod_cidr.trim_end_matches("0/24")), "pod IP {} not in {pod_cidr}", fields[1]);
    assert_eq!(&fields[2..], ["3", "Error"]);
    let events = kubectl.ok(&["get", "events", "--field-selector", "involvedObject.name=batch", "-o", "wide"]).await?;
    assert!(events.contains(&format!("Successfully assigned default/batch to {}", nodes[1])), "{events}");
    let logs = kubectl.ok(&["logs", "batch"]).await?;
    assert_eq!(logs, "computing\ndone with batch\n");

    // The pod that fits nowhere stays Pending with a FailedScheduling event naming the reason.
    let message = wait_for("a FailedScheduling event", POD_TIMEOUT, || async {
        let events = kubectl
            .ok(&[
                "get",
                "events",
                "--field-selector",
                "involvedObject.name=too-big,reason=FailedScheduling",
                "-o",
                "jsonpath={.items[0].message}",
            ])
            .await?;
        anyhow::ensure!(!events.is_empty(), "no event yet");
        Ok(events)
    })
    .await?;
    assert_eq!(message, "0/2 nodes are available: 2 Insufficient cpu, 2 Insufficient memory.");
    let condition = kubectl
        .ok(&[
            "get",
            "pod",
            "too-big",
            "-o",
            "jsonpath={.status.phase} {.status.conditions[?(@.type==\"PodScheduled\")].reason}",
        ])
        .await?;
    assert_eq!(condition, "Pending Unschedulable");

    // Deleting the finished pod removes its containers.
    let uid = kubectl.ok(&["get", "pod", "batch", "-o", "jsonpath={.metadata.uid}"]).await?;
    assert!(!containers_of(&uid)?.is_empty(), "the pod's containers exist before the delete");
    kubectl.ok(&["delete", "pod", "batch"]).await?;
    wait_for("the pod's containers to be removed", POD_TIMEOUT, || async {
        let left = containers_of(&uid)?;
        anyhow::ensure!(left.is_empty(), "left: {left:?}");
        Ok(())
    })
    .await?;
    Ok(())
}

/// The Docker containers of a pod, found by the uid label the kubelet puts on them.
fn containers_of(uid: &str) -> anyhow::Result<Vec<String>> {
    let out = std::process::Command::new("docker")
        .args(["ps", "-aq", "--filter", &format!("label=io.kubernetes.pod.uid={uid}")])
        .output()?;
    Ok(String::from_utf8_lossy(&out.stdout).split_whitespace().map(String::from).collect())
}
