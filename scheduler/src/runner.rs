//! The loop: informers in, decisions out.
//!
//! One task owns the cache and the queue, so neither needs a lock. It reacts to four things:
//!
//! 1. **a Node changed** (informer): update the cache; if the change can help, move parked pods;
//! 2. **a Pod changed** (informer): a pending pod of ours joins the queue; a bound pod is counted on its node
//!    (confirming our assumption when we bound it); a deleted or finished pod gives its room back;
//! 3. **a binding finished** (our own tasks): a refused binding is forgotten and the pod retried after a back-off;
//! 4. **a back-off ended** (a timer).
//!
//! After each, it takes the active pods one by one — the *scheduling cycle*: read the pod, [`choose_node`],
//! assume — and hands each to a task for the *binding cycle*: `POST binding`, then the `Scheduled` event. Binding
//! cycles run concurrently (a bounded number talk to the apiserver at once), while decisions stay strictly one
//! after the other, each seeing the ones before it through the cache's assumptions. That split is
//! kube-scheduler's, and it is what makes it fast: a decision takes microseconds, a binding a round trip.
//!
//! The loop never lists: everything comes from the informers' caches, which the watches keep current.

use crate::api::{BindError, SchedulerApi, namespace_and_name};
use crate::cache::{ClusterCache, NodeChange};
use crate::pod_info::PodInfo;
use crate::queue::SchedulingQueue;
use crate::resources::PodUsage;
use crate::schedule::{Unschedulable, choose_node};
use crate::{Config, queue};
use k8s_openapi::api::core::v1::{Node, Pod};
use kubelab_api::events::EventType;
use kubelab_api::informer::Informer;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{Semaphore, mpsc};

/// How many decisions to make before looking at the informers again, so that a burst of thousands of pods does
/// not keep node and pod updates waiting.
const DECISIONS_PER_TURN: usize = 256;

/// How a binding cycle ended, sent back to the loop.
#[derive(Debug)]
pub enum BindOutcome {
    /// Bound; the informer will confirm it.
    Bound { key: String },
    /// Nothing to do any more (the pod is gone or bound elsewhere).
    Moot { key: String },
    /// Refused: forget the assumption, retry after a back-off.
    Failed { key: String },
}

/// The scheduler's state, owned by the loop.
pub struct Scheduler {
    config: Config,
    api: SchedulerApi,
    cache: ClusterCache,
    queue: SchedulingQueue,
    /// The spec of each parked pod when it last failed: our own status write changes the pod too, and only a
    /// change of its spec (tolerations added, say) is a reason to retry it at once.
    parked_specs: HashMap<String, Value>,
    /// Bounds the apiserver calls of binding cycles in flight.
    permits: Arc<Semaphore>,
    /// Where binding cycles report.
    outcomes: mpsc::UnboundedSender<BindOutcome>,
}

impl Scheduler {
    /// A scheduler with an empty cache and queue.
    pub fn new(config: Config, api: SchedulerApi, outcomes: mpsc::UnboundedSender<BindOutcome>) -> Scheduler {
        let timings = queue::Timings {
            initial_backoff: config.initial_backoff,
            max_backoff: config.max_backoff,
            max_unschedulable: config.max_unschedulable,
        };
        Scheduler {
            permits: Arc::new(Semaphore::new(config.bindings_in_flight.max(1))),
            queue: SchedulingQueue::new(timings),
            cache: ClusterCache::default(),
            parked_specs: HashMap::new(),
            config,
            api,
            outcomes,
        }
    }

    /// Runs until the informers stop (they do not, unless the process is ending).
    pub async fn run(
        mut self,
        mut nodes: Informer,
        mut pods: Informer,
        mut done: mpsc::UnboundedReceiver<BindOutcome>,
    ) {
        loop {
            // Take in everything that is already waiting, then decide as many pods as allowed.
            while let Ok(key) = nodes.changed.try_recv() {
                self.node_changed(&key, nodes.cache.get_typed(&key));
            }
            while let Ok(key) = pods.changed.try_recv() {
                self.pod_changed(&key, pods.cache.get_typed(&key));
            }
            while let Ok(outcome) = done.try_recv() {
                self.binding_done(outcome);
            }
            self.queue.flush(Instant::now());
            let mut decided = 0;
            while decided < DECISIONS_PER_TURN
                && let Some(key) = self.queue.pop()
            {
                self.schedule_one(&key, pods.cache.get_typed(&key));
                decided += 1;
            }
            if decided == DECISIONS_PER_TURN {
                tokio::task::yield_now().await;
                continue;
            }
            // Nothing to decide: sleep until something happens.
            let wakeup = self.queue.next_wakeup();
            let sleep = async {
                match wakeup {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                Some(key) = nodes.changed.recv() => self.node_changed(&key, nodes.cache.get_typed(&key)),
                Some(key) = pods.changed.recv() => self.pod_changed(&key, pods.cache.get_typed(&key)),
                Some(outcome) = done.recv() => self.binding_done(outcome),
                () = sleep => {}
            }
        }
    }

    /// A Node was added, changed or deleted.
    pub fn node_changed(&mut self, name: &str, node: Option<Node>) {
        match node {
            None => self.cache.remove_node(name),
            Some(node) => {
                if self.cache.set_node(&node) != NodeChange::Unchanged {
                    self.queue.move_all(Instant::now());
                }
            }
        }
    }

    // ANCHOR: pod_changed
    /// A Pod was added, changed or deleted. Level-triggered: what matters is its state now.
    pub fn pod_changed(&mut self, key: &str, pod: Option<Pod>) {
        let now = Instant::now();
        let Some(pod) = pod.filter(|p| !is_finished(p)) else {
            // Deleted or finished: it needs no node, and the room it took is free again.
            self.stop_queueing(key);
            if self.cache.forget(key).is_some() {
                self.queue.move_all(now);
            }
            return;
        };
        if let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).filter(|n| !n.is_empty()) {
            // Bound (by us or anyone): count it there. Its requests were validated by the apiserver; were one
            // unreadable, the pod would count with none rather than stop the scheduler.
            self.stop_queueing(key);
            self.cache.set_bound(key, PodUsage::of(&pod).unwrap_or_default(), node);
            return;
        }
        if !self.is_ours(&pod) || pod.metadata.deletion_timestamp.is_some() {
            self.stop_queueing(key);
            return;
        }
        if self.cache.is_assumed(key) {
            return; // Our binding is on its way; the informer has not seen it yet.
        }
        match self.parked_specs.get(key) {
            Some(spec) if self.queue.is_parked(key) => {
                if pod.spec.as_ref().map(spec_value).as_ref() != Some(spec) {
                    self.parked_specs.remove(key);
                    self.queue.requeue(key, now);
                }
            }
            _ => self.queue.add(key),
        }
    }
    // ANCHOR_END: pod_changed

    // ANCHOR: schedule_one
    /// One scheduling cycle: decide, assume, and start the binding cycle — or report why not.
    pub fn schedule_one(&mut self, key: &str, pod: Option<Pod>) {
        let Some(pod) = pod.filter(|p| self.needs_scheduling(key, p)) else {
            self.stop_queueing(key);
            return;
        };
        let decision = PodInfo::read(&pod)
            .map_err(|err| Unschedulable::InvalidPod(err.to_string()))
            .and_then(|info| choose_node(&info, self.cache.nodes()).map(|node| (info, node)));
        match decision {
            Ok((info, node)) => {
                tracing::debug!(pod = key, node, "assumed");
                self.cache.assume(key, info.usage, &node);
                self.spawn_binding(key, pod, node);
            }
            Err(why) => {
                tracing::info!(pod = key, reason = %why, "unschedulable");
                self.queue.unschedulable(key, Instant::now());
                if let Some(spec) = pod.spec.as_ref() {
                    self.parked_specs.insert(key.to_string(), spec_value(spec));
                }
                self.spawn_failure_report(pod, why);
            }
        }
    }
    // ANCHOR_END: schedule_one

    /// A binding cycle ended.
    pub fn binding_done(&mut self, outcome: BindOutcome) {
        match outcome {
            BindOutcome::Bound { key } => tracing::debug!(pod = key, "bound"),
            BindOutcome::Moot { key } => {
                self.cache.forget_assumed(&key);
                self.stop_queueing(&key);
            }
            BindOutcome::Failed { key } => {
                // The room the assumption held is free again, for this pod or another.
                if self.cache.forget_assumed(&key).is_some() {
                    self.queue.move_all(Instant::now());
                }
                self.queue.retry_later(&key, Instant::now());
            }
        }
    }

    /// The binding cycle, in a task of its own: bind, then tell the user (`Scheduled` event).
    fn spawn_binding(&self, key: &str, pod: Pod, node: String) {
        let (api, permits, outcomes, key) =
            (self.api.clone(), self.permits.clone(), self.outcomes.clone(), key.to_string());
        tokio::spawn(async move {
            // The semaphore is never closed, so `acquire` only fails if it were; then we go on unthrottled.
            let _permit = permits.acquire_owned().await.ok();
            let outcome = match api.bind(&pod, &node).await {
                Ok(()) => {
                    let (namespace, name) = namespace_and_name(&pod);
                    let message = format!("Successfully assigned {namespace}/{name} to {node}");
                    api.record(&pod, EventType::Normal, "Scheduled", message).await;
                    BindOutcome::Bound { key }
                }
                Err(BindError::Moot(err)) => {
                    tracing::info!(pod = key, error = %err, "binding not needed any more");
                    BindOutcome::Moot { key }
                }
                Err(BindError::Failed(err)) => {
                    tracing::warn!(pod = key, error = %err, "binding failed");
                    api.record(&pod, EventType::Warning, "FailedScheduling", format!("binding rejected: {err}")).await;
                    BindOutcome::Failed { key }
                }
            };
            let _ = outcomes.send(outcome);
        });
    }

    /// Tells the user why the pod waits: the `PodScheduled=False` condition and a `FailedScheduling` event.
    fn spawn_failure_report(&self, pod: Pod, why: Unschedulable) {
        let (api, permits) = (self.api.clone(), self.permits.clone());
        tokio::spawn(async move {
            let _permit = permits.acquire_owned().await.ok();
            let message = why.to_string();
            if let Err(err) = api.set_unschedulable(&pod, why.condition_reason(), &message).await {
                tracing::warn!(error = %err, "could not set the PodScheduled condition");
            }
            api.record(&pod, EventType::Warning, "FailedScheduling", message).await;
        });
    }

    fn stop_queueing(&mut self, key: &str) {
        self.queue.forget(key);
        self.parked_specs.remove(key);
    }

    fn is_ours(&self, pod: &Pod) -> bool {
        let name = pod.spec.as_ref().and_then(|s| s.scheduler_name.as_deref()).unwrap_or("default-scheduler");
        name == self.config.scheduler_name
    }

    /// Still pending, ours, not being deleted, and not already decided.
    fn needs_scheduling(&self, key: &str, pod: &Pod) -> bool {
        let unbound = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).is_none_or(str::is_empty);
        unbound
            && !is_finished(pod)
            && self.is_ours(pod)
            && pod.metadata.deletion_timestamp.is_none()
            && !self.cache.is_assumed(key)
    }
}

/// `Succeeded` or `Failed`: its containers are done and its requests no longer hold anything.
fn is_finished(pod: &Pod) -> bool {
    matches!(pod.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed"))
}

fn spec_value(spec: &k8s_openapi::api::core::v1::PodSpec) -> Value {
    serde_json::to_value(spec).unwrap_or(Value::Null)
}
