//! The Pod row: `web-1   1/2   CrashLoopBackOff   5 (2m ago)   10m`.
//!
//! The Status column is not `status.phase`: it is the most telling *reason* printers.go can find, looked for in
//! this order — the pod's own reason (`Evicted`), `SchedulingGated`, then the init containers (`Init:1/2`,
//! `Init:CrashLoopBackOff`), then the app containers (`ContainerCreating`, `CrashLoopBackOff`, `Completed`,
//! `Error`), and finally `Terminating` once the pod is being deleted. Restarts count the app containers (and
//! the sidecars, init containers with `restartPolicy: Always`) and say how long ago the last one was.

use super::format::{field, flag, int, list, or_none, since_time, text, timestamp};
use super::{AGE, Column, NAME};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

pub(super) const COLUMNS: &[Column] = &[
    NAME,
    Column::text("Ready", "The aggregate readiness state of this pod for accepting traffic."),
    Column::text("Status", "The aggregate status of the containers in this pod."),
    Column::text(
        "Restarts",
        "The number of times the containers in this pod have been restarted and when the last container in this \
        pod has restarted.",
    ),
    AGE,
    Column::text("IP", "IP address allocated to the pod.").wide(),
    Column::text("Node", "The node the pod is scheduled onto.").wide(),
    Column::text("Nominated Node", "The node the scheduler preempted other pods on, for this one.").wide(),
    Column::text("Readiness Gates", "Readiness gates that are true, out of those the pod declares.").wide(),
];

/// Restart counting: how many, and when the last one ended.
#[derive(Default, Clone, Copy)]
struct Restarts {
    count: i64,
    last: Option<DateTime<Utc>>,
}

impl Restarts {
    /// Adds one container status: its `restartCount`, and the end of its previous run.
    fn add(&mut self, status: &Value) {
        self.count += int(status, "/restartCount");
        let finished = timestamp(status, "/lastState/terminated/finishedAt");
        self.last = self.last.max(finished);
    }

    /// `0`, `3`, or `5 (2m ago)`.
    fn cell(&self, now: DateTime<Utc>) -> String {
        match self.last {
            Some(last) if self.count != 0 => format!("{} ({} ago)", self.count, since_time(Some(last), now)),
            _ => self.count.to_string(),
        }
    }
}

pub(super) fn cells(pod: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let phase = phase(pod);
    let mut reason = match text(pod, "/status/reason") {
        "" => phase.to_string(),
        own => own.to_string(),
    };
    let conditions = list(pod, "/status/conditions");
    if conditions.iter().any(|c| text(c, "/type") == "PodScheduled" && text(c, "/reason") == "SchedulingGated") {
        reason = "SchedulingGated".to_string();
    }

    // Sidecars (restartable init containers) count as containers of the pod.
    let init_specs = list(pod, "/spec/initContainers");
    let is_sidecar = |name: &str| {
        init_specs.iter().any(|spec| text(spec, "/name") == name && text(spec, "/restartPolicy") == "Always")
    };
    let total =
        list(pod, "/spec/containers").len() + init_specs.iter().filter(|s| is_sidecar(text(s, "/name"))).count();
    let mut ready = 0;
    let mut restarts = Restarts::default();
    let mut sidecar_restarts = Restarts::default();

    // Init containers run one after the other: the first one not done explains the pod.
    let mut initializing = false;
    for (index, status) in list(pod, "/status/initContainerStatuses").iter().enumerate() {
        restarts.add(status);
        let sidecar = is_sidecar(text(status, "/name"));
        if sidecar {
            sidecar_restarts.add(status);
        }
        let terminated = field(status, "/state/terminated");
        let waiting_reason = text(status, "/state/waiting/reason");
        if terminated.is_some() && int(status, "/state/terminated/exitCode") == 0 {
            continue;
        }
        if sidecar && flag(status, "/started") {
            if flag(status, "/ready") {
                ready += 1;
            }
            continue;
        }
        reason = if let Some(terminated) = terminated {
            match text(terminated, "/reason") {
                "" if int(terminated, "/signal") != 0 => format!("Init:Signal:{}", int(terminated, "/signal")),
                "" => format!("Init:ExitCode:{}", int(terminated, "/exitCode")),
                why => format!("Init:{why}"),
            }
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            format!("Init:{waiting_reason}")
        } else {
            format!("Init:{index}/{}", init_specs.len())
        };
        initializing = true;
        break;
    }

    // Once initialized, the app containers explain the pod; the last one listed with a reason wins.
    if !initializing || condition_is_true(conditions, "Initialized") {
        restarts = sidecar_restarts;
        let mut has_running = false;
        for status in list(pod, "/status/containerStatuses").iter().rev() {
            restarts.add(status);
            let waiting_reason = text(status, "/state/waiting/reason");
            if !waiting_reason.is_empty() {
                reason = waiting_reason.to_string();
            } else if let Some(terminated) = field(status, "/state/terminated") {
                reason = match text(terminated, "/reason") {
                    "" if int(terminated, "/signal") != 0 => format!("Signal:{}", int(terminated, "/signal")),
                    "" => format!("ExitCode:{}", int(terminated, "/exitCode")),
                    why => why.to_string(),
                };
            } else if flag(status, "/ready") && field(status, "/state/running").is_some() {
                has_running = true;
                ready += 1;
            }
        }
        // A finished container next to running ones does not make the pod Completed.
        if reason == "Completed" && has_running {
            reason = if condition_is_true(conditions, "Ready") { "Running" } else { "NotReady" }.to_string();
        }
    }

    if field(pod, "/metadata/deletionTimestamp").is_some() {
        if text(pod, "/status/reason") == "NodeLost" {
            reason = "Unknown".to_string();
        } else if phase != "Succeeded" && phase != "Failed" {
            reason = "Terminating".to_string();
        }
    }

    vec![
        text(pod, "/metadata/name").into(),
        format!("{ready}/{total}").into(),
        reason.into(),
        restarts.cell(now).into(),
        super::format::age(pod, now),
        or_none(text(pod, "/status/podIPs/0/ip")).into(),
        or_none(text(pod, "/spec/nodeName")).into(),
        or_none(text(pod, "/status/nominatedNodeName")).into(),
        readiness_gates(pod).into(),
    ]
}

/// The phase, `Pending` when unset: the apiserver sets it on create, so a stored pod always has one.
fn phase(pod: &Value) -> &str {
    match text(pod, "/status/phase") {
        "" => "Pending",
        phase => phase,
    }
}

/// Whether the pod condition of this type is `True`.
fn condition_is_true(conditions: &[Value], kind: &str) -> bool {
    conditions.iter().any(|c| text(c, "/type") == kind && text(c, "/status") == "True")
}

/// `1/2`: readiness gates whose condition is `True`, out of those declared; `<none>` without gates.
fn readiness_gates(pod: &Value) -> String {
    let gates = list(pod, "/spec/readinessGates");
    if gates.is_empty() {
        return "<none>".to_string();
    }
    let conditions = list(pod, "/status/conditions");
    let met = gates
        .iter()
        .filter(|gate| {
            let kind = text(gate, "/conditionType");
            conditions.iter().find(|c| text(c, "/type") == kind).is_some_and(|c| text(c, "/status") == "True")
        })
        .count();
    format!("{met}/{}", gates.len())
}

/// A finished pod's row condition: kubectl may use it to tell completed rows apart.
pub(super) fn conditions(pod: &Value) -> Option<Value> {
    let (reason, message) = match text(pod, "/status/phase") {
        "Succeeded" => ("Succeeded", "The pod has completed successfully."),
        "Failed" => ("Failed", "The pod failed."),
        _ => return None,
    };
    Some(json!([{"type": "Completed", "status": "True", "reason": reason, "message": message}]))
}
