//! Listers: what a controller reads, and how it waits until the cache shows its own writes.
//!
//! A [`Lister`] is a read-only view of one informer's cache (client-go's name). It also remembers which keys the
//! informer reported, so that a shell can wait, after writing, until the cache shows the result (see "Read your
//! own writes" in [`super`]). [`Writes`] collects what one `apply` wrote, for the worker to wait for.

use kubelab_api::informer::Cache;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// A read-only view of one informer's cache (client-go calls it a *lister*), able to wait until the cache shows
/// a write.
#[derive(Clone)]
pub struct Lister {
    cache: Cache,
    seen: Arc<Seen>,
}

/// Which keys the informer has reported, and when, so that waiting for a creation cannot miss an object that
/// was created and deleted again before anyone looked at the cache.
#[derive(Default)]
struct Seen {
    keys: Mutex<HashMap<String, Instant>>,
    /// Woken every time a key is reported.
    changed: Notify,
}

/// How long a key is remembered as seen; longer than any wait for the cache.
const SEEN_RETENTION: Duration = Duration::from_secs(600);

impl Seen {
    fn record(&self, key: &str) {
        let now = Instant::now();
        let mut keys = self.keys.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        keys.insert(key.to_string(), now);
        if keys.len() > 4096 {
            keys.retain(|_, at| now.duration_since(*at) < SEEN_RETENTION);
        }
        drop(keys);
        self.changed.notify_waiters();
    }

    fn since(&self, key: &str, since: Instant) -> bool {
        let keys = self.keys.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        keys.get(key).is_some_and(|at| *at >= since)
    }
}

/// A write the shell made, so that it can wait for the cache to show it.
#[derive(Debug, Clone, PartialEq)]
pub enum Written {
    /// An object was created with this key at this time.
    Created { key: String, at: Instant },
    /// An object was changed from `from` (the resourceVersion we read) to `to` (the one the server answered).
    Updated { key: String, from: String, to: String },
    /// An object was deleted (or marked for deletion).
    Deleted { key: String },
}

impl Lister {
    /// A lister over an informer's cache.
    pub(super) fn new(cache: Cache) -> Self {
        Lister { cache, seen: Arc::new(Seen::default()) }
    }

    /// The object with this key, as JSON.
    pub(super) fn cached(&self, key: &str) -> Option<Value> {
        self.cache.get(key)
    }

    /// Records that the informer reported `key`, and wakes whoever waits for the cache.
    pub(super) fn record_seen(&self, key: &str) {
        self.seen.record(key);
    }

    /// The object with this key, typed; `None` if absent (or not of this type).
    pub fn get<K: DeserializeOwned>(&self, key: &str) -> Option<K> {
        self.cache.get_typed(key)
    }

    /// The objects of one namespace, typed.
    pub fn list_in<K: DeserializeOwned>(&self, namespace: &str) -> Vec<K> {
        self.cache
            .list()
            .into_iter()
            .filter(|object| kubelab_api::object::namespace(object) == namespace)
            .filter_map(|object| serde_json::from_value(object).ok())
            .collect()
    }

    /// Every object, as JSON.
    pub fn list_values(&self) -> Vec<Value> {
        self.cache.list()
    }

    /// Whether the cache shows `write` (or something that came after it).
    pub fn shows(&self, write: &Written) -> bool {
        match write {
            Written::Created { key, at } => self.cache.get(key).is_some() || self.seen.since(key, *at),
            Written::Updated { key, from, to } => {
                from == to
                    || self.cache.get(key).is_none_or(|object| kubelab_api::object::resource_version(&object) != from)
            }
            Written::Deleted { key } => self
                .cache
                .get(key)
                .is_none_or(|object| object.pointer("/metadata/deletionTimestamp").is_some_and(|t| !t.is_null())),
        }
    }

    // ANCHOR: wait_for
    /// Waits until the cache shows every write in `writes`, or `timeout` passes. Returns whether it caught up.
    pub async fn wait_for(&self, writes: &[Written], timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            // Ask to be woken before looking, so that a change between the look and the wait is not missed.
            let changed = self.seen.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if writes.iter().all(|write| self.shows(write)) {
                return true;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return writes.iter().all(|write| self.shows(write));
            }
        }
    }
    // ANCHOR_END: wait_for
}

/// The writes one `apply` made, each with the cache that will show it, so that the worker can wait until they
/// are all visible before the key is reconciled again ("Read your own writes" in [`super`]).
#[derive(Default)]
pub struct Writes {
    writes: Vec<(Lister, Written)>,
}

impl Writes {
    /// Records one write, to be seen in `lister`'s cache.
    pub fn push(&mut self, lister: &Lister, written: Written) {
        self.writes.push((lister.clone(), written));
    }

    /// Records several writes to be seen in the same cache.
    pub fn extend(&mut self, lister: &Lister, written: impl IntoIterator<Item = Written>) {
        self.writes.extend(written.into_iter().map(|w| (lister.clone(), w)));
    }

    /// Waits until every cache shows its writes, or `timeout` passes (for all of them together). Returns whether
    /// they all caught up.
    pub async fn wait(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        for (lister, written) in &self.writes {
            let left = deadline.saturating_duration_since(Instant::now());
            if !lister.wait_for(std::slice::from_ref(written), left).await {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_to_several_caches_share_one_deadline() {
        let never = |key: &str| Written::Created { key: key.into(), at: Instant::now() };
        let (pods, replica_sets) = (Lister::new(Cache::default()), Lister::new(Cache::default()));
        let mut writes = Writes::default();
        writes.push(&pods, never("default/a"));
        writes.push(&replica_sets, never("default/b"));
        let started = Instant::now();
        assert!(!writes.wait(Duration::from_millis(200)).await);
        assert!(started.elapsed() < Duration::from_millis(390), "{:?}", started.elapsed());
        // A deletion of something the cache never held is shown at once.
        let mut shown = Writes::default();
        shown.push(&pods, Written::Deleted { key: "default/gone".into() });
        assert!(shown.wait(Duration::from_secs(60)).await);
    }
}
