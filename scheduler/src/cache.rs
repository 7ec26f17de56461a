//! The scheduler's picture of the cluster: every node, and what every placed pod takes from it.
//!
//! The informers tell us about Nodes and Pods as the apiserver stores them. That is not enough to schedule a burst
//! of pods: between the moment we decide "pod-1 goes to node-a" and the moment the pod informer shows pod-1 bound,
//! tens of milliseconds pass, and every pod decided meanwhile would still see node-a empty and go there too.
//! kube-scheduler's cache (`pkg/scheduler/backend/cache`) solves it by **assuming**: the decision is counted
//! at once, as if the binding had already happened; when the informer shows the pod bound the assumption is
//! *confirmed*, and if the binding fails it is *forgotten*. [`ClusterCache`] does the same.
//!
//! Pods can be bound to a node the cache does not know (yet, or any more): their usage is kept aside, by node
//! name, and joins the node when it appears. Nodes are kept sorted by name, so the decision sees them in a
//! stable order.

use crate::node_info::{NodeInfo, Usage};
use crate::resources::PodUsage;
use k8s_openapi::api::core::v1::Node;
use std::collections::HashMap;

/// Where one pod counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The node it is on (or assumed on).
    pub node: String,
    /// What it takes there.
    pub usage: PodUsage,
    /// True from our decision until the informer shows the pod bound.
    pub assumed: bool,
}

/// Nodes, and the pods placed on them.
#[derive(Debug, Default)]
pub struct ClusterCache {
    /// Every known node, sorted by name (binary search finds one).
    nodes: Vec<NodeInfo>,
    /// Every pod that counts somewhere, by key (`namespace/name`).
    placements: HashMap<String, Placement>,
    /// Usage on nodes we do not know, by node name.
    orphans: HashMap<String, Usage>,
}

/// What a Node event changed, for the decision to retry parked pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeChange {
    /// A node we did not know.
    Added,
    /// A field the filters or scores read (labels, taints, cordon, readiness, allocatable).
    Changed,
    /// Nothing the scheduler reads (a heartbeat, an annotation).
    Unchanged,
}

impl ClusterCache {
    /// The nodes, sorted by name: what [`crate::schedule`] chooses from.
    pub fn nodes(&self) -> &[NodeInfo] {
        &self.nodes
    }

    /// Adds or updates a node, keeping the usage of its pods.
    pub fn set_node(&mut self, node: &Node) -> NodeChange {
        let mut info = NodeInfo::new(node);
        match self.nodes.binary_search_by(|n| n.name.cmp(&info.name)) {
            Ok(i) => {
                let change =
                    if self.nodes[i].same_node_fields(&info) { NodeChange::Unchanged } else { NodeChange::Changed };
                info.usage = std::mem::take(&mut self.nodes[i].usage);
                self.nodes[i] = info;
                change
            }
            Err(i) => {
                info.usage = self.orphans.remove(&info.name).unwrap_or_default();
                self.nodes.insert(i, info);
                NodeChange::Added
            }
        }
    }

    /// Removes a node; the usage of pods still bound to it is kept aside until they go.
    pub fn remove_node(&mut self, name: &str) {
        if let Ok(i) = self.nodes.binary_search_by(|n| n.name.as_str().cmp(name)) {
            let usage = self.nodes.remove(i).usage;
            if usage.pods > 0 {
                self.orphans.insert(name.to_string(), usage);
            }
        }
    }

    /// Counts our decision before the binding is confirmed.
    pub fn assume(&mut self, key: &str, usage: PodUsage, node: &str) {
        self.place(key, Placement { node: node.to_string(), usage, assumed: true });
    }

    /// The informer shows the pod bound to `node`: confirms an assumption, or counts a pod bound by someone else.
    pub fn set_bound(&mut self, key: &str, usage: PodUsage, node: &str) {
        if let Some(existing) = self.placements.get_mut(key)
            && existing.node == node
            && existing.usage == usage
        {
            existing.assumed = false;
            return;
        }
        self.place(key, Placement { node: node.to_string(), usage, assumed: false });
    }

    /// The pod no longer counts anywhere (deleted, finished, or its binding failed). Returns where it was.
    pub fn forget(&mut self, key: &str) -> Option<Placement> {
        let placement = self.placements.remove(key)?;
        let usage = self.usage_mut(&placement.node);
        usage.remove(&placement.usage);
        if usage.pods <= 0 {
            self.orphans.remove(&placement.node);
        }
        Some(placement)
    }

    /// Forgets the pod only if it is still an unconfirmed assumption (its binding failed).
    pub fn forget_assumed(&mut self, key: &str) -> Option<Placement> {
        if self.is_assumed(key) { self.forget(key) } else { None }
    }

    /// True between our decision and the informer showing the pod bound.
    pub fn is_assumed(&self, key: &str) -> bool {
        self.placements.get(key).is_some_and(|p| p.assumed)
    }

    /// Where a pod counts, if anywhere.
    pub fn placement(&self, key: &str) -> Option<&Placement> {
        self.placements.get(key)
    }

    fn place(&mut self, key: &str, placement: Placement) {
        self.forget(key);
        self.usage_mut(&placement.node).add(&placement.usage);
        self.placements.insert(key.to_string(), placement);
    }

    fn usage_mut(&mut self, node: &str) -> &mut Usage {
        match self.nodes.binary_search_by(|n| n.name.as_str().cmp(node)) {
            Ok(i) => &mut self.nodes[i].usage,
            Err(_) => self.orphans.entry(node.to_string()).or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{node, pod};

    #[test]
    fn nodes_are_kept_sorted_by_name() {
        let mut cache = ClusterCache::default();
        for name in ["node-c", "node-a", "node-b"] {
            assert_eq!(cache.set_node(&node(name, "4", "8Gi").to_node()), NodeChange::Added);
        }
        let names: Vec<&str> = cache.nodes().iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["node-a", "node-b", "node-c"]);
    }

    #[test]
    fn an_assumed_pod_counts_at_once_and_a_failed_binding_gives_the_room_back() {
        let mut cache = ClusterCache::default();
        cache.set_node(&node("a", "4", "8Gi").to_node());
        cache.assume("default/p", pod("p").requests("1", "1Gi").usage(), "a");
        assert_eq!(cache.nodes()[0].usage.requested.milli_cpu, 1000);
        assert!(cache.is_assumed("default/p"));
        cache.forget_assumed("default/p");
        assert_eq!(cache.nodes()[0].usage, Usage::default());
    }

    #[test]
    fn the_informer_confirms_an_assumption_without_counting_the_pod_twice() {
        let mut cache = ClusterCache::default();
        cache.set_node(&node("a", "4", "8Gi").to_node());
        let usage = pod("p").requests("1", "1Gi").usage();
        cache.assume("default/p", usage.clone(), "a");
        cache.set_bound("default/p", usage, "a");
        assert!(!cache.is_assumed("default/p"));
        assert_eq!(cache.nodes()[0].usage.pods, 1);
        assert_eq!(cache.forget_assumed("default/p"), None, "a confirmed pod is not forgotten by a late failure");
    }

    #[test]
    fn pods_on_an_unknown_node_join_it_when_it_appears() {
        let mut cache = ClusterCache::default();
        cache.set_bound("default/p", pod("p").requests("1", "1Gi").usage(), "late");
        cache.set_node(&node("late", "4", "8Gi").to_node());
        assert_eq!(cache.nodes()[0].usage.pods, 1);
        cache.remove_node("late");
        cache.forget("default/p");
        cache.set_node(&node("late", "4", "8Gi").to_node());
        assert_eq!(cache.nodes()[0].usage, Usage::default());
    }

    #[test]
    fn a_heartbeat_is_not_a_change_but_a_cordon_is() {
        let mut cache = ClusterCache::default();
        cache.set_node(&node("a", "4", "8Gi").to_node());
        assert_eq!(cache.set_node(&node("a", "4", "8Gi").to_node()), NodeChange::Unchanged);
        assert_eq!(cache.set_node(&node("a", "4", "8Gi").unschedulable().to_node()), NodeChange::Changed);
    }
}
