//! The registry: what the apiserver does with an object between the HTTP request and the store.
//!
//! Kubernetes calls this layer the *generic registry* (`k8s.io/apiserver/pkg/registry/generic/registry/store.go`):
//! one implementation of get/list/create/update/delete/watch for every resource, parameterised by a per-kind
//! *strategy* (defaulting, validation, which fields are status). Ours is parameterised by the
//! [`Resource`] table entry and its [`kubelab_api::kinds::Rules`].
//!
//! The steps every write goes through, in order:
//!
//! 1. **decode** — read the body as the kind's typed struct: unknown fields are found here;
//! 2. **system metadata** — uid, creationTimestamp, generation are set by the server, never by the client;
//! 3. **defaults**, then **validation** — 422 `Invalid` with a field path per problem;
//! 4. **admission** — e.g. the namespace must exist and not be terminating;
//! 5. **store** — a transaction that only succeeds if nobody wrote the object since we read it (409 otherwise).
//!
//! The object's `resourceVersion` is not stored inside it: it *is* the store's mod revision, stamped on every read.

mod delete;
mod namespaces;
mod subresources;
mod watch;
pub mod watch_list;
mod write;

pub use delete::DeleteOptions;
pub use watch::WatchEvent;
pub use watch_list::{ListQuery, validate_list_query};
pub use write::{FieldValidation, Part, WriteOptions, Written};

use crate::store::{KeyValue, Revision, Store, StoreError};
use kubelab_api::selectors::{FieldSelector, LabelSelector};
use kubelab_api::{ApiError, Resource, object};
use serde_json::Value;
use std::sync::Arc;

/// The generic registry over one store.
#[derive(Clone)]
pub struct Registry {
    store: Arc<dyn Store>,
    /// Which namespaces exist, kept current by a watch, so that creates need not read them from the store.
    namespaces: namespaces::NamespaceCache,
    /// The task following the namespaces; [`Registry::stop`] ends it.
    follow: Arc<std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>>,
    /// Cluster IPs and node ports for Services, kept in the store beside the objects.
    allocators: crate::allocator::ServiceAllocators,
}

/// What a list or watch asks for.
#[derive(Debug, Default, Clone)]
pub struct ListOptions {
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
    /// Page size; 0 means everything.
    pub limit: usize,
    /// The `continue` token of the previous page.
    pub continue_token: Option<String>,
}

/// One page of a list.
pub struct ListPage {
    pub items: Vec<Value>,
    /// The store revision the list was read at: a watch from here misses nothing.
    pub resource_version: Revision,
    /// Token for the next page, when there is one.
    pub continue_token: Option<String>,
}

/// Label and field selectors, parsed once per request.
pub(crate) struct Filter {
    labels: LabelSelector,
    fields: FieldSelector,
}

impl Filter {
    pub(crate) fn new(resource: &Resource, options: &ListOptions) -> Result<Self, ApiError> {
        let labels = LabelSelector::parse(options.label_selector.as_deref().unwrap_or(""))
            .map_err(|err| ApiError::bad_request(err.to_string()))?;
        let fields = FieldSelector::parse(options.field_selector.as_deref().unwrap_or(""))
            .map_err(|err| ApiError::bad_request(err.to_string()))?;
        fields.check_supported(resource.kind).map_err(|err| ApiError::bad_request(err.to_string()))?;
        Ok(Filter { labels, fields })
    }

    pub(crate) fn matches(&self, object: &Value) -> bool {
        self.labels.matches(&object::labels(object)) && self.fields.matches(object).unwrap_or(false)
    }
}

/// Maps store errors to API errors for the object at hand.
pub(crate) fn store_error(resource: &Resource, name: &str, err: StoreError) -> ApiError {
    match err {
        StoreError::AlreadyExists(_) => ApiError::already_exists(resource.group, resource.plural, name),
        StoreError::NotFound(_) => ApiError::not_found(resource.group, resource.plural, name),
        StoreError::Conflict { .. } => ApiError::conflict(resource.group, resource.plural, name),
        StoreError::Compacted { requested, oldest } => {
            ApiError::expired(format!("too old resource version: {requested} ({oldest})"))
        }
        StoreError::Unavailable(msg) => ApiError::unavailable(msg),
        StoreError::Internal(msg) => ApiError::internal(msg),
    }
}

/// Turns stored bytes into the object a client sees: JSON with `resourceVersion` set to the mod revision.
pub(crate) fn decode_stored(kv: &KeyValue) -> Result<Value, ApiError> {
    let mut object: Value = serde_json::from_slice(&kv.value)
        .map_err(|err| ApiError::internal(format!("stored object {} is not valid JSON: {err}", kv.key)))?;
    object::set_meta(&mut object, "resourceVersion", kv.mod_revision.to_string());
    Ok(object)
}

/// The bytes we store: the object without its `resourceVersion`, which the store itself keeps.
pub(crate) fn encode_for_store(object: &Value) -> Result<Vec<u8>, ApiError> {
    let mut object = object.clone();
    object::metadata_mut(&mut object).remove("resourceVersion");
    serde_json::to_vec(&object).map_err(|err| ApiError::internal(err.to_string()))
}

impl Registry {
    /// A registry over `store`; starts following the namespaces in the background (so call it inside a Tokio
    /// runtime).
    pub fn new(store: Arc<dyn Store>) -> Self {
        let namespaces = namespaces::NamespaceCache::default();
        let follow = Arc::new(std::sync::Mutex::new(Some(namespaces.follow(store.clone()))));
        let allocators =
            crate::allocator::ServiceAllocators::new(store.clone(), Default::default(), Default::default());
        Registry { store, namespaces, follow, allocators }
    }

    /// Hands out Service cluster IPs from `ips` and node ports from `ports` (Kubernetes' defaults otherwise).
    pub fn with_service_ranges(mut self, ips: crate::allocator::IpRange, ports: crate::allocator::PortRange) -> Self {
        self.allocators = crate::allocator::ServiceAllocators::new(self.store.clone(), ips, ports);
        self
    }

    /// Stops the registry's background work and waits until it has let go of the store.
    pub async fn stop(&self) {
        let task = self.follow.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }

    /// The store, for health checks.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Reads one object with its stored mod revision.
    pub(crate) async fn read(
        &self,
        resource: &Resource,
        namespace: &str,
        name: &str,
    ) -> Result<(Value, Revision), ApiError> {
        let key = resource.storage_key(namespace, name);
        match self.store.get(&key).await.map_err(|err| store_error(resource, name, err))? {
            Some(kv) => Ok((decode_stored(&kv)?, kv.mod_revision)),
            None => Err(ApiError::not_found(resource.group, resource.plural, name)),
        }
    }

    /// `GET .../<plural>/<name>`.
    pub async fn get(&self, resource: &Resource, namespace: &str, name: &str) -> Result<Value, ApiError> {
        Ok(self.read(resource, namespace, name).await?.0)
    }

    /// `GET .../<plural>`: every object under the prefix that matches the selectors, a page at a time.
    ///
    /// Simplification: each page is read from the current state, starting after the last key of the previous
    /// page; Kubernetes reads every page at the revision of the first one.
    pub async fn list(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        options: &ListOptions,
    ) -> Result<ListPage, ApiError> {
        let filter = Filter::new(resource, options)?;
        let prefix = resource.storage_list_prefix(namespace);
        let (kvs, revision) = self.store.list(&prefix).await.map_err(|err| store_error(resource, "", err))?;
        let start_after = options.continue_token.as_deref().map(decode_continue).transpose()?;
        let mut items = Vec::new();
        let mut last_key = None;
        let mut more = false;
        for kv in &kvs {
            if start_after.as_deref().is_some_and(|after| kv.key.as_str() <= after) {
                continue;
            }
            let object = decode_stored(kv)?;
            if !filter.matches(&object) {
                continue;
            }
            if options.limit > 0 && items.len() == options.limit {
                more = true;
                break;
            }
            items.push(object);
            last_key = Some(kv.key.clone());
        }
        let continue_token = if more { last_key.map(|key| encode_continue(&key)) } else { None };
        Ok(ListPage { items, resource_version: revision, continue_token })
    }
}

/// The continue token is the last key returned, hex-encoded so that it is opaque and URL-safe.
fn encode_continue(key: &str) -> String {
    key.bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode_continue(token: &str) -> Result<String, ApiError> {
    let bad = || ApiError::bad_request(format!("continue key is not valid: {token:?}"));
    if !token.len().is_multiple_of(2) {
        return Err(bad());
    }
    let bytes: Result<Vec<u8>, _> =
        (0..token.len()).step_by(2).map(|i| u8::from_str_radix(token.get(i..i + 2).unwrap_or("zz"), 16)).collect();
    String::from_utf8(bytes.map_err(|_| bad())?).map_err(|_| bad())
}
