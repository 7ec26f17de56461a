//! What a controller needs to know about pods: which count, which are ready or available, which to delete first,
//! and how a pod is made from a template.
//!
//! Mirrors `pkg/api/v1/pod/util.go` (`IsPodReady`, `IsPodAvailable`) and `pkg/controller/controller_utils.go`
//! (`FilterActivePods`, `ActivePodsWithRanks`, `GetPodFromTemplate`).

use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use std::cmp::Ordering;

/// Whether a pod still counts as one of its controller's replicas: not finished (`Succeeded`, `Failed`) and not
/// being deleted. A terminating pod is on its way out; counting it would delay its replacement.
pub fn is_active(pod: &Pod) -> bool {
    let phase = phase(pod);
    phase != "Succeeded" && phase != "Failed" && pod.metadata.deletion_timestamp.is_none()
}

/// `status.phase`, `""` when unset.
pub fn phase(pod: &Pod) -> &str {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("")
}

/// When the pod's `Ready` condition last became `True`; `None` if it is not ready.
pub fn ready_since(pod: &Pod) -> Option<Option<&Time>> {
    let conditions = pod.status.as_ref()?.conditions.as_ref()?;
    let ready = conditions.iter().find(|c| c.type_ == "Ready")?;
    (ready.status == "True").then_some(ready.last_transition_time.as_ref())
}

/// Whether the kubelet reports the pod `Ready` (its readiness probes pass): it may receive traffic.
pub fn is_ready(pod: &Pod) -> bool {
    ready_since(pod).is_some()
}

// ANCHOR: available
/// Whether the pod has been ready for at least `min_ready_seconds`: *available*, in Kubernetes' words. A pod that
/// crashes right after becoming ready never becomes available, which is what `minReadySeconds` is for.
pub fn is_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    match ready_since(pod) {
        None => false,
        Some(_) if min_ready_seconds <= 0 => true,
        Some(None) => false,
        Some(Some(since)) => since.0 + SignedDuration::from_secs(i64::from(min_ready_seconds)) < now,
    }
}
// ANCHOR_END: available

/// For a pod that is ready but not yet available, how long until it becomes available.
pub fn time_to_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> Option<std::time::Duration> {
    let since = ready_since(pod)??;
    if min_ready_seconds <= 0 || is_available(pod, min_ready_seconds, now) {
        return None;
    }
    let at = since.0 + SignedDuration::from_secs(i64::from(min_ready_seconds));
    let wait = now.duration_until(at);
    Some(std::time::Duration::try_from(wait).unwrap_or_default() + std::time::Duration::from_secs(1))
}

// ANCHOR: deletion_order
/// Orders pods so that the best ones to delete come first, as Kubernetes' `ActivePodsWithRanks`, simplified:
///
/// 1. not yet scheduled to a node, before scheduled;
/// 2. `Pending`, before `Unknown`, before `Running` (it has done the least work);
/// 3. not ready, before ready (it serves no traffic);
/// 4. lower `controller.kubernetes.io/pod-deletion-cost` annotation, before higher;
/// 5. ready for a shorter time, before longer;
/// 6. more container restarts, before fewer;
/// 7. younger, before older.
///
/// Left out: Kubernetes also prefers pods on nodes crowded with pods of the same ReplicaSet, compares
/// ready times on a logarithmic scale, and breaks ties randomly by UID.
pub fn deletion_order(a: &Pod, b: &Pod) -> Ordering {
    let scheduled = |p: &Pod| p.spec.as_ref().and_then(|s| s.node_name.as_deref()).is_some_and(|n| !n.is_empty());
    let phase_rank = |p: &Pod| match phase(p) {
        "Unknown" => 1,
        "Running" => 2,
        _ => 0,
    };
    let cost = |p: &Pod| {
        let annotations = p.metadata.annotations.as_ref();
        annotations
            .and_then(|a| a.get("controller.kubernetes.io/pod-deletion-cost"))
            .and_then(|v| v.parse::<i32>().ok())
            .unwrap_or(0)
    };
    let restarts = |p: &Pod| {
        let statuses = p.status.as_ref().and_then(|s| s.container_statuses.as_ref());
        statuses.into_iter().flatten().map(|c| c.restart_count).max().unwrap_or(0)
    };
    let ready_time = |p: &Pod| ready_since(p).flatten().map(|t| t.0);
    let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
    scheduled(a)
        .cmp(&scheduled(b))
        .then(phase_rank(a).cmp(&phase_rank(b)))
        .then(is_ready(a).cmp(&is_ready(b)))
        .then(cost(a).cmp(&cost(b)))
        // A later ready time (ready for less time) and a later creation come first: compare b with a.
        .then_with(|| if is_ready(a) && is_ready(b) { ready_time(b).cmp(&ready_time(a)) } else { Ordering::Equal })
        .then(restarts(b).cmp(&restarts(a)))
        .then(created_order(created(a), created(b)))
}
// ANCHOR_END: deletion_order

/// Younger first; a pod without a creation time (not yet stored) first of all.
fn created_order(a: Option<Timestamp>, b: Option<Timestamp>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(a), Some(b)) => b.cmp(&a),
    }
}

// ANCHOR: pod_from_template
/// A new pod for the controller `owner` (named `owner_name`) from its pod template: the template's labels,
/// annotations, finalizers and spec, a name generated from `<owner_name>-`, and `owner` as its controller.
pub fn pod_from_template(template: &PodTemplateSpec, namespace: &str, owner_name: &str, owner: OwnerReference) -> Pod {
    let template_meta = template.metadata.clone().unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{owner_name}-")),
            namespace: Some(namespace.to_string()),
            labels: template_meta.labels,
            annotations: template_meta.annotations,
            finalizers: template_meta.finalizers,
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        spec: template.spec.clone(),
        status: None,
    }
}
// ANCHOR_END: pod_from_template

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ContainerStatus, PodCondition, PodSpec, PodStatus};

    /// A pod as the tests need it: a name, a phase, ready since some seconds before `t0()` or not, created
    /// some seconds before `t0()`.
    pub fn pod(name: &str, phase: &str, ready_for: Option<i64>, age: i64) -> Pod {
        let t0 = t0();
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                uid: Some(format!("uid-{name}")),
                creation_timestamp: Some(Time(t0 - SignedDuration::from_secs(age))),
                ..Default::default()
            },
            spec: Some(PodSpec { node_name: Some("node-1".into()), ..Default::default() }),
            status: Some(PodStatus {
                phase: Some(phase.into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready_for.is_some() { "True" } else { "False" }.into(),
                    last_transition_time: Some(Time(t0 - SignedDuration::from_secs(ready_for.unwrap_or(age)))),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        }
    }

    /// The tests' "now".
    pub fn t0() -> Timestamp {
        Timestamp::from_second(1_700_000_000).expect("a valid time")
    }

    fn sorted(mut pods: Vec<Pod>) -> Vec<String> {
        pods.sort_by(deletion_order);
        pods.into_iter().map(|p| p.metadata.name.unwrap_or_default()).collect()
    }

    #[test]
    fn unscheduled_then_pending_then_not_ready_pods_are_deleted_first() {
        let mut unscheduled = pod("unscheduled", "Pending", None, 100);
        unscheduled.spec.as_mut().unwrap().node_name = None;
        let pending = pod("pending", "Pending", None, 100);
        let not_ready = pod("not-ready", "Running", None, 100);
        let ready = pod("ready", "Running", Some(50), 100);
        assert_eq!(
            sorted(vec![ready, not_ready, pending, unscheduled]),
            vec!["unscheduled", "pending", "not-ready", "ready"]
        );
    }

    #[test]
    fn among_ready_pods_the_most_recently_ready_then_the_youngest_go_first() {
        let veteran = pod("veteran", "Running", Some(500), 1000);
        let newcomer = pod("newcomer", "Running", Some(5), 1000);
        assert_eq!(sorted(vec![veteran.clone(), newcomer]), vec!["newcomer", "veteran"]);
        let old = pod("old", "Pending", None, 1000);
        let young = pod("young", "Pending", None, 10);
        assert_eq!(sorted(vec![old, young]), vec!["young", "old"]);
    }

    #[test]
    fn a_pod_that_restarts_more_goes_first_and_deletion_cost_comes_before_both() {
        let mut crashy = pod("crashy", "Running", Some(100), 100);
        crashy.status.as_mut().unwrap().container_statuses =
            Some(vec![ContainerStatus { restart_count: 4, ..Default::default() }]);
        let steady = pod("steady", "Running", Some(100), 100);
        assert_eq!(sorted(vec![steady.clone(), crashy.clone()]), vec!["crashy", "steady"]);
        crashy.metadata.annotations =
            Some([("controller.kubernetes.io/pod-deletion-cost".to_string(), "10".to_string())].into());
        assert_eq!(sorted(vec![crashy, steady]), vec!["steady", "crashy"]);
    }

    #[test]
    fn a_pod_is_available_only_after_min_ready_seconds_of_readiness() {
        let now = t0();
        let fresh = pod("fresh", "Running", Some(3), 60);
        assert!(is_available(&fresh, 0, now));
        assert!(!is_available(&fresh, 10, now));
        assert_eq!(time_to_available(&fresh, 10, now), Some(std::time::Duration::from_secs(8)));
        assert!(is_available(&fresh, 2, now));
        assert!(!is_available(&pod("never", "Running", None, 60), 0, now));
    }

    #[test]
    fn finished_and_terminating_pods_are_not_active() {
        assert!(is_active(&pod("a", "Running", None, 1)));
        assert!(!is_active(&pod("b", "Succeeded", None, 1)));
        assert!(!is_active(&pod("c", "Failed", None, 1)));
        let mut terminating = pod("d", "Running", None, 1);
        terminating.metadata.deletion_timestamp = Some(Time(t0()));
        assert!(!is_active(&terminating));
    }
}
