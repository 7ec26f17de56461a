//! The strategies: how one step of a rollout moves pods, for `RollingUpdate` and `Recreate`, and how a
//! Deployment resized mid-rollout shares the change among its ReplicaSets (proportional scaling).
//!
//! Mirrors `pkg/controller/deployment/rolling.go`, `recreate.go` and `sync.go` (`scale`). Each function changes
//! the [`Step`]'s copies of the ReplicaSets; at the end of the step, every copy that changed becomes a write.

use super::rollout::{Step, by_creation};
use super::scaling::{
    self, available_estimate, desired, is_rolling_update, max_surge, max_unavailable, new_rs_new_replicas, replicas,
};
use super::status;
use super::template::{DESIRED_REPLICAS, int_annotation};
use crate::replicaset::pods::phase;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;

impl Step<'_> {
    // ANCHOR: recreate
    /// Recreate: scale every old ReplicaSet to 0, wait until their pods are gone, then create the new
    /// ReplicaSet at full size (`rolloutRecreate`).
    pub(super) fn recreate(&mut self, pods: &[Pod]) {
        let mut scaled_down = false;
        for index in self.active_olds() {
            scaled_down |= self.scale_to(index, 0);
        }
        if scaled_down || self.old_pods_running(pods) {
            return self.sync_rollout_status();
        }
        if !self.ensure_new_rs() {
            return;
        }
        if let Some(index) = self.new_rs {
            self.scale_to(index, desired(self.deployment));
        }
        if status::complete(self.deployment, &self.status) {
            self.prune_history();
        }
        self.sync_rollout_status();
    }

    /// Whether any pod of an old ReplicaSet still runs (terminating ones included; finished ones not).
    fn old_pods_running(&self, pods: &[Pod]) -> bool {
        let olds = self.olds();
        if olds.iter().any(|i| scaling::actual(&self.replica_sets[*i]) > 0) {
            return true;
        }
        let old_uids: Vec<&str> = olds.iter().filter_map(|i| self.replica_sets[*i].metadata.uid.as_deref()).collect();
        pods.iter().any(|pod| {
            let owner = crate::controller::ownership::controller_of(&pod.metadata);
            owner.is_some_and(|o| old_uids.contains(&o.uid.as_str()))
                && pod.metadata.namespace == self.deployment.metadata.namespace
                && !matches!(phase(pod), "Succeeded" | "Failed")
        })
    }
    // ANCHOR_END: recreate

    // ANCHOR: rolling_update
    /// RollingUpdate: scale the new ReplicaSet up as far as the surge allows; if it could not grow, scale old
    /// ones down as far as availability allows; when done, prune history (`rolloutRolling`).
    pub(super) fn rolling_update(&mut self) {
        if !self.ensure_new_rs() {
            return;
        }
        if self.grow_new_rs() || self.shrink_old_rss() {
            return self.sync_rollout_status();
        }
        if status::complete(self.deployment, &self.status) {
            self.prune_history();
        }
        self.sync_rollout_status();
    }

    /// `reconcileNewReplicaSet`: the new ReplicaSet grows toward `replicas` within the surge.
    fn grow_new_rs(&mut self) -> bool {
        let Some(new) = self.new_rs else { return false };
        let want = desired(self.deployment);
        let size = replicas(&self.replica_sets[new]);
        if size == want {
            return false;
        }
        if size > want {
            return self.scale_to(new, want);
        }
        let all: Vec<&ReplicaSet> = self.replica_sets.iter().collect();
        let grown = new_rs_new_replicas(self.deployment, &all, &self.replica_sets[new]);
        self.scale_to(new, grown)
    }

    /// `reconcileOldReplicaSets`: old ReplicaSets shrink, first their unavailable pods, then as many available
    /// ones as keep `replicas − maxUnavailable` available.
    fn shrink_old_rss(&mut self) -> bool {
        let Some(new) = self.new_rs else { return false };
        let olds = self.active_olds();
        if olds.is_empty() {
            return false;
        }
        let asked_for: i32 = self.replica_sets.iter().map(replicas).sum();
        let min_available = desired(self.deployment) - max_unavailable(self.deployment);
        let new_unavailable = replicas(&self.replica_sets[new]) - scaling::available(&self.replica_sets[new]);
        let max_scaled_down = asked_for - min_available - new_unavailable;
        if max_scaled_down <= 0 {
            return false;
        }
        // Unhealthy pods first: they serve nobody, and waiting for them could stall the rollout forever. (The
        // ReplicaSet controller deletes unavailable pods first, so shrinking to the available count removes
        // only those.)
        let mut cleaned = 0;
        for &index in &olds {
            let rs = &self.replica_sets[index];
            let unhealthy = replicas(rs) - scaling::available(rs);
            if cleaned >= max_scaled_down || unhealthy <= 0 {
                continue;
            }
            let count = unhealthy.min(max_scaled_down - cleaned);
            self.scale_to(index, replicas(rs) - count);
            cleaned += count;
        }
        // Then healthy ones, as far as availability allows, counting only the available pods that will stay
        // (see `available_estimate`).
        let available: i32 = olds.iter().chain([&new]).map(|i| available_estimate(&self.replica_sets[*i])).sum();
        let mut scaled = 0;
        let allowed = available - min_available;
        for &index in &olds {
            let size = replicas(&self.replica_sets[index]);
            if scaled >= allowed || size == 0 {
                continue;
            }
            let count = size.min(allowed - scaled);
            self.scale_to(index, size - count);
            scaled += count;
        }
        cleaned + scaled.max(0) > 0
    }
    // ANCHOR_END: rolling_update
}

// ANCHOR: proportional
impl Step<'_> {
    /// Scaling without rolling (`scale`): a paused Deployment, or one resized mid-rollout. With one active
    /// ReplicaSet, it takes the new size. Mid-rollout, the change is shared among the active ReplicaSets in
    /// proportion to their sizes (bigger ones first; leftovers to the biggest), so a rollout that was 30% done
    /// stays 30% done: *proportional scaling*.
    pub fn scale(&mut self) {
        let want = desired(self.deployment);
        if let Some(index) = self.active_or_latest() {
            self.scale_to(index, want);
            return;
        }
        if self.new_rs.is_some_and(|i| self.is_saturated(i)) {
            // The new ReplicaSet has everything: the old ones only have to go.
            for index in self.active_olds() {
                self.scale_to(index, 0);
            }
            return;
        }
        if !is_rolling_update(self.deployment) {
            return;
        }
        let mut active: Vec<usize> =
            (0..self.replica_sets.len()).filter(|i| replicas(&self.replica_sets[*i]) > 0).collect();
        let current: i32 = active.iter().map(|i| replicas(&self.replica_sets[*i])).sum();
        let allowed = if want > 0 { want + max_surge(self.deployment) } else { 0 };
        let to_add = allowed - current;
        // Bigger first; among equals, newer first when growing and older first when shrinking.
        active.sort_by(|a, b| {
            let (ra, rb) = (&self.replica_sets[*a], &self.replica_sets[*b]);
            let by_age = if to_add > 0 { by_creation(rb, ra) } else { by_creation(ra, rb) };
            replicas(rb).cmp(&replicas(ra)).then(by_age)
        });
        let mut added = 0;
        let mut sizes = Vec::new();
        for &index in &active {
            let rs = &self.replica_sets[index];
            let share = if to_add != 0 { scaling::proportion(rs, self.deployment, to_add, added) } else { 0 };
            added += share;
            sizes.push(replicas(rs) + share);
        }
        for (position, (&index, mut size)) in active.iter().zip(sizes).enumerate() {
            if position == 0 && to_add != 0 {
                size = (size + to_add - added).max(0);
            }
            self.resize(index, size);
        }
    }

    /// The only active ReplicaSet, or the newest if none is active; `None` when several are (`FindActiveOrLatest`).
    fn active_or_latest(&self) -> Option<usize> {
        let active: Vec<usize> =
            (0..self.replica_sets.len()).filter(|i| replicas(&self.replica_sets[*i]) > 0).collect();
        match active.as_slice() {
            [] => self.new_rs.or_else(|| self.olds().last().copied()),
            [only] => Some(*only),
            _ => None,
        }
    }

    /// The new ReplicaSet has all the pods the Deployment wants, all available (`IsSaturated`).
    fn is_saturated(&self, index: usize) -> bool {
        let rs = &self.replica_sets[index];
        let want = desired(self.deployment);
        replicas(rs) == want && int_annotation(rs, DESIRED_REPLICAS) == Some(want) && scaling::available(rs) == want
    }
}
// ANCHOR_END: proportional
