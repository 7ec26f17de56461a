//! A cache of the namespaces, for admission.
//!
//! Every create of a namespaced object must check that its namespace exists and is not being deleted. Reading
//! the namespace from the store each time doubles the cost of a create, so — like kube-apiserver's
//! `NamespaceLifecycle` admission plugin, which reads an informer's cache — we keep the namespaces in memory,
//! fed by a watch on the store. The cache only ever answers "yes, it exists and is active": when it does not
//! know a namespace (just created, or the watch is restarting), the store is asked, so it is never wrong.

use crate::store::{Event, Store};
use futures::StreamExt;
use kubelab_api::resources;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Namespace name → whether it is being deleted.
#[derive(Clone, Default)]
pub(crate) struct NamespaceCache {
    /// A std lock: held for a map lookup or insert, never across an `.await`.
    terminating: Arc<RwLock<HashMap<String, bool>>>,
}

impl NamespaceCache {
    /// `Some(false)`: exists and active; `Some(true)`: being deleted; `None`: not known here.
    pub(crate) fn lookup(&self, name: &str) -> Option<bool> {
        self.terminating.read().unwrap_or_else(|p| p.into_inner()).get(name).copied()
    }

    /// Follows the namespaces in `store`: list, then watch; start over on any error, until the task is aborted.
    pub(crate) fn follow(&self, store: Arc<dyn Store>) -> tokio::task::JoinHandle<()> {
        let cache = self.clone();
        tokio::spawn(async move {
            let Some(namespaces) = resources::by_path("", "v1", "namespaces") else { return };
            let prefix = namespaces.storage_list_prefix(None);
            loop {
                if let Err(err) = cache.sync(&*store, &prefix).await {
                    tracing::debug!(error = %err, "namespace cache: restarting");
                }
                cache.terminating.write().unwrap_or_else(|p| p.into_inner()).clear();
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    }

    /// One list + watch.
    async fn sync(&self, store: &dyn Store, prefix: &str) -> Result<(), crate::store::StoreError> {
        let (kvs, revision) = store.list(prefix).await?;
        let mut changes = store.watch(prefix, revision).await?;
        {
            let mut map = self.terminating.write().unwrap_or_else(|p| p.into_inner());
            map.clear();
            for kv in &kvs {
                if let Some((name, terminating)) = parse(&kv.value) {
                    map.insert(name, terminating);
                }
            }
        }
        while let Some(change) = changes.next().await {
            let mut map = self.terminating.write().unwrap_or_else(|p| p.into_inner());
            match change? {
                Event::Put { kv, .. } => {
                    if let Some((name, terminating)) = parse(&kv.value) {
                        map.insert(name, terminating);
                    }
                }
                Event::Delete { prev, .. } => {
                    if let Some((name, _)) = parse(&prev.value) {
                        map.remove(&name);
                    }
                }
            }
        }
        Ok(())
    }
}

fn parse(bytes: &[u8]) -> Option<(String, bool)> {
    let object: Value = serde_json::from_slice(bytes).ok()?;
    let name = kubelab_api::object::name(&object).to_string();
    Some((name, object.pointer("/metadata/deletionTimestamp").is_some()))
}
