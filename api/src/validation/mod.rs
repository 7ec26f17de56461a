//! Validation: what makes an object acceptable, with every error's field path.
//!
//! When `kubectl apply` is refused, the student reads a line such as
//!
//! ```text
//! The Deployment "web" is invalid: spec.template.metadata.labels: Invalid value: map[string]string{"app":"api"}: `selector` does not match template `labels`
//! ```
//!
//! and later meets the very same line on a real cluster. So each rule here is a Kubernetes rule, reported with
//! Kubernetes' field path and sentence through the [`Cause`] constructors, in the order Kubernetes checks them.
//! Validation runs after [defaulting](crate::defaults), as in Kubernetes: a Pod without `restartPolicy` never
//! reaches it, but a Pod with `restartPolicy: Sometimes` does.
//!
//! Mirrors `pkg/apis/core/validation`, `pkg/apis/apps/validation`, `pkg/apis/coordination/validation` and
//! `k8s.io/apimachinery/pkg/api/validation` (Kubernetes 1.33), one file per area:
//!
//! - [`meta`]: names, namespaces, labels, annotations, finalizers, owner references; what never changes on update;
//! - [`pod`]: Pod specs (also inside templates): volumes, policies, tolerations, what a Pod update may change;
//! - [`container`]: containers: names, images, ports, environment, mounts, resources;
//! - [`probe`]: probes and lifecycle hooks;
//! - [`apps`]: Deployments and ReplicaSets: selectors, templates, rollout strategy;
//! - [`service`]: Services: ports, types, node ports;
//! - [`config`]: ConfigMaps: keys, size, immutability;
//! - [`cluster`]: Namespaces, Nodes, Events, Endpoints, Leases;
//! - [`discovery`]: EndpointSlices: address types, addresses, ports;
//! - [`gofmt`]: composite values printed the way Go's `%#v` prints them in messages.
//!
//! The apiserver is expected to do what Kubernetes does before it validates: fill `metadata.namespace` from the
//! URL, generate the name from `generateName`, and on updates keep the stored status (main resource) or the
//! stored spec (`/status`), so that only the user's change is judged.
//!
//! What we leave out: security contexts, affinity, topology spread, DNS config, resource claims, ephemeral
//! containers beyond "not on create", the annotations that carry pod policy, and the exact `cmp.Diff` text
//! Kubernetes appends to a refused Pod update (we list the changed fields instead). Kubernetes 1.34 started
//! printing invalid values as JSON; we print them as 1.33 does.

mod apps;
mod cluster;
mod config;
mod container;
mod discovery;
mod gofmt;
mod meta;
mod pod;
mod probe;
mod service;

pub use gofmt::{GoIntOrString, GoMap, GoSelector};
pub use meta::{ObjectScope, validate_labels, validate_object_meta, validate_object_meta_update};
pub use pod::{validate_pod_spec, validate_pod_template};

use crate::status::Cause;
use k8s_openapi::api::{
    apps::v1::{Deployment, ReplicaSet},
    coordination::v1::Lease,
    core::v1::{ConfigMap, Endpoints, Event, Namespace, Node, Pod, Service},
    discovery::v1::EndpointSlice,
};
use std::fmt;

// ANCHOR: validate
/// Checks an object; `old` is the stored version on updates.
pub trait Validate: Sized {
    /// Every problem found, each with its field path; empty when the object is valid.
    fn validate(&self, _old: Option<&Self>) -> Vec<Cause> {
        Vec::new()
    }
}
// ANCHOR_END: validate

impl Validate for Pod {
    fn validate(&self, old: Option<&Self>) -> Vec<Cause> {
        pod::validate_pod(self, old)
    }
}

impl Validate for Deployment {
    fn validate(&self, old: Option<&Self>) -> Vec<Cause> {
        apps::validate_deployment(self, old)
    }
}

impl Validate for ReplicaSet {
    fn validate(&self, old: Option<&Self>) -> Vec<Cause> {
        apps::validate_replica_set(self, old)
    }
}

impl Validate for Service {
    fn validate(&self, old: Option<&Self>) -> Vec<Cause> {
        service::validate_service(self, old)
    }
}

impl Validate for ConfigMap {
    fn validate(&self, old: Option<&Self>) -> Vec<Cause> {
        config::validate_config_map(self, old)
    }
}

impl Validate for Namespace {
    fn validate(&self, old: Option<&Self>) -> Vec<Cause> {
        cluster::validate_namespace(self, old)
    }
}

impl Validate for Node {
    fn validate(&self, old: Option<&Self>) -> Vec<Cause> {
        cluster::validate_node(self, old)
    }
}

impl Validate for Event {
    fn validate(&self, old: Option<&Self>) -> Vec<Cause> {
        cluster::validate_event(self, old)
    }
}

impl Validate for Endpoints {
    fn validate(&self, old: Option<&Self>) -> Vec<Cause> {
        cluster::validate_endpoints(self, old)
    }
}

impl Validate for EndpointSlice {
    fn validate(&self, old: Option<&Self>) -> Vec<Cause> {
        discovery::validate_endpoint_slice(self, old)
    }
}

impl Validate for Lease {
    fn validate(&self, old: Option<&Self>) -> Vec<Cause> {
        cluster::validate_lease(self, old)
    }
}

/// A field path being built, like Kubernetes' `field.Path`: `spec`, `.child("containers")`, `.index(0)`,
/// `.key("cpu")` gives `spec.containers[0][cpu]`... Cheap to clone, printed as the cause's `field`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path(String);

impl Path {
    /// A path starting at a top-level field (`metadata`, `spec`), or the empty path for the whole object.
    pub fn new(root: &str) -> Path {
        Path(root.to_string())
    }

    /// `parent.name`
    pub fn child(&self, name: &str) -> Path {
        if self.0.is_empty() { Path(name.to_string()) } else { Path(format!("{}.{name}", self.0)) }
    }

    /// `parent[3]`
    pub fn index(&self, index: usize) -> Path {
        Path(format!("{}[{index}]", self.0))
    }

    /// `parent[key]`, for map entries such as `resources.limits[cpu]`.
    pub fn key(&self, key: &str) -> Path {
        Path(format!("{}[{key}]", self.0))
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<Path> for String {
    fn from(path: Path) -> String {
        path.0
    }
}

impl From<&Path> for String {
    fn from(path: &Path) -> String {
        path.0.clone()
    }
}

/// Kubernetes' `isNegativeErrorMsg`.
pub(crate) const NEGATIVE: &str = "must be greater than or equal to 0";
/// Kubernetes' `FieldImmutableErrorMsg`.
pub(crate) const IMMUTABLE: &str = "field is immutable";

/// `ValidateNonnegativeField`: `spec.replicas: Invalid value: -1: must be greater than or equal to 0`.
pub(crate) fn non_negative(value: i64, path: Path) -> Option<Cause> {
    (value < 0).then(|| Cause::invalid(path, value, NEGATIVE))
}

/// One `Invalid value` cause per message of a format check (`names::is_*`).
pub(crate) fn each_invalid(path: &Path, value: &str, messages: Vec<String>) -> Vec<Cause> {
    messages.into_iter().map(|message| Cause::invalid(path, value, message)).collect()
}

/// `Not found: "x"`, for a reference to something that does not exist (a volume mount's volume).
pub(crate) fn not_found(path: Path, value: &str) -> Cause {
    Cause { reason: "FieldValueNotFound".into(), field: path.into(), message: format!("Not found: {value:?}") }
}

/// `Too long: must have at most <n> bytes`.
pub(crate) fn too_long(path: Path, max_bytes: usize) -> Cause {
    Cause {
        reason: "FieldValueTooLong".into(),
        field: path.into(),
        message: format!("Too long: must have at most {max_bytes} bytes"),
    }
}

/// `Unsupported value: <value>` where the value is not a plain string (Kubernetes prints it with `%#v`).
pub(crate) fn not_supported_value(path: Path, value: impl fmt::Debug, supported: &[&str]) -> Cause {
    let list: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
    Cause {
        reason: "FieldValueNotSupported".into(),
        field: path.into(),
        message: format!("Unsupported value: {value:?}: supported values: {}", list.join(", ")),
    }
}

/// `Required value` when empty, `Unsupported value` when not one of `supported` (in Kubernetes' order).
pub(crate) fn enum_value(value: Option<&str>, supported: &[&str], path: Path) -> Option<Cause> {
    match value.unwrap_or("") {
        "" => Some(Cause::required(path, "")),
        v if supported.contains(&v) => None,
        v => Some(Cause::not_supported(path, v, supported)),
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Helpers shared by the tests of every validation file.

    use crate::defaults::Defaults;
    use crate::status::Cause;
    use serde::de::DeserializeOwned;
    use serde_json::Value;

    /// Reads a manifest and applies defaults, as the apiserver does before validating.
    pub fn decode<K: DeserializeOwned + Defaults>(manifest: Value) -> K {
        let mut object: K = serde_json::from_value(manifest).expect("test manifest must decode");
        object.apply_defaults();
        object
    }

    /// The causes of a Pod with this spec, created in `default`, as `field: message` lines.
    pub fn pod_errors(spec: Value) -> Vec<String> {
        let manifest = serde_json::json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "namespace": "default"}, "spec": spec});
        let pod: k8s_openapi::api::core::v1::Pod = decode(manifest);
        lines(&crate::validation::Validate::validate(&pod, None))
    }

    /// The causes as `field: message` lines, easy to compare with what kubectl prints.
    pub fn lines(causes: &[Cause]) -> Vec<String> {
        causes.iter().map(Cause::to_string).collect()
    }
}
