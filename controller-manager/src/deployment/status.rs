//! A Deployment's status: the counts `kubectl get deploy` prints, and the two conditions `kubectl rollout
//! status` and `describe` read.
//!
//! - **Available**: `True` (`MinimumReplicasAvailable`) while at least `replicas − maxUnavailable` pods are
//!   available, else `False` (`MinimumReplicasUnavailable`).
//! - **Progressing**: what the rollout is doing. `True` with `NewReplicaSetCreated`, `FoundNewReplicaSet` or
//!   `ReplicaSetUpdated` while it moves, `NewReplicaSetAvailable` when it is done; `Unknown` with
//!   `DeploymentPaused` / `DeploymentResumed`; and `False` with `ProgressDeadlineExceeded` when nothing moved
//!   for `progressDeadlineSeconds` (600 s). Every sign of progress (more updated, ready or available pods, fewer
//!   old ones) renews the condition's `lastUpdateTime`; the deadline counts from there.
//!
//! Mirrors `pkg/controller/deployment/progress.go`, `sync.go` (`calculateStatus`) and the condition helpers of
//! `deployment_util.go`, with their reasons and messages.

use super::scaling::{actual, available, desired, max_unavailable, ready, replicas};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use std::time::Duration;

pub const AVAILABLE: &str = "Available";
pub const PROGRESSING: &str = "Progressing";
pub const REPLICA_FAILURE: &str = "ReplicaFailure";
pub const NEW_RS_CREATED: &str = "NewReplicaSetCreated";
pub const FOUND_NEW_RS: &str = "FoundNewReplicaSet";
pub const RS_UPDATED: &str = "ReplicaSetUpdated";
pub const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
pub const TIMED_OUT: &str = "ProgressDeadlineExceeded";
pub const PAUSED: &str = "DeploymentPaused";
pub const RESUMED: &str = "DeploymentResumed";
pub const RS_CREATE_ERROR: &str = "ReplicaSetCreateError";

/// A condition stamped `now` (both times).
pub fn condition(type_: &str, status: &str, reason: &str, message: String, now: Timestamp) -> DeploymentCondition {
    DeploymentCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message),
        last_update_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

/// The condition of this type, if any.
pub fn get<'a>(status: &'a DeploymentStatus, type_: &str) -> Option<&'a DeploymentCondition> {
    status.conditions.iter().flatten().find(|c| c.type_ == type_)
}

/// Sets a condition (`SetDeploymentCondition`): nothing changes if one with the same status and reason is
/// there; the transition time is kept if only the reason changes.
pub fn set(status: &mut DeploymentStatus, mut condition: DeploymentCondition) {
    if let Some(current) = get(status, &condition.type_) {
        if current.status == condition.status && current.reason == condition.reason {
            return;
        }
        if current.status == condition.status {
            condition.last_transition_time = current.last_transition_time.clone();
        }
    }
    remove(status, &condition.type_);
    status.conditions.get_or_insert_with(Vec::new).push(condition);
}

/// Removes the condition of this type.
pub fn remove(status: &mut DeploymentStatus, type_: &str) {
    if let Some(conditions) = status.conditions.as_mut() {
        conditions.retain(|c| c.type_ != type_);
        if conditions.is_empty() {
            status.conditions = None;
        }
    }
}

/// `progressDeadlineSeconds`, unless unset or "never" (`MaxInt32`).
pub fn progress_deadline(deployment: &Deployment) -> Option<i32> {
    deployment.spec.as_ref().and_then(|s| s.progress_deadline_seconds).filter(|s| *s != i32::MAX)
}

fn nonzero(n: i32) -> Option<i32> {
    (n != 0).then_some(n)
}

// ANCHOR: calculate_status
/// The counts of the status, summed over the Deployment's ReplicaSets, and the Available condition
/// (`calculateStatus`). `working` is the status as this step has it so far (conditions it already set).
pub fn calculate(
    deployment: &Deployment,
    all: &[&ReplicaSet],
    new_rs: Option<&ReplicaSet>,
    working: &DeploymentStatus,
    now: Timestamp,
) -> DeploymentStatus {
    let available_pods: i32 = all.iter().map(|rs| available(rs)).sum();
    let asked_for: i32 = all.iter().map(|rs| replicas(rs)).sum();
    let mut status = DeploymentStatus {
        observed_generation: deployment.metadata.generation,
        replicas: nonzero(all.iter().map(|rs| actual(rs)).sum()),
        updated_replicas: nonzero(new_rs.map_or(0, actual)),
        ready_replicas: nonzero(all.iter().map(|rs| ready(rs)).sum()),
        available_replicas: nonzero(available_pods),
        unavailable_replicas: nonzero((asked_for - available_pods).max(0)),
        collision_count: working.collision_count,
        conditions: working.conditions.clone(),
        terminating_replicas: None,
    };
    if available_pods >= desired(deployment) - max_unavailable(deployment) {
        let message = "Deployment has minimum availability.".to_string();
        set(&mut status, condition(AVAILABLE, "True", "MinimumReplicasAvailable", message, now));
    } else {
        let message = "Deployment does not have minimum availability.".to_string();
        set(&mut status, condition(AVAILABLE, "False", "MinimumReplicasUnavailable", message, now));
    }
    status
}
// ANCHOR_END: calculate_status

/// The rollout is done: every pod updated, no old pod left, all available, the latest spec observed.
pub fn complete(deployment: &Deployment, status: &DeploymentStatus) -> bool {
    let want = desired(deployment);
    status.updated_replicas.unwrap_or(0) == want
        && status.replicas.unwrap_or(0) == want
        && status.available_replicas.unwrap_or(0) == want
        && status.observed_generation.unwrap_or(0) >= deployment.metadata.generation.unwrap_or(0)
}

/// Something moved since `before`: more updated, ready or available pods, or fewer old ones.
fn progressed(before: &DeploymentStatus, after: &DeploymentStatus) -> bool {
    let old = |s: &DeploymentStatus| s.replicas.unwrap_or(0) - s.updated_replicas.unwrap_or(0);
    after.updated_replicas.unwrap_or(0) > before.updated_replicas.unwrap_or(0)
        || old(after) < old(before)
        || after.ready_replicas.unwrap_or(0) > before.ready_replicas.unwrap_or(0)
        || after.available_replicas.unwrap_or(0) > before.available_replicas.unwrap_or(0)
}

/// Whether the Progressing condition has not moved for longer than the deadline.
fn timed_out(deployment: &Deployment, status: &DeploymentStatus, now: Timestamp) -> bool {
    let (Some(deadline), Some(condition)) = (progress_deadline(deployment), get(status, PROGRESSING)) else {
        return false;
    };
    match condition.reason.as_deref() {
        Some(NEW_RS_AVAILABLE) => false,
        Some(TIMED_OUT) => true,
        _ => condition
            .last_update_time
            .as_ref()
            .is_some_and(|from| from.0 + SignedDuration::from_secs(i64::from(deadline)) < now),
    }
}

// ANCHOR: progress
/// Updates the Progressing condition of `status` after a step of the rollout (`syncRolloutStatus`): complete,
/// progressing, or out of time. `before` is the status the step started from; `new_rs` names the ReplicaSet of
/// the current template, if it exists.
pub fn track_progress(
    deployment: &Deployment,
    before: &DeploymentStatus,
    status: &mut DeploymentStatus,
    new_rs: Option<&str>,
    now: Timestamp,
) {
    if progress_deadline(deployment).is_none() {
        remove(status, PROGRESSING);
        return;
    }
    let current = get(before, PROGRESSING).cloned();
    let finished = status.replicas == status.updated_replicas
        && current.as_ref().is_some_and(|c| c.reason.as_deref() == Some(NEW_RS_AVAILABLE));
    if finished {
        return;
    }
    let name = deployment.metadata.name.as_deref().unwrap_or_default();
    let subject = |verb: &str| match new_rs {
        Some(rs) => format!("ReplicaSet {rs:?} {verb}."),
        None => format!("Deployment {name:?} {verb}."),
    };
    if complete(deployment, status) {
        let message = subject("has successfully progressed");
        set(status, condition(PROGRESSING, "True", NEW_RS_AVAILABLE, message, now));
    } else if progressed(before, status) {
        // Unlike `set`, always renew the update time: that is what pushes the deadline back.
        let mut renewed = condition(PROGRESSING, "True", RS_UPDATED, subject("is progressing"), now);
        if let Some(current) = current.filter(|c| c.status == "True") {
            renewed.last_transition_time = current.last_transition_time;
        }
        remove(status, PROGRESSING);
        set(status, renewed);
    } else if timed_out(deployment, status, now) {
        let message = subject("has timed out progressing");
        set(status, condition(PROGRESSING, "False", TIMED_OUT, message, now));
    }
}
// ANCHOR_END: progress

/// When to look at a rollout again even if nothing changes: when its progress deadline falls, unless it is
/// complete or already out of time (`requeueStuckDeployment`).
pub fn recheck_after(deployment: &Deployment, status: &DeploymentStatus, now: Timestamp) -> Option<Duration> {
    let deadline = progress_deadline(deployment)?;
    let condition = get(status, PROGRESSING)?;
    if complete(deployment, status) || condition.reason.as_deref() == Some(TIMED_OUT) {
        return None;
    }
    let from = condition.last_update_time.as_ref()?.0;
    let due = from + SignedDuration::from_secs(i64::from(deadline));
    let wait = Duration::try_from(now.duration_until(due)).unwrap_or_default();
    // A second more, so that the deadline has surely passed when we look.
    Some(wait + Duration::from_secs(1))
}

/// The ReplicaFailure condition of the new ReplicaSet (or else of an old one), as a Deployment condition.
pub fn replica_failure(all: &[&ReplicaSet], new_rs: Option<&ReplicaSet>) -> Option<DeploymentCondition> {
    let failure = |rs: &ReplicaSet| {
        let conditions = rs.status.as_ref().and_then(|s| s.conditions.as_ref());
        conditions.into_iter().flatten().find(|c| c.type_ == REPLICA_FAILURE).cloned()
    };
    let found = new_rs.and_then(failure).or_else(|| all.iter().find_map(|rs| failure(rs)))?;
    Some(DeploymentCondition {
        type_: found.type_,
        status: found.status,
        reason: found.reason,
        message: found.message,
        last_update_time: found.last_transition_time.clone(),
        last_transition_time: found.last_transition_time,
    })
}

/// Marks a pause or a resume in the Progressing condition, so that the time spent paused does not count
/// against the progress deadline (`checkPausedConditions`). A timed-out rollout keeps saying so.
pub fn mark_paused(deployment: &Deployment, status: &mut DeploymentStatus, now: Timestamp) {
    if progress_deadline(deployment).is_none() {
        return;
    }
    let current = get(status, PROGRESSING).and_then(|c| c.reason.clone());
    if current.as_deref() == Some(TIMED_OUT) {
        return;
    }
    let paused = deployment.spec.as_ref().and_then(|s| s.paused).unwrap_or(false);
    let marked_paused = current.as_deref() == Some(PAUSED);
    if paused && !marked_paused {
        set(status, condition(PROGRESSING, "Unknown", PAUSED, "Deployment is paused".into(), now));
    } else if !paused && marked_paused {
        set(status, condition(PROGRESSING, "Unknown", RESUMED, "Deployment is resumed".into(), now));
    }
}
