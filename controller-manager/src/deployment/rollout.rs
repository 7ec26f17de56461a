//! The Deployment controller's decision, as a pure function: [`next_rollout_step`].
//!
//! One call is one *sync* of Kubernetes' `syncDeployment`: it claims the Deployment's ReplicaSets, finds (or
//! plans) the ReplicaSet of the current template, takes **one** step of the strategy — scale the new ReplicaSet
//! up, or scale old ones down, never both in one step — prunes history, and computes the status. The step
//! works on copies of the ReplicaSets ([`Step`]); at the end, every copy that differs from what was observed
//! becomes an action. The next step comes with the next change (a pod becomes ready, a ReplicaSet is scaled).

use super::scaling::{self, desired, is_rolling_update, max_surge, new_rs_new_replicas, replicas};
use super::status::{self, FOUND_NEW_RS, NEW_RS_CREATED, PROGRESSING};
use super::template::{self, REVISION, equal_ignore_hash, revision};
use crate::controller::Reconciled;
use crate::controller::ownership::{Claim, adopt_patch, claim, controller_ref, release_patch};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kubelab_api::selectors::LabelSelector;
use serde_json::Value;
use std::cmp::Ordering;

/// One thing the Deployment controller does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Take an orphan ReplicaSet that matches the selector.
    AdoptReplicaSet { name: String, patch: Value },
    /// Let go of a ReplicaSet of ours that no longer matches.
    ReleaseReplicaSet { name: String, patch: Value },
    /// Create the ReplicaSet of the current template.
    CreateReplicaSet(Box<ReplicaSet>),
    /// Write a ReplicaSet (its size, annotations, minReadySeconds), based on the version observed.
    /// `scaled_from` is its size before, for the `ScalingReplicaSet` event.
    UpdateReplicaSet { replica_set: Box<ReplicaSet>, scaled_from: i32 },
    /// Delete an old, empty ReplicaSet beyond `revisionHistoryLimit`.
    DeleteReplicaSet { name: String },
    /// Set the Deployment's `deployment.kubernetes.io/revision` annotation.
    SetRevision(String),
    /// Write the Deployment's status.
    UpdateStatus(Box<DeploymentStatus>),
    /// Record an event about the Deployment.
    Warn { reason: &'static str, message: String },
}

/// What [`next_rollout_step`] decides: actions, and when to check again (the progress deadline).
pub type Plan = Reconciled<Action>;

/// A step in progress: copies of the Deployment's ReplicaSets as this step leaves them, and its status.
pub struct Step<'a> {
    pub deployment: &'a Deployment,
    pub now: Timestamp,
    /// The ReplicaSets the Deployment owns, oldest first, as they will be after this step.
    pub replica_sets: Vec<ReplicaSet>,
    /// The same, as observed (`None` for the one this step creates).
    observed: Vec<Option<ReplicaSet>>,
    /// Index of the ReplicaSet of the current template, if it exists or is being created.
    pub new_rs: Option<usize>,
    /// The revision the new ReplicaSet gets: one more than any old one.
    new_revision: i64,
    /// The Deployment's status as this step has it so far (conditions it set, collision count).
    pub status: DeploymentStatus,
    /// Adoptions, releases and events, in order; the ReplicaSet writes are added by [`Step::finish`].
    actions: Vec<Action>,
    /// ReplicaSets to delete.
    deletions: Vec<String>,
    /// Every ReplicaSet of the namespace, to detect a name already taken (a hash collision).
    namespace_replica_sets: &'a [ReplicaSet],
}

// ANCHOR: next_rollout_step
/// Decides the next step of `deployment`'s rollout, given every ReplicaSet and pod of its namespace (from the
/// caches) and the time. Pure: the same inputs always give the same plan.
pub fn next_rollout_step(deployment: &Deployment, replica_sets: &[ReplicaSet], pods: &[Pod], now: Timestamp) -> Plan {
    // Conditions are written with whole seconds; deciding with the same precision keeps status comparisons exact.
    let now = Timestamp::from_second(now.as_second()).unwrap_or(now);
    let Some(spec) = deployment.spec.as_ref() else { return Plan::nothing() };
    let selector = match LabelSelector::from_wire(&spec.selector) {
        Ok(selector) if !selector.is_empty() => selector,
        _ => return selecting_all(deployment),
    };
    let mut step = Step::new(deployment, replica_sets, &selector, now);
    let paused = spec.paused.unwrap_or(false);
    if deployment.metadata.deletion_timestamp.is_some() {
        step.sync_status();
    } else {
        status::mark_paused(deployment, &mut step.status, now);
        if paused || step.is_scaling_event() {
            // Only scale (proportionally, mid-rollout); a paused Deployment also prunes its history.
            step.scale();
            if paused {
                step.prune_history();
            }
            step.sync_status();
        } else if is_rolling_update(deployment) {
            step.rolling_update();
        } else {
            step.recreate(pods);
        }
    }
    step.finish()
}
// ANCHOR_END: next_rollout_step

/// An empty selector would select every pod of the namespace: refuse to act (validation should have refused it).
fn selecting_all(deployment: &Deployment) -> Plan {
    let mut plan = Plan::nothing();
    let message = "This deployment is selecting all pods. A non-empty selector is required.".to_string();
    plan.actions.push(Action::Warn { reason: "SelectingAll", message });
    let mut status = deployment.status.clone().unwrap_or_default();
    if status.observed_generation < deployment.metadata.generation {
        status.observed_generation = deployment.metadata.generation;
        plan.actions.push(Action::UpdateStatus(Box::new(status)));
    }
    plan
}

/// Oldest first; by name when created in the same second (`ReplicaSetsByCreationTimestamp`).
pub(super) fn by_creation(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    let created = |rs: &ReplicaSet| rs.metadata.creation_timestamp.as_ref().map(|t| t.0);
    created(a).cmp(&created(b)).then_with(|| a.metadata.name.cmp(&b.metadata.name))
}

impl<'a> Step<'a> {
    /// Claims the Deployment's ReplicaSets, finds the new one and brings its revision up to date
    /// (`getAllReplicaSetsAndSyncRevision` without creating).
    fn new(deployment: &'a Deployment, all: &'a [ReplicaSet], selector: &LabelSelector, now: Timestamp) -> Self {
        let mut actions = Vec::new();
        let mut owned = Vec::new();
        let namespace = deployment.metadata.namespace.as_deref();
        let reference = controller_ref("apps/v1", "Deployment", &deployment.metadata);
        for rs in all.iter().filter(|rs| rs.metadata.namespace.as_deref() == namespace) {
            let name = rs.metadata.name.clone().unwrap_or_default();
            match claim(&deployment.metadata, selector, &rs.metadata) {
                Claim::Owned => owned.push(rs.clone()),
                Claim::Adopt => {
                    actions.push(Action::AdoptReplicaSet { name, patch: adopt_patch(&rs.metadata, &reference) });
                    owned.push(rs.clone());
                }
                Claim::Release => {
                    let patch = release_patch(&rs.metadata, &reference.uid);
                    actions.push(Action::ReleaseReplicaSet { name, patch });
                }
                Claim::Ignore => {}
            }
        }
        owned.sort_by(by_creation);
        let template = &deployment.spec.as_ref().map(|s| s.template.clone()).unwrap_or_default();
        let new_rs = owned.iter().position(|rs| {
            rs.spec.as_ref().and_then(|s| s.template.as_ref()).is_some_and(|t| equal_ignore_hash(t, template))
        });
        let olds = owned.iter().enumerate().filter(|(i, _)| Some(*i) != new_rs).map(|(_, rs)| rs);
        let new_revision = template::max_revision(olds) + 1;
        let mut step = Step {
            deployment,
            now,
            observed: owned.iter().cloned().map(Some).collect(),
            replica_sets: owned,
            new_rs,
            new_revision,
            status: deployment.status.clone().unwrap_or_default(),
            actions,
            deletions: Vec::new(),
            namespace_replica_sets: all,
        };
        if let Some(index) = new_rs {
            let rs = &mut step.replica_sets[index];
            template::set_new_rs_annotations(deployment, rs, new_revision);
            let min_ready = deployment.spec.as_ref().and_then(|s| s.min_ready_seconds);
            if let Some(spec) = rs.spec.as_mut() {
                spec.min_ready_seconds = min_ready;
            }
            let name = rs.metadata.name.clone().unwrap_or_default();
            if status::progress_deadline(deployment).is_some() && status::get(&step.status, PROGRESSING).is_none() {
                let message = format!("Found new replica set {name:?}");
                status::set(&mut step.status, status::condition(PROGRESSING, "True", FOUND_NEW_RS, message, now));
            }
        }
        step
    }

    /// Indexes of the old ReplicaSets (every one but the new), oldest first.
    pub fn olds(&self) -> Vec<usize> {
        (0..self.replica_sets.len()).filter(|i| Some(*i) != self.new_rs).collect()
    }

    /// Indexes of the old ReplicaSets that still have (or ask for) pods.
    pub fn active_olds(&self) -> Vec<usize> {
        self.olds().into_iter().filter(|i| replicas(&self.replica_sets[*i]) > 0).collect()
    }

    /// Creates the new ReplicaSet if there is none (`getNewReplicaSet` with `createIfNotExisted`). Returns false
    /// when its name is taken by another ReplicaSet (a hash collision): the collision count goes up, so that the
    /// next step hashes to another name.
    pub fn ensure_new_rs(&mut self) -> bool {
        if self.new_rs.is_some() {
            return true;
        }
        let deployment = self.deployment;
        let template = deployment.spec.as_ref().map(|s| s.template.clone()).unwrap_or_default();
        let hash = template::template_hash(&template, self.status.collision_count);
        let mut rs = template::new_replica_set(deployment, &hash, 0);
        let name = rs.metadata.name.clone().unwrap_or_default();
        let namespace = &deployment.metadata.namespace;
        let taken = self
            .namespace_replica_sets
            .iter()
            .any(|r| r.metadata.name == rs.metadata.name && &r.metadata.namespace == namespace);
        if taken {
            self.status.collision_count = Some(self.status.collision_count.unwrap_or(0) + 1);
            return false;
        }
        let all: Vec<&ReplicaSet> = self.replica_sets.iter().collect();
        let size = new_rs_new_replicas(deployment, &all, &rs);
        if let Some(spec) = rs.spec.as_mut() {
            spec.replicas = Some(size);
        }
        template::set_new_rs_annotations(deployment, &mut rs, self.new_revision);
        let desired = desired(deployment);
        template::set_replicas_annotations(&mut rs, desired, desired + max_surge(deployment));
        self.replica_sets.push(rs);
        self.observed.push(None);
        self.new_rs = Some(self.replica_sets.len() - 1);
        if status::progress_deadline(deployment).is_some() {
            let message = format!("Created new replica set {name:?}");
            let condition = status::condition(PROGRESSING, "True", NEW_RS_CREATED, message, self.now);
            status::set(&mut self.status, condition);
        }
        true
    }

    /// Sets a ReplicaSet's size if it differs (`scaleReplicaSetAndRecordEvent`). Returns whether it changed.
    pub fn scale_to(&mut self, index: usize, size: i32) -> bool {
        if replicas(&self.replica_sets[index]) == size {
            return false;
        }
        self.resize(index, size)
    }

    /// Sets a ReplicaSet's size and records the Deployment size it was scaled for (`scaleReplicaSet`), even
    /// when the size stays. Returns whether the size changed.
    pub fn resize(&mut self, index: usize, size: i32) -> bool {
        let desired = desired(self.deployment);
        let max = desired + max_surge(self.deployment);
        let rs = &mut self.replica_sets[index];
        let changed = replicas(rs) != size;
        template::set_replicas_annotations(rs, desired, max);
        if let Some(spec) = rs.spec.as_mut() {
            spec.replicas = Some(size);
        }
        changed
    }

    /// Whether the Deployment was resized since its active ReplicaSets were (`isScalingEvent`): then this step
    /// only scales, proportionally, whatever the strategy.
    fn is_scaling_event(&self) -> bool {
        let deployment = self.deployment;
        self.replica_sets
            .iter()
            .filter(|rs| replicas(rs) > 0)
            .any(|rs| scaling::scaled_for_another_size(rs, deployment))
    }

    /// Deletes the oldest empty ReplicaSets beyond `revisionHistoryLimit` (`cleanupDeployment`): they are the
    /// revisions `kubectl rollout undo` can go back to.
    pub fn prune_history(&mut self) {
        let Some(limit) = self.deployment.spec.as_ref().and_then(|s| s.revision_history_limit) else { return };
        let mut candidates: Vec<usize> =
            self.olds().into_iter().filter(|i| self.replica_sets[*i].metadata.deletion_timestamp.is_none()).collect();
        let surplus = candidates.len().saturating_sub(usize::try_from(limit).unwrap_or(0));
        candidates.sort_by_key(|i| revision(&self.replica_sets[*i].metadata).unwrap_or(0));
        for index in candidates.into_iter().take(surplus) {
            let rs = &self.replica_sets[index];
            let observed = rs.status.as_ref().and_then(|s| s.observed_generation).unwrap_or(0);
            let settled = observed >= rs.metadata.generation.unwrap_or(0);
            if scaling::actual(rs) == 0 && replicas(rs) == 0 && settled {
                self.deletions.push(rs.metadata.name.clone().unwrap_or_default());
            }
        }
    }

    /// The status from the ReplicaSets, without judging progress (`syncDeploymentStatus`).
    pub fn sync_status(&mut self) {
        let all: Vec<&ReplicaSet> = self.replica_sets.iter().collect();
        let new_rs = self.new_rs.map(|i| &self.replica_sets[i]);
        self.status = status::calculate(self.deployment, &all, new_rs, &self.status, self.now);
    }

    /// The status, judging progress against the deadline (`syncRolloutStatus`).
    pub fn sync_rollout_status(&mut self) {
        let all: Vec<&ReplicaSet> = self.replica_sets.iter().collect();
        let new_rs = self.new_rs.map(|i| &self.replica_sets[i]);
        let mut next = status::calculate(self.deployment, &all, new_rs, &self.status, self.now);
        let new_name = new_rs.and_then(|rs| rs.metadata.name.as_deref());
        status::track_progress(self.deployment, &self.status, &mut next, new_name, self.now);
        match status::replica_failure(&all, new_rs) {
            Some(failure) => status::set(&mut next, failure),
            None => status::remove(&mut next, status::REPLICA_FAILURE),
        }
        self.status = next;
    }

    /// Turns the step into a plan: one write per ReplicaSet that changed, the revision, deletions, the status.
    fn finish(self) -> Plan {
        let mut plan = Plan { actions: self.actions, requeue_after: None };
        let planned = self.replica_sets.iter().zip(&self.observed);
        for (rs, _) in planned.clone().filter(|(_, observed)| observed.is_none()) {
            plan.actions.push(Action::CreateReplicaSet(Box::new(rs.clone())));
        }
        for (rs, before) in planned.filter_map(|(rs, observed)| Some((rs, observed.as_ref()?))) {
            if before != rs {
                let scaled_from = replicas(before);
                plan.actions.push(Action::UpdateReplicaSet { replica_set: Box::new(rs.clone()), scaled_from });
            }
        }
        let new_revision = self.new_rs.and_then(|i| self.replica_sets[i].metadata.annotations.as_ref()?.get(REVISION));
        let current = self.deployment.metadata.annotations.as_ref().and_then(|a| a.get(REVISION));
        if let Some(revision) = new_revision.filter(|r| Some(*r) != current) {
            plan.actions.push(Action::SetRevision(revision.clone()));
        }
        for name in self.deletions {
            plan.actions.push(Action::DeleteReplicaSet { name });
        }
        if let Some(wait) = status::recheck_after(self.deployment, &self.status, self.now) {
            plan.requeue_within(wait);
        }
        if self.deployment.status.as_ref() != Some(&self.status) {
            plan.actions.push(Action::UpdateStatus(Box::new(self.status)));
        }
        plan
    }
}
