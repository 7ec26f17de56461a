//! Helpers shared by the controller-manager's scenario tests (each test binary uses a part of them).
#![allow(dead_code)]

use anyhow::{Context, bail};
use kubelab_api::resources::{self, Resource};
use serde_json::Value;
use std::time::Duration;

/// How long any single wait of these scenarios may take.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// The served resource of a kind.
pub fn resource(kind: &str) -> anyhow::Result<&'static Resource> {
    resources::RESOURCES.iter().find(|r| r.kind == kind).with_context(|| format!("no resource for {kind}"))
}

/// A kubeconfig for the real kubectl, pointing at `url` (the same file `kubelab up` writes).
pub fn kubeconfig_for(url: &str) -> String {
    kubelab_api::kubeconfig::kubeconfig_yaml(url, "test").expect("a kubeconfig of plain strings serializes")
}

/// A status condition of `object` by type.
pub fn condition(object: &Value, type_: &str) -> Option<Value> {
    object.pointer("/status/conditions")?.as_array()?.iter().find(|c| c["type"] == type_).cloned()
}

/// Checks `condition` until it returns `Ok` (every 25 ms) or [`TIMEOUT`] passes; the error names what was awaited
/// and what the last check said.
pub async fn wait_for<T, F, Fut>(what: &str, mut condition: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let last = match tokio::time::timeout_at(deadline, condition()).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(not_yet)) => format!("{not_yet:#}"),
            Err(_) => "the last check was still running".to_string(),
        };
        if tokio::time::Instant::now() >= deadline {
            bail!("timed out after {TIMEOUT:?} waiting for {what}; last check: {last}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
