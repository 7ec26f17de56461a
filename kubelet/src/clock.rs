//! Time as the pod status writes it.
//!
//! `k8s-openapi` represents `metav1.Time` as a `jiff::Timestamp` (serialized to the second, like Kubernetes),
//! so the kubelet's pure functions take their "now" as one: a test passes a fixed instant, the shell passes
//! [`now`]. Back-off delays are `std::time::Duration`s, added with [`after`].

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use std::time::Duration;

/// The current time: the one definition every component shares.
pub use kubelab_api::time::now;

/// `instant + delay`, saturating at the end of time rather than failing.
pub fn after(instant: Timestamp, delay: Duration) -> Timestamp {
    let delay = SignedDuration::try_from(delay).unwrap_or(SignedDuration::MAX);
    instant.checked_add(delay).unwrap_or(Timestamp::MAX)
}

/// How long from `earlier` to `later`; zero if `later` is not later.
pub fn between(earlier: Timestamp, later: Timestamp) -> Duration {
    Duration::try_from(later.duration_since(earlier)).unwrap_or_default()
}

/// An instant given in whole seconds since 1970 (tests, and timestamps read back from the apiserver).
pub fn at_second(seconds: i64) -> Timestamp {
    Timestamp::from_second(seconds).unwrap_or(Timestamp::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_between_instants_never_go_negative() {
        let t = at_second(1_000);
        assert_eq!(between(t, after(t, Duration::from_secs(10))), Duration::from_secs(10));
        assert_eq!(between(after(t, Duration::from_secs(10)), t), Duration::ZERO);
    }

    #[test]
    fn now_is_after_2020() {
        assert!(now() > at_second(1_577_836_800));
    }
}
