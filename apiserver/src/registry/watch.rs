//! Watch: a list that never ends.
//!
//! Every component of a cluster is driven by watches: the scheduler watches pods without a node, the kubelet
//! the pods bound to its node, controllers their objects. A watch starts from a `resourceVersion` — usually the
//! one a list returned — and streams every later change, so list + watch together miss nothing.
//!
//! A client may also ask for a *streaming list* (`sendInitialEvents=true`): the current objects as events, then
//! a bookmark saying "that was all of them", then the changes. [`super::watch_list`] decides what is sent first.
//!
//! The store reports raw key changes; here they become Kubernetes events, *after* applying the selectors.
//! A change can move an object into or out of a selection (a pod relabelled, a pod getting a `spec.nodeName`):
//! then the watcher sees it ADDED or DELETED, as Kubernetes' watch cache does.

use super::watch_list::{ListQuery, WatchStart, initial_events, validate_list_query, watch_start};
use super::{Filter, ListOptions, Registry, decode_stored, store_error};
use crate::store::{Event, Revision};
use futures::StreamExt;
use futures::stream::BoxStream;
use kubelab_api::{ApiError, Resource, object};
use serde_json::Value;
use std::time::Duration;

/// One event of a watch, as sent on the wire (`{"type":"ADDED","object":{...}}`).
#[derive(Debug, Clone, PartialEq)]
pub enum WatchEvent {
    Added(Value),
    Modified(Value),
    Deleted(Value),
    /// "Nothing you care about changed up to this revision": lets a client resume from a recent version.
    Bookmark(Revision),
    /// The bookmark that ends the initial events of a streaming list: every object that existed at this revision
    /// has been sent (see [`super::watch_list`]).
    InitialEventsEnd(Revision),
    /// The watch cannot go on (e.g. `410 Expired`); the stream ends after it.
    Error(ApiError),
}

impl Registry {
    /// Starts a watch. Where it starts — with the current objects (and, for a streaming list, the bookmark that
    /// ends them) or only with the changes after a revision — is [`watch_start`]'s decision, what it sends first
    /// [`initial_events`]'s. `bookmark_every` is `Some` when the client asked for bookmarks.
    pub async fn watch(
        &self,
        resource: &'static Resource,
        namespace: Option<&str>,
        options: &ListOptions,
        query: &ListQuery,
        bookmark_every: Option<Duration>,
    ) -> Result<BoxStream<'static, WatchEvent>, ApiError> {
        validate_list_query(query)?;
        let filter = Filter::new(resource, options)?;
        let start = watch_start(query)?;
        let prefix = resource.storage_list_prefix(namespace);
        let (initial, from) = match start {
            WatchStart::Initial { .. } => {
                let (kvs, revision) = self.store.list(&prefix).await.map_err(|err| store_error(resource, "", err))?;
                let objects = kvs.iter().map(decode_stored).collect::<Result<Vec<_>, _>>()?;
                (initial_events(&start, objects, &filter, revision), revision)
            }
            WatchStart::ChangesAfter(revision) => (Vec::new(), revision),
            WatchStart::ChangesFromNow => {
                (Vec::new(), self.store.current_revision().await.map_err(|err| store_error(resource, "", err))?)
            }
        };
        if let Some(WatchEvent::Error(_)) = initial.first() {
            return Ok(futures::stream::iter(initial).boxed());
        }
        let changes = match self.store.watch(&prefix, from).await {
            Ok(changes) => changes,
            // Too old: Kubernetes answers 200 and a single ERROR event carrying 410, and clients re-list.
            Err(err) => return Ok(futures::stream::iter([WatchEvent::Error(store_error(resource, "", err))]).boxed()),
        };

        let (tx, rx) = tokio::sync::mpsc::channel(256);
        tokio::spawn(async move {
            let mut changes = changes;
            let mut last = from;
            for event in initial {
                if tx.send(event).await.is_err() {
                    return;
                }
            }
            let mut ticker = tokio::time::interval(bookmark_every.unwrap_or(Duration::from_secs(3600)));
            ticker.tick().await; // the first tick is immediate
            loop {
                let event = tokio::select! {
                    change = changes.next() => match change {
                        Some(Ok(change)) => {
                            last = change.revision();
                            match to_watch_event(&filter, change) {
                                Ok(Some(event)) => event,
                                Ok(None) => continue,
                                Err(err) => WatchEvent::Error(err),
                            }
                        }
                        Some(Err(err)) => WatchEvent::Error(store_error(resource, "", err)),
                        None => return,
                    },
                    _ = ticker.tick(), if bookmark_every.is_some() => WatchEvent::Bookmark(last),
                    _ = tx.closed() => return,
                };
                let is_error = matches!(event, WatchEvent::Error(_));
                if tx.send(event).await.is_err() || is_error {
                    return;
                }
            }
        });
        Ok(tokio_stream::wrappers::ReceiverStream::new(rx).boxed())
    }
}

// ANCHOR: to_watch_event
/// Turns a store change into what a watcher with `filter` should see, if anything.
fn to_watch_event(filter: &Filter, change: Event) -> Result<Option<WatchEvent>, ApiError> {
    Ok(match change {
        Event::Put { kv, prev } => {
            let object = decode_stored(&kv)?;
            let now_matches = filter.matches(&object);
            let matched_before = match &prev {
                Some(prev) => Some(filter.matches(&decode_stored(prev)?)),
                None => None,
            };
            match (matched_before, now_matches) {
                (None | Some(false), true) => Some(WatchEvent::Added(object)),
                (Some(true), true) => Some(WatchEvent::Modified(object)),
                (Some(true), false) => Some(WatchEvent::Deleted(object)),
                _ => None,
            }
        }
        Event::Delete { prev, revision } => {
            let mut object = decode_stored(&prev)?;
            if !filter.matches(&object) {
                return Ok(None);
            }
            object::set_meta(&mut object, "resourceVersion", revision.to_string());
            Some(WatchEvent::Deleted(object))
        }
    })
}
// ANCHOR_END: to_watch_event
