//! The ReplicaSet controller: keeps `spec.replicas` pods running from a pod template.
//!
//! It is the smallest complete controller, and the one to read first:
//!
//! - **watches** ReplicaSets (the primary objects) and pods (a pod change is mapped to its controlling
//!   ReplicaSet, or for an orphan to every ReplicaSet of the namespace whose selector matches it);
//! - **decides** with [`reconcile::reconcile`], a pure function of a ReplicaSet, its namespace's pods and the
//!   time: which pods to adopt or release, how many to create, which to delete, and the status;
//! - **writes** pods (created from the template with `generateName: <rs>-` and an ownerReference to the
//!   ReplicaSet; deleted; patched to adopt or release), the ReplicaSet's status through the `status`
//!   subresource, and the events `SuccessfulCreate`, `SuccessfulDelete`, `FailedCreate`, `FailedDelete`.
//!
//! Creations go out in *slow-start* batches of 1, 2, 4, 8... pods, stopping at the first batch with a failure:
//! a ReplicaSet of 500 pods in a namespace whose quota allows 10 makes 11 failed requests, not 490.
//!
//! Mirrors `pkg/controller/replicaset/replica_set.go`. What we leave out: expectations (the shell waits for the
//! cache instead, see [`crate::controller`]), the ranking of pods by how crowded their node is, and
//! ReplicationControllers (the ReplicaSet's older sibling).

pub mod pods;
pub mod reconcile;

use crate::Config;
use crate::controller::ownership::{self, controller_of};
use crate::controller::{self, Controller, Error, Lister, Outcomes, Reconciled, Settings, Source, Written, to_json};
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetCondition, ReplicaSetStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kubelab_api::client::{Client, ClientError, PatchParams, PatchType, PropagationPolicy, resource_of};
use kubelab_api::events::{EventType, Recorder};
use kubelab_api::selectors::LabelSelector;
use reconcile::Action;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// The ReplicaSet controller's state: a client, an event recorder and two caches.
pub struct ReplicaSetController {
    client: Client,
    recorder: Recorder,
    replica_sets: Lister,
    pods: Lister,
    /// Create pods in batches of 1, 2, 4... (Kubernetes always does; configurable here to show the difference).
    slow_start: bool,
    /// How long to wait for the pod cache to show our own writes.
    cache_timeout: Duration,
}

/// What one reconcile looks at: the ReplicaSet and every pod of its namespace.
pub struct Observed {
    pub replica_set: ReplicaSet,
    pub pods: Vec<Pod>,
}

/// Runs the ReplicaSet controller until the task is aborted.
pub async fn run(client: Client, config: Config) -> Result<(), Error> {
    let (controller, sources) = ReplicaSetController::new(&client, &config)?;
    let settings = Settings { workers: config.replicaset_workers, ..config.settings() };
    controller::run(Arc::new(controller), sources, settings).await;
    Ok(())
}

impl ReplicaSetController {
    /// The controller and the two informers that feed it.
    pub fn new(client: &Client, config: &Config) -> Result<(Self, Vec<Source>), Error> {
        let (rs_resource, pod_resource) = (resource_of::<ReplicaSet>()?, resource_of::<Pod>()?);
        let (rs_source, replica_sets) = Source::new(client, rs_resource, |rs| vec![controller::key_of(rs)]);
        let by_selector = replica_sets.clone();
        let (pod_source, pods) = Source::new(client, pod_resource, move |pod| replica_sets_of(pod, &by_selector));
        let controller = ReplicaSetController {
            client: client.clone(),
            recorder: Recorder::new(client.clone(), "replicaset-controller"),
            replica_sets,
            pods,
            slow_start: config.slow_start,
            cache_timeout: config.cache_timeout,
        };
        Ok((controller, vec![rs_source, pod_source]))
    }
}

/// The keys of the ReplicaSets a pod matters to: its controller if it is a ReplicaSet; if it is an orphan, every
/// ReplicaSet of its namespace that selects it (one of them may adopt it).
pub fn replica_sets_of(pod: &Value, replica_sets: &Lister) -> Vec<String> {
    let Ok(pod) = serde_json::from_value::<Pod>(pod.clone()) else { return Vec::new() };
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    match controller_of(&pod.metadata) {
        Some(owner) if owner.kind == "ReplicaSet" => vec![format!("{namespace}/{}", owner.name)],
        Some(_) => Vec::new(),
        None => {
            let labels = ownership::labels_of(&pod.metadata);
            replica_sets
                .list_in::<ReplicaSet>(&namespace)
                .into_iter()
                .filter(|rs| {
                    let selector = rs.spec.as_ref().map(|s| LabelSelector::from_wire(&s.selector));
                    matches!(selector, Some(Ok(s)) if !s.is_empty() && s.matches(&labels))
                })
                .map(|rs| ownership::key(&rs.metadata))
                .collect()
        }
    }
}

impl Controller for ReplicaSetController {
    type Observed = Observed;
    type Action = Action;

    fn name(&self) -> &'static str {
        "replicaset-controller"
    }

    fn observe(&self, key: &str) -> Option<Observed> {
        let replica_set: ReplicaSet = self.replica_sets.get(key)?;
        let pods = self.pods.list_in(replica_set.metadata.namespace.as_deref().unwrap_or_default());
        Some(Observed { replica_set, pods })
    }

    fn reconcile(&self, observed: &Observed, now: Timestamp) -> Reconciled<Action> {
        reconcile::reconcile(&observed.replica_set, &observed.pods, now)
    }

    // ANCHOR: apply
    async fn apply(&self, observed: &Observed, actions: Vec<Action>) -> Result<(), Error> {
        let rs = &observed.replica_set;
        let mut outcomes = Outcomes::default();
        let mut pod_writes = Vec::new();
        let mut rs_writes = Vec::new();
        // Why creating or deleting pods failed, for the ReplicaFailure condition.
        let mut failure: Option<(&str, String)> = None;
        let mut status_written = false;
        for action in actions {
            match action {
                Action::Adopt { pod, patch } | Action::Release { pod, patch } => {
                    let result = self.patch_pod(rs, &pod, &patch).await;
                    pod_writes.extend(outcomes.record(result).flatten());
                }
                Action::CreatePods { count, pod } => {
                    let (created, error) = self.create_pods(rs, &pod, count).await;
                    pod_writes.extend(created);
                    if let Some(err) = error {
                        failure = Some(("FailedCreate", err.to_string()));
                        outcomes.record::<()>(Err(err));
                    }
                }
                Action::DeletePods(names) => {
                    let (deleted, error) = self.delete_pods(rs, &names).await;
                    pod_writes.extend(deleted);
                    if let Some(err) = error {
                        failure = Some(("FailedDelete", err.to_string()));
                        outcomes.record::<()>(Err(err));
                    }
                }
                Action::UpdateStatus(status) => {
                    let status = with_failure(*status, rs, failure.as_ref());
                    rs_writes.extend(outcomes.record(self.write_status(rs, status).await));
                    status_written = true;
                }
            }
        }
        if let (Some(failure), false) = (&failure, status_written) {
            // The status had not changed, but now it must say that pods could not be created or deleted.
            let status = with_failure(rs.status.clone().unwrap_or_default(), rs, Some(failure));
            if Some(&status) != rs.status.as_ref() {
                rs_writes.extend(outcomes.record(self.write_status(rs, status).await));
            }
        }
        // Read our own writes before the next reconcile of this ReplicaSet.
        let caught_up = self.pods.wait_for(&pod_writes, self.cache_timeout).await
            && self.replica_sets.wait_for(&rs_writes, self.cache_timeout).await;
        if !caught_up {
            tracing::warn!(replicaset = %ownership::key(&rs.metadata), "the cache did not catch up with our writes");
        }
        outcomes.finish()
    }
    // ANCHOR_END: apply
}

impl ReplicaSetController {
    /// Adopts or releases a pod. A pod that is gone needs neither.
    async fn patch_pod(&self, rs: &ReplicaSet, pod: &str, patch: &Value) -> Result<Option<Written>, Error> {
        let namespace = rs.metadata.namespace.as_deref();
        let from = patch.pointer("/metadata/resourceVersion").and_then(Value::as_str).unwrap_or_default();
        let resource = resource_of::<Pod>()?;
        let params = PatchParams::default();
        match self.client.patch(resource, namespace, pod, PatchType::Merge, patch, &params).await {
            Ok(patched) => Ok(Some(Written::Updated {
                key: controller::key_of(&patched),
                from: from.to_string(),
                to: kubelab_api::object::resource_version(&patched).to_string(),
            })),
            Err(ClientError::Api(err)) if err.code == 404 => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    // ANCHOR: slow_start
    /// Creates `count` pods like `pod`, in batches of 1, 2, 4... (all at once without slow start), stopping after
    /// the first batch in which a creation fails. Returns what was created and the first error.
    async fn create_pods(&self, rs: &ReplicaSet, pod: &Pod, count: usize) -> (Vec<Written>, Option<Error>) {
        let about = to_json(rs, || "ReplicaSet".into()).unwrap_or_default();
        let mut created = Vec::new();
        let mut remaining = count;
        let mut batch = if self.slow_start { 1 } else { count };
        while remaining > 0 {
            let size = batch.min(remaining);
            let results = futures::future::join_all((0..size).map(|_| self.create_pod(rs, pod))).await;
            let mut first_error = None;
            for result in results {
                match result {
                    Ok(written) => created.push(written),
                    Err(err) => {
                        let message = format!("Error creating: {err}");
                        self.recorder.record(&about, EventType::Warning, "FailedCreate", message).await;
                        first_error.get_or_insert(err);
                    }
                }
            }
            if first_error.is_some() {
                return (created, first_error);
            }
            remaining -= size;
            batch = batch.saturating_mul(2);
        }
        (created, None)
    }
    // ANCHOR_END: slow_start

    async fn create_pod(&self, rs: &ReplicaSet, pod: &Pod) -> Result<Written, Error> {
        let namespace = rs.metadata.namespace.as_deref();
        let body = to_json(pod, || format!("a pod for ReplicaSet {}", ownership::key(&rs.metadata)))?;
        let at = Instant::now();
        let created = self.client.create(resource_of::<Pod>()?, namespace, &body).await?;
        let about = to_json(rs, || "ReplicaSet".into())?;
        let message = format!("Created pod: {}", kubelab_api::object::name(&created));
        self.recorder.record(&about, EventType::Normal, "SuccessfulCreate", message).await;
        Ok(Written::Created { key: controller::key_of(&created), at })
    }

    /// Deletes pods, all at once. A pod already gone counts as deleted.
    async fn delete_pods(&self, rs: &ReplicaSet, names: &[String]) -> (Vec<Written>, Option<Error>) {
        let namespace = rs.metadata.namespace.as_deref();
        let about = to_json(rs, || "ReplicaSet".into()).unwrap_or_default();
        let Ok(resource) = resource_of::<Pod>() else { return (Vec::new(), None) };
        let deletions = names.iter().map(|name| async move {
            let result = self.client.delete(resource, namespace, name, PropagationPolicy::Background).await;
            (name, result)
        });
        let mut deleted = Vec::new();
        let mut first_error = None;
        for (name, result) in futures::future::join_all(deletions).await {
            let key = format!("{}/{name}", namespace.unwrap_or_default());
            match result {
                Ok(_) => {
                    let message = format!("Deleted pod: {name}");
                    self.recorder.record(&about, EventType::Normal, "SuccessfulDelete", message).await;
                    deleted.push(Written::Deleted { key });
                }
                Err(ClientError::Api(err)) if err.code == 404 => deleted.push(Written::Deleted { key }),
                Err(err) => {
                    let message = format!("Error deleting: {err}");
                    self.recorder.record(&about, EventType::Warning, "FailedDelete", message).await;
                    first_error.get_or_insert(Error::from(err));
                }
            }
        }
        (deleted, first_error)
    }

    /// Writes the status through the `status` subresource, based on the version in the cache (a conflict means
    /// the cache was behind: retry).
    async fn write_status(&self, rs: &ReplicaSet, status: ReplicaSetStatus) -> Result<Written, Error> {
        let mut updated = rs.clone();
        updated.status = Some(status);
        let body = to_json(&updated, || "ReplicaSet status".into())?;
        let name = rs.metadata.name.as_deref().unwrap_or_default();
        let namespace = rs.metadata.namespace.as_deref();
        let written = self.client.update_status(resource_of::<ReplicaSet>()?, namespace, name, &body).await?;
        Ok(Written::Updated {
            key: ownership::key(&rs.metadata),
            from: rs.metadata.resource_version.clone().unwrap_or_default(),
            to: kubelab_api::object::resource_version(&written).to_string(),
        })
    }
}

/// `status` with a `ReplicaFailure` condition when pods could not be created or deleted (keeping an existing
/// one as it was, so that its time says when the trouble began).
fn with_failure(mut status: ReplicaSetStatus, rs: &ReplicaSet, failure: Option<&(&str, String)>) -> ReplicaSetStatus {
    let Some((reason, message)) = failure else { return status };
    let existing = rs.status.as_ref().and_then(|s| s.conditions.as_ref());
    let condition =
        existing.into_iter().flatten().find(|c| c.type_ == "ReplicaFailure").cloned().unwrap_or_else(|| {
            ReplicaSetCondition {
                type_: "ReplicaFailure".into(),
                status: "True".into(),
                reason: Some(reason.to_string()),
                message: Some(message.clone()),
                last_transition_time: Some(Time(controller::now())),
            }
        });
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    conditions.retain(|c| c.type_ != "ReplicaFailure");
    conditions.push(condition);
    status
}
