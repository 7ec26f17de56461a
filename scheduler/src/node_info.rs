//! A node as the scheduler sees it: what the node offers, and what the pods placed on it already take.
//!
//! kube-scheduler keeps one `NodeInfo` per node in its cache (`pkg/scheduler/framework/types.go`): the Node
//! object plus running totals of the pods on it, so that a filter asks "does this pod fit in what is left?"
//! without adding up every pod of the node each time. We keep the same two halves: the fields of the Node that
//! the filters read, parsed once when the Node changes, and a [`Usage`] updated as pods come and go.

use crate::resources::{PodUsage, Resources, node_allocatable};
use k8s_openapi::api::core::v1::{Node, Taint};
use std::collections::{BTreeMap, HashMap};

/// Whether the kubelet says the node can run pods: its `Ready` condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// `Ready=True`.
    Ready,
    /// `Ready=False`, or no `Ready` condition yet (a node that just registered).
    NotReady,
    /// `Ready=Unknown`: the kubelet stopped reporting.
    Unknown,
}

/// What the pods placed on a node take from it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    /// The sum of their requests.
    pub requested: Resources,
    /// The same with the scoring defaults for containers that request nothing.
    pub non_zero_requested: Resources,
    /// How many there are (compared with the node's `pods` allocatable).
    pub pods: i64,
    /// How many belong to each controller (by uid): what the spreading score counts.
    pub owners: HashMap<String, u32>,
}

impl Usage {
    /// Counts one more pod.
    pub fn add(&mut self, pod: &PodUsage) {
        self.requested = self.requested.plus(pod.requests);
        self.non_zero_requested = self.non_zero_requested.plus(pod.non_zero);
        self.pods += 1;
        if let Some(owner) = &pod.owner {
            *self.owners.entry(owner.clone()).or_default() += 1;
        }
    }

    /// Counts one pod less: the exact inverse of [`Usage::add`] with the same `pod`.
    pub fn remove(&mut self, pod: &PodUsage) {
        self.requested = self.requested.minus(pod.requests);
        self.non_zero_requested = self.non_zero_requested.minus(pod.non_zero);
        self.pods -= 1;
        if let Some(owner) = &pod.owner
            && let Some(count) = self.owners.get_mut(owner)
        {
            *count -= 1;
            if *count == 0 {
                self.owners.remove(owner);
            }
        }
    }
}

/// One node: its scheduling-relevant fields, and the [`Usage`] of its pods.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeInfo {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.labels`, matched by nodeSelector and node affinity.
    pub labels: BTreeMap<String, String>,
    /// `spec.taints`.
    pub taints: Vec<Taint>,
    /// `spec.unschedulable`: set by `kubectl cordon`.
    pub unschedulable: bool,
    /// From `status.conditions`.
    pub readiness: Readiness,
    /// CPU and memory from `status.allocatable`.
    pub allocatable: Resources,
    /// `status.allocatable.pods`: how many pods the node takes.
    pub allowed_pods: i64,
    /// What the pods placed here take.
    pub usage: Usage,
}

impl NodeInfo {
    /// Reads a Node, with no pods on it yet.
    pub fn new(node: &Node) -> NodeInfo {
        let (allocatable, allowed_pods) = node_allocatable(node);
        let spec = node.spec.as_ref();
        let ready = node
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|conditions| conditions.iter().find(|c| c.type_ == "Ready"));
        let readiness = match ready.map(|c| c.status.as_str()) {
            Some("True") => Readiness::Ready,
            Some("Unknown") => Readiness::Unknown,
            _ => Readiness::NotReady,
        };
        NodeInfo {
            name: node.metadata.name.clone().unwrap_or_default(),
            labels: node.metadata.labels.clone().unwrap_or_default(),
            taints: spec.and_then(|s| s.taints.clone()).unwrap_or_default(),
            unschedulable: spec.and_then(|s| s.unschedulable).unwrap_or(false),
            readiness,
            allocatable,
            allowed_pods,
            usage: Usage::default(),
        }
    }

    /// The same node with one more pod on it (for tests and examples: the cache uses [`Usage::add`]).
    pub fn with_pod(mut self, pod: &PodUsage) -> NodeInfo {
        self.usage.add(pod);
        self
    }

    /// True when everything a filter or a score reads from the Node is the same in `other`: a Node update
    /// that changes none of it (a heartbeat) cannot make a waiting pod schedulable.
    pub fn same_node_fields(&self, other: &NodeInfo) -> bool {
        self.name == other.name
            && self.labels == other.labels
            && self.taints == other.taints
            && self.unschedulable == other.unschedulable
            && self.readiness == other.readiness
            && self.allocatable == other.allocatable
            && self.allowed_pods == other.allowed_pods
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(status: serde_json::Value) -> Node {
        serde_json::from_value(json!({"metadata": {"name": "n1", "labels": {"disk": "ssd"}}, "status": status}))
            .unwrap()
    }

    #[test]
    fn readiness_comes_from_the_ready_condition() {
        let with = |s: &str| node(json!({"conditions": [{"type": "Ready", "status": s}]}));
        assert_eq!(NodeInfo::new(&with("True")).readiness, Readiness::Ready);
        assert_eq!(NodeInfo::new(&with("False")).readiness, Readiness::NotReady);
        assert_eq!(NodeInfo::new(&with("Unknown")).readiness, Readiness::Unknown);
        assert_eq!(NodeInfo::new(&node(json!({}))).readiness, Readiness::NotReady);
    }

    #[test]
    fn removing_a_pod_undoes_adding_it() {
        let pod = PodUsage {
            requests: Resources { milli_cpu: 500, memory: 1024 },
            non_zero: Resources { milli_cpu: 500, memory: 2048 },
            owner: Some("rs-1".into()),
        };
        let mut usage = Usage::default();
        usage.add(&pod);
        assert_eq!(usage.pods, 1);
        assert_eq!(usage.owners["rs-1"], 1);
        usage.remove(&pod);
        assert_eq!(usage, Usage::default());
    }

    #[test]
    fn a_heartbeat_changes_nothing_the_scheduler_reads() {
        let before = NodeInfo::new(&node(json!({"conditions": [{"type": "Ready", "status": "True",
            "lastHeartbeatTime": "2025-01-01T00:00:00Z"}]})));
        let after = NodeInfo::new(&node(json!({"conditions": [{"type": "Ready", "status": "True",
            "lastHeartbeatTime": "2025-01-01T00:00:10Z"}]})));
        assert!(before.same_node_fields(&after));
        let not_ready = NodeInfo::new(&node(json!({"conditions": [{"type": "Ready", "status": "False"}]})));
        assert!(!before.same_node_fields(&not_ready));
    }
}
