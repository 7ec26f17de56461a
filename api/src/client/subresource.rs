//! Subresources: `pods/web/binding`, `deployments/web/status`, `deployments/web/scale`.
//!
//! A subresource is a second door into the same object, with its own rules: `.status` can only be written through
//! `/status` (so controllers own status while users own spec), a Pod is bound to a node only through `/binding`,
//! `kubectl scale` goes through `/scale`. The four methods below differ only in the HTTP verb and how the body is
//! read, so they share one body, [`Client::send_to_subresource`].

use super::request::{JSON, object_path};
use super::{Client, ClientError, PatchType};
use crate::resources::Resource;
use reqwest::Method;
use serde_json::Value;

impl Client {
    /// Patches a subresource of an object, e.g. `deployments/web/scale` (what `kubectl scale` does).
    pub async fn patch_subresource(
        &self,
        resource: &'static Resource,
        namespace: Option<&str>,
        name: &str,
        subresource: &str,
        patch_type: PatchType,
        patch: &Value,
    ) -> Result<Value, ClientError> {
        let body = (patch_type.content_type(), patch);
        self.send_to_subresource(Method::PATCH, resource, namespace, name, subresource, body).await
    }

    /// Patches the `status` subresource: the only way to change `.status`, which a normal update ignores. This
    /// split is how controllers own status while users own spec.
    pub async fn patch_status(
        &self,
        resource: &'static Resource,
        namespace: Option<&str>,
        name: &str,
        patch_type: PatchType,
        patch: &Value,
    ) -> Result<Value, ClientError> {
        self.patch_subresource(resource, namespace, name, "status", patch_type, patch).await
    }

    /// Replaces the `status` subresource (`PUT .../status`); the object's spec in the body is ignored.
    pub async fn update_status(
        &self,
        resource: &'static Resource,
        namespace: Option<&str>,
        name: &str,
        object: &Value,
    ) -> Result<Value, ClientError> {
        self.send_to_subresource(Method::PUT, resource, namespace, name, "status", (JSON, object)).await
    }

    /// `POST`s to a subresource of an object, e.g. a `Binding` to `pods/<name>/binding` (how the scheduler records
    /// its decision).
    pub async fn create_subresource(
        &self,
        resource: &'static Resource,
        namespace: Option<&str>,
        name: &str,
        subresource: &str,
        body: &Value,
    ) -> Result<Value, ClientError> {
        self.send_to_subresource(Method::POST, resource, namespace, name, subresource, (JSON, body)).await
    }

    /// The one body of the four: `<object path>/<subresource>`, with `body` sent as its content type says.
    async fn send_to_subresource(
        &self,
        method: Method,
        resource: &'static Resource,
        namespace: Option<&str>,
        name: &str,
        subresource: &str,
        body: (&str, &Value),
    ) -> Result<Value, ClientError> {
        let path = format!("{}/{subresource}", object_path(resource, namespace, name)?);
        self.send_json(method, &path, &[], JSON, Some(body)).await
    }
}
