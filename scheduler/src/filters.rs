//! The filters: can this pod run on this node at all?
//!
//! Each filter is one of kube-scheduler's *Filter plugins*, reduced to a pure function of the pod and one node.
//! It answers `Ok(())`, or the reasons it refuses, worded exactly as the plugin words them — these words end up,
//! counted, in the `FailedScheduling` event a user reads (see [`crate::schedule`](mod@crate::schedule)).
//! [`FILTERS`] runs them in kube-scheduler's default order, and as in kube-scheduler the first filter that refuses
//! a node decides its reasons: the others are not asked.
//!
//! | filter               | kube-scheduler plugin                        | refuses with                                         |
//! |----------------------|----------------------------------------------|------------------------------------------------------|
//! | [`node_unschedulable`] | `NodeUnschedulable`                        | `node(s) were unschedulable`                         |
//! | [`node_ready`]       | `TaintToleration` on the node lifecycle taints | `node(s) had untolerated taint {node.kubernetes.io/not-ready: }` |
//! | [`taint_toleration`] | `TaintToleration`                            | `node(s) had untolerated taint {key: value}`         |
//! | [`node_affinity`]    | `NodeAffinity`                               | `node(s) didn't match Pod's node affinity/selector`  |
//! | [`resources_fit`]    | `NodeResourcesFit`                           | `Too many pods`, `Insufficient cpu`, `Insufficient memory` |

use crate::node_info::{NodeInfo, Readiness};
use crate::pod_info::PodInfo;
use k8s_openapi::api::core::v1::Taint;
use kubelab_api::taints::{self, NOT_READY, UNREACHABLE, UNSCHEDULABLE, any_tolerates};
use std::fmt;

/// Why a filter refused a node. Displayed exactly as kube-scheduler words it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// The node is cordoned (`spec.unschedulable`).
    Unschedulable,
    /// A `NoSchedule` or `NoExecute` taint the pod does not tolerate (the first one found).
    UntoleratedTaint {
        /// The taint's key.
        key: String,
        /// The taint's value, often empty.
        value: String,
    },
    /// The node's labels do not satisfy the pod's nodeSelector or required node affinity.
    NodeAffinity,
    /// The node already runs as many pods as its `pods` allocatable.
    TooManyPods,
    /// The pod requests more CPU than the node has left.
    InsufficientCpu,
    /// The pod requests more memory than the node has left.
    InsufficientMemory,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Unschedulable => write!(f, "node(s) were unschedulable"),
            Reason::UntoleratedTaint { key, value } => write!(f, "node(s) had untolerated taint {{{key}: {value}}}"),
            Reason::NodeAffinity => write!(f, "node(s) didn't match Pod's node affinity/selector"),
            Reason::TooManyPods => write!(f, "Too many pods"),
            Reason::InsufficientCpu => write!(f, "Insufficient cpu"),
            Reason::InsufficientMemory => write!(f, "Insufficient memory"),
        }
    }
}

/// A filter's answer for one node.
pub type Verdict = Result<(), Vec<Reason>>;

/// A filter plugin: a name (kube-scheduler's) and a pure function.
pub type Filter = (&'static str, fn(&PodInfo, &NodeInfo) -> Verdict);

// ANCHOR: filters
/// The filters, in the order kube-scheduler's default profile runs them.
pub const FILTERS: [Filter; 5] = [
    ("NodeUnschedulable", node_unschedulable),
    ("NodeReady", node_ready),
    ("TaintToleration", taint_toleration),
    ("NodeAffinity", node_affinity),
    ("NodeResourcesFit", resources_fit),
];

/// Runs the filters on one node; the first refusal wins.
pub fn run_filters(pod: &PodInfo, node: &NodeInfo) -> Verdict {
    FILTERS.iter().try_for_each(|(_name, filter)| filter(pod, node))
}
// ANCHOR_END: filters

/// `NodeUnschedulable`: a cordoned node takes no new pods — unless the pod tolerates the matching taint, which
/// is how DaemonSet pods still reach cordoned nodes.
pub fn node_unschedulable(pod: &PodInfo, node: &NodeInfo) -> Verdict {
    if node.unschedulable && !any_tolerates(&pod.tolerations, &no_schedule_taint(UNSCHEDULABLE)) {
        return Err(vec![Reason::Unschedulable]);
    }
    Ok(())
}

/// A node that is not `Ready` takes no new pods.
///
/// kube-scheduler has no such filter any more: the node lifecycle controller *taints* such nodes
/// (`node.kubernetes.io/not-ready:NoSchedule`, or `unreachable` when the kubelet went silent) and
/// `TaintToleration` does the rest. kubelab's node lifecycle controller does too
/// (`controller-manager/src/node_lifecycle/health.rs`), but this filter also reads the condition itself and
/// behaves as if the taint were there — same tolerations, same message — so that the scheduler is right on its
/// own: before the controller has tainted a node, and when no controller manager runs (the scheduler's tests).
pub fn node_ready(pod: &PodInfo, node: &NodeInfo) -> Verdict {
    let key = match node.readiness {
        Readiness::Ready => return Ok(()),
        Readiness::NotReady => NOT_READY,
        Readiness::Unknown => UNREACHABLE,
    };
    if any_tolerates(&pod.tolerations, &no_schedule_taint(key)) {
        return Ok(());
    }
    Err(vec![Reason::UntoleratedTaint { key: key.to_string(), value: String::new() }])
}

// ANCHOR: taint_toleration
/// `TaintToleration`: every `NoSchedule` and `NoExecute` taint of the node must be tolerated by the pod.
/// (`PreferNoSchedule` taints only lower a node's score in Kubernetes; we leave that score out.) What
/// "tolerated" means is defined once for the scheduler and the node lifecycle controller:
/// [`kubelab_api::taints::tolerates`].
pub fn taint_toleration(pod: &PodInfo, node: &NodeInfo) -> Verdict {
    let untolerated = node
        .taints
        .iter()
        .filter(|taint| taint.effect == taints::NO_SCHEDULE || taint.effect == taints::NO_EXECUTE)
        .find(|taint| !any_tolerates(&pod.tolerations, taint));
    match untolerated {
        None => Ok(()),
        Some(taint) => Err(vec![Reason::UntoleratedTaint {
            key: taint.key.clone(),
            value: taint.value.clone().unwrap_or_default(),
        }]),
    }
}
// ANCHOR_END: taint_toleration

fn no_schedule_taint(key: &str) -> Taint {
    Taint { key: key.to_string(), effect: taints::NO_SCHEDULE.to_string(), value: None, time_added: None }
}

/// `NodeAffinity`: every `nodeSelector` label must be on the node, and when the pod has required node affinity,
/// at least one of its terms must match.
pub fn node_affinity(pod: &PodInfo, node: &NodeInfo) -> Verdict {
    let selector_matches = pod.node_selector.iter().all(|(key, value)| node.labels.get(key) == Some(value));
    let affinity_matches = match &pod.required_terms {
        None => true,
        Some(terms) => terms.iter().any(|term| term.matches(&node.labels, &node.name)),
    };
    if selector_matches && affinity_matches { Ok(()) } else { Err(vec![Reason::NodeAffinity]) }
}

// ANCHOR: resources_fit
/// `NodeResourcesFit`: the pod's requests must fit in what the node has left — its allocatable minus what the
/// pods already placed there request — and the node must take one more pod. Every shortage is a reason.
pub fn resources_fit(pod: &PodInfo, node: &NodeInfo) -> Verdict {
    let mut reasons = Vec::new();
    if node.usage.pods + 1 > node.allowed_pods {
        reasons.push(Reason::TooManyPods);
    }
    let wanted = pod.usage.requests;
    let free = node.allocatable.minus(node.usage.requested);
    if wanted.milli_cpu > 0 && wanted.milli_cpu > free.milli_cpu {
        reasons.push(Reason::InsufficientCpu);
    }
    if wanted.memory > 0 && wanted.memory > free.memory {
        reasons.push(Reason::InsufficientMemory);
    }
    if reasons.is_empty() { Ok(()) } else { Err(reasons) }
}
// ANCHOR_END: resources_fit

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{node, pod};
    use serde_json::json;

    #[test]
    fn a_cordoned_node_refuses_pods_that_do_not_tolerate_it() {
        let cordoned = node("n1", "4", "8Gi").unschedulable();
        assert_eq!(node_unschedulable(&pod("p").info(), &cordoned.info()), Err(vec![Reason::Unschedulable]));
        let daemon = pod("p").tolerate(json!({"key": UNSCHEDULABLE, "operator": "Exists"}));
        assert_eq!(node_unschedulable(&daemon.info(), &cordoned.info()), Ok(()));
        assert_eq!(node_unschedulable(&pod("p").info(), &node("n2", "4", "8Gi").info()), Ok(()));
    }

    #[test]
    fn a_node_that_is_not_ready_refuses_pods_as_its_taint_would() {
        let refused = |n: crate::testing::NodeBuilder| node_ready(&pod("p").info(), &n.info());
        assert_eq!(refused(node("n", "1", "1Gi")), Ok(()));
        assert_eq!(
            refused(node("n", "1", "1Gi").ready("False")).unwrap_err()[0].to_string(),
            "node(s) had untolerated taint {node.kubernetes.io/not-ready: }"
        );
        assert_eq!(
            refused(node("n", "1", "1Gi").ready("Unknown")).unwrap_err()[0].to_string(),
            "node(s) had untolerated taint {node.kubernetes.io/unreachable: }"
        );
        let tolerant = pod("p").tolerate(json!({"key": NOT_READY, "operator": "Exists", "effect": "NoSchedule"}));
        assert_eq!(node_ready(&tolerant.info(), &node("n", "1", "1Gi").ready("False").info()), Ok(()));
    }

    #[test]
    fn an_untolerated_no_schedule_or_no_execute_taint_refuses_the_pod() {
        let master = node("cp", "4", "8Gi").taint("node-role.kubernetes.io/control-plane", "", "NoSchedule");
        let err = taint_toleration(&pod("p").info(), &master.info()).unwrap_err();
        assert_eq!(err[0].to_string(), "node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }");
        let gpu = node("g", "4", "8Gi").taint("gpu", "nvidia", "NoExecute");
        assert_eq!(
            taint_toleration(&pod("p").info(), &gpu.info()).unwrap_err()[0].to_string(),
            "node(s) had untolerated taint {gpu: nvidia}"
        );
        let soft = node("s", "4", "8Gi").taint("spot", "true", "PreferNoSchedule");
        assert_eq!(taint_toleration(&pod("p").info(), &soft.info()), Ok(()));
    }

    #[test]
    fn node_selector_and_required_affinity_must_both_match() {
        let ssd = node("n1", "4", "8Gi").label("disk", "ssd").label("zone", "a");
        let wants_ssd = pod("p").node_selector("disk", "ssd");
        assert_eq!(node_affinity(&wants_ssd.info(), &ssd.info()), Ok(()));
        assert_eq!(node_affinity(&wants_ssd.info(), &node("n2", "4", "8Gi").info()), Err(vec![Reason::NodeAffinity]));
        let zone_b = wants_ssd.require_label_in("zone", &["b"]);
        assert_eq!(
            node_affinity(&zone_b.info(), &ssd.info()).unwrap_err()[0].to_string(),
            "node(s) didn't match Pod's node affinity/selector"
        );
    }

    #[test]
    fn requests_must_fit_in_what_bound_pods_leave() {
        let busy = node("n1", "2", "4Gi").with(&pod("old").requests("1500m", "1Gi"));
        assert_eq!(resources_fit(&pod("p").requests("500m", "1Gi").info(), &busy.info()), Ok(()));
        assert_eq!(
            resources_fit(&pod("p").requests("600m", "1Gi").info(), &busy.info()),
            Err(vec![Reason::InsufficientCpu])
        );
        assert_eq!(
            resources_fit(&pod("p").requests("1", "4Gi").info(), &busy.info()),
            Err(vec![Reason::InsufficientCpu, Reason::InsufficientMemory])
        );
    }

    #[test]
    fn a_full_node_has_too_many_pods_even_for_a_pod_that_requests_nothing() {
        let full = node("n1", "2", "4Gi").pods("1").with(&pod("old"));
        assert_eq!(resources_fit(&pod("p").info(), &full.info()), Err(vec![Reason::TooManyPods]));
        assert_eq!(
            resources_fit(&pod("p").requests("3", "1Gi").info(), &full.info()),
            Err(vec![Reason::TooManyPods, Reason::InsufficientCpu])
        );
    }

    #[test]
    fn the_first_filter_that_refuses_decides_the_reasons() {
        let cordoned_and_small = node("n1", "1", "1Gi").unschedulable();
        assert_eq!(
            run_filters(&pod("p").requests("8", "1Gi").info(), &cordoned_and_small.info()),
            Err(vec![Reason::Unschedulable])
        );
    }
}
