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
use crate::controller::ownership::{self, owners_of};
use crate::controller::{self, Controller, Error, Lister, Outcomes, Reconciled, Source, Writes, Written, to_json};
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetCondition, ReplicaSetStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kubelab_api::client::{Client, ClientError, PropagationPolicy, resource_of};
use kubelab_api::events::{EventType, Recorder};
use reconcile::Action;
use tokio::time::Instant;

/// The ReplicaSet controller's state: a client, an event recorder and two caches.
pub struct ReplicaSetController {
    client: Client,
    recorder: Recorder,
    replica_sets: Lister,
    pods: Lister,
    /// Create pods in batches of 1, 2, 4... (Kubernetes always does; configurable here to show the difference).
    slow_start: bool,
}

/// What one reconcile looks at: the ReplicaSet and every pod of its namespace.
pub struct Observed {
    pub replica_set: ReplicaSet,
    pub pods: Vec<Pod>,
}

impl Controller for ReplicaSetController {
    type Observed = Observed;
    type Action = Action;

    /// Two informers: ReplicaSets (each its own key) and pods (mapped to their ReplicaSets).
    fn new(client: &Client, config: &Config) -> Result<(Self, Vec<Source>), Error> {
        let (rs_resource, pod_resource) = (resource_of::<ReplicaSet>()?, resource_of::<Pod>()?);
        let (rs_source, replica_sets) = Source::new(client, rs_resource, |rs| vec![controller::key_of(rs)]);
        // A pod matters to its ReplicaSet, or, if it is an orphan, to every ReplicaSet that selects it.
        let candidates = replica_sets.clone();
        let (pod_source, pods) =
            Source::new(client, pod_resource, move |pod| owners_of::<ReplicaSet>(pod, &candidates));
        let controller = ReplicaSetController {
            client: client.clone(),
            recorder: Recorder::new(client.clone(), "replicaset-controller"),
            replica_sets,
            pods,
            slow_start: config.slow_start,
        };
        Ok((controller, vec![rs_source, pod_source]))
    }

    fn workers(config: &Config) -> usize {
        config.replicaset_workers
    }

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
    async fn apply(&self, observed: &Observed, actions: Vec<Action>, writes: &mut Writes) -> Result<(), Error> {
        let rs = &observed.replica_set;
        let mut outcomes = Outcomes::default();
        // Every write that goes through is recorded: the worker waits for the caches to show it.
        let (pods, replica_sets) = (&self.pods, &self.replica_sets);
        // Why creating or deleting pods failed, for the ReplicaFailure condition.
        let mut failure: Option<(&str, String)> = None;
        let mut status_written = false;
        for action in actions {
            match action {
                Action::Adopt { pod, patch } | Action::Release { pod, patch } => {
                    let namespace = rs.metadata.namespace.as_deref();
                    let result =
                        controller::patch_unless_changed(&self.client, resource_of::<Pod>()?, namespace, &pod, &patch);
                    writes.extend(pods, outcomes.record(result.await).flatten());
                }
                Action::CreatePods { count, pod } => {
                    let (created, error) = self.create_pods(rs, &pod, count).await;
                    writes.extend(pods, created);
                    if let Some(err) = error {
                        failure = Some(("FailedCreate", err.to_string()));
                        outcomes.record::<()>(Err(err));
                    }
                }
                Action::DeletePods(names) => {
                    let (deleted, error) = self.delete_pods(rs, &names).await;
                    writes.extend(pods, deleted);
                    if let Some(err) = error {
                        failure = Some(("FailedDelete", err.to_string()));
                        outcomes.record::<()>(Err(err));
                    }
                }
                Action::UpdateStatus(status) => {
                    let status = with_failure(*status, rs, failure.as_ref());
                    writes.extend(replica_sets, outcomes.record(self.write_status(rs, status).await));
                    status_written = true;
                }
            }
        }
        if let (Some(failure), false) = (&failure, status_written) {
            // The status had not changed, but now it must say that pods could not be created or deleted.
            let status = with_failure(rs.status.clone().unwrap_or_default(), rs, Some(failure));
            if Some(&status) != rs.status.as_ref() {
                writes.extend(replica_sets, outcomes.record(self.write_status(rs, status).await));
            }
        }
        outcomes.finish()
    }
    // ANCHOR_END: apply
}

impl ReplicaSetController {
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
        controller::update_status(&self.client, &updated).await
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
