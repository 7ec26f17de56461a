//! The decision: filter, score, pick — or say why no node will do.
//!
//! This is kube-scheduler's *scheduling cycle* for one pod (`schedulePod` in `pkg/scheduler/schedule_one.go`),
//! without I/O: given the pod and a snapshot of every node with what is already placed on it, it returns a node
//! name or an [`Unschedulable`] whose message is the one kube-scheduler writes in the `FailedScheduling` event.

use crate::filters::{Reason, run_filters};
use crate::node_info::NodeInfo;
use crate::pod_info::PodInfo;
use crate::scores::total_scores;
use k8s_openapi::api::core::v1::Pod;
use std::collections::BTreeMap;
use std::fmt;

// ANCHOR: unschedulable
/// Why a pod cannot be placed now. `Display` gives kube-scheduler's message, e.g.
/// `0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 2
/// Insufficient cpu.`
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unschedulable {
    /// The cluster has no node at all.
    NoNodes,
    /// Every node was refused by a filter; `reasons` counts how many nodes gave each reason.
    NoFit {
        /// How many nodes there are.
        nodes: usize,
        /// For each reason, how many nodes gave it (a node may give several, e.g. cpu *and* memory).
        reasons: BTreeMap<Reason, usize>,
    },
    /// The pod itself cannot be read (a request that is not a quantity); the message says where.
    InvalidPod(String),
}

impl fmt::Display for Unschedulable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unschedulable::NoNodes => write!(f, "no nodes available to schedule pods"),
            Unschedulable::NoFit { nodes, reasons } => {
                // kube-scheduler prints "<count> <reason>" for each reason and sorts those *strings*
                // (Go's sort.Strings): "1 node(s) had..." comes before "2 Insufficient cpu".
                let mut counted: Vec<String> = reasons.iter().map(|(reason, n)| format!("{n} {reason}")).collect();
                counted.sort();
                write!(f, "0/{nodes} nodes are available: {}.", counted.join(", "))
            }
            Unschedulable::InvalidPod(message) => write!(f, "{message}"),
        }
    }
}
// ANCHOR_END: unschedulable

impl Unschedulable {
    /// The `reason` of the pod's `PodScheduled=False` condition: `Unschedulable` when nodes refused the pod
    /// (waiting may help), `SchedulerError` when the pod could not even be considered.
    pub fn condition_reason(&self) -> &'static str {
        match self {
            Unschedulable::NoNodes | Unschedulable::NoFit { .. } => "Unschedulable",
            Unschedulable::InvalidPod(_) => "SchedulerError",
        }
    }
}

// ANCHOR: schedule
/// Chooses a node for `pod` among `nodes`, or explains why none fits.
pub fn schedule(pod: &Pod, nodes: &[NodeInfo]) -> Result<String, Unschedulable> {
    let pod = PodInfo::read(pod).map_err(|err| Unschedulable::InvalidPod(err.to_string()))?;
    choose_node(&pod, nodes)
}

/// [`schedule`] for a pod already read (the scheduler's loop reads it once for the decision and the cache).
pub fn choose_node(pod: &PodInfo, nodes: &[NodeInfo]) -> Result<String, Unschedulable> {
    if nodes.is_empty() {
        return Err(Unschedulable::NoNodes);
    }
    // 1. Filter: keep the nodes that can run the pod, and count why the others cannot.
    let mut feasible = Vec::new();
    let mut reasons = BTreeMap::new();
    for node in nodes {
        match run_filters(pod, node) {
            Ok(()) => feasible.push(node),
            Err(refusals) => {
                for reason in refusals {
                    *reasons.entry(reason).or_insert(0) += 1;
                }
            }
        }
    }
    if feasible.is_empty() {
        return Err(Unschedulable::NoFit { nodes: nodes.len(), reasons });
    }
    // 2. Score the feasible nodes.
    let totals = total_scores(pod, &feasible);
    // 3. Pick the highest total; among equals, the first name in alphabetical order (kube-scheduler picks one
    //    at random, which is fairer but makes every test a lottery).
    let best = feasible
        .iter()
        .zip(totals)
        .max_by(|(a, score_a), (b, score_b)| score_a.cmp(score_b).then_with(|| b.name.cmp(&a.name)))
        .map(|(node, _)| node.name.clone());
    // `feasible` is not empty, so there is a best node; were it otherwise, "no fit" would still be true.
    best.ok_or(Unschedulable::NoFit { nodes: nodes.len(), reasons })
}
// ANCHOR_END: schedule

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{node, pod};
    use serde_json::json;

    fn message(result: Result<String, Unschedulable>) -> String {
        result.unwrap_err().to_string()
    }

    #[test]
    fn the_message_counts_reasons_and_sorts_them_as_text() {
        let reasons = BTreeMap::from([
            (Reason::InsufficientCpu, 2),
            (Reason::UntoleratedTaint { key: "node-role.kubernetes.io/control-plane".into(), value: "".into() }, 1),
        ]);
        assert_eq!(
            Unschedulable::NoFit { nodes: 3, reasons }.to_string(),
            "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, \
             2 Insufficient cpu."
        );
        // Text order, as Go's sort.Strings: "10 ..." sorts before "9 ...".
        let reasons = BTreeMap::from([(Reason::InsufficientCpu, 9), (Reason::NodeAffinity, 10)]);
        assert_eq!(
            Unschedulable::NoFit { nodes: 19, reasons }.to_string(),
            "0/19 nodes are available: 10 node(s) didn't match Pod's node affinity/selector, 9 Insufficient cpu."
        );
    }

    #[test]
    fn an_empty_cluster_has_no_nodes_available() {
        assert_eq!(message(schedule(&pod("p").to_pod(), &[])), "no nodes available to schedule pods");
    }

    #[test]
    fn a_pod_with_an_unreadable_request_is_a_scheduler_error() {
        let mut bad = pod("p").to_pod();
        bad.spec.as_mut().unwrap().containers[0].resources =
            Some(serde_json::from_value(json!({"requests": {"cpu": "lots"}})).unwrap());
        let err = schedule(&bad, &[node("n", "1", "1Gi").info()]).unwrap_err();
        assert_eq!(err.condition_reason(), "SchedulerError");
        assert!(err.to_string().starts_with("spec.containers[0].resources.requests[cpu]: invalid quantity"));
    }

    #[test]
    fn ties_go_to_the_first_node_name() {
        let nodes = [node("node-b", "4", "4Gi").info(), node("node-a", "4", "4Gi").info()];
        assert_eq!(schedule(&pod("p").to_pod(), &nodes), Ok("node-a".to_string()));
    }

    // ANCHOR: decision_table
    /// The whole decision, case by case: the nodes (name, cpu, memory, and what makes them special), the pod,
    /// and where it must go — or the exact message explaining why it cannot.
    #[test]
    fn decision_table() {
        use crate::testing::NodeBuilder as N;
        let taint_cp = |n: N| n.taint("node-role.kubernetes.io/control-plane", "", "NoSchedule");
        type Case = (&'static str, Vec<N>, crate::testing::PodBuilder, Result<&'static str, &'static str>);
        let cases: Vec<Case> = vec![
            (
                "the emptier node wins",
                vec![node("a", "4", "8Gi").with(&pod("x").requests("3", "1Gi")), node("b", "4", "8Gi")],
                pod("p").requests("1", "1Gi"),
                Ok("b"),
            ),
            (
                "only the node with room fits",
                vec![node("a", "1", "8Gi"), node("b", "4", "8Gi")],
                pod("p").requests("2", "1Gi"),
                Ok("b"),
            ),
            (
                "too big for every node",
                vec![taint_cp(node("cp", "8", "8Gi")), node("a", "1", "8Gi"), node("b", "1", "8Gi")],
                pod("p").requests("2", "1Gi"),
                Err(
                    "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: \
                     }, 2 Insufficient cpu.",
                ),
            ),
            (
                "a toleration opens the control plane",
                vec![taint_cp(node("cp", "8", "8Gi")), node("a", "1", "8Gi")],
                pod("p").requests("2", "1Gi").tolerate(json!({"key": "node-role.kubernetes.io/control-plane",
                    "operator": "Exists", "effect": "NoSchedule"})),
                Ok("cp"),
            ),
            (
                "nodeSelector picks the labelled node even when it is busier",
                vec![
                    node("a", "4", "8Gi").label("disk", "ssd").with(&pod("x").requests("2", "4Gi")),
                    node("b", "4", "8Gi"),
                ],
                pod("p").node_selector("disk", "ssd"),
                Ok("a"),
            ),
            (
                "nodeSelector that no node matches",
                vec![node("a", "4", "8Gi"), node("b", "4", "8Gi")],
                pod("p").node_selector("disk", "ssd"),
                Err("0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector."),
            ),
            (
                "required affinity with two terms, either will do",
                vec![node("a", "4", "8Gi").label("zone", "x"), node("b", "4", "8Gi").label("zone", "y")],
                pod("p").require_label_in("zone", &["y", "z"]),
                Ok("b"),
            ),
            (
                "cordoned and not-ready nodes are skipped",
                vec![
                    node("a", "4", "8Gi").unschedulable(),
                    node("b", "4", "8Gi").ready("False"),
                    node("c", "1", "1Gi"),
                ],
                pod("p"),
                Ok("c"),
            ),
            (
                "every node refuses for its own reason",
                vec![
                    node("a", "4", "8Gi").unschedulable(),
                    node("b", "4", "8Gi").ready("Unknown"),
                    node("c", "4", "8Gi").pods("1").with(&pod("x")),
                    node("d", "4", "1Gi"),
                ],
                pod("p").requests("1", "2Gi"),
                Err(
                    "0/4 nodes are available: 1 Insufficient memory, 1 Too many pods, 1 node(s) had untolerated taint \
                     {node.kubernetes.io/unreachable: }, 1 node(s) were unschedulable.",
                ),
            ),
            (
                "a replica goes where its siblings are not",
                vec![
                    node("a", "4", "8Gi").with(&pod("web-1").owner("rs-web")),
                    node("b", "4", "8Gi").with(&pod("other").requests("100m", "200Mi")),
                ],
                pod("web-2").owner("rs-web"),
                Ok("b"),
            ),
            (
                "balanced use beats a lopsided node with the same free share",
                vec![
                    node("a", "4", "8Gi").with(&pod("x").requests("2", "0")),
                    node("b", "4", "8Gi").with(&pod("y").requests("1", "2Gi")),
                ],
                pod("p").requests("1", "2Gi"),
                Ok("b"),
            ),
        ];
        for (case, nodes, p, expected) in cases {
            let nodes: Vec<NodeInfo> = nodes.into_iter().map(|n| n.info()).collect();
            let got = schedule(&p.to_pod(), &nodes);
            let got = got.as_deref().map_err(|err| err.to_string());
            assert_eq!(got, expected.map_err(String::from), "case: {case}");
        }
    }
    // ANCHOR_END: decision_table
}
