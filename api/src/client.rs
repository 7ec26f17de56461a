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
//! A watch is a long HTTP response whose body is newline-delimited JSON, one event per line, sent as chunks as
//! things change. Chunks do not respect line boundaries, so [`LineSplitter`] reassembles lines before they are
//! parsed.
//!
//! What we leave out: TLS and authentication (the token is sent, and ignored by our apiserver), protobuf, retries
//! and rate limiting, and the informer (list + watch + cache), which is built on top of this client.

use crate::kubeconfig::ClusterAccess;
use crate::resources::{self, Resource};
use crate::status::ApiError;
use futures::stream::{BoxStream, Stream, StreamExt};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Status, StatusDetails};
use reqwest::{Method, Url};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::{Map, Value, json};
use std::collections::VecDeque;

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

/// A whole list: every item of every page, and the resourceVersion to start a watch from.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectList<T = Value> {
    /// The objects, each with its `kind` and `apiVersion` filled in (the wire format omits them in lists).
    pub items: Vec<T>,
    /// The list's `metadata.resourceVersion`: watching from it misses no change made after the list.
    pub resource_version: String,
}

/// Which objects a list or a watch is about.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListParams {
    /// `app=web,tier!=db`: only objects whose labels match.
    pub label_selector: Option<String>,
    /// `metadata.name=web`, `spec.nodeName=node-1`: only objects whose fields match.
    pub field_selector: Option<String>,
    /// How many objects to ask for per page; kubectl's 500 when `None`. [`Client::list`] asks for pages until
    /// the server has no more, so this changes the number of requests, never the result.
    pub page_size: Option<u32>,
}

impl ListParams {
    /// Only objects with these labels.
    pub fn labels(mut self, selector: impl Into<String>) -> Self {
        self.label_selector = Some(selector.into());
        self
    }

    /// Only objects with these field values.
    pub fn fields(mut self, selector: impl Into<String>) -> Self {
        self.field_selector = Some(selector.into());
        self
    }

    fn query(&self) -> Vec<(&'static str, String)> {
        let mut query = Vec::new();
        if let Some(s) = self.label_selector.as_ref().filter(|s| !s.is_empty()) {
            query.push(("labelSelector", s.clone()));
        }
        if let Some(s) = self.field_selector.as_ref().filter(|s| !s.is_empty()) {
            query.push(("fieldSelector", s.clone()));
        }
        query
    }
}

/// The four ways to patch an object; each is a different `Content-Type` on a `PATCH` request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// RFC 6902 list of operations: `[{"op":"replace","path":"/spec/replicas","value":3}]`.
    Json,
    /// RFC 7386: the body is merged into the object; `null` deletes; lists are replaced whole.
    Merge,
    /// Kubernetes' merge that merges lists by key (containers by `name`), what `kubectl apply` sends.
    StrategicMerge,
    /// Server-side apply: the body is the full intent of one field manager; creates the object if missing.
    Apply,
}

impl PatchType {
    /// The `Content-Type` header that tells the apiserver how to read the body.
    pub fn content_type(self) -> &'static str {
        match self {
            PatchType::Json => "application/json-patch+json",
            PatchType::Merge => "application/merge-patch+json",
            PatchType::StrategicMerge => "application/strategic-merge-patch+json",
            PatchType::Apply => "application/apply-patch+yaml",
        }
    }
}

/// What the server does with fields it does not know (`fieldValidation=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValidation {
    /// Drop them silently.
    Ignore,
    /// Drop them and say so in a `Warning` header.
    Warn,
    /// Refuse the request: what you want when a typo like `replcas` must not go unnoticed.
    Strict,
}

/// Options of a patch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PatchParams {
    /// Who owns the fields this patch sets (required for [`PatchType::Apply`]), e.g. `kubelab`.
    pub field_manager: Option<String>,
    /// Unknown fields: the server's default (`Warn`) when `None`.
    pub field_validation: Option<FieldValidation>,
    /// Server-side apply only: take ownership of fields another manager set, instead of failing with a conflict.
    pub force: bool,
}

impl PatchParams {
    /// Server-side apply as `manager`, strict about unknown fields.
    pub fn apply(manager: &str) -> Self {
        PatchParams {
            field_manager: Some(manager.to_string()),
            field_validation: Some(FieldValidation::Strict),
            force: false,
        }
    }

    fn query(&self) -> Vec<(&'static str, String)> {
        let mut query = Vec::new();
        if let Some(manager) = &self.field_manager {
            query.push(("fieldManager", manager.clone()));
        }
        if let Some(validation) = self.field_validation {
            query.push(("fieldValidation", format!("{validation:?}")));
        }
        if self.force {
            query.push(("force", "true".to_string()));
        }
        query
    }
}

/// What happens to the objects an object owns (a Deployment's ReplicaSets) when it is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PropagationPolicy {
    /// Delete the owner now; the garbage collector deletes its dependents afterwards (kubectl's default).
    #[default]
    Background,
    /// The owner stays, with a `foregroundDeletion` finalizer, until its dependents are gone.
    Foreground,
    /// Delete only the owner; the dependents stay, without an owner.
    Orphan,
}

/// What a `DELETE` answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Deleted {
    /// The object as it is now: still there when a finalizer holds it (it then has a `deletionTimestamp`).
    Object(Value),
    /// A `Status` saying the object is gone.
    Status(Box<Status>),
}

/// What happened to an object, as one line of a watch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatchEvent {
    /// `ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK` or `ERROR`.
    #[serde(rename = "type")]
    pub type_: WatchEventType,
    /// The object after the change (before it, for `DELETED`); for `BOOKMARK` only its resourceVersion;
    /// for `ERROR` a `Status`.
    pub object: Value,
}

/// The kinds of watch events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum WatchEventType {
    Added,
    Modified,
    Deleted,
    /// Nothing changed, but the watch has seen everything up to `object.metadata.resourceVersion`: a client that
    /// reconnects from there misses nothing (and the server need not replay history).
    Bookmark,
    /// The watch cannot go on; most often `410 Expired`, meaning: list again, then watch from the new list.
    Error,
}

impl WatchEvent {
    /// For an `ERROR` event, the error it carries.
    pub fn error(&self) -> Option<ApiError> {
        (self.type_ == WatchEventType::Error).then(|| api_error_from_body(500, "Internal Server Error", &self.object))
    }
}

/// A watch: events in the order the server sent them; it ends when the server closes the response.
pub type WatchStream = BoxStream<'static, Result<WatchEvent, ClientError>>;

/// `Accept` for ordinary requests.
const JSON: &str = "application/json";
/// `Accept` asking for the server-side printed table of `kubectl get`, with plain JSON as a fallback.
const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";
/// kubectl's page size.
const DEFAULT_PAGE_SIZE: u32 = 500;

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
        let path = format!("{}/{subresource}", object_path(resource, namespace, name)?);
        self.send_json(Method::PATCH, &path, &[], JSON, Some((patch_type.content_type(), patch))).await
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
        let path = format!("{}/status", object_path(resource, namespace, name)?);
        self.send_json(Method::PATCH, &path, &[], JSON, Some((patch_type.content_type(), patch))).await
    }

    /// Replaces the `status` subresource (`PUT .../status`); the object's spec in the body is ignored.
    pub async fn update_status(
        &self,
        resource: &'static Resource,
        namespace: Option<&str>,
        name: &str,
        object: &Value,
    ) -> Result<Value, ClientError> {
        let path = format!("{}/status", object_path(resource, namespace, name)?);
        self.send_json(Method::PUT, &path, &[], JSON, Some((JSON, object))).await
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
        let path = format!("{}/{subresource}", object_path(resource, namespace, name)?);
        self.send_json(Method::POST, &path, &[], JSON, Some((JSON, body))).await
    }

    /// Watches changes after `resource_version` (from a list). With bookmarks on, the server also reports
    /// progress, so that a reconnecting client can resume from a recent resourceVersion.
    pub async fn watch(
        &self,
        resource: &'static Resource,
        namespace: Option<&str>,
        params: &ListParams,
        resource_version: &str,
    ) -> Result<WatchStream, ClientError> {
        self.watch_as(resource, namespace, params, resource_version, JSON).await
    }

    /// Like [`Client::watch`], but each event's object is a one-row `Table` (what `kubectl get -w` prints).
    pub async fn watch_table(
        &self,
        resource: &'static Resource,
        namespace: Option<&str>,
        params: &ListParams,
        resource_version: &str,
    ) -> Result<WatchStream, ClientError> {
        self.watch_as(resource, namespace, params, resource_version, TABLE).await
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

    // ---- plumbing ----

    async fn watch_as(
        &self,
        resource: &'static Resource,
        namespace: Option<&str>,
        params: &ListParams,
        resource_version: &str,
        accept: &str,
    ) -> Result<WatchStream, ClientError> {
        let path = collection_path_or_all(resource, namespace);
        let mut query = params.query();
        query.push(("watch", "1".into()));
        if !resource_version.is_empty() {
            query.push(("resourceVersion", resource_version.into()));
        }
        query.push(("allowWatchBookmarks", "true".into()));
        let url = build_url(&self.base, &path, &query)?;
        let response = self.send(Method::GET, url.clone(), accept, None).await?;
        let url = url.to_string();
        let chunks = response
            .bytes_stream()
            .map(move |chunk| chunk.map_err(|source| ClientError::Http { url: url.clone(), source }));
        Ok(watch_events(chunks, path).boxed())
    }

    /// Asks for pages (`limit`, then `continue`) until the server says there are no more, and returns the first
    /// page with the `field` array (`items` or `rows`) of every page.
    async fn list_pages(
        &self,
        resource: &'static Resource,
        namespace: Option<&str>,
        params: &ListParams,
        accept: &str,
        field: &str,
    ) -> Result<Value, ClientError> {
        let path = collection_path_or_all(resource, namespace);
        let limit = params.page_size.unwrap_or(DEFAULT_PAGE_SIZE).to_string();
        let mut first_page: Option<Map<String, Value>> = None;
        let mut all_rows = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let mut query = params.query();
            query.push(("limit", limit.clone()));
            if let Some(token) = next.take() {
                query.push(("continue", token));
            }
            let mut page = match self.send_json(Method::GET, &path, &query, accept, None).await? {
                Value::Object(page) => page,
                _ => return Err(ClientError::Decode { url: path, message: "a list must be a JSON object".into() }),
            };
            next = page.get("metadata").and_then(|m| m.get("continue")).and_then(Value::as_str).map(String::from);
            if let Some(Value::Array(rows)) = page.remove(field) {
                all_rows.extend(rows);
            }
            // The first page's metadata (its resourceVersion above all) describes the whole list: later pages
            // are read from the same snapshot.
            first_page.get_or_insert(page);
            if next.as_deref().is_none_or(str::is_empty) {
                break;
            }
        }
        let mut list = first_page.unwrap_or_default();
        if let Some(meta) = list.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("continue");
        }
        list.insert(field.to_string(), Value::Array(all_rows));
        Ok(Value::Object(list))
    }

    /// Sends a request and reads a JSON answer.
    async fn send_json(
        &self,
        method: Method,
        path: &str,
        query: &[(&'static str, String)],
        accept: &str,
        body: Option<(&str, &Value)>,
    ) -> Result<Value, ClientError> {
        let url = build_url(&self.base, path, query)?;
        let response = self.send(method, url.clone(), accept, body).await?;
        let bytes = response.bytes().await.map_err(|source| ClientError::Http { url: url.to_string(), source })?;
        serde_json::from_slice(&bytes).map_err(|err| decode_error(url.as_str(), err))
    }

    /// Sends a request; a non-2xx answer becomes [`ClientError::Api`].
    async fn send(
        &self,
        method: Method,
        url: Url,
        accept: &str,
        body: Option<(&str, &Value)>,
    ) -> Result<reqwest::Response, ClientError> {
        let mut request = self.http.request(method, url.clone()).header(reqwest::header::ACCEPT, accept);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some((content_type, body)) = body {
            request = request.header(reqwest::header::CONTENT_TYPE, content_type).body(body.to_string());
        }
        let response = request.send().await.map_err(|source| {
            if source.is_connect() {
                ClientError::Unreachable { server: self.base.clone(), source }
            } else {
                ClientError::Http { url: url.to_string(), source }
            }
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.bytes().await.unwrap_or_default();
        let body = serde_json::from_slice(&text)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&text).trim().to_string()));
        Err(api_error_from_body(status.as_u16(), status.canonical_reason().unwrap_or(""), &body).into())
    }
}

/// The resource a `k8s-openapi` type is served at.
pub fn resource_of<K: k8s_openapi::Resource>() -> Result<&'static Resource, ClientError> {
    resources::by_kind(K::API_VERSION, K::KIND)
        .ok_or_else(|| ClientError::Usage(format!("kubelab does not serve {} {}", K::API_VERSION, K::KIND)))
}

/// The URL of one object; a namespaced resource needs a namespace.
fn object_path(resource: &Resource, namespace: Option<&str>, name: &str) -> Result<String, ClientError> {
    if name.is_empty() {
        return Err(ClientError::Usage(format!("a {} needs a name", resource.singular)));
    }
    Ok(format!("{}/{name}", collection_path(resource, namespace)?))
}

/// The collection of one namespace (or of a cluster-scoped resource), for creating objects.
fn collection_path(resource: &Resource, namespace: Option<&str>) -> Result<String, ClientError> {
    match namespace {
        None | Some("") if resource.namespaced => {
            Err(ClientError::Usage(format!("{} are namespaced: a namespace is needed", resource.plural)))
        }
        _ => Ok(resource.collection_path(namespace)),
    }
}

/// The collection of one namespace, or of all when `namespace` is `None`, for lists and watches.
fn collection_path_or_all(resource: &Resource, namespace: Option<&str>) -> String {
    resource.collection_path(namespace.filter(|ns| !ns.is_empty()))
}

/// `base` + `path` + `?query`, with query values percent-encoded (selectors contain `=`, `,` and `!`).
pub fn build_url(base: &str, path: &str, query: &[(&'static str, String)]) -> Result<Url, ClientError> {
    let mut url = Url::parse(&format!("{}{path}", base.trim_end_matches('/')))
        .map_err(|err| ClientError::Usage(format!("invalid URL {base}{path}: {err}")))?;
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
    }
    Ok(url)
}

/// Lists omit `kind` and `apiVersion` on their items; put them back so every object stands on its own.
fn with_type(resource: &Resource, mut object: Value) -> Value {
    if let Some(map) = object.as_object_mut() {
        map.entry("kind").or_insert_with(|| Value::String(resource.kind.into()));
        map.entry("apiVersion").or_insert_with(|| Value::String(resource.api_version()));
    }
    object
}

fn from_value<K: DeserializeOwned>(url: &str, object: Value) -> Result<K, ClientError> {
    serde_json::from_value(object).map_err(|err| decode_error(url, err))
}

fn decode_error(url: &str, err: serde_json::Error) -> ClientError {
    ClientError::Decode { url: url.to_string(), message: err.to_string() }
}

/// Reads an error answer: a `Status` when the server sent one, else the HTTP status (`404 Not Found`) and whatever
/// text came with it.
pub fn api_error_from_body(http_code: u16, reason_phrase: &str, body: &Value) -> ApiError {
    if body.get("kind").and_then(Value::as_str) == Some("Status") || body.get("message").is_some() {
        let text = |field: &str| body.get(field).and_then(Value::as_str).map(String::from);
        let details = body.get("details").and_then(|d| serde_json::from_value::<StatusDetails>(d.clone()).ok());
        let status = Status {
            code: body.get("code").and_then(Value::as_i64).and_then(|c| i32::try_from(c).ok()),
            details,
            message: text("message"),
            metadata: Default::default(),
            reason: text("reason"),
            status: text("status"),
        };
        return ApiError::from_status(status, http_code);
    }
    let reason = match http_code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        410 => "Expired",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "InternalError",
    };
    let message = match body.as_str().filter(|text| !text.is_empty()) {
        Some(text) => text.to_string(),
        None => format!(
            "the server responded with the status code {http_code} ({reason_phrase}) but did not return more information"
        ),
    };
    ApiError { code: http_code, reason: reason.to_string(), message, details: None }
}

/// Cuts a byte stream into lines, whatever the chunk boundaries: a watch's chunks carry whole events, part of
/// an event, or several, depending on buffering in the server and the network.
#[derive(Debug, Default)]
pub struct LineSplitter {
    /// Bytes after the last newline seen: the beginning of a line whose end has not arrived yet.
    partial: Vec<u8>,
}

impl LineSplitter {
    /// Adds a chunk; returns the lines it completes (without their newline; blank lines are dropped).
    pub fn push(&mut self, chunk: &[u8]) -> Vec<Vec<u8>> {
        let mut lines = Vec::new();
        for piece in chunk.split_inclusive(|b| *b == b'\n') {
            self.partial.extend_from_slice(piece);
            if piece.ends_with(b"\n") {
                let line = std::mem::take(&mut self.partial);
                lines.extend(non_blank(line));
            }
        }
        lines
    }

    /// The end of the stream: what is left is the last line, if the server did not end it with a newline.
    pub fn finish(self) -> Option<Vec<u8>> {
        non_blank(self.partial)
    }
}

fn non_blank(mut line: Vec<u8>) -> Option<Vec<u8>> {
    while line.last().is_some_and(|b| b.is_ascii_whitespace()) {
        line.pop();
    }
    (!line.iter().all(u8::is_ascii_whitespace)).then_some(line)
}

/// Turns the chunks of a watch response into events. Generic over the chunk stream so tests can feed it chunks.
fn watch_events<S, B>(chunks: S, path: String) -> impl Stream<Item = Result<WatchEvent, ClientError>>
where
    S: Stream<Item = Result<B, ClientError>> + Unpin,
    B: AsRef<[u8]>,
{
    struct State<S> {
        chunks: S,
        splitter: Option<LineSplitter>,
        ready: VecDeque<Vec<u8>>,
        path: String,
    }
    let state = State { chunks, splitter: Some(LineSplitter::default()), ready: VecDeque::new(), path };
    futures::stream::unfold(state, |mut state| async move {
        loop {
            if let Some(line) = state.ready.pop_front() {
                let event = serde_json::from_slice::<WatchEvent>(&line).map_err(|err| decode_error(&state.path, err));
                return Some((event, state));
            }
            // `splitter` is taken when the body ends: then there is nothing more to read.
            let splitter = state.splitter.as_mut()?;
            match state.chunks.next().await {
                Some(Ok(chunk)) => state.ready.extend(splitter.push(chunk.as_ref())),
                Some(Err(err)) => {
                    state.splitter = None;
                    return Some((Err(err), state));
                }
                None => state.ready.extend(state.splitter.take().and_then(LineSplitter::finish)),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(chunks: &[&str]) -> Vec<String> {
        let mut splitter = LineSplitter::default();
        let mut lines: Vec<String> =
            chunks.iter().flat_map(|c| splitter.push(c.as_bytes())).map(|l| String::from_utf8(l).unwrap()).collect();
        lines.extend(splitter.finish().map(|l| String::from_utf8(l).unwrap()));
        lines
    }

    #[test]
    fn a_line_split_across_chunks_is_reassembled() {
        assert_eq!(lines_of(&["{\"a\":", "1}\n{\"b\"", ":2}\n"]), vec!["{\"a\":1}", "{\"b\":2}"]);
    }

    #[test]
    fn several_lines_in_one_chunk_come_out_separately() {
        assert_eq!(lines_of(&["one\ntwo\nthree\n"]), vec!["one", "two", "three"]);
    }

    #[test]
    fn blank_lines_and_carriage_returns_are_dropped_and_a_last_unterminated_line_is_kept() {
        assert_eq!(lines_of(&["one\r\n\n", "\ntwo"]), vec!["one", "two"]);
    }

    #[test]
    fn a_newline_arriving_alone_ends_the_pending_line() {
        assert_eq!(lines_of(&["abc", "\n"]), vec!["abc"]);
    }

    #[tokio::test]
    async fn watch_chunks_become_typed_events() {
        let body = "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\"}}}\n{\"type\":\"BOOKM";
        let rest = "ARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"7\"}}}\n";
        let chunks = futures::stream::iter(vec![Ok::<_, ClientError>(body.as_bytes()), Ok(rest.as_bytes())]);
        let events: Vec<WatchEvent> =
            watch_events(chunks, "/api/v1/pods".into()).map(|e| e.unwrap()).collect::<Vec<_>>().await;
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].type_, WatchEventType::Added);
        assert_eq!(events[1].type_, WatchEventType::Bookmark);
        assert_eq!(events[1].object["metadata"]["resourceVersion"], "7");
    }

    #[test]
    fn an_error_event_carries_the_status_as_an_api_error() {
        let event: WatchEvent = serde_json::from_value(json!({"type": "ERROR", "object": {
            "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Expired", "code": 410,
            "message": "too old resource version: 1 (5)"}}))
        .unwrap();
        let err = event.error().unwrap();
        assert_eq!((err.code, err.reason.as_str()), (410, "Expired"));
    }

    #[test]
    fn urls_are_built_from_the_resource_table_with_encoded_selectors() {
        let deploy = resources::by_kind("apps/v1", "Deployment").unwrap();
        let params = ListParams::default().labels("app=web,tier!=db").fields("metadata.name=web");
        let mut query = params.query();
        query.push(("limit", "500".into()));
        let url =
            build_url("http://127.0.0.1:6443/", &collection_path_or_all(deploy, Some("default")), &query).unwrap();
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:6443/apis/apps/v1/namespaces/default/deployments\
             ?labelSelector=app%3Dweb%2Ctier%21%3Ddb&fieldSelector=metadata.name%3Dweb&limit=500"
        );
        let all = build_url("http://h:1", &collection_path_or_all(deploy, None), &[]).unwrap();
        assert_eq!(all.as_str(), "http://h:1/apis/apps/v1/deployments");
    }

    #[test]
    fn cluster_scoped_objects_ignore_the_namespace_and_namespaced_ones_require_it() {
        let nodes = resources::by_kind("v1", "Node").unwrap();
        assert_eq!(object_path(nodes, Some("default"), "n1").unwrap(), "/api/v1/nodes/n1");
        assert_eq!(object_path(nodes, None, "n1").unwrap(), "/api/v1/nodes/n1");
        let pods = resources::by_kind("v1", "Pod").unwrap();
        assert!(matches!(object_path(pods, None, "p"), Err(ClientError::Usage(_))));
    }

    #[test]
    fn apply_params_ask_for_strict_validation() {
        let query = PatchParams::apply("kubelab").query();
        assert_eq!(query, vec![("fieldManager", "kubelab".into()), ("fieldValidation", "Strict".into())]);
    }

    #[test]
    fn an_error_without_a_status_body_falls_back_to_the_http_status() {
        let err = api_error_from_body(404, "Not Found", &Value::String(String::new()));
        assert_eq!(err.reason, "NotFound");
        assert!(err.message.contains("404 (Not Found)"), "{}", err.message);
        let status = json!({"kind": "Status", "code": 422, "reason": "Invalid", "message": "bad",
            "details": {"name": "web", "kind": "Deployment", "causes": [{"field": "spec.replicas", "message": "m"}]}});
        let err = api_error_from_body(422, "Unprocessable Entity", &status);
        assert_eq!(err.causes()[0].field.as_deref(), Some("spec.replicas"));
    }
}
