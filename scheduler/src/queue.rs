//! The scheduling queue: which pending pod to try next, and when to try again one that did not fit.
//!
//! kube-scheduler's `PriorityQueue` (`pkg/scheduler/backend/queue`) keeps every pod waiting for a node in one of
//! three places, and so do we:
//!
//! - **active**: to be tried now, first come first served;
//! - **back-off**: failed recently, waits `1 s · 2^(attempts-1)` (at most 10 s) before the next try, so that a
//!   pod that keeps failing does not eat the scheduler's time;
//! - **unschedulable**: failed, and trying again is pointless until the cluster changes. A change that might
//!   help — a node added, uncordoned or grown, a pod deleted — *moves* every such pod to back-off (or straight to
//!   active when its back-off is already over). As a safety net a pod parked for 5 minutes is moved anyway.
//!
//! The queue is a plain data structure: time is passed in (`now`), never read, so tests drive it with made-up
//! instants. What we leave out: priorities (kube-scheduler sorts active pods by `spec.priority`), per-plugin
//! *queueing hints* (which event can help which pod: we move every unschedulable pod on any relevant event), and
//! scheduling gates.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

/// How long pods wait: copied from [`crate::Config`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timings {
    /// Back-off after the first failure (Kubernetes: 1 s).
    pub initial_backoff: Duration,
    /// Back-off never grows beyond this (Kubernetes: 10 s).
    pub max_backoff: Duration,
    /// A pod parked as unschedulable is retried after this long even if nothing changed (Kubernetes: 5 min).
    pub max_unschedulable: Duration,
}

/// Where a queued pod is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// In `active`, waiting for its turn.
    Active,
    /// In `backoff`, until that instant.
    Backoff(Instant),
    /// Parked since that instant until the cluster changes.
    Unschedulable(Instant),
    /// Taken by the scheduler: being decided or bound.
    InFlight,
}

/// One pod the queue knows.
#[derive(Debug, Clone, Copy)]
struct Entry {
    place: Place,
    /// Failed attempts so far: the back-off doubles with each.
    attempts: u32,
    /// When the last attempt failed.
    failed_at: Option<Instant>,
}

/// The pods waiting for a node, by key (`namespace/name`).
#[derive(Debug)]
pub struct SchedulingQueue {
    timings: Timings,
    entries: HashMap<String, Entry>,
    /// Pods to try now, in arrival order. May hold stale keys (a pod forgotten or moved since): `pop` skips them.
    active: VecDeque<String>,
    /// Pods in back-off, by the instant it ends. May hold stale entries, skipped the same way.
    backoff: BTreeSet<(Instant, String)>,
}

impl SchedulingQueue {
    /// An empty queue.
    pub fn new(timings: Timings) -> SchedulingQueue {
        SchedulingQueue { timings, entries: HashMap::new(), active: VecDeque::new(), backoff: BTreeSet::new() }
    }

    /// A pod that needs a node: queued as active unless the queue already has it (wherever it is).
    pub fn add(&mut self, key: &str) {
        if !self.entries.contains_key(key) {
            self.entries.insert(key.to_string(), Entry { place: Place::Active, attempts: 0, failed_at: None });
            self.active.push_back(key.to_string());
        }
    }

    /// The next pod to try, now marked in flight; `None` when no pod is active.
    pub fn pop(&mut self) -> Option<String> {
        while let Some(key) = self.active.pop_front() {
            if let Some(entry) = self.entries.get_mut(&key)
                && entry.place == Place::Active
            {
                entry.place = Place::InFlight;
                return Some(key);
            }
        }
        None
    }

    /// The pod fits nowhere: park it until the cluster changes.
    pub fn unschedulable(&mut self, key: &str, now: Instant) {
        let entry = self.failed(key, now);
        entry.place = Place::Unschedulable(now);
    }

    /// The attempt failed for a reason that may pass by itself (the binding was refused, the apiserver was
    /// unreachable): try again after the back-off.
    pub fn retry_later(&mut self, key: &str, now: Instant) {
        let attempts = self.failed(key, now).attempts;
        let until = now + self.backoff_after(attempts);
        self.send_to_backoff(key, until);
    }

    /// The cluster changed in a way that may help: every parked pod goes back to back-off, or to active when
    /// its back-off is over (`MoveAllToActiveOrBackoffQueue`).
    pub fn move_all(&mut self, now: Instant) {
        let parked: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, entry)| matches!(entry.place, Place::Unschedulable(_)))
            .map(|(key, _)| key.clone())
            .collect();
        for key in parked {
            self.requeue(&key, now);
        }
    }

    /// One parked pod changed (its spec was edited): move it as [`SchedulingQueue::move_all`] would.
    pub fn requeue(&mut self, key: &str, now: Instant) {
        let Some(entry) = self.entries.get(key) else { return self.add(key) };
        if !matches!(entry.place, Place::Unschedulable(_)) {
            return;
        }
        match entry.failed_at.map(|at| at + self.backoff_after(entry.attempts)) {
            Some(until) if until > now => self.send_to_backoff(key, until),
            _ => self.activate(key),
        }
    }

    /// Moves to active the pods whose back-off is over, and those parked for longer than `max_unschedulable`.
    pub fn flush(&mut self, now: Instant) {
        while let Some((until, key)) = self.backoff.first().cloned() {
            if until > now {
                break;
            }
            self.backoff.pop_first();
            if self.entries.get(&key).is_some_and(|e| e.place == Place::Backoff(until)) {
                self.activate(&key);
            }
        }
        let stale: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, e)| matches!(e.place, Place::Unschedulable(since) if since + self.timings.max_unschedulable <= now))
            .map(|(key, _)| key.clone())
            .collect();
        for key in stale {
            self.requeue(&key, now);
        }
    }

    /// When [`SchedulingQueue::flush`] next has something to do, if ever.
    pub fn next_wakeup(&self) -> Option<Instant> {
        let backoff = self.backoff.first().map(|(until, _)| *until);
        let parked = self
            .entries
            .values()
            .filter_map(|e| match e.place {
                Place::Unschedulable(since) => Some(since + self.timings.max_unschedulable),
                _ => None,
            })
            .min();
        backoff.into_iter().chain(parked).min()
    }

    /// The pod no longer needs a node (bound, deleted, not ours): drop it and its attempts.
    pub fn forget(&mut self, key: &str) {
        self.entries.remove(key);
    }

    /// Whether the queue holds the pod, wherever.
    pub fn contains(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    /// How many pods are waiting to be tried now.
    pub fn active_len(&self) -> usize {
        self.entries.values().filter(|e| e.place == Place::Active).count()
    }

    /// Whether the pod is parked as unschedulable.
    pub fn is_parked(&self, key: &str) -> bool {
        self.entries.get(key).is_some_and(|e| matches!(e.place, Place::Unschedulable(_)))
    }

    // ANCHOR: backoff
    /// The back-off after `attempts` failures: the initial back-off, doubled for each failure after the first,
    /// at most the maximum (`calculateBackoffDuration` in kube-scheduler).
    pub fn backoff_after(&self, attempts: u32) -> Duration {
        let mut backoff = self.timings.initial_backoff;
        for _ in 1..attempts {
            backoff = backoff.saturating_mul(2);
            if backoff >= self.timings.max_backoff {
                return self.timings.max_backoff;
            }
        }
        backoff.min(self.timings.max_backoff)
    }
    // ANCHOR_END: backoff

    fn failed(&mut self, key: &str, now: Instant) -> &mut Entry {
        let entry = self.entries.entry(key.to_string()).or_insert(Entry {
            place: Place::InFlight,
            attempts: 0,
            failed_at: None,
        });
        entry.attempts += 1;
        entry.failed_at = Some(now);
        entry
    }

    fn send_to_backoff(&mut self, key: &str, until: Instant) {
        if let Some(entry) = self.entries.get_mut(key) {
            entry.place = Place::Backoff(until);
            self.backoff.insert((until, key.to_string()));
        }
    }

    fn activate(&mut self, key: &str) {
        if let Some(entry) = self.entries.get_mut(key) {
            entry.place = Place::Active;
            self.active.push_back(key.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue() -> SchedulingQueue {
        SchedulingQueue::new(Timings {
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(10),
            max_unschedulable: Duration::from_secs(300),
        })
    }

    #[test]
    fn pods_are_tried_in_arrival_order_and_only_once() {
        let mut q = queue();
        q.add("default/a");
        q.add("default/b");
        q.add("default/a");
        assert_eq!(q.pop().as_deref(), Some("default/a"));
        assert_eq!(q.pop().as_deref(), Some("default/b"));
        assert_eq!(q.pop(), None);
    }

    #[test]
    fn back_off_doubles_from_one_second_up_to_ten() {
        let q = queue();
        let seconds: Vec<u64> = (1..=6).map(|n| q.backoff_after(n).as_secs()).collect();
        assert_eq!(seconds, [1, 2, 4, 8, 10, 10]);
    }

    #[test]
    fn an_unschedulable_pod_waits_for_a_change_then_for_its_back_off() {
        let mut q = queue();
        let t0 = Instant::now();
        q.add("default/big");
        q.pop();
        q.unschedulable("default/big", t0);
        q.flush(t0 + Duration::from_secs(60));
        assert_eq!(q.pop(), None, "nothing changed: it stays parked");

        // A node is added half a second after the failure: back-off (1 s) is not over yet.
        q.move_all(t0 + Duration::from_millis(500));
        q.flush(t0 + Duration::from_millis(900));
        assert_eq!(q.pop(), None);
        assert_eq!(q.next_wakeup(), Some(t0 + Duration::from_secs(1)));
        q.flush(t0 + Duration::from_secs(1));
        assert_eq!(q.pop().as_deref(), Some("default/big"));
    }

    #[test]
    fn a_change_after_the_back_off_moves_the_pod_straight_activate() {
        let mut q = queue();
        let t0 = Instant::now();
        q.add("default/big");
        q.pop();
        q.unschedulable("default/big", t0);
        q.move_all(t0 + Duration::from_secs(5));
        assert_eq!(q.pop().as_deref(), Some("default/big"));
    }

    #[test]
    fn a_parked_pod_is_retried_after_five_minutes_anyway() {
        let mut q = queue();
        let t0 = Instant::now();
        q.add("default/big");
        q.pop();
        q.unschedulable("default/big", t0);
        assert_eq!(q.next_wakeup(), Some(t0 + Duration::from_secs(300)));
        q.flush(t0 + Duration::from_secs(300));
        assert_eq!(q.pop().as_deref(), Some("default/big"));
    }

    #[test]
    fn a_refused_binding_is_retried_after_a_growing_back_off() {
        let mut q = queue();
        let t0 = Instant::now();
        q.add("default/p");
        q.pop();
        q.retry_later("default/p", t0);
        q.flush(t0 + Duration::from_millis(999));
        assert_eq!(q.pop(), None);
        q.flush(t0 + Duration::from_secs(1));
        assert_eq!(q.pop().as_deref(), Some("default/p"));
        let t1 = t0 + Duration::from_secs(1);
        q.retry_later("default/p", t1);
        assert_eq!(q.next_wakeup(), Some(t1 + Duration::from_secs(2)));
    }

    #[test]
    fn a_forgotten_pod_is_never_popped() {
        let mut q = queue();
        q.add("default/a");
        q.forget("default/a");
        assert_eq!(q.pop(), None);
        assert!(!q.contains("default/a"));
    }
}
