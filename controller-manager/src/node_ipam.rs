//! The node IPAM controller: gives every Node its own slice of the pod network.
//!
//! Kubernetes' network model says every pod has an IP of its own, reachable from every other pod without NAT.
//! Addresses must therefore never collide across nodes, yet each kubelet must hand out addresses on its own,
//! without asking anyone for each pod. The answer is a two-level plan:
//!
//! 1. the cluster has one **cluster CIDR**, the whole pod network (`--cluster-cidr`, `10.244.0.0/16`);
//! 2. this controller cuts it into **pod CIDRs** of one size (`--node-cidr-mask-size`, 24: 256 addresses each)
//!    and writes one into each Node's `spec.podCIDR` (and `spec.podCIDRs`, its dual-stack twin):
//!
//! ```text
//!   cluster CIDR 10.244.0.0/16
//!   ├── 10.244.0.0/24  → node-1   (its kubelet gives pods 10.244.0.2, 10.244.0.3, ...)
//!   ├── 10.244.1.0/24  → node-2
//!   ├── 10.244.2.0/24  → node-3
//!   └── ... 256 slices: the 257th node gets a CIDRNotAvailable event and no slice
//! ```
//!
//! 3. each kubelet waits for its Node's `spec.podCIDR` and takes its pods' addresses from it (`kubelet/src/network.rs`).
//!    Whoever routes between nodes (Docker's shared bridge under `kubelab up`, routes on real machines) sends
//!    traffic for `10.244.1.0/24` to node-2.
//!
//! **Level-triggered.** The decision ([`allocate`]) reads the `spec.podCIDR` of every Node in the cache each
//! time, so a restarted controller manager never hands out a slice already in use, and a deleted Node's slice is
//! free again. A `spec.podCIDR` written by someone else (a kubelet started with `--pod-cidr`, an administrator)
//! counts as taken like our own. Only one worker runs: two workers deciding at once on the same cache could give
//! the same slice to two Nodes. The framework's "read your own writes" makes the next decision see the last.
//!
//! Mirrors the `RangeAllocator` of `pkg/controller/nodeipam/ipam/range_allocator.go` (the default
//! `--cidr-allocator-type`), with its event: `CIDRNotAvailable`, `Node <name> status is now: CIDRNotAvailable`.
//! What we leave out: dual-stack (a second cluster CIDR), `--allocate-node-cidrs` (Kubernetes allocates only when
//! it is set; we always do), `--service-cluster-ip-range` carved out of the cluster CIDR, the in-memory bitmap
//! (Kubernetes marks slices as used as it hands them out; we read the Nodes again instead) and its round-robin
//! (Kubernetes goes on after the last slice given; we take the first free one, so a deleted Node's slice is the
//! next one given out).
//!
//! Book chapter: "The pod network".

use crate::Config;
use crate::controller::{Controller, Error, Lister, Reconciled, Source, Writes, patch_unless_changed};
use ipnet::Ipv4Net;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::jiff::Timestamp;
use kubelab_api::client::{Client, resource_of};
use kubelab_api::events::{EventType, Recorder};
use kubelab_api::object;
use serde_json::json;
use std::time::Duration;

// ANCHOR: config
/// Which addresses pods get, and in slices of which size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeIpamConfig {
    /// The whole pod network (`--cluster-cidr`, `10.244.0.0/16` as in kubeadm's and flannel's examples).
    pub cluster_cidr: Ipv4Net,
    /// The prefix length of each node's slice (`--node-cidr-mask-size`, 24: 254 pods per node at most).
    pub node_cidr_mask_size: u8,
    /// How often a Node waiting for a slice of a full range is looked at again (and its `CIDRNotAvailable`
    /// recorded again). Kubernetes retries with its work queue's back-off and merges the repeated events into one
    /// with a count; our events are not merged, so we retry at a calm pace instead.
    pub recheck_when_full: Duration,
}

impl Default for NodeIpamConfig {
    fn default() -> Self {
        NodeIpamConfig {
            // 10.244.0.0/16 is a valid network with a valid prefix: this cannot fail.
            cluster_cidr: Ipv4Net::new(std::net::Ipv4Addr::new(10, 244, 0, 0), 16).expect("a valid /16"),
            node_cidr_mask_size: 24,
            recheck_when_full: Duration::from_secs(30),
        }
    }
}

impl NodeIpamConfig {
    /// Refuses a mask that cannot cut the cluster CIDR into slices (`--node-cidr-mask-size` must be longer than
    /// the cluster CIDR's prefix, and leave room for a few pods).
    pub fn validate(&self) -> Result<(), String> {
        let (cluster, mask) = (self.cluster_cidr.prefix_len(), self.node_cidr_mask_size);
        if mask < cluster || mask > 30 {
            return Err(format!(
                "--node-cidr-mask-size {mask} cannot cut --cluster-cidr {} into slices: it must be from {cluster} to 30",
                self.cluster_cidr
            ));
        }
        Ok(())
    }
}
// ANCHOR_END: config

// ANCHOR: allocate
/// The slice a Node without one gets: the first `/mask` of `cluster` that overlaps none of the `taken` ones
/// (every other Node's `spec.podCIDR`); `None` when the cluster CIDR is full.
pub fn allocate(cluster: Ipv4Net, mask: u8, taken: &[Ipv4Net]) -> Option<Ipv4Net> {
    let overlaps = |a: &Ipv4Net, b: &Ipv4Net| a.contains(b) || b.contains(a);
    cluster.subnets(mask).ok()?.find(|slice| !taken.iter().any(|used| overlaps(slice, used)))
}
// ANCHOR_END: allocate

/// One Node without a pod CIDR, and the slices every other Node holds.
#[derive(Debug, Clone)]
pub struct Observed {
    pub node: Node,
    /// The `spec.podCIDR` of every Node that has one (unreadable ones are left out: they hold nothing we could
    /// give away twice, since they are no address at all).
    pub taken: Vec<Ipv4Net>,
}

/// What the controller does for one Node.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Write `spec.podCIDR` and `spec.podCIDRs`.
    Assign(Ipv4Net),
    /// Say on the Node that the cluster CIDR is full (`CIDRNotAvailable`).
    RecordNotAvailable,
}

// ANCHOR: reconcile
/// Decides for one Node: nothing if it has a pod CIDR, else the first free slice, else the event (and a look
/// again later: a Node may be deleted and free its slice).
pub fn reconcile(observed: &Observed, config: &NodeIpamConfig) -> Reconciled<Action> {
    if pod_cidr(&observed.node).is_some() {
        return Reconciled::nothing();
    }
    match allocate(config.cluster_cidr, config.node_cidr_mask_size, &observed.taken) {
        Some(slice) => Reconciled { actions: vec![Action::Assign(slice)], requeue_after: None },
        None => Reconciled { actions: vec![Action::RecordNotAvailable], requeue_after: Some(config.recheck_when_full) },
    }
}
// ANCHOR_END: reconcile

/// A Node's `spec.podCIDR`, if it has one (an empty string is none, as in Kubernetes).
fn pod_cidr(node: &Node) -> Option<&str> {
    node.spec.as_ref().and_then(|s| s.pod_cidr.as_deref()).filter(|cidr| !cidr.is_empty())
}

/// The controller: a client, a recorder and the cache of Nodes.
pub struct NodeIpamController {
    client: Client,
    recorder: Recorder,
    nodes: Lister,
    config: NodeIpamConfig,
}

impl Controller for NodeIpamController {
    type Observed = Observed;
    type Action = Action;

    /// One informer: Nodes, each its own key.
    fn new(client: &Client, config: &Config) -> Result<(Self, Vec<Source>), Error> {
        let (source, nodes) = Source::new(client, resource_of::<Node>()?, |n| vec![object::name(n).into()]);
        let recorder = Recorder::new(client.clone(), "node-controller");
        Ok((NodeIpamController { client: client.clone(), recorder, nodes, config: config.node_ipam }, vec![source]))
    }

    /// One worker, always: two decisions at once on the same cache could hand one slice to two Nodes.
    fn workers(_config: &Config) -> usize {
        1
    }

    fn name(&self) -> &'static str {
        "node-ipam-controller"
    }

    fn observe(&self, key: &str) -> Option<Observed> {
        let node: Node = self.nodes.get(key)?;
        let taken = self
            .nodes
            .list_values()
            .into_iter()
            .filter_map(|n| serde_json::from_value::<Node>(n).ok())
            .filter_map(|n| pod_cidr(&n).and_then(|cidr| cidr.parse().ok()))
            .collect();
        Some(Observed { node, taken })
    }

    fn reconcile(&self, observed: &Observed, _now: Timestamp) -> Reconciled<Action> {
        reconcile(observed, &self.config)
    }

    async fn apply(&self, observed: &Observed, actions: Vec<Action>, writes: &mut Writes) -> Result<(), Error> {
        let meta = &observed.node.metadata;
        let name = meta.name.clone().unwrap_or_default();
        for action in actions {
            match action {
                // Based on the version read: if the Node changed meanwhile, 409 and a fresh look.
                Action::Assign(slice) => {
                    let patch = json!({"metadata": {"resourceVersion": meta.resource_version},
                        "spec": {"podCIDR": slice.to_string(), "podCIDRs": [slice.to_string()]}});
                    let written =
                        patch_unless_changed(&self.client, resource_of::<Node>()?, None, &name, &patch).await?;
                    tracing::info!(node = %name, pod_cidr = %slice, "assigned the node its pod CIDR");
                    writes.extend(&self.nodes, written);
                }
                Action::RecordNotAvailable => {
                    tracing::warn!(node = %name, cluster_cidr = %self.config.cluster_cidr, "no pod CIDR left");
                    let about =
                        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "uid": meta.uid}});
                    let message = format!("Node {name} status is now: CIDRNotAvailable");
                    self.recorder.record(&about, EventType::Normal, "CIDRNotAvailable", message).await;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(text: &str) -> Ipv4Net {
        text.parse().unwrap()
    }

    fn node(name: &str, pod_cidr: Option<&str>) -> Node {
        serde_json::from_value(json!({"metadata": {"name": name}, "spec": {"podCIDR": pod_cidr}})).unwrap()
    }

    fn config(cluster: &str, mask: u8) -> NodeIpamConfig {
        NodeIpamConfig { cluster_cidr: net(cluster), node_cidr_mask_size: mask, ..NodeIpamConfig::default() }
    }

    #[test]
    fn the_first_node_gets_the_first_slice_of_the_cluster_cidr() {
        assert_eq!(allocate(net("10.244.0.0/16"), 24, &[]), Some(net("10.244.0.0/24")));
    }

    #[test]
    fn a_slice_held_by_another_node_is_never_given_again() {
        let taken = [net("10.244.0.0/24"), net("10.244.2.0/24")];
        assert_eq!(allocate(net("10.244.0.0/16"), 24, &taken), Some(net("10.244.1.0/24")));
        let next = [net("10.244.0.0/24"), net("10.244.1.0/24"), net("10.244.2.0/24")];
        assert_eq!(allocate(net("10.244.0.0/16"), 24, &next), Some(net("10.244.3.0/24")));
    }

    #[test]
    fn a_slice_written_by_hand_with_another_size_blocks_every_slice_it_overlaps() {
        // A kubelet started with --pod-cidr 10.244.0.0/23 holds what would be two /24s.
        assert_eq!(allocate(net("10.244.0.0/16"), 24, &[net("10.244.0.0/23")]), Some(net("10.244.2.0/24")));
        // One holding the whole cluster CIDR leaves nothing.
        assert_eq!(allocate(net("10.244.0.0/16"), 24, &[net("10.0.0.0/8")]), None);
    }

    #[test]
    fn slices_outside_the_cluster_cidr_take_nothing_from_it() {
        assert_eq!(allocate(net("10.244.0.0/16"), 24, &[net("10.99.0.0/24")]), Some(net("10.244.0.0/24")));
    }

    #[test]
    fn a_full_cluster_cidr_gives_nothing() {
        let taken = [net("10.244.0.0/25"), net("10.244.0.128/25")];
        assert_eq!(allocate(net("10.244.0.0/24"), 25, &taken), None);
    }

    #[test]
    fn a_node_with_a_pod_cidr_is_left_alone() {
        let observed = Observed { node: node("node-1", Some("10.244.7.0/24")), taken: vec![net("10.244.7.0/24")] };
        assert_eq!(reconcile(&observed, &config("10.244.0.0/16", 24)), Reconciled::nothing());
    }

    #[test]
    fn a_node_without_one_is_assigned_the_first_free_slice() {
        let observed = Observed { node: node("node-2", None), taken: vec![net("10.244.0.0/24")] };
        let decided = reconcile(&observed, &config("10.244.0.0/16", 24));
        assert_eq!(decided.actions, [Action::Assign(net("10.244.1.0/24"))]);
        assert_eq!(decided.requeue_after, None);
    }

    #[test]
    fn an_empty_pod_cidr_counts_as_none() {
        let observed = Observed { node: node("node-1", Some("")), taken: vec![] };
        assert_eq!(reconcile(&observed, &config("10.244.0.0/16", 24)).actions, [Action::Assign(net("10.244.0.0/24"))]);
    }

    #[test]
    fn when_the_range_is_full_the_node_is_told_and_looked_at_again_later() {
        let observed =
            Observed { node: node("node-3", None), taken: vec![net("10.244.0.0/25"), net("10.244.0.128/25")] };
        let decided = reconcile(&observed, &config("10.244.0.0/24", 25));
        assert_eq!(decided.actions, [Action::RecordNotAvailable]);
        assert_eq!(decided.requeue_after, Some(Duration::from_secs(30)));
    }

    #[test]
    fn after_a_restart_the_slices_already_assigned_are_read_back_and_skipped() {
        // Level-triggered: three nodes given slices by an earlier controller manager, one new node.
        let cluster = [node("a", Some("10.244.0.0/24")), node("b", Some("10.244.1.0/24")), node("c", None)];
        let taken: Vec<Ipv4Net> = cluster.iter().filter_map(|n| pod_cidr(n)?.parse().ok()).collect();
        let observed = Observed { node: cluster[2].clone(), taken };
        assert_eq!(reconcile(&observed, &config("10.244.0.0/16", 24)).actions, [Action::Assign(net("10.244.2.0/24"))]);
    }

    #[test]
    fn a_mask_shorter_than_the_cluster_prefix_is_refused_with_both_flags_named() {
        assert_eq!(
            config("10.244.0.0/16", 8).validate().unwrap_err(),
            "--node-cidr-mask-size 8 cannot cut --cluster-cidr 10.244.0.0/16 into slices: it must be from 16 to 30"
        );
        assert!(config("10.244.0.0/16", 24).validate().is_ok());
    }
}
