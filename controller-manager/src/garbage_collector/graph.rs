//! The ownership graph: every object the garbage collector follows, and who owns whom.
//!
//! Kubernetes' garbage collector keeps this graph in memory (`uidToNode` in its `GraphBuilder`) and updates it
//! from watch events. We build it afresh from the informers' caches before each pass: it is a few microseconds
//! per object, and a graph rebuilt from the current state cannot drift from it (level-triggered, see the module
//! above).
//!
//! Objects are identified by **uid**, never by name: an ownerReference names its owner's uid, so a Deployment
//! deleted and created again under the same name is a *different* owner, and the old one's ReplicaSets are
//! garbage.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kubelab_api::object;
use serde_json::{Value, json};
use std::collections::BTreeMap;

// ANCHOR: item
/// Where an object lives: enough to address it through the API, and its uid to tell it from a namesake.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObjectRef {
    /// `apps/v1`, `v1`...
    pub api_version: String,
    /// `ReplicaSet`, `Pod`...
    pub kind: String,
    /// `""` for cluster-scoped objects (Nodes, Namespaces).
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

/// One object as the garbage collector sees it: only its metadata matters.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub object: ObjectRef,
    /// `metadata.ownerReferences`: the objects this one belongs to.
    pub owners: Vec<OwnerReference>,
    /// `metadata.finalizers`: `foregroundDeletion` and `orphan` are the garbage collector's own.
    pub finalizers: Vec<String>,
    /// `metadata.deletionTimestamp` is set: a delete was asked for and waits for finalizers or a grace period.
    pub deleting: bool,
}
// ANCHOR_END: item

/// The finalizer of an owner deleted with `propagationPolicy=Foreground`: it stays until its blocking dependents
/// are gone.
pub const FOREGROUND: &str = "foregroundDeletion";
/// The finalizer of an owner deleted with `propagationPolicy=Orphan`: it stays until its dependents no longer
/// point at it.
pub const ORPHAN: &str = "orphan";

impl Item {
    /// Reads the metadata of an object of any kind; `None` when it has no uid (not a stored object).
    pub fn from_object(object: &Value) -> Option<Item> {
        let uid = object::meta_str(object, "uid");
        if uid.is_empty() {
            return None;
        }
        let owners = object
            .pointer("/metadata/ownerReferences")
            .and_then(|refs| serde_json::from_value::<Vec<OwnerReference>>(refs.clone()).ok())
            .unwrap_or_default();
        Some(Item {
            object: ObjectRef {
                api_version: object.get("apiVersion").and_then(Value::as_str).unwrap_or_default().to_string(),
                kind: object.get("kind").and_then(Value::as_str).unwrap_or_default().to_string(),
                namespace: object::namespace(object).to_string(),
                name: object::name(object).to_string(),
                uid: uid.to_string(),
            },
            owners,
            finalizers: object::finalizers(object),
            deleting: object.pointer("/metadata/deletionTimestamp").is_some_and(|t| !t.is_null()),
        })
    }

    /// Whether this object carries `finalizer`.
    pub fn has_finalizer(&self, finalizer: &str) -> bool {
        self.finalizers.iter().any(|f| f == finalizer)
    }

    /// Being deleted in the foreground: marked, and waiting for its dependents (Kubernetes' `isDeletingDependents`).
    pub fn deleting_dependents(&self) -> bool {
        self.deleting && self.has_finalizer(FOREGROUND)
    }
}

impl ObjectRef {
    /// A minimal object carrying this identity, for the event recorder's `involvedObject`.
    pub fn as_value(&self) -> Value {
        json!({
            "apiVersion": self.api_version,
            "kind": self.kind,
            "metadata": {"name": self.name, "namespace": self.namespace, "uid": self.uid},
        })
    }
}

impl std::fmt::Display for ObjectRef {
    /// `[apps/v1/ReplicaSet, namespace: shop, name: web-7d4, uid: 1234]`, as Kubernetes logs an object reference.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "[{}/{}, namespace: {}, name: {}, uid: {}]",
            self.api_version, self.kind, self.namespace, self.name, self.uid
        )
    }
}

/// Every object followed, by uid, and for each owner uid the uids of the objects that name it.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    items: BTreeMap<String, Item>,
    /// owner uid → dependent uids. An owner that does not exist (a dangling reference) still has an entry: that
    /// is how its dependents are found to be orphans.
    dependents: BTreeMap<String, Vec<String>>,
}

impl Graph {
    /// Builds the graph from items of every kind.
    pub fn new(items: impl IntoIterator<Item = Item>) -> Graph {
        let mut graph = Graph::default();
        for item in items {
            for owner in &item.owners {
                graph.dependents.entry(owner.uid.clone()).or_default().push(item.object.uid.clone());
            }
            graph.items.insert(item.object.uid.clone(), item);
        }
        for dependents in graph.dependents.values_mut() {
            dependents.sort();
            dependents.dedup();
        }
        graph
    }

    /// Builds the graph from objects as JSON (what the informers' caches hold).
    pub fn from_objects<'a>(objects: impl IntoIterator<Item = &'a Value>) -> Graph {
        Graph::new(objects.into_iter().filter_map(Item::from_object))
    }

    /// The object with this uid.
    pub fn get(&self, uid: &str) -> Option<&Item> {
        self.items.get(uid)
    }

    /// Every object, in uid order.
    pub fn items(&self) -> impl Iterator<Item = &Item> {
        self.items.values()
    }

    /// The objects that name `owner_uid` in their ownerReferences.
    pub fn dependents_of(&self, owner_uid: &str) -> Vec<&Item> {
        self.dependents.get(owner_uid).into_iter().flatten().filter_map(|uid| self.items.get(uid)).collect()
    }

    /// Dependents whose reference to `owner_uid` has `blockOwnerDeletion: true`: a foreground deletion of the
    /// owner waits for exactly these.
    pub fn blocking_dependents_of(&self, owner_uid: &str) -> Vec<&Item> {
        self.dependents_of(owner_uid)
            .into_iter()
            .filter(|d| d.owners.iter().any(|o| o.uid == owner_uid && o.block_owner_deletion == Some(true)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_object_is_read_from_its_metadata() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": "web-1", "namespace": "shop", "uid": "p1", "finalizers": ["orphan"],
            "deletionTimestamp": "2026-01-01T00:00:00Z",
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "rs1",
                "controller": true, "blockOwnerDeletion": true}]}});
        let item = Item::from_object(&pod).unwrap();
        assert_eq!(item.object.to_string(), "[v1/Pod, namespace: shop, name: web-1, uid: p1]");
        assert_eq!(item.owners[0].uid, "rs1");
        assert!(item.deleting && item.has_finalizer(ORPHAN) && !item.deleting_dependents());
    }

    #[test]
    fn an_object_without_a_uid_is_not_in_the_graph() {
        assert!(Item::from_object(&json!({"kind": "Pod", "metadata": {"name": "p"}})).is_none());
    }

    #[test]
    fn dependents_are_found_by_owner_uid_even_when_the_owner_is_gone() {
        let graph = Graph::from_objects(&[json!({"apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": "p", "namespace": "ns", "uid": "p1",
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "gone", "uid": "rs1"}]}})]);
        assert!(graph.get("rs1").is_none());
        assert_eq!(graph.dependents_of("rs1")[0].object.name, "p");
        assert!(graph.blocking_dependents_of("rs1").is_empty(), "blockOwnerDeletion is not set");
    }
}
