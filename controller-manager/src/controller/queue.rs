//! The work queue: which objects need a reconcile, each once, one worker at a time.
//!
//! Informers report *that* something changed, often many times in a row (a Deployment's ReplicaSet changes
//! status ten times while its pods start). A controller does not want ten reconciles: it wants one, soon, that
//! reads the latest state. client-go's `workqueue` gives exactly that, and so does this [`WorkQueue`]:
//!
//! - **deduplicated**: a key added while it is already waiting is not added twice (the `dirty` set);
//! - **one worker per key**: a key being processed is never handed to a second worker; if it is added again
//!   meanwhile, it waits and comes back once the first worker calls [`WorkQueue::done`] — so no change is lost
//!   and no two reconciles of one object race each other;
//! - **delayed**: [`WorkQueue::add_after`] brings a key back later (a progress deadline to check);
//! - **rate-limited retries**: [`WorkQueue::add_rate_limited`] brings a failed key back after a delay that doubles
//!   with each failure of that key ([`Backoff`]: 5 ms, 10 ms, 20 ms ... up to 1000 s), until
//!   [`WorkQueue::forget`] resets it after a success.
//!
//! Mirrors client-go's `util/workqueue` (`Type`, `delaying_queue.go`, and `ItemExponentialFailureRateLimiter`).
//! What we leave out: the overall token bucket (10 per second, burst 100) that client-go's default controller
//! rate limiter adds on top of the per-key back-off, and the queue's metrics.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

// ANCHOR: backoff
/// Per-key exponential back-off for failed keys, as client-go's `ItemExponentialFailureRateLimiter`:
/// the n-th failure in a row waits `base * 2^(n-1)`, never more than `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first retry's delay. Kubernetes: 5 ms — a conflict with a concurrent writer is usually gone by then.
    pub base: Duration,
    /// The ceiling. Kubernetes: 1000 s — a key that keeps failing is retried about every quarter of an hour.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { base: Duration::from_millis(5), max: Duration::from_secs(1000) }
    }
}

impl Backoff {
    /// How long to wait before retrying after `failures` failures in a row (1 for the first failure).
    pub fn delay(&self, failures: u32) -> Duration {
        let exponent = failures.saturating_sub(1).min(63);
        let factor = 1u64 << exponent;
        let nanos = u64::try_from(self.base.as_nanos()).unwrap_or(u64::MAX).saturating_mul(factor);
        Duration::from_nanos(nanos).min(self.max)
    }
}
// ANCHOR_END: backoff

/// A queue of object keys (`namespace/name`) waiting for a reconcile. Shared by the event handlers that add
/// keys and the workers that take them, behind an `Arc`.
#[derive(Debug, Default)]
pub struct WorkQueue {
    /// A std `Mutex`: it is held only for a few set operations, never across an `.await`.
    state: Mutex<State>,
    /// Wakes a worker waiting in [`WorkQueue::get`] when a key becomes ready.
    ready: Notify,
    backoff: Backoff,
}

// ANCHOR: queue_state
#[derive(Debug, Default)]
struct State {
    /// Keys ready to be handed out, in order of arrival.
    queue: VecDeque<String>,
    /// Keys that need processing: those in `queue`, and those added again while being processed.
    dirty: HashSet<String>,
    /// Keys a worker is processing right now.
    processing: HashSet<String>,
    /// Keys to add once their time comes (`add_after`, retries), with the earliest time asked for.
    waiting: HashMap<String, Instant>,
    /// Failures in a row, per key, for the back-off.
    failures: HashMap<String, u32>,
}
// ANCHOR_END: queue_state

impl WorkQueue {
    /// An empty queue whose retries wait according to `backoff`.
    pub fn new(backoff: Backoff) -> Self {
        WorkQueue { backoff, ..Default::default() }
    }

    // ANCHOR: add
    /// Asks for `key` to be processed. Does nothing if it is already waiting; if a worker is processing it right
    /// now, it will be processed again after that worker is done.
    pub fn add(&self, key: impl Into<String>) {
        let key = key.into();
        let mut state = self.lock();
        if !state.dirty.insert(key.clone()) {
            return;
        }
        if state.processing.contains(&key) {
            return;
        }
        state.queue.push_back(key);
        drop(state);
        self.ready.notify_one();
    }

    /// Waits for a key to process and marks it as being processed. Every key returned must be given back with
    /// [`WorkQueue::done`].
    pub async fn get(&self) -> String {
        loop {
            // Register interest before looking, so that an `add` between the look and the wait is not missed.
            let notified = self.ready.notified();
            let next_due = {
                let mut state = self.lock();
                self.promote_due(&mut state);
                if let Some(key) = state.queue.pop_front() {
                    state.dirty.remove(&key);
                    state.processing.insert(key.clone());
                    return key;
                }
                state.waiting.values().min().copied()
            };
            match next_due {
                Some(due) => {
                    let _ = tokio::time::timeout_at(due, notified).await;
                }
                None => notified.await,
            }
        }
    }

    /// Marks `key` as processed. If it was added again meanwhile, it goes back in the queue now.
    pub fn done(&self, key: &str) {
        let mut state = self.lock();
        state.processing.remove(key);
        if state.dirty.contains(key) {
            state.queue.push_back(key.to_string());
            drop(state);
            self.ready.notify_one();
        }
    }
    // ANCHOR_END: add

    /// Adds `key` once `delay` has passed (at once if `delay` is zero). If it is already waiting for a later
    /// time, the earlier time wins.
    pub fn add_after(&self, key: impl Into<String>, delay: Duration) {
        let key = key.into();
        if delay.is_zero() {
            return self.add(key);
        }
        let due = Instant::now() + delay;
        let mut state = self.lock();
        let entry = state.waiting.entry(key).or_insert(due);
        *entry = (*entry).min(due);
        drop(state);
        // A worker may be sleeping until a later time: wake one to recompute its deadline.
        self.ready.notify_one();
    }

    // ANCHOR: retry
    /// Adds `key` back after its back-off delay, and counts one more failure for it.
    pub fn add_rate_limited(&self, key: &str) -> Duration {
        let failures = {
            let mut state = self.lock();
            let failures = state.failures.entry(key.to_string()).or_insert(0);
            *failures = failures.saturating_add(1);
            *failures
        };
        let delay = self.backoff.delay(failures);
        self.add_after(key, delay);
        delay
    }

    /// Forgets the failures of `key`: its next failure waits the base delay again.
    pub fn forget(&self, key: &str) {
        self.lock().failures.remove(key);
    }
    // ANCHOR_END: retry

    /// How many times in a row `key` has failed.
    pub fn failures(&self, key: &str) -> u32 {
        self.lock().failures.get(key).copied().unwrap_or(0)
    }

    /// Keys ready to be handed out now (not counting those being processed or waiting for their time).
    pub fn len(&self) -> usize {
        self.lock().queue.len()
    }

    /// Whether no key is ready to be handed out.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Moves the keys whose time has come from `waiting` to the queue.
    fn promote_due(&self, state: &mut State) {
        let now = Instant::now();
        let due: Vec<String> = state.waiting.iter().filter(|(_, at)| **at <= now).map(|(k, _)| k.clone()).collect();
        for key in due {
            state.waiting.remove(&key);
            if state.dirty.insert(key.clone()) && !state.processing.contains(&key) {
                state.queue.push_back(key);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock only means another thread panicked while holding it; the sets are still consistent
        // (every operation above leaves them so between statements), so carry on.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn next(queue: &WorkQueue) -> String {
        tokio::time::timeout(Duration::from_secs(5), queue.get()).await.expect("a key within 5 s")
    }

    #[tokio::test]
    async fn a_key_added_twice_while_waiting_is_processed_once() {
        let queue = WorkQueue::default();
        queue.add("default/web");
        queue.add("default/web");
        queue.add("default/db");
        assert_eq!(queue.len(), 2);
        assert_eq!(next(&queue).await, "default/web");
        assert_eq!(next(&queue).await, "default/db");
        assert!(queue.is_empty());
    }

    #[tokio::test]
    async fn a_key_added_while_processing_waits_for_the_first_worker_to_finish() {
        let queue = WorkQueue::default();
        queue.add("default/web");
        let key = next(&queue).await;
        queue.add("default/web");
        // Not handed to a second worker while the first holds it...
        assert!(queue.is_empty());
        assert!(tokio::time::timeout(Duration::from_millis(50), queue.get()).await.is_err());
        // ...but comes back as soon as the first is done.
        queue.done(&key);
        assert_eq!(next(&queue).await, "default/web");
    }

    #[tokio::test]
    async fn a_key_done_without_being_added_again_does_not_come_back() {
        let queue = WorkQueue::default();
        queue.add("a");
        let key = next(&queue).await;
        queue.done(&key);
        assert!(tokio::time::timeout(Duration::from_millis(50), queue.get()).await.is_err());
    }

    #[tokio::test]
    async fn a_delayed_key_comes_back_after_its_delay_and_the_earlier_time_wins() {
        let queue = WorkQueue::default();
        let start = Instant::now();
        queue.add_after("a", Duration::from_secs(60));
        queue.add_after("a", Duration::from_millis(30));
        assert_eq!(next(&queue).await, "a");
        assert!(start.elapsed() >= Duration::from_millis(30));
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn the_backoff_doubles_from_5_ms_to_a_ceiling_of_1000_s() {
        let backoff = Backoff::default();
        assert_eq!(backoff.delay(1), Duration::from_millis(5));
        assert_eq!(backoff.delay(2), Duration::from_millis(10));
        assert_eq!(backoff.delay(3), Duration::from_millis(20));
        assert_eq!(backoff.delay(18), Duration::from_millis(5 << 17));
        assert_eq!(backoff.delay(19), Duration::from_secs(1000));
        assert_eq!(backoff.delay(500), Duration::from_secs(1000));
    }

    #[tokio::test]
    async fn failures_are_counted_per_key_until_forgotten() {
        let queue = WorkQueue::new(Backoff { base: Duration::from_millis(1), max: Duration::from_secs(1) });
        assert_eq!(queue.add_rate_limited("a"), Duration::from_millis(1));
        assert_eq!(queue.add_rate_limited("a"), Duration::from_millis(2));
        assert_eq!(queue.add_rate_limited("b"), Duration::from_millis(1));
        assert_eq!(queue.failures("a"), 2);
        queue.forget("a");
        assert_eq!(queue.failures("a"), 0);
        assert_eq!(queue.add_rate_limited("a"), Duration::from_millis(1));
    }
}
