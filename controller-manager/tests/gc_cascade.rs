//! The garbage collector against a real apiserver, driven by the real kubectl.
//!
//! Each test builds the same little tree by hand — no Deployment or ReplicaSet controller runs, so nothing but
//! the garbage collector touches it —
//!
//! ```text
//! Deployment web ──owns──▶ ReplicaSet web-1 ──owns──▶ Pod web-1-a, Pod web-1-b
//! Pod bystander (no owner)
//! ```
//!
//! and deletes the Deployment with one of kubectl's three `--cascade` modes, then checks that exactly what should
//! be left is left.

use anyhow::{Context, bail};
use kubelab_api::client::{PatchParams, PatchType};
use kubelab_api::object;
use kubelab_controller_manager::garbage_collector::GarbageCollector;
use kubelab_testkit::wait_for;
use serde_json::{Value, json};

mod common;
use common::{TIMEOUT, resource};

#[tokio::test]
async fn background_deletion_removes_the_owner_at_once_and_then_everything_it_owned() -> anyhow::Result<()> {
    let cluster = Cluster::start().await?;
    cluster.create_tree(false).await?;

    cluster.kubectl(&["delete", "deployment", "web", "--cascade=background"]).await?;
    assert!(cluster.get("Deployment", "web").await?.is_none(), "kubectl waits until the Deployment is gone");

    wait_for("the ReplicaSet and its pods to be collected", TIMEOUT, || async {
        for (kind, name) in [("ReplicaSet", "web-1"), ("Pod", "web-1-a"), ("Pod", "web-1-b")] {
            if cluster.get(kind, name).await?.is_some() {
                bail!("{kind} {name} is still there");
            }
        }
        Ok(())
    })
    .await?;
    assert!(cluster.get("Pod", "bystander").await?.is_some(), "an object without owners is never collected");
    Ok(())
}

#[tokio::test]
async fn foreground_deletion_keeps_each_owner_until_its_dependents_are_gone() -> anyhow::Result<()> {
    let cluster = Cluster::start().await?;
    // web-1-a carries a finalizer of the test's own: it cannot go until the test lets it.
    cluster.create_tree(true).await?;

    cluster.kubectl(&["delete", "deployment", "web", "--cascade=foreground", "--wait=false"]).await?;

    let held = wait_for("web-1-b to go and web-1-a to be held by its finalizer", TIMEOUT, || async {
        if cluster.get("Pod", "web-1-b").await?.is_some() {
            bail!("web-1-b is still there");
        }
        let held = cluster.get("Pod", "web-1-a").await?.context("web-1-a is gone despite its finalizer")?;
        held.pointer("/metadata/deletionTimestamp").context("web-1-a is not being deleted yet")?;
        Ok(held)
    })
    .await?;
    assert_eq!(object::finalizers(&held), ["kubelab.test/hold"]);
    // Both owners wait, marked, with the garbage collector's finalizer: the ReplicaSet was deleted in the
    // foreground too, because it has dependents of its own.
    for (kind, name) in [("Deployment", "web"), ("ReplicaSet", "web-1")] {
        let owner = cluster.get(kind, name).await?.with_context(|| format!("{kind} {name} left too early"))?;
        assert!(owner.pointer("/metadata/deletionTimestamp").is_some(), "{kind} {name} is being deleted");
        assert_eq!(object::finalizers(&owner), ["foregroundDeletion"], "{kind} {name}");
    }

    cluster.patch_metadata("Pod", "web-1-a", json!({"finalizers": null})).await?;
    wait_for("the whole tree to be gone, bottom up", TIMEOUT, || async {
        for (kind, name) in [("Pod", "web-1-a"), ("ReplicaSet", "web-1"), ("Deployment", "web")] {
            if cluster.get(kind, name).await?.is_some() {
                bail!("{kind} {name} is still there");
            }
        }
        Ok(())
    })
    .await?;
    assert!(cluster.get("Pod", "bystander").await?.is_some());
    Ok(())
}

#[tokio::test]
async fn orphan_deletion_removes_only_the_owner_and_its_references() -> anyhow::Result<()> {
    let cluster = Cluster::start().await?;
    cluster.create_tree(false).await?;

    // kubectl waits for the Deployment to be gone, which happens only once the garbage collector has removed
    // the `orphan` finalizer, after orphaning the ReplicaSet.
    cluster.kubectl(&["delete", "deployment", "web", "--cascade=orphan"]).await?;
    assert!(cluster.get("Deployment", "web").await?.is_none());

    let replica_set = cluster.get("ReplicaSet", "web-1").await?.context("the ReplicaSet must stay")?;
    assert!(replica_set.pointer("/metadata/ownerReferences").is_none(), "{replica_set:#}");
    assert!(replica_set.pointer("/metadata/deletionTimestamp").is_none());
    for pod in ["web-1-a", "web-1-b"] {
        let pod = cluster.get("Pod", pod).await?.context("the pods must stay")?;
        assert_eq!(pod["metadata"]["ownerReferences"][0]["name"], "web-1", "still owned by their ReplicaSet");
    }
    Ok(())
}

// ---- harness ----

/// The common [`common::Cluster`] with only the garbage collector running. Every object of these tests lives in
/// `default`, so the helpers below leave the namespace out.
struct Cluster(common::Cluster);

impl Cluster {
    async fn start() -> anyhow::Result<Cluster> {
        let mut cluster = common::Cluster::start().await?;
        cluster.run::<GarbageCollector>(&common::config());
        Ok(Cluster(cluster))
    }

    /// Creates the tree of the module comment in `default`; `hold` puts a finalizer on `web-1-a`.
    async fn create_tree(&self, hold: bool) -> anyhow::Result<()> {
        let labels = json!({"app": "web"});
        let template = json!({"metadata": {"labels": labels},
            "spec": {"containers": [{"name": "web", "image": "nginx"}]}});
        let deployment = self
            .create(
                "Deployment",
                json!({"metadata": {"name": "web"},
                "spec": {"replicas": 2, "selector": {"matchLabels": labels}, "template": template}}),
            )
            .await?;
        let replica_set = self
            .create(
                "ReplicaSet",
                json!({"metadata": {"name": "web-1", "ownerReferences": [owner(&deployment)]},
                "spec": {"replicas": 2, "selector": {"matchLabels": labels}, "template": template}}),
            )
            .await?;
        for name in ["web-1-a", "web-1-b"] {
            let finalizers = if hold && name == "web-1-a" { json!(["kubelab.test/hold"]) } else { json!([]) };
            let metadata = json!({"name": name, "labels": labels, "finalizers": finalizers,
                "ownerReferences": [owner(&replica_set)]});
            self.create("Pod", json!({"metadata": metadata, "spec": template["spec"]})).await?;
        }
        self.create("Pod", json!({"metadata": {"name": "bystander"}, "spec": template["spec"]})).await?;
        Ok(())
    }

    async fn create(&self, kind: &str, body: Value) -> anyhow::Result<Value> {
        self.0.create(Some("default"), kind, body).await
    }

    /// The object, or `None` once it is gone.
    async fn get(&self, kind: &str, name: &str) -> anyhow::Result<Option<Value>> {
        self.0.get(Some("default"), kind, name).await
    }

    async fn patch_metadata(&self, kind: &str, name: &str, metadata: Value) -> anyhow::Result<()> {
        let patch = json!({"metadata": metadata});
        let params = PatchParams::default();
        self.0.client.patch(resource(kind)?, Some("default"), name, PatchType::Merge, &patch, &params).await?;
        Ok(())
    }

    /// Runs the real kubectl against this cluster (namespace `default`) and fails unless it succeeds.
    async fn kubectl(&self, args: &[&str]) -> anyhow::Result<String> {
        self.0.kubectl(&[&["--namespace", "default"], args].concat()).await
    }
}

/// A controlling ownerReference to `owner`, blocking its foreground deletion, as controllers write them.
fn owner(owner: &Value) -> Value {
    json!({"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": object::name(owner),
        "uid": object::meta_str(owner, "uid"), "controller": true, "blockOwnerDeletion": true})
}
