//! Plain values for the unit tests of the pure core: pods as JSON, containers as the runtime would report them.

use crate::clock::at_second;
use crate::labels::{Owner, PodRef, Role};
use crate::runtime::{ContainerInfo, ContainerState};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

/// The time every test calls "now": t = 1000 s.
pub fn now() -> Timestamp {
    at_second(1_000)
}

/// `t` seconds since 1970 (tests count from 0 to `now()` = 1000).
pub fn t(seconds: i64) -> Timestamp {
    at_second(seconds)
}

/// A pod `web` in `default`, uid `uid-1`, bound to `node-1`, with the given containers and restart policy.
pub fn pod(containers: Value, restart_policy: &str) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default", "uid": "uid-1"},
        "spec": {"nodeName": "node-1", "restartPolicy": restart_policy, "containers": containers,
                 "terminationGracePeriodSeconds": 30},
        "status": {"phase": "Pending", "qosClass": "BestEffort"}
    }))
    .unwrap()
}

/// A pod with one container `app` running `kubelab/busybox:1`.
pub fn one_container_pod(restart_policy: &str) -> Pod {
    pod(json!([{"name": "app", "image": "kubelab/busybox:1"}]), restart_policy)
}

fn owner(container: &str, role: Role, attempt: u32) -> Owner {
    Owner {
        pod: PodRef { uid: "uid-1".into(), name: "web".into(), namespace: "default".into() },
        container: container.into(),
        role,
        attempt,
    }
}

/// A running sandbox with IP 10.244.1.5.
pub fn sandbox(id: &str, attempt: u32) -> ContainerInfo {
    ContainerInfo {
        id: id.into(),
        owner: owner("POD", Role::Sandbox, attempt),
        state: ContainerState::Running { started_at: t(10) },
        image: "kubelab/pause:1".into(),
        image_id: "sha256:pause".into(),
        created_at: t(i64::from(attempt) * 100 + 10),
        ip: Some("10.244.1.5".parse().unwrap()),
        sandbox_id: None,
    }
}

/// A sandbox that has exited.
pub fn dead_sandbox(id: &str, attempt: u32) -> ContainerInfo {
    ContainerInfo {
        state: ContainerState::Exited { exit_code: 0, started_at: Some(t(10)), finished_at: t(20), oom_killed: false },
        ip: None,
        ..sandbox(id, attempt)
    }
}

/// The container `name`, attempt `attempt`, running since t = 20 in sandbox `s1`.
pub fn running(id: &str, name: &str, attempt: u32) -> ContainerInfo {
    ContainerInfo {
        id: id.into(),
        owner: owner(name, Role::Container, attempt),
        state: ContainerState::Running { started_at: t(20) },
        image: "kubelab/busybox:1".into(),
        image_id: "sha256:busybox".into(),
        created_at: t(i64::from(attempt) * 100 + 20),
        ip: None,
        sandbox_id: Some("s1".into()),
    }
}

/// The container `name`, attempt `attempt`, which exited with `code` at `finished`.
pub fn exited(id: &str, name: &str, attempt: u32, code: i64, finished: i64) -> ContainerInfo {
    ContainerInfo {
        state: ContainerState::Exited {
            exit_code: code,
            started_at: Some(t(20)),
            finished_at: t(finished),
            oom_killed: false,
        },
        ..running(id, name, attempt)
    }
}
