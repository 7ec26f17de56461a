//! The garbage collector: objects whose owners are gone go too.
//!
//! A Deployment owns ReplicaSets, a ReplicaSet owns Pods: each dependent names its owner in
//! `metadata.ownerReferences` (kind, name and **uid**). No controller deletes what it owns when it is itself
//! deleted — it is gone, it cannot. The garbage collector does it for every kind at once, by following these
//! references. What happens to the dependents depends on the `propagationPolicy` of the delete
//! (`kubectl delete --cascade=background|foreground|orphan`):
//!
//! - **Background** (kubectl's default): the owner goes at once; its dependents now point at a uid that no longer
//!   exists, and the garbage collector deletes them — and their own dependents, in turn.
//! - **Foreground**: the apiserver keeps the owner, with a `deletionTimestamp` and the `foregroundDeletion`
//!   finalizer. The garbage collector deletes its dependents (in the foreground too, if they have dependents of
//!   their own), and removes the finalizer once no dependent with `blockOwnerDeletion: true` remains; then the
//!   apiserver deletes the owner. `kubectl get` shows the owner until the whole tree below it is gone.
//! - **Orphan**: the owner is kept with the `orphan` finalizer until the garbage collector has removed its
//!   reference from every dependent; the dependents stay, ownerless (a new owner may adopt them later).
//!
//! The shape is that of every controller here ([`crate::controller`]):
//!
//! - **observe**: informers follow every kind kubelab serves (but Events, see `new` in `impl Controller for GarbageCollector`). A
//!   change to an object puts on the work queue the uid of the object and the uids of its owners: a deleted
//!   owner's uid comes back as the key whose dependents must be looked at, and a deleted dependent's owners may
//!   now finish a foreground deletion. Each key is observed as the whole ownership graph built from the caches
//!   ([`graph`]);
//! - **reconcile**: [`reconcile::reconcile_key`], a pure function of the key and the graph;
//! - **apply**: every write re-reads the object first and is conditional on its `resourceVersion`, and every
//!   owner believed gone is confirmed gone with a live `GET` before anything is deleted on its account.
//!
//! Mirrors `pkg/controller/garbagecollector`. What we leave out: Kubernetes keeps the graph in memory, updated
//! event by event, and can follow any resource discovered at runtime (custom resources); we rebuild the graph
//! from the caches for each key (cheap at kubelab's scale) over the fixed table of kinds. Also left out: the
//! detection of foreground cycles (`unblockOwnerReferences`), the absent-owner cache, and metrics.

pub mod graph;
pub mod reconcile;

use crate::Config;
use crate::controller::{self, Controller, Error, Lister, Outcomes, Reconciled, Source, Writes, Written};
use graph::{Graph, ObjectRef};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::jiff::Timestamp;
use kubelab_api::client::{Client, ClientError};
use kubelab_api::events::{EventType, Recorder};
use kubelab_api::resources::{self, RESOURCES, Resource};
use kubelab_api::{ApiError, object};
use reconcile::Action;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::Mutex;

/// The garbage collector's state: a client, a recorder, and one cache per kind.
pub struct GarbageCollector {
    client: Client,
    recorder: Recorder,
    listers: Vec<(&'static Resource, Lister)>,
    /// Warnings already recorded, as (object uid, message): a bad ownerReference is reported once, not on every
    /// pass over the object.
    warned: Mutex<HashSet<(String, String)>>,
}

/// What one key is observed as: the key (a uid), and the whole graph around it.
pub struct Observed {
    pub uid: String,
    pub graph: Graph,
}

impl GarbageCollector {
    fn lister_of(&self, object: &ObjectRef) -> Option<(&'static Resource, &Lister)> {
        self.listers
            .iter()
            .find(|(r, _)| r.kind == object.kind && r.api_version() == object.api_version)
            .map(|(r, lister)| (*r, lister))
    }

    /// Reads the object as it is now; `None` if it is gone or is no longer the object we decided about.
    async fn latest(&self, object: &ObjectRef) -> Result<Option<(&'static Resource, Value)>, Error> {
        let Some((resource, _)) = self.lister_of(object) else { return Ok(None) };
        let namespace = Some(object.namespace.as_str()).filter(|ns| !ns.is_empty());
        match self.client.get(resource, namespace, &object.name).await {
            Ok(latest) if object::meta_str(&latest, "uid") == object.uid => Ok(Some((resource, latest))),
            Ok(_) | Err(ClientError::Api(ApiError { code: 404, .. })) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    // ANCHOR: is_gone
    /// Whether an owner is really gone, asked of the apiserver (Kubernetes' `isDangling`): not found, or found
    /// with another uid (deleted and created again under the same name).
    async fn is_gone(&self, dependent: &ObjectRef, owner: &OwnerReference) -> Result<bool, Error> {
        let Some(resource) = resources::by_kind(&owner.api_version, &owner.kind) else { return Ok(false) };
        let namespace = Some(dependent.namespace.as_str()).filter(|ns| resource.namespaced && !ns.is_empty());
        match self.client.get(resource, namespace, &owner.name).await {
            Ok(found) => Ok(object::meta_str(&found, "uid") != owner.uid),
            Err(ClientError::Api(ApiError { code: 404, .. })) => Ok(true),
            Err(err) => Err(err.into()),
        }
    }
    // ANCHOR_END: is_gone

    /// Applies one action; returns the write to wait for in the caches, if any.
    async fn apply_one(&self, graph: &Graph, action: Action) -> Result<Option<(&'static Resource, Written)>, Error> {
        match action {
            Action::Delete { object, policy, absent_owners } => {
                for owner in &absent_owners {
                    if !self.is_gone(&object, owner).await? {
                        // The cache had not seen the owner yet: nothing to collect. Its arrival in the cache
                        // brings this object back to the queue.
                        tracing::debug!(%object, owner = %owner.name, "owner still exists, not collecting");
                        return Ok(None);
                    }
                }
                let Some((resource, latest)) = self.latest(&object).await? else { return Ok(None) };
                let mut judged: Vec<String> =
                    graph.get(&object.uid).into_iter().flat_map(|i| &i.owners).map(|o| o.uid.clone()).collect();
                judged.sort();
                if owner_uids(&latest) != judged {
                    // Its owners changed since we looked (adopted, say): decide again on the new state.
                    return Ok(None);
                }
                tracing::info!(%object, ?policy, "deleting an object whose owners are gone");
                let namespace = Some(object.namespace.as_str()).filter(|ns| !ns.is_empty());
                match self.client.delete(resource, namespace, &object.name, policy).await {
                    Ok(_) | Err(ClientError::Api(ApiError { code: 404, .. })) => {}
                    Err(err) => return Err(err.into()),
                }
                Ok(Some((resource, Written::Deleted { key: controller::key_of(&latest) })))
            }
            Action::RemoveOwnerReferences { object, owner_uids: uids } => {
                let Some((resource, latest)) = self.latest(&object).await? else { return Ok(None) };
                let references = latest.pointer("/metadata/ownerReferences").and_then(Value::as_array);
                let kept: Vec<Value> = references
                    .into_iter()
                    .flatten()
                    .filter(|r| r.get("uid").and_then(Value::as_str).is_none_or(|uid| !uids.iter().any(|u| u == uid)))
                    .cloned()
                    .collect();
                let kept = if kept.is_empty() { Value::Null } else { Value::Array(kept) };
                self.patch_metadata(resource, &latest, json!({"ownerReferences": kept})).await
            }
            Action::RemoveFinalizer { object, finalizer } => {
                let Some((resource, latest)) = self.latest(&object).await? else { return Ok(None) };
                let kept: Vec<String> = object::finalizers(&latest).into_iter().filter(|f| f != finalizer).collect();
                tracing::info!(%object, finalizer, "removing the garbage collector's finalizer");
                let kept = if kept.is_empty() { Value::Null } else { json!(kept) };
                self.patch_metadata(resource, &latest, json!({"finalizers": kept})).await
            }
            Action::Warn { object, reason, message } => {
                let first_time = self
                    .warned
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .insert((object.uid.clone(), message.clone()));
                if first_time {
                    self.recorder.record(&object.as_value(), EventType::Warning, reason, message).await;
                }
                Ok(None)
            }
        }
    }

    // ANCHOR: patch_metadata
    /// A JSON merge patch of `metadata` carrying the `resourceVersion` we read: if the object changed since,
    /// the apiserver answers `409 Conflict` and the key is retried on fresh data.
    async fn patch_metadata(
        &self,
        resource: &'static Resource,
        latest: &Value,
        metadata: Value,
    ) -> Result<Option<(&'static Resource, Written)>, Error> {
        let mut patch = json!({"metadata": metadata});
        patch["metadata"]["resourceVersion"] = json!(object::resource_version(latest));
        let namespace = Some(object::namespace(latest)).filter(|ns| !ns.is_empty());
        let name = object::name(latest);
        let patched = controller::patch_unless_changed(&self.client, resource, namespace, name, &patch).await?;
        Ok(patched.map(|written| (resource, written)))
    }
    // ANCHOR_END: patch_metadata
}

/// The owner uids of an object held as JSON.
fn owner_uids(object: &Value) -> Vec<String> {
    let references = object.pointer("/metadata/ownerReferences").and_then(Value::as_array);
    let mut uids: Vec<String> = references
        .into_iter()
        .flatten()
        .filter_map(|r| r.get("uid").and_then(Value::as_str))
        .map(String::from)
        .collect();
    uids.sort();
    uids
}

/// The keys an object's change concerns: its own uid, and its owners' (one of them may be waiting for it to go).
fn uids_concerned(object: &Value) -> Vec<String> {
    let uid = object::meta_str(object, "uid");
    let mut keys: Vec<String> = if uid.is_empty() { Vec::new() } else { vec![uid.to_string()] };
    keys.extend(owner_uids(object));
    keys
}

impl Controller for GarbageCollector {
    type Observed = Observed;
    type Action = Action;

    /// One informer per kind kubelab serves but Events. Events are by far the most numerous objects and never
    /// carry ownerReferences in practice (Kubernetes' garbage collector watches them anyway; they expire after an
    /// hour instead); leaving them out keeps each graph small. Nothing in `config` concerns it but its workers.
    fn new(client: &Client, _config: &Config) -> Result<(Self, Vec<Source>), Error> {
        let mut sources = Vec::new();
        let mut listers = Vec::new();
        for resource in RESOURCES.iter().filter(|r| r.kind != "Event") {
            let (source, lister) = Source::new(client, resource, uids_concerned);
            sources.push(source);
            listers.push((resource, lister));
        }
        let collector = GarbageCollector {
            client: client.clone(),
            recorder: Recorder::new(client.clone(), "garbage-collector-controller"),
            listers,
            warned: Mutex::default(),
        };
        Ok((collector, sources))
    }

    /// `--concurrent-gc-syncs`: 20.
    fn workers(config: &Config) -> usize {
        config.garbage_collector_workers
    }

    fn name(&self) -> &'static str {
        "garbage-collector-controller"
    }

    fn observe(&self, key: &str) -> Option<Observed> {
        let objects: Vec<Value> = self.listers.iter().flat_map(|(_, lister)| lister.list_values()).collect();
        Some(Observed { uid: key.to_string(), graph: Graph::from_objects(&objects) })
    }

    fn reconcile(&self, observed: &Observed, _now: Timestamp) -> Reconciled<Action> {
        Reconciled { actions: reconcile::reconcile_key(&observed.uid, &observed.graph), requeue_after: None }
    }

    async fn apply(&self, observed: &Observed, actions: Vec<Action>, writes: &mut Writes) -> Result<(), Error> {
        let mut outcomes = Outcomes::default();
        for action in actions {
            let written = outcomes.record(self.apply_one(&observed.graph, action).await).flatten();
            if let Some((resource, written)) = written
                && let Some((_, lister)) = self.listers.iter().find(|(r, _)| *r == resource)
            {
                writes.push(lister, written);
            }
        }
        outcomes.finish()
    }
}
