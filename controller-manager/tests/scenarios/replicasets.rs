//! ReplicaSets against a real apiserver.

use crate::cluster::{CONVERGE, Cluster};
use anyhow::ensure;
use k8s_openapi::api::core::v1::{Event, Pod};
use kubelab_api::client::{ListParams, PatchParams, PatchType, PropagationPolicy};
use kubelab_controller_manager::Config;
use kubelab_controller_manager::replicaset::pods::is_ready;
use kubelab_testkit::wait_for;
use serde_json::json;

fn replica_set(replicas: i32) -> serde_json::Value {
    json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "cache", "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "cache"}},
            "template": {
                "metadata": {"labels": {"app": "cache"}},
                "spec": {"containers": [{"name": "cache", "image": "cache:1"}]}
            }
        }
    })
}

/// The names of the active pods of `default` controlled by the ReplicaSet `cache`, once there are `count`, all
/// ready.
async fn ready_pods(cluster: &Cluster, count: usize) -> anyhow::Result<Vec<String>> {
    wait_for(&format!("{count} ready pods of cache"), CONVERGE, || async {
        let pods = cluster.client.list_typed::<Pod>(Some("default"), &ListParams::default()).await?.items;
        let ours: Vec<&Pod> = pods
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter(|p| {
                p.metadata.owner_references.iter().flatten().any(|o| o.name == "cache" && o.controller == Some(true))
            })
            .collect();
        ensure!(ours.len() == count && ours.iter().all(|p| is_ready(p)), "{} pods", ours.len());
        Ok(ours.iter().map(|p| p.metadata.name.clone().unwrap_or_default()).collect())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_pods_are_replaced() -> anyhow::Result<()> {
    let cluster = Cluster::start(Config::default()).await?;
    cluster.create(replica_set(3)).await?;
    let before = ready_pods(&cluster, 3).await?;
    let pods = kubelab_api::resources::by_kind("v1", "Pod").expect("pods are served");
    for name in &before[..2] {
        cluster.client.delete(pods, Some("default"), name, PropagationPolicy::Background).await?;
    }
    let after = wait_for("two new pods", CONVERGE, || async {
        let after = ready_pods(&cluster, 3).await?;
        ensure!(after.iter().filter(|n| before.contains(n)).count() == 1, "{after:?}");
        Ok(after)
    })
    .await?;
    assert!(after.iter().all(|n| n.starts_with("cache-")));
    let events = cluster.client.list_typed::<Event>(Some("default"), &ListParams::default()).await?.items;
    let created = events.iter().filter(|e| e.reason.as_deref() == Some("SuccessfulCreate")).count();
    assert_eq!(created, 5, "3 pods, then 2 replacements");
    assert!(events.iter().any(|e| e.message.as_deref() == Some(&format!("Created pod: {}", after[0]))
        || e.message.as_deref() == Some(&format!("Created pod: {}", after[1]))));
    cluster.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_matching_orphan_is_adopted_and_a_relabelled_pod_is_released_and_replaced() -> anyhow::Result<()> {
    let cluster = Cluster::start(Config::default()).await?;
    // An orphan that matches, created before the ReplicaSet: adopted, so only one more pod is created.
    cluster
        .create(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "stray", "namespace": "default", "labels": {"app": "cache"}},
            "spec": {"containers": [{"name": "cache", "image": "cache:1"}]}}))
        .await?;
    cluster.create(replica_set(2)).await?;
    let names = ready_pods(&cluster, 2).await?;
    assert!(names.contains(&"stray".to_string()), "{names:?}");

    // Relabelled: it no longer matches, so it is released (and lives on), and replaced.
    let pods = kubelab_api::resources::by_kind("v1", "Pod").expect("pods are served");
    let patch = json!({"metadata": {"labels": {"app": "debugging"}}});
    cluster.client.patch(pods, Some("default"), "stray", PatchType::Merge, &patch, &PatchParams::default()).await?;
    wait_for("stray to be released and replaced", CONVERGE, || async {
        let names = ready_pods(&cluster, 2).await?;
        ensure!(!names.contains(&"stray".to_string()), "{names:?}");
        Ok(())
    })
    .await?;
    let stray: Pod = cluster.client.get_typed(Some("default"), "stray").await?;
    assert!(stray.metadata.owner_references.unwrap_or_default().is_empty(), "released");
    cluster.stop().await
}
