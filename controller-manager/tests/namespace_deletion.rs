//! The namespace controller against a real apiserver: `kubectl delete namespace` empties the namespace, waits
//! for what takes time to go, and only then lets the namespace itself go.
//!
//! No kubelet runs here: a Pod bound to a node gets a grace period and stays `Terminating` until its kubelet
//! confirms its containers are stopped. The test plays that kubelet with `kubectl delete --force`.

use anyhow::{Context, bail};
use kubelab_api::object;
use kubelab_controller_manager::garbage_collector::GarbageCollector;
use kubelab_controller_manager::namespace::NamespaceController;
use kubelab_testkit::wait_for;
use serde_json::json;

mod common;
use common::{Cluster, TIMEOUT, condition, resource};

#[tokio::test]
async fn deleting_a_namespace_empties_it_then_removes_it() -> anyhow::Result<()> {
    let cluster = start().await?;
    cluster.create(None, "Namespace", json!({"metadata": {"name": "shop"}})).await?;
    let spec = json!({"containers": [{"name": "web", "image": "nginx"}]});
    cluster.create(Some("shop"), "ConfigMap", json!({"metadata": {"name": "settings"}, "data": {"a": "1"}})).await?;
    cluster.create(Some("shop"), "Pod", json!({"metadata": {"name": "pending"}, "spec": spec})).await?;
    let mut bound = spec.clone();
    bound["nodeName"] = json!("node-1");
    cluster.create(Some("shop"), "Pod", json!({"metadata": {"name": "running"}, "spec": bound})).await?;
    cluster
        .create(Some("shop"), "Lease", json!({"metadata": {"name": "lock"}, "spec": {"holderIdentity": "me"}}))
        .await?;
    cluster.create(Some("default"), "ConfigMap", json!({"metadata": {"name": "elsewhere"}})).await?;

    cluster.kubectl(&["delete", "namespace", "shop", "--wait=false"]).await?;

    let namespace =
        wait_for("everything but the terminating pod to go, and the namespace to say so", TIMEOUT, || async {
            for (kind, name) in [("ConfigMap", "settings"), ("Pod", "pending"), ("Lease", "lock")] {
                if cluster.get(Some("shop"), kind, name).await?.is_some() {
                    bail!("{kind} {name} is still there");
                }
            }
            let running = cluster.get(Some("shop"), "Pod", "running").await?.context("the bound pod left early")?;
            running.pointer("/metadata/deletionTimestamp").context("the bound pod is not terminating yet")?;
            let namespace = cluster.get(None, "Namespace", "shop").await?.context("the namespace left early")?;
            let remaining = condition(&namespace, "NamespaceContentRemaining").context("no content condition yet")?;
            if remaining["status"] != "True"
                || remaining["message"] != "Some resources are remaining: pods. has 1 resource instances"
            {
                bail!("the condition says {remaining}");
            }
            Ok(namespace)
        })
        .await?;
    assert_eq!(namespace["status"]["phase"], "Terminating");
    assert_eq!(namespace["spec"]["finalizers"], json!(["kubernetes"]), "not finalized while content remains");
    let described = cluster.kubectl(&["describe", "namespace", "shop"]).await?;
    assert!(described.contains("SomeResourcesRemain"), "{described}");

    // The kubelet's part: the containers are stopped, the pod object may go.
    cluster.kubectl(&["delete", "pod", "running", "-n", "shop", "--grace-period=0", "--force"]).await?;

    wait_for("the namespace to be gone", TIMEOUT, || async {
        match cluster.get(None, "Namespace", "shop").await? {
            Some(namespace) => bail!("still there: {}", namespace["spec"]),
            None => Ok(()),
        }
    })
    .await?;
    assert!(cluster.get(Some("default"), "ConfigMap", "elsewhere").await?.is_some(), "other namespaces are untouched");
    Ok(())
}

#[tokio::test]
async fn a_namespace_waits_for_the_garbage_collectors_foreground_deletions() -> anyhow::Result<()> {
    let cluster = start().await?;
    cluster.create(None, "Namespace", json!({"metadata": {"name": "shop"}})).await?;
    let owner = cluster.create(Some("shop"), "ConfigMap", json!({"metadata": {"name": "owner"}})).await?;
    let reference = json!({"apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
        "uid": object::meta_str(&owner, "uid"), "blockOwnerDeletion": true});
    cluster
        .create(
            Some("shop"),
            "ConfigMap",
            json!({"metadata": {"name": "dependent", "ownerReferences": [reference],
            "finalizers": ["kubelab.test/hold"]}}),
        )
        .await?;
    // The owner is being deleted in the foreground: it waits for its dependent, which waits for the test.
    cluster.kubectl(&["delete", "configmap", "owner", "-n", "shop", "--cascade=foreground", "--wait=false"]).await?;
    cluster.kubectl(&["delete", "namespace", "shop", "--wait=false"]).await?;

    wait_for("the namespace to report the finalizers holding it", TIMEOUT, || async {
        let namespace = cluster.get(None, "Namespace", "shop").await?.context("the namespace left early")?;
        let finalizers = condition(&namespace, "NamespaceFinalizersRemaining").context("no finalizer condition yet")?;
        let expected = "Some content in the namespace has finalizers remaining: foregroundDeletion in 1 resource \
                        instances, kubelab.test/hold in 1 resource instances";
        if finalizers["message"] != expected {
            bail!("the condition says {finalizers}");
        }
        Ok(())
    })
    .await?;

    let patch = json!({"metadata": {"finalizers": null}});
    let params = kubelab_api::client::PatchParams::default();
    let configmaps = resource("ConfigMap")?;
    let merge = kubelab_api::client::PatchType::Merge;
    cluster.client.patch(configmaps, Some("shop"), "dependent", merge, &patch, &params).await?;

    wait_for("the namespace to be gone", TIMEOUT, || async {
        match cluster.get(None, "Namespace", "shop").await? {
            Some(namespace) => bail!("still there: {}", namespace["status"]),
            None => Ok(()),
        }
    })
    .await
}

// ---- harness ----

/// A cluster running the namespace controller and the garbage collector (which deletes what the namespace's
/// objects owned).
async fn start() -> anyhow::Result<Cluster> {
    let mut cluster = Cluster::start().await?;
    cluster.run::<NamespaceController>(&common::config());
    cluster.run::<GarbageCollector>(&common::config());
    Ok(cluster)
}
