//! Node health: is the kubelet still there, and which taints say so to the scheduler and to the Pods.
//!
//! Pure functions of a Node, its Lease and the current time, after Kubernetes' `tryUpdateNodeHealth`,
//! `doNoScheduleTaintingPass` and `processTaintBaseEviction` (`pkg/controller/nodelifecycle`).

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kubelab_api::taints::{
    DISK_PRESSURE, MEMORY_PRESSURE, NETWORK_UNAVAILABLE, NO_EXECUTE, NO_SCHEDULE, NOT_READY, PID_PRESSURE, UNREACHABLE,
    UNSCHEDULABLE,
};
use std::time::Duration;

/// Which `NoSchedule` taint each (condition, status) calls for: Kubernetes' `nodeConditionToTaintKeyStatusMap`
/// ("taint nodes by condition"), plus `spec.unschedulable` (`kubectl cordon`).
const CONDITION_TAINTS: &[(&str, &str, &str)] = &[
    ("Ready", "False", NOT_READY),
    ("Ready", "Unknown", UNREACHABLE),
    ("MemoryPressure", "True", MEMORY_PRESSURE),
    ("DiskPressure", "True", DISK_PRESSURE),
    ("PIDPressure", "True", PID_PRESSURE),
    ("NetworkUnavailable", "True", NETWORK_UNAVAILABLE),
];

/// The conditions the controller marks `Unknown` when the kubelet goes quiet (the kubelet owns them).
const KUBELET_CONDITIONS: &[&str] = &["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

// ANCHOR: timings
/// How long a kubelet may stay silent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthTimings {
    /// `--node-monitor-grace-period`: a node whose last heartbeat is older is `Unknown`. 50 s since Kubernetes
    /// 1.32 (40 s before): several missed 10 s lease renewals, and time for the kubelet's HTTP/2 connection to
    /// the apiserver to notice it is broken and reconnect.
    pub grace_period: Duration,
    /// `--node-startup-grace-period`: a node that never reported gets this long after its creation.
    pub startup_grace_period: Duration,
}

impl Default for HealthTimings {
    fn default() -> Self {
        HealthTimings { grace_period: Duration::from_secs(50), startup_grace_period: Duration::from_secs(60) }
    }
}
// ANCHOR_END: timings

/// What the controller writes to one node after one look at it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeUpdate {
    /// The node's conditions with the kubelet's ones marked `Unknown`, to write through `nodes/status`.
    pub conditions: Option<Vec<NodeCondition>>,
    /// The node's taints, when they must change.
    pub taints: Option<Vec<Taint>>,
    /// Ready was `True` and is no longer: Kubernetes records a `NodeNotReady` event.
    pub became_not_ready: bool,
}

/// `timestamp + duration`, saturating at the end of time instead of overflowing.
pub fn after(timestamp: Timestamp, duration: Duration) -> Timestamp {
    timestamp.saturating_add(duration).unwrap_or(Timestamp::MAX)
}

/// The condition of `type_` among `conditions`.
pub fn condition<'a>(conditions: &'a [NodeCondition], type_: &str) -> Option<&'a NodeCondition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// The node's Ready status (`True`, `False`, `Unknown`), if it has one.
pub fn ready_status(node: &Node) -> Option<&str> {
    let conditions = node.status.as_ref().and_then(|s| s.conditions.as_deref()).unwrap_or_default();
    condition(conditions, "Ready").map(|c| c.status.as_str())
}

// ANCHOR: heartbeat
/// When the kubelet last said it is alive: its Lease's `renewTime` (every 10 s) or the Ready condition's
/// `lastHeartbeatTime` (when it posts its status), whichever is later.
///
/// Kubernetes compares *its own clock* at the moment it saw either change, so that a kubelet whose clock is
/// wrong is not judged by it. Every kubelab component runs on the same machine and clock, so we read the times
/// the kubelet wrote.
pub fn last_heartbeat(node: &Node, lease: Option<&Lease>) -> Option<Timestamp> {
    let renewed = lease.and_then(|l| l.spec.as_ref()).and_then(|s| s.renew_time.as_ref()).map(|t| t.0);
    let conditions = node.status.as_ref().and_then(|s| s.conditions.as_deref()).unwrap_or_default();
    let posted = condition(conditions, "Ready").and_then(|c| c.last_heartbeat_time.as_ref()).map(|t| t.0);
    renewed.max(posted)
}
// ANCHOR_END: heartbeat

// ANCHOR: check_node
/// The node's conditions as the controller must write them, or `None` when the kubelet is on time.
///
/// A silent kubelet cannot report its own death: the controller does it for it, setting the kubelet's
/// conditions to `Unknown` with Kubernetes' own reason and message.
pub fn mark_unknown_if_silent(
    node: &Node,
    lease: Option<&Lease>,
    now: Timestamp,
    timings: &HealthTimings,
) -> Option<Vec<NodeCondition>> {
    let conditions = node.status.as_ref().and_then(|s| s.conditions.clone()).unwrap_or_default();
    let created = node.metadata.creation_timestamp.as_ref().map(|t| t.0).unwrap_or(now);
    let reported = condition(&conditions, "Ready").is_some();
    let (since, grace) = match last_heartbeat(node, lease) {
        Some(heartbeat) if reported => (heartbeat, timings.grace_period),
        // Never reported (a lease alone is not a status): the longer startup grace, counted from creation.
        _ => (created, timings.startup_grace_period),
    };
    if now <= after(since, grace) {
        return None;
    }
    let mut updated = conditions.clone();
    for type_ in KUBELET_CONDITIONS {
        match updated.iter_mut().find(|c| c.type_ == *type_) {
            Some(existing) if existing.status != "Unknown" => {
                existing.status = "Unknown".into();
                existing.reason = Some("NodeStatusUnknown".into());
                existing.message = Some("Kubelet stopped posting node status.".into());
                existing.last_transition_time = Some(Time(now));
            }
            Some(_) => {}
            None => updated.push(NodeCondition {
                type_: type_.to_string(),
                status: "Unknown".into(),
                reason: Some("NodeStatusNeverUpdated".into()),
                message: Some("Kubelet never posted node status.".into()),
                last_heartbeat_time: Some(Time(created)),
                last_transition_time: Some(Time(now)),
            }),
        }
    }
    (updated != conditions).then_some(updated)
}
// ANCHOR_END: check_node

// ANCHOR: taints
/// The node's taints as its conditions call for; `None` when they are already right.
///
/// `NoSchedule` taints keep new Pods away from a node that is not Ready or under pressure. `NoExecute` taints
/// (`not-ready` for Ready=False, `unreachable` for Ready=Unknown) also evict the Pods already there, once their
/// tolerations run out — except in a *full disruption* (`evictions_stopped`), see [`full_disruption`].
pub fn desired_taints(node: &Node, evictions_stopped: bool, now: Timestamp) -> Option<Vec<Taint>> {
    let current = node.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default();
    let conditions = node.status.as_ref().and_then(|s| s.conditions.as_deref()).unwrap_or_default();
    let mut wanted: Vec<(&str, &str)> = CONDITION_TAINTS
        .iter()
        .filter(|(type_, status, _)| condition(conditions, type_).is_some_and(|c| c.status == *status))
        .map(|(_, _, key)| (*key, NO_SCHEDULE))
        .collect();
    if node.spec.as_ref().and_then(|s| s.unschedulable) == Some(true) {
        wanted.push((UNSCHEDULABLE, NO_SCHEDULE));
    }
    // With no Ready condition at all, the NoExecute taints are left as they are, as Kubernetes does.
    let ready = condition(conditions, "Ready").map(|c| c.status.as_str());
    let manages_no_execute = ready.is_some();
    match ready {
        Some("False") if !evictions_stopped => wanted.push((NOT_READY, NO_EXECUTE)),
        Some("Unknown") if !evictions_stopped => wanted.push((UNREACHABLE, NO_EXECUTE)),
        _ => {}
    }

    let managed = |t: &Taint| match t.effect.as_str() {
        NO_SCHEDULE => t.key == UNSCHEDULABLE || CONDITION_TAINTS.iter().any(|(_, _, key)| *key == t.key),
        NO_EXECUTE => manages_no_execute && (t.key == NOT_READY || t.key == UNREACHABLE),
        _ => false,
    };
    let wants = |t: &Taint| wanted.iter().any(|(key, effect)| t.key == *key && t.effect == *effect);
    // Keep every taint someone else set, and ours that are still wanted (with their original timeAdded, from
    // which tolerationSeconds count); then add the missing ones.
    let mut taints: Vec<Taint> = current.iter().filter(|t| !managed(t) || wants(t)).cloned().collect();
    for (key, effect) in &wanted {
        if !taints.iter().any(|t| t.key == *key && t.effect == *effect) {
            taints.push(Taint {
                key: key.to_string(),
                effect: effect.to_string(),
                value: None,
                time_added: (*effect == NO_EXECUTE).then_some(Time(now)),
            });
        }
    }
    (taints != current).then_some(taints)
}
// ANCHOR_END: taints

// ANCHOR: disruption
/// Whether every node is unhealthy. Then the problem is most likely not the nodes but the control plane's view of
/// them (the controller manager cut off from the network, say): Kubernetes stops evicting, rather than delete
/// every Pod of the cluster at once, and removes the `NoExecute` taints until at least one node is Ready.
///
/// Kubernetes judges this per availability zone (the `topology.kubernetes.io/zone` label) and also slows
/// evictions down in a zone where more than 55% of nodes are unhealthy; kubelab has one zone and no rate limits.
pub fn full_disruption<'a>(ready_statuses: impl IntoIterator<Item = Option<&'a str>>) -> bool {
    let (mut ready, mut not_ready) = (0, 0);
    for status in ready_statuses {
        if status == Some("True") {
            ready += 1;
        } else {
            not_ready += 1;
        }
    }
    ready == 0 && not_ready > 0
}
// ANCHOR_END: disruption

/// Everything the controller writes to one node: the conditions first, then the taints they call for.
pub fn plan_node(
    node: &Node,
    lease: Option<&Lease>,
    now: Timestamp,
    timings: &HealthTimings,
    evictions_stopped: bool,
) -> NodeUpdate {
    let conditions = mark_unknown_if_silent(node, lease, now, timings);
    let mut observed = node.clone();
    if let Some(conditions) = &conditions {
        observed.status.get_or_insert_with(Default::default).conditions = Some(conditions.clone());
    }
    let became_not_ready = ready_status(node) == Some("True") && ready_status(&observed) != Some("True");
    let taints = desired_taints(&observed, evictions_stopped, now);
    NodeUpdate { conditions, taints, became_not_ready }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + second).unwrap()
    }

    fn stamp(second: i64) -> String {
        at(second).strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    }

    /// A node created at second 0 whose kubelet reported Ready=`ready` with a heartbeat at `heartbeat`.
    fn node(ready: Option<&str>, heartbeat: i64, taints: serde_json::Value) -> Node {
        let conditions: Vec<serde_json::Value> = ready
            .map(|status| {
                json!({"type": "Ready", "status": status, "reason": "KubeletReady",
                "lastHeartbeatTime": stamp(heartbeat), "lastTransitionTime": stamp(0)})
            })
            .into_iter()
            .collect();
        serde_json::from_value(json!({"metadata": {"name": "node-1", "creationTimestamp": stamp(0)},
            "spec": {"taints": taints}, "status": {"conditions": conditions}}))
        .unwrap()
    }

    fn lease(renewed: i64) -> Lease {
        serde_json::from_value(json!({"metadata": {"name": "node-1", "namespace": "kube-node-lease"},
            "spec": {"holderIdentity": "node-1", "renewTime": format!("{}.000000Z", &stamp(renewed)[..19])}}))
        .unwrap()
    }

    fn keys(taints: &[Taint]) -> Vec<String> {
        taints.iter().map(|t| format!("{}:{}", t.key, t.effect)).collect()
    }

    #[test]
    fn a_node_whose_lease_is_renewed_stays_as_its_kubelet_reported_it() {
        let timings = HealthTimings::default();
        let update = plan_node(&node(Some("True"), 0, json!([])), Some(&lease(100)), at(140), &timings, false);
        assert_eq!(update, NodeUpdate::default());
    }

    #[test]
    fn a_node_whose_lease_is_older_than_the_grace_period_becomes_unknown_and_unreachable() {
        let timings = HealthTimings::default();
        let update = plan_node(&node(Some("True"), 0, json!([])), Some(&lease(100)), at(151), &timings, false);
        let conditions = update.conditions.unwrap();
        let ready = condition(&conditions, "Ready").unwrap();
        assert_eq!(ready.status, "Unknown");
        assert_eq!(ready.reason.as_deref(), Some("NodeStatusUnknown"));
        assert_eq!(ready.message.as_deref(), Some("Kubelet stopped posting node status."));
        assert_eq!(ready.last_heartbeat_time, Some(Time(at(0))), "the heartbeat is the kubelet's, not ours");
        assert_eq!(condition(&conditions, "MemoryPressure").unwrap().reason.as_deref(), Some("NodeStatusNeverUpdated"));
        let taints = update.taints.unwrap();
        assert_eq!(
            keys(&taints),
            ["node.kubernetes.io/unreachable:NoSchedule", "node.kubernetes.io/unreachable:NoExecute"]
        );
        assert_eq!(taints[1].time_added, Some(Time(at(151))), "tolerationSeconds count from here");
        assert!(update.became_not_ready);
    }

    #[test]
    fn a_node_already_marked_is_not_rewritten() {
        let timings = HealthTimings::default();
        let mut silent = node(Some("True"), 0, json!([]));
        let first = plan_node(&silent, None, at(100), &timings, false);
        silent.status.get_or_insert_with(Default::default).conditions = first.conditions;
        silent.spec.get_or_insert_with(Default::default).taints = first.taints;
        assert_eq!(plan_node(&silent, None, at(500), &timings, false), NodeUpdate::default());
    }

    #[test]
    fn a_node_that_never_reported_gets_the_startup_grace_period() {
        let timings = HealthTimings::default();
        assert!(mark_unknown_if_silent(&node(None, 0, json!([])), Some(&lease(1)), at(60), &timings).is_none());
        let conditions = mark_unknown_if_silent(&node(None, 0, json!([])), None, at(61), &timings).unwrap();
        assert_eq!(condition(&conditions, "Ready").unwrap().reason.as_deref(), Some("NodeStatusNeverUpdated"));
    }

    #[test]
    fn a_recovered_node_loses_its_unreachable_taints_and_keeps_the_others() {
        let taints = json!([{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"},
            {"key": UNREACHABLE, "effect": "NoSchedule"},
            {"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": stamp(5)}]);
        let update =
            plan_node(&node(Some("True"), 200, taints), Some(&lease(200)), at(201), &HealthTimings::default(), false);
        assert_eq!(keys(&update.taints.unwrap()), ["dedicated:NoSchedule"]);
        assert!(update.conditions.is_none() && !update.became_not_ready);
    }

    #[test]
    fn a_node_reporting_not_ready_is_tainted_not_ready_and_keeps_the_taints_time() {
        let taints = json!([{"key": NOT_READY, "effect": "NoExecute", "timeAdded": stamp(5)}]);
        let update =
            plan_node(&node(Some("False"), 10, taints), Some(&lease(10)), at(11), &HealthTimings::default(), false);
        let taints = update.taints.unwrap();
        assert_eq!(
            keys(&taints),
            ["node.kubernetes.io/not-ready:NoExecute", "node.kubernetes.io/not-ready:NoSchedule"]
        );
        assert_eq!(taints[0].time_added, Some(Time(at(5))));
    }

    #[test]
    fn in_a_full_disruption_nodes_are_kept_from_scheduling_but_not_evicted() {
        let update = plan_node(&node(Some("True"), 0, json!([])), None, at(100), &HealthTimings::default(), true);
        assert_eq!(keys(&update.taints.unwrap()), ["node.kubernetes.io/unreachable:NoSchedule"]);
        assert!(full_disruption([Some("Unknown"), Some("False"), None]));
        assert!(!full_disruption([Some("Unknown"), Some("True")]));
        assert!(!full_disruption([]), "no nodes is not a disruption");
    }

    #[test]
    fn a_cordoned_node_is_tainted_unschedulable() {
        let mut cordoned = node(Some("True"), 0, json!([]));
        cordoned.spec.get_or_insert_with(Default::default).unschedulable = Some(true);
        let taints = desired_taints(&cordoned, false, at(1)).unwrap();
        assert_eq!(keys(&taints), ["node.kubernetes.io/unschedulable:NoSchedule"]);
    }
}
