//! The pod sandbox: running it, and saying why it died when it does not stay up.
//!
//! Every container of a pod joins its sandbox's network namespace (see [`crate::docker`]). A sandbox that dies
//! takes that namespace with it, and the runtime then refuses each container with a message about the
//! *container*: `cannot join network of a non running container`. That message is true but useless: the cause
//! is the sandbox's own exit — an image that cannot run, such as a pause image built from a dynamically linked
//! busybox, whose only output is `exec /bin/sh: no such file or directory`.
//!
//! So the kubelet looks at the sandbox itself, twice:
//!
//! 1. right after starting it ([`create_sandbox`]): if it is already gone, its exit code and last output are the
//!    error;
//! 2. when a container cannot be created or started in it ([`exited`]): a sandbox that was still running a
//!    moment ago may have died since; if so, its exit is reported instead of the container's error.
//!
//! Either way the pod gets a Warning event `FailedCreatePodSandBox` (Kubernetes' reason, and its wording:
//! `Failed to create pod sandbox: ...`), its containers wait with reason `ContainerCreating` and the same message,
//! and no other container tries to join the dead sandbox in that pass. The next pass makes a new sandbox, after
//! the sandbox's back-off (see [`crate::sync`]).

use crate::container_config::pod_ref;
use crate::context::{Context, PodEntry};
use crate::error::KubeletError;
use crate::labels;
use crate::runtime::{ContainerInfo, ContainerState, LogOptions, SandboxConfig};
use crate::sync::Waiting;
use futures::StreamExt;
use kubelab_api::events::EventType::Warning;

/// How many lines of a dead sandbox's output are reported.
const OUTPUT_LINES: u64 = 10;

/// The waiting reason of containers whose sandbox is not up: Kubernetes' `ContainerCreating`.
pub const SANDBOX_NOT_READY: &str = "ContainerCreating";

// ANCHOR: create_sandbox
/// Runs the pod's sandbox and reads back its address: the pod IP. A sandbox that has already exited is an error
/// carrying its exit code and output.
pub async fn create_sandbox(ctx: &Context, entry: &PodEntry, attempt: u32) -> Result<ContainerInfo, KubeletError> {
    let pod = pod_ref(&entry.pod);
    let dir = ctx.pod_dir(&pod.uid);
    std::fs::create_dir_all(&dir).map_err(|err| KubeletError::io(&dir, err))?;
    let hostname = entry.pod.spec.as_ref().and_then(|s| s.hostname.clone()).unwrap_or_else(|| pod.name.clone());
    let config = SandboxConfig {
        name: labels::runtime_name(&pod, labels::SANDBOX_CONTAINER_NAME, attempt),
        labels: labels::sandbox_labels(&pod, &ctx.config.node_name, attempt),
        image: ctx.config.pod_infra_container_image.clone(),
        // Linux limits hostnames to 64 bytes; Kubernetes cuts them at 63.
        hostname: hostname.chars().take(63).collect(),
    };
    let id = ctx.runtime.run_sandbox(&config).await?;
    let sandbox = ctx.runtime.inspect_container(&id).await?;
    if sandbox.is_running() {
        return Ok(sandbox);
    }
    Err(exited_error(&config.name, &sandbox, &last_output(ctx, &id).await).unwrap_or_else(|| {
        // Created but not running, yet not exited either: the runtime did not start it.
        KubeletError::Runtime { operation: format!("start sandbox {}", config.name), message: "not running".into() }
    }))
}
// ANCHOR_END: create_sandbox

/// The sandbox's exit, if it is no longer running (asked of the runtime now, not of an older observation).
pub async fn exited(ctx: &Context, sandbox: &ContainerInfo) -> Option<KubeletError> {
    let now = ctx.runtime.inspect_container(&sandbox.id).await.ok()?;
    if now.is_running() {
        return None;
    }
    let name = sandbox_name(sandbox);
    exited_error(&name, &now, &last_output(ctx, &sandbox.id).await)
}

// ANCHOR: report_failure
/// Records the Warning event `FailedCreatePodSandBox` for `err`; returns what the pod's containers wait with.
pub async fn report_failure(ctx: &Context, entry: &PodEntry, err: &KubeletError) -> Waiting {
    let message = format!("Failed to create pod sandbox: {err}");
    ctx.recorder.record(&entry.json, Warning, "FailedCreatePodSandBox", message.clone()).await;
    Waiting { reason: SANDBOX_NOT_READY.into(), message }
}
// ANCHOR_END: report_failure

// ANCHOR: exited_error
/// The error for a sandbox that has exited (`None` while it runs, or if it was only created). Its output is
/// what says why: Kubernetes' own pause never exits by itself, so any exit is a failure.
pub fn exited_error(name: &str, sandbox: &ContainerInfo, output: &str) -> Option<KubeletError> {
    let ContainerState::Exited { exit_code, .. } = sandbox.state else { return None };
    Some(KubeletError::SandboxExited { name: name.to_string(), exit_code, output: output.trim_end().to_string() })
}
// ANCHOR_END: exited_error

/// The runtime's name of a sandbox, as [`create_sandbox`] gave it.
fn sandbox_name(sandbox: &ContainerInfo) -> String {
    labels::runtime_name(&sandbox.owner.pod, labels::SANDBOX_CONTAINER_NAME, sandbox.owner.attempt)
}

/// The last lines the container wrote (stdout and stderr); empty if they cannot be read.
async fn last_output(ctx: &Context, id: &str) -> String {
    let options = LogOptions { tail_lines: Some(OUTPUT_LINES), ..Default::default() };
    let chunks: Vec<_> = ctx.runtime.logs(id, options).collect().await;
    let bytes: Vec<u8> = chunks.into_iter().filter_map(Result::ok).flat_map(|chunk| chunk.to_vec()).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{dead_sandbox, sandbox};

    #[test]
    fn a_running_sandbox_is_no_error() {
        assert!(exited_error("k8s_POD_web_default_uid-1_0", &sandbox("s1", 0), "").is_none());
    }

    #[test]
    fn an_exited_sandbox_reports_its_exit_code_and_output() {
        let mut dead = dead_sandbox("s1", 0);
        if let ContainerState::Exited { exit_code, .. } = &mut dead.state {
            *exit_code = 1;
        }
        let err = exited_error("k8s_POD_web_default_uid-1_0", &dead, "exec /bin/sh: no such file or directory\n");
        assert_eq!(
            err.unwrap().to_string(),
            "pod sandbox k8s_POD_web_default_uid-1_0 exited with code 1 right after it started; its last output: \
             \"exec /bin/sh: no such file or directory\""
        );
    }

    #[test]
    fn a_dead_sandbox_is_named_as_it_was_created() {
        assert_eq!(sandbox_name(&dead_sandbox("s1", 2)), "k8s_POD_web_default_uid-1_2");
    }
}
