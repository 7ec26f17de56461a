//! The Service and Endpoints rows: how a service is reached, and what is behind it.
//!
//! `web   NodePort   10.96.0.12   <none>   80:30080/TCP   5m` — a NodePort service shows its node port after
//! the service port. External-IP depends on the type: a LoadBalancer without an address yet is `<pending>`.
//! Endpoints list at most three `ip:port` pairs and say how many more there are; an EndpointSlice lists at most
//! three ports and three addresses, separately (`80,443   10.1.0.5,10.1.0.6 + 3 more...`).

use super::format::{age, format_labels, int, list, or_none, text};
use super::{AGE, Column, NAME};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::BTreeSet;

pub(super) const SERVICE_COLUMNS: &[Column] = &[
    NAME,
    Column::text("Type", "type determines how the Service is exposed."),
    Column::text("Cluster-IP", "clusterIP is the IP address of the service."),
    Column::text("External-IP", "Addresses outside the cluster at which the service is reachable."),
    Column::text("Port(s)", "The list of ports that are exposed by this service."),
    AGE,
    Column::text("Selector", "Route service traffic to pods with label keys and values matching this selector.").wide(),
];

pub(super) const ENDPOINTS_COLUMNS: &[Column] =
    &[NAME, Column::text("Endpoints", "The set of all endpoints is the union of all subsets."), AGE];

pub(super) const ENDPOINT_SLICE_COLUMNS: &[Column] = &[
    NAME,
    Column::text("AddressType", "addressType specifies the type of address carried by this EndpointSlice."),
    Column::text("Ports", "ports specifies the list of network ports exposed by each endpoint in this slice."),
    Column::text("Endpoints", "endpoints is a list of unique endpoints in this slice."),
    AGE,
];

pub(super) fn service_cells(service: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let ports = port_string(list(service, "/spec/ports"));
    vec![
        text(service, "/metadata/name").into(),
        service_type(service).into(),
        cluster_ip(service).into(),
        external_ip(service).into(),
        or_none(&ports).into(),
        age(service, now),
        format_labels(service.pointer("/spec/selector")).into(),
    ]
}

/// The type, `ClusterIP` when unset: Kubernetes defaults it before storing.
fn service_type(service: &Value) -> &str {
    match text(service, "/spec/type") {
        "" => "ClusterIP",
        kind => kind,
    }
}

/// The first cluster IP (`None` for a headless service), `<none>` without one.
fn cluster_ip(service: &Value) -> String {
    // `clusterIPs` is what printers.go reads; `clusterIP` is its first entry, for objects that only have that.
    match text(service, "/spec/clusterIPs/0") {
        "" => or_none(text(service, "/spec/clusterIP")),
        ip => ip.to_string(),
    }
}

/// printers.go's `getServiceExternalIP`, as computed for `-o wide` (the server always computes wide cells).
fn external_ip(service: &Value) -> String {
    let external_ips: Vec<&str> = list(service, "/spec/externalIPs").iter().filter_map(Value::as_str).collect();
    match service_type(service) {
        "ClusterIP" | "NodePort" if external_ips.is_empty() => "<none>".to_string(),
        "ClusterIP" | "NodePort" => external_ips.join(","),
        "LoadBalancer" => {
            let mut addresses = load_balancer_addresses(service);
            if addresses.is_empty() && external_ips.is_empty() {
                return "<pending>".to_string();
            }
            addresses.extend(external_ips.iter().map(|ip| ip.to_string()));
            addresses.join(",")
        }
        "ExternalName" => text(service, "/spec/externalName").to_string(),
        _ => "<unknown>".to_string(),
    }
}

/// The IPs (or host names) of the load balancer, sorted and without duplicates.
fn load_balancer_addresses(service: &Value) -> Vec<String> {
    let ingress = list(service, "/status/loadBalancer/ingress");
    let addresses: BTreeSet<&str> = ingress
        .iter()
        .map(|entry| match text(entry, "/ip") {
            "" => text(entry, "/hostname"),
            ip => ip,
        })
        .filter(|address| !address.is_empty())
        .collect();
    addresses.into_iter().map(str::to_string).collect()
}

/// `80/TCP,443:30443/TCP`: each port, with its node port when it has one.
fn port_string(ports: &[Value]) -> String {
    let pieces: Vec<String> = ports
        .iter()
        .map(|port| {
            let protocol = match text(port, "/protocol") {
                "" => "TCP",
                protocol => protocol,
            };
            match int(port, "/nodePort") {
                node_port if node_port > 0 => format!("{}:{node_port}/{protocol}", int(port, "/port")),
                _ => format!("{}/{protocol}", int(port, "/port")),
            }
        })
        .collect();
    pieces.join(",")
}

pub(super) fn endpoints_cells(endpoints: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![text(endpoints, "/metadata/name").into(), format_endpoints(endpoints).into(), age(endpoints, now)]
}

/// How many endpoints the Endpoints column shows before `+ N more...`.
const SHOWN_ENDPOINTS: usize = 3;

/// printers.go's `formatEndpoints`: `10.0.0.5:80,10.0.0.6:80,10.0.0.7:80 + 2 more...`.
///
/// Each ready address is listed once per port of its subset; a subset without ports (headless service
/// without ports) lists bare IPs. Not-ready addresses are not shown.
fn format_endpoints(endpoints: &Value) -> String {
    let subsets = list(endpoints, "/subsets");
    if subsets.is_empty() {
        return "<none>".to_string();
    }
    let mut shown = Vec::new();
    let mut count = 0;
    for subset in subsets {
        let addresses = list(subset, "/addresses");
        let ports = list(subset, "/ports");
        let targets: Vec<Option<i64>> =
            if ports.is_empty() { vec![None] } else { ports.iter().map(|p| Some(int(p, "/port"))).collect() };
        for port in targets {
            count += addresses.len();
            for address in addresses.iter().take(SHOWN_ENDPOINTS.saturating_sub(shown.len())) {
                let ip = text(address, "/ip");
                shown.push(match port {
                    None => ip.to_string(),
                    Some(port) if ip.contains(':') => format!("[{ip}]:{port}"),
                    Some(port) => format!("{ip}:{port}"),
                });
            }
        }
    }
    let list = shown.join(",");
    if count > SHOWN_ENDPOINTS { format!("{list} + {} more...", count - SHOWN_ENDPOINTS) } else { list }
}

pub(super) fn endpoint_slice_cells(slice: &Value, now: DateTime<Utc>) -> Vec<Value> {
    // printers.go's `formatDiscoveryPorts`: a port's number, else its name, else `*`.
    let ports = list(slice, "/ports").iter().map(|port| match port.pointer("/port").and_then(Value::as_i64) {
        Some(number) => number.to_string(),
        None => Some(text(port, "/name")).filter(|name| !name.is_empty()).unwrap_or("*").to_string(),
    });
    // `formatDiscoveryEndpoints`: every address of every endpoint, ready or not.
    let endpoints = list(slice, "/endpoints");
    let addresses = endpoints
        .iter()
        .flat_map(|endpoint| list(endpoint, "/addresses"))
        .map(|a| a.as_str().unwrap_or("").to_string());
    vec![
        text(slice, "/metadata/name").into(),
        text(slice, "/addressType").into(),
        with_more(ports.collect()).into(),
        with_more(addresses.collect()).into(),
        age(slice, now),
    ]
}

/// printers.go's `listWithMoreString`: the first three, `+ N more...`, or `<unset>` for none.
fn with_more(items: Vec<String>) -> String {
    match items.len() {
        0 => "<unset>".to_string(),
        count if count > SHOWN_ENDPOINTS => {
            format!("{} + {} more...", items[..SHOWN_ENDPOINTS].join(","), count - SHOWN_ENDPOINTS)
        }
        _ => items.join(","),
    }
}
