//! Subresources that are views of, or verbs on, their parent object.
//!
//! - `scale` (Deployments, ReplicaSets): an `autoscaling/v1` `Scale` object showing only the replica count,
//!   so that `kubectl scale` and autoscalers work the same on every scalable kind;
//! - `binding` (Pods): how the scheduler records its decision. Creating a `Binding` sets the pod's
//!   `spec.nodeName` — which no other write may change once set.

use super::write::{Part, WriteOptions, now};
use super::{Registry, store_error};
use crate::patch::{self, PatchType};
use kubelab_api::{ApiError, Resource, object};
use serde_json::{Value, json};

impl Registry {
    /// `GET .../<plural>/<name>/scale`.
    pub async fn get_scale(&self, resource: &Resource, namespace: &str, name: &str) -> Result<Value, ApiError> {
        let parent = self.get(resource, namespace, name).await?;
        Ok(scale_of(&parent))
    }

    /// `PUT .../<plural>/<name>/scale`: writes `spec.replicas` of the parent.
    pub async fn update_scale(
        &self,
        resource: &Resource,
        namespace: &str,
        name: &str,
        scale: Value,
        options: &WriteOptions,
    ) -> Result<Value, ApiError> {
        let replicas = scale.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(0);
        let (mut parent, _) = self.read(resource, namespace, name).await?;
        let wanted_rv = object::resource_version(&scale);
        if !wanted_rv.is_empty() && wanted_rv != object::resource_version(&parent) {
            return Err(ApiError::conflict(resource.group, resource.plural, name));
        }
        if let Some(spec) = parent.get_mut("spec").and_then(Value::as_object_mut) {
            spec.insert("replicas".into(), json!(replicas));
        }
        let written = self.update(resource, namespace, name, parent, Part::Main, options).await?;
        Ok(scale_of(&written.object))
    }

    /// `PATCH .../<plural>/<name>/scale`: patches the `Scale` view, then writes it back.
    #[allow(clippy::too_many_arguments)]
    pub async fn patch_scale(
        &self,
        resource: &Resource,
        namespace: &str,
        name: &str,
        patch_type: PatchType,
        body: &[u8],
        options: &WriteOptions,
    ) -> Result<Value, ApiError> {
        let current = self.get_scale(resource, namespace, name).await?;
        let mut patched = patch::apply(patch_type, &current, body)?;
        // A patch that does not name a resourceVersion is not a precondition.
        if patched.pointer("/metadata/resourceVersion") == current.pointer("/metadata/resourceVersion") {
            object::metadata_mut(&mut patched).remove("resourceVersion");
        }
        self.update_scale(resource, namespace, name, patched, options).await
    }

    /// `POST .../pods/<name>/binding`: assigns the pod to a node, once.
    pub async fn bind(
        &self,
        resource: &Resource,
        namespace: &str,
        name: &str,
        binding: &Value,
    ) -> Result<Value, ApiError> {
        let node = binding.pointer("/target/name").and_then(Value::as_str).unwrap_or("");
        if node.is_empty() {
            return Err(ApiError::invalid("", "Binding", name, vec![kubelab_api::Cause::required("target.name", "")]));
        }
        let (mut pod, revision) = self.read(resource, namespace, name).await?;
        if pod.pointer("/metadata/deletionTimestamp").is_some() {
            return Err(ApiError::conflict(resource.group, resource.plural, name));
        }
        if let Some(current) = pod.pointer("/spec/nodeName").and_then(Value::as_str).filter(|n| !n.is_empty()) {
            let mut err = ApiError::conflict(resource.group, resource.plural, name);
            err.message = format!(
                "Operation cannot be fulfilled on pods/binding {name:?}: pod {name} is already assigned to node {current:?}"
            );
            return Err(err);
        }
        if let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) {
            spec.insert("nodeName".into(), json!(node));
        }
        set_condition(
            &mut pod,
            json!({"type": "PodScheduled", "status": "True", "lastTransitionTime": now(), "lastProbeTime": null}),
        );
        let key = resource.storage_key(namespace, name);
        self.store
            .update(&key, super::encode_for_store(&pod)?, revision)
            .await
            .map_err(|err| store_error(resource, name, err))?;
        Ok(json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}))
    }
}

/// The `autoscaling/v1` `Scale` view of a Deployment or ReplicaSet.
fn scale_of(parent: &Value) -> Value {
    let meta = parent.get("metadata").cloned().unwrap_or_default();
    let selector = parent
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .map(|labels| {
            labels.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default())).collect::<Vec<_>>().join(",")
        })
        .unwrap_or_default();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
            "creationTimestamp": meta.get("creationTimestamp"),
        },
        "spec": {"replicas": parent.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(0)},
        "status": {
            "replicas": parent.pointer("/status/replicas").and_then(Value::as_i64).unwrap_or(0),
            "selector": selector,
        },
    })
}

/// Sets a status condition by type, replacing one of the same type.
fn set_condition(object: &mut Value, condition: Value) {
    let Some(root) = object.as_object_mut() else { return };
    let status = root.entry("status").or_insert_with(|| json!({}));
    let Some(status) = status.as_object_mut() else { return };
    let conditions = status.entry("conditions").or_insert_with(|| json!([]));
    if let Some(list) = conditions.as_array_mut() {
        list.retain(|c| c.get("type") != condition.get("type"));
        list.push(condition);
    }
}
