//! The sync decision: given a pod and what runs for it, what must the kubelet do now?
//!
//! This is the heart of the kubelet, Kubernetes' `computePodActions`, as a pure function: [`sync_actions`]
//! reads the pod (what the apiserver wants), the containers the runtime reports (what is), the probe results
//! and the back-off state, and returns a list of [`Action`]s. It is never told *why* it is called — a new pod,
//! a crash, a timer, a kubelet restart — it looks at everything each time (level-triggered), so calling it twice
//! is harmless and a missed event only delays the work until the next call.
//!
//! The rules, in the order they are applied:
//!
//! 1. A pod being deleted (`deletionTimestamp`) has every running container killed with its grace period, its
//!    sandbox stopped, and once nothing runs, its object deleted.
//! 2. A pod with no running sandbox gets a new one (unless it has finished, or its `restartPolicy` is `Never` and
//!    its containers have run already); containers still running in a dead sandbox are killed, since their
//!    network is gone. A sandbox that died is replaced at once the first time, then only after a back-off that
//!    doubles, as a crashing container is restarted: a pause image that cannot run would otherwise be re-created
//!    as fast as the runtime goes.
//! 3. Each container of the spec: never started → start it; running but failing its liveness probe → kill it;
//!    exited → restart it if `restartPolicy` says so (`Always`; `OnFailure` when the exit code is not 0), unless
//!    its back-off delay has not passed.
//! 4. A pod whose containers have all finished for good has its sandbox stopped (its IP is released).
//! 5. Housekeeping: containers that no spec names are killed; old exited attempts beyond the last two are
//!    removed (the last one is what `kubectl logs --previous` reads); dead sandboxes are removed once no container
//!    refers to them.

use crate::backoff::BackOff;
use crate::labels::{Role, SANDBOX_CONTAINER_NAME};
use crate::probes::ProbeResults;
use crate::runtime::{ContainerInfo, ContainerState};
use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::jiff::Timestamp;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

/// Kubernetes never gives a container less than 2 s between SIGTERM and SIGKILL (`minimumGracePeriodInSeconds`).
pub const MINIMUM_GRACE: Duration = Duration::from_secs(2);

/// Everything the kubelet knows about one pod's containers when a sync starts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObservedPod {
    /// The pod's sandboxes and containers, running or not, oldest first.
    pub containers: Vec<ContainerInfo>,
    /// Why a container could not be started the last time the kubelet tried (`ErrImagePull`, `CrashLoopBackOff`,
    /// ...), by container name: the kubelet's *reason cache*. Cleared when the container starts.
    pub waiting: BTreeMap<String, Waiting>,
    /// The node's address, reported as the pod's `hostIP`.
    pub host_ip: Option<IpAddr>,
}

/// A reason and message for a container that is not running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub reason: String,
    pub message: String,
}

impl ObservedPod {
    /// The newest sandbox: the one the pod's containers run in (or ran in).
    pub fn sandbox(&self) -> Option<&ContainerInfo> {
        self.containers.iter().filter(|c| c.owner.role == Role::Sandbox).max_by_key(|c| (c.owner.attempt, c.created_at))
    }

    /// The newest sandbox if it runs and has an address: the pod's network is up.
    pub fn ready_sandbox(&self) -> Option<&ContainerInfo> {
        self.sandbox().filter(|s| s.is_running() && s.ip.is_some())
    }

    /// Every attempt of the container `name`, newest first.
    pub fn attempts(&self, name: &str) -> Vec<&ContainerInfo> {
        let mut attempts: Vec<&ContainerInfo> =
            self.containers.iter().filter(|c| c.owner.role == Role::Container && c.owner.container == name).collect();
        attempts.sort_by_key(|c| std::cmp::Reverse((c.owner.attempt, c.created_at)));
        attempts
    }

    /// The current attempt of the container `name`.
    pub fn latest(&self, name: &str) -> Option<&ContainerInfo> {
        self.attempts(name).into_iter().next()
    }
}

/// One step of a sync, for the shell to carry out in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Run a new sandbox, the pod's `attempt`-th; `replacing` is when the sandbox before it failed, if one did.
    CreateSandbox { attempt: u32, replacing: Option<Timestamp> },
    /// The pod's sandbox failed and must not be re-created before `until`.
    SandboxBackOff { until: Timestamp },
    /// Pull the image if needed, then create and start the container `name` in the newest sandbox.
    StartContainer { name: String, attempt: u32, restart_of: Option<Timestamp> },
    /// Stop a running container: SIGTERM, up to `grace` to exit, then SIGKILL. `message` is the event's text.
    KillContainer { id: String, name: String, grace: Duration, message: String },
    /// The container `name` must not be restarted before `until`: it is in `CrashLoopBackOff`.
    BackOff { name: String, until: Timestamp, delay: Duration },
    /// Stop a sandbox (at once: nothing in it needs a graceful shutdown).
    StopSandbox { id: String },
    /// Remove a dead container or sandbox that is no longer needed.
    RemoveContainer { id: String },
    /// Everything has stopped for a pod being deleted: report its final status and delete its object.
    DeletePod,
}

// ANCHOR: sync_actions
/// What to do now for `pod`, given what runs for it.
pub fn sync_actions(
    pod: &Pod,
    observed: &ObservedPod,
    now: Timestamp,
    backoff: &BackOff,
    probes: &ProbeResults,
) -> Vec<Action> {
    let Some(spec) = pod.spec.as_ref() else { return Vec::new() };
    let mut actions = Vec::new();

    // 1. Deletion: stop everything, then let the object go.
    if pod.metadata.deletion_timestamp.is_some() {
        let grace = deletion_grace(pod);
        // The containers first, while they still have their network; the sandbox after them.
        for container in running_of(observed, Role::Container) {
            actions.push(kill(container, grace, format!("Stopping container {}", container.owner.container)));
        }
        for sandbox in running_of(observed, Role::Sandbox) {
            actions.push(Action::StopSandbox { id: sandbox.id.clone() });
        }
        if actions.is_empty() {
            actions.push(Action::DeletePod);
        }
        return actions;
    }

    let policy = spec.restart_policy.as_deref().unwrap_or("Always");
    let finished = pod_finished(pod, observed);
    let sandbox_ready = observed.ready_sandbox().is_some();

    // 2. The sandbox: the pod's network namespace.
    if !sandbox_ready && !finished {
        for container in running_of(observed, Role::Container) {
            let message = "Pod sandbox changed, it will be killed and re-created.".to_string();
            actions.push(kill(container, grace_period(pod), message));
        }
        for sandbox in running_of(observed, Role::Sandbox) {
            actions.push(Action::StopSandbox { id: sandbox.id.clone() });
        }
        // A `Never` pod whose containers have already run is not given a second sandbox: what was running is
        // killed, and the pod ends Failed.
        let ran = observed.containers.iter().any(|c| c.owner.role == Role::Container);
        if policy == "Never" && ran {
            housekeeping(pod, observed, &mut actions);
            return actions;
        }
        let attempt = observed.sandbox().map_or(0, |s| s.owner.attempt + 1);
        let failed_at = observed.sandbox().and_then(sandbox_failed_at);
        match failed_at.and_then(|at| backoff.waiting(SANDBOX_CONTAINER_NAME, at, now)) {
            Some((until, _)) => {
                actions.push(Action::SandboxBackOff { until });
                housekeeping(pod, observed, &mut actions);
                return actions;
            }
            None => actions.push(Action::CreateSandbox { attempt, replacing: failed_at }),
        }
    }

    // 3. Each container of the spec.
    if !finished {
        let inputs = Inputs { pod, observed, now, backoff, probes, policy, new_sandbox: !sandbox_ready };
        for container in &spec.containers {
            actions.extend(container_actions(&inputs, container));
        }
    }

    // 4. A finished pod releases its network.
    if finished && let Some(sandbox) = observed.sandbox().filter(|s| s.is_running()) {
        actions.push(Action::StopSandbox { id: sandbox.id.clone() });
    }

    // 5. Housekeeping.
    housekeeping(pod, observed, &mut actions);
    actions
}
// ANCHOR_END: sync_actions

/// What the decision for each container looks at.
struct Inputs<'a> {
    pod: &'a Pod,
    observed: &'a ObservedPod,
    now: Timestamp,
    backoff: &'a BackOff,
    probes: &'a ProbeResults,
    policy: &'a str,
    /// The sandbox is being (re)created in this pass: containers start in the new one.
    new_sandbox: bool,
}

/// What to do about one container of the spec.
fn container_actions(inputs: &Inputs<'_>, container: &Container) -> Vec<Action> {
    let Inputs { pod, observed, now, backoff, probes, policy, new_sandbox } = *inputs;
    let mut actions = Vec::new();
    let name = container.name.clone();
    let Some(latest) = observed.latest(&name) else {
        actions.push(Action::StartContainer { name, attempt: 0, restart_of: None });
        return actions;
    };
    match &latest.state {
        ContainerState::Running { .. } if new_sandbox => {
            // Killed above with its dead sandbox; it comes back in the new one.
            actions.push(Action::StartContainer { name, attempt: latest.owner.attempt + 1, restart_of: None });
        }
        ContainerState::Running { .. } => {
            if probes.liveness_failed(&latest.id) {
                let message = format!("Container {name} failed liveness probe, will be restarted");
                actions.push(kill(latest, grace_period(pod), message));
            } else if container.image.as_deref().is_some_and(|image| image != latest.image) {
                let message = format!("Container {name} definition changed, will be restarted");
                actions.push(kill(latest, grace_period(pod), message));
            }
        }
        ContainerState::Created => {
            // Created but never started (the kubelet died in between): start this attempt afresh.
            actions.push(Action::RemoveContainer { id: latest.id.clone() });
            actions.push(Action::StartContainer { name, attempt: latest.owner.attempt, restart_of: None });
        }
        ContainerState::Exited { exit_code, finished_at, .. } => {
            if !should_restart(policy, *exit_code) {
                return actions;
            }
            match backoff.waiting(&name, *finished_at, now) {
                Some((until, delay)) if !new_sandbox => actions.push(Action::BackOff { name, until, delay }),
                _ => actions.push(Action::StartContainer {
                    name,
                    attempt: latest.owner.attempt + 1,
                    restart_of: Some(*finished_at),
                }),
            }
        }
    }
    actions
}

/// Kills containers no spec names, removes old attempts and dead sandboxes nobody refers to.
fn housekeeping(pod: &Pod, observed: &ObservedPod, actions: &mut Vec<Action>) {
    let spec_names: Vec<&str> = pod.spec.iter().flat_map(|s| &s.containers).map(|c| c.name.as_str()).collect();
    let mut removed: Vec<&str> = Vec::new();
    for container in observed.containers.iter().filter(|c| c.owner.role == Role::Container) {
        let name = container.owner.container.as_str();
        if !spec_names.contains(&name) {
            if container.is_running() {
                actions.push(kill(container, grace_period(pod), format!("Stopping container {name}")));
            } else {
                actions.push(Action::RemoveContainer { id: container.id.clone() });
                removed.push(&container.id);
            }
        }
    }
    for name in &spec_names {
        for old in observed.attempts(name).into_iter().skip(2).filter(|c| !c.is_running()) {
            actions.push(Action::RemoveContainer { id: old.id.clone() });
            removed.push(&old.id);
        }
    }
    let newest = observed.sandbox().map(|s| s.id.as_str());
    for sandbox in observed.containers.iter().filter(|c| c.owner.role == Role::Sandbox) {
        if Some(sandbox.id.as_str()) == newest {
            continue;
        }
        if sandbox.is_running() {
            if !actions.contains(&Action::StopSandbox { id: sandbox.id.clone() }) {
                actions.push(Action::StopSandbox { id: sandbox.id.clone() });
            }
            continue;
        }
        let referenced = observed.containers.iter().any(|c| {
            c.owner.role == Role::Container
                && !removed.contains(&c.id.as_str())
                && c.sandbox_id.as_deref() == Some(sandbox.id.as_str())
        });
        if !referenced {
            actions.push(Action::RemoveContainer { id: sandbox.id.clone() });
        }
    }
}

/// When a sandbox that is not running failed: when it exited, or, if it never started (its start failed),
/// when it was created. The sandbox's back-off counts from then, under the key `POD` (no container of a spec
/// can be named so: container names are lowercase).
fn sandbox_failed_at(sandbox: &ContainerInfo) -> Option<Timestamp> {
    match sandbox.state {
        ContainerState::Running { .. } => None,
        ContainerState::Exited { finished_at, .. } => Some(finished_at),
        ContainerState::Created => Some(sandbox.created_at),
    }
}

/// The running sandboxes, or the running application containers.
fn running_of(observed: &ObservedPod, role: Role) -> impl Iterator<Item = &ContainerInfo> {
    observed.containers.iter().filter(move |c| c.owner.role == role && c.is_running())
}

fn kill(container: &ContainerInfo, grace: Duration, message: String) -> Action {
    Action::KillContainer { id: container.id.clone(), name: container.owner.container.clone(), grace, message }
}

/// `Always` restarts every exit, `OnFailure` only failures, `Never` nothing.
pub fn should_restart(policy: &str, exit_code: i64) -> bool {
    match policy {
        "Never" => false,
        "OnFailure" => exit_code != 0,
        _ => true,
    }
}

/// True when the pod is done for good: its phase is already terminal, or every container of its spec has exited
/// and its restart policy restarts none of them.
pub fn pod_finished(pod: &Pod, observed: &ObservedPod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    if matches!(phase, Some("Succeeded" | "Failed")) {
        return true;
    }
    let Some(spec) = pod.spec.as_ref() else { return true };
    let policy = spec.restart_policy.as_deref().unwrap_or("Always");
    !spec.containers.is_empty()
        && spec.containers.iter().all(|c| match observed.latest(&c.name).map(|l| &l.state) {
            Some(ContainerState::Exited { exit_code, .. }) => !should_restart(policy, *exit_code),
            _ => false,
        })
}

/// The pod's `terminationGracePeriodSeconds` (30 s by default), at least [`MINIMUM_GRACE`].
pub fn grace_period(pod: &Pod) -> Duration {
    let seconds = pod.spec.as_ref().and_then(|s| s.termination_grace_period_seconds).unwrap_or(30);
    Duration::from_secs(u64::try_from(seconds).unwrap_or(0)).max(MINIMUM_GRACE)
}

/// The grace period of a deletion: `deletionGracePeriodSeconds` (what `kubectl delete --grace-period` set), else
/// the pod's own, at least [`MINIMUM_GRACE`].
pub fn deletion_grace(pod: &Pod) -> Duration {
    match pod.metadata.deletion_grace_period_seconds {
        Some(seconds) => Duration::from_secs(u64::try_from(seconds).unwrap_or(0)).max(MINIMUM_GRACE),
        None => grace_period(pod),
    }
}

#[cfg(test)]
#[path = "sync_tests.rs"]
mod tests;
