//! The scores: of the nodes that can run the pod, which is best?
//!
//! Each score is one of kube-scheduler's *Score plugins*: it gives every feasible node a number from 0 to
//! [`MAX_NODE_SCORE`], and the node with the highest weighted sum wins. Some plugins can only score a node
//! relative to the others (the most crowded node gets 0); they give a raw number per node and a *normalize* step
//! turns the raw numbers into 0–100 once all nodes are scored, as kube-scheduler's `NormalizeScore` does.
//!
//! | score                   | kube-scheduler plugin                          | weight | favours                          |
//! |-------------------------|------------------------------------------------|-------:|----------------------------------|
//! | [`least_allocated`]     | `NodeResourcesFit` (strategy `LeastAllocated`) | 1      | nodes with the most room left    |
//! | [`balanced_allocation`] | `NodeResourcesBalancedAllocation`              | 1      | nodes whose CPU and memory use would be alike |
//! | [`owner_spread`]        | `SelectorSpread`, today `PodTopologySpread`'s default constraints | 2 | nodes with the fewest pods of the same controller |

use crate::node_info::NodeInfo;
use crate::pod_info::PodInfo;

/// The best score a plugin gives a node (`framework.MaxNodeScore`).
pub const MAX_NODE_SCORE: i64 = 100;

/// A score plugin: its name, its weight in the sum, how it scores one node, and how raw scores become 0–100.
pub struct Score {
    /// kube-scheduler's name for it.
    pub name: &'static str,
    /// Its weight in the default profile.
    pub weight: i64,
    /// The raw score of one node.
    pub score: fn(&PodInfo, &NodeInfo) -> i64,
    /// Rescales the raw scores of all feasible nodes to 0–100, for plugins that need to see them all.
    pub normalize: Option<fn(&mut [i64])>,
}

// ANCHOR: scores
/// The scores and their weights, as in kube-scheduler's default profile.
pub const SCORES: [Score; 3] = [
    Score { name: "NodeResourcesFit", weight: 1, score: least_allocated, normalize: None },
    Score { name: "NodeResourcesBalancedAllocation", weight: 1, score: balanced_allocation, normalize: None },
    Score { name: "SelectorSpread", weight: 2, score: owner_spread, normalize: Some(normalize_reverse) },
];

/// The weighted sum of every score, for each of `nodes` (in the same order).
pub fn total_scores(pod: &PodInfo, nodes: &[&NodeInfo]) -> Vec<i64> {
    let mut totals = vec![0; nodes.len()];
    for plugin in &SCORES {
        let mut scores: Vec<i64> = nodes.iter().map(|node| (plugin.score)(pod, node)).collect();
        if let Some(normalize) = plugin.normalize {
            normalize(&mut scores);
        }
        for (total, score) in totals.iter_mut().zip(scores) {
            *total += plugin.weight * score;
        }
    }
    totals
}
// ANCHOR_END: scores

// ANCHOR: least_allocated
/// `LeastAllocated`: the share of CPU and of memory the node would still have free with the pod on it, averaged.
/// It spreads load: an empty node scores 100, a full one 0. Pods that request nothing count with the defaults
/// (`100m`, `200Mi`), so that they spread too.
pub fn least_allocated(pod: &PodInfo, node: &NodeInfo) -> i64 {
    let requested = node.usage.non_zero_requested.plus(pod.usage.non_zero);
    let cpu = least_requested(requested.milli_cpu, node.allocatable.milli_cpu);
    let memory = least_requested(requested.memory, node.allocatable.memory);
    (cpu + memory) / 2
}

/// `(capacity - requested) * 100 / capacity`, and 0 for an overcommitted or empty resource.
fn least_requested(requested: i64, capacity: i64) -> i64 {
    if capacity <= 0 || requested > capacity {
        return 0;
    }
    // i128: memory in bytes times 100 may not fit in an i64 on absurdly large nodes.
    ((i128::from(capacity - requested) * i128::from(MAX_NODE_SCORE)) / i128::from(capacity)) as i64
}
// ANCHOR_END: least_allocated

/// `BalancedAllocation`: a node where the pod would leave CPU and memory equally used scores 100; one where it
/// would use all the CPU but no memory scores 50. It avoids nodes with lots of one resource stranded because
/// the other is exhausted. The score is `(1 - σ) * 100`, σ the standard deviation of the two usage fractions;
/// pods that request nothing are not scored (Kubernetes skips them so they do not pile up on one node).
pub fn balanced_allocation(pod: &PodInfo, node: &NodeInfo) -> i64 {
    let wanted = pod.usage.requests;
    if wanted.milli_cpu == 0 && wanted.memory == 0 {
        return 0;
    }
    let requested = node.usage.requested.plus(wanted);
    let fraction = |used: i64, capacity: i64| (capacity > 0).then(|| (used as f64 / capacity as f64).min(1.0));
    let deviation = match (
        fraction(requested.milli_cpu, node.allocatable.milli_cpu),
        fraction(requested.memory, node.allocatable.memory),
    ) {
        (Some(cpu), Some(memory)) => (cpu - memory).abs() / 2.0,
        _ => 0.0,
    };
    ((1.0 - deviation) * MAX_NODE_SCORE as f64) as i64
}

/// Spreading: the raw score is how many pods of the pod's controller (its ReplicaSet, say) the node already
/// runs; [`normalize_reverse`] then gives the fewest 100 and the most 0, so replicas spread over nodes and one
/// lost node does not take them all. Pods without a controller score the same everywhere.
///
/// This is the old `SelectorSpread` plugin counting by owner rather than by Service and controller selectors;
/// Kubernetes now does the same job with `PodTopologySpread` and its default constraints (at most a skew of 3
/// per node, `ScheduleAnyway`), with weight 2.
pub fn owner_spread(pod: &PodInfo, node: &NodeInfo) -> i64 {
    match &pod.usage.owner {
        Some(owner) => node.usage.owners.get(owner).copied().map_or(0, i64::from),
        None => 0,
    }
}

/// Kubernetes' `DefaultNormalizeScore(MaxNodeScore, reverse = true)`: the highest raw score becomes 0, a raw 0
/// becomes 100, and when all are 0 all become 100.
pub fn normalize_reverse(scores: &mut [i64]) {
    let max = scores.iter().copied().max().unwrap_or(0);
    for score in scores.iter_mut() {
        *score = if max == 0 { MAX_NODE_SCORE } else { MAX_NODE_SCORE - MAX_NODE_SCORE * *score / max };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{node, pod};

    #[test]
    fn least_allocated_prefers_the_emptier_node() {
        let p = pod("p").requests("1", "1Gi").info();
        // 4 CPU, 4Gi: with the pod, 3/4 of each is free.
        assert_eq!(least_allocated(&p, &node("empty", "4", "4Gi").info()), 75);
        let busy = node("busy", "4", "4Gi").with(&pod("old").requests("2", "2Gi"));
        assert_eq!(least_allocated(&p, &busy.info()), 25);
    }

    #[test]
    fn least_allocated_counts_pods_without_requests_with_the_defaults() {
        // 100m of 1000m and 200Mi of 1000Mi used: 90 and 80, average 85.
        assert_eq!(least_allocated(&pod("p").info(), &node("n", "1", "1000Mi").info()), 85);
    }

    #[test]
    fn least_allocated_gives_zero_when_the_node_would_be_overcommitted() {
        assert_eq!(least_requested(5, 4), 0);
        assert_eq!(least_requested(1, 0), 0);
        assert_eq!(least_requested(0, 4), 100);
    }

    #[test]
    fn balanced_allocation_prefers_even_cpu_and_memory_use() {
        let p = pod("p").requests("1", "1Gi").info();
        // 1/4 cpu and 1/4 memory: perfectly balanced.
        assert_eq!(balanced_allocation(&p, &node("even", "4", "4Gi").info()), 100);
        // 1/1 cpu and 1/4 memory: σ = 0.375.
        assert_eq!(balanced_allocation(&p, &node("cpu-poor", "1", "4Gi").info()), 62);
        assert_eq!(balanced_allocation(&pod("best-effort").info(), &node("even", "4", "4Gi").info()), 0);
    }

    #[test]
    fn owner_spread_favours_nodes_with_fewer_siblings() {
        let replica = pod("web-3").owner("rs-web");
        let two = node("a", "4", "4Gi").with(&pod("web-1").owner("rs-web")).with(&pod("web-2").owner("rs-web"));
        let one = node("b", "4", "4Gi").with(&pod("web-0").owner("rs-web")).with(&pod("db").owner("rs-db"));
        let none = node("c", "4", "4Gi");
        let mut scores: Vec<i64> =
            [two.info(), one.info(), none.info()].iter().map(|n| owner_spread(&replica.info(), n)).collect();
        assert_eq!(scores, [2, 1, 0]);
        normalize_reverse(&mut scores);
        assert_eq!(scores, [0, 50, 100]);
    }

    #[test]
    fn normalizing_all_zero_scores_gives_everyone_the_maximum() {
        let mut scores = [0, 0];
        normalize_reverse(&mut scores);
        assert_eq!(scores, [100, 100]);
    }

    #[test]
    fn the_total_is_the_weighted_sum() {
        let p = pod("p").requests("1", "1Gi").owner("rs").info();
        let n = node("n", "4", "4Gi").info();
        // 75 (least allocated) + 100 (balanced) + 2 * 100 (no sibling anywhere).
        assert_eq!(total_scores(&p, &[&n]), [375]);
    }
}
