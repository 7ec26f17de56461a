//! Probe results: what the kubelet has learnt by probing containers, and how one result becomes a verdict.
//!
//! A **liveness** probe answers "should this container be restarted?"; a **readiness** probe answers "should it
//! receive traffic?" (the pod's `Ready` condition, which Services follow). Each runs every `periodSeconds`
//! after `initialDelaySeconds`, and one failure is not enough to change its verdict: the result flips only after
//! `failureThreshold` consecutive failures (3 by default), or `successThreshold` consecutive successes (1).
//!
//! Until a probe has run, readiness is *Failure* (a container is not ready before it says so) and liveness is
//! *Success* (a container is not killed before it had a chance). Results are kept per container *id*: a
//! restarted container is a new container, probed afresh. Running the probes is [`crate::prober`]'s job.

use std::collections::BTreeMap;

/// The verdict of a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeResult {
    Success,
    Failure,
}

/// Liveness or readiness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ProbeKind {
    Liveness,
    Readiness,
}

impl ProbeKind {
    /// The verdict before the first probe.
    pub fn initial(self) -> ProbeResult {
        match self {
            ProbeKind::Liveness => ProbeResult::Success,
            ProbeKind::Readiness => ProbeResult::Failure,
        }
    }

    /// `Liveness` / `Readiness`, as event messages say it.
    pub fn title(self) -> &'static str {
        match self {
            ProbeKind::Liveness => "Liveness",
            ProbeKind::Readiness => "Readiness",
        }
    }
}

/// Every verdict, by container id and probe kind. Containers without a probe of a kind have no entry for it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProbeResults {
    results: BTreeMap<(String, ProbeKind), ProbeResult>,
}

impl ProbeResults {
    /// Records a verdict.
    pub fn set(&mut self, container_id: &str, kind: ProbeKind, result: ProbeResult) {
        self.results.insert((container_id.to_string(), kind), result);
    }

    /// The verdict for a container, if it has that probe and it has been set.
    pub fn get(&self, container_id: &str, kind: ProbeKind) -> Option<ProbeResult> {
        self.results.get(&(container_id.to_string(), kind)).copied()
    }

    /// True when the container's liveness probe has failed: the kubelet must restart it.
    pub fn liveness_failed(&self, container_id: &str) -> bool {
        self.get(container_id, ProbeKind::Liveness) == Some(ProbeResult::Failure)
    }

    /// Forgets a container that no longer runs.
    pub fn forget(&mut self, container_id: &str) {
        self.results.retain(|(id, _), _| id != container_id);
    }
}

/// Turns single probe outcomes into a verdict, with the thresholds of the probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tracker {
    /// The current verdict.
    pub result: ProbeResult,
    /// How many outcomes in a row disagreed with it (or agreed, when equal to it: then 0).
    streak: u32,
    success_threshold: u32,
    failure_threshold: u32,
}

impl Tracker {
    /// A tracker for a probe of `kind` with its thresholds (Kubernetes' defaults are 1 and 3).
    pub fn new(kind: ProbeKind, success_threshold: i32, failure_threshold: i32) -> Self {
        let threshold = |t: i32| u32::try_from(t).unwrap_or(1).max(1);
        Tracker {
            result: kind.initial(),
            streak: 0,
            success_threshold: threshold(success_threshold),
            failure_threshold: threshold(failure_threshold),
        }
    }

    // ANCHOR: record
    /// Records one outcome; returns the new verdict when it changed.
    pub fn record(&mut self, outcome: ProbeResult) -> Option<ProbeResult> {
        if outcome == self.result {
            self.streak = 0;
            return None;
        }
        self.streak += 1;
        let needed = match outcome {
            ProbeResult::Success => self.success_threshold,
            ProbeResult::Failure => self.failure_threshold,
        };
        if self.streak < needed {
            return None;
        }
        self.result = outcome;
        self.streak = 0;
        Some(outcome)
    }
    // ANCHOR_END: record
}

#[cfg(test)]
mod tests {
    use super::*;
    use ProbeResult::{Failure, Success};

    #[test]
    fn readiness_starts_failed_and_liveness_starts_alive() {
        assert_eq!(Tracker::new(ProbeKind::Readiness, 1, 3).result, Failure);
        assert_eq!(Tracker::new(ProbeKind::Liveness, 1, 3).result, Success);
    }

    #[test]
    fn one_success_makes_a_container_ready_with_the_default_threshold() {
        let mut tracker = Tracker::new(ProbeKind::Readiness, 1, 3);
        assert_eq!(tracker.record(Success), Some(Success));
    }

    #[test]
    fn liveness_fails_only_after_failure_threshold_failures_in_a_row() {
        let mut tracker = Tracker::new(ProbeKind::Liveness, 1, 3);
        assert_eq!(tracker.record(Failure), None);
        assert_eq!(tracker.record(Failure), None);
        assert_eq!(tracker.record(Success), None, "a success in between resets the count");
        assert_eq!(tracker.record(Failure), None);
        assert_eq!(tracker.record(Failure), None);
        assert_eq!(tracker.record(Failure), Some(Failure));
    }

    #[test]
    fn results_are_kept_per_container_id_and_forgotten_with_the_container() {
        let mut results = ProbeResults::default();
        results.set("c1", ProbeKind::Liveness, Failure);
        assert!(results.liveness_failed("c1"));
        assert!(!results.liveness_failed("c2"));
        results.forget("c1");
        assert_eq!(results.get("c1", ProbeKind::Liveness), None);
    }
}
