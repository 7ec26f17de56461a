//! Namespaces, Nodes, Events, Endpoints and Leases: their metadata, and the few rules each has.
//!
//! Mirrors `ValidateNamespace`, `ValidateNode`, `ValidateEventCreate` (core/v1 legacy rules),
//! `ValidateEndpoints` and `ValidateLease` (`pkg/apis/coordination/validation`).

use super::meta::{
    ObjectScope, validate_finalizer_name, validate_label_name, validate_object_meta, validate_object_meta_update,
};
use super::pod::validate_taint_effect;
use super::{Path, each_invalid, non_negative};
use crate::names::{
    is_dns1123_label, is_dns1123_subdomain, is_label_value, is_valid_ip, is_valid_path_segment_name, is_valid_port_num,
    name_is_dns_label, name_is_dns_subdomain,
};
use crate::status::Cause;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, Endpoints, Event, Namespace, Node};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// Creation checks, plus update checks when there is a stored object.
fn metadata(
    new: &ObjectMeta,
    old: Option<&ObjectMeta>,
    scope: ObjectScope,
    rule: crate::names::NameRule,
) -> Vec<Cause> {
    let mut causes = validate_object_meta(new, scope, rule);
    if let Some(old) = old {
        causes.extend(validate_object_meta_update(new, old));
    }
    causes
}

/// A Namespace's name is a DNS label (it becomes part of Service DNS names), and its spec finalizers follow
/// the finalizer rules.
pub(super) fn validate_namespace(namespace: &Namespace, old: Option<&Namespace>) -> Vec<Cause> {
    let mut causes = metadata(&namespace.metadata, old.map(|o| &o.metadata), ObjectScope::Cluster, name_is_dns_label);
    let path = Path::new("spec").child("finalizers");
    for (i, finalizer) in namespace.spec.iter().flat_map(|s| s.finalizers.iter().flatten()).enumerate() {
        causes.extend(validate_finalizer_name(finalizer, &path, &path.index(i)));
    }
    causes
}

/// A Node: metadata, and well-formed taints.
pub(super) fn validate_node(node: &Node, old: Option<&Node>) -> Vec<Cause> {
    let mut causes = metadata(&node.metadata, old.map(|o| &o.metadata), ObjectScope::Cluster, name_is_dns_subdomain);
    let path = Path::new("spec").child("taints");
    for (i, taint) in node.spec.iter().flat_map(|s| s.taints.iter().flatten()).enumerate() {
        let item = path.index(i);
        causes.extend(validate_label_name(&taint.key, &item.child("key")));
        let value = taint.value.as_deref().unwrap_or("");
        let problems = is_label_value(value);
        if !problems.is_empty() {
            causes.push(Cause::invalid(item.child("value"), value, problems.join(";")));
        }
        if taint.effect.is_empty() {
            causes.push(Cause::required(item.child("effect"), ""));
        } else {
            causes.extend(validate_taint_effect(&taint.effect, &item.child("effect")));
        }
    }
    causes
}

/// Events are named freely (`web-1.17a3b...`), so only the name rules of every URL apply; an event must live
/// in the namespace of the object it is about.
pub(super) fn validate_event(event: &Event, old: Option<&Event>) -> Vec<Cause> {
    let meta_path = Path::new("metadata");
    let mut causes = Vec::new();
    let namespace = event.metadata.namespace.as_deref().unwrap_or("");
    let involved_namespace = event.involved_object.namespace.as_deref().unwrap_or("");
    let field = Path::new("involvedObject").child("namespace");
    if event.event_time.is_none() {
        // An event about a cluster-scoped object (a Node) goes to `default`.
        let matches = if involved_namespace.is_empty() {
            namespace.is_empty() || namespace == "default"
        } else {
            namespace == involved_namespace
        };
        if !matches {
            causes.push(Cause::invalid(&field, involved_namespace, "does not match event.namespace"));
        }
    } else {
        // Events of the newer style must say who reported them and what was done.
        if involved_namespace.is_empty() && namespace != "default" && namespace != "kube-system" {
            causes.push(Cause::invalid(&field, involved_namespace, "does not match event.namespace"));
        }
        let reporting = event.reporting_component.as_deref().unwrap_or("");
        if reporting.is_empty() {
            causes.push(Cause::required(Path::new("reportingComponent"), ""));
        }
        causes.extend(each_invalid(
            &Path::new("reportingComponent"),
            reporting,
            crate::names::is_qualified_name(reporting),
        ));
        for (name, value) in
            [("reportingInstance", &event.reporting_instance), ("action", &event.action), ("reason", &event.reason)]
        {
            if value.as_deref().unwrap_or("").is_empty() {
                causes.push(Cause::required(Path::new(name), ""));
            }
        }
    }
    causes.extend(each_invalid(&Path::new("namespace"), namespace, is_dns1123_subdomain(namespace)));
    // The checks every object gets from the generic registry.
    match event.metadata.name.as_deref().unwrap_or("") {
        "" if event.metadata.generate_name.is_none() => {
            causes.push(Cause::required(meta_path.child("name"), "name or generateName is required"));
        }
        name => causes.extend(each_invalid(&meta_path.child("name"), name, is_valid_path_segment_name(name))),
    }
    if let Some(old) = old {
        causes.extend(validate_object_meta_update(&event.metadata, &old.metadata));
    }
    causes
}

/// Endpoints: the addresses and ports behind a Service, written by the endpoints controller.
pub(super) fn validate_endpoints(endpoints: &Endpoints, old: Option<&Endpoints>) -> Vec<Cause> {
    let mut causes =
        metadata(&endpoints.metadata, old.map(|o| &o.metadata), ObjectScope::Namespaced, name_is_dns_subdomain);
    for (i, subset) in endpoints.subsets.iter().flatten().enumerate() {
        let item = Path::new("subsets").index(i);
        let addresses = subset.addresses.as_deref().unwrap_or(&[]);
        let not_ready = subset.not_ready_addresses.as_deref().unwrap_or(&[]);
        if addresses.is_empty() && not_ready.is_empty() {
            causes.push(Cause::required(&item, "must specify `addresses` or `notReadyAddresses`"));
        }
        for (j, address) in addresses.iter().enumerate() {
            causes.extend(validate_address(address, &item.child("addresses").index(j)));
        }
        for (j, address) in not_ready.iter().enumerate() {
            causes.extend(validate_address(address, &item.child("notReadyAddresses").index(j)));
        }
        let ports = subset.ports.as_deref().unwrap_or(&[]);
        for (j, port) in ports.iter().enumerate() {
            causes.extend(validate_endpoint_port(port, ports.len() > 1, &item.child("ports").index(j)));
        }
    }
    causes
}

/// An address is an IP. Kubernetes also refuses loopback and link-local addresses; kubelab's Pods may live on
/// the loopback network of one machine, so we accept them.
fn validate_address(address: &EndpointAddress, path: &Path) -> Vec<Cause> {
    let mut causes = each_invalid(&path.child("ip"), &address.ip, is_valid_ip(&address.ip));
    if let Some(hostname) = address.hostname.as_deref().filter(|h| !h.is_empty()) {
        causes.extend(each_invalid(&path.child("hostname"), hostname, is_dns1123_label(hostname)));
    }
    if let Some(node) = address.node_name.as_deref() {
        causes.extend(each_invalid(&path.child("nodeName"), node, name_is_dns_subdomain(node, false)));
    }
    causes
}

fn validate_endpoint_port(port: &EndpointPort, name_required: bool, path: &Path) -> Vec<Cause> {
    let mut causes = Vec::new();
    match port.name.as_deref().unwrap_or("") {
        "" if name_required => causes.push(Cause::required(path.child("name"), "")),
        "" => {}
        name => causes.extend(each_invalid(&path.child("name"), name, is_dns1123_label(name))),
    }
    for message in is_valid_port_num(port.port.into()) {
        causes.push(Cause::invalid(path.child("port"), port.port, message));
    }
    match port.protocol.as_deref().unwrap_or("") {
        "" => causes.push(Cause::required(path.child("protocol"), "")),
        "TCP" | "UDP" | "SCTP" => {}
        other => causes.push(Cause::not_supported(path.child("protocol"), other, &["SCTP", "TCP", "UDP"])),
    }
    causes
}

/// A Lease: leader election and node heartbeats. Its duration must be positive.
pub(super) fn validate_lease(lease: &Lease, old: Option<&Lease>) -> Vec<Cause> {
    let mut causes =
        metadata(&lease.metadata, old.map(|o| &o.metadata), ObjectScope::Namespaced, name_is_dns_subdomain);
    let path = Path::new("spec");
    if let Some(spec) = &lease.spec {
        if let Some(duration) = spec.lease_duration_seconds.filter(|d| *d <= 0) {
            causes.push(Cause::invalid(path.child("leaseDurationSeconds"), duration, "must be greater than 0"));
        }
        if let Some(transitions) = spec.lease_transitions {
            causes.extend(non_negative(transitions.into(), path.child("leaseTransitions")));
        }
    }
    causes
}

#[cfg(test)]
mod tests {
    use crate::validation::Validate;
    use crate::validation::test_support::{decode, lines};
    use k8s_openapi::api::coordination::v1::Lease;
    use k8s_openapi::api::core::v1::{Endpoints, Event, Namespace, Node};
    use serde_json::json;

    #[test]
    fn namespace_names_are_dns_labels() {
        let ns: Namespace = decode(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team.a"}}));
        assert_eq!(lines(&ns.validate(None)), vec!["metadata.name: Invalid value: \"team.a\": must not contain dots"]);
        let ns: Namespace = decode(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "dev"}}));
        assert!(ns.validate(None).is_empty());
    }

    #[test]
    fn node_taints_need_a_known_effect() {
        let node: Node = decode(json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1"},
            "spec": {"taints": [{"key": "gpu", "effect": "Sometimes"}, {"key": "x", "effect": ""}]}}));
        assert_eq!(
            lines(&node.validate(None)),
            vec![
                "spec.taints[0].effect: Unsupported value: \"Sometimes\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"",
                "spec.taints[1].effect: Required value",
            ]
        );
    }

    #[test]
    fn an_event_lives_in_the_namespace_of_its_object() {
        let event: Event = decode(json!({"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": "web-1.17a3b", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "web-1", "namespace": "prod"}}));
        assert_eq!(
            lines(&event.validate(None)),
            vec!["involvedObject.namespace: Invalid value: \"prod\": does not match event.namespace"]
        );
        let node_event: Event = decode(json!({"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": "node-1.17a3b", "namespace": "default"}, "involvedObject": {"kind": "Node", "name": "node-1"}}));
        assert!(node_event.validate(None).is_empty());
    }

    #[test]
    fn endpoints_need_addresses_with_valid_ips() {
        let ep: Endpoints = decode(
            json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "web", "namespace": "default"},
            "subsets": [{"addresses": [{"ip": "10.0.0.300"}], "ports": [{"port": 80}]}, {"ports": [{"port": 81}]}]}),
        );
        assert_eq!(
            lines(&ep.validate(None)),
            vec![
                "subsets[0].addresses[0].ip: Invalid value: \"10.0.0.300\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                "subsets[1]: Required value: must specify `addresses` or `notReadyAddresses`",
            ]
        );
    }

    #[test]
    fn a_lease_lasts_a_positive_time() {
        let lease: Lease = decode(json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "node-1", "namespace": "kube-node-lease"}, "spec": {"leaseDurationSeconds": 0}}));
        assert_eq!(
            lines(&lease.validate(None)),
            vec!["spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"]
        );
    }
}
