//! What the garbage collector decides for one object: a pure function of the object and the graph.
//!
//! It follows Kubernetes' `attemptToDeleteItem`, `processDeletingDependentsItem` and `attemptToOrphanWorker`
//! (`pkg/controller/garbagecollector/garbagecollector.go`), in this order:
//!
//! - an object being deleted with the `orphan` finalizer: remove it from its dependents' ownerReferences, then
//!   remove the finalizer;
//! - being deleted with the `foregroundDeletion` finalizer: wait while a dependent blocks it
//!   (`blockOwnerDeletion`), then remove the finalizer;
//! - being deleted otherwise: wait, deletion is a one-way trip;
//! - without ownerReferences: leave it alone;
//! - with at least one owner that exists ("solid"): only drop its references to owners that are gone or being
//!   deleted in the foreground;
//! - with every owner gone, some being deleted in the foreground, and dependents of its own: delete it in the
//!   foreground, so that the cascade goes on down;
//! - with every owner gone (or being deleted in the foreground): delete it, honouring an `orphan` or
//!   `foregroundDeletion` finalizer it already has.
//!
//! "Gone" is decided here from the informers' caches, which may lag. The shell checks every owner believed gone
//! with a live `GET` before it deletes anything ([`Action::Delete`] carries them), as Kubernetes' `isDangling`
//! does: a cache that has not yet seen a new owner must never cost a user their Pods.

use super::graph::{FOREGROUND, Graph, Item, ORPHAN, ObjectRef};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kubelab_api::client::PropagationPolicy;
use kubelab_api::resources;

// ANCHOR: action
/// One thing the garbage collector does to one object.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Delete an object whose owners are gone (or being deleted in the foreground).
    Delete {
        object: ObjectRef,
        /// How its own dependents are treated: the cascade continues with this policy.
        policy: PropagationPolicy,
        /// The owners believed gone: the shell confirms each with a live `GET` before deleting.
        absent_owners: Vec<OwnerReference>,
    },
    /// Remove the ownerReferences to these owner uids from an object (it is orphaned from them).
    RemoveOwnerReferences { object: ObjectRef, owner_uids: Vec<String> },
    /// Remove one of the garbage collector's finalizers from an owner whose deletion can now complete.
    RemoveFinalizer { object: ObjectRef, finalizer: &'static str },
    /// Record a warning event about an object (an ownerReference that can never be right).
    Warn { object: ObjectRef, reason: &'static str, message: String },
}
// ANCHOR_END: action

/// What one ownerReference points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    /// The owner exists and is not waiting for its dependents: the dependent stays.
    Solid,
    /// No object has that uid (in the dependent's namespace): the reference is garbage.
    Dangling,
    /// The owner exists but is being deleted in the foreground: it waits for this dependent to go.
    WaitingForDependents,
    /// A cluster-scoped object cannot be owned by a namespaced one; Kubernetes warns and does nothing else.
    Invalid,
}

// ANCHOR: reconcile
/// Decides what to do about one object. Safe to call at any time, any number of times: it only reads.
pub fn reconcile(item: &Item, graph: &Graph) -> Vec<Action> {
    let me = &item.object;
    // An owner deleted with `propagationPolicy=Orphan`: its dependents lose their reference to it and stay.
    if item.deleting && item.has_finalizer(ORPHAN) {
        let mut actions: Vec<Action> = graph
            .dependents_of(&me.uid)
            .into_iter()
            .map(|d| Action::RemoveOwnerReferences { object: d.object.clone(), owner_uids: vec![me.uid.clone()] })
            .collect();
        actions.push(Action::RemoveFinalizer { object: me.clone(), finalizer: ORPHAN });
        return actions;
    }
    // An owner deleted with `propagationPolicy=Foreground`: it stays until no dependent blocks it. Its dependents
    // are deleted by their own reconcile below (their owner is `WaitingForDependents`).
    if item.deleting_dependents() {
        return match graph.blocking_dependents_of(&me.uid).is_empty() {
            true => vec![Action::RemoveFinalizer { object: me.clone(), finalizer: FOREGROUND }],
            false => Vec::new(),
        };
    }
    // Being deleted is a one-way trip: wait for it to finish (a Pod's grace period, someone else's finalizer).
    if item.deleting || item.owners.is_empty() {
        return Vec::new();
    }

    let mut warnings = Vec::new();
    let (mut solid, mut dangling, mut waiting, mut invalid) = (0, Vec::new(), Vec::new(), false);
    for owner in &item.owners {
        match classify(item, owner, graph, &mut warnings) {
            Owner::Solid => solid += 1,
            Owner::Dangling => dangling.push(owner.clone()),
            Owner::WaitingForDependents => waiting.push(owner.clone()),
            Owner::Invalid => invalid = true,
        }
    }
    let mut actions = warnings;
    if invalid {
        return actions;
    }
    if solid > 0 {
        // A living owner keeps the object. References to owners that are gone, or that wait for their dependents
        // to go, are dropped: otherwise a foreground owner would wait for this object forever.
        let owner_uids: Vec<String> = dangling.iter().chain(&waiting).map(|o| o.uid.clone()).collect();
        if !owner_uids.is_empty() {
            actions.push(Action::RemoveOwnerReferences { object: me.clone(), owner_uids });
        }
        return actions;
    }
    let policy = if !waiting.is_empty() && !graph.dependents_of(&me.uid).is_empty() {
        // An owner waits for us, and we have dependents: delete in the foreground, so that we too wait for ours
        // and the owner's wait covers the whole tree below it.
        PropagationPolicy::Foreground
    } else if item.has_finalizer(ORPHAN) {
        PropagationPolicy::Orphan
    } else if item.has_finalizer(FOREGROUND) {
        PropagationPolicy::Foreground
    } else {
        PropagationPolicy::Background
    };
    actions.push(Action::Delete { object: me.clone(), policy, absent_owners: dangling });
    actions
}
// ANCHOR_END: reconcile

// ANCHOR: reconcile_key
/// Everything a change to the object with this uid calls for: its own decision, if it still exists, and its
/// dependents' — if it is gone they may be garbage, if it is being deleted they have work to do.
pub fn reconcile_key(uid: &str, graph: &Graph) -> Vec<Action> {
    let mut actions = Vec::new();
    for item in graph.get(uid).into_iter().chain(graph.dependents_of(uid)) {
        for action in reconcile(item, graph) {
            if !actions.contains(&action) {
                actions.push(action);
            }
        }
    }
    actions
}
// ANCHOR_END: reconcile_key

/// Every action the whole graph calls for, object by object.
pub fn reconcile_all(graph: &Graph) -> Vec<Action> {
    graph.items().flat_map(|item| reconcile(item, graph)).collect()
}

/// Classifies one ownerReference of `item` (Kubernetes' `classifyReferences`), adding a warning when the
/// reference can never be right.
fn classify(item: &Item, owner: &OwnerReference, graph: &Graph, warnings: &mut Vec<Action>) -> Owner {
    let Some(owner_resource) = resources::by_kind(&owner.api_version, &owner.kind) else {
        // A kind we do not serve cannot be looked up, so it cannot be proven gone. Kubernetes retries such an
        // object forever; we simply never collect it on that owner's account.
        return Owner::Solid;
    };
    let dependent_namespace = &item.object.namespace;
    if dependent_namespace.is_empty() && owner_resource.namespaced {
        warnings.push(invalid_namespace(item, owner));
        return Owner::Invalid;
    }
    match graph.get(&owner.uid) {
        None => Owner::Dangling,
        Some(found) if owner_resource.namespaced && &found.object.namespace != dependent_namespace => {
            // Owners live in their dependent's namespace. One elsewhere is, for this dependent, not there at all.
            warnings.push(invalid_namespace(item, owner));
            Owner::Dangling
        }
        Some(found) if found.deleting_dependents() => Owner::WaitingForDependents,
        Some(_) => Owner::Solid,
    }
}

/// Kubernetes' `OwnerRefInvalidNamespace` warning, worded as its graph builder words it.
fn invalid_namespace(item: &Item, owner: &OwnerReference) -> Action {
    let namespace = &item.object.namespace;
    let reference = ObjectRef {
        api_version: owner.api_version.clone(),
        kind: owner.kind.clone(),
        namespace: namespace.clone(),
        name: owner.name.clone(),
        uid: owner.uid.clone(),
    };
    Action::Warn {
        object: item.object.clone(),
        reason: "OwnerRefInvalidNamespace",
        message: format!("ownerRef {reference} does not exist in namespace {namespace:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// An object of `kind` (`Deployment`, `ReplicaSet`, `Pod`, `Node`) named and identified by `uid`, in `shop`
    /// unless cluster-scoped, owned by `owners` (kind, uid, blockOwnerDeletion).
    fn object(kind: &str, uid: &str, owners: &[(&str, &str, bool)]) -> Value {
        let api_version = |kind: &str| if matches!(kind, "Deployment" | "ReplicaSet") { "apps/v1" } else { "v1" };
        let namespace = if matches!(kind, "Node" | "Namespace") { "" } else { "shop" };
        let refs: Vec<Value> = owners
            .iter()
            .map(|(kind, uid, block)| {
                json!({"apiVersion": api_version(kind), "kind": kind, "name": uid, "uid": uid,
                    "controller": true, "blockOwnerDeletion": block})
            })
            .collect();
        json!({"apiVersion": api_version(kind), "kind": kind,
            "metadata": {"name": uid, "namespace": namespace, "uid": uid, "ownerReferences": refs}})
    }

    /// `object`, marked for deletion with `finalizers`.
    fn deleting(mut object: Value, finalizers: &[&str]) -> Value {
        object["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        object["metadata"]["finalizers"] = json!(finalizers);
        object
    }

    fn decide(uid: &str, objects: &[Value]) -> Vec<Action> {
        let graph = Graph::from_objects(objects);
        reconcile(graph.get(uid).expect("the object is in the graph"), &graph)
    }

    /// The actions as short strings: `delete pod-1 Background`, `unown pod-1 from rs`, `unfinalize rs orphan`.
    fn summary(actions: &[Action]) -> Vec<String> {
        actions
            .iter()
            .map(|a| match a {
                Action::Delete { object, policy, .. } => format!("delete {} {policy:?}", object.name),
                Action::RemoveOwnerReferences { object, owner_uids } => {
                    format!("unown {} from {}", object.name, owner_uids.join(","))
                }
                Action::RemoveFinalizer { object, finalizer } => format!("unfinalize {} {finalizer}", object.name),
                Action::Warn { object, reason, .. } => format!("warn {} {reason}", object.name),
            })
            .collect()
    }

    #[test]
    fn a_pod_whose_replicaset_is_gone_is_deleted_in_the_background() {
        let actions = decide("pod-1", &[object("Pod", "pod-1", &[("ReplicaSet", "rs", true)])]);
        assert_eq!(summary(&actions), ["delete pod-1 Background"]);
        let Action::Delete { absent_owners, .. } = &actions[0] else { unreachable!() };
        assert_eq!(absent_owners[0].uid, "rs", "the shell must confirm this owner is gone before deleting");
    }

    #[test]
    fn the_key_of_a_deleted_owner_reaches_every_dependent() {
        let objects = [
            object("Pod", "pod-1", &[("ReplicaSet", "rs", true)]),
            object("Pod", "pod-2", &[("ReplicaSet", "rs", true)]),
            object("Pod", "other", &[("ReplicaSet", "rs-2", true)]),
        ];
        let actions = reconcile_key("rs", &Graph::from_objects(&objects));
        assert_eq!(summary(&actions), ["delete pod-1 Background", "delete pod-2 Background"]);
    }

    #[test]
    fn an_object_whose_owner_exists_is_left_alone() {
        let objects = [object("ReplicaSet", "rs", &[]), object("Pod", "pod-1", &[("ReplicaSet", "rs", true)])];
        assert!(decide("pod-1", &objects).is_empty());
        assert!(decide("rs", &objects).is_empty(), "no owners, nothing to collect");
    }

    #[test]
    fn an_owner_recreated_under_the_same_name_does_not_keep_the_old_dependents() {
        // The new ReplicaSet has the same name but another uid: the pod's reference is to the old one.
        let mut new_rs = object("ReplicaSet", "rs-new", &[]);
        new_rs["metadata"]["name"] = json!("rs");
        let actions = decide("pod-1", &[new_rs, object("Pod", "pod-1", &[("ReplicaSet", "rs", true)])]);
        assert_eq!(summary(&actions), ["delete pod-1 Background"]);
    }

    #[test]
    fn an_object_with_one_living_and_one_gone_owner_only_loses_the_dangling_reference() {
        let objects = [
            object("ReplicaSet", "a", &[]),
            object("Pod", "pod-1", &[("ReplicaSet", "a", true), ("ReplicaSet", "b", true)]),
        ];
        assert_eq!(summary(&decide("pod-1", &objects)), ["unown pod-1 from b"]);
    }

    #[test]
    fn a_foreground_owner_keeps_its_finalizer_while_a_blocking_dependent_exists() {
        let objects = [
            deleting(object("ReplicaSet", "rs", &[]), &[FOREGROUND]),
            object("Pod", "pod-1", &[("ReplicaSet", "rs", true)]),
        ];
        assert!(decide("rs", &objects).is_empty());
        assert_eq!(summary(&decide("pod-1", &objects)), ["delete pod-1 Background"]);
    }

    #[test]
    fn a_terminating_dependent_is_not_deleted_again_but_still_blocks_its_foreground_owner() {
        let objects = [
            deleting(object("ReplicaSet", "rs", &[]), &[FOREGROUND]),
            deleting(object("Pod", "pod-1", &[("ReplicaSet", "rs", true)]), &[]),
        ];
        assert!(decide("pod-1", &objects).is_empty());
        assert!(decide("rs", &objects).is_empty());
    }

    #[test]
    fn a_foreground_owner_drops_its_finalizer_when_only_non_blocking_dependents_remain() {
        let objects = [
            deleting(object("ReplicaSet", "rs", &[]), &[FOREGROUND]),
            object("Pod", "pod-1", &[("ReplicaSet", "rs", false)]),
        ];
        assert_eq!(summary(&decide("rs", &objects)), ["unfinalize rs foregroundDeletion"]);
        assert_eq!(summary(&decide("pod-1", &objects)), ["delete pod-1 Background"], "it goes anyway, unwaited");
    }

    #[test]
    fn a_foreground_deletion_cascades_in_the_foreground_through_dependents_that_have_dependents() {
        let objects = [
            deleting(object("Deployment", "web", &[]), &[FOREGROUND]),
            object("ReplicaSet", "rs", &[("Deployment", "web", true)]),
            object("Pod", "pod-1", &[("ReplicaSet", "rs", true)]),
        ];
        assert_eq!(summary(&reconcile_all(&Graph::from_objects(&objects))), ["delete rs Foreground"]);
    }

    #[test]
    fn a_dependent_with_a_solid_owner_lets_go_of_its_foreground_owner_instead_of_being_deleted() {
        let objects = [
            deleting(object("ReplicaSet", "old", &[]), &[FOREGROUND]),
            object("ReplicaSet", "new", &[]),
            object("Pod", "pod-1", &[("ReplicaSet", "old", true), ("ReplicaSet", "new", true)]),
        ];
        assert_eq!(summary(&decide("pod-1", &objects)), ["unown pod-1 from old"]);
    }

    #[test]
    fn an_orphaning_owner_detaches_every_dependent_then_drops_its_finalizer() {
        let objects = [
            deleting(object("ReplicaSet", "rs", &[]), &[ORPHAN]),
            object("Pod", "pod-1", &[("ReplicaSet", "rs", true)]),
            object("Pod", "pod-2", &[("ReplicaSet", "rs", true)]),
        ];
        assert_eq!(
            summary(&decide("rs", &objects)),
            ["unown pod-1 from rs", "unown pod-2 from rs", "unfinalize rs orphan"]
        );
        assert!(decide("pod-1", &objects).is_empty(), "an orphaning owner is still a solid owner");
    }

    #[test]
    fn an_orphan_finalizer_set_in_advance_is_honoured_when_the_owner_is_collected() {
        let mut rs = object("ReplicaSet", "rs", &[("Deployment", "web", true)]);
        rs["metadata"]["finalizers"] = json!([ORPHAN]);
        assert_eq!(summary(&decide("rs", &[rs])), ["delete rs Orphan"]);
    }

    #[test]
    fn a_cluster_scoped_object_owned_by_a_namespaced_kind_gets_a_warning_and_is_kept() {
        let actions = decide("node-1", &[object("Node", "node-1", &[("ReplicaSet", "rs", false)])]);
        assert_eq!(summary(&actions), ["warn node-1 OwnerRefInvalidNamespace"]);
    }

    #[test]
    fn an_owner_in_another_namespace_counts_as_absent_and_is_reported() {
        let mut rs = object("ReplicaSet", "rs", &[]);
        rs["metadata"]["namespace"] = json!("elsewhere");
        let actions = decide("pod-1", &[rs, object("Pod", "pod-1", &[("ReplicaSet", "rs", true)])]);
        assert_eq!(summary(&actions), ["warn pod-1 OwnerRefInvalidNamespace", "delete pod-1 Background"]);
        let Action::Warn { message, .. } = &actions[0] else { unreachable!() };
        assert_eq!(
            message,
            "ownerRef [apps/v1/ReplicaSet, namespace: shop, name: rs, uid: rs] does not exist in namespace \"shop\""
        );
    }

    #[test]
    fn an_owner_of_a_kind_we_do_not_serve_is_never_assumed_gone() {
        let mut pod = object("Pod", "pod-1", &[]);
        pod["metadata"]["ownerReferences"] =
            json!([{"apiVersion": "batch/v1", "kind": "Job", "name": "j", "uid": "job-1"}]);
        assert!(decide("pod-1", &[pod]).is_empty());
    }

    #[test]
    fn a_cluster_scoped_owner_may_own_namespaced_objects() {
        let objects = [object("Node", "node-1", &[]), object("Pod", "pod-1", &[("Node", "node-1", false)])];
        assert!(decide("pod-1", &objects).is_empty());
        assert_eq!(summary(&decide("pod-1", &objects[1..])), ["delete pod-1 Background"]);
    }
}
