//! The cluster store: one small contract, two implementations.
//!
//! Kubernetes keeps every object in etcd, a key-value store with one global, ever-increasing *revision*. Each write
//! bumps the revision and stamps the written key with it (its *mod revision*). That single number gives the API
//! three of its core behaviours for free:
//!
//! - `metadata.resourceVersion` of an object is its mod revision;
//! - optimistic concurrency: an update names the revision it read, and fails if the key has moved on since
//!   (the apiserver answers `409 Conflict`);
//! - watch: "tell me everything that changed after revision N" is a question etcd can answer.
//!
//! [`Store`] is that contract. [`etcd::EtcdStore`] speaks to a real etcd, with keys laid out as Kubernetes lays them
//! out (`/registry/deployments/default/web`). [`embedded::EmbeddedStore`] keeps the same semantics in a file on
//! disk, so that `kubelab up` needs nothing installed. Both pass the very same test suite ([`suite`]).
//!
//! What we leave out: etcd's leases for TTL keys (Events in Kubernetes expire after an hour), range reads at a past
//! revision (Kubernetes serves consistent pages of a long list from one revision), and the apiserver's watch cache.

pub mod embedded;
pub mod etcd;
pub mod etcd_server;
#[cfg(test)]
pub mod suite;

use futures::stream::BoxStream;

/// The store's logical clock: every write increments it. Starts at 1 for an empty store.
pub type Revision = i64;

// ANCHOR: event
/// A stored object: the JSON bytes and the revision that last wrote them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Vec<u8>,
    /// The revision of the write that created or last changed this key (`resourceVersion`).
    pub mod_revision: Revision,
}

/// One change seen by a watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The key was created (`prev` is `None`) or changed (`prev` is what it held before).
    Put { kv: KeyValue, prev: Option<KeyValue> },
    /// The key was deleted at `revision`; `prev` is what it held until then.
    Delete { prev: KeyValue, revision: Revision },
}
// ANCHOR_END: event

impl Event {
    /// The revision at which this change happened.
    pub fn revision(&self) -> Revision {
        match self {
            Event::Put { kv, .. } => kv.mod_revision,
            Event::Delete { revision, .. } => *revision,
        }
    }
}

/// A stream of changes, in revision order.
pub type WatchStream = BoxStream<'static, Result<Event, StoreError>>;

// ANCHOR: store_error
/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// `create` found the key already there.
    #[error("key {0} already exists")]
    AlreadyExists(String),
    /// The key does not exist.
    #[error("key {0} not found")]
    NotFound(String),
    /// The key's mod revision is not the expected one: someone else wrote it first.
    #[error("key {key} was modified: expected revision {expected}, found {found}")]
    Conflict { key: String, expected: Revision, found: Revision },
    /// A watch asked to start before the oldest revision the store still remembers.
    #[error("revision {requested} has been compacted; the oldest available is {oldest}")]
    Compacted { requested: Revision, oldest: Revision },
    /// The store cannot be reached right now (etcd down); callers should retry later.
    #[error("the cluster store is unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a corrupt file, a bug.
    #[error("cluster store error: {0}")]
    Internal(String),
}
// ANCHOR_END: store_error

// ANCHOR: store
/// The contract between the apiserver and its storage: get, list, create, update-if-revision, delete, watch.
///
/// Values are opaque bytes to the store (the apiserver writes JSON). Every method is atomic.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Reads one key.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError>;

    /// Reads every key that starts with `prefix`, sorted by key, and the store revision the read saw.
    async fn list(&self, prefix: &str) -> Result<(Vec<KeyValue>, Revision), StoreError>;

    /// Writes a new key; fails with `AlreadyExists` if it is present. Returns the new revision.
    async fn create(&self, key: &str, value: Vec<u8>) -> Result<Revision, StoreError>;

    /// Overwrites a key only if its mod revision is still `expected`; otherwise `Conflict` (or `NotFound`).
    /// Returns the new revision.
    async fn update(&self, key: &str, value: Vec<u8>, expected: Revision) -> Result<Revision, StoreError>;

    /// Deletes a key, only if its mod revision is `expected` when given. Returns what it held and the revision of
    /// the deletion.
    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<(KeyValue, Revision), StoreError>;

    /// Streams every change to keys under `prefix` made *after* revision `after` (0: from now on).
    /// Fails with `Compacted` when `after` is older than the history the store keeps.
    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StoreError>;

    /// The store's current revision.
    async fn current_revision(&self) -> Result<Revision, StoreError>;
}
// ANCHOR_END: store
