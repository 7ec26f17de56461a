//! The userspace mode's decision: which addresses to own and which sockets to listen on.
//!
//! The userspace proxy needs two things on the machine for each service port: the cluster IP must be one of the
//! host's own addresses (so the kernel delivers a packet to it locally, to our socket, instead of routing it
//! away), and a listening socket at `clusterIP:port`, plus one at `<node address>:nodePort` on every node for a
//! NodePort Service. [`desired_listeners`] computes all of it from the service ports, with no I/O; [`reconcile`]
//! compares it with what the proxy holds now and says what to change, as a list of [`Action`]s. The shell in
//! [`crate::proxy`] only carries them out.
//!
//! Endpoint changes do not reopen a socket: a listener whose endpoints changed gets [`Action::SetEndpoints`], and
//! its round robin goes on with the new list. Only TCP is proxied (UDP and SCTP ports are left out).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use ipnet::Ipv4Net;

use crate::service_port::ServicePort;

/// What the machine should look like for the userspace mode.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Desired {
    /// The cluster IPs to put on the service interface.
    pub addresses: BTreeSet<Ipv4Addr>,
    /// Every socket to listen on, and the endpoints its connections go to (empty: accepted and closed at once).
    pub listeners: BTreeMap<SocketAddr, Vec<SocketAddr>>,
}

// ANCHOR: desired_listeners
/// The addresses and listeners that make every TCP service port reachable.
///
/// A cluster IP outside `service_cidr` is skipped: kube-proxy only ever claims addresses of the service CIDR, so
/// a Service cannot make it take over someone else's address. Node ports listen on each of
/// `node_port_addresses`, or on every local address (`0.0.0.0`) when there are none.
pub fn desired_listeners(ports: &[ServicePort], service_cidr: Ipv4Net, node_port_addresses: &[IpAddr]) -> Desired {
    let any = [IpAddr::V4(Ipv4Addr::UNSPECIFIED)];
    let node_addresses = if node_port_addresses.is_empty() { &any[..] } else { node_port_addresses };
    let mut desired = Desired::default();
    for port in ports {
        if !service_cidr.contains(&port.cluster_ip) {
            let (service, ip) = (&port.name, port.cluster_ip);
            tracing::warn!(service, %ip, %service_cidr, "cluster IP outside the service CIDR; not proxied");
            continue;
        }
        desired.addresses.insert(port.cluster_ip);
        if port.protocol != "tcp" {
            continue; // the userspace mode here proxies TCP only
        }
        let endpoints: Vec<SocketAddr> = port.endpoints.iter().map(|e| SocketAddr::new(e.ip, e.port)).collect();
        desired.listeners.insert(SocketAddr::from((port.cluster_ip, port.port)), endpoints.clone());
        if let Some(node_port) = port.node_port {
            for node in node_addresses {
                desired.listeners.insert(SocketAddr::new(*node, node_port), endpoints.clone());
            }
        }
    }
    desired
}
// ANCHOR_END: desired_listeners

/// One change to the machine, in the order [`reconcile`] lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Put a cluster IP on the service interface (before anything listens on it).
    AddAddress(Ipv4Addr),
    /// Open a listener forwarding to these endpoints.
    Listen(SocketAddr, Vec<SocketAddr>),
    /// Give an open listener new endpoints; its socket stays open.
    SetEndpoints(SocketAddr, Vec<SocketAddr>),
    /// Close a listener no service port needs any more.
    Close(SocketAddr),
    /// Take a cluster IP off the interface (after its listeners are closed).
    RemoveAddress(Ipv4Addr),
}

// ANCHOR: reconcile
/// What to do so that `observed` (the addresses on the interface, the listeners open with their endpoints)
/// becomes `desired`. Safe to call at any time: when both agree, nothing.
pub fn reconcile(desired: &Desired, observed: &Desired) -> Vec<Action> {
    let mut actions = Vec::new();
    for ip in desired.addresses.difference(&observed.addresses) {
        actions.push(Action::AddAddress(*ip));
    }
    for (addr, endpoints) in &desired.listeners {
        match observed.listeners.get(addr) {
            None => actions.push(Action::Listen(*addr, endpoints.clone())),
            Some(current) if current != endpoints => actions.push(Action::SetEndpoints(*addr, endpoints.clone())),
            Some(_) => {}
        }
    }
    for addr in observed.listeners.keys().filter(|addr| !desired.listeners.contains_key(addr)) {
        actions.push(Action::Close(*addr));
    }
    for ip in observed.addresses.difference(&desired.addresses) {
        actions.push(Action::RemoveAddress(*ip));
    }
    actions
}
// ANCHOR_END: reconcile

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service_port::Endpoint;

    fn port(name: &str, cluster_ip: [u8; 4], port: u16, node_port: Option<u16>, endpoints: &[[u8; 4]]) -> ServicePort {
        ServicePort {
            name: name.into(),
            protocol: "tcp".into(),
            cluster_ip: cluster_ip.into(),
            port,
            node_port,
            affinity_seconds: None,
            endpoints: endpoints.iter().map(|ip| Endpoint { ip: IpAddr::from(*ip), port: 8080 }).collect(),
        }
    }

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    fn cidr() -> Ipv4Net {
        "10.96.0.0/12".parse().unwrap()
    }

    fn nodes() -> Vec<IpAddr> {
        vec![[127, 0, 1, 1].into(), [127, 0, 1, 2].into()]
    }

    #[test]
    fn a_node_port_service_listens_on_its_cluster_ip_and_on_every_node() {
        let ports = [port("shop/web:http", [10, 96, 0, 10], 80, Some(30080), &[[10, 244, 0, 5], [10, 244, 1, 7]])];
        let desired = desired_listeners(&ports, cidr(), &nodes());
        let endpoints = vec![addr("10.244.0.5:8080"), addr("10.244.1.7:8080")];
        assert_eq!(desired.addresses, BTreeSet::from([Ipv4Addr::new(10, 96, 0, 10)]));
        assert_eq!(
            desired.listeners,
            BTreeMap::from([
                (addr("10.96.0.10:80"), endpoints.clone()),
                (addr("127.0.1.1:30080"), endpoints.clone()),
                (addr("127.0.1.2:30080"), endpoints),
            ])
        );
    }

    #[test]
    fn without_node_addresses_node_ports_listen_on_every_local_address() {
        let ports = [port("shop/web:http", [10, 96, 0, 10], 80, Some(30080), &[])];
        let desired = desired_listeners(&ports, cidr(), &[]);
        assert_eq!(
            desired.listeners.keys().copied().collect::<Vec<_>>(),
            [addr("0.0.0.0:30080"), addr("10.96.0.10:80")]
        );
        // No endpoints: the listeners are still open, and refuse by closing at once.
        assert!(desired.listeners.values().all(Vec::is_empty));
    }

    #[test]
    fn two_ports_of_one_service_share_its_address_and_udp_gets_the_address_but_no_listener() {
        let mut dns = port("kube-system/kube-dns:dns", [10, 96, 0, 10], 53, None, &[[10, 244, 0, 2]]);
        dns.protocol = "udp".into();
        let dns_tcp = port("kube-system/kube-dns:dns-tcp", [10, 96, 0, 10], 53, None, &[[10, 244, 0, 2]]);
        let desired = desired_listeners(&[dns, dns_tcp], cidr(), &nodes());
        assert_eq!(desired.addresses.len(), 1);
        assert_eq!(desired.listeners.keys().copied().collect::<Vec<_>>(), [addr("10.96.0.10:53")]);
    }

    #[test]
    fn a_cluster_ip_outside_the_service_cidr_is_never_claimed() {
        let ports = [port("default/odd", [192, 168, 1, 1], 80, None, &[[10, 244, 0, 5]])];
        assert_eq!(desired_listeners(&ports, cidr(), &nodes()), Desired::default());
    }

    #[test]
    fn reconcile_adds_addresses_before_listening_and_removes_them_after_closing() {
        let old = desired_listeners(&[port("a/old", [10, 96, 0, 1], 80, None, &[])], cidr(), &[]);
        let new = desired_listeners(&[port("a/new", [10, 96, 0, 2], 80, None, &[])], cidr(), &[]);
        assert_eq!(
            reconcile(&new, &old),
            [
                Action::AddAddress(Ipv4Addr::new(10, 96, 0, 2)),
                Action::Listen(addr("10.96.0.2:80"), vec![]),
                Action::Close(addr("10.96.0.1:80")),
                Action::RemoveAddress(Ipv4Addr::new(10, 96, 0, 1)),
            ]
        );
    }

    #[test]
    fn new_endpoints_only_update_the_balancer_and_the_same_state_twice_changes_nothing() {
        let before = desired_listeners(&[port("a/web", [10, 96, 0, 1], 80, None, &[[10, 244, 0, 5]])], cidr(), &[]);
        let after = desired_listeners(&[port("a/web", [10, 96, 0, 1], 80, None, &[[10, 244, 0, 6]])], cidr(), &[]);
        assert_eq!(
            reconcile(&after, &before),
            [Action::SetEndpoints(addr("10.96.0.1:80"), vec![addr("10.244.0.6:8080")])]
        );
        assert_eq!(reconcile(&after, &after), []);
    }

    #[test]
    fn addresses_left_over_from_a_crash_are_removed() {
        let observed = Desired { addresses: BTreeSet::from([Ipv4Addr::new(10, 96, 0, 99)]), ..Desired::default() };
        assert_eq!(reconcile(&Desired::default(), &observed), [Action::RemoveAddress(Ipv4Addr::new(10, 96, 0, 99))]);
    }
}
