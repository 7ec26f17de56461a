//! From a container of the pod spec to what the runtime runs: Kubernetes' fields in Docker's terms.
//!
//! | pod spec                          | runtime ([`ContainerConfig`])                                  |
//! |-----------------------------------|----------------------------------------------------------------|
//! | `command`                         | replaces the image's `ENTRYPOINT` (and then its `CMD` is dropped) |
//! | `args`                            | replaces the image's `CMD`                                     |
//! | `env` (`value`, `fieldRef`)       | `KEY=value`, with `$(VAR)` references expanded                 |
//! | `resources.limits.cpu`            | `NanoCpus` (`500m` → 500 000 000)                              |
//! | `resources.limits.memory`         | `Memory` in bytes (`128Mi` → 134 217 728)                      |
//! | `workingDir`                      | `WorkingDir`                                                   |
//! | `volumeMounts` of `emptyDir`      | a bind mount of `<data dir>/pods/<uid>/volumes/kubernetes.io~empty-dir/<name>` |
//! | `volumeMounts` of `hostPath`      | a bind mount of the host path                                  |
//! | `tty`, `stdin`                    | `Tty`, `OpenStdin`                                             |
//!
//! `ports` are informational in Kubernetes too: every port of the pod IP is reachable, listed or not.
//!
//! What we leave out: init containers, the host's namespaces, `securityContext`, `envFrom`, startup probes,
//! lifecycle hooks, `configMapKeyRef`/`secretKeyRef` and `resourceFieldRef` values, configMap, secret, projected
//! and persistent volumes. A pod using one is reported `CreateContainerConfigError` with a message naming what is missing (and a
//! Warning event `Failed`), rather than run half-configured: [`unsupported_fields`] lists the fields the API
//! accepts but the kubelet cannot honour, and [`container_config`] refuses a container that has any.

use crate::error::KubeletError;
use crate::labels::{self, PodRef};
use crate::runtime::{ContainerConfig, Mount};
use k8s_openapi::api::core::v1::{Container, EnvVar, Pod, PodSecurityContext, SecurityContext};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Component, Path, PathBuf};

/// What a container's configuration depends on besides the pod: where it runs.
#[derive(Debug, Clone)]
pub struct Placement<'a> {
    /// The node's name (`spec.nodeName`, and the `kubelab.node` label).
    pub node: &'a str,
    /// The sandbox the container joins.
    pub sandbox_id: &'a str,
    /// The pod IP, for `fieldRef: status.podIP`.
    pub pod_ip: Option<IpAddr>,
    /// The node's IP, for `fieldRef: status.hostIP`.
    pub host_ip: Option<IpAddr>,
    /// `<data dir>/pods/<uid>`: where the pod's emptyDir volumes live.
    pub pod_dir: &'a Path,
}

/// The runtime configuration of `container`, attempt `attempt`.
pub fn container_config(
    pod: &Pod,
    container: &Container,
    attempt: u32,
    place: &Placement<'_>,
) -> Result<ContainerConfig, KubeletError> {
    let unsupported = unsupported_fields(pod, container);
    if !unsupported.is_empty() {
        return Err(KubeletError::ContainerConfig(unsupported_message(&container.name, &unsupported)));
    }
    let pod_ref = pod_ref(pod);
    let env = environment(pod, container, place)?;
    let lookup = |name: &str| env.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let expand_all = |list: &Option<Vec<String>>| list.as_ref().map(|l| l.iter().map(|a| expand(a, &lookup)).collect());
    let limits = container.resources.as_ref().and_then(|r| r.limits.clone()).unwrap_or_default();
    let limit = |name: &str| -> Result<Option<f64>, KubeletError> {
        limits.get(name).map(|q| quantity(&q.0).ok_or_else(|| bad_quantity(container, name, &q.0))).transpose()
    };
    // Kubernetes' semantics on top of Docker's: with a `command`, the image's CMD is not used even without `args`.
    let (entrypoint, cmd) = match (&container.command, &container.args) {
        (Some(_), args) => (expand_all(&container.command), Some(expand_all(args).unwrap_or_default())),
        (None, Some(_)) => (None, expand_all(&container.args)),
        (None, None) => (None, None),
    };
    Ok(ContainerConfig {
        name: labels::runtime_name(&pod_ref, &container.name, attempt),
        labels: labels::container_labels(&pod_ref, place.node, &container.name, attempt, place.sandbox_id),
        image: container.image.clone().unwrap_or_default(),
        entrypoint,
        cmd,
        env,
        working_dir: container.working_dir.clone().filter(|d| !d.is_empty()),
        mounts: mounts(pod, container, place.pod_dir)?,
        nano_cpus: limit("cpu")?.map(|cores| (cores * 1e9).round() as i64),
        memory_bytes: limit("memory")?.map(|bytes| bytes.ceil() as i64),
        tty: container.tty.unwrap_or(false),
        stdin: container.stdin.unwrap_or(false),
        share_process_namespace: pod.spec.as_ref().and_then(|s| s.share_process_namespace).unwrap_or(false),
    })
}

// ANCHOR: unsupported
/// The fields of the pod spec that the API accepts (they are valid Kubernetes) but this kubelet cannot honour
/// for `container`, by path. Starting the container without them would pretend the pod runs as written:
///
/// - `spec.initContainers`: Kubernetes runs them to completion, one by one, before any other container;
/// - `spec.hostNetwork`, `hostPID`, `hostIPC`: the node's own namespaces, where ours are always the sandbox's;
/// - `securityContext` (the pod's or the container's): users, groups, capabilities, privilege — without it the
///   process would run as the image says, usually as root;
/// - `envFrom`: every key of a ConfigMap or Secret as variables (we have neither volume nor lookup);
/// - `startupProbe`: holds back the liveness and readiness probes until the application has started; without
///   it a slow starter would be killed by its liveness probe, or reported ready too early;
/// - `lifecycle`: the `postStart` and `preStop` hooks, run after the start and before the stop.
pub fn unsupported_fields(pod: &Pod, container: &Container) -> Vec<String> {
    let Some(spec) = pod.spec.as_ref() else { return Vec::new() };
    let index = spec.containers.iter().position(|c| c.name == container.name).unwrap_or(0);
    let of_container = |field: &str| format!("spec.containers[{index}].{field}");
    let pod_security = spec.security_context.as_ref().is_some_and(|c| *c != PodSecurityContext::default());
    let security = container.security_context.as_ref().is_some_and(|c| *c != SecurityContext::default());
    [
        (spec.init_containers.as_ref().is_some_and(|init| !init.is_empty()), "spec.initContainers".to_string()),
        (spec.host_network == Some(true), "spec.hostNetwork".into()),
        (spec.host_pid == Some(true), "spec.hostPID".into()),
        (spec.host_ipc == Some(true), "spec.hostIPC".into()),
        (pod_security, "spec.securityContext".into()),
        (container.env_from.as_ref().is_some_and(|from| !from.is_empty()), of_container("envFrom")),
        (container.startup_probe.is_some(), of_container("startupProbe")),
        (container.lifecycle.is_some(), of_container("lifecycle")),
        (security, of_container("securityContext")),
    ]
    .into_iter()
    .filter_map(|(used, path)| used.then_some(path))
    .collect()
}

/// What the container's waiting state and the `Failed` event say about unsupported `fields`.
pub fn unsupported_message(container: &str, fields: &[String]) -> String {
    let (verb, pronoun) = if fields.len() == 1 { ("is", "it") } else { ("are", "them") };
    format!(
        "container {container:?}: {} {verb} not supported by kubelab; the container is not started rather than \
         run without {pronoun}",
        fields.join(", ")
    )
}
// ANCHOR_END: unsupported

/// The pod's identity, as labels name it.
pub fn pod_ref(pod: &Pod) -> PodRef {
    PodRef {
        uid: pod.metadata.uid.clone().unwrap_or_default(),
        name: pod.metadata.name.clone().unwrap_or_default(),
        namespace: pod.metadata.namespace.clone().unwrap_or_else(|| "default".into()),
    }
}

/// The container's environment, in order; each value may refer to the variables defined before it.
fn environment(pod: &Pod, container: &Container, place: &Placement<'_>) -> Result<Vec<(String, String)>, KubeletError> {
    let mut env: Vec<(String, String)> = Vec::new();
    for var in container.env.iter().flatten() {
        let value = match (&var.value, &var.value_from) {
            (_, Some(_)) => field_value(pod, container, var, place)?,
            (Some(value), None) => {
                let lookup = |name: &str| env.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.clone());
                expand(value, &lookup)
            }
            (None, None) => String::new(),
        };
        env.push((var.name.clone(), value));
    }
    Ok(env)
}

/// A `valueFrom`: the downward API's `fieldRef`.
fn field_value(pod: &Pod, container: &Container, var: &EnvVar, place: &Placement<'_>) -> Result<String, KubeletError> {
    let unsupported = |what: &str| {
        KubeletError::ContainerConfig(format!(
            "container {:?}: env {:?}: {what} is not supported by kubelab",
            container.name, var.name
        ))
    };
    let Some(field) = var.value_from.as_ref().and_then(|from| from.field_ref.as_ref()) else {
        return Err(unsupported("valueFrom other than fieldRef"));
    };
    let meta = &pod.metadata;
    let path = field.field_path.as_str();
    let ip = |ip: Option<IpAddr>| ip.map(|ip| ip.to_string()).unwrap_or_default();
    let from_map = |map: &Option<BTreeMap<String, String>>, prefix: &str| {
        let key = path.strip_prefix(prefix)?.strip_suffix("']")?;
        Some(map.as_ref().and_then(|m| m.get(key)).cloned().unwrap_or_default())
    };
    let value = match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "spec.nodeName" => place.node.to_string(),
        "spec.serviceAccountName" => pod.spec.as_ref().and_then(|s| s.service_account_name.clone()).unwrap_or_default(),
        "status.podIP" | "status.podIPs" => ip(place.pod_ip),
        "status.hostIP" | "status.hostIPs" => ip(place.host_ip),
        _ => from_map(&meta.labels, "metadata.labels['")
            .or_else(|| from_map(&meta.annotations, "metadata.annotations['"))
            .ok_or_else(|| unsupported(&format!("fieldRef {path}")))?,
    };
    Ok(value)
}

/// Kubernetes' `$(VAR)` expansion: a defined variable is replaced, an undefined one is left as written, and `$$`
/// escapes a dollar (`$$(VAR)` gives `$(VAR)`).
pub fn expand(input: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some((name, tail)) = after.strip_prefix('(').and_then(|a| a.split_once(')')) {
            match lookup(name) {
                Some(value) => out.push_str(&value),
                None => out.push_str(&format!("$({name})")),
            }
            rest = tail;
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Where the emptyDir volume `name` of the pod lives on the node (the real kubelet's layout).
pub fn empty_dir_path(pod_dir: &Path, name: &str) -> PathBuf {
    pod_dir.join("volumes").join("kubernetes.io~empty-dir").join(name)
}

/// The bind mounts of the container's `volumeMounts`.
fn mounts(pod: &Pod, container: &Container, pod_dir: &Path) -> Result<Vec<Mount>, KubeletError> {
    let volumes = pod.spec.as_ref().and_then(|s| s.volumes.clone()).unwrap_or_default();
    let mut mounts = Vec::new();
    for mount in container.volume_mounts.iter().flatten() {
        let error = |what: String| {
            KubeletError::ContainerConfig(format!(
                "container {:?}: volume mount {:?}: {what}",
                container.name, mount.name
            ))
        };
        let volume = volumes.iter().find(|v| v.name == mount.name).ok_or_else(|| error("no such volume".into()))?;
        let mut host = if volume.empty_dir.is_some() {
            empty_dir_path(pod_dir, &volume.name)
        } else if let Some(host_path) = &volume.host_path {
            PathBuf::from(&host_path.path)
        } else {
            return Err(error("only emptyDir and hostPath volumes are supported by kubelab".into()));
        };
        if let Some(sub) = mount.sub_path.as_deref().filter(|s| !s.is_empty()) {
            if !Path::new(sub).components().all(|c| matches!(c, Component::Normal(_))) {
                return Err(error(format!("subPath {sub:?} must be a relative path without `..`")));
            }
            host = host.join(sub);
        }
        mounts.push(Mount {
            host_path: host.display().to_string(),
            container_path: mount.mount_path.clone(),
            read_only: mount.read_only.unwrap_or(false),
        });
    }
    Ok(mounts)
}

/// A quantity in units (`500m` → 0.5, `128Mi` → 134217728), or `None` if Kubernetes would not accept it.
///
/// `kubelab_api::quantity::Amount` checks the grammar but does not hand out its value; f64 is precise enough for
/// limits (CPUs to the nano-core, memory to the byte below 8 PiB).
fn quantity(text: &str) -> Option<f64> {
    let amount = kubelab_api::quantity::Amount::parse(text).ok()?;
    if amount.is_negative() {
        return None;
    }
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+')).unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let scale = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        exponent => 10f64.powi(exponent[1..].parse().ok()?),
    };
    Some(number * scale)
}

fn bad_quantity(container: &Container, resource: &str, text: &str) -> KubeletError {
    KubeletError::ContainerConfig(format!(
        "container {:?}: limits.{resource}: cannot read quantity {text:?}",
        container.name
    ))
}

#[cfg(test)]
#[path = "container_config_tests.rs"]
mod tests;
