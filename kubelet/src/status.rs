//! The pod status: what the kubelet tells the cluster about a pod, computed from what it observes.
//!
//! Everything `kubectl get pods` and `kubectl describe pod` show about a running pod — STATUS, READY, RESTARTS,
//! IP, the container states, the conditions — is written by the kubelet, into the pod's `status` subresource.
//! [`pod_status`] computes it without I/O, as Kubernetes' `generateAPIPodStatus` does:
//!
//! - **containerStatuses**, one per container of the spec, from its newest attempt: `waiting` (with the reason the
//!   kubelet last failed to start it: `ContainerCreating`, `ErrImagePull`, `CrashLoopBackOff`...), `running` or
//!   `terminated`; the attempt before it as `lastState`; `restartCount`; `ready` from the readiness probe.
//! - **phase**, from the container states (`getPhase`): `Pending` while a container has not run, `Running` while
//!   one runs (or will be restarted), `Succeeded` when all exited 0 and none will restart, `Failed` when all
//!   exited, one with an error, and none will restart.
//! - **initContainerStatuses**: kubelab does not run init containers ([`crate::container_config::unsupported_fields`]);
//!   each is reported waiting with reason `CreateContainerConfigError` and a message saying so, which
//!   `kubectl get pods` shows as `Init:CreateContainerConfigError`.
//! - **conditions**: `PodReadyToStartContainers` (the sandbox is up), `Initialized` (no init container is left to
//!   run: true unless the pod has some, since we never run them), `ContainersReady` and `Ready` (every container
//!   is ready), `PodScheduled`. A condition's `lastTransitionTime` changes only when its status does.
//! - **podIP** (the sandbox's address), **hostIP** (the node's), **startTime** (when the kubelet first saw it).
//!
//! The shell writes the result through the `status` subresource only when it differs from what is stored.

use crate::container_config::unsupported_message;
use crate::probes::{ProbeKind, ProbeResult, ProbeResults};
use crate::runtime::{ContainerInfo, ContainerState as Runtime};
use crate::sync::{ObservedPod, should_restart};
use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting, ContainerStatus,
    HostIP, Pod, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

// ANCHOR: pod_status
/// The status the pod should have now.
pub fn pod_status(pod: &Pod, observed: &ObservedPod, probes: &ProbeResults, now: Timestamp) -> PodStatus {
    let old = pod.status.clone().unwrap_or_default();
    let spec = pod.spec.clone().unwrap_or_default();
    let policy = spec.restart_policy.as_deref().unwrap_or("Always");

    let mut statuses: Vec<ContainerStatus> =
        spec.containers.iter().map(|c| container_status(c, observed, probes, policy)).collect();
    statuses.sort_by(|a, b| a.name.cmp(&b.name));

    let terminating = pod.metadata.deletion_timestamp.is_some() && !observed.containers.iter().any(|c| c.is_running());
    let phase = match old.phase.as_deref() {
        // A pod never leaves a terminal phase.
        Some(phase @ ("Succeeded" | "Failed")) => phase.to_string(),
        _ => phase(&statuses, policy, terminating).to_string(),
    };

    let sandbox_ip = observed.ready_sandbox().and_then(|s| s.ip).map(|ip| ip.to_string());
    // Once the sandbox is gone, the pod keeps reporting the IP it had (Kubernetes does the same).
    let pod_ip = sandbox_ip.or(old.pod_ip.clone());
    let host_ip = observed.host_ip.map(|ip| ip.to_string()).or(old.host_ip.clone());

    let unready: Vec<&str> = statuses.iter().filter(|s| !s.ready).map(|s| s.name.as_str()).collect();
    let finished = matches!(phase.as_str(), "Succeeded" | "Failed");
    let (ready, reason, message) = match (finished, unready.is_empty()) {
        (true, _) => ("False", Some("PodCompleted"), None),
        (false, true) => ("True", None, None),
        (false, false) => (
            "False",
            Some("ContainersNotReady"),
            Some(format!("containers with unready status: [{}]", unready.join(" "))),
        ),
    };
    let sandbox_up = if observed.ready_sandbox().is_some() { "True" } else { "False" };
    let init_statuses = init_container_statuses(&spec.init_containers.clone().unwrap_or_default());
    let (initialized, init_reason, init_message) = match &init_statuses {
        None => ("True", None, None),
        Some(init) => {
            let names: Vec<&str> = init.iter().map(|s| s.name.as_str()).collect();
            let message = format!("containers with incomplete status: [{}]", names.join(" "));
            ("False", Some("ContainersNotInitialized"), Some(message))
        }
    };
    let conditions = vec![
        condition(&old, "PodReadyToStartContainers", sandbox_up, None, None, now),
        condition(&old, "Initialized", initialized, init_reason, init_message, now),
        condition(&old, "Ready", ready, reason, message.clone(), now),
        condition(&old, "ContainersReady", ready, reason, message, now),
        condition(&old, "PodScheduled", "True", None, None, now),
    ];

    PodStatus {
        phase: Some(phase),
        conditions: Some(conditions),
        container_statuses: Some(statuses),
        init_container_statuses: init_statuses,
        pod_ips: pod_ip.clone().map(|ip| vec![PodIP { ip }]),
        pod_ip,
        host_ips: host_ip.clone().map(|ip| vec![HostIP { ip }]),
        host_ip,
        start_time: old.start_time.clone().or(Some(Time(now))),
        qos_class: old.qos_class.clone(),
        ..Default::default()
    }
}
// ANCHOR_END: pod_status

/// `getPhase`. A waiting container that has run before counts as stopped (it is restarting), not as pending.
/// `terminal` is true for a pod being deleted whose containers have all stopped: it ends Succeeded or Failed.
fn phase(statuses: &[ContainerStatus], policy: &str, terminal: bool) -> &'static str {
    let (mut waiting, mut running, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for status in statuses {
        let state = status.state.clone().unwrap_or_default();
        if state.running.is_some() {
            running += 1;
        } else if let Some(terminated) = state.terminated {
            stopped += 1;
            if terminated.exit_code == 0 {
                succeeded += 1;
            }
        } else if status.last_state.as_ref().is_some_and(|s| s.terminated.is_some()) {
            stopped += 1;
        } else {
            waiting += 1;
        }
    }
    if terminal && running == 0 {
        return if waiting == 0 && stopped == succeeded { "Succeeded" } else { "Failed" };
    }
    if waiting > 0 {
        "Pending"
    } else if running > 0 {
        "Running"
    } else if stopped > 0 {
        match policy {
            // Every container is being restarted.
            "Always" => "Running",
            _ if stopped == succeeded => "Succeeded",
            "Never" => "Failed",
            // OnFailure: the failed ones are being restarted.
            _ => "Running",
        }
    } else {
        "Pending"
    }
}

/// The status of one container of the spec, from its newest attempts.
fn container_status(spec: &Container, observed: &ObservedPod, probes: &ProbeResults, policy: &str) -> ContainerStatus {
    let attempts = observed.attempts(&spec.name);
    let image = spec.image.clone().unwrap_or_default();
    let mut status = ContainerStatus {
        name: spec.name.clone(),
        image: image.clone(),
        image_id: String::new(),
        restart_count: 0,
        ready: false,
        started: Some(false),
        ..Default::default()
    };
    let cached = observed.waiting.get(&spec.name);
    let waiting = |reason: &str, message: Option<String>| ContainerState {
        waiting: Some(ContainerStateWaiting { reason: Some(reason.to_string()), message }),
        ..Default::default()
    };
    let Some(latest) = attempts.first() else {
        status.state = Some(match cached {
            Some(w) => waiting(&w.reason, Some(w.message.clone())),
            None => waiting("ContainerCreating", None),
        });
        return status;
    };
    status.container_id = Some(format!("docker://{}", latest.id));
    status.image_id = image_id(latest);
    status.restart_count = i32::try_from(latest.owner.attempt).unwrap_or(i32::MAX);
    let previous = attempts
        .get(1)
        .and_then(|c| terminated(c))
        .map(|t| ContainerState { terminated: Some(t), ..Default::default() });
    match &latest.state {
        Runtime::Running { started_at } => {
            status.state = Some(ContainerState {
                running: Some(ContainerStateRunning { started_at: Some(Time(*started_at)) }),
                ..Default::default()
            });
            status.last_state = previous;
            status.started = Some(true);
            status.ready = match spec.readiness_probe {
                Some(_) => probes.get(&latest.id, ProbeKind::Readiness) == Some(ProbeResult::Success),
                None => true,
            };
        }
        Runtime::Exited { exit_code, .. } => {
            let this = terminated(latest).map(|t| ContainerState { terminated: Some(t), ..Default::default() });
            match cached.filter(|_| should_restart(policy, *exit_code)) {
                // Waiting to be restarted: the exit becomes the last state.
                Some(w) => {
                    status.state = Some(waiting(&w.reason, Some(w.message.clone())));
                    status.last_state = this;
                }
                None => {
                    status.state = this;
                    status.last_state = previous;
                }
            }
        }
        Runtime::Created => {
            status.state = Some(waiting("ContainerCreating", None));
            status.last_state = previous;
        }
    }
    status
}

// ANCHOR: init_container_statuses
/// The init containers, all waiting: kubelab never runs them (and so never starts the pod's other containers,
/// which would otherwise run before what they depend on). `None` for a pod without init containers.
fn init_container_statuses(init: &[Container]) -> Option<Vec<ContainerStatus>> {
    if init.is_empty() {
        return None;
    }
    let fields = ["spec.initContainers".to_string()];
    let statuses = init
        .iter()
        .map(|container| ContainerStatus {
            name: container.name.clone(),
            image: container.image.clone().unwrap_or_default(),
            state: Some(ContainerState {
                waiting: Some(ContainerStateWaiting {
                    reason: Some("CreateContainerConfigError".into()),
                    message: Some(unsupported_message(&container.name, &fields)),
                }),
                ..Default::default()
            }),
            started: Some(false),
            ..Default::default()
        })
        .collect();
    Some(statuses)
}
// ANCHOR_END: init_container_statuses

/// The terminated state of an exited container (`None` if it has not exited).
fn terminated(container: &ContainerInfo) -> Option<ContainerStateTerminated> {
    let Runtime::Exited { exit_code, started_at, finished_at, oom_killed } = &container.state else { return None };
    let reason = match (oom_killed, exit_code) {
        (true, _) => "OOMKilled",
        (false, 0) => "Completed",
        (false, _) => "Error",
    };
    Some(ContainerStateTerminated {
        container_id: Some(format!("docker://{}", container.id)),
        exit_code: i32::try_from(*exit_code).unwrap_or(-1),
        reason: Some(reason.to_string()),
        started_at: started_at.map(Time),
        finished_at: Some(Time(*finished_at)),
        ..Default::default()
    })
}

/// `docker://sha256:...` for a local image, as the Docker runtime reports it.
fn image_id(container: &ContainerInfo) -> String {
    if container.image_id.is_empty() { String::new() } else { format!("docker://{}", container.image_id) }
}

/// A condition, keeping its `lastTransitionTime` when its status did not change.
fn condition(
    old: &PodStatus,
    kind: &str,
    status: &str,
    reason: Option<&str>,
    message: Option<String>,
    now: Timestamp,
) -> PodCondition {
    let previous = old.conditions.iter().flatten().find(|c| c.type_ == kind);
    let last_transition_time = match previous {
        Some(p) if p.status == status => p.last_transition_time.clone(),
        _ => Some(Time(now)),
    };
    PodCondition {
        type_: kind.to_string(),
        status: status.to_string(),
        reason: reason.map(String::from),
        message,
        last_transition_time,
        last_probe_time: None,
        observed_generation: None,
    }
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
