//! The client: how every component talks to the apiserver.
//!
//! In Kubernetes nothing talks to etcd but the apiserver, and nothing talks to another component directly: the
//! scheduler, the controllers, the kubelet and kubectl all read and write objects through the same REST API.
//! client-go is the library that makes that easy in Go; this module is ours. There is one [`Client`] for every
//! kind: a method takes the [`Resource`] it works on (from [`crate::resources`]), builds the URL from it, and
//! hands objects back as `serde_json::Value`, exactly as the apiserver stores them. Where a caller knows the type
//! at compile time, the `*_typed` methods convert to and from the `k8s-openapi` structs.
//!
//! The verbs, and the HTTP they become:
//!
//! | method                      | HTTP                                                                  |
//! |-----------------------------|-----------------------------------------------------------------------|
//! | [`Client::get`]             | `GET    /apis/apps/v1/namespaces/default/deployments/web`             |
//! | [`Client::list`]            | `GET    .../deployments?labelSelector=..&limit=500&continue=..`       |
//! | [`Client::create`]          | `POST   .../deployments`                                              |
//! | [`Client::replace`]         | `PUT    .../deployments/web` (fails with 409 if resourceVersion moved)|
//! | [`Client::patch`]           | `PATCH  .../deployments/web` with a patch content type                |
//! | [`Client::update_status`]   | `PUT    .../deployments/web/status`                                   |
//! | [`Client::delete`]          | `DELETE .../deployments/web` with a `propagationPolicy`               |
//! | [`Client::watch`]           | `GET    .../deployments?watch=1&resourceVersion=N` (a stream of lines)|
//!
//! The module reads in five files, one idea each:
//!
//! - this file: the [`Client`], its errors, and the verbs on whole objects (get, list, create, replace, patch,
//!   delete), plain and typed;
//! - `client/params.rs`: the options a request carries ([`ListParams`], [`PatchParams`], [`PropagationPolicy`])
//!   and the query parameters they become ([`PatchType`] itself lives in [`crate::patch`], shared with the
//!   apiserver);
//! - `client/subresource.rs`: `/status`, `/binding`, `/scale`, four methods sharing one body;
//! - `client/watch.rs`: a watch as a stream of [`WatchEvent`]s, with the [`LineSplitter`] that reassembles the lines of
//!   a chunked response;
//! - `client/request.rs`: the plumbing under all of them: paths, headers, pages, error answers.
//!
//! What we leave out: TLS and authentication (the token is sent, and ignored by our apiserver), protobuf, retries
//! and rate limiting, and the informer (list + watch + cache), which is built on top of this client.

mod params;
mod request;
mod subresource;
mod watch;

pub use crate::patch::PatchType;
pub use params::{Deleted, FieldValidation, ListParams, PatchParams, PropagationPolicy};
pub use request::{api_error_from_body, build_url};
pub use watch::{LineSplitter, WatchEvent, WatchEventType, WatchStream};

use crate::kubeconfig::ClusterAccess;
use crate::resources::{self, Resource};
use crate::status::ApiError;
use request::{JSON, TABLE, collection_path, decode_error, from_value, object_path, with_type};
use reqwest::{Method, Url};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Value, json};

// ANCHOR: client_error
/// Why a request did not produce what was asked for.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The apiserver answered with an error `Status`: not found, invalid, conflict...
    #[error(transparent)]
    Api(#[from] ApiError),
    /// Nothing listens at the server URL: most often the cluster is simply not started.
    #[error("cannot connect to the apiserver at {server}: is the cluster running? try `kubelab up`")]
    Unreachable {
        /// The base URL from the kubeconfig.
        server: String,
        /// The connection error.
        source: reqwest::Error,
    },
    /// Any other transport failure (connection reset during a watch, bad URL...).
    #[error("request to {url} failed: {source}")]
    Http {
        /// The request URL.
        url: String,
        /// What reqwest said.
        source: reqwest::Error,
    },
    /// The server answered 2xx, but not with what we expected (bad JSON, wrong type).
    #[error("unexpected answer from {url}: {message}")]
    Decode {
        /// The request URL.
        url: String,
        /// What is wrong with the answer.
        message: String,
    },
    /// The call itself cannot be made: a bad base URL, a namespaced resource without a namespace, a type kubelab
    /// does not serve.
    #[error("{0}")]
    Usage(String),
}
// ANCHOR_END: client_error

// ANCHOR: client
/// A connection to one apiserver. Cheap to clone: clones share one connection pool.
#[derive(Debug, Clone)]
pub struct Client {
    /// reqwest keeps connections alive between requests, which matters for controllers that poll often.
    http: reqwest::Client,
    /// `http://127.0.0.1:6443`, without a trailing slash; paths are appended to it.
    base: String,
    /// Sent as `Authorization: Bearer <token>`; our apiserver does not check it, a real one would.
    token: Option<String>,
}
// ANCHOR_END: client

/// A whole list: every item of every page, and the resourceVersion to start a watch from.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectList<T = Value> {
    /// The objects, each with its `kind` and `apiVersion` filled in (the wire format omits them in lists).
    pub items: Vec<T>,
    /// The list's `metadata.resourceVersion`: watching from it misses no change made after the list.
    pub resource_version: String,
}

impl Client {
    /// A client for the apiserver at `base_url` (`http://127.0.0.1:6443`), without credentials.
    pub fn new(base_url: &str) -> Result<Client, ClientError> {
        let base = base_url.trim_end_matches('/').to_string();
        Url::parse(&base).map_err(|err| ClientError::Usage(format!("invalid server URL {base:?}: {err}")))?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("kubelab/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|source| ClientError::Http { url: base.clone(), source })?;
        Ok(Client { http, base, token: None })
    }

    /// The same client, sending `Authorization: Bearer <token>`.
    pub fn with_token(mut self, token: impl Into<String>) -> Client {
        self.token = Some(token.into());
        self
    }

    /// A client for what a kubeconfig's current context points at.
    pub fn from_access(access: &ClusterAccess) -> Result<Client, ClientError> {
        let client = Client::new(&access.server)?;
        Ok(match &access.token {
            Some(token) => client.with_token(token),
            None => client,
        })
    }

    /// The server's base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    // ANCHOR: get
    /// Reads one object.
    pub async fn get(
        &self,
        resource: &'static Resource,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Value, ClientError> {
        let path = object_path(resource, namespace, name)?;
        let object = self.send_json(Method::GET, &path, &[], JSON, None).await?;
        Ok(with_type(resource, object))
    }
    // ANCHOR_END: get

    /// Reads one object as the server-side printed `Table` of `kubectl get` (one row).
    pub async fn get_table(
        &self,
        resource: &'static Resource,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Value, ClientError> {
        let path = object_path(resource, namespace, name)?;
        self.send_json(Method::GET, &path, &[], TABLE, None).await
    }

    /// Lists the objects of one namespace, or of all namespaces when `namespace` is `None`, following pages.
    pub async fn list(
        &self,
        resource: &'static Resource,
        namespace: Option<&str>,
        params: &ListParams,
    ) -> Result<ObjectList, ClientError> {
        let mut list = self.list_pages(resource, namespace, params, JSON, "items").await?;
        let resource_version = crate::object::resource_version(&list).to_string();
        let items = match list.get_mut("items").map(Value::take) {
            Some(Value::Array(items)) => items.into_iter().map(|item| with_type(resource, item)).collect(),
            _ => Vec::new(),
        };
        Ok(ObjectList { items, resource_version })
    }

    /// Lists like [`Client::list`], but as one `Table` (rows of every page), for printing.
    pub async fn list_table(
        &self,
        resource: &'static Resource,
        namespace: Option<&str>,
        params: &ListParams,
    ) -> Result<Value, ClientError> {
        self.list_pages(resource, namespace, params, TABLE, "rows").await
    }

    /// Creates an object; the server fills in uid, resourceVersion, creationTimestamp and defaults.
    pub async fn create(
        &self,
        resource: &'static Resource,
        namespace: Option<&str>,
        object: &Value,
    ) -> Result<Value, ClientError> {
        let path = collection_path(resource, namespace)?;
        self.send_json(Method::POST, &path, &[], JSON, Some((JSON, object))).await
    }

    /// Replaces an object (`PUT`). If `object` carries a resourceVersion that is no longer current, the server
    /// refuses with `409 Conflict`: read again, change again, try again (optimistic concurrency).
    pub async fn replace(
        &self,
        resource: &'static Resource,
        namespace: Option<&str>,
        name: &str,
        object: &Value,
    ) -> Result<Value, ClientError> {
        let path = object_path(resource, namespace, name)?;
        self.send_json(Method::PUT, &path, &[], JSON, Some((JSON, object))).await
    }

    /// Patches an object; `patch_type` says how the server reads `patch`.
    pub async fn patch(
        &self,
        resource: &'static Resource,
        namespace: Option<&str>,
        name: &str,
        patch_type: PatchType,
        patch: &Value,
        params: &PatchParams,
    ) -> Result<Value, ClientError> {
        let path = object_path(resource, namespace, name)?;
        self.send_json(Method::PATCH, &path, &params.query(), JSON, Some((patch_type.content_type(), patch))).await
    }

    /// Deletes an object. The answer is the object when it lingers (finalizers, foreground deletion), or a
    /// success `Status`.
    pub async fn delete(
        &self,
        resource: &'static Resource,
        namespace: Option<&str>,
        name: &str,
        propagation: PropagationPolicy,
    ) -> Result<Deleted, ClientError> {
        let path = object_path(resource, namespace, name)?;
        let body =
            json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": format!("{propagation:?}")});
        let answer = self.send_json(Method::DELETE, &path, &[], JSON, Some((JSON, &body))).await?;
        if answer.get("kind").and_then(Value::as_str) == Some("Status") {
            let url = self.base.clone() + &path;
            let status = serde_json::from_value(answer).map_err(|err| decode_error(&url, err))?;
            return Ok(Deleted::Status(Box::new(status)));
        }
        Ok(Deleted::Object(with_type(resource, answer)))
    }

    /// Reads one object as its `k8s-openapi` type, e.g. `client.get_typed::<Deployment>(Some("default"), "web")`.
    pub async fn get_typed<K>(&self, namespace: Option<&str>, name: &str) -> Result<K, ClientError>
    where
        K: k8s_openapi::Resource + DeserializeOwned,
    {
        let object = self.get(resource_of::<K>()?, namespace, name).await?;
        from_value(&self.base, object)
    }

    /// Lists objects as their `k8s-openapi` type.
    pub async fn list_typed<K>(
        &self,
        namespace: Option<&str>,
        params: &ListParams,
    ) -> Result<ObjectList<K>, ClientError>
    where
        K: k8s_openapi::Resource + DeserializeOwned,
    {
        let list = self.list(resource_of::<K>()?, namespace, params).await?;
        let items = list.items.into_iter().map(|item| from_value(&self.base, item)).collect::<Result<_, _>>()?;
        Ok(ObjectList { items, resource_version: list.resource_version })
    }

    /// Creates an object given as its `k8s-openapi` type.
    pub async fn create_typed<K>(&self, namespace: Option<&str>, object: &K) -> Result<K, ClientError>
    where
        K: k8s_openapi::Resource + Serialize + DeserializeOwned,
    {
        let body = serde_json::to_value(object).map_err(|err| ClientError::Usage(err.to_string()))?;
        let created = self.create(resource_of::<K>()?, namespace, &body).await?;
        from_value(&self.base, created)
    }

    /// Replaces an object given as its `k8s-openapi` type.
    pub async fn replace_typed<K>(&self, namespace: Option<&str>, name: &str, object: &K) -> Result<K, ClientError>
    where
        K: k8s_openapi::Resource + Serialize + DeserializeOwned,
    {
        let body = serde_json::to_value(object).map_err(|err| ClientError::Usage(err.to_string()))?;
        let replaced = self.replace(resource_of::<K>()?, namespace, name, &body).await?;
        from_value(&self.base, replaced)
    }
}

/// The resource a `k8s-openapi` type is served at.
pub fn resource_of<K: k8s_openapi::Resource>() -> Result<&'static Resource, ClientError> {
    resources::by_kind(K::API_VERSION, K::KIND)
        .ok_or_else(|| ClientError::Usage(format!("kubelab does not serve {} {}", K::API_VERSION, K::KIND)))
}
