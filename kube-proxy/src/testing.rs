//! Services and EndpointSlices for the unit tests, written as their YAML would be (in JSON).

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::{Value, json};

/// A Service `namespace/name` with `spec` (cluster IP, ports, type...).
pub fn service(namespace: &str, name: &str, spec: Value) -> Service {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"namespace": namespace, "name": name},
        "spec": spec,
    }))
    .expect("a valid Service")
}

/// An IPv4 EndpointSlice `<service>-<suffix>` of Service `namespace/service`, with `ports` and `endpoints`.
pub fn slice(namespace: &str, service: &str, suffix: &str, ports: Value, endpoints: Value) -> EndpointSlice {
    serde_json::from_value(json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {
            "namespace": namespace, "name": format!("{service}-{suffix}"),
            "labels": {"kubernetes.io/service-name": service},
        },
        "addressType": "IPv4",
        "ports": ports,
        "endpoints": endpoints,
    }))
    .expect("a valid EndpointSlice")
}

/// An endpoint at `ip`, with conditions `(ready, serving, terminating)`.
pub fn endpoint(ip: &str, (ready, serving, terminating): (bool, bool, bool)) -> Value {
    json!({"addresses": [ip], "conditions": {"ready": ready, "serving": serving, "terminating": terminating}})
}

/// A ready endpoint at `ip`.
pub fn ready(ip: &str) -> Value {
    endpoint(ip, (true, true, false))
}
