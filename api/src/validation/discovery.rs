//! EndpointSlices (`discovery.k8s.io/v1`): the addresses behind a Service, in slices of at most 1000.
//!
//! Mirrors `ValidateEndpointSlice` (`pkg/apis/discovery/validation`). What we leave out: the rule refusing
//! loopback and link-local addresses (`ValidateNonSpecialIP`; kubelab's pods may live on one machine's loopback
//! network, as for Endpoints in [`super::cluster`]), and validation of `hints` and `deprecatedTopology`.

use super::meta::{ObjectScope, validate_object_meta, validate_object_meta_update};
use super::{IMMUTABLE, Path, each_invalid};
use crate::names::{is_dns1123_label, is_dns1123_subdomain, is_qualified_name, name_is_dns_subdomain};
use crate::status::Cause;
use k8s_openapi::api::discovery::v1::{EndpointPort, EndpointSlice};
use std::collections::HashSet;

/// The address types a new slice may have, in Kubernetes' (sorted) order.
const ADDRESS_TYPES: &[&str] = &["FQDN", "IPv4", "IPv6"];
/// Kubernetes' limits: endpoints per slice, addresses per endpoint, ports per slice.
const MAX_ENDPOINTS: usize = 1000;
const MAX_ADDRESSES: usize = 100;
const MAX_PORTS: usize = 20000;

/// An EndpointSlice: metadata, a known address type that never changes, endpoints with addresses of that type,
/// and ports with unique names.
pub(super) fn validate_endpoint_slice(slice: &EndpointSlice, old: Option<&EndpointSlice>) -> Vec<Cause> {
    let mut causes = validate_object_meta(&slice.metadata, ObjectScope::Namespaced, name_is_dns_subdomain);
    if let Some(old) = old {
        causes.extend(validate_object_meta_update(&slice.metadata, &old.metadata));
    }
    let address_type = slice.address_type.as_str();
    match address_type {
        "" => causes.push(Cause::required(Path::new("addressType"), "")),
        known if ADDRESS_TYPES.contains(&known) => {}
        other => causes.push(Cause::not_supported(Path::new("addressType"), other, ADDRESS_TYPES)),
    }
    let path = Path::new("endpoints");
    if slice.endpoints.len() > MAX_ENDPOINTS {
        causes.push(too_many(&path, slice.endpoints.len(), MAX_ENDPOINTS));
    } else {
        for (i, endpoint) in slice.endpoints.iter().enumerate() {
            let item = path.index(i);
            let addresses = item.child("addresses");
            if endpoint.addresses.is_empty() {
                causes.push(Cause::required(&addresses, "must contain at least 1 address"));
            } else if endpoint.addresses.len() > MAX_ADDRESSES {
                causes.push(too_many(&addresses, endpoint.addresses.len(), MAX_ADDRESSES));
            }
            for (j, address) in endpoint.addresses.iter().enumerate() {
                causes.extend(validate_address(address_type, address, &addresses.index(j)));
            }
            if let Some(hostname) = endpoint.hostname.as_deref() {
                causes.extend(each_invalid(&item.child("hostname"), hostname, is_dns1123_label(hostname)));
            }
            if let Some(node) = endpoint.node_name.as_deref() {
                causes.extend(each_invalid(&item.child("nodeName"), node, name_is_dns_subdomain(node, false)));
            }
        }
    }
    causes.extend(validate_ports(slice.ports.as_deref().unwrap_or(&[])));
    if let Some(old) = old
        && old.address_type != slice.address_type
    {
        causes.push(Cause::invalid(Path::new("addressType"), &slice.address_type, IMMUTABLE));
    }
    causes
}

/// An address of the slice's type; addresses of unknown types are not checked (Kubernetes neither).
fn validate_address(address_type: &str, address: &str, path: &Path) -> Vec<Cause> {
    let problem = match address_type {
        "IPv4" => address.parse::<std::net::Ipv4Addr>().is_err().then_some("must be a valid IPv4 address"),
        "IPv6" => address.parse::<std::net::Ipv6Addr>().is_err().then_some("must be a valid IPv6 address"),
        "FQDN" => return each_invalid(path, address, is_dns1123_subdomain(address)),
        _ => None,
    };
    problem.map(|message| Cause::invalid(path, address, message)).into_iter().collect()
}

/// Ports: names are DNS labels (or empty) and unique, protocols known, app protocols qualified names.
fn validate_ports(ports: &[EndpointPort]) -> Vec<Cause> {
    let path = Path::new("ports");
    if ports.len() > MAX_PORTS {
        return vec![too_many(&path, ports.len(), MAX_PORTS)];
    }
    let mut causes = Vec::new();
    let mut names = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let item = path.index(i);
        let name = port.name.as_deref().unwrap_or("");
        if !name.is_empty() {
            causes.extend(each_invalid(&item.child("name"), name, is_dns1123_label(name)));
        }
        if !names.insert(name) {
            causes.push(Cause::duplicate(item.child("name"), name));
        }
        match port.protocol.as_deref() {
            None => causes.push(Cause::required(item.child("protocol"), "")),
            Some("TCP" | "UDP" | "SCTP") => {}
            Some(other) => causes.push(Cause::not_supported(item.child("protocol"), other, &["SCTP", "TCP", "UDP"])),
        }
        if let Some(app) = port.app_protocol.as_deref() {
            causes.extend(each_invalid(&item.child("appProtocol"), app, is_qualified_name(app)));
        }
    }
    causes
}

/// `Too many: <n>: must have at most <max> items`.
fn too_many(path: &Path, actual: usize, max: usize) -> Cause {
    Cause {
        reason: "FieldValueTooMany".into(),
        field: path.into(),
        message: format!("Too many: {actual}: must have at most {max} items"),
    }
}

#[cfg(test)]
mod tests {
    use crate::validation::Validate;
    use crate::validation::test_support::{decode, lines};
    use k8s_openapi::api::discovery::v1::EndpointSlice;
    use serde_json::json;

    fn slice(address_type: &str, endpoints: serde_json::Value, ports: serde_json::Value) -> EndpointSlice {
        decode(json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "web-abcde", "namespace": "default"},
            "addressType": address_type, "endpoints": endpoints, "ports": ports}))
    }

    #[test]
    fn a_slice_written_by_the_controller_is_valid_and_its_ports_get_tcp() {
        let slice = slice(
            "IPv4",
            json!([{"addresses": ["10.1.0.5"], "conditions": {"ready": true}, "nodeName": "node-1"}]),
            json!([{"name": "http", "port": 8080}]),
        );
        assert_eq!(lines(&slice.validate(None)), Vec::<String>::new());
        let port = &slice.ports.as_ref().unwrap()[0];
        assert_eq!(port.protocol.as_deref(), Some("TCP"));
    }

    #[test]
    fn addresses_must_be_of_the_slice_type_and_port_names_unique() {
        let slice = slice(
            "IPv4",
            json!([{"addresses": ["fd00::1"]}, {"addresses": []}]),
            json!([{"name": "http", "port": 80}, {"name": "http", "port": 81, "protocol": "HTTP"}]),
        );
        assert_eq!(
            lines(&slice.validate(None)),
            [
                "endpoints[0].addresses[0]: Invalid value: \"fd00::1\": must be a valid IPv4 address",
                "endpoints[1].addresses: Required value: must contain at least 1 address",
                "ports[1].name: Duplicate value: \"http\"",
                "ports[1].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
            ]
        );
    }

    #[test]
    fn the_address_type_is_required_known_and_immutable() {
        let unknown = slice("IP4", json!([]), json!([]));
        assert_eq!(
            lines(&unknown.validate(None)),
            ["addressType: Unsupported value: \"IP4\": supported values: \"FQDN\", \"IPv4\", \"IPv6\""]
        );
        let (old, new) = (slice("IPv4", json!([]), json!([])), slice("IPv6", json!([]), json!([])));
        assert_eq!(lines(&new.validate(Some(&old))), ["addressType: Invalid value: \"IPv6\": field is immutable"]);
    }
}
