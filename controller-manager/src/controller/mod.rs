//! The shape every controller has: observe → reconcile → apply.
//!
//! A controller keeps one kind of object (its *primary*: a ReplicaSet, a Deployment) converging to what it
//! asks for, by reading and writing other objects (its *secondaries*: pods, ReplicaSets). Kubernetes writes all
//! of them the same way, and so do we:
//!
//! ```text
//!   apiserver ──list+watch──▶ informers (one per kind, each with a cache)
//!                                  │ "pod default/web-x7k2p changed"
//!                                  ▼ Source::to_keys: which primary objects care?
//!                             work queue of keys  ──▶ "default/web-5d8f"  (deduplicated)
//!                                  │
//!                    worker:  observe   read the primary and its secondaries from the caches
//!                             reconcile a pure function: cached desired + observed state → actions
//!                             apply     the thin shell: send the actions to the apiserver, record events
//!                                  │ success: forget the key's failures
//!                                  └ failure: add the key back after a back-off (5 ms, 10 ms, ... 1000 s)
//! ```
//!
//! **Level-triggered.** The queue holds *keys*, not events: a reconcile is never told why it runs ("a pod was
//! deleted"), it reads the whole current state and decides from that. So it is safe to run twice, after a
//! crash, or after a missed event, and ten changes in a row cost one reconcile.
//!
//! **Read your own writes.** The caches lag the apiserver by a few milliseconds. A ReplicaSet controller that
//! creates three pods and reconciles again before its cache shows them would create three more. Kubernetes
//! guards against this with *expectations* (it counts the creations it expects to see and skips syncs until it
//! has seen them); we get the same guarantee more simply: [`Controller::apply`] records each write it made in
//! [`Writes`], and the worker waits (up to the configured `cache_timeout`) until the caches show them
//! ([`Lister::wait_for`]). The key stays "being processed" meanwhile, so no other worker reconciles it on stale
//! data. The wait is the framework's, not each controller's, so every controller honours the same timeout.
//! Writes to objects the controller read (a ReplicaSet's scale, a status) also carry the `resourceVersion` they
//! were based on, so a decision made on stale data fails with `409 Conflict` and is retried, instead of
//! overwriting newer state.
//!
//! To write a controller: implement [`Controller`] — `new` builds a [`Source`] per kind it watches (saying how an
//! object of that kind maps to the keys of primary objects) and keeps their [`Lister`]s to read from in
//! `observe`; then `observe`, `reconcile` and `apply` — and start it with [`start`]. Every controller is built
//! from the same two things (a client and the [`Config`]), so `lib.rs` starts them all alike. The ReplicaSet
//! controller (`replicaset/mod.rs`) is the shortest example.
//!
//! Mirrors the structure of every controller in `pkg/controller` (informers, `workqueue`, `syncHandler`) and of
//! kube-rs' `Controller` (a reconciler returning what to do, a requeue time). What we leave out: shared
//! informers (each controller runs its own watches), the periodic resync, and metrics.

mod lister;
pub mod ownership;
pub mod queue;

pub use lister::{Lister, Writes, Written};
pub use queue::{Backoff, WorkQueue};

use crate::Config;
use futures::future::join_all;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kubelab_api::client::{Client, ClientError, ListParams, PatchParams, PatchType, resource_of};
use kubelab_api::informer::Informer;
use kubelab_api::resources::Resource;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;

/// Why applying a reconcile's actions failed. The key is retried after its back-off in every case.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request to the apiserver failed: a conflict with a newer version (the cache was stale), a refusal, or
    /// the apiserver is unreachable.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// An object could not be turned into JSON (a bug rather than bad input, but never worth a panic).
    #[error("cannot encode {what}: {source}")]
    Encode {
        /// What was being encoded, e.g. `pod for ReplicaSet default/web`.
        what: String,
        /// What serde said.
        source: serde_json::Error,
    },
    /// Some of the actions failed; each was logged (and recorded as an event where Kubernetes records one).
    #[error("{failed} of {total} actions failed, the first: {first}")]
    Partial {
        /// How many actions failed.
        failed: usize,
        /// How many were tried.
        total: usize,
        /// The first failure's message.
        first: String,
    },
}

impl Error {
    /// Whether this is only a `409 Conflict`: the cache was behind, a retry with fresh data will do.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Client(ClientError::Api(api)) if api.code == 409)
    }
}

// ANCHOR: reconciled
/// What a reconcile decided: actions for the shell to apply, in order, and optionally when to look again even
/// if nothing changes (a pod becoming available after `minReadySeconds`, a progress deadline to check).
#[derive(Debug, Clone, PartialEq)]
pub struct Reconciled<A> {
    pub actions: Vec<A>,
    pub requeue_after: Option<Duration>,
}

impl<A> Default for Reconciled<A> {
    fn default() -> Self {
        Reconciled { actions: Vec::new(), requeue_after: None }
    }
}

impl<A> Reconciled<A> {
    /// Nothing to do.
    pub fn nothing() -> Self {
        Self::default()
    }

    /// Asks to reconcile again after `delay` at the latest (the earliest request wins).
    pub fn requeue_within(&mut self, delay: Duration) {
        self.requeue_after = Some(self.requeue_after.map_or(delay, |current| current.min(delay)));
    }
}
// ANCHOR_END: reconciled

// ANCHOR: controller
/// One controller: how to connect it to the cluster, observe the state of one primary object, decide, and act.
pub trait Controller: Send + Sync + Sized + 'static {
    /// Everything `reconcile` needs about one primary object, read from the caches (no I/O).
    type Observed: Send + Sync;
    /// One thing to do, e.g. "create a pod from this template", "scale this ReplicaSet to 3".
    type Action: Debug + Send;

    /// Starts an informer per kind the controller watches ([`Source::new`]) and builds the controller over their
    /// [`Lister`]s, taking what it needs from `config`. The same shape for every controller, so that they are all
    /// started alike ([`start`]).
    fn new(client: &Client, config: &Config) -> Result<(Self, Vec<Source>), Error>;

    /// How many keys it reconciles in parallel (`--concurrent-...-syncs`).
    fn workers(config: &Config) -> usize;

    /// The controller's name, for logs: `replicaset-controller`.
    fn name(&self) -> &'static str;

    /// Reads the primary object `key` and what it owns from the caches; `None` if the object is gone (then
    /// there is nothing to do: the garbage collector deletes what it owned).
    fn observe(&self, key: &str) -> Option<Self::Observed>;

    /// Decides what to do. A pure function of what was observed and the time: unit-testable with plain values.
    fn reconcile(&self, observed: &Self::Observed, now: Timestamp) -> Reconciled<Self::Action>;

    /// Sends the actions to the apiserver, in order, recording in `writes` each write that went through (the
    /// worker then waits until the caches show them). Returns an error if any action failed (after trying the
    /// others that do not depend on it).
    fn apply(
        &self,
        observed: &Self::Observed,
        actions: Vec<Self::Action>,
        writes: &mut Writes,
    ) -> impl Future<Output = Result<(), Error>> + Send;
}
// ANCHOR_END: controller

/// How a controller runs: how many workers, how failures are retried, how long to wait for the caches. Derived
/// from the [`Config`] by [`Config::settings_for`], where the defaults are.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Keys reconciled in parallel: the controller's own number ([`Controller::workers`]).
    pub workers: usize,
    /// Back-off of failed keys (5 ms → 1000 s).
    pub backoff: Backoff,
    /// How long a worker waits for the caches to show its own writes before going on anyway. Kubernetes' own
    /// expectations expire after 5 minutes; a watch is normally milliseconds behind.
    pub cache_timeout: Duration,
}

/// Maps a changed object (of a kind a controller watches) to the keys of the primary objects that must be
/// reconciled because of it: a pod to its ReplicaSet, a ReplicaSet to its Deployment, a Deployment to itself.
pub type ToKeys = Box<dyn Fn(&Value) -> Vec<String> + Send + Sync>;

/// One informer feeding a controller's work queue.
pub struct Source {
    informer: Informer,
    to_keys: ToKeys,
    lister: Lister,
}

impl Source {
    /// Starts an informer on `resource` (in every namespace) and returns it with the [`Lister`] the controller
    /// reads from. `to_keys` says which primary keys an object of this kind concerns.
    pub fn new(
        client: &Client,
        resource: &'static Resource,
        to_keys: impl Fn(&Value) -> Vec<String> + Send + Sync + 'static,
    ) -> (Source, Lister) {
        let informer = Informer::spawn(client.clone(), resource, None, ListParams::default());
        let lister = Lister::new(informer.cache.clone());
        (Source { informer, to_keys: Box::new(to_keys), lister: lister.clone() }, lister)
    }
}

// ANCHOR: start
/// Connects controller `C` to the cluster and runs it until the task is aborted, with the workers, back-off and
/// cache timeout of `config`. Returns early only if it cannot start (a kind it needs is not served).
pub async fn start<C: Controller>(client: Client, config: Config) -> Result<(), Error> {
    let (controller, sources) = C::new(&client, &config)?;
    run(Arc::new(controller), sources, config.settings_for::<C>()).await;
    Ok(())
}
// ANCHOR_END: start

// ANCHOR: run
/// Runs `controller` until the task is aborted: feeds the work queue from `sources`, waits for every cache to
/// hold a full list, then starts `settings.workers` workers.
pub async fn run<C: Controller>(controller: Arc<C>, sources: Vec<Source>, settings: Settings) {
    let queue = Arc::new(WorkQueue::new(settings.backoff));
    // Dropping the JoinSet (when this task is aborted) aborts every task in it.
    let mut tasks = JoinSet::new();
    let mut synced = Vec::new();
    for source in sources {
        synced.push(source.informer.synced.clone());
        tasks.spawn(feed(source, queue.clone()));
    }
    // Deciding on a half-filled cache would be deciding on a lie ("no pods: create three").
    join_all(synced.into_iter().map(|mut synced| async move {
        let _ = synced.wait_for(|done| *done).await;
    }))
    .await;
    tracing::info!(controller = controller.name(), "caches synced, starting {} workers", settings.workers);
    for _ in 0..settings.workers.max(1) {
        tasks.spawn(work(controller.clone(), queue.clone(), settings.cache_timeout));
    }
    while tasks.join_next().await.is_some() {}
}

/// Turns one informer's changes into keys on the queue.
async fn feed(mut source: Source, queue: Arc<WorkQueue>) {
    // The keys each object mapped to last time: a deleted object is gone from the cache, and an object whose
    // labels changed may matter to its old owner as much as to its new one.
    let mut last: HashMap<String, Vec<String>> = HashMap::new();
    while let Some(key) = source.informer.changed.recv().await {
        let now = source.lister.cached(&key).map(|object| (source.to_keys)(&object));
        let before = match &now {
            Some(keys) => last.insert(key.clone(), keys.clone()),
            None => last.remove(&key),
        };
        let keys: HashSet<String> = now.into_iter().chain(before).flatten().collect();
        for primary in keys {
            queue.add(primary);
        }
        source.lister.record_seen(&key);
    }
}

/// One worker: take a key, process it, give it back; forever.
async fn work<C: Controller>(controller: Arc<C>, queue: Arc<WorkQueue>, cache_timeout: Duration) {
    loop {
        let key = queue.get().await;
        process(&*controller, &queue, &key, cache_timeout).await;
        queue.done(&key);
    }
}

/// One key: observe, reconcile, apply, wait for the caches to show the writes, and decide when to see the key
/// again.
async fn process<C: Controller>(controller: &C, queue: &WorkQueue, key: &str, cache_timeout: Duration) {
    let Some(observed) = controller.observe(key) else {
        queue.forget(key);
        return;
    };
    let decided = controller.reconcile(&observed, now());
    if !decided.actions.is_empty() {
        tracing::debug!(controller = controller.name(), key, actions = ?decided.actions, "reconciled");
    }
    let mut writes = Writes::default();
    let applied = controller.apply(&observed, decided.actions, &mut writes).await;
    // Read our own writes (even after a failure, for those that went through) before the next reconcile.
    if !writes.wait(cache_timeout).await {
        tracing::warn!(controller = controller.name(), key, "the cache did not catch up with our writes");
    }
    match applied {
        Ok(()) => {
            queue.forget(key);
            if let Some(delay) = decided.requeue_after {
                queue.add_after(key, delay);
            }
        }
        Err(err) => {
            let delay = queue.add_rate_limited(key);
            if err.is_conflict() {
                tracing::debug!(controller = controller.name(), key, "conflict, retrying in {delay:?}");
            } else {
                tracing::warn!(controller = controller.name(), key, error = %err, "retrying in {delay:?}");
            }
        }
    }
}
// ANCHOR_END: run

/// Collects the outcome of several independent actions: the shell tries them all, then reports the first error.
#[derive(Debug, Default)]
pub struct Outcomes {
    total: usize,
    errors: Vec<Error>,
}

impl Outcomes {
    /// Records one action's outcome.
    pub fn record<T>(&mut self, result: Result<T, Error>) -> Option<T> {
        self.total += 1;
        match result {
            Ok(value) => Some(value),
            Err(err) => {
                self.errors.push(err);
                None
            }
        }
    }

    /// Whether any action failed so far.
    pub fn failed(&self) -> bool {
        !self.errors.is_empty()
    }

    /// `Ok` if every action succeeded; the error itself if only one failed.
    pub fn finish(mut self) -> Result<(), Error> {
        match self.errors.len() {
            0 => Ok(()),
            1 => Err(self.errors.remove(0)),
            failed => Err(Error::Partial { failed, total: self.total, first: self.errors[0].to_string() }),
        }
    }
}

/// The JSON of a typed object, for the client's JSON API.
pub fn to_json<T: serde::Serialize>(object: &T, what: impl FnOnce() -> String) -> Result<Value, Error> {
    serde_json::to_value(object).map_err(|source| Error::Encode { what: what(), source })
}

/// Sends a JSON merge patch that carries, in `metadata.resourceVersion`, the version it was based on: if the
/// object changed since, the apiserver answers `409 Conflict` and the key is retried on fresh data. `None` if the
/// object is gone: there is nothing left to patch. (Adoptions, releases, the garbage collector's metadata edits.)
pub async fn patch_unless_changed(
    client: &Client,
    resource: &'static Resource,
    namespace: Option<&str>,
    name: &str,
    patch: &Value,
) -> Result<Option<Written>, Error> {
    let from = patch.pointer("/metadata/resourceVersion").and_then(Value::as_str).unwrap_or_default();
    match client.patch(resource, namespace, name, PatchType::Merge, patch, &PatchParams::default()).await {
        Ok(patched) => Ok(Some(Written::Updated {
            key: key_of(&patched),
            from: from.to_string(),
            to: kubelab_api::object::resource_version(&patched).to_string(),
        })),
        Err(ClientError::Api(err)) if err.code == 404 => Ok(None),
        Err(err) => Err(err.into()),
    }
}

/// Writes `object`'s status through the `status` subresource, based on the `resourceVersion` the object carries
/// (a `409 Conflict` means the cache was behind: the key is retried on fresh data). (ReplicaSet and Deployment
/// statuses.)
pub async fn update_status<K>(client: &Client, object: &K) -> Result<Written, Error>
where
    K: k8s_openapi::Resource + k8s_openapi::Metadata<Ty = ObjectMeta> + serde::Serialize,
{
    let meta = object.metadata();
    let body = to_json(object, || format!("{} status", K::KIND))?;
    let resource = resource_of::<K>()?;
    let name = meta.name.as_deref().unwrap_or_default();
    let written = client.update_status(resource, meta.namespace.as_deref(), name, &body).await?;
    Ok(Written::Updated {
        key: ownership::key(meta),
        from: meta.resource_version.clone().unwrap_or_default(),
        to: kubelab_api::object::resource_version(&written).to_string(),
    })
}

/// `namespace/name` of an object held as JSON (the cache's key).
pub use kubelab_api::informer::key_of;

/// The current time as the API's timestamps hold it (one definition for every component).
pub use kubelab_api::time::now;

#[cfg(test)]
mod tests {
    use super::*;
    use kubelab_api::informer::Cache;
    use tokio::time::Instant;

    /// A controller that writes one pod on every reconcile, and whose pod cache never shows it (its informer is
    /// not running): each key waits for the cache as long as the worker lets it.
    struct Forgetful {
        pods: Lister,
    }

    impl Controller for Forgetful {
        type Observed = ();
        type Action = ();

        fn new(_client: &Client, _config: &Config) -> Result<(Self, Vec<Source>), Error> {
            Ok((Forgetful { pods: Lister::new(Cache::default()) }, Vec::new()))
        }

        fn workers(_config: &Config) -> usize {
            1
        }

        fn name(&self) -> &'static str {
            "forgetful-controller"
        }

        fn observe(&self, _key: &str) -> Option<()> {
            Some(())
        }

        fn reconcile(&self, _observed: &(), _now: Timestamp) -> Reconciled<()> {
            Reconciled { actions: vec![()], requeue_after: None }
        }

        async fn apply(&self, _observed: &(), _actions: Vec<()>, writes: &mut Writes) -> Result<(), Error> {
            writes.push(&self.pods, Written::Created { key: "default/web-x7k2p".into(), at: Instant::now() });
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_key_waits_for_its_writes_as_long_as_the_configured_cache_timeout_and_no_longer() {
        let client = Client::new("http://127.0.0.1:9").unwrap();
        let config = Config { cache_timeout: Duration::from_millis(200), ..Config::default() };
        let (controller, _sources) = Forgetful::new(&client, &config).unwrap();
        let queue = WorkQueue::default();
        let started = Instant::now();
        process(&controller, &queue, "default/web", config.settings_for::<Forgetful>().cache_timeout).await;
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(200), "waited only {waited:?}");
        assert!(waited < Duration::from_secs(5), "waited {waited:?}: the timeout was not the configured one");
    }
}
