//! Helpers shared by the controller-manager's scenario tests (each test binary uses a part of them). The
//! apiserver, kubectl and waiting come from `kubelab-testkit`, as for every component's tests; what is here is
//! what only these scenarios need: reading objects by kind, and conditions.
#![allow(dead_code)]

use anyhow::Context;
use kubelab_api::client::{Client, ClientError};
use kubelab_api::resources::{self, Resource};
use serde_json::{Value, json};
use std::time::Duration;

/// How long any single wait of these scenarios may take.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// The served resource of a kind.
pub fn resource(kind: &str) -> anyhow::Result<&'static Resource> {
    resources::RESOURCES.iter().find(|r| r.kind == kind).with_context(|| format!("no resource for {kind}"))
}

/// A status condition of `object` by type.
pub fn condition(object: &Value, type_: &str) -> Option<Value> {
    object.pointer("/status/conditions")?.as_array()?.iter().find(|c| c["type"] == type_).cloned()
}

/// Creates an object of `kind` from `body`, which need not say its `apiVersion` and `kind`.
pub async fn create(client: &Client, namespace: Option<&str>, kind: &str, mut body: Value) -> anyhow::Result<Value> {
    let resource = resource(kind)?;
    body["apiVersion"] = json!(resource.api_version());
    body["kind"] = json!(kind);
    Ok(client.create(resource, namespace, &body).await?)
}

/// The object, or `None` once it is gone.
pub async fn get(client: &Client, namespace: Option<&str>, kind: &str, name: &str) -> anyhow::Result<Option<Value>> {
    match client.get(resource(kind)?, namespace, name).await {
        Ok(object) => Ok(Some(object)),
        Err(ClientError::Api(err)) if err.code == 404 => Ok(None),
        Err(err) => Err(err.into()),
    }
}
