//! The arithmetic of a rolling update: how many pods may be added, how many may be missing.
//!
//! `maxSurge` and `maxUnavailable` are numbers (`1`) or percentages of `spec.replicas` (`25%`). A percentage
//! of surge rounds **up** and one of unavailability rounds **down**: with 10 replicas and 25%/25%, up to
//! 13 pods may exist (10 + ⌈2.5⌉) and at least 8 must be available (10 − ⌊2.5⌋). Both may not resolve to 0 — the
//! rollout could never move — so an unavailability of 0 becomes 1 when the surge is 0 too.
//!
//! Mirrors `pkg/controller/deployment/util/deployment_util.go` (`ResolveFenceposts`, `MaxSurge`,
//! `MaxUnavailable`, `NewRSNewReplicas`, `GetReplicaSetProportion`) and `intstr.GetScaledValueFromIntOrPercent`.

use super::template::{DESIRED_REPLICAS, MAX_REPLICAS, int_annotation};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// `spec.replicas` of a Deployment (1 when unset, as defaulting would make it).
pub fn desired(deployment: &Deployment) -> i32 {
    deployment.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

/// `spec.replicas` of a ReplicaSet (0 when unset: a ReplicaSet the Deployment made always has it).
pub fn replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
}

/// `status.replicas`: the pods the ReplicaSet actually has.
pub fn actual(rs: &ReplicaSet) -> i32 {
    rs.status.as_ref().map_or(0, |s| s.replicas)
}

/// `status.availableReplicas`.
pub fn available(rs: &ReplicaSet) -> i32 {
    rs.status.as_ref().and_then(|s| s.available_replicas).unwrap_or(0)
}

/// `status.readyReplicas`.
pub fn ready(rs: &ReplicaSet) -> i32 {
    rs.status.as_ref().and_then(|s| s.ready_replicas).unwrap_or(0)
}

// ANCHOR: estimates
/// The pods a ReplicaSet has *or* is asked for, whichever is more: `spec.replicas` alone (what Kubernetes counts)
/// forgets the pods of a ReplicaSet just scaled down that its controller has not deleted yet, and the surge
/// would briefly be exceeded. Kubernetes 1.33 has the same fix behind a feature gate (`podReplacementPolicy`).
pub fn pods_estimate(rs: &ReplicaSet) -> i32 {
    replicas(rs).max(actual(rs))
}

/// The available pods a ReplicaSet will still have once it is down to `spec.replicas`: its last reported count,
/// minus the pods it is about to delete (which may be available ones). Kubernetes uses the reported count
/// alone; while a scale-down is in flight that count is too high, and a second scale-down decided on it could
/// take availability below `maxUnavailable`.
pub fn available_estimate(rs: &ReplicaSet) -> i32 {
    let leaving = (actual(rs) - replicas(rs)).max(0);
    (available(rs) - leaving).max(0)
}
// ANCHOR_END: estimates

/// Whether the Deployment's strategy is `RollingUpdate` (the default).
pub fn is_rolling_update(deployment: &Deployment) -> bool {
    let strategy = deployment.spec.as_ref().and_then(|s| s.strategy.as_ref());
    strategy.and_then(|s| s.type_.as_deref()).unwrap_or("RollingUpdate") == "RollingUpdate"
}

// ANCHOR: scaled_value
/// A number, or a percentage of `total` rounded up or down (`GetScaledValueFromIntOrPercent`). A malformed
/// percentage (validation refuses them) counts as 0.
pub fn scaled_value(value: &IntOrString, total: i32, round_up: bool) -> i32 {
    match value {
        IntOrString::Int(n) => *n,
        IntOrString::String(text) => {
            let Some(Ok(percent)) = text.strip_suffix('%').map(str::parse::<i64>) else { return 0 };
            let scaled = percent * i64::from(total);
            let rounded = if round_up { (scaled + 99).div_euclid(100) } else { scaled.div_euclid(100) };
            i32::try_from(rounded).unwrap_or(0)
        }
    }
}

/// `(maxSurge, maxUnavailable)` as pod counts for this Deployment (`ResolveFenceposts`).
pub fn fenceposts(deployment: &Deployment) -> (i32, i32) {
    let desired = desired(deployment);
    let strategy = deployment.spec.as_ref().and_then(|s| s.strategy.as_ref());
    let rolling = strategy.and_then(|s| s.rolling_update.as_ref());
    let zero = IntOrString::Int(0);
    let surge = scaled_value(rolling.and_then(|r| r.max_surge.as_ref()).unwrap_or(&zero), desired, true);
    let unavailable = scaled_value(rolling.and_then(|r| r.max_unavailable.as_ref()).unwrap_or(&zero), desired, false);
    if surge == 0 && unavailable == 0 {
        // 25% of 3 is 0 and 0 — but a rollout must be able to move: allow one pod down.
        return (0, 1);
    }
    (surge, unavailable)
}
// ANCHOR_END: scaled_value

/// How many pods above `spec.replicas` may exist during a rolling update (0 for Recreate).
pub fn max_surge(deployment: &Deployment) -> i32 {
    if !is_rolling_update(deployment) {
        return 0;
    }
    fenceposts(deployment).0
}

/// How many of `spec.replicas` may be unavailable during a rolling update (0 for Recreate), never more than
/// `spec.replicas`.
pub fn max_unavailable(deployment: &Deployment) -> i32 {
    let desired = desired(deployment);
    if !is_rolling_update(deployment) || desired == 0 {
        return 0;
    }
    fenceposts(deployment).1.min(desired)
}

// ANCHOR: new_rs_new_replicas
/// The size the new ReplicaSet may grow to now (`NewRSNewReplicas`). Rolling update: as many pods as the surge
/// allows in total (counting every ReplicaSet's pods, see [`pods_estimate`]), but never beyond `spec.replicas`. Recreate: all of them at once (old pods are gone by then).
pub fn new_rs_new_replicas(deployment: &Deployment, all: &[&ReplicaSet], new_rs: &ReplicaSet) -> i32 {
    let desired = desired(deployment);
    if !is_rolling_update(deployment) {
        return desired;
    }
    let max_total = desired + fenceposts(deployment).0;
    let current: i32 = all.iter().map(|rs| pods_estimate(rs)).sum();
    if current >= max_total {
        return replicas(new_rs);
    }
    let scale_up = (max_total - current).min(desired - replicas(new_rs));
    replicas(new_rs) + scale_up.max(0)
}
// ANCHOR_END: new_rs_new_replicas

/// What share of `to_add` (positive to grow, negative to shrink) goes to `rs` in a proportional scale
/// (`GetReplicaSetProportion`): its size scaled by how the Deployment's maximum size changed since the
/// ReplicaSet was last scaled (its `max-replicas` annotation), never more than what is left to hand out.
pub fn proportion(rs: &ReplicaSet, deployment: &Deployment, to_add: i32, added: i32) -> i32 {
    if replicas(rs) == 0 || to_add == 0 || to_add == added {
        return 0;
    }
    let fraction = fraction(rs, deployment);
    let allowed = to_add - added;
    if to_add > 0 { fraction.min(allowed) } else { fraction.max(allowed) }
}

fn fraction(rs: &ReplicaSet, deployment: &Deployment) -> i32 {
    let desired = desired(deployment);
    if desired == 0 {
        return -replicas(rs);
    }
    let max_now = desired + max_surge(deployment);
    let max_before = match int_annotation(rs, MAX_REPLICAS) {
        Some(max) if max != 0 => max,
        _ => match deployment.status.as_ref().and_then(|s| s.replicas) {
            Some(replicas) if replicas != 0 => replicas,
            _ => return 0,
        },
    };
    let size = f64::from(replicas(rs)) * f64::from(max_now) / f64::from(max_before);
    // Go's `integer.RoundToInt32`: round half away from zero.
    (size.round() as i32) - replicas(rs)
}

/// Whether the ReplicaSet's annotations record a different Deployment size than now (`isScalingEvent`).
pub fn scaled_for_another_size(rs: &ReplicaSet, deployment: &Deployment) -> bool {
    int_annotation(rs, DESIRED_REPLICAS).is_some_and(|recorded| recorded != desired(deployment))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment};

    fn deployment(replicas: i32, surge: IntOrString, unavailable: IntOrString) -> Deployment {
        Deployment {
            spec: Some(DeploymentSpec {
                replicas: Some(replicas),
                strategy: Some(DeploymentStrategy {
                    type_: Some("RollingUpdate".into()),
                    rolling_update: Some(RollingUpdateDeployment {
                        max_surge: Some(surge),
                        max_unavailable: Some(unavailable),
                    }),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn pct(p: &str) -> IntOrString {
        IntOrString::String(p.into())
    }

    #[test]
    fn percentages_of_surge_round_up_and_of_unavailability_round_down() {
        assert_eq!(fenceposts(&deployment(10, pct("25%"), pct("25%"))), (3, 2));
        assert_eq!(fenceposts(&deployment(4, pct("25%"), pct("25%"))), (1, 1));
        assert_eq!(fenceposts(&deployment(1, pct("25%"), pct("25%"))), (1, 0));
        assert_eq!(fenceposts(&deployment(4, IntOrString::Int(1), IntOrString::Int(0))), (1, 0));
    }

    #[test]
    fn when_both_round_to_zero_one_pod_may_be_unavailable() {
        assert_eq!(fenceposts(&deployment(3, pct("0%"), pct("25%"))), (0, 1));
        assert_eq!(max_unavailable(&deployment(3, pct("0%"), pct("25%"))), 1);
    }

    #[test]
    fn unavailability_never_exceeds_the_replicas_and_is_zero_for_an_empty_deployment() {
        assert_eq!(max_unavailable(&deployment(2, IntOrString::Int(0), IntOrString::Int(5))), 2);
        assert_eq!(max_unavailable(&deployment(0, IntOrString::Int(1), IntOrString::Int(1))), 0);
    }

    #[test]
    fn a_malformed_percentage_counts_as_zero() {
        assert_eq!(scaled_value(&pct("abc"), 10, true), 0);
        assert_eq!(scaled_value(&pct("50"), 10, true), 0);
    }
}
