//! `kubectl logs`: the one request the apiserver does not answer itself.
//!
//! Container logs live on the node that runs the container, not in the store. So for
//! `GET /api/v1/namespaces/<ns>/pods/<pod>/log` the apiserver finds the pod's node, reads the kubelet's address
//! from the Node object (`status.addresses` InternalIP and `status.daemonEndpoints.kubeletEndpoint.Port`),
//! and streams the kubelet's answer back (`GET /containerLogs/<ns>/<pod>/<container>` on the kubelet).
//!
//! What we leave out: Kubernetes authenticates to the kubelet with TLS client certificates; kubelab's kubelet
//! port is plain HTTP.

use crate::registry::Registry;
use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::Response;
use futures::TryStreamExt;
use kubelab_api::{ApiError, resources};
use serde_json::Value;
use std::collections::HashMap;

/// The query parameters kubectl sends and the kubelet understands.
const FORWARDED: &[&str] = &["follow", "tailLines", "previous", "timestamps", "sinceSeconds", "limitBytes"];

/// Serves `pods/<name>/log` by forwarding to the pod's kubelet.
pub async fn pod_logs(
    registry: &Registry,
    namespace: &str,
    name: &str,
    params: &HashMap<String, String>,
) -> Result<Response, ApiError> {
    let pods = resources::by_path("", "v1", "pods").ok_or_else(|| ApiError::internal("pods are not registered"))?;
    let nodes = resources::by_path("", "v1", "nodes").ok_or_else(|| ApiError::internal("nodes are not registered"))?;
    let pod = registry.get(pods, namespace, name).await?;
    let container = choose_container(&pod, params.get("container").map(String::as_str))?;
    let node_name = pod.pointer("/spec/nodeName").and_then(Value::as_str).unwrap_or("");
    if node_name.is_empty() {
        return Err(ApiError::bad_request(format!("pod {name} does not have a host assigned")));
    }
    let node = registry.get(nodes, "", node_name).await?;
    let address = kubelet_address(&node)
        .ok_or_else(|| ApiError::bad_request(format!("node {node_name} does not report a kubelet address")))?;
    let query: Vec<(&str, &str)> =
        FORWARDED.iter().filter_map(|key| params.get(*key).map(|value| (*key, value.as_str()))).collect();
    let url = format!("http://{address}/containerLogs/{namespace}/{name}/{container}");
    let url = reqwest::Url::parse_with_params(&url, &query).map_err(|err| ApiError::internal(err.to_string()))?;
    let answer = reqwest::Client::new().get(url).send().await.map_err(|err| {
        ApiError::unavailable(format!("cannot reach the kubelet of node {node_name} at {address}: {err}"))
    })?;
    let status = answer.status().as_u16();
    if status >= 400 {
        let text = answer.text().await.unwrap_or_default();
        let mut err = ApiError::bad_request(text.trim().to_string());
        if status == 404 {
            err = ApiError::not_found("", "pods", name);
            err.message = text.trim().to_string();
        }
        return Err(err);
    }
    let stream = answer.bytes_stream().map_err(std::io::Error::other);
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from_stream(stream))
        .map_err(|err| ApiError::internal(err.to_string()))
}

/// The container asked for, or the only one; Kubernetes refuses to guess between several.
fn choose_container(pod: &Value, asked: Option<&str>) -> Result<String, ApiError> {
    let names: Vec<&str> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| cs.iter().filter_map(|c| c.get("name").and_then(Value::as_str)).collect())
        .unwrap_or_default();
    let pod_name = kubelab_api::object::name(pod);
    match asked.filter(|a| !a.is_empty()) {
        Some(name) if names.contains(&name) => Ok(name.to_string()),
        Some(name) => Err(ApiError::bad_request(format!("container {name} is not valid for pod {pod_name}"))),
        None if names.len() == 1 => Ok(names[0].to_string()),
        None => Err(ApiError::bad_request(format!(
            "a container name must be specified for pod {pod_name}, choose one of: [{}]",
            names.join(" ")
        ))),
    }
}

/// `ip:port` of a node's kubelet.
fn kubelet_address(node: &Value) -> Option<String> {
    let ip = node
        .pointer("/status/addresses")
        .and_then(Value::as_array)?
        .iter()
        .find(|a| a.get("type").and_then(Value::as_str) == Some("InternalIP"))?
        .get("address")?
        .as_str()?
        .to_string();
    let port = node.pointer("/status/daemonEndpoints/kubeletEndpoint/Port").and_then(Value::as_i64).unwrap_or(10250);
    Some(format!("{ip}:{port}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_pod_with_several_containers_needs_a_container_name() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        assert_eq!(
            choose_container(&pod, None).unwrap_err().message,
            "a container name must be specified for pod p, choose one of: [a b]"
        );
        assert_eq!(choose_container(&pod, Some("b")).unwrap(), "b");
        let single = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "only"}]}});
        assert_eq!(choose_container(&single, None).unwrap(), "only");
    }

    #[test]
    fn the_kubelet_address_comes_from_the_node_status() {
        let node = json!({"status": {"addresses": [{"type": "Hostname", "address": "n1"}, {"type": "InternalIP", "address": "127.0.1.2"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}}}});
        assert_eq!(kubelet_address(&node).as_deref(), Some("127.0.1.2:10250"));
    }
}
