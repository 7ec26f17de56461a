//! Scenarios of [`pod_status`]: what `kubectl get pods` would show for each situation.

use super::*;
use crate::fixtures::*;
use crate::probes::{ProbeKind, ProbeResult};
use crate::sync::Waiting;
use serde_json::json;

fn status_of(pod: &Pod, containers: Vec<ContainerInfo>) -> PodStatus {
    let observed = ObservedPod { containers, host_ip: Some("127.0.1.1".parse().unwrap()), ..Default::default() };
    pod_status(pod, &observed, &ProbeResults::default(), now())
}

fn condition_of<'a>(status: &'a PodStatus, kind: &str) -> &'a PodCondition {
    status.conditions.iter().flatten().find(|c| c.type_ == kind).unwrap()
}

fn only_container(status: &PodStatus) -> &ContainerStatus {
    &status.container_statuses.as_ref().unwrap()[0]
}

#[test]
fn a_pod_whose_containers_are_being_created_is_pending_and_container_creating() {
    let status = status_of(&one_container_pod("Always"), vec![]);
    assert_eq!(status.phase.as_deref(), Some("Pending"));
    let waiting = only_container(&status).state.clone().unwrap().waiting.unwrap();
    assert_eq!(waiting.reason.as_deref(), Some("ContainerCreating"));
    assert_eq!(condition_of(&status, "PodReadyToStartContainers").status, "False");
    assert_eq!(status.pod_ip, None);
    assert_eq!(status.host_ip.as_deref(), Some("127.0.1.1"));
    assert_eq!(status.start_time, Some(Time(now())));
    assert_eq!(status.qos_class.as_deref(), Some("BestEffort"), "the QoS class is kept");
}

#[test]
fn a_running_pod_reports_its_ip_its_container_and_ready_conditions() {
    let status = status_of(&one_container_pod("Always"), vec![sandbox("s1", 0), running("c1", "app", 0)]);
    assert_eq!(status.phase.as_deref(), Some("Running"));
    assert_eq!(status.pod_ip.as_deref(), Some("10.244.1.5"));
    assert_eq!(status.pod_ips.as_ref().unwrap()[0].ip, "10.244.1.5");
    let app = only_container(&status);
    assert!(app.ready);
    assert_eq!(app.container_id.as_deref(), Some("docker://c1"));
    assert_eq!(app.image_id, "docker://sha256:busybox");
    assert_eq!(app.state.clone().unwrap().running.unwrap().started_at, Some(Time(t(20))));
    for kind in ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"] {
        assert_eq!(condition_of(&status, kind).status, "True", "{kind}");
    }
}

#[test]
fn a_container_that_exited_zero_under_never_makes_the_pod_succeeded() {
    let status = status_of(&one_container_pod("Never"), vec![dead_sandbox("s1", 0), exited("c1", "app", 0, 0, 990)]);
    assert_eq!(status.phase.as_deref(), Some("Succeeded"));
    let terminated = only_container(&status).state.clone().unwrap().terminated.unwrap();
    assert_eq!((terminated.exit_code, terminated.reason.as_deref()), (0, Some("Completed")));
    assert_eq!(terminated.finished_at, Some(Time(t(990))));
    assert_eq!(condition_of(&status, "Ready").reason.as_deref(), Some("PodCompleted"));
}

#[test]
fn a_failed_container_fails_the_pod_under_never_and_keeps_it_running_under_always() {
    let state = || vec![sandbox("s1", 0), exited("c1", "app", 0, 3, 990)];
    let never = status_of(&one_container_pod("Never"), state());
    assert_eq!(never.phase.as_deref(), Some("Failed"));
    assert_eq!(only_container(&never).state.clone().unwrap().terminated.unwrap().reason.as_deref(), Some("Error"));
    assert_eq!(status_of(&one_container_pod("Always"), state()).phase.as_deref(), Some("Running"));
    assert_eq!(status_of(&one_container_pod("OnFailure"), state()).phase.as_deref(), Some("Running"));
}

#[test]
fn a_crash_looping_container_waits_with_its_last_exit_as_last_state() {
    let pod = one_container_pod("Always");
    let message = "back-off 10s restarting failed container=app pod=web_default(uid-1)".to_string();
    let observed = ObservedPod {
        containers: vec![sandbox("s1", 0), exited("c1", "app", 0, 1, 100), exited("c2", "app", 1, 1, 990)],
        waiting: [("app".to_string(), Waiting { reason: "CrashLoopBackOff".into(), message: message.clone() })].into(),
        ..Default::default()
    };
    let status = pod_status(&pod, &observed, &ProbeResults::default(), now());
    let app = only_container(&status);
    let waiting = app.state.clone().unwrap().waiting.unwrap();
    assert_eq!((waiting.reason.as_deref(), waiting.message), (Some("CrashLoopBackOff"), Some(message)));
    assert_eq!(app.last_state.clone().unwrap().terminated.unwrap().container_id.as_deref(), Some("docker://c2"));
    assert_eq!(app.restart_count, 1);
    assert_eq!(status.phase.as_deref(), Some("Running"));
}

#[test]
fn an_image_that_cannot_be_pulled_shows_its_reason_and_message() {
    let pod = one_container_pod("Always");
    let observed = ObservedPod {
        containers: vec![sandbox("s1", 0)],
        waiting: [("app".into(), Waiting { reason: "ErrImagePull".into(), message: "no registry".into() })].into(),
        ..Default::default()
    };
    let status = pod_status(&pod, &observed, &ProbeResults::default(), now());
    let waiting = only_container(&status).state.clone().unwrap().waiting.unwrap();
    assert_eq!((waiting.reason.as_deref(), waiting.message.as_deref()), (Some("ErrImagePull"), Some("no registry")));
    assert_eq!(status.phase.as_deref(), Some("Pending"));
}

#[test]
fn a_readiness_probe_gates_ready_until_it_succeeds() {
    let pod = pod(json!([{"name": "app", "image": "i", "readinessProbe": {"exec": {"command": ["true"]}}}]), "Always");
    let observed = ObservedPod { containers: vec![sandbox("s1", 0), running("c1", "app", 0)], ..Default::default() };
    let mut probes = ProbeResults::default();
    let before = pod_status(&pod, &observed, &probes, now());
    assert!(!only_container(&before).ready);
    assert_eq!(condition_of(&before, "Ready").message.as_deref(), Some("containers with unready status: [app]"));
    assert_eq!(condition_of(&before, "Ready").reason.as_deref(), Some("ContainersNotReady"));
    probes.set("c1", ProbeKind::Readiness, ProbeResult::Success);
    assert_eq!(condition_of(&pod_status(&pod, &observed, &probes, now()), "Ready").status, "True");
}

#[test]
fn a_condition_keeps_its_transition_time_while_its_status_holds() {
    let mut pod = one_container_pod("Always");
    let first = status_of(&pod, vec![sandbox("s1", 0), running("c1", "app", 0)]);
    pod.status = Some(first.clone());
    let observed = ObservedPod { containers: vec![sandbox("s1", 0), running("c1", "app", 0)], ..Default::default() };
    let later = pod_status(&pod, &observed, &ProbeResults::default(), t(5_000));
    assert_eq!(condition_of(&later, "Ready").last_transition_time, Some(Time(now())));
    assert_eq!(later.start_time, first.start_time);
}

#[test]
fn a_terminal_phase_is_never_left() {
    let mut pod = one_container_pod("Always");
    pod.status.as_mut().unwrap().phase = Some("Failed".into());
    assert_eq!(status_of(&pod, vec![sandbox("s1", 0), running("c1", "app", 0)]).phase.as_deref(), Some("Failed"));
}

#[test]
fn a_deleted_pod_whose_containers_stopped_ends_failed_or_succeeded() {
    let mut pod = one_container_pod("Always");
    pod.metadata.deletion_timestamp = Some(Time(now()));
    let killed = status_of(&pod, vec![dead_sandbox("s1", 0), exited("c1", "app", 0, 143, 999)]);
    assert_eq!(killed.phase.as_deref(), Some("Failed"));
    let clean = status_of(&pod, vec![dead_sandbox("s1", 0), exited("c1", "app", 0, 0, 999)]);
    assert_eq!(clean.phase.as_deref(), Some("Succeeded"));
}

#[test]
fn a_finished_pod_keeps_reporting_the_ip_it_had() {
    let mut pod = one_container_pod("Never");
    pod.status.as_mut().unwrap().pod_ip = Some("10.244.1.5".into());
    let status = status_of(&pod, vec![dead_sandbox("s1", 0), exited("c1", "app", 0, 0, 990)]);
    assert_eq!(status.pod_ip.as_deref(), Some("10.244.1.5"));
}

#[test]
fn container_statuses_are_sorted_by_name_and_count_restarts() {
    let pod = pod(json!([{"name": "web", "image": "i"}, {"name": "api", "image": "i"}]), "Always");
    let status = status_of(&pod, vec![sandbox("s1", 0), running("c1", "web", 4), running("c2", "api", 0)]);
    let names: Vec<(&str, i32)> =
        status.container_statuses.iter().flatten().map(|c| (c.name.as_str(), c.restart_count)).collect();
    assert_eq!(names, vec![("api", 0), ("web", 4)]);
}

#[test]
fn a_pod_with_init_containers_reports_them_waiting_and_is_not_initialized() {
    let mut pod = one_container_pod("Always");
    pod.spec.as_mut().unwrap().init_containers =
        serde_json::from_value(json!([{"name": "migrate", "image": "kubelab/busybox:1"}])).unwrap();
    let status = status_of(&pod, vec![sandbox("s1", 0)]);
    assert_eq!(status.phase.as_deref(), Some("Pending"));
    let init = &status.init_container_statuses.as_ref().unwrap()[0];
    assert_eq!(init.name, "migrate");
    let waiting = init.state.clone().unwrap().waiting.unwrap();
    assert_eq!(waiting.reason.as_deref(), Some("CreateContainerConfigError"));
    assert!(waiting.message.unwrap().starts_with("container \"migrate\": spec.initContainers is not supported"));
    let initialized = condition_of(&status, "Initialized");
    assert_eq!(initialized.status, "False");
    assert_eq!(initialized.reason.as_deref(), Some("ContainersNotInitialized"));
    assert_eq!(initialized.message.as_deref(), Some("containers with incomplete status: [migrate]"));

    let plain = status_of(&one_container_pod("Always"), vec![sandbox("s1", 0)]);
    assert_eq!(plain.init_container_statuses, None);
    assert_eq!(condition_of(&plain, "Initialized").status, "True");
}
