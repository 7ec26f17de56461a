//! Taint-based eviction: when must a Pod leave a node with `NoExecute` taints?
//!
//! Pure functions after Kubernetes' taint eviction controller (`pkg/controller/tainteviction`, formerly the
//! node lifecycle controller's "taint manager"). A `NoExecute` taint evicts every Pod on the node that does not
//! tolerate it, at once; a Pod that tolerates it with `tolerationSeconds: N` may stay N seconds; one that
//! tolerates it without `tolerationSeconds` stays for good. Whether a toleration matches a taint at all is
//! [`kubelab_api::taints::tolerates`], the very function the scheduler's `TaintToleration` filter uses: a Pod
//! the scheduler placed because it tolerates a taint is not evicted for that taint.
//!
//! Every Pod in Kubernetes tolerates `not-ready` and `unreachable` for 300 s, because the `DefaultTolerationSeconds`
//! admission plugin adds those two tolerations to Pods that do not have them. kubelab has no admission plugins,
//! so the same default applies here, at decision time: [`EvictionTimings::default_toleration`].

use super::health::after;
use k8s_openapi::api::core::v1::{Pod, Taint, Toleration};
use k8s_openapi::jiff::Timestamp;
use kubelab_api::taints::{NO_EXECUTE, NOT_READY, UNREACHABLE, tolerates};
use std::time::Duration;

// ANCHOR: timings
/// How long Pods stay on a node that is not Ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvictionTimings {
    /// What `DefaultTolerationSeconds` gives every Pod without its own toleration for `not-ready` or
    /// `unreachable`: 300 s (`--default-not-ready-toleration-seconds`, `--default-unreachable-toleration-seconds`
    /// of the apiserver).
    pub default_toleration: Duration,
}

impl Default for EvictionTimings {
    fn default() -> Self {
        EvictionTimings { default_toleration: Duration::from_secs(300) }
    }
}
// ANCHOR_END: timings

// ANCHOR: eviction_time
/// When a Pod with `tolerations` must leave a node with `taints`: `None` if never.
///
/// Each `NoExecute` taint gives the Pod until `timeAdded + tolerationSeconds` (the shortest of the tolerations
/// matching it); the Pod goes at the earliest of these. A taint without `timeAdded` counts from `first_seen`.
///
/// Kubernetes counts from the moment its taint manager first noticed the taint, in memory; counting from the
/// taint's own `timeAdded` gives the same answer and survives a restart of the controller manager.
pub fn eviction_time(
    tolerations: &[Toleration],
    taints: &[Taint],
    first_seen: impl Fn(&Taint) -> Timestamp,
    timings: &EvictionTimings,
) -> Option<Timestamp> {
    let mut earliest: Option<Timestamp> = None;
    for taint in taints.iter().filter(|t| t.effect == NO_EXECUTE) {
        let since = taint.time_added.as_ref().map(|t| t.0).unwrap_or_else(|| first_seen(taint));
        let matching: Vec<&Toleration> = tolerations.iter().filter(|t| tolerates(t, taint)).collect();
        let allowed = if matching.is_empty() {
            match taint.key.as_str() {
                NOT_READY | UNREACHABLE => Some(timings.default_toleration),
                // Not tolerated at all: out at once.
                _ => Some(Duration::ZERO),
            }
        } else {
            // `None` (no tolerationSeconds) on every match: tolerated forever. Negative seconds mean at once.
            matching
                .iter()
                .filter_map(|t| t.toleration_seconds)
                .min()
                .map(|seconds| Duration::from_secs(u64::try_from(seconds).unwrap_or(0)))
        };
        if let Some(allowed) = allowed {
            let at = after(since, allowed);
            earliest = Some(earliest.map_or(at, |e| e.min(at)));
        }
    }
    earliest
}
// ANCHOR_END: eviction_time

/// A Pod due for eviction, or one to come back to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evictions {
    /// `(namespace, name)` of the Pods whose time is up.
    pub due: Vec<(String, String)>,
    /// The earliest eviction still to come, to wake up for.
    pub next: Option<Timestamp>,
}

/// Which of `pods` (those bound to a node with `taints`) must go at `now`, and when to look again. Pods already
/// terminating are left to their kubelet (or to the Pod garbage collector, if the node never comes back).
pub fn pods_to_evict(
    pods: &[Pod],
    taints: &[Taint],
    first_seen: impl Fn(&Taint) -> Timestamp,
    now: Timestamp,
    timings: &EvictionTimings,
) -> Evictions {
    let mut evictions = Evictions { due: Vec::new(), next: None };
    for pod in pods.iter().filter(|p| p.metadata.deletion_timestamp.is_none()) {
        let tolerations = pod.spec.as_ref().and_then(|s| s.tolerations.as_deref()).unwrap_or_default();
        match eviction_time(tolerations, taints, &first_seen, timings) {
            Some(at) if at <= now => evictions.due.push((
                pod.metadata.namespace.clone().unwrap_or_default(),
                pod.metadata.name.clone().unwrap_or_default(),
            )),
            Some(at) => evictions.next = Some(evictions.next.map_or(at, |n| n.min(at))),
            None => {}
        }
    }
    evictions
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use serde_json::json;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + second).unwrap()
    }

    fn taint(key: &str, effect: &str, added: Option<i64>) -> Taint {
        Taint { key: key.into(), effect: effect.into(), value: None, time_added: added.map(|s| Time(at(s))) }
    }

    fn toleration(value: serde_json::Value) -> Toleration {
        serde_json::from_value(value).unwrap()
    }

    fn pod(name: &str, tolerations: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": name, "namespace": "shop"},
            "spec": {"nodeName": "node-1", "containers": [], "tolerations": tolerations}}))
        .unwrap()
    }

    const UNSEEN: fn(&Taint) -> Timestamp = |_| panic!("every taint in these tests has a timeAdded");
    const SHORT: EvictionTimings = EvictionTimings { default_toleration: Duration::from_secs(30) };

    #[test]
    fn a_pod_without_tolerations_gets_the_default_toleration_on_an_unreachable_node() {
        let taints = [taint(UNREACHABLE, "NoExecute", Some(0)), taint(UNREACHABLE, "NoSchedule", None)];
        assert_eq!(eviction_time(&[], &taints, UNSEEN, &EvictionTimings::default()), Some(at(300)));
        assert_eq!(eviction_time(&[], &taints, UNSEEN, &SHORT), Some(at(30)));
    }

    #[test]
    fn an_explicit_toleration_seconds_replaces_the_default() {
        let tolerations = [toleration(json!({"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute",
            "tolerationSeconds": 5}))];
        let taints = [taint(UNREACHABLE, "NoExecute", Some(10))];
        assert_eq!(eviction_time(&tolerations, &taints, UNSEEN, &EvictionTimings::default()), Some(at(15)));
    }

    #[test]
    fn a_toleration_without_seconds_keeps_the_pod_forever() {
        let tolerations = [toleration(json!({"operator": "Exists"}))];
        let taints = [taint(UNREACHABLE, "NoExecute", Some(0)), taint("dedicated", "NoExecute", Some(0))];
        assert_eq!(eviction_time(&tolerations, &taints, UNSEEN, &EvictionTimings::default()), None);
    }

    #[test]
    fn an_untolerated_no_execute_taint_evicts_at_once_and_no_schedule_taints_evict_nobody() {
        let taints = [taint("dedicated", "NoExecute", Some(7))];
        assert_eq!(eviction_time(&[], &taints, UNSEEN, &EvictionTimings::default()), Some(at(7)));
        assert_eq!(eviction_time(&[], &[taint("dedicated", "NoSchedule", None)], UNSEEN, &SHORT), None);
    }

    #[test]
    fn a_toleration_with_an_empty_operator_tolerates_as_equal_does() {
        let gpu = Taint { value: Some("gpu".into()), ..taint("dedicated", "NoExecute", Some(0)) };
        let empty_operator = [toleration(json!({"key": "dedicated", "operator": "", "value": "gpu"}))];
        assert_eq!(eviction_time(&empty_operator, std::slice::from_ref(&gpu), UNSEEN, &SHORT), None);
        let other_value = [toleration(json!({"key": "dedicated", "operator": "", "value": "tpu"}))];
        assert_eq!(eviction_time(&other_value, &[gpu], UNSEEN, &SHORT), Some(at(0)));
    }

    #[test]
    fn a_taint_without_time_added_counts_from_when_it_was_first_seen() {
        let taints = [taint(NOT_READY, "NoExecute", None)];
        assert_eq!(eviction_time(&[], &taints, |_| at(100), &SHORT), Some(at(130)));
    }

    #[test]
    fn pods_are_evicted_when_their_time_is_up_and_the_next_deadline_is_reported() {
        let taints = [taint(UNREACHABLE, "NoExecute", Some(0))];
        let patient = pod("patient", json!([{"key": UNREACHABLE, "operator": "Exists", "tolerationSeconds": 600}]));
        let mut leaving = pod("leaving", json!([]));
        leaving.metadata.deletion_timestamp = Some(Time(at(31)));
        let pods = [pod("plain", json!([])), patient, leaving];
        let evictions = pods_to_evict(&pods, &taints, UNSEEN, at(31), &SHORT);
        assert_eq!(evictions.due, [("shop".to_string(), "plain".to_string())]);
        assert_eq!(evictions.next, Some(at(600)));
    }
}
