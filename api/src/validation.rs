//! Validation: what makes an object acceptable, with every error's field path.
//!
//! Mirrors `pkg/apis/*/validation/validation.go` in Kubernetes, trimmed to the rules a student meets.

use crate::status::Cause;
use k8s_openapi::api::{
    apps::v1::{Deployment, ReplicaSet},
    coordination::v1::Lease,
    core::v1::{ConfigMap, Endpoints, Event, Namespace, Node, Pod, Service},
};

/// Checks an object; `old` is the stored version on updates.
pub trait Validate: Sized {
    /// Every problem found, each with its field path; empty when the object is valid.
    fn validate(&self, _old: Option<&Self>) -> Vec<Cause> {
        Vec::new()
    }
}

impl Validate for Namespace {}
impl Validate for Pod {}
impl Validate for Node {}
impl Validate for Service {}
impl Validate for Endpoints {}
impl Validate for Event {}
impl Validate for ConfigMap {}
impl Validate for ReplicaSet {}
impl Validate for Deployment {}
impl Validate for Lease {}
