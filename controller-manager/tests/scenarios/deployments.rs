//! Deployments against a real apiserver.

use crate::cluster::{CONVERGE, Cluster};
use anyhow::{Context, bail, ensure};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Event, Pod};
use kubelab_api::client::{ListParams, WatchEventType};
use kubelab_controller_manager::Config;
use kubelab_controller_manager::replicaset::pods::is_ready;
use kubelab_testkit::wait_for;
use serde_json::{Value, json};
use std::collections::HashMap;
use tokio::sync::oneshot;

/// A Deployment `web` of `replicas` pods running `image`, rolled with these surge and unavailability bounds.
fn web(replicas: i32, image: &str, max_surge: Value, max_unavailable: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxSurge": max_surge, "maxUnavailable": max_unavailable}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": image}]}
            }
        }
    })
}

async fn pods(cluster: &Cluster) -> anyhow::Result<Vec<Pod>> {
    Ok(cluster.client.list_typed::<Pod>(Some("default"), &ListParams::default()).await?.items)
}

async fn replica_sets(cluster: &Cluster) -> anyhow::Result<Vec<ReplicaSet>> {
    Ok(cluster.client.list_typed::<ReplicaSet>(Some("default"), &ListParams::default()).await?.items)
}

fn image_of(pod: &Pod) -> &str {
    pod.spec.as_ref().and_then(|s| s.containers.first()).and_then(|c| c.image.as_deref()).unwrap_or_default()
}

/// Waits until `web` has rolled out completely to `replicas` ready pods of `image`, and returns it.
async fn converged(cluster: &Cluster, replicas: i32, image: &str) -> anyhow::Result<Deployment> {
    wait_for(&format!("web to run {replicas} × {image}"), CONVERGE, || async {
        let d: Deployment = cluster.client.get_typed(Some("default"), "web").await?;
        let status = d.status.clone().unwrap_or_default();
        let counts = (status.replicas, status.updated_replicas, status.available_replicas);
        let want = (replicas != 0).then_some(replicas);
        ensure!(counts == (want, want, want), "status {counts:?}");
        ensure!(status.observed_generation >= d.metadata.generation, "generation not observed yet");
        let pods = pods(cluster).await?;
        let running: Vec<&Pod> = pods.iter().filter(|p| p.metadata.deletion_timestamp.is_none()).collect();
        ensure!(running.len() == replicas as usize, "{} pods", running.len());
        ensure!(running.iter().all(|p| is_ready(p) && image_of(p) == image), "not all ready with {image}");
        Ok(d)
    })
    .await
}

/// The extremes seen through a watch of pods while a rollout ran.
#[derive(Debug, Default)]
struct Extremes {
    most_pods: usize,
    fewest_ready: usize,
    /// How many pods were created during the watch.
    created: usize,
}

/// Watches the pods of `default` until told to stop, and reports the most pods and the fewest ready pods that
/// existed at any moment. Each watch event is one write to the store, so the state after each event is a state
/// the cluster really was in. Terminating pods are not counted (they no longer serve and are on their way out).
fn watch_extremes(
    cluster: &Cluster,
    mut stop: oneshot::Receiver<()>,
) -> tokio::task::JoinHandle<anyhow::Result<Extremes>> {
    let client = cluster.client.clone();
    tokio::spawn(async move {
        let resource = kubelab_api::resources::by_kind("v1", "Pod").context("pods")?;
        let list = client.list(resource, Some("default"), &ListParams::default()).await?;
        let mut version = list.resource_version;
        let mut pods: HashMap<String, Pod> = HashMap::new();
        for item in list.items {
            let pod: Pod = serde_json::from_value(item)?;
            pods.insert(pod.metadata.name.clone().unwrap_or_default(), pod);
        }
        let ready = |pods: &HashMap<String, Pod>| pods.values().filter(|p| is_ready(p)).count();
        let mut extremes = Extremes { most_pods: pods.len(), fewest_ready: ready(&pods), created: 0 };
        loop {
            let mut events = client.watch(resource, Some("default"), &ListParams::default(), &version).await?;
            loop {
                let event = tokio::select! {
                    _ = &mut stop => return Ok(extremes),
                    event = events.next() => event,
                };
                let Some(event) = event else { break };
                let event = event?;
                if let Some(err) = event.error() {
                    bail!("watch error: {err}");
                }
                version = kubelab_api::object::resource_version(&event.object).to_string();
                if event.type_ == WatchEventType::Bookmark {
                    continue;
                }
                let pod: Pod = serde_json::from_value(event.object)?;
                let name = pod.metadata.name.clone().unwrap_or_default();
                let gone = event.type_ == WatchEventType::Deleted || pod.metadata.deletion_timestamp.is_some();
                if gone {
                    pods.remove(&name);
                } else if pods.insert(name, pod).is_none() {
                    extremes.created += 1;
                }
                extremes.most_pods = extremes.most_pods.max(pods.len());
                extremes.fewest_ready = extremes.fewest_ready.min(ready(&pods));
            }
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_4_replica_deployment_converges_through_one_replica_set() -> anyhow::Result<()> {
    let cluster = Cluster::start(Config::default()).await?;
    cluster.create(web(4, "web:1", json!("25%"), json!("25%"))).await?;
    let d = converged(&cluster, 4, "web:1").await?;

    let sets = replica_sets(&cluster).await?;
    ensure!(sets.len() == 1, "one ReplicaSet, got {}", sets.len());
    let rs = &sets[0];
    let rs_name = rs.metadata.name.clone().unwrap_or_default();
    let hash = rs.metadata.labels.as_ref().and_then(|l| l.get("pod-template-hash")).context("hash label")?;
    assert_eq!(rs_name, format!("web-{hash}"));
    assert_eq!(rs.metadata.annotations.as_ref().map(|a| a["deployment.kubernetes.io/revision"].as_str()), Some("1"));
    for pod in pods(&cluster).await? {
        let owner = &pod.metadata.owner_references.as_ref().context("an owner")?[0];
        assert_eq!((owner.name.as_str(), owner.controller), (rs_name.as_str(), Some(true)));
        assert!(pod.metadata.name.as_deref().unwrap_or_default().starts_with(&format!("{rs_name}-")));
    }
    let conditions = d.status.and_then(|s| s.conditions).unwrap_or_default();
    let progressing = conditions.iter().find(|c| c.type_ == "Progressing").context("Progressing")?;
    assert_eq!(progressing.reason.as_deref(), Some("NewReplicaSetAvailable"));
    assert_eq!(
        progressing.message.clone().unwrap_or_default(),
        format!("ReplicaSet {rs_name:?} has successfully progressed.")
    );

    let events = cluster.client.list_typed::<Event>(Some("default"), &ListParams::default()).await?.items;
    let said = |reason: &str, message: &str| {
        events.iter().any(|e| e.reason.as_deref() == Some(reason) && e.message.as_deref() == Some(message))
    };
    assert!(said("ScalingReplicaSet", &format!("Scaled up replica set {rs_name} from 0 to 4")), "{events:#?}");
    assert!(events.iter().filter(|e| e.reason.as_deref() == Some("SuccessfulCreate")).count() == 4);
    cluster.stop().await
}

/// Rolls `web` from `web:1` to `web:2` with these bounds, watching pods all along.
async fn roll_within_bounds(surge: i32, unavailable: i32) -> anyhow::Result<()> {
    let cluster = Cluster::start(Config::default()).await?;
    cluster.create(web(4, "web:1", json!(surge), json!(unavailable))).await?;
    converged(&cluster, 4, "web:1").await?;

    let (stop, stopped) = oneshot::channel();
    let watcher = watch_extremes(&cluster, stopped);
    cluster.kubectl(&["set", "image", "deployment/web", "web=web:2"]).await?;
    let out = cluster.kubectl(&["rollout", "status", "deployment/web", "--timeout=90s"]).await?;
    assert!(out.contains("successfully rolled out"), "{out}");
    converged(&cluster, 4, "web:2").await?;
    let _ = stop.send(());
    let extremes = watcher.await??;

    assert!(extremes.created >= 4, "{extremes:?}");
    assert!(extremes.most_pods <= (4 + surge) as usize, "more than 4 + {surge} pods at some moment: {extremes:?}");
    assert!(extremes.fewest_ready >= (4 - unavailable) as usize, "fewer than 4 − {unavailable} ready: {extremes:?}");
    cluster.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_update_with_surge_1_never_has_fewer_than_4_available_nor_more_than_5_pods() -> anyhow::Result<()> {
    roll_within_bounds(1, 0).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_update_with_unavailable_1_never_has_fewer_than_3_available_nor_more_than_4_pods()
-> anyhow::Result<()> {
    roll_within_bounds(0, 1).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_undo_through_kubectl_reuses_the_old_replica_set_under_a_new_revision() -> anyhow::Result<()> {
    let cluster = Cluster::start(Config::default()).await?;
    cluster.create(web(3, "web:1", json!(1), json!(0))).await?;
    converged(&cluster, 3, "web:1").await?;
    let first = replica_sets(&cluster).await?[0].metadata.name.clone().unwrap_or_default();
    cluster.kubectl(&["set", "image", "deployment/web", "web=web:2"]).await?;
    converged(&cluster, 3, "web:2").await?;

    let out = cluster.kubectl(&["rollout", "undo", "deployment/web"]).await?;
    assert!(out.contains("rolled back"), "{out}");
    let d = converged(&cluster, 3, "web:1").await?;

    let sets = replica_sets(&cluster).await?;
    assert_eq!(sets.len(), 2, "no third ReplicaSet");
    let reused = sets.iter().find(|rs| rs.metadata.name.as_deref() == Some(&first)).context("the first ReplicaSet")?;
    let annotations = reused.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(annotations["deployment.kubernetes.io/revision"], "3");
    assert_eq!(annotations["deployment.kubernetes.io/revision-history"], "1");
    assert_eq!(d.metadata.annotations.unwrap_or_default()["deployment.kubernetes.io/revision"], "3");
    let history = cluster.kubectl(&["rollout", "history", "deployment/web"]).await?;
    let revisions: Vec<&str> =
        history.lines().filter_map(|l| l.split_whitespace().next()).filter(|w| w.parse::<u32>().is_ok()).collect();
    assert_eq!(revisions, vec!["2", "3"], "{history}");
    cluster.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_scale_pause_resume_restart_describe_and_get_wide_work() -> anyhow::Result<()> {
    let cluster = Cluster::start(Config::default()).await?;
    cluster.create(web(2, "web:1", json!("25%"), json!("25%"))).await?;
    converged(&cluster, 2, "web:1").await?;

    cluster.kubectl(&["scale", "deployment/web", "--replicas=5"]).await?;
    converged(&cluster, 5, "web:1").await?;

    // Paused: a new template is not rolled out, but scaling still works.
    cluster.kubectl(&["rollout", "pause", "deployment/web"]).await?;
    cluster.kubectl(&["set", "image", "deployment/web", "web=web:2"]).await?;
    cluster.kubectl(&["scale", "deployment/web", "--replicas=3"]).await?;
    wait_for("the paused Deployment to scale", CONVERGE, || async {
        let running = pods(&cluster).await?.into_iter().filter(|p| p.metadata.deletion_timestamp.is_none()).count();
        ensure!(running == 3, "{running} pods");
        Ok(())
    })
    .await?;
    assert_eq!(replica_sets(&cluster).await?.len(), 1, "no rollout while paused");
    let d: Deployment = cluster.client.get_typed(Some("default"), "web").await?;
    let reason = d
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "Progressing")
        .and_then(|c| c.reason);
    assert_eq!(reason.as_deref(), Some("DeploymentPaused"));

    cluster.kubectl(&["rollout", "resume", "deployment/web"]).await?;
    converged(&cluster, 3, "web:2").await?;
    cluster.kubectl(&["rollout", "restart", "deployment/web"]).await?;
    cluster.kubectl(&["rollout", "status", "deployment/web", "--timeout=90s"]).await?;
    converged(&cluster, 3, "web:2").await?;
    assert_eq!(replica_sets(&cluster).await?.len(), 3, "restart made a third ReplicaSet");

    let described = cluster.kubectl(&["describe", "deployment", "web"]).await?;
    for expected in ["ScalingReplicaSet", "NewReplicaSet:", "NewReplicaSetAvailable", "MinimumReplicasAvailable"] {
        assert!(described.contains(expected), "describe lacks {expected}:\n{described}");
    }
    let wide = cluster.kubectl(&["get", "rs,deploy", "-o", "wide"]).await?;
    assert!(wide.contains("pod-template-hash=") && wide.contains("deployment.apps/web"), "{wide}");
    cluster.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_that_cannot_progress_exceeds_its_deadline_and_undo_recovers() -> anyhow::Result<()> {
    let cluster = Cluster::start(Config::default()).await?;
    let mut manifest = web(4, "web:1", json!("25%"), json!("25%"));
    manifest["spec"]["progressDeadlineSeconds"] = json!(3);
    cluster.create(manifest).await?;
    converged(&cluster, 4, "web:1").await?;

    cluster.kubectl(&["set", "image", "deployment/web", "web=registry.example/does-not-exist:1"]).await?;
    let (ok, _, stderr) = cluster.kubectl_status(&["rollout", "status", "deployment/web", "--timeout=90s"]).await?;
    assert!(!ok && stderr.contains("exceeded its progress deadline"), "{stderr}");
    // Stuck, but within bounds: 3 of the 4 old pods still serve, and no more than 5 pods exist.
    let all = pods(&cluster).await?;
    assert!(all.iter().filter(|p| is_ready(p)).count() >= 3);
    assert!(all.len() <= 5);

    cluster.kubectl(&["rollout", "undo", "deployment/web"]).await?;
    cluster.kubectl(&["rollout", "status", "deployment/web", "--timeout=90s"]).await?;
    converged(&cluster, 4, "web:1").await?;
    cluster.stop().await
}
