//! Ownership: which controller an object belongs to, and how controllers claim and let go of objects.
//!
//! A ReplicaSet finds its pods by label selector, but selectors can overlap and labels can change, so Kubernetes
//! also records ownership *in the object*: an `ownerReference` with `controller: true` names the one controller
//! responsible for it. Every controller that manages other objects claims them the same way
//! (`ControllerRefManager` in `pkg/controller/controller_ref_manager.go`):
//!
//! | the object is...                         | selector matches  | selector does not match |
//! |------------------------------------------|-------------------|-------------------------|
//! | controlled by us                         | ours              | **release** it          |
//! | controlled by someone else               | not ours          | not ours                |
//! | an orphan (no controller)                | **adopt** it      | not ours                |
//!
//! An owner being deleted neither adopts nor releases; an object being deleted is not adopted. The
//! `ownerReferences` are also what the garbage collector follows to delete a Deployment's ReplicaSets and pods.
//!
//! Adopting and releasing are patches that carry the object's `resourceVersion`: if the object changed since the
//! cache saw it (someone else adopted it first), the apiserver answers `409 Conflict` and the controller tries
//! again with fresh data, instead of overwriting someone else's claim.

use super::Lister;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{self as meta, ObjectMeta, OwnerReference};
use kubelab_api::selectors::LabelSelector;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The `ownerReference` marking an object's controller (`controller: true`).
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references.iter().flatten().find(|r| r.controller == Some(true))
}

/// Whether `meta` is controlled by the object with uid `owner_uid`.
pub fn is_controlled_by(meta: &ObjectMeta, owner_uid: &str) -> bool {
    controller_of(meta).is_some_and(|r| r.uid == owner_uid)
}

/// The reference a controller puts on the objects it creates or adopts: `controller: true`, and
/// `blockOwnerDeletion: true` so that a foreground deletion of the owner waits for them.
pub fn controller_ref(api_version: &str, kind: &str, owner: &ObjectMeta) -> OwnerReference {
    OwnerReference {
        api_version: api_version.to_string(),
        kind: kind.to_string(),
        name: owner.name.clone().unwrap_or_default(),
        uid: owner.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// What a controller does with one candidate object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Already ours, and the selector matches: keep managing it.
    Owned,
    /// An orphan that matches: take it (patch in our controller reference), then manage it.
    Adopt,
    /// Ours, but it no longer matches: remove our reference, let it go.
    Release,
    /// Not ours, and not to be taken.
    Ignore,
}

// ANCHOR: claim
/// Decides what the owner (`owner`, selecting with `selector`) does with `object`, as `ClaimObject` does.
pub fn claim(owner: &ObjectMeta, selector: &LabelSelector, object: &ObjectMeta) -> Claim {
    let owner_uid = owner.uid.as_deref().unwrap_or_default();
    let owner_deleting = owner.deletion_timestamp.is_some();
    let labels = object.labels.clone().unwrap_or_default();
    let matches = !selector.is_empty() && selector.matches(&labels);
    match controller_of(object) {
        Some(controller) if controller.uid != owner_uid => Claim::Ignore,
        Some(_) if matches => Claim::Owned,
        Some(_) if owner_deleting => Claim::Ignore,
        Some(_) => Claim::Release,
        None if owner_deleting || !matches || object.deletion_timestamp.is_some() => Claim::Ignore,
        None if owner.namespace.is_some() && owner.namespace != object.namespace => Claim::Ignore,
        None => Claim::Adopt,
    }
}
// ANCHOR_END: claim

// ANCHOR: owners_of
/// A kind that owns objects it selects by label: a ReplicaSet its pods, a Deployment its ReplicaSets.
pub trait Selects: k8s_openapi::Resource + k8s_openapi::Metadata<Ty = ObjectMeta> + DeserializeOwned {
    /// Its label selector (`spec.selector`).
    fn selector(&self) -> Option<&meta::LabelSelector>;
}

impl Selects for ReplicaSet {
    fn selector(&self) -> Option<&meta::LabelSelector> {
        self.spec.as_ref().map(|spec| &spec.selector)
    }
}

impl Selects for Deployment {
    fn selector(&self) -> Option<&meta::LabelSelector> {
        self.spec.as_ref().map(|spec| &spec.selector)
    }
}

/// The keys of the owners of kind `O` that `object` matters to: its controller, if that is an `O`; if it is an
/// orphan, every `O` of its namespace that selects it, since one of them may adopt it. (A pod's ReplicaSets, a
/// ReplicaSet's Deployments: the lookup that maps a change to an owned object to the keys to reconcile.)
pub fn owners_of<O: Selects>(object: &Value, owners: &Lister) -> Vec<String> {
    let Some(Ok(object)) = object.get("metadata").map(|m| serde_json::from_value::<ObjectMeta>(m.clone())) else {
        return Vec::new();
    };
    let namespace = object.namespace.clone().unwrap_or_default();
    match controller_of(&object) {
        Some(owner) if owner.kind == O::KIND => vec![format!("{namespace}/{}", owner.name)],
        Some(_) => Vec::new(),
        None => {
            let labels = labels_of(&object);
            let selects = |owner: &O| match owner.selector().map(LabelSelector::from_wire) {
                Some(Ok(selector)) => !selector.is_empty() && selector.matches(&labels),
                _ => false,
            };
            let candidates = owners.list_in::<O>(&namespace).into_iter();
            candidates.filter(selects).map(|owner| key(owner.metadata())).collect()
        }
    }
}
// ANCHOR_END: owners_of

/// A merge patch making `reference` the controller of `object`, guarded by the object's resourceVersion.
/// (A merge patch replaces the whole list, so the object's other owners are written back as they were.)
pub fn adopt_patch(object: &ObjectMeta, reference: &OwnerReference) -> Value {
    let mut owners: Vec<OwnerReference> = object.owner_references.clone().unwrap_or_default();
    owners.retain(|r| r.uid != reference.uid);
    owners.push(reference.clone());
    owners_patch(object, owners)
}

/// A merge patch removing the owner `owner_uid` from `object`, guarded by the object's resourceVersion.
pub fn release_patch(object: &ObjectMeta, owner_uid: &str) -> Value {
    let mut owners: Vec<OwnerReference> = object.owner_references.clone().unwrap_or_default();
    owners.retain(|r| r.uid != owner_uid);
    owners_patch(object, owners)
}

fn owners_patch(object: &ObjectMeta, owners: Vec<OwnerReference>) -> Value {
    let owners = if owners.is_empty() { Value::Null } else { json!(owners) };
    json!({"metadata": {
        "resourceVersion": object.resource_version.clone().unwrap_or_default(),
        "ownerReferences": owners,
    }})
}

/// The labels of an object, empty when it has none.
pub fn labels_of(meta: &ObjectMeta) -> BTreeMap<String, String> {
    meta.labels.clone().unwrap_or_default()
}

/// `namespace/name`, the key of an object in caches and work queues.
pub fn key(meta: &ObjectMeta) -> String {
    match meta.namespace.as_deref() {
        None | Some("") => meta.name.clone().unwrap_or_default(),
        Some(namespace) => format!("{namespace}/{}", meta.name.as_deref().unwrap_or_default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(name: &str, uid: &str, labels: &[(&str, &str)], controller: Option<&str>) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            uid: Some(uid.into()),
            resource_version: Some("7".into()),
            labels: Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
            owner_references: controller.map(|uid| {
                vec![OwnerReference {
                    api_version: "apps/v1".into(),
                    kind: "ReplicaSet".into(),
                    name: "owner".into(),
                    uid: uid.into(),
                    controller: Some(true),
                    block_owner_deletion: Some(true),
                }]
            }),
            ..Default::default()
        }
    }

    #[test]
    fn orphans_that_match_are_adopted_and_owned_objects_that_stop_matching_are_released() {
        let owner = meta("web", "rs-1", &[], None);
        let selector = LabelSelector::parse("app=web").unwrap();
        let matching_orphan = meta("a", "p1", &[("app", "web")], None);
        let ours_matching = meta("b", "p2", &[("app", "web")], Some("rs-1"));
        let ours_relabelled = meta("c", "p3", &[("app", "debug")], Some("rs-1"));
        let someone_elses = meta("d", "p4", &[("app", "web")], Some("rs-2"));
        let other_orphan = meta("e", "p5", &[("app", "db")], None);
        assert_eq!(claim(&owner, &selector, &matching_orphan), Claim::Adopt);
        assert_eq!(claim(&owner, &selector, &ours_matching), Claim::Owned);
        assert_eq!(claim(&owner, &selector, &ours_relabelled), Claim::Release);
        assert_eq!(claim(&owner, &selector, &someone_elses), Claim::Ignore);
        assert_eq!(claim(&owner, &selector, &other_orphan), Claim::Ignore);
    }

    #[test]
    fn an_owner_being_deleted_neither_adopts_nor_releases() {
        let mut owner = meta("web", "rs-1", &[], None);
        owner.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
        let selector = LabelSelector::parse("app=web").unwrap();
        assert_eq!(claim(&owner, &selector, &meta("a", "p1", &[("app", "web")], None)), Claim::Ignore);
        assert_eq!(claim(&owner, &selector, &meta("c", "p3", &[("app", "x")], Some("rs-1"))), Claim::Ignore);
        assert_eq!(claim(&owner, &selector, &meta("b", "p2", &[("app", "web")], Some("rs-1"))), Claim::Owned);
    }

    #[test]
    fn adopting_and_releasing_patch_the_owner_list_under_the_objects_resource_version() {
        let pod = meta("a", "p1", &[("app", "web")], None);
        let owner = meta("web", "rs-1", &[], None);
        let patch = adopt_patch(&pod, &controller_ref("apps/v1", "ReplicaSet", &owner));
        assert_eq!(patch["metadata"]["resourceVersion"], "7");
        assert_eq!(patch["metadata"]["ownerReferences"][0]["uid"], "rs-1");
        assert_eq!(patch["metadata"]["ownerReferences"][0]["controller"], true);
        let owned = meta("a", "p1", &[("app", "x")], Some("rs-1"));
        assert_eq!(release_patch(&owned, "rs-1")["metadata"]["ownerReferences"], Value::Null);
    }
}
