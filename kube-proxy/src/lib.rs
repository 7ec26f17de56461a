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
//!   mode, listening sockets and the cluster IPs on a local interface;
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
//! ## The userspace mode, wired
//! `kubelab up` (and the `kubelab-kube-proxy` binary, by default) runs [`proxy::run`]: a level-triggered loop on
//! the Service and EndpointSlice informers. From the service ports, [`listeners::desired_listeners`] (pure) says
//! which cluster IPs the machine must own and which sockets to listen on — `clusterIP:port`, and
//! `<node address>:nodePort` on every node — and [`listeners::reconcile`] turns the difference with what is there
//! into actions. The cluster IPs go on an interface of their own ([`interface`], `<cluster name>-svc`), as
//! Kubernetes' IPVS mode puts them on `kube-ipvs0`: the kernel then treats them as local addresses, so a
//! connection to one, from the host or from a pod (whose default route leads to the host), is delivered to our
//! listening socket, and no packet for the service CIDR ever leaves the machine (the rest of the range is routed
//! `unreachable`). The path of a connection from a pod:
//!
//! ```text
//! pod 10.244.1.3 ──► bridge <name>-pods ──► host: 10.96.0.10 is local (on <name>-svc)
//!   ──► kube-proxy's socket 10.96.0.10:80 ──► round robin ──► new connection to pod 10.244.0.5:8080
//! ```
//!
//! The simulated nodes of `kubelab up` share the host's network namespace — one set of addresses, one port
//! space — so one kube-proxy serves them all, with node ports on each node's address (`127.0.1.i`). Only TCP is
//! proxied.
//!
//! Reading order: [`service_port`], [`listeners`] (the userspace decision), [`round_robin`] and [`forwarder`] (its
//! data path), [`interface`] and [`proxy`] (the I/O around them), then [`iptables`] (the other mode's decision,
//! tested as text).
//!
//! ## What is not there yet
//! The iptables mode is computed and tested but only printed (`kubelab-kube-proxy --proxy-mode iptables`): still
//! to come are applying it with `iptables-restore --noflush` (atomically, one commit per table) after ensuring
//! [`iptables::JUMPS`], deleting the chains of Services that went away (a restore only touches the chains it
//! names: Kubernetes lists them with `iptables-save` and writes `-X` for each), and removing every chain on exit.
//! Where the simulated nodes share one host, they would share one rule set: one kube-proxy for the host, with
//! every node's address as a node-port address.
//!
//! ## What we leave out
//! UDP and SCTP in the userspace mode; session affinity in the userspace mode (the iptables rules have it);
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
/// would apply now (it is only printed: the iptables mode is not wired).
pub async fn current_rules(client: &Client, node: &NodeNetwork) -> Result<String, ClientError> {
    let services = client.list_typed::<Service>(None, &ListParams::default()).await?;
    let slices = client.list_typed::<EndpointSlice>(None, &ListParams::default()).await?;
    Ok(rules(&services.items, &slices.items, node))
}
