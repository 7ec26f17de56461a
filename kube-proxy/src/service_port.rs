//! What both modes proxy: one [`ServicePort`] per port of each Service, with the endpoints it may send to.
//!
//! kube-proxy does not think in Services but in *service ports*: a Service with ports `http` and `metrics` is two
//! independent load balancers, each with its own cluster-IP:port, node port and endpoints. Kubernetes names one
//! `namespace/name:port` (its `ServicePortName`), and so do we: the name appears in every rule's comment and is
//! hashed into the chain names.
//!
//! The endpoints come from the EndpointSlices labelled `kubernetes.io/service-name=<service>` in the Service's
//! namespace: for each slice port with the same name and protocol as the service port, every address of every
//! endpoint, at the slice port's number (the targetPort, already resolved per pod by the EndpointSlice
//! controller). Which endpoints receive traffic is [`usable`]'s decision.

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::{Endpoint as SliceEndpoint, EndpointSlice};

/// The label that ties an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// How long a client sticks to its endpoint with `sessionAffinity: ClientIP` when the Service does not say:
/// three hours, Kubernetes' default.
pub const DEFAULT_AFFINITY_SECONDS: i32 = 10_800;

/// One port of one Service, and where its traffic may go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePort {
    /// `namespace/name:port`, or `namespace/name` for a Service's single unnamed port.
    pub name: String,
    /// `tcp`, `udp` or `sctp`: lowercase, as iptables spells it (`-p tcp -m tcp`) and as Kubernetes hashes it.
    pub protocol: String,
    pub cluster_ip: Ipv4Addr,
    pub port: u16,
    /// Set for `type: NodePort` (and LoadBalancer) Services: the port opened on every node.
    pub node_port: Option<u16>,
    /// `sessionAffinity: ClientIP`: how many seconds a client keeps its endpoint. `None` for no affinity.
    pub affinity_seconds: Option<i32>,
    /// The endpoints to send to, sorted and without duplicates; empty when there are none (connections are then
    /// refused, never left to time out).
    pub endpoints: Vec<Endpoint>,
}

/// One destination: a pod's address and the port its container listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Endpoint {
    pub ip: IpAddr,
    pub port: u16,
}

impl fmt::Display for Endpoint {
    /// `10.244.1.5:8080`, as rules and chain hashes spell it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.ip, self.port)
    }
}

// ANCHOR: service_ports
/// Every port of every proxied Service, sorted by name, with its usable endpoints.
///
/// Services without a cluster IP are not proxied, as in Kubernetes: headless ones (`clusterIP: None`, reached
/// through DNS by their pods' addresses), `ExternalName` ones (a DNS alias), and any the apiserver has not given an
/// address yet. So are IPv6 cluster IPs and slices: kubelab's networks are IPv4 only.
pub fn service_ports(services: &[Service], slices: &[EndpointSlice]) -> Vec<ServicePort> {
    let mut ports = Vec::new();
    for service in services {
        let Some(spec) = &service.spec else { continue };
        let Some(cluster_ip) = spec.cluster_ip.as_deref().and_then(|ip| ip.parse::<Ipv4Addr>().ok()) else {
            continue;
        };
        let namespace = service.metadata.namespace.as_deref().unwrap_or("default");
        let name = service.metadata.name.as_deref().unwrap_or_default();
        let slices: Vec<&EndpointSlice> = slices
            .iter()
            .filter(|slice| slice.metadata.namespace.as_deref().unwrap_or("default") == namespace)
            .filter(|slice| slice_service(slice) == Some(name))
            .filter(|slice| slice.address_type == "IPv4")
            .collect();
        let affinity_seconds = (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
            let config = spec.session_affinity_config.as_ref().and_then(|c| c.client_ip.as_ref());
            config.and_then(|c| c.timeout_seconds).unwrap_or(DEFAULT_AFFINITY_SECONDS)
        });
        for port in spec.ports.iter().flatten() {
            let port_name = port.name.as_deref().unwrap_or_default();
            let protocol = port.protocol.as_deref().unwrap_or("TCP");
            let (Ok(number), Ok(node_port)) = (u16::try_from(port.port), port.node_port.map(u16::try_from).transpose())
            else {
                continue;
            };
            ports.push(ServicePort {
                name: if port_name.is_empty() {
                    format!("{namespace}/{name}")
                } else {
                    format!("{namespace}/{name}:{port_name}")
                },
                protocol: protocol.to_ascii_lowercase(),
                cluster_ip,
                port: number,
                node_port: node_port.filter(|p| *p != 0),
                affinity_seconds,
                endpoints: usable(&slices, port_name, protocol),
            });
        }
    }
    ports.sort_by(|a, b| (&a.name, &a.protocol).cmp(&(&b.name, &b.protocol)));
    ports
}
// ANCHOR_END: service_ports

/// The Service a slice belongs to, from its label.
fn slice_service(slice: &EndpointSlice) -> Option<&str> {
    slice.metadata.labels.as_ref()?.get(SERVICE_NAME_LABEL).map(String::as_str)
}

// ANCHOR: usable
/// The endpoints of one service port that may receive new connections.
///
/// **Ready** endpoints (`conditions.ready`, which an absent condition means) — pods that pass their readiness
/// probe and are not terminating. If there are none, the **serving and terminating** ones: pods being replaced
/// that still answer. Kubernetes does the same since 1.28, so that a rolling update whose last old pod is still
/// draining does not refuse connections in the moment before a new pod is ready.
pub fn usable(slices: &[&EndpointSlice], port_name: &str, protocol: &str) -> Vec<Endpoint> {
    let pick = |wanted: &dyn Fn(&SliceEndpoint) -> bool| -> BTreeSet<Endpoint> {
        let mut endpoints = BTreeSet::new();
        for slice in slices {
            let Some(port) = slice_port(slice, port_name, protocol) else { continue };
            for endpoint in slice.endpoints.iter().filter(|e| wanted(e)) {
                let ips = endpoint.addresses.iter().filter_map(|a| a.parse::<IpAddr>().ok());
                endpoints.extend(ips.map(|ip| Endpoint { ip, port }));
            }
        }
        endpoints
    };
    let ready = pick(&|e| condition(e).0);
    let chosen = if ready.is_empty() { pick(&|e| !condition(e).0 && condition(e).1 && condition(e).2) } else { ready };
    chosen.into_iter().collect()
}
// ANCHOR_END: usable

/// The number a slice gives the service port `port_name`/`protocol`, if it lists that port.
fn slice_port(slice: &EndpointSlice, port_name: &str, protocol: &str) -> Option<u16> {
    let port = slice.ports.iter().flatten().find(|p| {
        p.name.as_deref().unwrap_or_default() == port_name && p.protocol.as_deref().unwrap_or("TCP") == protocol
    })?;
    u16::try_from(port.port?).ok()
}

/// `(ready, serving, terminating)`, with the API's meaning of an absent condition: ready unless said otherwise,
/// serving when ready, not terminating.
fn condition(endpoint: &SliceEndpoint) -> (bool, bool, bool) {
    let conditions = endpoint.conditions.clone().unwrap_or_default();
    let ready = conditions.ready.unwrap_or(true);
    (ready, conditions.serving.unwrap_or(ready), conditions.terminating.unwrap_or(false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{endpoint, ready, service, slice};
    use serde_json::json;

    fn web() -> Service {
        service(
            "shop",
            "web",
            json!({"clusterIP": "10.96.0.10", "ports": [
                {"name": "http", "port": 80, "protocol": "TCP", "targetPort": "http"},
                {"name": "metrics", "port": 9090, "protocol": "TCP"},
            ]}),
        )
    }

    /// The endpoints of `shop/web:http` for a slice holding `endpoints`.
    fn http_endpoints(endpoints: serde_json::Value) -> Vec<String> {
        let slices =
            [slice("shop", "web", "abc", json!([{"name": "http", "port": 8080, "protocol": "TCP"}]), endpoints)];
        let ports = service_ports(&[web()], &slices);
        ports[0].endpoints.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn each_port_of_a_service_is_proxied_on_its_own_with_the_endpoints_of_its_name() {
        let slices = [slice(
            "shop",
            "web",
            "abc",
            json!([{"name": "http", "port": 8080, "protocol": "TCP"}, {"name": "metrics", "port": 9100, "protocol": "TCP"}]),
            json!([ready("10.244.1.5"), ready("10.244.2.7")]),
        )];
        let ports = service_ports(&[web()], &slices);
        let summary: Vec<String> = ports
            .iter()
            .map(|p| {
                let endpoints: Vec<String> = p.endpoints.iter().map(ToString::to_string).collect();
                format!("{} {} {}:{} -> {}", p.name, p.protocol, p.cluster_ip, p.port, endpoints.join(" "))
            })
            .collect();
        assert_eq!(
            summary,
            [
                "shop/web:http tcp 10.96.0.10:80 -> 10.244.1.5:8080 10.244.2.7:8080",
                "shop/web:metrics tcp 10.96.0.10:9090 -> 10.244.1.5:9100 10.244.2.7:9100",
            ]
        );
    }

    // ANCHOR: readiness_table
    #[test]
    fn only_ready_endpoints_receive_traffic_and_terminating_ones_only_while_none_is_ready() {
        // (ready, serving, terminating) of three pods → the endpoints that receive new connections.
        let table = [
            (
                [(true, true, false), (true, true, false), (true, true, false)],
                vec!["10.244.0.1", "10.244.0.2", "10.244.0.3"],
            ),
            ([(true, true, false), (false, false, false), (true, true, false)], vec!["10.244.0.1", "10.244.0.3"]),
            // A rolling update: one new pod ready, old ones draining. Only the ready one.
            ([(true, true, false), (false, true, true), (false, true, true)], vec!["10.244.0.1"]),
            // No pod ready, two old ones still serving while they terminate: those two.
            ([(false, false, false), (false, true, true), (false, true, true)], vec!["10.244.0.2", "10.244.0.3"]),
            // Terminating and no longer serving, or not ready and not terminating: none.
            ([(false, false, true), (false, false, false), (false, true, false)], vec![]),
        ];
        for (conditions, expected) in table {
            let endpoints: Vec<_> =
                conditions.iter().enumerate().map(|(i, c)| endpoint(&format!("10.244.0.{}", i + 1), *c)).collect();
            let expected: Vec<String> = expected.iter().map(|ip| format!("{ip}:8080")).collect();
            assert_eq!(http_endpoints(json!(endpoints)), expected, "conditions {conditions:?}");
        }
    }
    // ANCHOR_END: readiness_table

    #[test]
    fn an_endpoint_in_two_slices_is_counted_once_and_other_services_slices_are_ignored() {
        let port = json!([{"name": "http", "port": 8080, "protocol": "TCP"}]);
        let slices = [
            slice("shop", "web", "a", port.clone(), json!([ready("10.244.1.5")])),
            slice("shop", "web", "b", port.clone(), json!([ready("10.244.1.5"), ready("10.244.1.6")])),
            slice("shop", "api", "a", port.clone(), json!([ready("10.244.9.9")])),
            slice("other", "web", "a", port, json!([ready("10.244.8.8")])),
        ];
        let ports = service_ports(&[web()], &slices);
        let endpoints: Vec<String> = ports[0].endpoints.iter().map(ToString::to_string).collect();
        assert_eq!(endpoints, ["10.244.1.5:8080", "10.244.1.6:8080"]);
    }

    #[test]
    fn headless_external_name_and_unallocated_services_are_not_proxied() {
        let services = [
            service("shop", "headless", json!({"clusterIP": "None", "ports": [{"port": 80}]})),
            service("shop", "alias", json!({"type": "ExternalName", "externalName": "example.com"})),
            service("shop", "new", json!({"ports": [{"port": 80}]})),
        ];
        assert_eq!(service_ports(&services, &[]), []);
    }

    #[test]
    fn a_single_unnamed_port_is_named_after_the_service_alone() {
        let services = [service("default", "db", json!({"clusterIP": "10.96.0.20", "ports": [{"port": 5432}]}))];
        let ports = service_ports(&services, &[]);
        assert_eq!((ports[0].name.as_str(), ports[0].protocol.as_str()), ("default/db", "tcp"));
    }
}
