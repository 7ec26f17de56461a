//! Informers: list, then watch, then keep a local copy — how every component follows the cluster.
//!
//! A controller could ask the apiserver for the objects it cares about every second. It would be slow and would
//! miss what changed in between. Instead, client-go's *informer* (kube-rs calls it `watcher` + `reflector`) does:
//!
//! 1. **list** the objects, remember the list's `resourceVersion`;
//! 2. **watch** from that version: every change after the list arrives as an event, nothing is missed;
//!
//!    Steps 1 and 2 can be one request: a *streaming list* (watch-list, KEP-3157) is a watch that first sends
//!    every object as an ADDED event, then a bookmark saying "that was all of them", then the changes. The server
//!    sends the objects one by one instead of encoding one large list. The informer asks for one first and, when
//!    the server refuses
//!    (`422`, as kube-apiserver does with its `WatchList` feature off), lists and watches instead, as client-go's
//!    reflector does;
//! 3. keep a **cache** of the objects, updated by each event, that the component reads instead of the apiserver;
//! 4. when the watch ends (a timeout, a restart of the apiserver) **watch again** from the last version seen;
//!    when the server says that version is too old (`410 Expired`), go back to 1 — the cache is rebuilt from a
//!    fresh list.
//!
//! [`watch_changes`] is steps 1, 2 and 4 as a stream of [`Change`]s; [`Informer`] adds the cache and tells its
//! owner *which* object changed, not how: reconcilers are level-triggered and read the cache themselves.
//!
//! What we leave out: client-go's shared informer factory (one watch per kind shared by every controller of a
//! process) and its resync timer.

use crate::client::{Client, ClientError, ListParams, WatchEventType, WatchStream};
use crate::resources::Resource;
use crate::{ApiError, object};
use futures::{Stream, StreamExt};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::mpsc;

// ANCHOR: change
/// What an informer learns from the apiserver.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A fresh, complete list: replace everything known so far (at start and after `410 Expired`).
    Restarted(Vec<Value>),
    /// An object was created or changed.
    Applied(Value),
    /// An object was deleted (its last state).
    Deleted(Value),
}
// ANCHOR_END: change

/// `namespace/name`, or `name` for cluster-scoped objects: how caches and work queues name objects.
pub fn key_of(object: &Value) -> String {
    match object::namespace(object) {
        "" => object::name(object).to_string(),
        ns => format!("{ns}/{}", object::name(object)),
    }
}

/// How long the initial events of a streaming list may take to end with their bookmark. A server too old to know
/// `sendInitialEvents` ignores it, sends the objects and then never that bookmark: after this long the informer
/// falls back to list + watch.
const INITIAL_EVENTS_TIMEOUT: Duration = Duration::from_secs(60);

/// Lists and watches `resource` forever, as a stream of changes. Errors are retried with back-off (1 s doubling to
/// 30 s); the stream only yields them so the caller can log them.
pub fn watch_changes(
    client: Client,
    resource: &'static Resource,
    namespace: Option<String>,
    params: ListParams,
) -> impl Stream<Item = Result<Change, ClientError>> + Send {
    let (tx, rx) = mpsc::channel(64);
    let task = tokio::spawn(async move {
        let mut backoff = Duration::from_secs(1);
        // Outer loop: (re)list. Inner loop: (re)watch from the last version seen.
        'list: loop {
            // ANCHOR: informer_list
            // 1. The objects as they are now, and the version they were read at: a streaming list when the server
            //    has it (the watch then simply goes on), a list otherwise — as client-go's reflector falls back.
            let (items, mut version, mut streaming) = match streaming_list(&client, resource, &namespace, &params).await
            {
                Ok((items, version, events)) => (items, version, Some(events)),
                Err(refused) => {
                    let plural = resource.plural;
                    tracing::debug!(resource = plural, error = %refused, "informer: no streaming list, listing");
                    match client.list(resource, namespace.as_deref(), &params).await {
                        Ok(list) => (list.items, list.resource_version, None),
                        Err(err) => {
                            if tx.send(Err(err)).await.is_err() {
                                return;
                            }
                            tokio::time::sleep(backoff).await;
                            backoff = (backoff * 2).min(Duration::from_secs(30));
                            continue 'list;
                        }
                    }
                }
            };
            if tx.send(Ok(Change::Restarted(items))).await.is_err() {
                return;
            }
            // ANCHOR_END: informer_list
            // ANCHOR: informer_watch
            loop {
                let watch = match streaming.take() {
                    Some(events) => Ok(events),
                    None => client.watch(resource, namespace.as_deref(), &params, &version).await,
                };
                let mut events = match watch {
                    Ok(events) => events,
                    Err(err) => {
                        let expired = matches!(&err, ClientError::Api(ApiError { code: 410, .. }));
                        if tx.send(Err(err)).await.is_err() {
                            return;
                        }
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                        if expired {
                            continue 'list;
                        }
                        continue;
                    }
                };
                backoff = Duration::from_secs(1);
                while let Some(event) = events.next().await {
                    let change = match event {
                        Ok(event) => match event.type_ {
                            WatchEventType::Added | WatchEventType::Modified => Change::Applied(event.object),
                            WatchEventType::Deleted => Change::Deleted(event.object),
                            WatchEventType::Bookmark => {
                                version = object::resource_version(&event.object).to_string();
                                continue;
                            }
                            WatchEventType::Error => {
                                let err = event.error().unwrap_or_else(|| ApiError::internal("watch error"));
                                let expired = err.code == 410;
                                let _ = tx.send(Err(ClientError::Api(err))).await;
                                if expired {
                                    continue 'list;
                                }
                                break;
                            }
                        },
                        Err(err) => {
                            let _ = tx.send(Err(err)).await;
                            break;
                        }
                    };
                    if let Change::Applied(object) | Change::Deleted(object) = &change {
                        version = object::resource_version(object).to_string();
                    }
                    if tx.send(Ok(change)).await.is_err() {
                        return;
                    }
                }
                // The watch ended (server timeout, apiserver restart): watch again from where we were.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            // ANCHOR_END: informer_watch
        }
    });
    // The stream owns the task: dropping the stream (its component stopped) ends the list and watch.
    let guard = AbortOnDrop(task);
    let mut rx = rx;
    futures::stream::poll_fn(move |cx| {
        let _owned = &guard;
        rx.poll_recv(cx)
    })
}

// ANCHOR: streaming_list
/// A streaming list ([`Client::watch_list`]): collects the initial events until the bookmark that ends them, and
/// returns the objects, the version they were read at, and the watch, which goes on with the changes after it.
/// Any error — the server refused (`422`), the watch broke, the bookmark never came — means "list instead".
async fn streaming_list(
    client: &Client,
    resource: &'static Resource,
    namespace: &Option<String>,
    params: &ListParams,
) -> Result<(Vec<Value>, String, WatchStream), ClientError> {
    let mut events = client.watch_list(resource, namespace.as_deref(), params).await?;
    let initial = async {
        // Keyed, so that the (unexpected) MODIFIED or DELETED of an object already sent replaces or removes it.
        let mut objects = BTreeMap::new();
        while let Some(event) = events.next().await {
            let event = event?;
            match event.type_ {
                WatchEventType::Added | WatchEventType::Modified => {
                    objects.insert(key_of(&event.object), event.object);
                }
                WatchEventType::Deleted => {
                    objects.remove(&key_of(&event.object));
                }
                WatchEventType::Bookmark if event.is_initial_events_end() => {
                    let version = object::resource_version(&event.object).to_string();
                    return Ok((objects.into_values().collect(), version));
                }
                WatchEventType::Bookmark => {}
                WatchEventType::Error => {
                    return Err(ClientError::Api(event.error().unwrap_or_else(|| ApiError::internal("watch error"))));
                }
            }
        }
        Err(ClientError::Api(ApiError::internal("the streaming list ended before its initial events did")))
    };
    let (items, version) = tokio::time::timeout(INITIAL_EVENTS_TIMEOUT, initial).await.map_err(|_| {
        ClientError::Api(ApiError::timeout(format!(
            "no end of the initial events after {INITIAL_EVENTS_TIMEOUT:?}: the server ignores sendInitialEvents"
        )))
    })??;
    Ok((items, version, events))
}
// ANCHOR_END: streaming_list

/// Aborts a background task when dropped, so that a stopped component's watches end with it.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A read-only, always-current copy of the objects an informer follows.
#[derive(Debug, Clone, Default)]
pub struct Cache {
    /// A std `RwLock`, not Tokio's: it is never held across an `.await`, and readers vastly outnumber the one
    /// writer.
    objects: Arc<RwLock<BTreeMap<String, Value>>>,
}

impl Cache {
    /// The object with this key (`namespace/name`).
    pub fn get(&self, key: &str) -> Option<Value> {
        self.objects.read().unwrap_or_else(|poisoned| poisoned.into_inner()).get(key).cloned()
    }

    /// Every object, in key order.
    pub fn list(&self) -> Vec<Value> {
        self.objects.read().unwrap_or_else(|poisoned| poisoned.into_inner()).values().cloned().collect()
    }

    /// Every object as its typed form; objects that do not parse are skipped.
    pub fn list_typed<K: DeserializeOwned>(&self) -> Vec<K> {
        self.list().into_iter().filter_map(|o| serde_json::from_value(o).ok()).collect()
    }

    /// One object as its typed form.
    pub fn get_typed<K: DeserializeOwned>(&self, key: &str) -> Option<K> {
        self.get(key).and_then(|o| serde_json::from_value(o).ok())
    }

    // ANCHOR: cache_apply
    /// Applies a change; returns the keys it touched.
    fn apply(&self, change: Change) -> Vec<String> {
        let mut objects = self.objects.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        match change {
            Change::Restarted(items) => {
                let mut keys: Vec<String> = objects.keys().cloned().collect();
                objects.clear();
                for item in items {
                    let key = key_of(&item);
                    keys.push(key.clone());
                    objects.insert(key, item);
                }
                keys.sort();
                keys.dedup();
                keys
            }
            Change::Applied(object) => {
                let key = key_of(&object);
                objects.insert(key.clone(), object);
                vec![key]
            }
            Change::Deleted(object) => {
                let key = key_of(&object);
                objects.remove(&key);
                vec![key]
            }
        }
    }
    // ANCHOR_END: cache_apply
}

// ANCHOR: informer_spawn
/// A running informer: its cache, and a channel of the keys that changed.
pub struct Informer {
    pub cache: Cache,
    /// Keys of objects that changed (created, updated, deleted, or touched by a relist). A key may repeat.
    pub changed: mpsc::UnboundedReceiver<String>,
    /// Resolves once the first list has filled the cache.
    pub synced: tokio::sync::watch::Receiver<bool>,
    /// Stops the informer when it is dropped.
    _task: AbortOnDrop,
}

impl Informer {
    /// Starts following `resource` (in `namespace`, or everywhere) in the background.
    pub fn spawn(client: Client, resource: &'static Resource, namespace: Option<String>, params: ListParams) -> Self {
        let cache = Cache::default();
        let (keys_tx, changed) = mpsc::unbounded_channel();
        let (synced_tx, synced) = tokio::sync::watch::channel(false);
        let writer = cache.clone();
        let task = tokio::spawn(async move {
            let mut changes = Box::pin(watch_changes(client, resource, namespace, params));
            while let Some(change) = changes.next().await {
                match change {
                    Ok(change) => {
                        let restarted = matches!(change, Change::Restarted(_));
                        for key in writer.apply(change) {
                            if keys_tx.send(key).is_err() {
                                return;
                            }
                        }
                        if restarted {
                            let _ = synced_tx.send(true);
                        }
                    }
                    Err(err) => tracing::warn!(resource = resource.plural, error = %err, "informer: retrying"),
                }
            }
        });
        Informer { cache, changed, synced, _task: AbortOnDrop(task) }
    }
    // ANCHOR_END: informer_spawn

    /// Waits until the cache holds a complete list.
    pub async fn wait_synced(&mut self) {
        let _ = self.synced.wait_for(|synced| *synced).await;
    }
}
