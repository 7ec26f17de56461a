//! The namespace controller: deleting a namespace deletes everything in it.
//!
//! `kubectl delete namespace shop` does not delete anything at first. The apiserver marks the Namespace with a
//! `deletionTimestamp`, sets its phase to `Terminating`, refuses new objects in it — and keeps it, because its
//! `spec.finalizers` holds `kubernetes`: the token of this controller, which owes the namespace a cleanup:
//!
//! 1. **observe** the namespace and, from the informers' caches, every namespaced object in it, of every kind
//!    kubelab serves (Pods, ReplicaSets, Deployments, Services, ConfigMaps, Endpoints, Events, Leases);
//! 2. **reconcile**: delete every object not already being deleted; report what remains in the namespace's
//!    conditions (`kubectl describe ns` shows them); once nothing remains, take `kubernetes` out of
//!    `spec.finalizers`;
//! 3. **apply**: the deletes (background propagation, so the garbage collector follows ownerReferences as
//!    usual), the status, and the finalization — which the apiserver answers by removing the Namespace.
//!
//! Objects do not all vanish at once. A Pod bound to a node waits for its kubelet to stop its containers
//! (its grace period, 30 s by default); a Deployment deleted in the foreground waits for its ReplicaSets. Each
//! change to the content brings the namespace back to the work queue, and a timer does too (half the longest
//! remaining grace period, plus a second), so the controller sees the namespace empty soon after it is.
//!
//! Before finalizing, the shell lists the namespace's content from the apiserver itself, not from the caches:
//! an object created a moment before the deletion and not yet in a cache would otherwise outlive its namespace.
//!
//! Real Kubernetes removes the finalizer through the `namespaces/<name>/finalize` subresource, whose only power
//! is to change `spec.finalizers`; kubelab's apiserver accepts the change through a plain update of the
//! Namespace (`PUT /api/v1/namespaces/<name>`), which is what we send.
//!
//! What we leave out: API discovery (kubelab's kinds are a static table, so the `NamespaceDeletionDiscoveryFailure`
//! and `...GroupVersionParsingFailure` conditions cannot happen), the `NamespaceDeletionContentFailure` condition
//! (failed deletes are logged and retried), `deletecollection` (we delete object by object), and the periodic
//! resync (`--namespace-sync-period`, 5 min).

use crate::Config;
use crate::controller::{self, Controller, Error, Lister, Outcomes, Reconciled, Source, Writes, Written};
use k8s_openapi::api::core::v1::{Namespace, NamespaceCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kubelab_api::client::{Client, ClientError, ListParams, PatchType, PropagationPolicy, resource_of};
use kubelab_api::resources::{RESOURCES, Resource};
use kubelab_api::{ApiError, object};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

/// This controller's token in `spec.finalizers`.
pub const FINALIZER: &str = "kubernetes";

// ANCHOR: timings
/// When to look at a terminating namespace again, even if nothing changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NamespaceTimings {
    /// Added to half the longest remaining grace period: 1 s, as Kubernetes' `estimate/2 + 1`.
    pub recheck: Duration,
}

impl Default for NamespaceTimings {
    fn default() -> Self {
        NamespaceTimings { recheck: Duration::from_secs(1) }
    }
}
// ANCHOR_END: timings

/// One object still in a terminating namespace.
#[derive(Debug, Clone, PartialEq)]
pub struct Content {
    pub resource: &'static Resource,
    pub name: String,
    /// Someone's finalizers hold it (`foregroundDeletion` while the garbage collector deletes its dependents).
    pub finalizers: Vec<String>,
    /// Already marked for deletion: only waiting (for a kubelet, a finalizer).
    pub deleting: bool,
    /// For a terminating Pod, when its grace period ends.
    pub grace_ends: Option<Timestamp>,
}

impl Content {
    /// Reads an object of `resource` from a cache.
    pub fn from_object(resource: &'static Resource, object: &Value) -> Content {
        let deletion = object.pointer("/metadata/deletionTimestamp").and_then(Value::as_str);
        Content {
            resource,
            name: object::name(object).to_string(),
            finalizers: object::finalizers(object),
            deleting: deletion.is_some(),
            grace_ends: deletion.and_then(|t| t.parse().ok()),
        }
    }
}

/// What the controller observed about one terminating namespace.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub namespace: Namespace,
    pub content: Vec<Content>,
}

/// One step of emptying a namespace.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Delete one object of the namespace.
    Delete { resource: &'static Resource, name: String },
    /// Write these conditions to the namespace's status.
    SetConditions(Vec<NamespaceCondition>),
    /// The namespace is empty: write `spec.finalizers` without `kubernetes`.
    Finalize { finalizers: Vec<String> },
}

// ANCHOR: reconcile
/// Decides the next step for a terminating namespace.
pub fn reconcile(observed: &Observed, now: Timestamp, timings: &NamespaceTimings) -> Reconciled<Action> {
    let namespace = &observed.namespace;
    let spec_finalizers = namespace.spec.as_ref().and_then(|s| s.finalizers.clone()).unwrap_or_default();
    if namespace.metadata.deletion_timestamp.is_none() || !spec_finalizers.iter().any(|f| f == FINALIZER) {
        return Reconciled::nothing();
    }
    let mut decided = Reconciled::nothing();
    if observed.content.is_empty() {
        let finalizers = spec_finalizers.into_iter().filter(|f| f != FINALIZER).collect();
        decided.actions.push(Action::Finalize { finalizers });
        return decided;
    }
    for item in observed.content.iter().filter(|c| !c.deleting) {
        decided.actions.push(Action::Delete { resource: item.resource, name: item.name.clone() });
    }
    let current = namespace.status.as_ref().and_then(|s| s.conditions.clone()).unwrap_or_default();
    if let Some(conditions) = conditions(&current, &observed.content, now) {
        decided.actions.push(Action::SetConditions(conditions));
    }
    // Kubernetes waits half the longest remaining grace period, plus a second, before it checks again.
    let longest_grace = observed
        .content
        .iter()
        .filter_map(|c| c.grace_ends)
        .map(|ends| Duration::try_from(ends.duration_since(now)).unwrap_or(Duration::ZERO))
        .max()
        .unwrap_or(Duration::ZERO);
    decided.requeue_within(longest_grace / 2 + timings.recheck);
    decided
}
// ANCHOR_END: reconcile

/// The namespace's conditions saying what remains (`None` when they already say it), worded as Kubernetes'
/// `namespaceConditionUpdater`: `Some resources are remaining: pods. has 2 resource instances`.
fn conditions(current: &[NamespaceCondition], content: &[Content], now: Timestamp) -> Option<Vec<NamespaceCondition>> {
    let mut per_resource: BTreeMap<String, usize> = BTreeMap::new();
    let mut per_finalizer: BTreeMap<&str, usize> = BTreeMap::new();
    for item in content {
        *per_resource.entry(format!("{}.{}", item.resource.plural, item.resource.group)).or_default() += 1;
        for finalizer in &item.finalizers {
            *per_finalizer.entry(finalizer).or_default() += 1;
        }
    }
    let remaining: Vec<String> =
        per_resource.iter().map(|(resource, n)| format!("{resource} has {n} resource instances")).collect();
    let finalizing: Vec<String> =
        per_finalizer.iter().map(|(finalizer, n)| format!("{finalizer} in {n} resource instances")).collect();
    let wanted = [
        match remaining.is_empty() {
            true => ("NamespaceContentRemaining", "False", "ContentRemoved", "All content successfully removed".into()),
            false => (
                "NamespaceContentRemaining",
                "True",
                "SomeResourcesRemain",
                format!("Some resources are remaining: {}", remaining.join(", ")),
            ),
        },
        match finalizing.is_empty() {
            true => (
                "NamespaceFinalizersRemaining",
                "False",
                "ContentHasNoFinalizers",
                "All content-preserving finalizers finished".into(),
            ),
            false => (
                "NamespaceFinalizersRemaining",
                "True",
                "SomeFinalizersRemain",
                format!("Some content in the namespace has finalizers remaining: {}", finalizing.join(", ")),
            ),
        },
    ];
    let mut conditions = current.to_vec();
    let mut changed = false;
    for (type_, status, reason, message) in wanted {
        let existing = conditions.iter_mut().find(|c| c.type_ == type_);
        match existing {
            Some(c)
                if c.status == status
                    && c.reason.as_deref() == Some(reason)
                    && c.message.as_ref() == Some(&message) => {}
            Some(c) => {
                if c.status != status {
                    c.last_transition_time = Some(Time(now));
                }
                (c.status, c.reason, c.message) = (status.into(), Some(reason.into()), Some(message));
                changed = true;
            }
            None => {
                conditions.push(NamespaceCondition {
                    type_: type_.into(),
                    status: status.into(),
                    reason: Some(reason.into()),
                    message: Some(message),
                    last_transition_time: Some(Time(now)),
                });
                changed = true;
            }
        }
    }
    changed.then_some(conditions)
}

/// The namespace controller: its client, and what it reads.
pub struct NamespaceController {
    client: Client,
    namespaces: Lister,
    /// One lister per namespaced kind: the content of every namespace.
    content: Vec<(&'static Resource, Lister)>,
    timings: NamespaceTimings,
}

impl NamespaceController {
    /// Whether the apiserver itself still has objects in `namespace` (the caches may lag behind it).
    async fn still_has_content(&self, namespace: &str) -> Result<bool, ClientError> {
        for (resource, _) in &self.content {
            let list = self.client.list(resource, Some(namespace), &ListParams::default()).await?;
            if !list.items.is_empty() {
                tracing::debug!(namespace, kind = resource.kind, "content the cache had not shown yet");
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn lister_of(&self, resource: &Resource) -> Option<&Lister> {
        self.content.iter().find(|(r, _)| *r == resource).map(|(_, lister)| lister)
    }
}

impl Controller for NamespaceController {
    type Observed = Observed;
    type Action = Action;

    /// The informers it reads: Namespaces, and every namespaced kind, each change of which brings its namespace
    /// back to the queue.
    fn new(client: &Client, config: &Config) -> Result<(Self, Vec<Source>), Error> {
        let (source, namespaces) =
            Source::new(client, resource_of::<Namespace>()?, |ns| vec![object::name(ns).to_string()]);
        let mut sources = vec![source];
        let mut content = Vec::new();
        for resource in RESOURCES.iter().filter(|r| r.namespaced) {
            let (source, lister) = Source::new(client, resource, |o| vec![object::namespace(o).to_string()]);
            sources.push(source);
            content.push((resource, lister));
        }
        let controller = NamespaceController { client: client.clone(), namespaces, content, timings: config.namespace };
        Ok((controller, sources))
    }

    /// `--concurrent-namespace-syncs`: 10.
    fn workers(config: &Config) -> usize {
        config.namespace_workers
    }

    fn name(&self) -> &'static str {
        "namespace-controller"
    }

    fn observe(&self, key: &str) -> Option<Observed> {
        let namespace: Namespace = self.namespaces.get(key)?;
        // Only a namespace being deleted needs anything; the others are skipped without reading their content.
        namespace.metadata.deletion_timestamp.as_ref()?;
        let content = self
            .content
            .iter()
            .flat_map(|(resource, lister)| {
                lister
                    .list_values()
                    .into_iter()
                    .filter(|o| object::namespace(o) == key)
                    .map(|o| Content::from_object(resource, &o))
            })
            .collect();
        Some(Observed { namespace, content })
    }

    fn reconcile(&self, observed: &Observed, now: Timestamp) -> Reconciled<Action> {
        reconcile(observed, now, &self.timings)
    }

    async fn apply(&self, observed: &Observed, actions: Vec<Action>, writes: &mut Writes) -> Result<(), Error> {
        let name = observed.namespace.metadata.name.clone().unwrap_or_default();
        let version = observed.namespace.metadata.resource_version.clone().unwrap_or_default();
        let namespaces = resource_of::<Namespace>()?;
        let mut outcomes = Outcomes::default();
        for action in actions {
            match action {
                Action::Delete { resource, name: object_name } => {
                    let deleted = match self
                        .client
                        .delete(resource, Some(&name), &object_name, PropagationPolicy::Background)
                        .await
                    {
                        Err(ClientError::Api(ApiError { code: 404, .. })) => Ok(()),
                        other => other.map(|_| ()).map_err(Error::from),
                    };
                    if outcomes.record(deleted).is_some()
                        && let Some(lister) = self.lister_of(resource)
                    {
                        writes.push(lister, Written::Deleted { key: format!("{name}/{object_name}") });
                    }
                }
                Action::SetConditions(conditions) => {
                    let patch = json!({"metadata": {"resourceVersion": version}, "status": {"conditions": conditions}});
                    let patched = self.client.patch_status(namespaces, None, &name, PatchType::Merge, &patch).await;
                    outcomes.record(patched.map_err(Error::from));
                }
                Action::Finalize { finalizers } => {
                    if outcomes.failed() || self.still_has_content(&name).await? {
                        continue;
                    }
                    let mut namespace = observed.namespace.clone();
                    namespace.spec.get_or_insert_with(Default::default).finalizers = Some(finalizers);
                    let body = controller::to_json(&namespace, || format!("namespace {name}"))?;
                    let finalized = self.client.replace(namespaces, None, &name, &body).await;
                    if outcomes.record(finalized.map_err(Error::from)).is_some() {
                        tracing::info!(namespace = %name, "namespace emptied and finalized");
                        writes.push(&self.namespaces, Written::Deleted { key: name.clone() });
                    }
                }
            }
        }
        outcomes.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + second).unwrap()
    }

    fn terminating(finalizers: &[&str]) -> Namespace {
        serde_json::from_value(json!({"metadata": {"name": "shop", "deletionTimestamp": "2027-01-15T08:00:00Z"},
            "spec": {"finalizers": finalizers}, "status": {"phase": "Terminating"}}))
        .unwrap()
    }

    fn item(kind: &str, name: &str, deleting: bool, finalizers: &[&str]) -> Content {
        let resource = RESOURCES.iter().find(|r| r.kind == kind).unwrap();
        let finalizers = finalizers.iter().map(|f| f.to_string()).collect();
        Content { resource, name: name.into(), finalizers, deleting, grace_ends: None }
    }

    fn observed(namespace: Namespace, content: Vec<Content>) -> Observed {
        Observed { namespace, content }
    }

    #[test]
    fn a_namespace_that_is_not_being_deleted_is_left_alone() {
        let mut active = terminating(&[FINALIZER]);
        active.metadata.deletion_timestamp = None;
        let content = vec![item("Pod", "web", false, &[])];
        assert_eq!(reconcile(&observed(active, content), at(0), &NamespaceTimings::default()), Reconciled::nothing());
    }

    #[test]
    fn every_object_not_yet_deleting_is_deleted_and_the_remainder_reported() {
        let content = vec![
            item("Pod", "web-1", true, &[]),
            item("Pod", "web-2", false, &[]),
            item("Deployment", "web", true, &["foregroundDeletion"]),
        ];
        let decided = reconcile(&observed(terminating(&[FINALIZER]), content), at(0), &NamespaceTimings::default());
        let Action::Delete { resource, name } = &decided.actions[0] else { panic!("{decided:?}") };
        assert_eq!((resource.kind, name.as_str()), ("Pod", "web-2"));
        let Action::SetConditions(conditions) = &decided.actions[1] else { panic!("{decided:?}") };
        assert_eq!(
            conditions[0].message.as_deref(),
            Some(
                "Some resources are remaining: deployments.apps has 1 resource instances, \
                 pods. has 2 resource instances"
            )
        );
        assert_eq!(
            conditions[1].message.as_deref(),
            Some("Some content in the namespace has finalizers remaining: foregroundDeletion in 1 resource instances")
        );
        assert_eq!(decided.actions.len(), 2);
        assert_eq!(decided.requeue_after, Some(Duration::from_secs(1)));
    }

    #[test]
    fn terminating_pods_bring_the_namespace_back_after_half_their_remaining_grace() {
        let mut pod = item("Pod", "web", true, &[]);
        pod.grace_ends = Some(at(30));
        let decided = reconcile(&observed(terminating(&[FINALIZER]), vec![pod]), at(0), &NamespaceTimings::default());
        assert_eq!(decided.requeue_after, Some(Duration::from_secs(16)));
    }

    #[test]
    fn conditions_already_saying_what_remains_are_not_rewritten() {
        let content = vec![item("ConfigMap", "settings", false, &[])];
        let first = conditions(&[], &content, at(0)).unwrap();
        assert_eq!(conditions(&first, &content, at(5)), None);
        let emptied = conditions(&first, &[], at(9)).unwrap();
        assert_eq!(emptied[0].reason.as_deref(), Some("ContentRemoved"));
        assert_eq!(emptied[0].last_transition_time, Some(Time(at(9))));
        assert_eq!(emptied[1].last_transition_time, Some(Time(at(0))), "it did not change status");
    }

    #[test]
    fn an_empty_namespace_loses_only_our_finalizer() {
        let decided = reconcile(
            &observed(terminating(&["example.com/audit", FINALIZER]), vec![]),
            at(0),
            &NamespaceTimings::default(),
        );
        assert_eq!(decided.actions, [Action::Finalize { finalizers: vec!["example.com/audit".into()] }]);
    }

    #[test]
    fn the_namespace_controller_runs_with_the_configured_cache_timeout_and_workers() {
        // It used to wait a fixed 5 s for its caches; the wait is now the framework's, with these settings.
        let config = Config { cache_timeout: Duration::from_millis(1500), namespace_workers: 3, ..Config::default() };
        let settings = config.settings_for::<NamespaceController>();
        assert_eq!((settings.cache_timeout, settings.workers), (Duration::from_millis(1500), 3));
    }

    #[test]
    fn a_namespace_already_finalized_by_us_needs_nothing() {
        let decided =
            reconcile(&observed(terminating(&["example.com/audit"]), vec![]), at(0), &NamespaceTimings::default());
        assert!(decided.actions.is_empty());
    }
}
