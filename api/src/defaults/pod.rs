//! Defaults of a Pod spec and its containers, shared by Pods and the Pod templates of workloads.
//!
//! Mirrors `SetDefaults_PodSpec`, `SetDefaults_Container`, `SetDefaults_Probe`... in
//! `pkg/apis/core/v1/defaults.go`, and the QoS class of `pkg/apis/core/helper/qos`.

use crate::quantity::Amount;
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, HTTPGetAction, PodSecurityContext, PodSpec, Probe, ResourceRequirements, Volume,
};
use std::collections::{BTreeMap, BTreeSet};

/// The file mode Kubernetes gives files projected from ConfigMaps, Secrets and the downward API: `0644`.
const DEFAULT_VOLUME_MODE: i32 = 0o644;

/// Sets `field` when it is absent, or zero: Go cannot tell "unset" from 0 for these numbers, so Kubernetes treats
/// an explicit 0 as unset too, and so do we.
fn default_number<T: Copy + PartialEq + Default>(field: &mut Option<T>, value: T) {
    if field.is_none_or(|v| v == T::default()) {
        *field = Some(value);
    }
}

/// Sets a string field when it is absent or empty (Go's zero value).
fn default_text(field: &mut Option<String>, value: &str) {
    if field.as_deref().is_none_or(str::is_empty) {
        *field = Some(value.to_string());
    }
}

/// Defaults every Pod spec gets, whether in a Pod or in a workload's template (`SetDefaults_PodSpec`).
pub(super) fn pod_spec(spec: &mut PodSpec) {
    default_text(&mut spec.dns_policy, "ClusterFirst");
    default_text(&mut spec.restart_policy, "Always");
    spec.security_context.get_or_insert_with(PodSecurityContext::default);
    spec.termination_grace_period_seconds.get_or_insert(30);
    default_text(&mut spec.scheduler_name, "default-scheduler");
    for container in spec.containers.iter_mut().chain(spec.init_containers.iter_mut().flatten()) {
        self::container(container);
    }
    for volume in spec.volumes.iter_mut().flatten() {
        self::volume(volume);
    }
}

/// Defaults only a Pod gets, not a template (`SetDefaults_Pod`): a template is not a running Pod, so Kubernetes
/// leaves these to the moment the Pod is created from it.
pub(super) fn pod_only(spec: &mut PodSpec) {
    for container in spec.containers.iter_mut().chain(spec.init_containers.iter_mut().flatten()) {
        requests_from_limits(container);
    }
    spec.enable_service_links.get_or_insert(true);
    if spec.host_network == Some(true) {
        // With the node's network, the container port *is* the host port.
        for container in spec.containers.iter_mut().chain(spec.init_containers.iter_mut().flatten()) {
            for port in container.ports.iter_mut().flatten() {
                default_number(&mut port.host_port, port.container_port);
            }
        }
    }
}

/// A container that sets limits but not requests asks for what it may use: requests default to limits,
/// resource by resource. This is what makes `limits` alone give the `Guaranteed` QoS class.
fn requests_from_limits(container: &mut Container) {
    let Some(resources) = container.resources.as_mut() else { return };
    let Some(limits) = resources.limits.as_ref().filter(|l| !l.is_empty()) else { return };
    let requests = resources.requests.get_or_insert_with(BTreeMap::new);
    for (name, quantity) in limits {
        requests.entry(name.clone()).or_insert_with(|| quantity.clone());
    }
}

/// `SetDefaults_Container` and the defaults of what a container holds.
fn container(container: &mut Container) {
    if container.image_pull_policy.as_deref().is_none_or(str::is_empty) {
        let policy =
            if image_tag(container.image.as_deref().unwrap_or("")) == "latest" { "Always" } else { "IfNotPresent" };
        container.image_pull_policy = Some(policy.to_string());
    }
    default_text(&mut container.termination_message_path, "/dev/termination-log");
    default_text(&mut container.termination_message_policy, "File");
    container.resources.get_or_insert_with(ResourceRequirements::default);
    for port in container.ports.iter_mut().flatten() {
        container_port(port);
    }
    for probe in [&mut container.liveness_probe, &mut container.readiness_probe, &mut container.startup_probe]
        .into_iter()
        .flatten()
    {
        self::probe(probe);
    }
    if let Some(lifecycle) = container.lifecycle.as_mut() {
        for handler in [&mut lifecycle.post_start, &mut lifecycle.pre_stop].into_iter().flatten() {
            if let Some(http) = handler.http_get.as_mut() {
                http_get(http);
            }
        }
    }
    for env in container.env.iter_mut().flatten() {
        if let Some(field) = env.value_from.as_mut().and_then(|from| from.field_ref.as_mut()) {
            default_text(&mut field.api_version, "v1");
        }
    }
}

/// The tag Kubernetes reads from an image reference: `nginx` → `latest`, `nginx:1.27` → `1.27`,
/// `registry:5000/app` → `latest`, `nginx@sha256:…` → none. An empty image cannot be parsed and has no tag.
pub(crate) fn image_tag(image: &str) -> &str {
    if image.is_empty() {
        return "";
    }
    let (name, digest) = match image.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (image, None),
    };
    let last_segment_start = name.rfind('/').map_or(0, |i| i + 1);
    match name[last_segment_start..].rfind(':') {
        Some(colon) => &name[last_segment_start + colon + 1..],
        None if digest.is_some() => "",
        None => "latest",
    }
}

fn container_port(port: &mut ContainerPort) {
    default_text(&mut port.protocol, "TCP");
}

/// `SetDefaults_Probe`: how often and how patiently the kubelet probes.
fn probe(probe: &mut Probe) {
    default_number(&mut probe.timeout_seconds, 1);
    default_number(&mut probe.period_seconds, 10);
    default_number(&mut probe.success_threshold, 1);
    default_number(&mut probe.failure_threshold, 3);
    if let Some(http) = probe.http_get.as_mut() {
        http_get(http);
    }
}

fn http_get(http: &mut HTTPGetAction) {
    default_text(&mut http.path, "/");
    default_text(&mut http.scheme, "HTTP");
}

/// Files projected into a volume are readable by all, writable by the owner.
fn volume(volume: &mut Volume) {
    if let Some(source) = volume.config_map.as_mut() {
        source.default_mode.get_or_insert(DEFAULT_VOLUME_MODE);
    }
    if let Some(source) = volume.secret.as_mut() {
        source.default_mode.get_or_insert(DEFAULT_VOLUME_MODE);
    }
    if let Some(source) = volume.downward_api.as_mut() {
        source.default_mode.get_or_insert(DEFAULT_VOLUME_MODE);
    }
    if let Some(source) = volume.projected.as_mut() {
        source.default_mode.get_or_insert(DEFAULT_VOLUME_MODE);
    }
    if let Some(source) = volume.host_path.as_mut() {
        source.type_.get_or_insert_with(String::new);
    }
}

/// The QoS class of a Pod, from the CPU and memory of its containers (`qos.ComputePodQOS`):
///
/// | requests and limits                                         | class        |
/// |-------------------------------------------------------------|--------------|
/// | none at all                                                 | `BestEffort` |
/// | every container limits CPU and memory, and requests = limits | `Guaranteed` |
/// | anything else                                               | `Burstable`  |
///
/// The kubelet uses it to choose which Pods to evict first when a node runs short of memory.
pub fn qos_class(spec: &PodSpec) -> &'static str {
    const COMPUTE: [&str; 2] = ["cpu", "memory"];
    let mut requests: BTreeMap<&str, Amount> = BTreeMap::new();
    let mut limits: BTreeMap<&str, Amount> = BTreeMap::new();
    let mut guaranteed = true;
    let amount = |q: &k8s_openapi::apimachinery::pkg::api::resource::Quantity| Amount::parse(&q.0).unwrap_or_default();
    for container in spec.containers.iter().chain(spec.init_containers.iter().flatten()) {
        let resources = container.resources.clone().unwrap_or_default();
        for (name, quantity) in resources.requests.iter().flatten() {
            let Some(name) = COMPUTE.iter().find(|c| **c == name) else { continue };
            let value = amount(quantity);
            if value > Amount::ZERO {
                let total = requests.entry(name).or_default();
                *total = total.plus(value);
            }
        }
        let mut limited = BTreeSet::new();
        for (name, quantity) in resources.limits.iter().flatten() {
            let Some(name) = COMPUTE.iter().find(|c| **c == name) else { continue };
            let value = amount(quantity);
            if value != Amount::ZERO {
                let total = limits.entry(name).or_default();
                *total = total.plus(value);
                limited.insert(*name);
            }
        }
        if limited.len() != COMPUTE.len() {
            guaranteed = false;
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return "BestEffort";
    }
    if guaranteed
        && requests.iter().all(|(name, request)| limits.get(name) == Some(request))
        && requests.len() == limits.len()
    {
        return "Guaranteed";
    }
    "Burstable"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_tags_are_read_like_the_docker_reference_parser() {
        assert_eq!(image_tag("nginx"), "latest");
        assert_eq!(image_tag("nginx:latest"), "latest");
        assert_eq!(image_tag("nginx:1.27"), "1.27");
        assert_eq!(image_tag("localhost:5000/app"), "latest");
        assert_eq!(image_tag("localhost:5000/app:v2"), "v2");
        assert_eq!(image_tag("nginx@sha256:abcd"), "");
        assert_eq!(image_tag("nginx:1.27@sha256:abcd"), "1.27");
    }
}
