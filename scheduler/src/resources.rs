//! What a pod asks for and what a node offers, as numbers the scheduler can add up.
//!
//! kube-scheduler counts two resources for every pod and node — CPU in *millicores* (`500m` is 500) and memory in
//! *bytes* — plus the number of pods (`framework.Resource` in `pkg/scheduler/framework/types.go`). A pod's request
//! is not simply the sum of its containers' requests, because init containers run *before* the app containers,
//! one at a time, while sidecars (init containers with `restartPolicy: Always`) keep running beside them:
//!
//! ```text
//! request = max( sum(app containers) + sum(sidecars),
//!                the largest init container, plus the sidecars started before it )
//!           + the pod's overhead (from its RuntimeClass)
//! ```
//!
//! That is [`pod_requests`], `resourcehelper.PodRequests` in Kubernetes. Scoring uses a second figure,
//! [`PodUsage::non_zero`]: a container that requests nothing is counted as `100m` CPU and `200Mi` memory, so that
//! "best-effort" pods are spread out instead of all landing on the first node that looks empty.

use crate::SchedulerError;
use k8s_openapi::api::core::v1::{Container, Node, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kubelab_api::quantity::Amount;
use std::collections::BTreeMap;

/// CPU and memory, as kube-scheduler counts them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resources {
    /// Thousandths of a CPU: `0.5` and `500m` are both 500.
    pub milli_cpu: i64,
    /// Bytes: `128Mi` is 134 217 728.
    pub memory: i64,
}

/// What a container that requests nothing counts as when *scoring* (`DefaultMilliCPURequest`).
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// ... and its memory (`DefaultMemoryRequest`, 200 MiB).
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

impl Resources {
    /// Both amounts added (saturating: absurd manifests must not overflow).
    pub fn plus(self, other: Resources) -> Resources {
        Resources {
            milli_cpu: self.milli_cpu.saturating_add(other.milli_cpu),
            memory: self.memory.saturating_add(other.memory),
        }
    }

    /// Both amounts subtracted: how a pod's usage is taken off a node when it leaves.
    pub fn minus(self, other: Resources) -> Resources {
        Resources {
            milli_cpu: self.milli_cpu.saturating_sub(other.milli_cpu),
            memory: self.memory.saturating_sub(other.memory),
        }
    }

    /// The larger of each amount.
    pub fn max(self, other: Resources) -> Resources {
        Resources { milli_cpu: self.milli_cpu.max(other.milli_cpu), memory: self.memory.max(other.memory) }
    }

    /// Reads the `cpu` and `memory` entries of a `requests`, `allocatable` or `overhead` map; other resources
    /// (ephemeral storage, GPUs...) are ignored. `field` names the map in errors.
    pub fn read(map: Option<&BTreeMap<String, Quantity>>, field: &str) -> Result<Resources, SchedulerError> {
        let read = |name: &str, unit: &str| match map.and_then(|m| m.get(name)) {
            None => Ok(0),
            Some(q) => whole_units(&q.0, unit).ok_or_else(|| SchedulerError::InvalidQuantity {
                field: format!("{field}[{name}]"),
                value: q.0.clone(),
            }),
        };
        Ok(Resources { milli_cpu: read("cpu", "m")?, memory: read("memory", "")? })
    }
}

/// What one pod takes from the node it runs on: the accounting unit of the scheduler's cache.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PodUsage {
    /// What the pod requests: the filters compare this with what the node has left.
    pub requests: Resources,
    /// The same with the defaults for containers that request nothing: the scores use this.
    pub non_zero: Resources,
    /// The uid of the pod's controller (its `ownerReference` with `controller: true`), to spread siblings.
    pub owner: Option<String>,
}

impl PodUsage {
    /// Reads a pod's usage from its spec.
    pub fn of(pod: &Pod) -> Result<PodUsage, SchedulerError> {
        let exact =
            |c: &Container, field: &str| Resources::read(c.resources.as_ref().and_then(|r| r.requests.as_ref()), field);
        let with_defaults = |c: &Container, field: &str| {
            let requests = c.resources.as_ref().and_then(|r| r.requests.as_ref());
            let mut found = Resources::read(requests, field)?;
            if !requests.is_some_and(|r| r.contains_key("cpu")) {
                found.milli_cpu = DEFAULT_MILLI_CPU_REQUEST;
            }
            if !requests.is_some_and(|r| r.contains_key("memory")) {
                found.memory = DEFAULT_MEMORY_REQUEST;
            }
            Ok(found)
        };
        let owner =
            pod.metadata.owner_references.iter().flatten().find(|r| r.controller == Some(true)).map(|r| r.uid.clone());
        Ok(PodUsage { requests: pod_requests(pod, exact)?, non_zero: pod_requests(pod, with_defaults)?, owner })
    }
}

// ANCHOR: pod_requests
/// A pod's effective request, given how to read one container's: the formula at the top of this module.
pub fn pod_requests(
    pod: &Pod,
    container_request: impl Fn(&Container, &str) -> Result<Resources, SchedulerError>,
) -> Result<Resources, SchedulerError> {
    let Some(spec) = &pod.spec else { return Ok(Resources::default()) };
    let mut apps = Resources::default();
    for (i, c) in spec.containers.iter().enumerate() {
        apps = apps.plus(container_request(c, &format!("spec.containers[{i}].resources.requests"))?);
    }
    // Init containers run one after the other; sidecars among them keep running once started.
    let mut sidecars = Resources::default();
    let mut init_peak = Resources::default();
    for (i, c) in spec.init_containers.iter().flatten().enumerate() {
        let request = container_request(c, &format!("spec.initContainers[{i}].resources.requests"))?;
        if c.restart_policy.as_deref() == Some("Always") {
            sidecars = sidecars.plus(request);
            init_peak = init_peak.max(sidecars);
        } else {
            init_peak = init_peak.max(sidecars.plus(request));
        }
    }
    let overhead = Resources::read(spec.overhead.as_ref(), "spec.overhead")?;
    Ok(apps.plus(sidecars).max(init_peak).plus(overhead))
}
// ANCHOR_END: pod_requests

/// What a node offers pods: its `allocatable` CPU and memory and how many pods it takes.
///
/// When `allocatable` is missing we use `capacity`, as the Kubernetes apiserver's defaulting of a Node's status
/// does. A quantity that cannot be read counts as zero: such a node offers nothing, and pods say
/// `Insufficient cpu` rather than land on it.
pub fn node_allocatable(node: &Node) -> (Resources, i64) {
    let status = node.status.as_ref();
    let map = status.and_then(|s| s.allocatable.as_ref().or(s.capacity.as_ref()));
    let read_one = |name: &str, unit: &str| map.and_then(|m| m.get(name)).and_then(|q| whole_units(&q.0, unit));
    let resources =
        Resources { milli_cpu: read_one("cpu", "m").unwrap_or(0), memory: read_one("memory", "").unwrap_or(0) };
    (resources, read_one("pods", "").unwrap_or(0))
}

/// A quantity as a whole number of `unit` (`"m"`: thousandths, `""`: units), rounded up like Kubernetes'
/// `MilliValue()` and `Value()`; `None` when the text is not a quantity. Negative amounts count as zero.
///
/// `kubelab_api::quantity::Amount` parses and compares quantities but does not (yet) hand out its number, so
/// we find the number by comparing: the smallest `n` such that `"{n}{unit}"` is at least the amount, by doubling
/// then halving — about 70 comparisons for the largest memory sizes, done once per pod and per node. When
/// `Amount` gains a `milli_value()`/`value()` accessor this function becomes one line.
pub fn whole_units(text: &str, unit: &str) -> Option<i64> {
    let amount = Amount::parse(text).ok()?;
    if amount <= Amount::ZERO {
        return Some(0);
    }
    // `"{n}{unit}"` always parses; were it not to, treating it as "big enough" still ends the search.
    let at_least = |n: i64| Amount::parse(&format!("{n}{unit}")).map_or(true, |a| a >= amount);
    let mut high: i64 = 1;
    while !at_least(high) {
        if high > i64::MAX / 2 {
            return Some(i64::MAX);
        }
        high *= 2;
    }
    // Invariant: `low` is too small (0 is, since the amount is positive), `high` is enough.
    let mut low = high / 2;
    while high - low > 1 {
        let middle = low + (high - low) / 2;
        if at_least(middle) {
            high = middle;
        } else {
            low = middle;
        }
    }
    Some(high)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": spec})).unwrap()
    }

    fn container(name: &str, requests: serde_json::Value) -> serde_json::Value {
        json!({"name": name, "image": "busybox", "resources": {"requests": requests}})
    }

    #[test]
    fn quantities_become_millicores_and_bytes_rounded_up() {
        assert_eq!(whole_units("500m", "m"), Some(500));
        assert_eq!(whole_units("0.5", "m"), Some(500));
        assert_eq!(whole_units("2", "m"), Some(2000));
        assert_eq!(whole_units("1n", "m"), Some(1));
        assert_eq!(whole_units("128Mi", ""), Some(134_217_728));
        assert_eq!(whole_units("1.5Gi", ""), Some(1_610_612_736));
        assert_eq!(whole_units("1E", ""), Some(1_000_000_000_000_000_000));
        assert_eq!(whole_units("110", ""), Some(110));
        assert_eq!(whole_units("0", "m"), Some(0));
        assert_eq!(whole_units("-1", ""), Some(0));
        assert_eq!(whole_units("9e30", ""), Some(i64::MAX));
        assert_eq!(whole_units("lots", ""), None);
    }

    #[test]
    fn a_pod_requests_the_sum_of_its_containers() {
        let p = pod(json!({"containers": [
            container("a", json!({"cpu": "250m", "memory": "64Mi"})),
            container("b", json!({"cpu": "0.5"})),
        ]}));
        let usage = PodUsage::of(&p).unwrap();
        assert_eq!(usage.requests, Resources { milli_cpu: 750, memory: 64 * 1024 * 1024 });
        // For scores, b's missing memory request counts as 200Mi.
        assert_eq!(usage.non_zero, Resources { milli_cpu: 750, memory: 264 * 1024 * 1024 });
    }

    #[test]
    fn a_big_init_container_sets_the_request_when_it_exceeds_the_app_containers() {
        let p = pod(json!({
            "initContainers": [container("migrate", json!({"cpu": "2"}))],
            "containers": [container("app", json!({"cpu": "500m", "memory": "1Gi"}))],
        }));
        assert_eq!(PodUsage::of(&p).unwrap().requests, Resources { milli_cpu: 2000, memory: 1 << 30 });
    }

    #[test]
    fn sidecars_add_to_the_app_containers_and_overhead_is_added_last() {
        let mut sidecar = container("proxy", json!({"cpu": "100m"}));
        sidecar["restartPolicy"] = json!("Always");
        let p = pod(json!({
            "initContainers": [sidecar, container("setup", json!({"cpu": "1"}))],
            "containers": [container("app", json!({"cpu": "300m"}))],
            "overhead": {"cpu": "10m"},
        }));
        // max(300 + 100, 100 + 1000) + 10
        assert_eq!(PodUsage::of(&p).unwrap().requests.milli_cpu, 1110);
    }

    #[test]
    fn a_request_that_is_not_a_quantity_is_an_error_naming_the_field() {
        let p = pod(json!({"containers": [container("a", json!({"cpu": "fast"}))]}));
        let err = PodUsage::of(&p).unwrap_err();
        assert_eq!(
            err.to_string(),
            "spec.containers[0].resources.requests[cpu]: invalid quantity \"fast\": quantities must match the \
             regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
        );
    }

    #[test]
    fn the_owner_is_the_controller_reference() {
        let p: Pod = serde_json::from_value(json!({"metadata": {"name": "p", "ownerReferences": [
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "not-me"},
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "rs-1", "controller": true},
        ]}}))
        .unwrap();
        assert_eq!(PodUsage::of(&p).unwrap().owner.as_deref(), Some("rs-1"));
    }

    #[test]
    fn a_node_without_allocatable_offers_its_capacity() {
        let node: Node = serde_json::from_value(json!({"metadata": {"name": "n"},
            "status": {"capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"}}}))
        .unwrap();
        assert_eq!(node_allocatable(&node), (Resources { milli_cpu: 4000, memory: 8 << 30 }, 110));
    }
}
