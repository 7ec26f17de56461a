//! The official Python client (`kubernetes` 37.x from PyPI) against kubelab.
//!
//! Many students script Kubernetes in Python. The client is generated from Kubernetes' OpenAPI and deserializes
//! every answer into its models, so it notices a missing field, a wrong type or a path it cannot reach. The
//! script `tests/python/client_check.py` does what such a script does — version, CRUD of a ConfigMap and a
//! Deployment, a watch, scale, delete, a pod's logs — and prints `ok <step>` for each; these tests run it with the
//! Python of the venv that `scripts/deps.sh test` makes (see `kubelab_tests::venv`).

use kubelab_tests::venv::venv_program;
use kubelab_tests::{spawn_apiserver, spawn_cluster, wait_for};
use std::path::Path;
use std::time::Duration;

/// The script, beside this crate's `Cargo.toml`.
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/python/client_check.py");

/// Runs the script's `args` against the cluster of `kubeconfig`; fails with everything it printed unless it exits
/// with 0. Returns its stdout.
async fn run_script(kubeconfig: &Path, args: &[&str]) -> anyhow::Result<String> {
    let python = venv_program("python")?;
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(&python).arg(SCRIPT).arg(kubeconfig).args(args).kill_on_drop(true).output(),
    )
    .await
    .map_err(|_| anyhow::anyhow!("client_check.py {args:?} did not finish within 60s"))??;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    anyhow::ensure!(
        output.status.success(),
        "client_check.py {args:?} failed [{}]\n--- stdout ---\n{stdout}--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(stdout)
}

/// The steps the script reported as passed, in order (`ok version: v1.32.0` → `version`).
fn steps(stdout: &str) -> Vec<&str> {
    stdout.lines().filter_map(|l| l.strip_prefix("ok ")).filter_map(|l| l.split(':').next()).collect()
}

#[tokio::test]
async fn the_python_client_reads_the_version_and_creates_reads_watches_scales_and_deletes() -> anyhow::Result<()> {
    let server = spawn_apiserver().await?;
    let stdout = run_script(server.kubeconfig(), &["api"]).await?;
    assert_eq!(
        steps(&stdout),
        ["version", "configmap crud", "watch", "deployment crud and scale", "delete"],
        "{stdout}"
    );
    server.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_client_reads_a_running_pods_logs() -> anyhow::Result<()> {
    let cluster = spawn_cluster(1, |_| {}).await?;
    let kubectl = cluster.kubectl();
    kubectl
        .ok(&[
            "run",
            "talker",
            "--image=kubelab/busybox:1",
            "--image-pull-policy=IfNotPresent",
            "--restart=Never",
            "--",
            "sh",
            "-c",
            "echo hello from python; exec sleep 3600",
        ])
        .await?;
    wait_for("the pod to run", Duration::from_secs(60), || async {
        let phase = kubectl.ok(&["get", "pod", "talker", "-o", "jsonpath={.status.phase}"]).await?;
        anyhow::ensure!(phase == "Running", "phase {phase:?}");
        Ok(())
    })
    .await?;
    let kubeconfig = &cluster.cluster.as_ref().expect("the cluster runs until dropped").kubeconfig;
    // The container may be running a moment before its first line is written.
    let stdout = wait_for("the Python client to read the log", Duration::from_secs(30), || {
        run_script(kubeconfig, &["logs", "default", "talker", "hello from python"])
    })
    .await?;
    assert_eq!(steps(&stdout), ["logs"], "{stdout}");
    Ok(())
}
