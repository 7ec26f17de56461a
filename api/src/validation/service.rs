//! Services: a stable name and virtual IP in front of a set of Pods.
//!
//! Mirrors `ValidateService` and `ValidateServiceUpdate` in `pkg/apis/core/validation`. What depends on the
//! cluster's configuration — whether a cluster IP or node port is in the configured range, or free — is the
//! apiserver's allocators' to say (`kubelab_apiserver::allocator`), after validation, as in Kubernetes.

use super::gofmt::{GoIntOrString, Raw};

/// What Kubernetes says of a cluster IP changed after it was allocated.
const CHANGED: &str = "may not change once set";
use super::meta::{ObjectScope, validate_labels, validate_object_meta, validate_object_meta_update};
use super::probe::validate_port_num_or_name;
use super::{Path, each_invalid};
use crate::names::{is_dns1123_label, is_dns1123_subdomain, is_valid_port_num, name_is_dns1035_label};
use crate::status::Cause;
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeSet;

const SERVICE_TYPES: &[&str] = &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];

/// A Service on create or update.
pub(super) fn validate_service(service: &Service, old: Option<&Service>) -> Vec<Cause> {
    let mut causes = Vec::new();
    let spec = service.spec.clone().unwrap_or_default();
    if let Some(old) = old {
        causes.extend(validate_object_meta_update(&service.metadata, &old.metadata));
        // Once allocated, the cluster IP stays: clients and kube-proxy rules already use it. (Kubernetes'
        // `validateUpgradeDowngradeClusterIPs`, without the dual-stack upgrades.)
        let old_spec = old.spec.clone().unwrap_or_default();
        let (new_ips, old_ips) =
            (spec.cluster_ips.clone().unwrap_or_default(), old_spec.cluster_ips.unwrap_or_default());
        let external = |t: &Option<String>| t.as_deref() == Some("ExternalName");
        if !external(&spec.type_) && !external(&old_spec.type_) && old_ips.first() != new_ips.first() {
            let value = Raw(serde_json::to_string(&new_ips).unwrap_or_default());
            let path = Path::new("spec").child("clusterIPs").index(0);
            let detail = if new_ips.is_empty() { "primary clusterIP can not be unset" } else { CHANGED };
            causes.push(Cause::invalid(path, value, detail));
        }
    }
    causes.extend(validate_object_meta(&service.metadata, ObjectScope::Namespaced, name_is_dns1035_label));
    causes.extend(validate_spec(&spec, &Path::new("spec")));
    causes
}

fn validate_spec(spec: &ServiceSpec, path: &Path) -> Vec<Cause> {
    let mut causes = Vec::new();
    let service_type = spec.type_.as_deref().unwrap_or("");
    let cluster_ip = spec.cluster_ip.as_deref().unwrap_or("");
    let headless = cluster_ip == "None";
    let ports = spec.ports.as_deref().unwrap_or(&[]);
    if ports.is_empty() && !headless && service_type != "ExternalName" {
        causes.push(Cause::required(path.child("ports"), ""));
    }
    match service_type {
        "LoadBalancer" | "NodePort" if headless => {
            let detail = format!("may not be set to 'None' for {service_type} services");
            causes.push(Cause::invalid(path.child("clusterIP"), cluster_ip, detail));
        }
        "ExternalName" => {
            if !cluster_ip.is_empty() {
                causes.push(Cause::forbidden(path.child("clusterIP"), "must be empty for ExternalName services"));
            }
            match spec.external_name.as_deref().unwrap_or("") {
                "" => causes.push(Cause::required(path.child("externalName"), "")),
                name => causes.extend(each_invalid(&path.child("externalName"), name, is_dns1123_subdomain(name))),
            }
        }
        _ => {}
    }
    // With several ports, each needs a name: Endpoints and environment variables refer to ports by name.
    let mut names = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        causes.extend(validate_port(port, ports.len() > 1, &mut names, &path.child("ports").index(i)));
    }
    causes.extend(validate_labels(spec.selector.as_ref(), &path.child("selector")));
    match spec.session_affinity.as_deref().unwrap_or("") {
        "" => causes.push(Cause::required(path.child("sessionAffinity"), "")),
        "ClientIP" | "None" => {}
        other => causes.push(Cause::not_supported(path.child("sessionAffinity"), other, &["ClientIP", "None"])),
    }
    if !cluster_ip.is_empty() && !headless && cluster_ip.parse::<std::net::IpAddr>().is_err() {
        let detail = "must be empty, 'None', or a valid IP address";
        causes.push(Cause::invalid(path.child("clusterIP"), cluster_ip, detail));
    }
    if service_type != "ExternalName" {
        causes.extend(validate_cluster_ips(cluster_ip, spec.cluster_ips.as_deref().unwrap_or(&[]), path));
    }
    match service_type {
        "" => causes.push(Cause::required(path.child("type"), "")),
        t if SERVICE_TYPES.contains(&t) => {}
        t => causes.push(Cause::not_supported(path.child("type"), t, SERVICE_TYPES)),
    }
    for (i, port) in ports.iter().enumerate() {
        if port.node_port.is_some_and(|p| p != 0) && service_type == "ClusterIP" {
            let field = path.child("ports").index(i).child("nodePort");
            causes.push(Cause::forbidden(field, "may not be used when `type` is 'ClusterIP'"));
        }
    }
    causes.extend(duplicate_ports(ports, path));
    if service_type != "ExternalName" {
        match spec.internal_traffic_policy.as_deref() {
            None if matches!(service_type, "ClusterIP" | "NodePort" | "LoadBalancer") => {
                causes.push(Cause::required(path.child("internalTrafficPolicy"), ""));
            }
            None => {}
            Some("Cluster" | "Local") => {}
            Some(other) => {
                causes.push(Cause::not_supported(path.child("internalTrafficPolicy"), other, &["Cluster", "Local"]))
            }
        }
    }
    causes
}

/// `clusterIP` and `clusterIPs` agree (defaulting copied one into the other when only one was given), as
/// Kubernetes' `ValidateServiceClusterIPsRelatedFields` checks on a single-stack cluster.
fn validate_cluster_ips(cluster_ip: &str, cluster_ips: &[String], path: &Path) -> Vec<Cause> {
    let mut causes = Vec::new();
    let field = path.child("clusterIPs");
    let value = || Raw(serde_json::to_string(cluster_ips).unwrap_or_default());
    match (cluster_ip, cluster_ips.first()) {
        ("", Some(_)) => {
            causes.push(Cause::invalid(field.clone(), value(), "must be empty when `clusterIP` is not specified"))
        }
        (ip, Some(first)) if first != ip => {
            causes.push(Cause::invalid(field.clone(), value(), "first value must match `clusterIP`"))
        }
        _ => {}
    }
    if cluster_ips.first().is_some_and(|ip| ip == "None") && cluster_ips.len() > 1 {
        causes.push(Cause::invalid(field.clone(), value(), "'None' must be the first and only value"));
    }
    if cluster_ips.len() > 2 {
        causes.push(Cause::invalid(field, value(), "may only hold up to 2 values"));
    }
    causes
}

fn validate_port(port: &ServicePort, name_required: bool, names: &mut BTreeSet<String>, path: &Path) -> Vec<Cause> {
    let mut causes = Vec::new();
    match port.name.as_deref().unwrap_or("") {
        "" if name_required => causes.push(Cause::required(path.child("name"), "")),
        "" => {}
        name => {
            causes.extend(each_invalid(&path.child("name"), name, is_dns1123_label(name)));
            if !names.insert(name.to_string()) {
                causes.push(Cause::duplicate(path.child("name"), name));
            }
        }
    }
    for message in is_valid_port_num(port.port.into()) {
        causes.push(Cause::invalid(path.child("port"), port.port, message));
    }
    match port.protocol.as_deref().unwrap_or("") {
        "" => causes.push(Cause::required(path.child("protocol"), "")),
        p if PROTOCOLS.contains(&p) => {}
        p => causes.push(Cause::not_supported(path.child("protocol"), p, PROTOCOLS)),
    }
    let target = port.target_port.clone().unwrap_or(IntOrString::Int(0));
    causes.extend(validate_port_num_or_name(&target, &path.child("targetPort")));
    causes
}

/// The same node port, or the same port, twice for one protocol.
fn duplicate_ports(ports: &[ServicePort], path: &Path) -> Vec<Cause> {
    let mut causes = Vec::new();
    let mut node_ports = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        let Some(node_port) = port.node_port.filter(|p| *p != 0) else { continue };
        if !node_ports.insert((port.protocol.clone(), node_port)) {
            causes.push(Cause::duplicate(path.child("ports").index(i).child("nodePort"), node_port));
        }
    }
    let mut seen = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        let protocol = port.protocol.clone().unwrap_or_default();
        if !seen.insert((protocol.clone(), port.port)) {
            // Kubernetes shows the key it compared: a ServicePort with only protocol and port set.
            let key = Raw(format!(
                "core.ServicePort{{Name:\"\", Protocol:{protocol:?}, AppProtocol:(*string)(nil), Port:{}, TargetPort:{:?}, NodePort:0}}",
                port.port,
                GoIntOrString(&IntOrString::Int(0))
            ));
            causes.push(Cause::duplicate(path.child("ports").index(i), key));
        }
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::Validate;
    use crate::validation::test_support::{decode, lines};
    use serde_json::{Value, json};

    fn service(name: &str, spec: Value) -> Service {
        decode(
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"}, "spec": spec}),
        )
    }

    fn errors(spec: Value) -> Vec<String> {
        lines(&service("web", spec).validate(None))
    }

    #[test]
    fn a_valid_service_has_no_errors() {
        let spec = json!({"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443, "targetPort": "https"}]});
        assert_eq!(errors(spec), Vec::<String>::new());
    }

    #[test]
    fn a_cluster_ip_service_needs_ports_but_a_headless_one_does_not() {
        assert_eq!(errors(json!({"selector": {"app": "web"}})), vec!["spec.ports: Required value"]);
        assert!(errors(json!({"clusterIP": "None", "selector": {"app": "web"}})).is_empty());
    }

    #[test]
    fn service_names_must_start_with_a_letter() {
        let errors = lines(&service("1web", json!({"ports": [{"port": 80}]})).validate(None));
        assert_eq!(
            errors,
            vec![
                "metadata.name: Invalid value: \"1web\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
            ]
        );
    }

    #[test]
    fn several_ports_need_unique_names() {
        let spec = json!({"ports": [{"port": 80}, {"name": "web", "port": 81}, {"name": "web", "port": 82}]});
        assert_eq!(
            errors(spec),
            vec!["spec.ports[0].name: Required value", "spec.ports[2].name: Duplicate value: \"web\""]
        );
    }

    #[test]
    fn ports_types_and_node_ports_are_checked() {
        let spec = json!({"type": "Balanced", "ports": [{"port": 0, "targetPort": 70000}]});
        assert_eq!(
            errors(spec),
            vec![
                "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
                "spec.ports[0].targetPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
                "spec.type: Unsupported value: \"Balanced\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"",
            ]
        );
        // The range is the apiserver's allocator's to check: it is configurable.
        let spec = json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 8080}]});
        assert_eq!(errors(spec), Vec::<String>::new());
        let spec = json!({"ports": [{"port": 80, "nodePort": 30080}]});
        assert_eq!(errors(spec), vec!["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"]);
    }

    #[test]
    fn the_cluster_ip_cannot_change() {
        let old =
            service("web", json!({"clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"], "ports": [{"port": 80}]}));
        let new =
            service("web", json!({"clusterIP": "10.96.0.11", "clusterIPs": ["10.96.0.11"], "ports": [{"port": 80}]}));
        assert_eq!(
            lines(&new.validate(Some(&old))),
            vec!["spec.clusterIPs[0]: Invalid value: [\"10.96.0.11\"]: may not change once set"]
        );
    }

    #[test]
    fn cluster_ip_and_cluster_ips_must_agree() {
        let spec = json!({"clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.11"], "ports": [{"port": 80}]});
        assert_eq!(
            errors(spec),
            vec!["spec.clusterIPs: Invalid value: [\"10.96.0.11\"]: first value must match `clusterIP`"]
        );
        let spec = json!({"clusterIP": "None", "clusterIPs": ["None", "10.96.0.1"], "ports": [{"port": 80}]});
        assert_eq!(
            errors(spec),
            vec!["spec.clusterIPs: Invalid value: [\"None\",\"10.96.0.1\"]: 'None' must be the first and only value"]
        );
    }
}
