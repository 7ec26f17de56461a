//! The Deployment controller: rolls a set of pods from one template to the next, within bounds, and back.
//!
//! A Deployment never touches pods. Each version of its pod template gets a ReplicaSet
//! (`<deployment>-<pod-template-hash>`, see [`template`]); a rollout is the new ReplicaSet growing while the old
//! ones shrink, one step at a time, each step decided by [`rollout::next_rollout_step`] — a pure function of the
//! Deployment, the ReplicaSets and pods of its namespace, and the time:
//!
//! - **RollingUpdate** (the default): the new ReplicaSet grows as far as `maxSurge` allows, old ones shrink as
//!   far as `maxUnavailable` allows ([`strategy`] takes the steps, [`scaling`] has the arithmetic), until only
//!   the new one is left;
//! - **Recreate**: every old ReplicaSet goes to 0, and once their pods are gone the new one starts at full size;
//! - **scaling** (`kubectl scale`) mid-rollout is shared proportionally among the ReplicaSets; a **paused**
//!   Deployment scales but does not roll; **`kubectl rollout restart`** changes a template annotation, hence a new
//!   ReplicaSet;
//! - **revisions**: each ReplicaSet carries `deployment.kubernetes.io/revision`. `kubectl rollout undo` copies an
//!   old ReplicaSet's template back into the Deployment; the controller recognises that template, reuses the old
//!   ReplicaSet and gives it the next revision number. Beyond `revisionHistoryLimit`, empty old ReplicaSets are
//!   deleted;
//! - **status** ([`status`]): the counts, and the conditions Available and Progressing — including
//!   `ProgressDeadlineExceeded` after `progressDeadlineSeconds` without progress. A rollout that timed out is
//!   only reported: surge and unavailability bounds still hold, so it cannot make things worse.
//!
//! **Watches** Deployments, ReplicaSets (mapped to their Deployment) and pods (mapped through their ReplicaSet).
//! **Writes** ReplicaSets (create, scale, annotate, delete), the Deployment's revision annotation and status, and
//! `ScalingReplicaSet` events.
//!
//! Mirrors `pkg/controller/deployment` (`sync.go`, `rolling.go`, `recreate.go`, `progress.go`) and
//! `deployment/util`. What we leave out: the deprecated `rollbackTo` field (extensions/v1beta1 rollbacks; `kubectl
//! rollout undo` no longer uses it) and the `DeploymentReplicaSetTerminatingReplicas` alpha feature.

pub mod rollout;
pub mod scaling;
pub mod status;
pub mod strategy;
pub mod template;

#[cfg(test)]
mod tests;

pub use rollout::{Action, Plan, next_rollout_step};

use crate::Config;
use crate::controller::ownership::{self, controller_of, owners_of};
use crate::controller::{self, Controller, Error, Lister, Reconciled, Source, Writes, Written, to_json};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kubelab_api::client::{Client, ClientError, PatchParams, PatchType, PropagationPolicy, resource_of};
use kubelab_api::events::{EventType, Recorder};
use serde_json::{Value, json};
use tokio::time::Instant;

/// The Deployment controller's state: a client, an event recorder and three caches.
pub struct DeploymentController {
    client: Client,
    recorder: Recorder,
    deployments: Lister,
    replica_sets: Lister,
    pods: Lister,
}

/// What one reconcile looks at: the Deployment, and every ReplicaSet and pod of its namespace.
pub struct Observed {
    pub deployment: Deployment,
    pub replica_sets: Vec<ReplicaSet>,
    pub pods: Vec<Pod>,
}

/// The Deployment a pod belongs to, through its controlling ReplicaSet (a Recreate rollout waits for old pods
/// to be gone, so it must hear of their deletion).
fn deployment_of_pod(pod: &Value, replica_sets: &Lister) -> Vec<String> {
    let Ok(pod) = serde_json::from_value::<Pod>(pod.clone()) else { return Vec::new() };
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let Some(owner) = controller_of(&pod.metadata).filter(|o| o.kind == "ReplicaSet") else { return Vec::new() };
    let Some(rs) = replica_sets.get::<ReplicaSet>(&format!("{namespace}/{}", owner.name)) else { return Vec::new() };
    match controller_of(&rs.metadata) {
        Some(owner) if owner.kind == "Deployment" => vec![format!("{namespace}/{}", owner.name)],
        _ => Vec::new(),
    }
}

impl Controller for DeploymentController {
    type Observed = Observed;
    type Action = Action;

    /// Three informers: Deployments (each its own key), ReplicaSets (mapped to their Deployments) and pods
    /// (mapped through their ReplicaSet). Nothing in `config` concerns it but its workers.
    fn new(client: &Client, _config: &Config) -> Result<(Self, Vec<Source>), Error> {
        let (deployment_source, deployments) =
            Source::new(client, resource_of::<Deployment>()?, |d| vec![controller::key_of(d)]);
        // A ReplicaSet matters to its Deployment, or, if it is an orphan, to every Deployment that selects it.
        let candidates = deployments.clone();
        let (rs_source, replica_sets) =
            Source::new(client, resource_of::<ReplicaSet>()?, move |rs| owners_of::<Deployment>(rs, &candidates));
        let owners = replica_sets.clone();
        let (pod_source, pods) = Source::new(client, resource_of::<Pod>()?, move |pod| deployment_of_pod(pod, &owners));
        let controller = DeploymentController {
            client: client.clone(),
            recorder: Recorder::new(client.clone(), "deployment-controller"),
            deployments,
            replica_sets,
            pods,
        };
        Ok((controller, vec![deployment_source, rs_source, pod_source]))
    }

    fn workers(config: &Config) -> usize {
        config.deployment_workers
    }

    fn name(&self) -> &'static str {
        "deployment-controller"
    }

    fn observe(&self, key: &str) -> Option<Observed> {
        let deployment: Deployment = self.deployments.get(key)?;
        let namespace = deployment.metadata.namespace.clone().unwrap_or_default();
        let replica_sets = self.replica_sets.list_in(&namespace);
        let pods = self.pods.list_in(&namespace);
        Some(Observed { deployment, replica_sets, pods })
    }

    fn reconcile(&self, observed: &Observed, now: Timestamp) -> Reconciled<Action> {
        next_rollout_step(&observed.deployment, &observed.replica_sets, &observed.pods, now)
    }

    // ANCHOR: apply
    /// Applies the plan in order; the first failure stops it (each step builds on the one before), and the key is
    /// retried. Every write that went through is recorded: the worker waits for the caches to show it.
    async fn apply(&self, observed: &Observed, actions: Vec<Action>, writes: &mut Writes) -> Result<(), Error> {
        let deployment = &observed.deployment;
        let about = to_json(deployment, || "Deployment".into())?;
        let namespace = deployment.metadata.namespace.as_deref();
        let (replica_sets, deployments) = (&self.replica_sets, &self.deployments);
        // The Deployment's resourceVersion as we last wrote it: the status write is based on it.
        let mut version = deployment.metadata.resource_version.clone().unwrap_or_default();
        for action in actions {
            match action {
                Action::AdoptReplicaSet { name, patch } | Action::ReleaseReplicaSet { name, patch } => {
                    let resource = resource_of::<ReplicaSet>()?;
                    let patched = controller::patch_unless_changed(&self.client, resource, namespace, &name, &patch);
                    writes.extend(replica_sets, patched.await?);
                }
                Action::CreateReplicaSet(rs) => {
                    writes.push(replica_sets, self.create_replica_set(deployment, &about, &rs).await?);
                }
                Action::UpdateReplicaSet { replica_set, scaled_from } => {
                    writes.push(replica_sets, self.update_replica_set(&about, &replica_set, scaled_from).await?);
                }
                Action::DeleteReplicaSet { name } => {
                    let resource = resource_of::<ReplicaSet>()?;
                    match self.client.delete(resource, namespace, &name, PropagationPolicy::Background).await {
                        Ok(_) | Err(ClientError::Api(kubelab_api::ApiError { code: 404, .. })) => {}
                        Err(err) => return Err(err.into()),
                    }
                    let key = format!("{}/{name}", namespace.unwrap_or_default());
                    writes.push(replica_sets, Written::Deleted { key });
                }
                Action::SetRevision(revision) => {
                    let patch = json!({"metadata": {"annotations": {template::REVISION: revision}}});
                    let written = self.patch_deployment(deployment, &version, &patch).await?;
                    if let Written::Updated { to, .. } = &written {
                        version = to.clone();
                    }
                    writes.push(deployments, written);
                }
                Action::UpdateStatus(status) => {
                    writes.push(deployments, self.write_status(deployment, &version, *status).await?);
                }
                Action::Warn { reason, message } => {
                    self.recorder.record(&about, EventType::Warning, reason, message).await;
                }
            }
        }
        Ok(())
    }
    // ANCHOR_END: apply
}

impl DeploymentController {
    // ANCHOR: create_replica_set
    /// Creates the new ReplicaSet. If that fails for another reason than a name already taken (the cache was
    /// behind: the next step will find it), the Deployment says so: a `ReplicaSetCreateError` event and
    /// Progressing condition.
    async fn create_replica_set(
        &self,
        deployment: &Deployment,
        about: &Value,
        rs: &ReplicaSet,
    ) -> Result<Written, Error> {
        let name = rs.metadata.name.clone().unwrap_or_default();
        let body = to_json(rs, || format!("ReplicaSet {name}"))?;
        let at = Instant::now();
        let namespace = deployment.metadata.namespace.as_deref();
        match self.client.create(resource_of::<ReplicaSet>()?, namespace, &body).await {
            Ok(created) => {
                let size = scaling::replicas(rs);
                if size > 0 {
                    let message = format!("Scaled up replica set {name} from 0 to {size}");
                    self.recorder.record(about, EventType::Normal, "ScalingReplicaSet", message).await;
                }
                Ok(Written::Created { key: controller::key_of(&created), at })
            }
            Err(ClientError::Api(err)) if err.code == 409 => Err(ClientError::Api(err).into()),
            Err(err) => {
                let message = format!("Failed to create new replica set {name:?}: {err}");
                self.recorder.record(about, EventType::Warning, status::RS_CREATE_ERROR, message.clone()).await;
                if status::progress_deadline(deployment).is_some() {
                    let mut failed = deployment.status.clone().unwrap_or_default();
                    let now = controller::now();
                    status::set(
                        &mut failed,
                        status::condition(status::PROGRESSING, "False", status::RS_CREATE_ERROR, message, now),
                    );
                    let version = deployment.metadata.resource_version.clone().unwrap_or_default();
                    // The error to report is the creation's; a failed status write only loses the condition.
                    let _ = self.write_status(deployment, &version, failed).await;
                }
                Err(err.into())
            }
        }
    }
    // ANCHOR_END: create_replica_set

    /// Writes a ReplicaSet as planned (based on the version observed) and records the scaling.
    async fn update_replica_set(&self, about: &Value, rs: &ReplicaSet, scaled_from: i32) -> Result<Written, Error> {
        let name = rs.metadata.name.clone().unwrap_or_default();
        let body = to_json(rs, || format!("ReplicaSet {name}"))?;
        let namespace = rs.metadata.namespace.as_deref();
        let written = self.client.replace(resource_of::<ReplicaSet>()?, namespace, &name, &body).await?;
        let size = scaling::replicas(rs);
        if size != scaled_from {
            let direction = if size > scaled_from { "up" } else { "down" };
            let message = format!("Scaled {direction} replica set {name} from {scaled_from} to {size}");
            self.recorder.record(about, EventType::Normal, "ScalingReplicaSet", message).await;
        }
        Ok(Written::Updated {
            key: ownership::key(&rs.metadata),
            from: rs.metadata.resource_version.clone().unwrap_or_default(),
            to: kubelab_api::object::resource_version(&written).to_string(),
        })
    }

    /// A merge patch of the Deployment's metadata, guarded by `version`.
    async fn patch_deployment(&self, deployment: &Deployment, version: &str, patch: &Value) -> Result<Written, Error> {
        let mut patch = patch.clone();
        patch["metadata"]["resourceVersion"] = json!(version);
        let name = deployment.metadata.name.as_deref().unwrap_or_default();
        let namespace = deployment.metadata.namespace.as_deref();
        let resource = resource_of::<Deployment>()?;
        let patched =
            self.client.patch(resource, namespace, name, PatchType::Merge, &patch, &PatchParams::default()).await?;
        Ok(Written::Updated {
            key: ownership::key(&deployment.metadata),
            from: version.to_string(),
            to: kubelab_api::object::resource_version(&patched).to_string(),
        })
    }

    /// Writes the status through the `status` subresource, based on `version`.
    async fn write_status(
        &self,
        deployment: &Deployment,
        version: &str,
        status: DeploymentStatus,
    ) -> Result<Written, Error> {
        let mut updated = deployment.clone();
        updated.metadata.resource_version = Some(version.to_string());
        updated.status = Some(status);
        controller::update_status(&self.client, &updated).await
    }
}
