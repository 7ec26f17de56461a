//! The dispatcher: one worker per pod, woken whenever something about the pod may have changed.
//!
//! Three sources say "look at this pod again":
//!
//! - the **informer** following `pods?fieldSelector=spec.nodeName=<node>`: a pod was bound here, changed, or
//!   was deleted;
//! - the **runtime's events**: one of the pod's containers started or died (Kubernetes' PLEG, the pod lifecycle
//!   event generator, plays this part by relisting containers every second);
//! - **housekeeping**, every sync period: containers of pods that have no worker — left by a kubelet that was
//!   stopped, for pods deleted meanwhile — get one, which removes them.
//!
//! None of them says *what* changed: the worker looks at everything (level-triggered). At start-up, every pod
//! in the cache gets a worker, which finds the containers a previous kubelet left running and adopts them —
//! they carry the pod's uid in their labels — instead of starting duplicates.

use crate::context::Context;
use crate::error::KubeletError;
use crate::worker;
use futures::StreamExt;
use kubelab_api::informer::Informer;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, mpsc};
use tokio::task::{AbortHandle, JoinSet};

/// A running pod worker.
struct Worker {
    /// The pod's `namespace/name`, when known (not for orphans found in the runtime).
    key: Option<String>,
    /// Wakes the worker for another pass.
    wake: Arc<Notify>,
    handle: AbortHandle,
}

/// The workers, by pod uid. Owns their tasks: dropping it (an aborted kubelet) stops them all — but never
/// touches the containers, which a restarted kubelet adopts.
#[derive(Default)]
struct Workers {
    by_uid: HashMap<String, Worker>,
    tasks: JoinSet<()>,
}

impl Workers {
    /// Wakes the worker of `uid`, starting one if there is none.
    fn wake(&mut self, ctx: &Arc<Context>, uid: &str, key: Option<&str>) {
        if let Some(worker) = self.by_uid.get_mut(uid) {
            if worker.key.is_none() {
                worker.key = key.map(String::from);
            }
            worker.wake.notify_one();
            return;
        }
        let wake = Arc::new(Notify::new());
        let task = worker::run(ctx.clone(), uid.to_string(), key.map(String::from), wake.clone());
        let handle = self.tasks.spawn(task);
        self.by_uid.insert(uid.to_string(), Worker { key: key.map(String::from), wake, handle });
    }

    /// Wakes every worker of a pod named `key` (a deleted pod, or one recreated with a new uid).
    fn wake_key(&mut self, key: &str) {
        for worker in self.by_uid.values().filter(|w| w.key.as_deref() == Some(key)) {
            worker.wake.notify_one();
        }
    }

    /// Forgets a worker that ended.
    fn ended(&mut self, id: tokio::task::Id) {
        self.by_uid.retain(|_, worker| worker.handle.id() != id);
    }
}

// ANCHOR: dispatch
/// Dispatches changes to pod workers until the kubelet is stopped.
pub async fn dispatch(ctx: Arc<Context>, mut informer: Informer) -> Result<(), KubeletError> {
    informer.wait_synced().await;
    let mut workers = Workers::default();
    let (mut runtime_events, _forwarder) = forward_runtime_events(&ctx);
    let mut housekeeping = tokio::time::interval(ctx.config.sync_period);
    loop {
        tokio::select! {
            Some(key) = informer.changed.recv() => match ctx.pods.get(&key) {
                Some(pod) => {
                    let uid = pod.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or_default().to_string();
                    workers.wake_key(&key);
                    workers.wake(&ctx, &uid, Some(&key));
                }
                None => workers.wake_key(&key),
            },
            Some(uid) = runtime_events.recv() => workers.wake(&ctx, &uid, None),
            Some(ended) = workers.tasks.join_next_with_id() => match ended {
                Ok((id, ())) => workers.ended(id),
                Err(err) => {
                    tracing::error!(error = %err, "a pod worker failed");
                    workers.ended(err.id());
                }
            },
            _ = housekeeping.tick() => {
                // Every pod in the cache has a worker; so does every pod uid found in the runtime.
                for pod in ctx.pods.list() {
                    let uid = pod.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or_default();
                    if !workers.by_uid.contains_key(uid) {
                        workers.wake(&ctx, uid, Some(&kubelab_api::informer::key_of(&pod)));
                    }
                }
                match ctx.runtime.list_containers(&BTreeMap::new()).await {
                    Ok(containers) => {
                        for container in containers {
                            if !workers.by_uid.contains_key(&container.owner.pod.uid) {
                                workers.wake(&ctx, &container.owner.pod.uid, None);
                            }
                        }
                    }
                    Err(err) => tracing::warn!(error = %err, "housekeeping: cannot list containers"),
                }
            }
        }
    }
}
// ANCHOR_END: dispatch

/// The uids of pods whose containers changed, from the runtime's event stream, reconnecting when it breaks.
fn forward_runtime_events(ctx: &Arc<Context>) -> (mpsc::Receiver<String>, AbortOnDrop) {
    let (tx, rx) = mpsc::channel(256);
    let runtime = ctx.runtime.clone();
    let task = tokio::spawn(async move {
        loop {
            let mut events = runtime.container_events();
            while let Some(event) = events.next().await {
                match event {
                    Ok(uid) => {
                        if tx.send(uid).await.is_err() {
                            return;
                        }
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "runtime events: reconnecting");
                        break;
                    }
                }
            }
            if tx.is_closed() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    (rx, AbortOnDrop(task))
}

/// A task that is aborted when its handle is dropped, so that it cannot outlive its owner.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
