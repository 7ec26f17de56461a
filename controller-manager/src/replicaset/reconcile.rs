//! The ReplicaSet controller's decision, as a pure function: given a ReplicaSet and the pods of its namespace,
//! what to do now.

use super::pods::{self, deletion_order, is_active, is_available, is_ready, pod_from_template};
use crate::controller::Reconciled;
use crate::controller::ownership::{self, Claim, adopt_patch, claim, controller_ref, release_patch};
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kubelab_api::selectors::LabelSelector;
use serde_json::Value;

/// At most this many pods are created or deleted in one reconcile (Kubernetes' `BurstReplicas`); the rest wait
/// for the next one, so that one huge ReplicaSet cannot monopolise the apiserver.
pub const BURST_REPLICAS: usize = 500;

/// One thing the ReplicaSet controller does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Take an orphan pod that matches the selector (a merge patch adding our controller reference).
    Adopt { pod: String, patch: Value },
    /// Let go of a pod of ours that no longer matches (a merge patch removing our reference).
    Release { pod: String, patch: Value },
    /// Create `count` pods like `pod` (each gets its own generated name).
    CreatePods { count: usize, pod: Box<Pod> },
    /// Delete these pods, best candidates first.
    DeletePods(Vec<String>),
    /// Write the status (only emitted when it differs from the stored one).
    UpdateStatus(Box<ReplicaSetStatus>),
}

// ANCHOR: reconcile
/// Decides what to do for `rs`, given every pod of its namespace (from the cache) and the time.
///
/// 1. **claim**: among the active pods, ours are those controlled by `rs` and matching its selector; orphans
///    that match are adopted, pods of ours that stopped matching are released;
/// 2. **scale**: too few pods → create the difference from the template; too many → delete the surplus, best
///    candidates first ([`deletion_order`]) — unless `rs` is being deleted;
/// 3. **status**: count what was observed (before this round's creations and deletions, as Kubernetes does)
///    and write it only if it changed.
pub fn reconcile(rs: &ReplicaSet, pods: &[Pod], now: Timestamp) -> Reconciled<Action> {
    let mut decided = Reconciled::nothing();
    let Some(spec) = rs.spec.as_ref() else { return decided };
    let Ok(selector) = LabelSelector::from_wire(&spec.selector) else { return decided };
    let name = rs.metadata.name.clone().unwrap_or_default();
    let namespace = rs.metadata.namespace.clone().unwrap_or_default();

    // 1. Claim.
    let mut owned: Vec<&Pod> = Vec::new();
    let reference = controller_ref("apps/v1", "ReplicaSet", &rs.metadata);
    for pod in pods.iter().filter(|p| is_active(p) && p.metadata.namespace.as_deref() == Some(&namespace)) {
        let pod_name = pod.metadata.name.clone().unwrap_or_default();
        match claim(&rs.metadata, &selector, &pod.metadata) {
            Claim::Owned => owned.push(pod),
            Claim::Adopt => {
                decided.actions.push(Action::Adopt { pod: pod_name, patch: adopt_patch(&pod.metadata, &reference) });
                owned.push(pod);
            }
            Claim::Release => {
                let patch = release_patch(&pod.metadata, &reference.uid);
                decided.actions.push(Action::Release { pod: pod_name, patch });
            }
            Claim::Ignore => {}
        }
    }

    // 2. Scale.
    let wanted = usize::try_from(spec.replicas.unwrap_or(1)).unwrap_or(0);
    if rs.metadata.deletion_timestamp.is_none() {
        if owned.len() < wanted {
            let count = (wanted - owned.len()).min(BURST_REPLICAS);
            let template = spec.template.clone().unwrap_or_default();
            let pod = pod_from_template(&template, &namespace, &name, reference.clone());
            decided.actions.push(Action::CreatePods { count, pod: Box::new(pod) });
        } else if owned.len() > wanted {
            let mut candidates = owned.clone();
            candidates.sort_by(|a, b| deletion_order(a, b));
            let surplus = (owned.len() - wanted).min(BURST_REPLICAS);
            let names = candidates.iter().take(surplus).map(|p| p.metadata.name.clone().unwrap_or_default());
            decided.actions.push(Action::DeletePods(names.collect()));
        }
    }

    // 3. Status.
    let status = status(rs, &owned, now);
    if rs.status.as_ref() != Some(&status) {
        decided.actions.push(Action::UpdateStatus(Box::new(status)));
    }
    // A pod that is ready but not yet available becomes available with time alone: look again then.
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    if let Some(wait) = owned.iter().filter_map(|p| pods::time_to_available(p, min_ready, now)).min() {
        decided.requeue_within(wait);
    }
    decided
}
// ANCHOR_END: reconcile

// ANCHOR: status
/// The status of `rs` given the active pods it owns: how many there are, how many carry all the template's
/// labels, how many are ready, how many have been ready for `minReadySeconds` (available). Kubernetes omits
/// zero counts, and so do we, so that an unchanged status compares equal to the stored one.
pub fn status(rs: &ReplicaSet, owned: &[&Pod], now: Timestamp) -> ReplicaSetStatus {
    let spec = rs.spec.as_ref();
    let min_ready = spec.and_then(|s| s.min_ready_seconds).unwrap_or(0);
    let template_labels =
        spec.and_then(|s| s.template.as_ref()).and_then(|t| t.metadata.as_ref()).and_then(|m| m.labels.clone());
    let fully_labeled = owned
        .iter()
        .filter(|pod| {
            let labels = ownership::labels_of(&pod.metadata);
            template_labels.iter().flatten().all(|(k, v)| labels.get(k) == Some(v))
        })
        .count();
    let ready = owned.iter().filter(|p| is_ready(p)).count();
    let available = owned.iter().filter(|p| is_available(p, min_ready, now)).count();

    let mut status = rs.status.clone().unwrap_or_default();
    status.replicas = count(owned.len()).unwrap_or(0);
    status.fully_labeled_replicas = count(fully_labeled);
    status.ready_replicas = count(ready);
    status.available_replicas = count(available);
    status.observed_generation = rs.metadata.generation;
    // Assume this round's creations and deletions succeed; the shell puts the condition back if they fail.
    if let Some(conditions) = status.conditions.as_mut() {
        conditions.retain(|c| c.type_ != "ReplicaFailure");
    }
    if status.conditions.as_ref().is_some_and(Vec::is_empty) {
        status.conditions = None;
    }
    status
}
// ANCHOR_END: status

/// A count as the API writes it: omitted when zero.
pub fn count(n: usize) -> Option<i32> {
    let n = i32::try_from(n).unwrap_or(i32::MAX);
    (n != 0).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replicaset::pods::tests::{pod, t0};
    use k8s_openapi::api::apps::v1::ReplicaSetSpec;
    use k8s_openapi::api::core::v1::PodTemplateSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector as WireSelector, ObjectMeta};
    use std::collections::BTreeMap;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn replica_set(replicas: i32) -> ReplicaSet {
        ReplicaSet {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("default".into()),
                uid: Some("rs-uid".into()),
                generation: Some(2),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(replicas),
                selector: WireSelector { match_labels: Some(labels(&[("app", "web")])), ..Default::default() },
                template: Some(PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(labels(&[("app", "web"), ("tier", "front")])),
                        ..Default::default()
                    }),
                    spec: None,
                }),
                ..Default::default()
            }),
            status: None,
        }
    }

    /// A pod of `rs` (controlled by it, with its template's labels).
    fn owned(name: &str, phase: &str, ready_for: Option<i64>, age: i64) -> Pod {
        let mut pod = pod(name, phase, ready_for, age);
        pod.metadata.labels = Some(labels(&[("app", "web"), ("tier", "front")]));
        pod.metadata.owner_references = Some(vec![controller_ref("apps/v1", "ReplicaSet", &replica_set(1).metadata)]);
        pod
    }

    fn kinds(decided: &Reconciled<Action>) -> Vec<String> {
        decided
            .actions
            .iter()
            .map(|a| match a {
                Action::Adopt { pod, .. } => format!("adopt {pod}"),
                Action::Release { pod, .. } => format!("release {pod}"),
                Action::CreatePods { count, .. } => format!("create {count}"),
                Action::DeletePods(names) => format!("delete {}", names.join(",")),
                Action::UpdateStatus(_) => "status".into(),
            })
            .collect()
    }

    #[test]
    fn a_new_replica_set_creates_its_pods_from_the_template_with_itself_as_controller() {
        let decided = reconcile(&replica_set(3), &[], t0());
        assert_eq!(kinds(&decided), vec!["create 3", "status"]);
        let Action::CreatePods { pod, .. } = &decided.actions[0] else { unreachable!() };
        assert_eq!(pod.metadata.generate_name.as_deref(), Some("web-"));
        assert_eq!(pod.metadata.labels.as_ref().unwrap()["tier"], "front");
        let owner = &pod.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.uid.as_str(), owner.controller, owner.block_owner_deletion),
            ("rs-uid", Some(true), Some(true))
        );
    }

    #[test]
    fn surplus_pods_are_deleted_not_ready_and_youngest_first() {
        let pods = vec![
            owned("old-ready", "Running", Some(100), 200),
            owned("young-ready", "Running", Some(10), 20),
            owned("not-ready", "Running", None, 300),
        ];
        let decided = reconcile(&replica_set(1), &pods, t0());
        assert_eq!(kinds(&decided), vec!["delete not-ready,young-ready", "status"]);
    }

    #[test]
    fn matching_orphans_are_adopted_and_count_while_pods_that_stop_matching_are_released() {
        let mut orphan = owned("orphan", "Running", Some(10), 10);
        orphan.metadata.owner_references = None;
        let mut relabelled = owned("relabelled", "Running", Some(10), 10);
        relabelled.metadata.labels = Some(labels(&[("app", "debug")]));
        let decided = reconcile(&replica_set(2), &[orphan, relabelled, owned("a", "Running", Some(5), 5)], t0());
        assert_eq!(kinds(&decided), vec!["adopt orphan", "release relabelled", "status"]);
    }

    #[test]
    fn finished_terminating_and_foreign_pods_do_not_count() {
        let mut terminating = owned("terminating", "Running", Some(10), 10);
        terminating.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(t0()));
        let mut foreign = owned("foreign", "Running", Some(10), 10);
        foreign.metadata.owner_references.as_mut().unwrap()[0].uid = "other".into();
        let pods = vec![terminating, foreign, owned("done", "Succeeded", None, 10), owned("a", "Running", None, 5)];
        assert_eq!(kinds(&reconcile(&replica_set(2), &pods, t0())), vec!["create 1", "status"]);
    }

    #[test]
    fn status_counts_ready_available_and_fully_labelled_pods_and_is_not_rewritten_when_unchanged() {
        let mut rs = replica_set(3);
        rs.spec.as_mut().unwrap().min_ready_seconds = Some(30);
        let mut partly_labelled = owned("c", "Running", None, 10);
        partly_labelled.metadata.labels = Some(labels(&[("app", "web")]));
        let pods = vec![owned("a", "Running", Some(60), 100), owned("b", "Running", Some(5), 100), partly_labelled];
        let decided = reconcile(&rs, &pods, t0());
        let Some(Action::UpdateStatus(status)) = decided.actions.last() else { panic!("{decided:?}") };
        assert_eq!(status.replicas, 3);
        assert_eq!(status.fully_labeled_replicas, Some(2));
        assert_eq!(status.ready_replicas, Some(2));
        assert_eq!(status.available_replicas, Some(1));
        assert_eq!(status.observed_generation, Some(2));
        // Pod b becomes available 25 s from now (plus a second of margin): look again then.
        assert_eq!(decided.requeue_after, Some(std::time::Duration::from_secs(26)));
        rs.status = Some((**status).clone());
        assert!(kinds(&reconcile(&rs, &pods, t0())).is_empty());
    }

    #[test]
    fn a_replica_set_being_deleted_only_reports_status() {
        let mut rs = replica_set(3);
        rs.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(t0()));
        assert_eq!(kinds(&reconcile(&rs, &[], t0())), vec!["status"]);
    }

    #[test]
    fn creations_are_capped_by_the_burst_limit() {
        let decided = reconcile(&replica_set(2000), &[], t0());
        assert_eq!(kinds(&decided)[0], format!("create {BURST_REPLICAS}"));
    }
}
