//! `next_rollout_step` with plain values: single steps, and whole rollouts played against a tiny simulated
//! cluster (a ReplicaSet controller and kubelets that start a pod in one tick) to check the bounds at every tick.

use super::rollout::{Action, Plan, next_rollout_step};
use super::status::{self, PROGRESSING};
use super::template::{self, REVISION, template_hash};
use crate::replicaset::pods::tests::t0;
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStatus, DeploymentStrategy, ReplicaSet, ReplicaSetStatus,
    RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec, PodStatus, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use std::collections::BTreeMap;

fn labels() -> BTreeMap<String, String> {
    [("app".to_string(), "web".to_string())].into()
}

fn pod_template(image: &str) -> PodTemplateSpec {
    PodTemplateSpec {
        metadata: Some(ObjectMeta { labels: Some(labels()), ..Default::default() }),
        spec: Some(PodSpec {
            containers: vec![Container { name: "web".into(), image: Some(image.into()), ..Default::default() }],
            ..Default::default()
        }),
    }
}

/// `n` or `n%`.
fn amount(text: &str) -> IntOrString {
    match text.parse() {
        Ok(n) => IntOrString::Int(n),
        Err(_) => IntOrString::String(text.into()),
    }
}

/// A RollingUpdate Deployment `web` running `image`.
fn deployment(replicas: i32, image: &str, max_surge: &str, max_unavailable: &str) -> Deployment {
    Deployment {
        metadata: ObjectMeta {
            name: Some("web".into()),
            namespace: Some("default".into()),
            uid: Some("deploy-uid".into()),
            generation: Some(1),
            ..Default::default()
        },
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            selector: LabelSelector { match_labels: Some(labels()), ..Default::default() },
            template: pod_template(image),
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(amount(max_surge)),
                    max_unavailable: Some(amount(max_unavailable)),
                }),
            }),
            revision_history_limit: Some(10),
            progress_deadline_seconds: Some(600),
            ..Default::default()
        }),
        status: None,
    }
}

fn recreate(replicas: i32, image: &str) -> Deployment {
    let mut d = deployment(replicas, image, "1", "0");
    d.spec.as_mut().unwrap().strategy =
        Some(DeploymentStrategy { type_: Some("Recreate".into()), rolling_update: None });
    d
}

/// The ReplicaSet `d` would have made for `image` at `revision`, with `replicas` pods all available, created
/// `age` seconds before `t0()`.
fn replica_set(d: &Deployment, image: &str, revision: i64, replicas: i32, age: i64) -> ReplicaSet {
    let mut for_image = d.clone();
    for_image.spec.as_mut().unwrap().template = pod_template(image);
    let mut rs = template::new_replica_set(&for_image, &template_hash(&pod_template(image), None), replicas);
    let desired = d.spec.as_ref().unwrap().replicas.unwrap();
    template::set_replicas_annotations(&mut rs, desired, desired + super::scaling::max_surge(d));
    rs.metadata.annotations.get_or_insert_default().insert(REVISION.into(), revision.to_string());
    rs.metadata.uid = Some(format!("uid-{image}"));
    rs.metadata.generation = Some(1);
    rs.metadata.creation_timestamp = Some(Time(t0() - SignedDuration::from_secs(age)));
    rs.status = Some(ReplicaSetStatus {
        replicas,
        available_replicas: Some(replicas),
        ready_replicas: Some(replicas),
        observed_generation: Some(1),
        ..Default::default()
    });
    rs
}

fn image_of(rs: &ReplicaSet) -> String {
    let template = rs.spec.as_ref().and_then(|s| s.template.as_ref()).and_then(|t| t.spec.as_ref());
    template.and_then(|s| s.containers[0].image.clone()).unwrap_or_default()
}

/// A plan in words: `create web:2 ×1`, `scale web:1 4→3`, `revision 2`, `delete web-x`, `status`.
fn describe(plan: &Plan) -> Vec<String> {
    plan.actions
        .iter()
        .map(|action| match action {
            Action::CreateReplicaSet(rs) => format!("create {} ×{}", image_of(rs), super::scaling::replicas(rs)),
            Action::UpdateReplicaSet { replica_set, scaled_from } => {
                let to = super::scaling::replicas(replica_set);
                if to == *scaled_from {
                    format!("annotate {}", image_of(replica_set))
                } else {
                    format!("scale {} {scaled_from}→{to}", image_of(replica_set))
                }
            }
            Action::DeleteReplicaSet { name } => format!("delete {name}"),
            Action::SetRevision(revision) => format!("revision {revision}"),
            Action::UpdateStatus(_) => "status".into(),
            Action::AdoptReplicaSet { name, .. } => format!("adopt {name}"),
            Action::ReleaseReplicaSet { name, .. } => format!("release {name}"),
            Action::Warn { reason, .. } => format!("warn {reason}"),
        })
        .collect()
}

fn status_of(plan: &Plan) -> DeploymentStatus {
    plan.actions
        .iter()
        .find_map(|a| match a {
            Action::UpdateStatus(status) => Some((**status).clone()),
            _ => None,
        })
        .expect("a status update")
}

fn condition<'a>(status: &'a DeploymentStatus, type_: &str) -> (&'a str, &'a str, &'a str) {
    let c = status::get(status, type_).expect("the condition");
    (c.status.as_str(), c.reason.as_deref().unwrap_or(""), c.message.as_deref().unwrap_or(""))
}

// ---- single steps ----

#[test]
fn a_new_deployment_creates_its_first_replica_set_at_full_size_as_revision_1() {
    let d = deployment(4, "web:1", "25%", "25%");
    let plan = next_rollout_step(&d, &[], &[], t0());
    assert_eq!(describe(&plan), vec!["create web:1 ×4", "revision 1", "status"]);
    let status = status_of(&plan);
    let name = format!("web-{}", template_hash(&pod_template("web:1"), None));
    assert_eq!(
        condition(&status, PROGRESSING),
        ("True", "NewReplicaSetCreated", &*format!("Created new replica set {name:?}"))
    );
    assert_eq!(condition(&status, "Available").1, "MinimumReplicasUnavailable");
    let Action::CreateReplicaSet(rs) = &plan.actions[0] else { unreachable!() };
    assert_eq!(rs.metadata.name.as_deref(), Some(name.as_str()));
    let hash = rs.spec.as_ref().unwrap().selector.match_labels.as_ref().unwrap()["pod-template-hash"].clone();
    assert_eq!(rs.metadata.labels.as_ref().unwrap()["pod-template-hash"], hash);
    let owner: &OwnerReference = &rs.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!((owner.kind.as_str(), owner.controller), ("Deployment", Some(true)));
}

#[test]
fn surge_1_unavailable_0_first_adds_one_new_pod_and_removes_nothing_until_it_is_available() {
    let d = deployment(4, "web:2", "1", "0");
    let old = replica_set(&d, "web:1", 1, 4, 600);
    assert_eq!(
        describe(&next_rollout_step(&d, std::slice::from_ref(&old), &[], t0())),
        vec!["create web:2 ×1", "revision 2", "status"]
    );
    let mut new = replica_set(&d, "web:2", 2, 1, 10);
    new.status.as_mut().unwrap().available_replicas = None;
    let waiting = next_rollout_step(&d, &[old.clone(), new.clone()], &[], t0());
    assert!(!describe(&waiting).iter().any(|a| a.starts_with("scale")), "{:?}", describe(&waiting));
    new.status.as_mut().unwrap().available_replicas = Some(1);
    assert_eq!(describe(&next_rollout_step(&d, &[old, new], &[], t0()))[0], "scale web:1 4→3");
}

#[test]
fn surge_0_unavailable_1_first_removes_an_old_pod_then_adds_a_new_one() {
    let d = deployment(4, "web:2", "0", "1");
    let old = replica_set(&d, "web:1", 1, 4, 600);
    assert_eq!(
        describe(&next_rollout_step(&d, &[old], &[], t0())),
        vec!["create web:2 ×0", "scale web:1 4→3", "revision 2", "status"]
    );
}

#[test]
fn with_25_percent_each_4_replicas_allow_one_more_and_one_less() {
    let d = deployment(4, "web:2", "25%", "25%");
    let old = replica_set(&d, "web:1", 1, 4, 600);
    assert_eq!(
        describe(&next_rollout_step(&d, &[old], &[], t0())),
        vec!["create web:2 ×1", "scale web:1 4→3", "revision 2", "status"]
    );
}

#[test]
fn with_25_percent_each_10_replicas_allow_three_more_and_two_less() {
    let d = deployment(10, "web:2", "25%", "25%");
    let old = replica_set(&d, "web:1", 1, 10, 600);
    assert_eq!(
        describe(&next_rollout_step(&d, &[old], &[], t0())),
        vec!["create web:2 ×3", "scale web:1 10→8", "revision 2", "status"]
    );
}

#[test]
fn recreate_scales_old_replica_sets_to_zero_then_waits_for_their_pods_then_creates_the_new_one() {
    let d = recreate(3, "web:2");
    let mut old = replica_set(&d, "web:1", 1, 3, 600);
    assert_eq!(describe(&next_rollout_step(&d, &[old.clone()], &[], t0()))[0], "scale web:1 3→0");
    // Scaled to 0, but one pod is still shutting down: wait.
    old.spec.as_mut().unwrap().replicas = Some(0);
    old.status = Some(ReplicaSetStatus { replicas: 0, observed_generation: Some(1), ..Default::default() });
    let mut terminating = Pod {
        metadata: ObjectMeta {
            name: Some("web-old-x".into()),
            namespace: Some("default".into()),
            owner_references: Some(vec![crate::controller::ownership::controller_ref(
                "apps/v1",
                "ReplicaSet",
                &old.metadata,
            )]),
            deletion_timestamp: Some(Time(t0())),
            ..Default::default()
        },
        spec: None,
        status: Some(PodStatus { phase: Some("Running".into()), ..Default::default() }),
    };
    let waiting = describe(&next_rollout_step(&d, &[old.clone()], &[terminating.clone()], t0()));
    assert!(!waiting.iter().any(|a| a.starts_with("create")), "{waiting:?}");
    terminating.status.as_mut().unwrap().phase = Some("Succeeded".into());
    assert_eq!(describe(&next_rollout_step(&d, &[old], &[terminating], t0()))[0], "create web:2 ×3");
}

#[test]
fn scaling_mid_rollout_shares_the_new_pods_in_proportion() {
    // Kubernetes' documented example: 10 replicas, maxSurge 3, maxUnavailable 2, a rollout stuck at 8 old and
    // 5 new pods; scaled to 15, the 5 extra pods (15 + 3 − 13) go 3 to the old ReplicaSet and 2 to the new.
    let mut d = deployment(10, "web:2", "3", "2");
    let old = replica_set(&d, "web:1", 1, 8, 600);
    let new = replica_set(&d, "web:2", 2, 5, 60);
    d.spec.as_mut().unwrap().replicas = Some(15);
    let plan = describe(&next_rollout_step(&d, &[old, new], &[], t0()));
    assert_eq!(plan[..2], ["scale web:1 8→11", "scale web:2 5→7"]);
}

#[test]
fn scaling_a_finished_deployment_scales_its_only_replica_set() {
    let mut d = deployment(4, "web:1", "25%", "25%");
    let rs = replica_set(&d, "web:1", 1, 4, 600);
    d.spec.as_mut().unwrap().replicas = Some(6);
    assert_eq!(describe(&next_rollout_step(&d, &[rs], &[], t0()))[0], "scale web:1 4→6");
}

#[test]
fn rollback_reuses_the_old_replica_set_and_gives_it_the_next_revision() {
    // `kubectl rollout undo` put web:1's template back; its ReplicaSet (revision 1, scaled to 0) still exists.
    let d = deployment(4, "web:1", "1", "0");
    let mut v1 = replica_set(&d, "web:1", 1, 0, 600);
    let v2 = replica_set(&d, "web:2", 2, 4, 300);
    // The template as the API hands it back carries the hash label and `creationTimestamp: null`.
    v1.spec.as_mut().unwrap().template.as_mut().unwrap().metadata.as_mut().unwrap().creation_timestamp = None;
    let plan = next_rollout_step(&d, &[v1, v2], &[], t0());
    assert_eq!(describe(&plan)[..2], ["scale web:1 0→1", "revision 3"]);
    let Action::UpdateReplicaSet { replica_set, .. } = &plan.actions[0] else { unreachable!() };
    let annotations = replica_set.metadata.annotations.as_ref().unwrap();
    assert_eq!((annotations[REVISION].as_str(), annotations[template::REVISION_HISTORY].as_str()), ("3", "1"));
    assert!(!describe(&plan).iter().any(|a| a.starts_with("create")));
}

#[test]
fn a_paused_deployment_does_not_roll_out_a_new_template_but_still_scales() {
    let mut d = deployment(4, "web:2", "25%", "25%");
    d.spec.as_mut().unwrap().paused = Some(true);
    let old = replica_set(&d, "web:1", 1, 4, 600);
    let plan = next_rollout_step(&d, std::slice::from_ref(&old), &[], t0());
    assert_eq!(describe(&plan), vec!["status"]);
    assert_eq!(condition(&status_of(&plan), PROGRESSING), ("Unknown", "DeploymentPaused", "Deployment is paused"));
    d.spec.as_mut().unwrap().replicas = Some(5);
    assert_eq!(describe(&next_rollout_step(&d, &[old], &[], t0()))[0], "scale web:1 4→5");
}

#[test]
fn a_rollout_without_progress_for_the_deadline_is_reported_failed_and_not_pushed_further() {
    let mut d = deployment(4, "web:2", "1", "0");
    d.metadata.annotations = Some([(REVISION.to_string(), "2".to_string())].into());
    let old = replica_set(&d, "web:1", 1, 4, 900);
    let mut new = replica_set(&d, "web:2", 2, 1, 700);
    new.status = Some(ReplicaSetStatus { replicas: 1, observed_generation: Some(1), ..Default::default() });
    let name = new.metadata.name.clone().unwrap();
    let since = t0() - SignedDuration::from_secs(601);
    let mut stuck = status::condition(
        PROGRESSING,
        "True",
        "ReplicaSetUpdated",
        format!("ReplicaSet {name:?} is progressing."),
        since,
    );
    stuck.last_transition_time = Some(Time(since));
    d.status = Some(DeploymentStatus {
        conditions: Some(vec![stuck]),
        replicas: Some(5),
        updated_replicas: Some(1),
        ready_replicas: Some(4),
        available_replicas: Some(4),
        observed_generation: Some(1),
        ..Default::default()
    });
    let plan = next_rollout_step(&d, &[old, new], &[], t0());
    assert_eq!(describe(&plan), vec!["status"]);
    let message = format!("ReplicaSet {name:?} has timed out progressing.");
    assert_eq!(condition(&status_of(&plan), PROGRESSING), ("False", "ProgressDeadlineExceeded", message.as_str()));
    assert_eq!(plan.requeue_after, None);
}

#[test]
fn a_rollout_still_within_its_deadline_asks_to_be_checked_when_it_falls() {
    let d = deployment(4, "web:1", "25%", "25%");
    let plan = next_rollout_step(&d, &[], &[], t0());
    assert_eq!(plan.requeue_after, Some(std::time::Duration::from_secs(601)));
}

#[test]
fn restarting_changes_the_template_hence_a_new_replica_set() {
    let mut d = deployment(2, "web:1", "25%", "25%");
    let rs = replica_set(&d, "web:1", 1, 2, 600);
    let annotations = d.spec.as_mut().unwrap().template.metadata.as_mut().unwrap().annotations.get_or_insert_default();
    annotations.insert("kubectl.kubernetes.io/restartedAt".into(), "2025-01-01T00:00:00Z".into());
    assert_eq!(describe(&next_rollout_step(&d, &[rs], &[], t0()))[0], "create web:1 ×1");
}

#[test]
fn old_empty_replica_sets_beyond_the_history_limit_are_deleted_oldest_revision_first() {
    let mut d = deployment(2, "web:5", "25%", "25%");
    d.spec.as_mut().unwrap().revision_history_limit = Some(2);
    let mut all: Vec<ReplicaSet> = (1..=4).map(|r| replica_set(&d, &format!("web:{r}"), r, 0, 1000 - r * 10)).collect();
    all.push(replica_set(&d, "web:5", 5, 2, 10));
    let names: Vec<String> = all.iter().map(|rs| rs.metadata.name.clone().unwrap()).collect();
    d.status = Some(DeploymentStatus {
        replicas: Some(2),
        updated_replicas: Some(2),
        available_replicas: Some(2),
        observed_generation: Some(1),
        ..Default::default()
    });
    let plan = describe(&next_rollout_step(&d, &all, &[], t0()));
    assert!(
        plan.contains(&format!("delete {}", names[0])) && plan.contains(&format!("delete {}", names[1])),
        "{plan:?}"
    );
    assert!(!plan.contains(&format!("delete {}", names[2])), "{plan:?}");
}

#[test]
fn a_name_taken_by_a_foreign_replica_set_bumps_the_collision_count() {
    let d = deployment(2, "web:1", "25%", "25%");
    let mut squatter = replica_set(&d, "web:1", 1, 0, 600);
    squatter.metadata.owner_references = None;
    squatter.metadata.labels = Some([("app".to_string(), "other".to_string())].into());
    squatter.spec.as_mut().unwrap().template = Some(pod_template("other:1"));
    let plan = next_rollout_step(&d, &[squatter], &[], t0());
    assert_eq!(describe(&plan), vec!["status"]);
    assert_eq!(status_of(&plan).collision_count, Some(1));
}

#[test]
fn a_finished_rollout_says_its_replica_set_has_successfully_progressed() {
    let mut d = deployment(3, "web:1", "25%", "25%");
    let rs = replica_set(&d, "web:1", 1, 3, 600);
    let name = rs.metadata.name.clone().unwrap();
    let earlier = status::condition(PROGRESSING, "True", "ReplicaSetUpdated", String::new(), t0());
    d.status = Some(DeploymentStatus {
        conditions: Some(vec![earlier]),
        replicas: Some(3),
        updated_replicas: Some(3),
        available_replicas: Some(2),
        observed_generation: Some(1),
        ..Default::default()
    });
    let status = status_of(&next_rollout_step(&d, &[rs], &[], t0()));
    let message = format!("ReplicaSet {name:?} has successfully progressed.");
    assert_eq!(condition(&status, PROGRESSING), ("True", "NewReplicaSetAvailable", message.as_str()));
    assert_eq!(
        condition(&status, "Available"),
        ("True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
    );
}

// ---- whole rollouts ----

/// A tiny cluster: the Deployment, its ReplicaSets, and pods that need one tick to become available.
struct Cluster {
    deployment: Deployment,
    replica_sets: Vec<ReplicaSet>,
    /// Pods created in the last tick, per ReplicaSet name: available at the next tick.
    starting: BTreeMap<String, i32>,
    now: Timestamp,
}

impl Cluster {
    fn new(deployment: Deployment, replica_sets: Vec<ReplicaSet>) -> Self {
        Cluster { deployment, replica_sets, starting: BTreeMap::new(), now: t0() }
    }

    /// One tick: kubelets report started pods available; the Deployment controller takes a step; ReplicaSet
    /// controllers create and delete pods (unavailable ones first). Returns `(old spec, new spec, pods,
    /// available)`, summed over old and new ReplicaSets.
    fn tick(&mut self, new_image: &str) -> (i32, i32, i32, i32) {
        self.now += SignedDuration::from_secs(1);
        for rs in &mut self.replica_sets {
            let status = rs.status.get_or_insert_default();
            let started = self.starting.remove(rs.metadata.name.as_deref().unwrap()).unwrap_or(0);
            status.available_replicas = Some(status.available_replicas.unwrap_or(0) + started);
        }
        let plan = next_rollout_step(&self.deployment, &self.replica_sets, &[], self.now);
        self.apply(plan);
        let (mut old, mut new, mut pods, mut available) = (0, 0, 0, 0);
        for rs in &mut self.replica_sets {
            let want = rs.spec.as_ref().unwrap().replicas.unwrap();
            let is_new = image_of(rs) == new_image;
            let status = rs.status.get_or_insert_default();
            let (have, up) = (status.replicas, status.available_replicas.unwrap_or(0));
            if want > have {
                *self.starting.entry(rs.metadata.name.clone().unwrap()).or_default() += want - have;
            } else {
                let unavailable = have - up;
                status.available_replicas = Some(up - (have - want - unavailable).max(0));
            }
            status.replicas = want;
            status.observed_generation = rs.metadata.generation;
            if is_new {
                new += want
            } else {
                old += want
            }
            pods += want;
            available += status.available_replicas.unwrap_or(0);
        }
        (old, new, pods, available)
    }

    fn apply(&mut self, plan: Plan) {
        for action in plan.actions {
            match action {
                Action::CreateReplicaSet(mut rs) => {
                    rs.metadata.creation_timestamp = Some(Time(self.now));
                    rs.metadata.uid = rs.metadata.name.clone();
                    rs.metadata.generation = Some(1);
                    self.replica_sets.push(*rs);
                }
                Action::UpdateReplicaSet { replica_set, .. } => {
                    let rs =
                        self.replica_sets.iter_mut().find(|r| r.metadata.name == replica_set.metadata.name).unwrap();
                    let status = rs.status.clone();
                    *rs = *replica_set;
                    rs.status = status;
                }
                Action::DeleteReplicaSet { name } => {
                    self.replica_sets.retain(|r| r.metadata.name.as_ref() != Some(&name))
                }
                Action::SetRevision(r) => {
                    self.deployment.metadata.annotations.get_or_insert_default().insert(REVISION.into(), r);
                }
                Action::UpdateStatus(status) => self.deployment.status = Some(*status),
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    /// Rolls out `image`, checking the bounds at every tick; returns the trace of ticks.
    fn roll_out(&mut self, image: &str) -> Vec<(i32, i32, i32, i32)> {
        let spec = self.deployment.spec.as_mut().unwrap();
        spec.template = pod_template(image);
        self.deployment.metadata.generation = Some(2);
        let desired = spec.replicas.unwrap();
        let (surge, unavailable) = super::scaling::fenceposts(&self.deployment);
        let mut trace = Vec::new();
        for _ in 0..50 {
            let row = self.tick(image);
            assert!(row.2 <= desired + surge, "more than {desired} + {surge} pods: {trace:?} then {row:?}");
            assert!(
                row.3 >= desired - unavailable,
                "fewer than {desired} − {unavailable} available: {trace:?} then {row:?}"
            );
            trace.push(row);
            if row == (0, desired, desired, desired) {
                return trace;
            }
        }
        panic!("the rollout did not finish: {trace:?}");
    }
}

// ANCHOR: rollout_trace
#[test]
fn a_rolling_update_of_10_replicas_with_25_percent_surge_and_unavailability() {
    let d = deployment(10, "web:1", "25%", "25%");
    let old = replica_set(&d, "web:1", 1, 10, 600);
    let mut cluster = Cluster::new(d, vec![old]);
    // (old pods, new pods, all pods, available pods) after each step: never more than 13, never fewer than 8
    // available.
    assert_eq!(
        cluster.roll_out("web:2"),
        vec![(8, 3, 11, 8), (8, 5, 13, 11), (3, 5, 8, 8), (3, 10, 13, 8), (0, 10, 10, 10)]
    );
    let status = cluster.deployment.status.clone().unwrap();
    assert_eq!(cluster.tick("web:2"), (0, 10, 10, 10));
    assert_eq!(condition(&cluster.deployment.status.clone().unwrap(), PROGRESSING).1, "NewReplicaSetAvailable");
    assert_eq!(status.updated_replicas, Some(10));
}
// ANCHOR_END: rollout_trace

#[test]
fn a_rolling_update_with_surge_1_and_unavailable_0_never_drops_below_4_available_nor_exceeds_5_pods() {
    let d = deployment(4, "web:1", "1", "0");
    let mut cluster = Cluster::new(d.clone(), vec![replica_set(&d, "web:1", 1, 4, 600)]);
    let trace = cluster.roll_out("web:2");
    assert_eq!(trace.first(), Some(&(4, 1, 5, 4)));
}

#[test]
fn a_rolling_update_with_surge_0_and_unavailable_1_never_exceeds_4_pods() {
    let d = deployment(4, "web:1", "0", "1");
    let mut cluster = Cluster::new(d.clone(), vec![replica_set(&d, "web:1", 1, 4, 600)]);
    let trace = cluster.roll_out("web:2");
    assert_eq!(trace.first(), Some(&(3, 0, 3, 3)));
}

#[test]
fn a_rolling_update_of_4_replicas_with_25_percent_each() {
    let d = deployment(4, "web:1", "25%", "25%");
    let mut cluster = Cluster::new(d.clone(), vec![replica_set(&d, "web:1", 1, 4, 600)]);
    cluster.roll_out("web:2");
}

#[test]
fn a_second_rollout_before_the_first_finished_leaves_the_middle_version_behind() {
    let d = deployment(10, "web:1", "25%", "25%");
    let mut cluster = Cluster::new(d.clone(), vec![replica_set(&d, "web:1", 1, 10, 600)]);
    let spec = cluster.deployment.spec.as_mut().unwrap();
    spec.template = pod_template("web:2");
    cluster.tick("web:2");
    cluster.tick("web:2");
    cluster.roll_out("web:3");
    let revisions: Vec<Option<i64>> = cluster.replica_sets.iter().map(|rs| template::revision(&rs.metadata)).collect();
    assert_eq!(revisions, vec![Some(1), Some(2), Some(3)]);
}
