//! Containers: what every container of a Pod spec is checked for.
//!
//! Mirrors `validateContainers`, `validateInitContainers`, `validateContainerCommon` and the port, environment,
//! mount and resource checks of `pkg/apis/core/validation/validation.go`.

use super::probe::{ProbeKind, validate_lifecycle, validate_probe};
use super::{NEGATIVE, Path, each_invalid, enum_value, not_found};
use crate::names::{is_dns1123_label, is_qualified_name, is_valid_port_name, is_valid_port_num};
use crate::quantity::{Amount, QUANTITY_FORMAT_ERROR};
use crate::status::Cause;
use k8s_openapi::api::core::v1::{Container, ContainerPort, EnvVar, ResourceRequirements, VolumeMount};
use std::collections::{BTreeMap, BTreeSet};

const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
const PULL_POLICIES: &[&str] = &["Always", "IfNotPresent", "Never"];
const TERMINATION_MESSAGE_POLICIES: &[&str] = &["File", "FallbackToLogsOnError"];

/// Regular containers: at least one, unique names, probes and lifecycle allowed, no `restartPolicy`.
pub(super) fn validate_containers(
    containers: &[Container],
    volumes: &BTreeSet<String>,
    grace: Option<i64>,
    path: &Path,
) -> Vec<Cause> {
    if containers.is_empty() {
        return vec![Cause::required(path, "")];
    }
    let mut causes = Vec::new();
    let mut names = BTreeSet::new();
    for (i, container) in containers.iter().enumerate() {
        let item = path.index(i);
        causes.extend(validate_container_common(container, volumes, &item));
        if !names.insert(container.name.clone()) {
            causes.push(Cause::duplicate(item.child("name"), &container.name));
        }
        if let Some(lifecycle) = &container.lifecycle {
            causes.extend(validate_lifecycle(lifecycle, grace, &item.child("lifecycle")));
        }
        causes.extend(validate_probe(
            container.liveness_probe.as_ref(),
            ProbeKind::Liveness,
            &item.child("livenessProbe"),
        ));
        causes.extend(validate_probe(
            container.readiness_probe.as_ref(),
            ProbeKind::Readiness,
            &item.child("readinessProbe"),
        ));
        causes.extend(validate_probe(
            container.startup_probe.as_ref(),
            ProbeKind::Startup,
            &item.child("startupProbe"),
        ));
        if container.restart_policy.is_some() {
            causes.push(Cause::forbidden(item.child("restartPolicy"), "may not be set for non-init containers"));
        }
    }
    causes.extend(host_port_conflicts(containers, path));
    causes
}

/// Init containers run one after the other before the regular ones; only those with `restartPolicy: Always`
/// (sidecars) keep running and so may have probes and lifecycle hooks.
pub(super) fn validate_init_containers(
    containers: &[Container],
    regular: &[Container],
    volumes: &BTreeSet<String>,
    grace: Option<i64>,
    path: &Path,
) -> Vec<Cause> {
    let mut causes = Vec::new();
    let mut names: BTreeSet<String> = regular.iter().map(|c| c.name.clone()).collect();
    for (i, container) in containers.iter().enumerate() {
        let item = path.index(i);
        causes.extend(validate_container_common(container, volumes, &item));
        let sidecar = container.restart_policy.as_deref() == Some("Always");
        if let Some(policy) = container.restart_policy.as_deref().filter(|p| *p != "Always") {
            causes.push(Cause::not_supported(item.child("restartPolicy"), policy, &["Always"]));
        }
        if names.contains(&container.name) {
            causes.push(Cause::duplicate(item.child("name"), &container.name));
        } else if !container.name.is_empty() {
            names.insert(container.name.clone());
        }
        causes.extend(host_port_conflicts(std::slice::from_ref(container), path));
        if sidecar {
            if let Some(lifecycle) = &container.lifecycle {
                causes.extend(validate_lifecycle(lifecycle, grace, &item.child("lifecycle")));
            }
            causes.extend(validate_probe(
                container.liveness_probe.as_ref(),
                ProbeKind::Liveness,
                &item.child("livenessProbe"),
            ));
            causes.extend(validate_probe(
                container.readiness_probe.as_ref(),
                ProbeKind::Readiness,
                &item.child("readinessProbe"),
            ));
            causes.extend(validate_probe(
                container.startup_probe.as_ref(),
                ProbeKind::Startup,
                &item.child("startupProbe"),
            ));
        } else {
            let detail = "may not be set for init containers without restartPolicy=Always";
            for (field, set) in [
                ("lifecycle", container.lifecycle.is_some()),
                ("livenessProbe", container.liveness_probe.is_some()),
                ("readinessProbe", container.readiness_probe.is_some()),
                ("startupProbe", container.startup_probe.is_some()),
            ] {
                if set {
                    causes.push(Cause::forbidden(item.child(field), detail));
                }
            }
        }
    }
    causes
}

/// What every container is checked for: name, image, termination message policy, ports, env, mounts, pull
/// policy, resources.
fn validate_container_common(container: &Container, volumes: &BTreeSet<String>, path: &Path) -> Vec<Cause> {
    let mut causes = Vec::new();
    if container.name.is_empty() {
        causes.push(Cause::required(path.child("name"), ""));
    } else {
        causes.extend(each_invalid(&path.child("name"), &container.name, is_dns1123_label(&container.name)));
    }
    if container.image.as_deref().unwrap_or("").is_empty() {
        causes.push(Cause::required(path.child("image"), ""));
    }
    causes.extend(enum_value(
        container.termination_message_policy.as_deref(),
        TERMINATION_MESSAGE_POLICIES,
        path.child("terminationMessagePolicy"),
    ));
    causes.extend(validate_container_ports(container.ports.as_deref().unwrap_or(&[]), &path.child("ports")));
    causes.extend(validate_env(container.env.as_deref().unwrap_or(&[]), &path.child("env")));
    causes.extend(validate_volume_mounts(
        container.volume_mounts.as_deref().unwrap_or(&[]),
        volumes,
        &path.child("volumeMounts"),
    ));
    causes.extend(enum_value(container.image_pull_policy.as_deref(), PULL_POLICIES, path.child("imagePullPolicy")));
    let resources = container.resources.clone().unwrap_or_default();
    causes.extend(validate_resources(&resources, &path.child("resources")));
    causes
}

fn validate_container_ports(ports: &[ContainerPort], path: &Path) -> Vec<Cause> {
    let mut causes = Vec::new();
    let mut names = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        let item = path.index(i);
        if let Some(name) = port.name.as_deref().filter(|n| !n.is_empty()) {
            let problems = is_valid_port_name(name);
            if !problems.is_empty() {
                causes.extend(each_invalid(&item.child("name"), name, problems));
            } else if !names.insert(name.to_string()) {
                causes.push(Cause::duplicate(item.child("name"), name));
            }
        }
        if port.container_port == 0 {
            causes.push(Cause::required(item.child("containerPort"), ""));
        } else {
            for message in is_valid_port_num(port.container_port.into()) {
                causes.push(Cause::invalid(item.child("containerPort"), port.container_port, message));
            }
        }
        if let Some(host_port) = port.host_port.filter(|p| *p != 0) {
            for message in is_valid_port_num(host_port.into()) {
                causes.push(Cause::invalid(item.child("hostPort"), host_port, message));
            }
        }
        causes.extend(enum_value(port.protocol.as_deref(), PROTOCOLS, item.child("protocol")));
    }
    causes
}

/// Two containers cannot listen on the same host port.
fn host_port_conflicts(containers: &[Container], path: &Path) -> Vec<Cause> {
    let mut causes = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, container) in containers.iter().enumerate() {
        for (j, port) in container.ports.iter().flatten().enumerate() {
            let Some(host_port) = port.host_port.filter(|p| *p != 0) else { continue };
            let key = format!(
                "{}/{}/{host_port}",
                port.protocol.as_deref().unwrap_or(""),
                port.host_ip.as_deref().unwrap_or("")
            );
            if !seen.insert(key.clone()) {
                causes.push(Cause::duplicate(path.index(i).child("ports").index(j).child("hostPort"), key));
            }
        }
    }
    causes
}

fn validate_env(env: &[EnvVar], path: &Path) -> Vec<Cause> {
    let mut causes = Vec::new();
    for (i, var) in env.iter().enumerate() {
        let item = path.index(i);
        if var.name.is_empty() {
            causes.push(Cause::required(item.child("name"), ""));
        } else if var.name.chars().any(|c| !c.is_ascii() || c.is_ascii_control() || c == '=') {
            let detail =
                "a valid environment variable name must consist only of printable ASCII characters other than '='";
            causes.push(Cause::invalid(item.child("name"), &var.name, detail));
        }
        if let Some(from) = &var.value_from {
            let sources = [
                from.field_ref.is_some(),
                from.resource_field_ref.is_some(),
                from.config_map_key_ref.is_some(),
                from.secret_key_ref.is_some(),
            ]
            .into_iter()
            .filter(|set| *set)
            .count();
            let value_from = item.child("valueFrom");
            if sources == 0 {
                let detail = "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`";
                causes.push(Cause::invalid(&value_from, "", detail));
            } else if var.value.as_deref().is_some_and(|v| !v.is_empty()) {
                causes.push(Cause::invalid(&value_from, "", "may not be specified when `value` is not empty"));
            } else if sources > 1 {
                causes.push(Cause::invalid(&value_from, "", "may not have more than one field specified at a time"));
            }
        }
    }
    causes
}

fn validate_volume_mounts(mounts: &[VolumeMount], volumes: &BTreeSet<String>, path: &Path) -> Vec<Cause> {
    let mut causes = Vec::new();
    let mut mount_paths = BTreeSet::new();
    for (i, mount) in mounts.iter().enumerate() {
        let item = path.index(i);
        if mount.name.is_empty() {
            causes.push(Cause::required(item.child("name"), ""));
        }
        if !volumes.contains(&mount.name) {
            causes.push(not_found(item.child("name"), &mount.name));
        }
        if mount.mount_path.is_empty() {
            causes.push(Cause::required(item.child("mountPath"), ""));
        }
        if !mount_paths.insert(mount.mount_path.clone()) {
            causes.push(Cause::invalid(item.child("mountPath"), &mount.mount_path, "must be unique"));
        }
    }
    causes
}

/// Resources a container may request without a domain: `cpu`, `memory`, `ephemeral-storage`, `hugepages-*`.
fn is_standard_container_resource(name: &str) -> bool {
    matches!(name, "cpu" | "memory" | "ephemeral-storage") || name.starts_with("hugepages-")
}

/// Extended resources (`example.com/gpu`) and huge pages cannot be overcommitted: their requests must equal
/// their limits.
fn overcommit_allowed(name: &str) -> bool {
    let native = !name.contains('/')
        || name.starts_with("kubernetes.io/")
        || name.split('/').next().is_some_and(|d| d.ends_with(".kubernetes.io"));
    native && !name.starts_with("hugepages-")
}

/// Requests and limits: known names, readable non-negative quantities, and requests not above limits.
fn validate_resources(resources: &ResourceRequirements, path: &Path) -> Vec<Cause> {
    let mut causes = Vec::new();
    let (limits_path, requests_path) = (path.child("limits"), path.child("requests"));
    let empty = BTreeMap::new();
    let limits = resources.limits.as_ref().unwrap_or(&empty);
    let mut limit_amounts = BTreeMap::new();
    for (name, quantity) in limits {
        let field = limits_path.key(name);
        causes.extend(validate_resource_name(name, &field));
        if let Some(amount) = validate_quantity(name, &quantity.0, &field, &mut causes) {
            limit_amounts.insert(name.as_str(), amount);
        }
    }
    for (name, quantity) in resources.requests.iter().flatten() {
        let field = requests_path.key(name);
        causes.extend(validate_resource_name(name, &field));
        let Some(request) = validate_quantity(name, &quantity.0, &field, &mut causes) else { continue };
        match (limits.get(name), limit_amounts.get(name.as_str())) {
            (Some(limit), Some(limit_amount)) => {
                if !overcommit_allowed(name) && request != *limit_amount {
                    let detail = format!("must be equal to {name} limit of {}", limit.0);
                    causes.push(Cause::invalid(&requests_path, &quantity.0, detail));
                } else if request > *limit_amount {
                    let detail = format!("must be less than or equal to {name} limit of {}", limit.0);
                    causes.push(Cause::invalid(&requests_path, &quantity.0, detail));
                }
            }
            (None, _) if !overcommit_allowed(name) => {
                causes.push(Cause::required(&limits_path, "Limit must be set for non overcommitable resources"));
            }
            _ => {}
        }
    }
    causes
}

fn validate_resource_name(name: &str, path: &Path) -> Vec<Cause> {
    let mut causes = each_invalid(path, name, is_qualified_name(name));
    if causes.is_empty() && !name.contains('/') && !is_standard_container_resource(name) {
        causes.push(Cause::invalid(path, name, "must be a standard resource for containers"));
    }
    causes
}

/// Parses a quantity, reporting why it cannot be used; `None` when it cannot.
fn validate_quantity(name: &str, text: &str, path: &Path, causes: &mut Vec<Cause>) -> Option<Amount> {
    let Ok(amount) = Amount::parse(text) else {
        causes.push(Cause::invalid(path, text, QUANTITY_FORMAT_ERROR));
        return None;
    };
    if amount.is_negative() {
        causes.push(Cause::invalid(path, text, NEGATIVE));
        return None;
    }
    if !overcommit_allowed(name) && !name.starts_with("hugepages-") && !amount.is_whole() {
        causes.push(Cause::invalid(path, text, "must be an integer"));
    }
    Some(amount)
}

#[cfg(test)]
mod tests {
    use crate::validation::test_support::pod_errors as errors;
    use serde_json::json;

    #[test]
    fn container_names_are_required_valid_and_unique() {
        let spec = json!({"containers": [{"image": "nginx"}, {"name": "Web", "image": "nginx"},
            {"name": "db", "image": "postgres"}], "initContainers": [{"name": "db", "image": "busybox"}]});
        let errors = errors(spec);
        assert_eq!(errors[0], "spec.containers[0].name: Required value");
        assert!(errors[1].starts_with("spec.containers[1].name: Invalid value: \"Web\": a lowercase RFC 1123 label"));
        assert_eq!(errors[2], "spec.initContainers[0].name: Duplicate value: \"db\"");
        assert_eq!(errors.len(), 3);
        let twice = json!({"containers": [{"name": "web", "image": "a"}, {"name": "web", "image": "b"}]});
        assert_eq!(self::errors(twice), vec!["spec.containers[1].name: Duplicate value: \"web\""]);
    }

    #[test]
    fn an_image_is_required() {
        assert_eq!(errors(json!({"containers": [{"name": "web"}]})), vec!["spec.containers[0].image: Required value"]);
    }

    #[test]
    fn ports_must_be_in_range_with_a_known_protocol() {
        let spec = json!({"containers": [{"name": "web", "image": "nginx",
            "ports": [{"containerPort": 70000}, {"containerPort": 80, "protocol": "HTTP"}, {"containerPort": 81, "hostPort": -1}]}]});
        assert_eq!(
            errors(spec),
            vec![
                "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
                "spec.containers[0].ports[1].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
                "spec.containers[0].ports[2].hostPort: Invalid value: -1: must be between 1 and 65535, inclusive",
            ]
        );
    }

    #[test]
    fn requests_may_not_exceed_limits() {
        let spec = json!({"containers": [{"name": "web", "image": "nginx",
            "resources": {"requests": {"cpu": "2", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1024Mi"}}}]});
        assert_eq!(
            errors(spec),
            vec![
                "spec.containers[0].resources.requests: Invalid value: \"2\": must be less than or equal to cpu limit of 1"
            ]
        );
    }

    #[test]
    fn quantities_must_parse_and_names_must_be_known() {
        let spec = json!({"containers": [{"name": "web", "image": "nginx",
            "resources": {"limits": {"cpu": "lots"}, "requests": {"cpu": "1", "gpu": "1", "memory": "-1Mi"}}}]});
        assert_eq!(
            errors(spec),
            vec![
                "spec.containers[0].resources.limits[cpu]: Invalid value: \"lots\": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
                "spec.containers[0].resources.requests[gpu]: Invalid value: \"gpu\": must be a standard resource for containers",
                "spec.containers[0].resources.requests[memory]: Invalid value: \"-1Mi\": must be greater than or equal to 0",
            ]
        );
    }

    #[test]
    fn init_containers_may_not_probe_unless_they_are_sidecars() {
        let spec = json!({"containers": [{"name": "web", "image": "nginx"}],
            "initContainers": [{"name": "init", "image": "busybox", "readinessProbe": {"exec": {"command": ["true"]}}},
                               {"name": "proxy", "image": "envoy", "restartPolicy": "Always", "readinessProbe": {"exec": {"command": ["true"]}}}]});
        assert_eq!(
            errors(spec),
            vec![
                "spec.initContainers[0].readinessProbe: Forbidden: may not be set for init containers without restartPolicy=Always"
            ]
        );
    }
}
