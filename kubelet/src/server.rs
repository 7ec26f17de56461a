//! The kubelet's own HTTP servers: how the cluster reaches into a node.
//!
//! `kubectl logs` does not read files on the node: kubectl asks the apiserver for `pods/<name>/log`, and the
//! apiserver forwards the request to the kubelet of the pod's node — at the address and port the Node reports
//! (`InternalIP`, `daemonEndpoints.kubeletEndpoint.Port`) — which streams the container's output:
//!
//! ```text
//! kubectl logs -f web  →  apiserver GET /api/v1/namespaces/default/pods/web/log?follow=true
//!                      →  kubelet  GET /containerLogs/default/web/nginx?follow=true
//! ```
//!
//! The kubelet serves two ports. **10250**, its API: `/containerLogs/...` and `/healthz` (real kubelets also
//! serve exec, attach, port-forward and metrics there, behind TLS and authentication). **10255**, the read-only
//! port (deprecated in Kubernetes, handy for learning): `/healthz`, `/pods` (the pods this kubelet runs, as a
//! `PodList`) and `/spec` (the machine, as cAdvisor describes it). Both are plain HTTP here.

use crate::context::Context;
use crate::labels::{self, Role};
use crate::machine::MachineInfo;
use crate::runtime::LogOptions;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The routes of port 10250.
pub fn api(ctx: Arc<Context>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/containerLogs/{namespace}/{pod}/{container}", get(container_logs))
        .route("/pods", get(pods))
        .route("/spec", get(spec))
        .with_state(ctx)
}

/// The routes of the read-only port 10255.
pub fn read_only(ctx: Arc<Context>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/pods", get(pods))
        .route("/spec", get(spec))
        .with_state(ctx)
}

/// The query of `/containerLogs`, as the apiserver forwards kubectl's options.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogQuery {
    follow: Option<String>,
    tail_lines: Option<String>,
    previous: Option<String>,
    timestamps: Option<String>,
    since_seconds: Option<String>,
}

fn flag(value: &Option<String>) -> bool {
    value.as_deref().is_some_and(|v| v == "true" || v == "1" || v.is_empty())
}

// ANCHOR: container_logs
/// `GET /containerLogs/{namespace}/{pod}/{container}`: the container's output as plain text, streamed.
async fn container_logs(
    State(ctx): State<Arc<Context>>,
    Path((namespace, pod_name, container)): Path<(String, String, String)>,
    Query(query): Query<LogQuery>,
) -> Response {
    let bad = |code: StatusCode, message: String| (code, message).into_response();
    let Some(pod) = ctx.pods.get(&format!("{namespace}/{pod_name}")) else {
        return bad(StatusCode::NOT_FOUND, format!("pod {namespace}/{pod_name} not found on this node"));
    };
    let known = pod.pointer("/spec/containers").and_then(Value::as_array).into_iter().flatten();
    if !known.clone().any(|c| c.get("name").and_then(Value::as_str) == Some(&container)) {
        return bad(StatusCode::BAD_REQUEST, format!("container {container} is not valid for pod {pod_name}"));
    }
    let uid = pod.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or_default();
    let selector = BTreeMap::from([
        (labels::POD_UID.to_string(), uid.to_string()),
        (labels::CONTAINER_NAME.to_string(), container.clone()),
    ]);
    let mut attempts = match ctx.runtime.list_containers(&selector).await {
        Ok(list) => list.into_iter().filter(|c| c.owner.role == Role::Container).collect::<Vec<_>>(),
        Err(err) => return bad(StatusCode::INTERNAL_SERVER_ERROR, err.to_string()),
    };
    attempts.sort_by_key(|c| std::cmp::Reverse((c.owner.attempt, c.created_at)));
    let previous = flag(&query.previous);
    let Some(target) = attempts.get(usize::from(previous)) else {
        let message = if previous {
            format!("previous terminated container {container:?} in pod {pod_name:?} not found")
        } else {
            let reason = waiting_reason(&pod, &container).unwrap_or_else(|| "ContainerCreating".into());
            format!("container {container:?} in pod {pod_name:?} is waiting to start: {reason}")
        };
        return bad(StatusCode::BAD_REQUEST, message);
    };
    let options = LogOptions {
        follow: flag(&query.follow),
        tail_lines: query.tail_lines.as_deref().and_then(|n| n.parse().ok()),
        timestamps: flag(&query.timestamps),
        since_seconds: query.since_seconds.as_deref().and_then(|n| n.parse().ok()),
    };
    let stream = ctx.runtime.logs(&target.id, options).map(|chunk| chunk.map_err(std::io::Error::other));
    ([(header::CONTENT_TYPE, "text/plain")], Body::from_stream(stream)).into_response()
}
// ANCHOR_END: container_logs

/// The waiting reason the pod status shows for a container (`ContainerCreating`, `ErrImagePull`...).
fn waiting_reason(pod: &Value, container: &str) -> Option<String> {
    let statuses = pod.pointer("/status/containerStatuses")?.as_array()?;
    let status = statuses.iter().find(|s| s.get("name").and_then(Value::as_str) == Some(container))?;
    status.pointer("/state/waiting/reason").and_then(Value::as_str).map(String::from)
}

/// `GET /pods`: the pods bound to this node, as a `PodList`.
async fn pods(State(ctx): State<Arc<Context>>) -> Response {
    let items = ctx.pods.list();
    axum::Json(json!({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items})).into_response()
}

/// `GET /spec`: the machine.
async fn spec() -> Response {
    axum::Json(MachineInfo::read()).into_response()
}
