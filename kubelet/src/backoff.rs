//! Exponential back-off: how a crashing container (or an image that will not pull) is retried ever more slowly.
//!
//! A container that exits at once would otherwise be restarted hundreds of times a minute. The kubelet keeps,
//! per container, a delay that starts at 10 s and doubles at each restart up to 5 minutes (both configurable).
//! Kubernetes' `flowcontrol.Backoff` works like this, and so does this one:
//!
//! | event                          | kubelet does                         | next delay |
//! |--------------------------------|--------------------------------------|------------|
//! | first exit                     | restarts at once                     | 10 s       |
//! | second exit                    | waits 10 s after it (CrashLoopBackOff) | 20 s     |
//! | third exit                     | waits 20 s                           | 40 s       |
//! | ...                            | ...                                  | ≤ 5 min    |
//! | no restart for 2 × max (10 min)| forgets: the next exit restarts at once | 10 s    |
//!
//! The waiting time counts from when the container *finished*, so a container that ran for an hour before
//! crashing is not made to wait again. Pure bookkeeping: the caller says what time it is.

use crate::clock;
use k8s_openapi::jiff::Timestamp;
use std::collections::BTreeMap;
use std::time::Duration;

/// The two settings of a back-off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackOffPolicy {
    /// The first delay (Kubernetes: 10 s).
    pub initial: Duration,
    /// The longest delay (Kubernetes: 300 s).
    pub max: Duration,
}

impl Default for BackOffPolicy {
    fn default() -> Self {
        BackOffPolicy { initial: Duration::from_secs(10), max: Duration::from_secs(300) }
    }
}

/// One key's state: the delay to wait before its next retry, and when it last retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    delay: Duration,
    last_retry: Timestamp,
}

// ANCHOR: backoff
/// Back-off delays per key (a container name, within one pod).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BackOff {
    policy: BackOffPolicy,
    entries: BTreeMap<String, Entry>,
}

impl BackOff {
    pub fn new(policy: BackOffPolicy) -> Self {
        BackOff { policy, entries: BTreeMap::new() }
    }

    /// If `key` must still wait after failing at `failed_at`: until when, and the delay it is serving.
    pub fn waiting(&self, key: &str, failed_at: Timestamp, now: Timestamp) -> Option<(Timestamp, Duration)> {
        let entry = self.entries.get(key)?;
        if self.forgotten(entry, failed_at) {
            return None;
        }
        let until = clock::after(failed_at, entry.delay);
        (now < until).then_some((until, entry.delay))
    }

    /// Records a retry of `key` (after a failure at `failed_at`) made `now`: the next delay doubles, up to the
    /// maximum, unless the key had been quiet long enough to start again from the initial delay.
    pub fn retried(&mut self, key: &str, failed_at: Timestamp, now: Timestamp) {
        let delay = match self.entries.get(key) {
            Some(entry) if !self.forgotten(entry, failed_at) => (entry.delay * 2).min(self.policy.max),
            _ => self.policy.initial,
        };
        self.entries.insert(key.to_string(), Entry { delay, last_retry: now });
    }

    /// No retry for twice the maximum delay: the container is considered stable again.
    fn forgotten(&self, entry: &Entry, failed_at: Timestamp) -> bool {
        clock::between(entry.last_retry, failed_at) > self.policy.max * 2
    }
}
// ANCHOR_END: backoff

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{after, at_second};

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn the_first_failure_is_retried_at_once_and_the_next_ones_wait_ever_longer() {
        let mut backoff = BackOff::new(BackOffPolicy::default());
        let t0 = at_second(1_000);
        assert_eq!(backoff.waiting("web", t0, t0), None);
        backoff.retried("web", t0, t0);

        let t1 = after(t0, secs(1));
        assert_eq!(backoff.waiting("web", t1, t1), Some((after(t1, secs(10)), secs(10))));
        let t2 = after(t1, secs(10));
        assert_eq!(backoff.waiting("web", t1, t2), None);
        backoff.retried("web", t1, t2);

        let t3 = after(t2, secs(1));
        assert_eq!(backoff.waiting("web", t3, t3), Some((after(t3, secs(20)), secs(20))));
    }

    #[test]
    fn the_delay_never_exceeds_the_maximum() {
        let mut backoff = BackOff::new(BackOffPolicy { initial: secs(10), max: secs(30) });
        let mut t = at_second(0);
        for _ in 0..6 {
            backoff.retried("web", t, t);
            t = after(t, secs(1));
        }
        assert_eq!(backoff.waiting("web", t, t).map(|(_, delay)| delay), Some(secs(30)));
    }

    #[test]
    fn a_container_quiet_for_twice_the_maximum_starts_again_from_the_initial_delay() {
        let mut backoff = BackOff::new(BackOffPolicy { initial: secs(10), max: secs(60) });
        let t0 = at_second(0);
        backoff.retried("web", t0, t0);
        backoff.retried("web", t0, t0);
        let much_later = after(t0, secs(121));
        assert_eq!(backoff.waiting("web", much_later, much_later), None);
        backoff.retried("web", much_later, much_later);
        let next = after(much_later, secs(1));
        assert_eq!(backoff.waiting("web", next, next).map(|(_, delay)| delay), Some(secs(10)));
    }

    #[test]
    fn keys_back_off_independently() {
        let mut backoff = BackOff::new(BackOffPolicy::default());
        let t0 = at_second(0);
        backoff.retried("web", t0, t0);
        assert!(backoff.waiting("web", t0, t0).is_some());
        assert_eq!(backoff.waiting("sidecar", t0, t0), None);
    }
}
