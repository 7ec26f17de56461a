//! Taints and tolerations: which pods a node repels, and which pods put up with it.
//!
//! A node's **taint** (`key=value:effect`) repels pods; a pod's **toleration** lets it stay despite one. The
//! scheduler reads them to decide where a pod may go (`NoSchedule`, `NoExecute`), and the node lifecycle
//! controller reads them to decide when a pod must leave a node (`NoExecute`, for `tolerationSeconds`). Both must
//! agree on what "tolerates" means, so it is defined once, here, as Kubernetes defines it once in `k8s.io/api`
//! (`core/v1/toleration.go`, `Toleration.ToleratesTaint`), with the taint keys and effects of
//! `core/v1/well_known_taints.go` and `types.go`.
//!
//! `tolerationSeconds` is not part of the match: a toleration with `tolerationSeconds: 60` tolerates its taint
//! exactly like one without, the scheduler ignores it, and only the eviction decides how long a tolerating pod
//! may stay (see `controller-manager/src/node_lifecycle/eviction.rs`).
//!
//! What we leave out: the `Lt` and `Gt` operators (numeric comparison of values, alpha in Kubernetes 1.35
//! behind `TaintTolerationComparisonOperators`); validation refuses them, and here they tolerate nothing.

use k8s_openapi::api::core::v1::{Taint, Toleration};

/// Effect: new pods are not scheduled onto the node unless they tolerate the taint.
pub const NO_SCHEDULE: &str = "NoSchedule";
/// Effect: like `NoSchedule`, but only a preference of the scheduler.
pub const PREFER_NO_SCHEDULE: &str = "PreferNoSchedule";
/// Effect: pods already on the node are evicted unless they tolerate the taint (for `tolerationSeconds`).
pub const NO_EXECUTE: &str = "NoExecute";

/// The node's `Ready` condition is `False`: its kubelet says it cannot run pods.
pub const NOT_READY: &str = "node.kubernetes.io/not-ready";
/// The node's `Ready` condition is `Unknown`: its kubelet stopped reporting.
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// The node is cordoned (`spec.unschedulable`, `kubectl cordon`).
pub const UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";
/// The node's `MemoryPressure` condition is `True`.
pub const MEMORY_PRESSURE: &str = "node.kubernetes.io/memory-pressure";
/// The node's `DiskPressure` condition is `True`.
pub const DISK_PRESSURE: &str = "node.kubernetes.io/disk-pressure";
/// The node's `PIDPressure` condition is `True`.
pub const PID_PRESSURE: &str = "node.kubernetes.io/pid-pressure";
/// The node's `NetworkUnavailable` condition is `True`.
pub const NETWORK_UNAVAILABLE: &str = "node.kubernetes.io/network-unavailable";

// ANCHOR: tolerates
/// Whether `toleration` tolerates `taint` (Kubernetes' `Toleration.ToleratesTaint`):
///
/// 1. an empty effect matches every effect, otherwise the effects must be equal;
/// 2. an empty key matches every key (validation allows it only with `Exists`), otherwise the keys must be equal;
/// 3. `Exists` matches every value; `Equal` — and an empty operator, which *means* `Equal` — needs equal values.
///
/// Any other operator tolerates nothing.
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    let effect = toleration.effect.as_deref().unwrap_or_default();
    if !effect.is_empty() && effect != taint.effect {
        return false;
    }
    let key = toleration.key.as_deref().unwrap_or_default();
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match toleration.operator.as_deref().unwrap_or_default() {
        "" | "Equal" => toleration.value.as_deref().unwrap_or_default() == taint.value.as_deref().unwrap_or_default(),
        "Exists" => true,
        _ => false,
    }
}

/// Whether any of `tolerations` tolerates `taint` (Kubernetes' `TolerationsTolerateTaint`).
pub fn any_tolerates(tolerations: &[Toleration], taint: &Taint) -> bool {
    tolerations.iter().any(|toleration| tolerates(toleration, taint))
}
// ANCHOR_END: tolerates

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    // ANCHOR: decision_table
    /// The whole decision, case by case: what the case shows, the toleration, the taint, and the verdict.
    #[test]
    fn tolerations_match_taints_as_kubernetes_matches_them() {
        let gpu =
            Taint { key: "gpu".into(), value: Some("nvidia".into()), effect: NO_SCHEDULE.into(), time_added: None };
        let spot = Taint { key: "spot".into(), value: None, effect: NO_EXECUTE.into(), time_added: None };
        let cases: [(&str, Value, &Taint, bool); 16] = [
            ("Equal compares values", json!({"key": "gpu", "operator": "Equal", "value": "nvidia"}), &gpu, true),
            ("an empty operator is Equal", json!({"key": "gpu", "operator": "", "value": "nvidia"}), &gpu, true),
            ("so is no operator", json!({"key": "gpu", "value": "nvidia"}), &gpu, true),
            ("\"\" compares values too", json!({"key": "gpu", "operator": "", "value": "amd"}), &gpu, false),
            ("no value is an empty value", json!({"key": "gpu", "operator": "Equal"}), &gpu, false),
            ("...which a bare taint has", json!({"key": "spot", "operator": ""}), &spot, true),
            ("Exists matches every value", json!({"key": "gpu", "operator": "Exists"}), &gpu, true),
            ("Exists ignores its value", json!({"key": "gpu", "operator": "Exists", "value": "amd"}), &gpu, true),
            ("Exists without a key matches every key", json!({"operator": "Exists"}), &gpu, true),
            ("...and every effect", json!({"operator": "Exists"}), &spot, true),
            ("another key is not tolerated", json!({"key": "tpu", "operator": "Exists"}), &gpu, false),
            ("the same effect is", json!({"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}), &gpu, true),
            ("another effect is not", json!({"key": "gpu", "operator": "Exists", "effect": "NoExecute"}), &gpu, false),
            ("Lt and Gt are left out", json!({"key": "gpu", "operator": "Lt", "value": "nvidia"}), &gpu, false),
            // tolerationSeconds takes no part in the match: it only limits a stay on a NoExecute taint.
            ("with seconds", json!({"key": "spot", "operator": "Exists", "tolerationSeconds": 60}), &spot, true),
            ("even 0 s", json!({"key": "spot", "operator": "Exists", "tolerationSeconds": 0}), &spot, true),
        ];
        for (case, toleration, taint, expected) in cases {
            let parsed: Toleration = serde_json::from_value(toleration.clone()).unwrap();
            assert_eq!(tolerates(&parsed, taint), expected, "{case}: {toleration} against {taint:?}");
        }
    }
    // ANCHOR_END: decision_table

    #[test]
    fn a_taint_is_tolerated_when_any_toleration_tolerates_it() {
        let taint = Taint { key: UNREACHABLE.into(), value: None, effect: NO_EXECUTE.into(), time_added: None };
        let other: Toleration = serde_json::from_value(json!({"key": "gpu", "operator": "Exists"})).unwrap();
        let matching: Toleration = serde_json::from_value(json!({"key": UNREACHABLE, "operator": "Exists"})).unwrap();
        assert!(!any_tolerates(&[], &taint));
        assert!(!any_tolerates(std::slice::from_ref(&other), &taint));
        assert!(any_tolerates(&[other, matching], &taint));
    }
}
