//! What the scheduler writes to the apiserver: bindings, the `PodScheduled` condition, and events.
//!
//! A decision becomes real through the pod's **`binding` subresource**: `POST
//! /api/v1/namespaces/<ns>/pods/<name>/binding` with a `Binding` naming the node. The scheduler does not update
//! the pod itself: the binding is a narrow permission (RBAC can grant "may bind pods" without "may edit pods"),
//! and the apiserver checks that the pod is not bound already, so two schedulers can never both win. The
//! apiserver then sets `spec.nodeName` and the condition `PodScheduled=True`.

use crate::SchedulerError;
use chrono::{SecondsFormat, Utc};
use k8s_openapi::api::core::v1::Pod;
use kubelab_api::client::{Client, ClientError, PatchType};
use kubelab_api::events::{EventType, Recorder};
use kubelab_api::kinds::Typed;
use kubelab_api::resources::{self, Resource};
use serde_json::{Value, json};

/// The `binding` subresource, as a resource the client can `create` in.
///
/// The shared client has no call for subresources other than `status` yet. Kubernetes names and namespaces never
/// contain `/`, so creating in this "resource" with the namespace `<ns>/pods/<name>` posts to exactly
/// `/api/v1/namespaces/<ns>/pods/<name>/binding`. Its `rules` are never used by the client (they belong to the
/// apiserver); Pod's stand in. When the client gains `create_subresource`, this goes away.
static BINDING: Resource = Resource {
    group: "",
    version: "v1",
    kind: "Binding",
    plural: "binding",
    singular: "binding",
    namespaced: true,
    short_names: &[],
    categories: &[],
    subresources: &[],
    storage_prefix: "",
    rules: &Typed::<Pod>::NEW,
};

/// The apiserver, as the scheduler uses it.
#[derive(Clone)]
pub struct SchedulerApi {
    client: Client,
    recorder: Recorder,
    pods: &'static Resource,
}

/// How a binding attempt ended.
#[derive(Debug)]
pub enum BindError {
    /// The pod is gone, already bound (by another scheduler, or by us before a restart), or being deleted:
    /// nothing to retry.
    Moot(ClientError),
    /// Anything else (the apiserver unreachable, overloaded): retry after a back-off.
    Failed(ClientError),
}

impl SchedulerApi {
    /// Uses `client`; events are signed with `scheduler_name`, as kube-scheduler signs them `default-scheduler`.
    pub fn new(client: Client, scheduler_name: &str) -> Result<SchedulerApi, SchedulerError> {
        let pods = resources::by_kind("v1", "Pod").ok_or(SchedulerError::NotServed("v1 Pod"))?;
        Ok(SchedulerApi { recorder: Recorder::new(client.clone(), scheduler_name), client, pods })
    }

    // ANCHOR: bind
    /// Binds the pod to the node through the `binding` subresource.
    pub async fn bind(&self, pod: &Pod, node: &str) -> Result<(), BindError> {
        let (namespace, name) = namespace_and_name(pod);
        let binding = json!({
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name, "namespace": namespace, "uid": pod.metadata.uid},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        });
        let path = format!("{namespace}/pods/{name}");
        match self.client.create(&BINDING, Some(&path), &binding).await {
            Ok(_) => Ok(()),
            Err(ClientError::Api(err)) if err.code == 404 || err.code == 409 => {
                Err(BindError::Moot(ClientError::Api(err)))
            }
            Err(err) => Err(BindError::Failed(err)),
        }
    }
    // ANCHOR_END: bind

    /// Sets `PodScheduled=False` with the reason and message, unless the pod already says exactly that: a pod
    /// retried every ten seconds should not be rewritten every ten seconds.
    pub async fn set_unschedulable(&self, pod: &Pod, reason: &str, message: &str) -> Result<(), ClientError> {
        let now = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
        let Some(condition) = unschedulable_condition(pod, reason, message, &now) else { return Ok(()) };
        let (namespace, name) = namespace_and_name(pod);
        let patch = json!({"status": {"conditions": [condition]}});
        self.client.patch_status(self.pods, Some(namespace), name, PatchType::StrategicMerge, &patch).await?;
        Ok(())
    }

    /// Records an event about the pod (failures are logged by the recorder, never returned).
    pub async fn record(&self, pod: &Pod, kind: EventType, reason: &str, message: String) {
        let (namespace, name) = namespace_and_name(pod);
        let about = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "uid": pod.metadata.uid,
                "resourceVersion": pod.metadata.resource_version,
            },
        });
        self.recorder.record(&about, kind, reason, message).await;
    }
}

/// The pod's namespace and name (`""` when missing, which the apiserver then refuses with a clear error).
pub fn namespace_and_name(pod: &Pod) -> (&str, &str) {
    (pod.metadata.namespace.as_deref().unwrap_or(""), pod.metadata.name.as_deref().unwrap_or(""))
}

// ANCHOR: condition
/// The `PodScheduled=False` condition to write, or `None` when the pod already carries it with this reason and
/// message. `lastTransitionTime` moves only when the status changes, as Kubernetes' condition helpers do.
pub fn unschedulable_condition(pod: &Pod, reason: &str, message: &str, now: &str) -> Option<Value> {
    let current = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|conditions| conditions.iter().find(|c| c.type_ == "PodScheduled"));
    if let Some(c) = current
        && c.status == "False"
        && c.reason.as_deref() == Some(reason)
        && c.message.as_deref() == Some(message)
    {
        return None;
    }
    let transition = match current {
        Some(c) if c.status == "False" => c.last_transition_time.as_ref().map(|t| json!(t)).unwrap_or(json!(now)),
        _ => json!(now),
    };
    Some(json!({
        "type": "PodScheduled",
        "status": "False",
        "reason": reason,
        "message": message,
        "lastProbeTime": null,
        "lastTransitionTime": transition,
    }))
}
// ANCHOR_END: condition

#[cfg(test)]
mod tests {
    use super::*;

    fn pod_with(conditions: Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p", "namespace": "default"},
            "status": {"conditions": conditions}}))
        .unwrap()
    }

    const T1: &str = "2025-01-01T00:00:00Z";
    const T2: &str = "2025-01-01T00:00:10Z";

    #[test]
    fn the_condition_is_written_once_per_message() {
        let fresh = pod_with(json!([]));
        let written = unschedulable_condition(&fresh, "Unschedulable", "0/1 nodes are available: 1 Too many pods.", T1);
        let written = written.unwrap();
        assert_eq!(written["status"], "False");
        assert_eq!(written["lastTransitionTime"], T1);
        let already = pod_with(json!([written]));
        assert_eq!(
            unschedulable_condition(&already, "Unschedulable", "0/1 nodes are available: 1 Too many pods.", T2),
            None
        );
    }

    #[test]
    fn a_new_message_keeps_the_transition_time() {
        let waiting = pod_with(json!([{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "old", "lastTransitionTime": "2025-01-01T00:00:00Z"}]));
        let written = unschedulable_condition(&waiting, "Unschedulable", "new", "2025-01-01T00:05:00Z").unwrap();
        assert_eq!(written["lastTransitionTime"], "2025-01-01T00:00:00Z");
        assert_eq!(written["message"], "new");
    }

    #[test]
    fn the_binding_path_is_the_pods_binding_subresource() {
        assert_eq!(BINDING.collection_path(Some("shop/pods/web")), "/api/v1/namespaces/shop/pods/web/binding");
    }
}
