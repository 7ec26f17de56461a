//! The declarative model end to end: Deployments on a three-node cluster running real Docker containers,
//! driven by the real kubectl — rolling updates within their bounds, a failed rollout and its undo, and a lost
//! node whose pods move elsewhere.

use futures::StreamExt;
use kubelab_api::client::ListParams;
use kubelab_api::informer::{Change, watch_changes};
use kubelab_api::resources;
use kubelab_tests::{spawn_cluster, wait_for};
use serde_json::Value;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(120);

/// A Deployment of `replicas` web servers that become Ready through an HTTP readiness probe.
fn web(name: &str, replicas: u32, surge: &str, unavailable: &str, image: &str, deadline: u32) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: {replicas}
  progressDeadlineSeconds: {deadline}
  strategy:
    type: RollingUpdate
    rollingUpdate: {{maxSurge: {surge}, maxUnavailable: {unavailable}}}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: {image}
        imagePullPolicy: IfNotPresent
        command: ["sh", "-c", "mkdir -p /www && echo $VERSION > /www/index.html && exec httpd -f -p 8080 -h /www"]
        env:
        - {{name: VERSION, value: "{image}"}}
        readinessProbe:
          httpGet: {{path: /, port: 8080}}
          periodSeconds: 1
"#
    )
}

fn ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_update_stays_within_max_surge_and_max_unavailable_at_every_moment() -> anyhow::Result<()> {
    let mut cluster = spawn_cluster(3, |_| {}).await?;
    let kubectl = cluster.kubectl();
    let client = cluster.get().client.clone();
    let manifest = cluster.dir().join("web.yaml");
    for (surge, unavailable, low, high) in [("1", "0", 4, 5), ("0", "1", 3, 4)] {
        std::fs::write(&manifest, web("web", 4, surge, unavailable, "kubelab/busybox:1", 600))?;
        kubectl.ok(&["apply", "-f", &manifest.to_string_lossy()]).await?;
        kubectl.ok(&["rollout", "status", "deployment/web", "--timeout=120s"]).await?;

        // Follow every pod change of the rollout through a watch, and check the bounds after each one.
        let pods = resources::by_kind("v1", "Pod").expect("pods are served");
        let mut changes = Box::pin(watch_changes(
            client.clone(),
            pods,
            Some("default".into()),
            ListParams::default().labels("app=web"),
        ));
        let mut live = std::collections::BTreeMap::new();
        let mut observed = 0;
        kubectl.ok(&["set", "env", "deployment/web", &format!("ROUND={surge}{unavailable}")]).await?;
        let outcome = tokio::time::timeout(TIMEOUT, async {
            while let Some(change) = changes.next().await {
                match change? {
                    Change::Restarted(items) => {
                        live = items.into_iter().map(|p| (kubelab_api::informer::key_of(&p), p)).collect()
                    }
                    Change::Applied(p) => {
                        live.insert(kubelab_api::informer::key_of(&p), p);
                    }
                    Change::Deleted(p) => {
                        live.remove(&kubelab_api::informer::key_of(&p));
                    }
                }
                observed += 1;
                let existing = live.values().filter(|p| p.pointer("/metadata/deletionTimestamp").is_none()).count();
                let available =
                    live.values().filter(|p| p.pointer("/metadata/deletionTimestamp").is_none() && ready(p)).count();
                anyhow::ensure!(
                    existing <= high,
                    "{existing} pods at one moment (maxSurge {surge}): {:?}",
                    live.keys()
                );
                anyhow::ensure!(
                    available >= low,
                    "only {available} available at one moment (maxUnavailable {unavailable})"
                );
                let status = kubectl
                    .ok(&[
                        "get",
                        "deployment",
                        "web",
                        "-o",
                        "jsonpath={.status.updatedReplicas} {.status.availableReplicas} {.status.replicas}",
                    ])
                    .await?;
                if status == "4 4 4" && existing == 4 && available == 4 && observed > 4 {
                    return Ok(());
                }
            }
            anyhow::bail!("the watch ended")
        })
        .await;
        outcome.map_err(|_| {
            anyhow::anyhow!("the rollout with maxSurge {surge} / maxUnavailable {unavailable} did not finish")
        })??;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_to_a_missing_image_exceeds_its_deadline_and_rollout_undo_recovers() -> anyhow::Result<()> {
    let cluster = spawn_cluster(2, |_| {}).await?;
    let kubectl = cluster.kubectl();
    let manifest = cluster.dir().join("web.yaml");
    std::fs::write(&manifest, web("shop", 2, "1", "0", "kubelab/busybox:1", 8))?;
    kubectl.ok(&["apply", "-f", &manifest.to_string_lossy()]).await?;
    kubectl.ok(&["rollout", "status", "deployment/shop", "--timeout=120s"]).await?;

    // No registry can be reached: the new image cannot be pulled, so the rollout makes no progress.
    kubectl.ok(&["set", "image", "deployment/shop", "web=kubelab/does-not-exist:1"]).await?;
    let failed = kubectl.run(&["rollout", "status", "deployment/shop", "--timeout=90s"]).await?;
    assert!(!failed.success(), "{failed}");
    assert!(failed.stderr.contains("exceeded its progress deadline"), "{failed}");
    let reason = kubectl
        .ok(&["get", "deployment", "shop", "-o", "jsonpath={.status.conditions[?(@.type==\"Progressing\")].reason}"])
        .await?;
    assert_eq!(reason, "ProgressDeadlineExceeded");
    // The old pods kept serving: maxUnavailable 0.
    let available = kubectl.ok(&["get", "deployment", "shop", "-o", "jsonpath={.status.availableReplicas}"]).await?;
    assert_eq!(available, "2");

    kubectl.ok(&["rollout", "undo", "deployment/shop"]).await?;
    kubectl.ok(&["rollout", "status", "deployment/shop", "--timeout=120s"]).await?;
    let image =
        kubectl.ok(&["get", "deployment", "shop", "-o", "jsonpath={.spec.template.spec.containers[0].image}"]).await?;
    assert_eq!(image, "kubelab/busybox:1");
    let history = kubectl.ok(&["rollout", "history", "deployment/shop"]).await?;
    assert!(history.contains("\n2 ") && history.contains("\n3 "), "{history}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pods_of_a_lost_node_are_replaced_on_the_other_nodes() -> anyhow::Result<()> {
    let mut cluster = spawn_cluster(3, |config| {
        // Short heartbeats, grace period and toleration, so the test takes seconds, not six minutes.
        config.kubelet = |kubelet| {
            kubelet.lease_renew_interval = Duration::from_millis(500);
            kubelet.lease_duration = Duration::from_secs(2);
            kubelet.node_status_update_frequency = Duration::from_secs(1);
        };
        config.controller_manager.node_lifecycle.monitor_period = Duration::from_millis(500);
        config.controller_manager.node_lifecycle.health.grace_period = Duration::from_secs(4);
        config.controller_manager.node_lifecycle.eviction.default_toleration = Duration::from_secs(2);
    })
    .await?;
    let kubectl = cluster.kubectl();
    let manifest = cluster.dir().join("web.yaml");
    std::fs::write(&manifest, web("spread", 6, "1", "0", "kubelab/busybox:1", 600))?;
    kubectl.ok(&["apply", "-f", &manifest.to_string_lossy()]).await?;
    kubectl.ok(&["rollout", "status", "deployment/spread", "--timeout=120s"]).await?;

    let lost = cluster.nodes[0].clone();
    let on_lost =
        kubectl.ok(&["get", "pods", "--field-selector", &format!("spec.nodeName={lost}"), "-o", "name"]).await?;
    assert!(!on_lost.trim().is_empty(), "the scheduler spread the pods over every node, {lost} included");
    cluster.get().stop_kubelet(&lost)?;

    // The node goes Unknown, its pods are evicted, and the ReplicaSet replaces them on the other two nodes.
    wait_for("the lost node to be NotReady", TIMEOUT, || async {
        let status = kubectl.ok(&["get", "node", &lost, "--no-headers"]).await?;
        anyhow::ensure!(status.contains("NotReady"), "{status}");
        Ok(())
    })
    .await?;
    // As in Kubernetes, the evicted pods stay `Terminating` until their kubelet confirms (it never will): they
    // are marked for deletion, no longer counted, and replaced.
    wait_for("6 ready pods on the other nodes, the lost node's pods terminating", TIMEOUT, || async {
        let pods = kubectl
            .ok(&[
                "get",
                "pods",
                "-l",
                "app=spread",
                "-o",
                "jsonpath={range .items[*]}{.spec.nodeName} {.status.conditions[?(@.type==\"Ready\")].status} {.metadata.deletionTimestamp}{\"\\n\"}{end}",
            ])
            .await?;
        let live: Vec<&str> = pods.lines().map(str::trim).filter(|l| l.split_whitespace().count() == 2).collect();
        let ready_elsewhere = live.iter().filter(|l| !l.starts_with(&lost) && l.ends_with("True")).count();
        let live_on_lost = live.iter().filter(|l| l.starts_with(&lost)).count();
        anyhow::ensure!(ready_elsewhere == 6 && live_on_lost == 0, "{pods}");
        Ok(())
    })
    .await?;
    Ok(())
}
