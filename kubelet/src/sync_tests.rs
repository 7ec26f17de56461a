//! Scenarios of [`sync_actions`], each a pod, what runs for it, and what the kubelet must do.

use super::*;
use crate::backoff::{BackOff, BackOffPolicy};
use crate::fixtures::*;
use crate::probes::{ProbeKind, ProbeResult};
use serde_json::json;

fn observed(containers: Vec<ContainerInfo>) -> ObservedPod {
    ObservedPod { containers, ..Default::default() }
}

fn actions(pod: &Pod, containers: Vec<ContainerInfo>) -> Vec<Action> {
    sync_actions(pod, &observed(containers), now(), &BackOff::default(), &ProbeResults::default())
}

fn start(name: &str, attempt: u32, restart_of: Option<i64>) -> Action {
    Action::StartContainer { name: name.into(), attempt, restart_of: restart_of.map(t) }
}

#[test]
fn a_new_pod_gets_a_sandbox_then_its_containers() {
    let pod = pod(json!([{"name": "app", "image": "a"}, {"name": "sidecar", "image": "b"}]), "Always");
    assert_eq!(
        actions(&pod, vec![]),
        vec![Action::CreateSandbox { attempt: 0, replacing: None }, start("app", 0, None), start("sidecar", 0, None)]
    );
}

#[test]
fn a_pod_whose_containers_all_run_needs_nothing() {
    let pod = one_container_pod("Always");
    assert_eq!(actions(&pod, vec![sandbox("s1", 0), running("c1", "app", 0)]), vec![]);
}

#[test]
fn syncing_twice_in_the_same_state_decides_the_same_thing() {
    let pod = one_container_pod("Always");
    let state = vec![sandbox("s1", 0), exited("c1", "app", 0, 1, 990)];
    assert_eq!(actions(&pod, state.clone()), actions(&pod, state));
}

#[test]
fn an_exited_container_is_restarted_according_to_the_restart_policy() {
    let cases = [
        ("Always", 0, true),
        ("Always", 1, true),
        ("OnFailure", 0, false),
        ("OnFailure", 2, true),
        ("Never", 1, false),
    ];
    for (policy, code, restarts) in cases {
        let pod = one_container_pod(policy);
        let got = actions(&pod, vec![sandbox("s1", 0), exited("c1", "app", 0, code, 990)]);
        assert_eq!(got.contains(&start("app", 1, Some(990))), restarts, "{policy} exit {code}: {got:?}");
    }
}

#[test]
fn a_container_that_crashed_again_waits_for_its_back_off() {
    let pod = one_container_pod("Always");
    let mut backoff = BackOff::new(BackOffPolicy::default());
    backoff.retried("app", t(900), t(900));
    let state = observed(vec![sandbox("s1", 0), exited("c2", "app", 1, 1, 995)]);
    let got = sync_actions(&pod, &state, now(), &backoff, &ProbeResults::default());
    assert_eq!(got, vec![Action::BackOff { name: "app".into(), until: t(1005), delay: Duration::from_secs(10) }]);

    let later = sync_actions(&pod, &state, t(1006), &backoff, &ProbeResults::default());
    assert_eq!(later, vec![start("app", 2, Some(995))]);
}

#[test]
fn a_failed_liveness_probe_kills_the_container_with_the_pods_grace_period() {
    let pod = one_container_pod("Always");
    let mut probes = ProbeResults::default();
    probes.set("c1", ProbeKind::Liveness, ProbeResult::Failure);
    let got = sync_actions(
        &pod,
        &observed(vec![sandbox("s1", 0), running("c1", "app", 0)]),
        now(),
        &BackOff::default(),
        &probes,
    );
    assert_eq!(
        got,
        vec![Action::KillContainer {
            id: "c1".into(),
            name: "app".into(),
            grace: Duration::from_secs(30),
            message: "Container app failed liveness probe, will be restarted".into(),
        }]
    );
}

#[test]
fn a_dead_sandbox_is_replaced_and_the_containers_in_it_are_killed_and_started_again() {
    let pod = one_container_pod("Always");
    let got = actions(&pod, vec![dead_sandbox("s1", 0), running("c1", "app", 0)]);
    assert_eq!(
        got[0],
        Action::KillContainer {
            id: "c1".into(),
            name: "app".into(),
            grace: Duration::from_secs(30),
            message: "Pod sandbox changed, it will be killed and re-created.".into(),
        }
    );
    assert_eq!(got[1], Action::CreateSandbox { attempt: 1, replacing: Some(t(20)) });
    assert_eq!(got[2], start("app", 1, None));
}

#[test]
fn a_never_pod_that_lost_its_sandbox_is_not_started_again() {
    let pod = one_container_pod("Never");
    let got = actions(&pod, vec![dead_sandbox("s1", 0), running("c1", "app", 0)]);
    assert_eq!(
        got,
        vec![Action::KillContainer {
            id: "c1".into(),
            name: "app".into(),
            grace: Duration::from_secs(30),
            message: "Pod sandbox changed, it will be killed and re-created.".into(),
        }]
    );
}

#[test]
fn a_finished_pod_stops_its_sandbox_and_keeps_its_exited_containers() {
    let pod = one_container_pod("Never");
    let got = actions(&pod, vec![sandbox("s1", 0), exited("c1", "app", 0, 0, 990)]);
    assert_eq!(got, vec![Action::StopSandbox { id: "s1".into() }]);
    // Once stopped, nothing more: no new sandbox for a finished pod, and the container stays for its logs.
    assert_eq!(actions(&pod, vec![dead_sandbox("s1", 0), exited("c1", "app", 0, 0, 990)]), vec![]);
}

#[test]
fn a_pod_already_reported_succeeded_is_never_restarted() {
    let mut pod = one_container_pod("Always");
    pod.status.as_mut().unwrap().phase = Some("Succeeded".into());
    assert_eq!(actions(&pod, vec![]), vec![]);
}

#[test]
fn a_pod_being_deleted_has_its_containers_killed_with_the_deletion_grace_period() {
    let mut pod = one_container_pod("Always");
    pod.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now()));
    pod.metadata.deletion_grace_period_seconds = Some(5);
    let got = actions(&pod, vec![sandbox("s1", 0), running("c1", "app", 0)]);
    assert_eq!(
        got,
        vec![
            Action::KillContainer {
                id: "c1".into(),
                name: "app".into(),
                grace: Duration::from_secs(5),
                message: "Stopping container app".into()
            },
            Action::StopSandbox { id: "s1".into() },
        ]
    );
    assert_eq!(actions(&pod, vec![dead_sandbox("s1", 0), exited("c1", "app", 0, 143, 999)]), vec![Action::DeletePod]);
}

#[test]
fn a_grace_period_of_zero_still_leaves_the_minimum_two_seconds() {
    let mut pod = one_container_pod("Always");
    pod.metadata.deletion_grace_period_seconds = Some(0);
    assert_eq!(deletion_grace(&pod), MINIMUM_GRACE);
}

#[test]
fn only_the_two_newest_attempts_of_a_container_are_kept() {
    let pod = one_container_pod("Always");
    let state =
        vec![sandbox("s1", 0), exited("c0", "app", 0, 1, 100), exited("c1", "app", 1, 1, 200), running("c2", "app", 2)];
    assert_eq!(actions(&pod, state), vec![Action::RemoveContainer { id: "c0".into() }]);
}

#[test]
fn containers_no_spec_names_are_killed_or_removed() {
    let pod = one_container_pod("Always");
    let got = actions(
        &pod,
        vec![sandbox("s1", 0), running("c1", "app", 0), running("x", "stray", 0), exited("y", "old", 0, 0, 5)],
    );
    assert!(got.contains(&Action::RemoveContainer { id: "y".into() }), "{got:?}");
    assert!(got.iter().any(|a| matches!(a, Action::KillContainer { id, .. } if id == "x")), "{got:?}");
}

#[test]
fn an_old_dead_sandbox_is_removed_once_no_container_refers_to_it() {
    let pod = one_container_pod("Always");
    let in_sandbox = |mut c: ContainerInfo, sandbox: &str| {
        c.sandbox_id = Some(sandbox.into());
        c
    };
    let first = in_sandbox(exited("c0", "app", 0, 1, 50), "s1");
    let second = in_sandbox(exited("c1", "app", 1, 1, 150), "s2");
    let third = in_sandbox(running("c2", "app", 2), "s2");
    // Two attempts: both kept, and so is the sandbox the older one ran in.
    assert_eq!(
        actions(&pod, vec![dead_sandbox("s1", 0), sandbox("s2", 1), first.clone(), second.clone()]),
        vec![start("app", 2, Some(150))]
    );
    // Three: the oldest goes, and its sandbox with it.
    assert_eq!(
        actions(&pod, vec![dead_sandbox("s1", 0), sandbox("s2", 1), first, second, third]),
        vec![Action::RemoveContainer { id: "c0".into() }, Action::RemoveContainer { id: "s1".into() },]
    );
}

#[test]
fn a_container_left_created_by_a_crashed_kubelet_is_replaced() {
    let pod = one_container_pod("Always");
    let created = ContainerInfo { state: crate::runtime::ContainerState::Created, ..running("c1", "app", 0) };
    assert_eq!(
        actions(&pod, vec![sandbox("s1", 0), created]),
        vec![Action::RemoveContainer { id: "c1".into() }, start("app", 0, None)]
    );
}

#[test]
fn a_sandbox_that_keeps_dying_is_re_created_after_a_back_off() {
    let pod = one_container_pod("Always");
    // The first sandbox exited at t = 20 (the fixture's dead sandbox); the kubelet replaced it at once, at t = 21.
    let mut backoff = BackOff::new(BackOffPolicy { initial: Duration::from_secs(10), max: Duration::from_secs(300) });
    backoff.retried("POD", t(20), t(21));
    let exited_at_22 =
        ContainerState::Exited { exit_code: 1, started_at: Some(t(21)), finished_at: t(22), oom_killed: false };
    let second = ContainerInfo { created_at: t(21), state: exited_at_22, ..dead_sandbox("s2", 1) };
    let dead = observed(vec![dead_sandbox("s1", 0), second]);
    let during = sync_actions(&pod, &dead, t(25), &backoff, &ProbeResults::default());
    assert_eq!(during[0], Action::SandboxBackOff { until: t(32) });
    assert!(!during.iter().any(|a| matches!(a, Action::StartContainer { .. })), "{during:?}");
    let after = sync_actions(&pod, &dead, t(33), &backoff, &ProbeResults::default());
    assert_eq!(after[0], Action::CreateSandbox { attempt: 2, replacing: Some(t(22)) });
}

#[test]
fn a_sandbox_that_never_started_counts_from_its_creation() {
    let pod = one_container_pod("Always");
    let created = ContainerInfo { state: ContainerState::Created, ip: None, ..sandbox("s1", 0) };
    let got = actions(&pod, vec![created]);
    assert_eq!(got[0], Action::CreateSandbox { attempt: 1, replacing: Some(t(10)) });
}
