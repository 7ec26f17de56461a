//! Which pods stand behind a Service, and on which ports: the rules both endpoint controllers share.
//!
//! Mirrors `k8s.io/endpointslice/util` (`ShouldPodBeInEndpoints`, `IsPodReady`, `ShouldSetHostname`) and
//! `FindPort` in `k8s.io/endpointslice/utils.go`. Pure functions of a Service and a pod.

use k8s_openapi::api::core::v1::{ObjectReference, Pod, Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

/// The Service's selector, if it selects pods at all. A Service without one (or with an empty one) gets its
/// endpoints from someone else — a user writing Endpoints by hand for a database outside the cluster.
pub fn selector(service: &Service) -> Option<&BTreeMap<String, String>> {
    let spec = service.spec.as_ref()?;
    if spec.type_.as_deref() == Some("ExternalName") {
        // A DNS alias has no endpoints (Kubernetes issue 105986).
        return None;
    }
    spec.selector.as_ref().filter(|selector| !selector.is_empty())
}

/// Whether `labels` carry every `key: value` of a Service's selector (a Service selector is equality only).
pub fn selects(selector: &BTreeMap<String, String>, pod: &Pod) -> bool {
    let labels = pod.metadata.labels.as_ref();
    selector.iter().all(|(key, value)| labels.and_then(|l| l.get(key)) == Some(value))
}

/// Whether the pod's `Ready` condition is `True`: the kubelet's readiness probes decide it.
pub fn is_ready(pod: &Pod) -> bool {
    let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
    conditions.into_iter().flatten().any(|c| c.type_ == "Ready" && c.status == "True")
}

/// Whether the pod is being deleted (it has a `deletionTimestamp` and is in its grace period).
pub fn is_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

/// `ShouldPodBeInEndpoints`: a pod that finished (`Succeeded`, `Failed`) or has no IP yet is never an endpoint;
/// a terminating pod is one only when `include_terminating` (the Endpoints controller passes the Service's
/// `publishNotReadyAddresses`; the EndpointSlice controller always includes it, marked `terminating`).
pub fn should_be_endpoint(pod: &Pod, include_terminating: bool) -> bool {
    let status = pod.status.as_ref();
    let finished = matches!(status.and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed"));
    !finished && pod_ip(pod).is_some() && (include_terminating || !is_terminating(pod))
}

/// The pod's IPv4 address: kubelab's pod network is IPv4 only, so the Service's first IP family always is.
pub fn pod_ip(pod: &Pod) -> Option<&str> {
    let status = pod.status.as_ref()?;
    let listed = status.pod_ips.iter().flatten().map(|ip| ip.ip.as_str());
    listed.chain(status.pod_ip.as_deref()).find(|ip| ip.parse::<std::net::Ipv4Addr>().is_ok())
}

/// How an endpoint points back at its pod (the `uid` tells a pod from a later one of the same name).
pub fn target_ref(pod: &Pod) -> ObjectReference {
    ObjectReference {
        kind: Some("Pod".into()),
        namespace: pod.metadata.namespace.clone(),
        name: pod.metadata.name.clone(),
        uid: pod.metadata.uid.clone(),
        ..ObjectReference::default()
    }
}

/// The node the pod runs on, if it is scheduled.
pub fn node_name(pod: &Pod) -> Option<String> {
    pod.spec.as_ref().and_then(|s| s.node_name.clone()).filter(|n| !n.is_empty())
}

/// `ShouldSetHostname`: a pod with `hostname` whose `subdomain` names this Service gets a DNS name of its own
/// (`web-0.web.default.svc.cluster.local`), the way StatefulSet pods are reached.
pub fn hostname(pod: &Pod, service: &Service) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    let hostname = spec.hostname.as_deref().filter(|h| !h.is_empty())?;
    let same_namespace = pod.metadata.namespace == service.metadata.namespace;
    (spec.subdomain == service.metadata.name && same_namespace).then(|| hostname.to_string())
}

// ANCHOR: find_port
/// `FindPort`: the port on the pod that a Service port leads to. A number is taken as it is; a name is looked up
/// among the pod's container ports (and those of its sidecars), with the same protocol. So one Service can reach
/// pods that serve `http` on different numbers — each pod's own number ends up in its endpoint.
pub fn find_port(pod: &Pod, service_port: &ServicePort) -> Option<i32> {
    let protocol = service_port.protocol.as_deref().unwrap_or("TCP");
    match service_port.target_port.as_ref() {
        Some(IntOrString::Int(number)) => Some(*number),
        None => Some(service_port.port),
        Some(IntOrString::String(name)) => {
            let spec = pod.spec.as_ref()?;
            let sidecars =
                spec.init_containers.iter().flatten().filter(|c| c.restart_policy.as_deref() == Some("Always"));
            spec.containers
                .iter()
                .chain(sidecars)
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| p.name.as_deref() == Some(name) && p.protocol.as_deref().unwrap_or("TCP") == protocol)
                .map(|p| p.container_port)
        }
    }
}
// ANCHOR_END: find_port

/// Whether the Service has no virtual IP (`clusterIP: None`, or none yet): its endpoints are looked up directly.
pub fn is_headless(service: &Service) -> bool {
    let ip = service.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()).unwrap_or("");
    ip.is_empty() || ip == "None"
}

/// The label both endpoint controllers put on what they write for a headless Service.
pub const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";

#[cfg(test)]
pub(crate) mod tests {
    //! Pods and Services as tests write them, shared with the reconcile tests.

    use super::*;
    use serde_json::json;

    /// A pod `name` labelled `app: web` with IP `ip`, on `node-1`, serving `http` on `http_port`; ready or not.
    pub fn pod(name: &str, ip: &str, ready: bool, http_port: i32) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"), "labels": {"app": "web"}},
            "spec": {"nodeName": "node-1", "containers": [{"name": "web", "image": "nginx",
                "ports": [{"name": "http", "containerPort": http_port, "protocol": "TCP"}]}]},
            "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}
        }))
        .unwrap()
    }

    /// The same pod, being deleted.
    pub fn terminating(mut pod: Pod) -> Pod {
        pod.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::from_second(1_700_000_000).unwrap(),
        ));
        pod
    }

    /// Service `web` selecting `app: web`, port 80 to the pods' `http` port.
    pub fn service() -> Service {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default", "uid": "uid-web", "labels": {"tier": "front"}},
            "spec": {"selector": {"app": "web"}, "clusterIP": "10.96.0.20",
                "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]}
        }))
        .unwrap()
    }

    #[test]
    fn a_named_target_port_is_each_pods_own_number_and_a_number_is_taken_as_is() {
        let port = &service().spec.unwrap().ports.unwrap()[0];
        assert_eq!(find_port(&pod("a", "10.1.0.1", true, 8080), port), Some(8080));
        assert_eq!(find_port(&pod("b", "10.1.0.2", true, 9090), port), Some(9090));
        let udp = ServicePort { protocol: Some("UDP".into()), ..port.clone() };
        assert_eq!(find_port(&pod("a", "10.1.0.1", true, 8080), &udp), None, "the protocol must match too");
        let numbered = ServicePort { target_port: Some(IntOrString::Int(7000)), ..port.clone() };
        assert_eq!(find_port(&pod("a", "10.1.0.1", true, 8080), &numbered), Some(7000));
    }

    #[test]
    fn finished_pods_and_pods_without_an_ip_are_never_endpoints() {
        let mut done = pod("a", "10.1.0.1", false, 80);
        done.status.as_mut().unwrap().phase = Some("Succeeded".into());
        assert!(!should_be_endpoint(&done, true));
        let mut pending = pod("b", "10.1.0.2", false, 80);
        pending.status.as_mut().unwrap().pod_ip = None;
        pending.status.as_mut().unwrap().pod_ips = None;
        assert!(!should_be_endpoint(&pending, true));
        let leaving = terminating(pod("c", "10.1.0.3", true, 80));
        assert!(!should_be_endpoint(&leaving, false) && should_be_endpoint(&leaving, true));
    }
}
