//! What a Service asks of the ranges, and what it holds: pure functions over the Service's JSON.
//!
//! Mirrors `pkg/registry/core/service/storage/alloc.go` (which slots to take on create and update) and the
//! Service strategy's `patchAllocatedValues` and `dropTypeDependentFields` (what an update keeps or drops).

use super::bitmap::Want;
use super::ranges::{IpRange, PortRange};
use kubelab_api::{ApiError, Cause};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

/// What a stored Service holds from the ranges: given back when it is deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holdings {
    pub ip: Option<Ipv4Addr>,
    pub node_ports: BTreeSet<i32>,
}

impl Holdings {
    /// What `self` holds and `other` does not.
    pub fn minus(&self, other: &Holdings) -> Holdings {
        Holdings {
            ip: self.ip.filter(|ip| other.ip != Some(*ip)),
            node_ports: self.node_ports.difference(&other.node_ports).copied().collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.ip.is_none() && self.node_ports.is_empty()
    }
}

fn service_type(service: &Value) -> &str {
    match service.pointer("/spec/type").and_then(Value::as_str).unwrap_or("") {
        "" => "ClusterIP",
        other => other,
    }
}

/// Every type but ExternalName gets a cluster IP (or is headless).
fn needs_cluster_ip(service: &Value) -> bool {
    service_type(service) != "ExternalName"
}

/// NodePort Services, and LoadBalancers unless `allocateLoadBalancerNodePorts: false`, get a node port per port.
fn needs_node_ports(service: &Value) -> bool {
    match service_type(service) {
        "NodePort" => true,
        "LoadBalancer" => {
            service.pointer("/spec/allocateLoadBalancerNodePorts").and_then(Value::as_bool) != Some(false)
        }
        _ => false,
    }
}

fn cluster_ip(service: &Value) -> &str {
    service.pointer("/spec/clusterIP").and_then(Value::as_str).unwrap_or("")
}

fn ports(service: &Value) -> &[Value] {
    service.pointer("/spec/ports").and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

fn node_port(port: &Value) -> i32 {
    port.get("nodePort").and_then(Value::as_i64).unwrap_or(0) as i32
}

/// The cluster IP and node ports `service` holds.
pub fn holdings(service: &Value) -> Holdings {
    let ip = if needs_cluster_ip(service) { cluster_ip(service).parse().ok() } else { None };
    let node_ports = ports(service).iter().map(node_port).filter(|p| *p != 0).collect();
    Holdings { ip, node_ports }
}

// ANCHOR: prepare_update
/// On update, before defaults and validation: what the client left out but the Service already holds is kept
/// (a `kubectl replace` of a manifest without `clusterIP` must not ask for a new address), and what a change of
/// type makes meaningless is dropped when the client left it as it was (`type: NodePort` → `ClusterIP` drops the
/// node ports, which are then given back).
pub fn prepare_update(old: &Value, mut new: Value) -> Value {
    let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) else { return new };
    let new_type = match spec.get("type").and_then(Value::as_str).unwrap_or("") {
        "" => "ClusterIP".to_string(),
        other => other.to_string(),
    };
    let (had_ip, has_ip) = (needs_cluster_ip(old), new_type != "ExternalName");
    let same = |field: &str, spec: &serde_json::Map<String, Value>| {
        spec.get(field).unwrap_or(&Value::Null) == old.pointer(&format!("/spec/{field}")).unwrap_or(&Value::Null)
    };
    if had_ip && !has_ip && same("clusterIP", spec) && same("clusterIPs", spec) {
        for field in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
            spec.remove(field);
        }
    }
    if had_ip && has_ip {
        for field in ["clusterIP", "clusterIPs"] {
            let empty = spec.get(field).is_none_or(|v| v.is_null() || v == "" || v == &json!([]));
            if let (true, Some(value)) = (empty, old.pointer(&format!("/spec/{field}"))) {
                spec.insert(field.into(), value.clone());
            }
        }
    }
    let had_node_ports = needs_node_ports(old);
    let has_node_ports = matches!(new_type.as_str(), "NodePort" | "LoadBalancer");
    let new_ports = spec.get_mut("ports").and_then(Value::as_array_mut);
    let Some(new_ports) = new_ports else { return new };
    let old_node_ports: Vec<i32> = ports(old).iter().map(node_port).collect();
    if had_node_ports && !has_node_ports && new_ports.iter().map(node_port).eq(old_node_ports.iter().copied()) {
        new_ports.iter_mut().filter_map(Value::as_object_mut).for_each(|port| {
            port.remove("nodePort");
        });
    }
    if had_node_ports && has_node_ports {
        // Kubernetes matches ports by name: the user may have changed the port number itself.
        let by_name: BTreeMap<&str, i32> =
            ports(old).iter().map(|p| (p["name"].as_str().unwrap_or(""), node_port(p))).collect();
        let used: BTreeSet<i32> = new_ports.iter().map(node_port).collect();
        for port in new_ports.iter_mut().filter(|p| node_port(p) == 0) {
            let name = port["name"].as_str().unwrap_or("");
            if let Some(old) = by_name.get(name).filter(|old| **old != 0 && !used.contains(old))
                && let Some(port) = port.as_object_mut()
            {
                port.insert("nodePort".into(), json!(old));
            }
        }
    }
    new
}
// ANCHOR_END: prepare_update

/// A cluster-wide choice the Service's spec cannot make on a single-stack IPv4 cluster.
pub fn check_families(service: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let headless = cluster_ip(service) == "None";
    if !needs_cluster_ip(service) || headless {
        return causes;
    }
    let ip = cluster_ip(service);
    if ip.parse::<IpAddr>().is_ok_and(|ip| ip.is_ipv6()) {
        causes.push(Cause::invalid("spec.clusterIPs[0]", JsonList(&[ip]), "IPv6 is not configured on this cluster"));
    }
    let families = service.pointer("/spec/ipFamilies").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
    for (i, family) in families.iter().enumerate() {
        if family != "IPv4" {
            let family = family.as_str().unwrap_or("");
            causes.push(Cause::invalid(format!("spec.ipFamilies[{i}]"), family, "not configured on this cluster"));
        }
    }
    if service.pointer("/spec/ipFamilyPolicy").and_then(Value::as_str) == Some("RequireDualStack") {
        let detail = "this cluster is not configured for dual-stack services";
        causes.push(Cause::invalid("spec.ipFamilyPolicy", "RequireDualStack", detail));
    }
    causes
}

/// A list of strings as Kubernetes prints a bad value today: `["10.96.0.5"]`.
struct JsonList<'a>(&'a [&'a str]);

impl fmt::Debug for JsonList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", serde_json::to_string(self.0).unwrap_or_default())
    }
}

/// Which cluster IP slot `service` asks for: `None` when it needs none, or already holds the one it names.
pub fn ip_request(service: &Value, old: &Holdings, range: &IpRange) -> Result<Option<Want>, ApiError> {
    let ip = cluster_ip(service);
    if !needs_cluster_ip(service) || ip == "None" {
        return Ok(None);
    }
    if ip.is_empty() {
        return Ok(Some(Want::Any { reserved: range.reserved(), random: random() }));
    }
    let parsed: Ipv4Addr = ip.parse().map_err(|_| ip_refused(service, ip, "not an IPv4 address"))?;
    if old.ip == Some(parsed) {
        return Ok(None);
    }
    let slot = range.slot(parsed).map_err(|detail| ip_refused(service, ip, detail))?;
    Ok(Some(Want::Slot(slot)))
}

/// Which node port slots `service` asks for: `(index of the port, what it wants)`, each slot once. A port number
/// exposed for two protocols (53/UDP and 53/TCP) shares one node port, as in Kubernetes.
pub fn port_requests(service: &Value, old: &Holdings, range: &PortRange) -> Result<Vec<(usize, Want)>, ApiError> {
    let mut requests = Vec::new();
    let mut requested = BTreeSet::new();
    let mut shared: BTreeSet<i64> = BTreeSet::new();
    let number = |port: &Value| port.get("port").and_then(Value::as_i64).unwrap_or(0);
    for (i, port) in ports(service).iter().enumerate() {
        let node_port = node_port(port);
        if node_port != 0 {
            let slot = range.slot(node_port).map_err(|detail| port_refused(service, i, node_port, detail))?;
            if !old.node_ports.contains(&node_port) && requested.insert(node_port) {
                requests.push((i, Want::Slot(slot)));
            }
        }
    }
    if !needs_node_ports(service) {
        return Ok(requests);
    }
    let named: BTreeSet<i64> = ports(service).iter().filter(|p| node_port(p) != 0).map(number).collect();
    for (i, port) in ports(service).iter().enumerate() {
        if node_port(port) == 0 && !named.contains(&number(port)) && shared.insert(number(port)) {
            requests.push((i, Want::Any { reserved: range.reserved(), random: random() }));
        }
    }
    Ok(requests)
}

/// Writes the allocated cluster IP into `spec.clusterIP` and `spec.clusterIPs`.
pub fn fill_ip(service: &mut Value, ip: Ipv4Addr) {
    if let Some(spec) = service.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("clusterIP".into(), json!(ip.to_string()));
        spec.insert("clusterIPs".into(), json!([ip.to_string()]));
    }
}

/// Writes allocated node ports into their ports, and into the ports that share their number.
pub fn fill_node_ports(service: &mut Value, allocated: &[(usize, i32)]) {
    let Some(ports) = service.pointer_mut("/spec/ports").and_then(Value::as_array_mut) else { return };
    for (i, node_port) in allocated {
        if let Some(port) = ports.get_mut(*i).and_then(Value::as_object_mut) {
            port.insert("nodePort".into(), json!(node_port));
        }
    }
    let by_number: BTreeMap<i64, i32> =
        ports.iter().filter(|p| node_port(p) != 0).map(|p| (p["port"].as_i64().unwrap_or(0), node_port(p))).collect();
    for port in ports.iter_mut().filter(|p| node_port(p) == 0) {
        if let Some(shared) = by_number.get(&port["port"].as_i64().unwrap_or(0))
            && let Some(port) = port.as_object_mut()
        {
            port.insert("nodePort".into(), json!(shared));
        }
    }
}

/// `spec.clusterIPs: Invalid value: ["10.96.0.5"]: failed to allocate IP 10.96.0.5: provided IP is already allocated`.
pub fn ip_refused(service: &Value, ip: &str, detail: impl fmt::Display) -> ApiError {
    let cause = Cause::invalid("spec.clusterIPs", JsonList(&[ip]), format!("failed to allocate IP {ip}: {detail}"));
    ApiError::invalid("", "Service", name(service), vec![cause])
}

/// `spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated`.
pub fn port_refused(service: &Value, index: usize, node_port: i32, detail: impl fmt::Display) -> ApiError {
    let cause = Cause::invalid(format!("spec.ports[{index}].nodePort"), node_port, detail);
    ApiError::invalid("", "Service", name(service), vec![cause])
}

fn name(service: &Value) -> &str {
    service.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("")
}

/// Where a dynamic allocation starts its scan.
fn random() -> u64 {
    uuid::Uuid::new_v4().as_u64_pair().0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(spec: Value) -> Value {
        json!({"metadata": {"name": "web"}, "spec": spec})
    }

    #[test]
    fn a_requested_ip_is_a_slot_an_empty_one_any_and_headless_or_external_names_none() {
        let range = IpRange::default();
        let none = Holdings::default();
        let want = |spec| ip_request(&svc(spec), &none, &range).unwrap();
        assert_eq!(want(json!({"clusterIP": "10.96.0.10"})), Some(Want::Slot(9)));
        assert!(matches!(want(json!({})), Some(Want::Any { reserved: 256, .. })));
        assert_eq!(want(json!({"clusterIP": "None"})), None);
        assert_eq!(want(json!({"type": "ExternalName", "externalName": "example.com"})), None);
        let held = Holdings { ip: Some(Ipv4Addr::new(10, 96, 0, 10)), ..Default::default() };
        assert_eq!(ip_request(&svc(json!({"clusterIP": "10.96.0.10"})), &held, &range).unwrap(), None);
    }

    #[test]
    fn an_ip_outside_the_range_is_refused_as_kubernetes_refuses_it() {
        let err = ip_request(&svc(json!({"clusterIP": "10.0.0.1"})), &Holdings::default(), &IpRange::default());
        assert_eq!(
            err.unwrap_err().message,
            "Service \"web\" is invalid: spec.clusterIPs: Invalid value: [\"10.0.0.1\"]: failed to allocate IP 10.0.0.1: the provided IP (10.0.0.1) is not in the valid range. The range of valid IPs is 10.96.0.0/12"
        );
    }

    #[test]
    fn node_ports_are_requested_by_number_or_once_per_port_number() {
        let range = PortRange::default();
        let spec = json!({"type": "NodePort", "ports": [
            {"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
            {"name": "web", "port": 80, "nodePort": 30080}]});
        let requests = port_requests(&svc(spec.clone()), &Holdings::default(), &range).unwrap();
        assert_eq!(requests[0], (2, Want::Slot(80)));
        assert_eq!(requests.len(), 2, "53/UDP and 53/TCP share one: {requests:?}");
        let mut service = svc(spec);
        fill_node_ports(&mut service, &[(0, 31000), (2, 30080)]);
        let node_ports: Vec<i32> = ports(&service).iter().map(node_port).collect();
        assert_eq!(node_ports, vec![31000, 31000, 30080]);
    }

    #[test]
    fn a_node_port_outside_the_range_names_the_range() {
        let spec = json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 8080}]});
        let err = port_requests(&svc(spec), &Holdings::default(), &PortRange::default()).unwrap_err();
        assert_eq!(
            err.message,
            "Service \"web\" is invalid: spec.ports[0].nodePort: Invalid value: 8080: provided port is not in the valid range. The range of valid ports is 30000-32767"
        );
    }

    #[test]
    fn an_update_keeps_what_the_service_holds_when_the_client_leaves_it_out() {
        let old = svc(json!({"type": "NodePort", "clusterIP": "10.96.0.7", "clusterIPs": ["10.96.0.7"],
                             "ports": [{"name": "web", "port": 80, "nodePort": 30080}]}));
        let new = prepare_update(&old, svc(json!({"type": "NodePort", "ports": [{"name": "web", "port": 8080}]})));
        assert_eq!(new["spec"]["clusterIP"], "10.96.0.7");
        assert_eq!(new["spec"]["clusterIPs"], json!(["10.96.0.7"]));
        assert_eq!(new["spec"]["ports"][0]["nodePort"], 30080);
    }

    #[test]
    fn turning_a_node_port_service_into_a_cluster_ip_one_drops_its_node_ports() {
        let old = svc(json!({"type": "NodePort", "clusterIP": "10.96.0.7",
                             "ports": [{"name": "web", "port": 80, "nodePort": 30080}]}));
        let new = prepare_update(
            &old,
            svc(json!({"type": "ClusterIP", "clusterIP": "10.96.0.7",
                                                   "ports": [{"name": "web", "port": 80, "nodePort": 30080}]})),
        );
        assert_eq!(new["spec"]["ports"][0].get("nodePort"), None);
        assert_eq!(holdings(&old).minus(&holdings(&new)).node_ports, BTreeSet::from([30080]));
    }

    #[test]
    fn a_single_stack_ipv4_cluster_refuses_other_families() {
        let causes = check_families(&svc(json!({"clusterIP": "fd00::1", "ipFamilies": ["IPv6"],
                                                "ipFamilyPolicy": "RequireDualStack"})));
        let lines: Vec<String> = causes.iter().map(|c| c.to_string()).collect();
        assert_eq!(
            lines,
            vec![
                "spec.clusterIPs[0]: Invalid value: [\"fd00::1\"]: IPv6 is not configured on this cluster",
                "spec.ipFamilies[0]: Invalid value: \"IPv6\": not configured on this cluster",
                "spec.ipFamilyPolicy: Invalid value: \"RequireDualStack\": this cluster is not configured for dual-stack services",
            ]
        );
        assert!(check_families(&svc(json!({"clusterIP": "None", "ipFamilies": ["IPv4", "IPv6"]}))).is_empty());
    }
}
