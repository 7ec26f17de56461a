//! Starting a container: its image, its volumes, then create and start — each step with the event and the
//! waiting reason Kubernetes reports when it fails.
//!
//! | step                | on success (event)                          | on failure (waiting reason)            |
//! |---------------------|---------------------------------------------|----------------------------------------|
//! | image               | `Pulled` (or `Pulling` then `Pulled`)        | `ErrImagePull`, then `ImagePullBackOff`; `ErrImageNeverPull` |
//! | configuration       |                                             | `CreateContainerConfigError`           |
//! | create              | `Created`                                   | `CreateContainerError`                 |
//! | start               | `Started`                                   | `RunContainerError`                    |
//! | create or start, the sandbox having died |                        | `ContainerCreating`, with the sandbox's exit (event `FailedCreatePodSandBox`) |
//!
//! Whether to pull is [`pull_decision`], a pure function of the pull policy, the image's presence and the
//! image back-off.

use crate::backoff::BackOff;
use crate::clock;
use crate::container_config::{Placement, container_config, empty_dir_path};
use crate::context::{Context, PodEntry};
use crate::error::KubeletError;
use crate::runtime::ContainerInfo;
use crate::sync::Waiting;
use k8s_openapi::api::core::v1::Container;
use k8s_openapi::jiff::Timestamp;
use kubelab_api::events::EventType::{Normal, Warning};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// What to do about a container's image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullDecision {
    /// It is on the node and may be used as it is.
    UsePresent,
    /// Pull it from its registry.
    Pull,
    /// It is missing and the pull policy is `Never`.
    NeverPull,
    /// A recent pull failed: wait until then before trying again.
    BackOff(Timestamp),
}

/// `Always` pulls every time, `IfNotPresent` only a missing image, `Never` never; a failed pull waits for its
/// back-off before the next attempt.
pub fn pull_decision(policy: &str, present: bool, backoff_until: Option<Timestamp>) -> PullDecision {
    match (policy, present) {
        ("Never", true) | ("IfNotPresent", true) => PullDecision::UsePresent,
        ("Never", false) => PullDecision::NeverPull,
        _ => match backoff_until {
            Some(until) => PullDecision::BackOff(until),
            None => PullDecision::Pull,
        },
    }
}

/// What one pod's worker remembers about its image pulls.
#[derive(Debug, Default)]
pub struct PullMemory {
    /// The back-off of failing pulls, by container name.
    pub backoff: BackOff,
    /// When each container's last pull failed.
    pub failed_at: BTreeMap<String, Timestamp>,
}

/// Makes sure the container's image is on the node. `Err` carries the waiting reason and message, and, for a
/// pull in back-off, when to try again.
pub async fn ensure_image(
    ctx: &Context,
    pod: &PodEntry,
    container: &Container,
    pulls: &mut PullMemory,
) -> Result<(), (Waiting, Option<Timestamp>)> {
    let image = container.image.clone().unwrap_or_default();
    let policy = container.image_pull_policy.as_deref().unwrap_or("IfNotPresent");
    let present = ctx.runtime.image_status(&image).await.ok().flatten().is_some();
    let now = clock::now();
    let backoff_until = pulls
        .failed_at
        .get(&container.name)
        .and_then(|at| pulls.backoff.waiting(&container.name, *at, now))
        .map(|(until, _)| until);
    let record = |kind, reason: &'static str, message: String| ctx.recorder.record(&pod.json, kind, reason, message);
    match pull_decision(policy, present, backoff_until) {
        PullDecision::UsePresent => {
            record(Normal, "Pulled", format!("Container image {image:?} already present on machine")).await;
            Ok(())
        }
        PullDecision::NeverPull => {
            let message = format!("Container image {image:?} is not present with pull policy of Never");
            record(Warning, "ErrImageNeverPull", message.clone()).await;
            Err((Waiting { reason: "ErrImageNeverPull".into(), message }, None))
        }
        PullDecision::BackOff(until) => {
            let message = format!("Back-off pulling image {image:?}");
            Err((Waiting { reason: "ImagePullBackOff".into(), message }, Some(until)))
        }
        PullDecision::Pull => {
            record(Normal, "Pulling", format!("Pulling image {image:?}")).await;
            let started = Instant::now();
            match ctx.runtime.pull_image(&image).await {
                Ok(info) => {
                    pulls.failed_at.remove(&container.name);
                    let took = go_duration(started.elapsed());
                    let message = format!(
                        "Successfully pulled image {image:?} in {took} ({took} including waiting). Image size: {} bytes.",
                        info.size
                    );
                    record(Normal, "Pulled", message).await;
                    Ok(())
                }
                Err(err) => {
                    let now = clock::now();
                    pulls.backoff.retried(&container.name, now, now);
                    pulls.failed_at.insert(container.name.clone(), now);
                    let message = format!("Failed to pull image {image:?}: {err}");
                    record(Warning, "Failed", message.clone()).await;
                    record(Warning, "Failed", "Error: ErrImagePull".to_string()).await;
                    Err((Waiting { reason: "ErrImagePull".into(), message }, None))
                }
            }
        }
    }
}

// ANCHOR: start_container
/// Configures, creates and starts attempt `attempt` of `container` in `sandbox`, recording events as it goes.
pub async fn create_and_start(
    ctx: &Context,
    pod: &PodEntry,
    container: &Container,
    attempt: u32,
    sandbox: &ContainerInfo,
) -> Result<(), Waiting> {
    let uid = pod.pod.metadata.uid.clone().unwrap_or_default();
    let pod_dir = ctx.pod_dir(&uid);
    let place = Placement {
        node: &ctx.config.node_name,
        sandbox_id: &sandbox.id,
        pod_ip: sandbox.ip,
        host_ip: Some(ctx.host_ip()),
        pod_dir: &pod_dir,
    };
    let failed = |reason: &str, message: String| Waiting { reason: reason.into(), message };
    let config = match container_config(&pod.pod, container, attempt, &place) {
        Ok(config) => config,
        Err(err) => {
            ctx.recorder.record(&pod.json, Warning, "Failed", format!("Error: {err}")).await;
            return Err(failed("CreateContainerConfigError", err.to_string()));
        }
    };
    if let Err(message) = prepare_volumes(pod, &pod_dir) {
        return Err(failed("CreateContainerConfigError", message));
    }
    let id = match ctx.runtime.create_container(&sandbox.id, &config).await {
        Ok(id) => id,
        Err(err) => return Err(runtime_failure(ctx, pod, sandbox, "CreateContainerError", err).await),
    };
    ctx.recorder.record(&pod.json, Normal, "Created", format!("Created container: {}", container.name)).await;
    if let Err(err) = ctx.runtime.start_container(&id).await {
        return Err(runtime_failure(ctx, pod, sandbox, "RunContainerError", err).await);
    }
    ctx.recorder.record(&pod.json, Normal, "Started", format!("Started container {}", container.name)).await;
    Ok(())
}
// ANCHOR_END: start_container

/// A container the runtime would not create or start. If its sandbox has died, the sandbox's exit is the story
/// (reported by [`crate::sandbox::report_failure`], reason `ContainerCreating`): the container's own error,
/// `cannot join network of a non running container`, would only hide it.
async fn runtime_failure(
    ctx: &Context,
    pod: &PodEntry,
    sandbox: &ContainerInfo,
    reason: &str,
    err: KubeletError,
) -> Waiting {
    if let Some(died) = crate::sandbox::exited(ctx, sandbox).await {
        return crate::sandbox::report_failure(ctx, pod, &died).await;
    }
    ctx.recorder.record(&pod.json, Warning, "Failed", format!("Error: {err}")).await;
    Waiting { reason: reason.into(), message: err.to_string() }
}

/// Creates the directories of the pod's emptyDir volumes (world-writable, as Kubernetes makes them).
fn prepare_volumes(pod: &PodEntry, pod_dir: &std::path::Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let volumes = pod.pod.spec.as_ref().and_then(|s| s.volumes.clone()).unwrap_or_default();
    for volume in volumes.iter().filter(|v| v.empty_dir.is_some()) {
        let dir = empty_dir_path(pod_dir, &volume.name);
        std::fs::create_dir_all(&dir).map_err(|err| format!("cannot create {}: {err}", dir.display()))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777))
            .map_err(|err| format!("cannot open up {}: {err}", dir.display()))?;
    }
    Ok(())
}

/// A duration as Go prints it, which is how Kubernetes' messages show them: `10s`, `1m20s`, `5m0s`, `1.5s`.
pub fn go_duration(duration: Duration) -> String {
    let total = duration.as_secs();
    let (minutes, seconds) = (total / 60, total % 60);
    let millis = duration.subsec_millis();
    let seconds = if millis > 0 && minutes == 0 {
        format!("{}", seconds as f64 + f64::from(millis) / 1000.0)
    } else {
        seconds.to_string()
    };
    match (minutes / 60, minutes % 60) {
        (0, 0) => format!("{seconds}s"),
        (0, m) => format!("{m}m{seconds}s"),
        (h, m) => format!("{h}h{m}m{seconds}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::at_second;

    #[test]
    fn the_pull_policy_decides_whether_to_pull() {
        assert_eq!(pull_decision("IfNotPresent", true, None), PullDecision::UsePresent);
        assert_eq!(pull_decision("IfNotPresent", false, None), PullDecision::Pull);
        assert_eq!(pull_decision("Always", true, None), PullDecision::Pull);
        assert_eq!(pull_decision("Never", true, None), PullDecision::UsePresent);
        assert_eq!(pull_decision("Never", false, None), PullDecision::NeverPull);
    }

    #[test]
    fn a_pull_that_failed_recently_waits_for_its_back_off() {
        let until = at_second(20);
        assert_eq!(pull_decision("IfNotPresent", false, Some(until)), PullDecision::BackOff(until));
        assert_eq!(pull_decision("IfNotPresent", true, Some(until)), PullDecision::UsePresent);
    }

    #[test]
    fn durations_read_as_go_prints_them() {
        assert_eq!(go_duration(Duration::from_secs(10)), "10s");
        assert_eq!(go_duration(Duration::from_secs(80)), "1m20s");
        assert_eq!(go_duration(Duration::from_secs(300)), "5m0s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
    }
}
