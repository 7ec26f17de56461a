//! # kubelab-kube-proxy: a Service's address leads to its pods
//!
//! A Service gives a changing set of pods one stable address: a **cluster IP** (and, for `type: NodePort`, a port
//! on every node). Nothing owns that address — no interface has it, no process listens on it. **kube-proxy**, on
//! every node, makes it work: a connection to `clusterIP:port` or `<any node>:nodePort` reaches one of the
//! Service's ready pods, chosen anew for each connection.
//!
//! - **watches** Services (their cluster IP, ports, node ports, session affinity) and EndpointSlices (which pods,
//!   at which address and port, are ready — the EndpointSlice controller keeps them up to date);
//! - **writes** nothing to the API. Its output is the node's own configuration: kernel rules, or, in the userspace
//!   mode, listening sockets;
//! - mirrors Kubernetes' **kube-proxy** and its two historical modes:
//!   - **userspace** (Kubernetes 1.0; removed in 1.26): kube-proxy accepts each connection itself, picks an
//!     endpoint round robin ([`round_robin`]), skipping those that refuse, and copies bytes both ways
//!     ([`forwarder`]). Simple to read, every byte pays a trip through the process;
//!   - **iptables** (the default since 1.2): kube-proxy computes the whole rule set ([`iptables::rules`], a pure
//!     function of Services, EndpointSlices and the node) and hands it to `iptables-restore`; from then on the
//!     kernel rewrites each connection's destination (DNAT) to a pod picked at random, and kube-proxy is out of
//!     the data path.
//!
//! Both start from the same view: [`service_port::service_ports`] turns Services and EndpointSlices into one
//! [`ServicePort`] per port, with the endpoints that may receive traffic (ready ones; serving and terminating ones
//! while none is ready).
//!
//! Reading order: [`service_port`], [`iptables`] (the decision, tested as text), [`round_robin`] and
//! [`forwarder`] (the userspace mode).
//!
//! ## What is not there yet
//! This crate is the core of kube-proxy, the part that does not depend on the rest of the cluster's network. Still
//! to come, with the wiring step: following Services and EndpointSlices through the shared informer (today
//! `main` reads them once and prints the rule set); applying the rules with `iptables-restore --noflush`
//! (atomically, one commit per table) after ensuring [`iptables::JUMPS`], deleting the chains of Services that
//! went away (a restore only touches the chains it names: Kubernetes lists them with `iptables-save` and writes
//! `-X` for each), and removing every chain on exit; in the userspace mode, a forwarder per service port behind a
//! redirect of its cluster IP; the local route for the service CIDR, which must never be routed off the machine;
//! and `kubelab up` starting a proxy for its nodes.
//! Where the simulated nodes of `kubelab up` share one host's network namespace, they share one rule set: one
//! kube-proxy for the host, with every node's address as a node-port address.
//!
//! ## What we leave out
//! nftables and IPVS modes; IPv6 and dual stack; `externalTrafficPolicy` and `internalTrafficPolicy: Local`
//! (every endpoint is used, as with `Cluster`); LoadBalancer ingress IPs, `loadBalancerSourceRanges`, external IPs
//! and health-check node ports; topology-aware routing; partial syncs (we always write the whole set: fine for a
//! classroom's few hundred rules); conntrack cleanup for UDP when an endpoint goes away; the `KUBE-FIREWALL`
//! localhost protection; metrics.
//!
//! Book chapter: *Services and kube-proxy* (`book/src/kube-proxy.md`).

pub mod forwarder;
pub mod interface;
pub mod iptables;
pub mod listeners;
pub mod proxy;
pub mod round_robin;
pub mod service_port;
#[cfg(test)]
mod testing;

pub use forwarder::Forwarder;
pub use iptables::{NodeNetwork, rules};
pub use listeners::{Desired, desired_listeners};
pub use proxy::{Config, run};
pub use round_robin::LoadBalancer;
pub use service_port::{Endpoint, ServicePort, service_ports};

/// Why the userspace proxy cannot do its work.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Adding the interface failed for lack of privilege.
    #[error("kube-proxy needs CAP_NET_ADMIN to add cluster IPs to {interface}; run as root")]
    NotPermitted { interface: String },
    /// Linux interface names have 1 to 15 characters.
    #[error("{0:?} cannot name an interface (1 to 15 characters)")]
    InterfaceName(String),
    /// The `ip` command could not be run at all.
    #[error("kube-proxy runs the `ip` command (iproute2), which could not be started: {source}")]
    NoIpCommand { source: std::io::Error },
    /// An `ip` command failed; its own message says why.
    #[error("`{command}` failed: {stderr}")]
    Ip { command: String, stderr: String },
    /// A listener could not be opened (the port is taken by another program, or an address is not local yet).
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: std::net::SocketAddr, source: std::io::Error },
    /// The apiserver's resource table lacks a kind kube-proxy follows (a build mistake, not a user's).
    #[error("the {0} resource is not served")]
    MissingResource(&'static str),
}

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kubelab_api::client::{Client, ClientError, ListParams};

/// Lists every Service and EndpointSlice once and returns the iptables rule set for them: what the iptables mode
/// would apply now. The I/O around [`rules`]; the informers that keep it current come with the wiring step.
pub async fn current_rules(client: &Client, node: &NodeNetwork) -> Result<String, ClientError> {
    let services = client.list_typed::<Service>(None, &ListParams::default()).await?;
    let slices = client.list_typed::<EndpointSlice>(None, &ListParams::default()).await?;
    Ok(rules(&services.items, &slices.items, node))
}
