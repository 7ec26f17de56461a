//! The iptables mode: the whole rule set, as `iptables-restore` input, from a pure function.
//!
//! In this mode kube-proxy forwards nothing itself. It writes rules into the kernel's `nat` table, and the kernel
//! rewrites the destination of each new connection (DNAT) from the cluster IP (or a node port) to one pod, picked
//! at random; conntrack then rewrites every later packet of that connection the same way, in both directions.
//! A packet to a Service walks this tree of chains:
//!
//! ```text
//! PREROUTING / OUTPUT ─► KUBE-SERVICES ─ "10.96.0.10:80/tcp?" ─► KUBE-SVC-<hash>   one per service port
//!                                      └ last rule: to a local address? ─► KUBE-NODEPORTS ─ ":30080/tcp?" ─►
//!                                                                            KUBE-EXT-<hash> ─► KUBE-SVC-<hash>
//! KUBE-SVC-<hash> ─ probability 1/3 ─► KUBE-SEP-<hash>   one per endpoint: DNAT to 10.244.1.5:8080
//!                 ─ probability 1/2 ─► KUBE-SEP-<hash>
//!                 ─ otherwise ───────► KUBE-SEP-<hash>
//! ```
//!
//! The probabilities make the choice uniform: the first endpoint of n is taken with probability 1/n; if not, the
//! second with 1/(n-1) of what is left, ... the last always. Each of n endpoints ends up with 1/n.
//!
//! Masquerading (SNAT to the node's address) is needed where the reply would otherwise not come back through this
//! node's conntrack: traffic from outside the pod network to a cluster IP, node-port traffic (the pod may be on
//! another node), and a pod reaching itself through its Service (hairpin). Those packets are *marked* on the way
//! in (`KUBE-MARK-MASQ`) and masqueraded on the way out (`KUBE-POSTROUTING`).
//!
//! A service port without endpoints gets no `nat` chains at all, but a `REJECT` in the `filter` table, so that a
//! client is refused at once rather than left to time out.
//!
//! Chain names are Kubernetes' own: `KUBE-SVC-` and sixteen characters of the base32 SHA-256 of the service port's
//! name and protocol (`KUBE-SEP-` adds the endpoint), so that they fit iptables' 28 characters and are stable
//! across restarts: the same Service gets the same chain on every node and in every kube-proxy, ours or Google's.

use std::fmt::Write as _;
use std::net::IpAddr;

use data_encoding::BASE32;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use sha2::{Digest, Sha256};

use crate::service_port::{ServicePort, service_ports};

/// The bit kube-proxy sets on packets to masquerade: bit 14 (`--iptables-masquerade-bit`, default 14), as
/// Kubernetes; the kubelet and CNI plugins know it.
pub const MASQUERADE_MARK: &str = "0x4000";

/// What the rule set needs to know about the node it is for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeNetwork {
    /// The addresses node ports answer on (kube-proxy's `--nodeport-addresses`). Empty: every local address of
    /// the host (`-m addrtype --dst-type LOCAL`), Kubernetes' default.
    pub node_port_addresses: Vec<IpAddr>,
    /// The pod network, e.g. `10.244.0.0/16` (`--cluster-cidr`): connections to a cluster IP from outside it are
    /// masqueraded. `None`: they are not (Kubernetes then cannot tell pods from the rest either).
    pub cluster_cidr: Option<String>,
}

/// A rule in one of the kernel's built-in chains that leads to ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Jump {
    pub table: &'static str,
    /// The built-in chain: `PREROUTING`, `OUTPUT`...
    pub from: &'static str,
    /// What the rule matches besides its comment (`-m conntrack --ctstate NEW`: only a connection's first packet).
    pub matching: &'static str,
    pub comment: &'static str,
    /// Our chain.
    pub to: &'static str,
}

/// The jumps from the built-in chains into ours, as Kubernetes installs them. `iptables-restore --noflush` cannot
/// add one rule to a built-in chain without rewriting it whole (and Docker's rules live there too), so these are
/// ensured one by one (`iptables -C`, else `-I`) before the first restore, and deleted on exit.
pub const JUMPS: &[Jump] = &[
    Jump {
        table: "filter",
        from: "INPUT",
        matching: "-m conntrack --ctstate NEW",
        comment: "kubernetes externally-visible service portals",
        to: "KUBE-EXTERNAL-SERVICES",
    },
    Jump {
        table: "filter",
        from: "FORWARD",
        matching: "-m conntrack --ctstate NEW",
        comment: "kubernetes externally-visible service portals",
        to: "KUBE-EXTERNAL-SERVICES",
    },
    Jump {
        table: "filter",
        from: "FORWARD",
        matching: "-m conntrack --ctstate NEW",
        comment: "kubernetes service portals",
        to: "KUBE-SERVICES",
    },
    Jump {
        table: "filter",
        from: "OUTPUT",
        matching: "-m conntrack --ctstate NEW",
        comment: "kubernetes service portals",
        to: "KUBE-SERVICES",
    },
    Jump { table: "filter", from: "FORWARD", matching: "", comment: "kubernetes forwarding rules", to: "KUBE-FORWARD" },
    Jump { table: "nat", from: "OUTPUT", matching: "", comment: "kubernetes service portals", to: "KUBE-SERVICES" },
    Jump { table: "nat", from: "PREROUTING", matching: "", comment: "kubernetes service portals", to: "KUBE-SERVICES" },
    Jump {
        table: "nat",
        from: "POSTROUTING",
        matching: "",
        comment: "kubernetes postrouting rules",
        to: "KUBE-POSTROUTING",
    },
];

// ANCHOR: rules
/// The whole rule set for `services` and their `endpoint_slices` on `node`, as `iptables-restore --noflush` input.
///
/// Applying it replaces every chain it names (a chain line `:NAME - [0:0]` empties the chain) in one atomic
/// commit per table, and leaves everyone else's chains alone. It is level-triggered: it describes the whole
/// desired state, whatever changed since the last call.
pub fn rules(services: &[Service], endpoint_slices: &[EndpointSlice], node: &NodeNetwork) -> String {
    let ports = service_ports(services, endpoint_slices);
    let mut rules = RuleSet::default();
    rules.fixed_chains();
    for port in &ports {
        rules.service_port(port, node);
    }
    rules.closing_rules(node);
    rules.render()
}
// ANCHOR_END: rules

/// `KUBE-SVC-…` for a service port: Kubernetes' `servicePortPolicyClusterChain`.
pub fn service_chain(port: &ServicePort) -> String {
    format!("KUBE-SVC-{}", hash16(&format!("{}{}", port.name, port.protocol)))
}

/// `KUBE-EXT-…`: where node-port traffic for a service port goes first.
pub fn external_chain(port: &ServicePort) -> String {
    format!("KUBE-EXT-{}", hash16(&format!("{}{}", port.name, port.protocol)))
}

/// `KUBE-SEP-…` for one endpoint of a service port.
pub fn endpoint_chain(port: &ServicePort, endpoint: &str) -> String {
    format!("KUBE-SEP-{}", hash16(&format!("{}{}{endpoint}", port.name, port.protocol)))
}

// ANCHOR: hash
/// The first 16 characters of the base32 (RFC 4648, `A-Z2-7`) SHA-256 of `text`: Kubernetes' `portProtoHash`.
fn hash16(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    BASE32.encode(&digest)[..16].to_string()
}
// ANCHOR_END: hash

/// `1/n` with ten decimals, as kube-proxy prints it (`0.3333333333`).
fn probability(n: usize) -> String {
    format!("{:.10}", 1.0 / n as f64)
}

/// A rule's comment, quoted when it has spaces (as kube-proxy writes them).
fn comment(text: &str) -> String {
    if text.contains(' ') { format!("-m comment --comment \"{text}\"") } else { format!("-m comment --comment {text}") }
}

/// The rule set being built: chain lines and rules of the two tables, in the order `iptables-restore` reads them.
#[derive(Default)]
struct RuleSet {
    filter_chains: Vec<String>,
    filter_rules: Vec<String>,
    nat_chains: Vec<String>,
    nat_rules: Vec<String>,
}

impl RuleSet {
    /// The chains every rule set has, and the rules that do not depend on any Service.
    fn fixed_chains(&mut self) {
        for chain in ["KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "KUBE-FORWARD"] {
            self.filter_chains.push(chain.to_string());
        }
        for chain in ["KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-MARK-MASQ"] {
            self.nat_chains.push(chain.to_string());
        }
        let mark = format!("{MASQUERADE_MARK}/{MASQUERADE_MARK}");
        // Leave unmarked packets alone; clear the mark (a packet may come through again); masquerade.
        self.nat_rules.push(format!("-A KUBE-POSTROUTING -m mark ! --mark {mark} -j RETURN"));
        self.nat_rules.push(format!("-A KUBE-POSTROUTING -j MARK --xor-mark {MASQUERADE_MARK}"));
        self.nat_rules.push(format!(
            "-A KUBE-POSTROUTING {} -j MASQUERADE --random-fully",
            comment("kubernetes service traffic requiring SNAT")
        ));
        self.nat_rules.push(format!("-A KUBE-MARK-MASQ -j MARK --or-mark {MASQUERADE_MARK}"));
    }

    // ANCHOR: service_port
    /// The rules of one service port: capture its cluster IP and node port, then pick an endpoint and DNAT to it.
    fn service_port(&mut self, port: &ServicePort, node: &NodeNetwork) {
        let (name, proto) = (&port.name, &port.protocol);
        let destination = format!("-m {proto} -p {proto} -d {} --dport {}", port.cluster_ip, port.port);
        if port.endpoints.is_empty() {
            // Nowhere to go: refuse at once (ICMP port unreachable) instead of letting the client time out.
            let no_endpoints = comment(&format!("{name} has no endpoints"));
            self.filter_rules.push(format!("-A KUBE-SERVICES {no_endpoints} {destination} -j REJECT"));
            if let Some(node_port) = port.node_port {
                self.filter_rules.push(format!(
                    "-A KUBE-EXTERNAL-SERVICES {no_endpoints} -m addrtype --dst-type LOCAL -m {proto} -p {proto} \
                     --dport {node_port} -j REJECT"
                ));
            }
            return;
        }
        let svc = service_chain(port);
        let ext = external_chain(port);
        let cluster_ip = comment(&format!("{name} cluster IP"));
        // Capture: the cluster IP, and the node port.
        self.nat_rules.push(format!("-A KUBE-SERVICES {cluster_ip} {destination} -j {svc}"));
        if let Some(node_port) = port.node_port {
            self.nat_chains.push(ext.clone());
            self.nat_rules.push(format!(
                "-A KUBE-NODEPORTS {} -m {proto} -p {proto} --dport {node_port} -j {ext}",
                comment(name)
            ));
        }
        // Off-the-pod-network clients of the cluster IP are masqueraded: the reply must come back through here.
        self.nat_chains.push(svc.clone());
        if let Some(cidr) = &node.cluster_cidr {
            self.nat_rules.push(format!("-A {svc} {cluster_ip} {destination} ! -s {cidr} -j KUBE-MARK-MASQ"));
        }
        // Node-port traffic is always masqueraded: the endpoint may be on another node.
        if port.node_port.is_some() {
            let masquerade = comment(&format!("masquerade traffic for {name} external destinations"));
            self.nat_rules.push(format!("-A {ext} {masquerade} -j KUBE-MARK-MASQ"));
            self.nat_rules.push(format!("-A {ext} -j {svc}"));
        }
        // Pick an endpoint: a client with affinity goes back to its endpoint, the others uniformly at random.
        let chains: Vec<String> = port.endpoints.iter().map(|e| endpoint_chain(port, &e.to_string())).collect();
        if let Some(seconds) = port.affinity_seconds {
            for (endpoint, sep) in port.endpoints.iter().zip(&chains) {
                self.nat_rules.push(format!(
                    "-A {svc} {} -m recent --name {sep} --rcheck --seconds {seconds} --reap -j {sep}",
                    comment(&format!("{name} -> {endpoint}"))
                ));
            }
        }
        let n = port.endpoints.len();
        for (i, (endpoint, sep)) in port.endpoints.iter().zip(&chains).enumerate() {
            let mut rule = format!("-A {svc} {}", comment(&format!("{name} -> {endpoint}")));
            if i + 1 < n {
                let _ = write!(rule, " -m statistic --mode random --probability {}", probability(n - i));
            }
            let _ = write!(rule, " -j {sep}");
            self.nat_rules.push(rule);
        }
        // Each endpoint: masquerade a pod that reaches itself (hairpin), remember affinity, DNAT.
        for (endpoint, sep) in port.endpoints.iter().zip(&chains) {
            self.nat_chains.push(sep.clone());
            self.nat_rules.push(format!("-A {sep} {} -s {} -j KUBE-MARK-MASQ", comment(name), endpoint.ip));
            let remember =
                if port.affinity_seconds.is_some() { format!(" -m recent --name {sep} --set") } else { String::new() };
            self.nat_rules.push(format!(
                "-A {sep} {}{remember} -m {proto} -p {proto} -j DNAT --to-destination {endpoint}",
                comment(name)
            ));
        }
    }
    // ANCHOR_END: service_port

    /// The rules after every service port's. Last rule of `KUBE-SERVICES`: what did not match a cluster IP but is
    /// addressed to this node goes on to the node ports. Then `KUBE-FORWARD`: forwarded service traffic must pass
    /// even where the `FORWARD` policy is `DROP` (Docker sets it so).
    fn closing_rules(&mut self, node: &NodeNetwork) {
        let last = comment("kubernetes service nodeports; NOTE: this must be the last rule in this chain");
        if node.node_port_addresses.is_empty() {
            self.nat_rules.push(format!("-A KUBE-SERVICES {last} -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS"));
        }
        for address in &node.node_port_addresses {
            self.nat_rules.push(format!("-A KUBE-SERVICES {last} -d {address} -j KUBE-NODEPORTS"));
        }
        let mark = format!("{MASQUERADE_MARK}/{MASQUERADE_MARK}");
        self.filter_rules.push("-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP".to_string());
        self.filter_rules.push(format!(
            "-A KUBE-FORWARD {} -m mark --mark {mark} -j ACCEPT",
            comment("kubernetes forwarding rules")
        ));
        self.filter_rules.push(format!(
            "-A KUBE-FORWARD {} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
            comment("kubernetes forwarding conntrack rule")
        ));
    }

    /// The `iptables-restore` text: per table, the chain lines, the rules, `COMMIT`.
    fn render(&self) -> String {
        let mut text = String::new();
        for (table, chains, rules) in
            [("filter", &self.filter_chains, &self.filter_rules), ("nat", &self.nat_chains, &self.nat_rules)]
        {
            let _ = writeln!(text, "*{table}");
            for chain in chains {
                let _ = writeln!(text, ":{chain} - [0:0]");
            }
            for rule in rules {
                let _ = writeln!(text, "{rule}");
            }
            text.push_str("COMMIT\n");
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service_port::Endpoint;
    use crate::testing::{endpoint, ready, service, slice};
    use serde_json::json;

    /// Compares a generated rule set with an expected one from `testdata/`, whose `#` lines (comments to
    /// `iptables-restore` too) are the book's anchors and are skipped.
    fn assert_rules(actual: &str, expected: &str) {
        let expected: String =
            expected.lines().filter(|line| !line.starts_with('#')).map(|line| format!("{line}\n")).collect();
        assert!(actual == expected, "the rule set differs.\n--- actual ---\n{actual}--- expected ---\n{expected}");
    }

    /// `shop/web`: a NodePort Service in front of three ready pods on two nodes (and one that is not ready), and
    /// `shop/cart`, whose only pod is not ready.
    fn shop() -> (Vec<Service>, Vec<EndpointSlice>) {
        let services = vec![
            service(
                "shop",
                "web",
                json!({"type": "NodePort", "clusterIP": "10.96.0.10", "ports": [
                    {"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080, "nodePort": 30080},
                ]}),
            ),
            service(
                "shop",
                "cart",
                json!({"clusterIP": "10.96.0.11", "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}),
            ),
        ];
        let http = json!([{"name": "http", "port": 8080, "protocol": "TCP"}]);
        let slices = vec![
            slice(
                "shop",
                "web",
                "x7k2p",
                http.clone(),
                json!([
                    ready("10.244.1.5"),
                    ready("10.244.2.7"),
                    ready("10.244.1.6"),
                    endpoint("10.244.2.8", (false, false, false)),
                ]),
            ),
            slice("shop", "cart", "q9w4z", http, json!([endpoint("10.244.1.9", (false, false, false))])),
        ];
        (services, slices)
    }

    #[test]
    fn a_node_port_service_with_three_ready_pods_and_a_service_without_endpoints() {
        let (services, slices) = shop();
        let node = NodeNetwork { node_port_addresses: vec![], cluster_cidr: Some("10.244.0.0/16".to_string()) };
        assert_rules(&rules(&services, &slices, &node), include_str!("../testdata/shop.rules"));
    }

    #[test]
    fn client_ip_affinity_and_node_ports_on_given_addresses() {
        let services = [service(
            "default",
            "session",
            json!({"type": "NodePort", "clusterIP": "10.96.0.12", "sessionAffinity": "ClientIP",
                   "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 600}},
                   "ports": [{"port": 8000, "protocol": "TCP", "nodePort": 31000}]}),
        )];
        let slices = [slice(
            "default",
            "session",
            "m3n8b",
            json!([{"port": 8000, "protocol": "TCP"}]),
            json!([ready("10.244.1.20"), ready("10.244.2.21")]),
        )];
        // The simulated nodes of `kubelab up`, sharing one host: node ports on their addresses only.
        let node = NodeNetwork {
            node_port_addresses: vec!["127.100.0.1".parse().unwrap(), "127.100.0.2".parse().unwrap()],
            cluster_cidr: None,
        };
        assert_rules(&rules(&services, &slices, &node), include_str!("../testdata/affinity.rules"));
    }

    #[test]
    fn no_services_leave_only_the_chains_every_rule_set_has() {
        let expected = "\
*filter
:KUBE-SERVICES - [0:0]
:KUBE-EXTERNAL-SERVICES - [0:0]
:KUBE-FORWARD - [0:0]
-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding rules\" -m mark --mark 0x4000/0x4000 -j ACCEPT
-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding conntrack rule\" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
COMMIT
*nat
:KUBE-SERVICES - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-MARK-MASQ - [0:0]
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully
-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
COMMIT
";
        assert_rules(&rules(&[], &[], &NodeNetwork::default()), expected);
    }

    #[test]
    fn chain_names_are_the_ones_kubernetes_gives_the_same_service_ports() {
        // The chains of the `kubernetes` and `kube-dns` Services on every kubeadm cluster.
        let port = |name: &str, protocol: &str| ServicePort {
            name: name.to_string(),
            protocol: protocol.to_string(),
            cluster_ip: "10.96.0.1".parse().unwrap(),
            port: 443,
            node_port: None,
            affinity_seconds: None,
            endpoints: vec![],
        };
        assert_eq!(service_chain(&port("default/kubernetes:https", "tcp")), "KUBE-SVC-NPX46M4PTMTKRN6Y");
        assert_eq!(service_chain(&port("kube-system/kube-dns:dns", "udp")), "KUBE-SVC-TCOU7JCQXEZGVUNU");
        assert_eq!(service_chain(&port("kube-system/kube-dns:dns-tcp", "tcp")), "KUBE-SVC-ERIFXISQEP7F7OF4");
        assert_eq!(service_chain(&port("kube-system/kube-dns:metrics", "tcp")), "KUBE-SVC-JD5MR3NA4I4DYORP");
        let endpoint = Endpoint { ip: "10.244.0.2".parse().unwrap(), port: 53 };
        assert!(
            endpoint_chain(&port("kube-system/kube-dns:dns", "udp"), &endpoint.to_string()).starts_with("KUBE-SEP-")
        );
    }

    #[test]
    fn the_nth_endpoint_from_the_end_is_taken_with_probability_one_over_n() {
        let printed: Vec<String> = (1..=5).rev().map(probability).collect();
        assert_eq!(printed, ["0.2000000000", "0.2500000000", "0.3333333333", "0.5000000000", "1.0000000000"]);
    }
}
