//! The node's share of the pod network: which pod CIDR is this node's, and which address each pod gets.
//!
//! Kubernetes' network model: every pod has its own IP, and reaches every other pod, on any node, at that IP,
//! without NAT. The addresses are planned in two levels (see the controller manager's `node_ipam` module): the
//! cluster CIDR (`10.244.0.0/16`) is cut into one **pod CIDR** per node, written into the Node's `spec.podCIDR`;
//! the kubelet then hands out addresses from its own pod CIDR, without asking anyone:
//!
//! 1. **Wait for the pod CIDR** ([`wait_for_pod_cidr`]). A freshly registered Node has none until the node IPAM
//!    controller writes it. Until then the kubelet cannot give any pod an address, so, like a real kubelet whose
//!    network plugin is not ready, it reports the Node `Ready=False` with a message saying why
//!    ([`NOT_READY_MESSAGE`]) and logs that it waits. (A kubelet started with `--pod-cidr` registers its Node with
//!    that one and does not wait.)
//! 2. **Set up the node's pod network** from it (`docker.rs`, `ensure_network`): the Docker bridge network the
//!    sandboxes join. On a machine of its own (the course VMs) the kubelet creates it with the pod CIDR as subnet.
//!    Under `kubelab up`, where every simulated node lives on one host, `kubelab up` has already created one
//!    network for the whole cluster CIDR, shared by all nodes; the kubelet only checks that its pod CIDR lies
//!    inside it.
//! 3. **Give each pod the next free address** of the pod CIDR ([`next_pod_ip`]), as the CNI `host-local` IPAM
//!    plugin does: `.0` is the network, `.1` the gateway, the last one broadcast, so a `/24` holds pods `.2` to
//!    `.254`. Docker is asked for that exact address; "free" means no container on the network holds it now.
//!
//! Why one shared bridge under `kubelab up`: separate Docker networks are isolated from each other by Docker's
//! own firewall rules (and their traffic masqueraded), so a pod on node-2 could not reach one on node-1 without
//! extra iptables rules, which need root and must be cleaned up. One bridge for the cluster CIDR is one wire that
//! every simulated node's pods hang on: a packet from `10.244.1.2` to `10.244.0.2` goes straight across it, with
//! its source address untouched. Each node still owns its own slice, as on real machines, where each node has
//! its own bridge and the others *route* its pod CIDR to it (the chapter "The pod network" shows both paths).
//!
//! What we leave out: CNI itself (Docker's bridge driver plays the plugin), dual-stack, and remembering given
//! addresses across pods (host-local goes on after the last one it gave; we take the lowest free one).

use crate::config::Config;
use crate::error::KubeletError;
use ipnet::Ipv4Net;
use k8s_openapi::api::core::v1::Node;
use kubelab_api::client::ListParams;
use kubelab_api::informer::{Change, watch_changes};
use std::net::Ipv4Addr;
use std::time::Duration;

/// The Node's `Ready=False` message while it has no pod CIDR: the wording of a real kubelet whose network plugin
/// is not ready yet, with the reason ours is not.
pub const NOT_READY_MESSAGE: &str = "container runtime network not ready: NetworkReady=false \
     reason:NetworkPluginNotReady message:the node has no spec.podCIDR yet (the node IPAM controller assigns one)";

/// How often the kubelet says again that it still waits for its pod CIDR.
const WAITING_REMINDER: Duration = Duration::from_secs(30);

// ANCHOR: next_pod_ip
/// The address the next pod gets: the lowest one of `pod_cidr` that is not its network address, its gateway
/// (the first address) or its broadcast address, and that no container holds (`used`). `None` when the pod CIDR
/// is full.
pub fn next_pod_ip(pod_cidr: Ipv4Net, used: &[Ipv4Addr]) -> Option<Ipv4Addr> {
    // `hosts()` already leaves out the network and broadcast addresses; `skip(1)` leaves out the gateway.
    pod_cidr.hosts().skip(1).find(|ip| !used.contains(ip))
}
// ANCHOR_END: next_pod_ip

/// The Node's `spec.podCIDR`, if it has one; an error if it is not an IPv4 CIDR.
pub fn pod_cidr_of(node: &Node) -> Result<Option<Ipv4Net>, KubeletError> {
    let Some(text) = node.spec.as_ref().and_then(|s| s.pod_cidr.as_deref()).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let cidr: Ipv4Net = text.parse().map_err(|_| {
        KubeletError::Config(format!("the Node's spec.podCIDR {text:?} is not an IPv4 CIDR such as 10.244.1.0/24"))
    })?;
    Ok(Some(cidr.trunc()))
}

// ANCHOR: wait_for_pod_cidr
/// Waits until the Node has a `spec.podCIDR` (at once if `registered` already shows one), watching it through
/// the apiserver, and says in the log every 30 s that it still waits.
pub async fn wait_for_pod_cidr(config: &Config, registered: &Node) -> Result<Ipv4Net, KubeletError> {
    if let Some(cidr) = pod_cidr_of(registered)? {
        return Ok(cidr);
    }
    let node = &config.node_name;
    tracing::info!(node, "network not ready: waiting for the controller manager to assign the node's spec.podCIDR");
    let nodes = kubelab_api::resources::by_kind("v1", "Node")
        .ok_or_else(|| KubeletError::Config("kubelab-api does not serve v1 Node".into()))?;
    let this_node = ListParams::default().fields(format!("metadata.name={node}"));
    let mut changes = Box::pin(watch_changes(config.client.clone(), nodes, None, this_node));
    let mut reminder = tokio::time::interval_at(tokio::time::Instant::now() + WAITING_REMINDER, WAITING_REMINDER);
    loop {
        let change = tokio::select! {
            change = futures::StreamExt::next(&mut changes) => change,
            _ = reminder.tick() => {
                tracing::warn!(node, "still waiting for spec.podCIDR: is the controller manager running?");
                continue;
            }
        };
        let seen = match change {
            Some(Ok(Change::Restarted(items))) => items,
            Some(Ok(Change::Applied(object))) => vec![object],
            Some(Ok(Change::Deleted(_))) => Vec::new(),
            Some(Err(err)) => {
                tracing::warn!(node, error = %err, "cannot watch the node yet; retrying");
                Vec::new()
            }
            None => return Err(KubeletError::Config("the watch of the node ended".into())),
        };
        for object in seen {
            let Ok(seen) = serde_json::from_value::<Node>(object) else { continue };
            if let Some(cidr) = pod_cidr_of(&seen)? {
                tracing::info!(node, pod_cidr = %cidr, "the node has its pod CIDR");
                return Ok(cidr);
            }
        }
    }
}
// ANCHOR_END: wait_for_pod_cidr

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> Ipv4Addr {
        text.parse().unwrap()
    }

    #[test]
    fn the_first_pod_gets_the_address_after_the_gateway() {
        assert_eq!(next_pod_ip("10.244.1.0/24".parse().unwrap(), &[]), Some(ip("10.244.1.2")));
    }

    #[test]
    fn an_address_held_by_a_container_is_skipped_and_a_freed_one_is_given_again() {
        let cidr = "10.244.1.0/24".parse().unwrap();
        assert_eq!(next_pod_ip(cidr, &[ip("10.244.1.2"), ip("10.244.1.3")]), Some(ip("10.244.1.4")));
        assert_eq!(next_pod_ip(cidr, &[ip("10.244.1.3")]), Some(ip("10.244.1.2")));
    }

    #[test]
    fn addresses_of_other_nodes_on_a_shared_network_do_not_count() {
        let cidr = "10.244.1.0/24".parse().unwrap();
        assert_eq!(next_pod_ip(cidr, &[ip("10.244.0.2"), ip("10.244.2.2")]), Some(ip("10.244.1.2")));
    }

    #[test]
    fn a_full_pod_cidr_gives_no_address_and_never_its_broadcast() {
        // A /30 holds .0 (network), .1 (gateway), .2 (one pod) and .3 (broadcast).
        let cidr = "10.244.1.0/30".parse().unwrap();
        assert_eq!(next_pod_ip(cidr, &[]), Some(ip("10.244.1.2")));
        assert_eq!(next_pod_ip(cidr, &[ip("10.244.1.2")]), None);
    }

    #[test]
    fn a_node_without_a_pod_cidr_has_none_and_a_malformed_one_is_an_error() {
        let node = |cidr: serde_json::Value| -> Node {
            serde_json::from_value(serde_json::json!({"metadata": {"name": "n"}, "spec": {"podCIDR": cidr}})).unwrap()
        };
        assert_eq!(pod_cidr_of(&node(serde_json::Value::Null)).unwrap(), None);
        assert_eq!(pod_cidr_of(&node("".into())).unwrap(), None);
        assert_eq!(pod_cidr_of(&node("10.244.3.0/24".into())).unwrap(), Some("10.244.3.0/24".parse().unwrap()));
        assert!(pod_cidr_of(&node("fd00::/64".into())).unwrap_err().to_string().contains("not an IPv4 CIDR"));
    }
}
