//! The pod worker: one task per pod, running the sync loop — observe, decide, act, report.
//!
//! Kubernetes' kubelet gives every pod a goroutine (`podWorkers`) so that one slow pod — a 30-second grace
//! period, a long image pull — never holds up the others, while the steps for one pod stay strictly in order.
//! Ours is a Tokio task, woken by the dispatcher (the pod changed, one of its containers started or died), by
//! a probe whose verdict flipped, by a back-off that expires, or by the periodic resync. Each wake-up is one
//! pass of [`sync_pod`]:
//!
//! 1. **observe**: list the pod's containers in the runtime (by the `io.kubernetes.pod.uid` label);
//! 2. **decide**: [`sync_actions`] (pure);
//! 3. **act**: carry the actions out — kills in parallel, everything else in order;
//! 4. **report**: observe again, compute the status with [`pod_status`] (pure) and write it through the `status`
//!    subresource if it changed.
//!
//! When the pod is gone from the apiserver (deleted, or never known: containers left by a previous kubelet for a
//! pod that no longer exists), the worker removes its containers and files and ends.

use crate::backoff::BackOff;
use crate::clock;
use crate::context::{Context, PodEntry};
use crate::error::KubeletError;
use crate::labels::{self, Role, SANDBOX_CONTAINER_NAME};
use crate::prober::Probers;
use crate::sandbox;
use crate::start::{PullMemory, create_and_start, ensure_image, go_duration};
use crate::status::pod_status;
use crate::sync::{Action, MINIMUM_GRACE, ObservedPod, Waiting, sync_actions};
use k8s_openapi::jiff::Timestamp;
use kubelab_api::client::{ClientError, PatchType, PropagationPolicy};
use kubelab_api::events::EventType::{Normal, Warning};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// What a pod's worker remembers between passes, beyond what the runtime shows.
struct Memory {
    /// Restart back-off per container name.
    restarts: BackOff,
    /// Image pull back-off per container name.
    pulls: PullMemory,
    /// The reason cache: why each container could not be started last time.
    waiting: BTreeMap<String, Waiting>,
    /// The status this worker last wrote: not written again while the informer's cache catches up.
    written: Option<Value>,
    /// The probe tasks of the pod's running containers.
    probers: Probers,
}

/// When the worker should run its next pass.
enum Next {
    /// At once: the last pass changed things (stopped containers...) and the next one has more to do.
    Now,
    /// At the periodic resync, or earlier when a back-off expires.
    Later(Option<Timestamp>),
}

/// Runs the worker of the pod `uid` until the pod is gone and cleaned up.
pub async fn run(ctx: Arc<Context>, uid: String, key: Option<String>, wake: Arc<Notify>) {
    let mut memory = Memory {
        restarts: BackOff::new(ctx.config.backoff),
        pulls: PullMemory { backoff: BackOff::new(ctx.config.backoff), ..Default::default() },
        waiting: BTreeMap::new(),
        written: None,
        probers: Probers::default(),
    };
    // Passes in a row that asked for an immediate next pass: bounded, so that an action failing every time
    // cannot spin the worker.
    let mut immediate = 0;
    loop {
        let next = match ctx.pod(key.as_deref(), &uid) {
            Some(entry) => sync_pod(&ctx, &entry, &mut memory, &wake).await.unwrap_or_else(|err| {
                tracing::warn!(pod = %key.as_deref().unwrap_or(&uid), error = %err, "sync failed; will retry");
                Next::Later(None)
            }),
            None => match cleanup(&ctx, &uid).await {
                Ok(()) => return,
                Err(err) => {
                    tracing::warn!(uid, error = %err, "cleanup failed; will retry");
                    Next::Later(None)
                }
            },
        };
        let delay = match next {
            Next::Now if immediate < 3 => {
                immediate += 1;
                continue;
            }
            Next::Now => ctx.config.sync_period.min(Duration::from_secs(1)),
            Next::Later(at) => {
                immediate = 0;
                let resync = ctx.config.sync_period;
                at.map_or(resync, |at| clock::between(clock::now(), at).min(resync))
            }
        };
        // Woken early by the dispatcher or a probe; `notified` keeps a wake-up that arrived during the pass.
        let _ = tokio::time::timeout(delay, wake.notified()).await;
    }
}

// ANCHOR: sync_pod
/// One pass of the sync loop for a pod that exists.
async fn sync_pod(
    ctx: &Arc<Context>,
    entry: &PodEntry,
    memory: &mut Memory,
    wake: &Arc<Notify>,
) -> Result<Next, KubeletError> {
    let uid = entry.pod.metadata.uid.clone().unwrap_or_default();
    let observed = observe(ctx, &uid, memory).await?;
    let actions = sync_actions(&entry.pod, &observed, clock::now(), &memory.restarts, &ctx.probe_results());

    let mut retry_at: Option<Timestamp> = None;
    let mut progressed = false;
    let mut delete = false;
    let mut sandbox = observed.ready_sandbox().cloned();
    // Why the sandbox is down, once this pass has found out: what the containers then wait with.
    let mut sandbox_down: Option<Waiting> = None;
    let mut pending = actions.into_iter().peekable();
    while let Some(action) = pending.next() {
        match action {
            Action::KillContainer { .. } => {
                // Consecutive kills run in parallel: each may take its whole grace period.
                let mut kills = vec![action];
                while let Some(Action::KillContainer { .. }) = pending.peek() {
                    kills.extend(pending.next());
                }
                futures::future::join_all(kills.into_iter().map(|kill| execute_kill(ctx, entry, kill))).await;
                progressed = true;
            }
            Action::StopSandbox { id } => {
                ctx.runtime.stop_container(&id, Duration::ZERO).await?;
                progressed = true;
            }
            Action::RemoveContainer { id } => ctx.runtime.remove_container(&id).await?,
            Action::CreateSandbox { attempt, replacing } => {
                if let Some(failed_at) = replacing {
                    memory.restarts.retried(SANDBOX_CONTAINER_NAME, failed_at, clock::now());
                }
                match sandbox::create_sandbox(ctx, entry, attempt).await {
                    Ok(created) => sandbox = Some(created),
                    Err(err) => {
                        sandbox = None;
                        sandbox_down = Some(sandbox::report_failure(ctx, entry, &err).await);
                    }
                }
            }
            Action::SandboxBackOff { until } => retry_at = earliest(retry_at, Some(until)),
            Action::StartContainer { name, attempt, restart_of } => {
                if let Some(waiting) = &sandbox_down {
                    memory.waiting.insert(name, waiting.clone());
                    continue;
                }
                let (Some(joined), Some(spec)) = (sandbox.as_ref(), container_spec(entry, &name)) else { continue };
                if let Some(finished_at) = restart_of {
                    memory.restarts.retried(&name, finished_at, clock::now());
                }
                let started = match ensure_image(ctx, entry, spec, &mut memory.pulls).await {
                    Ok(()) => create_and_start(ctx, entry, spec, attempt, joined).await.map_err(|w| (w, None)),
                    Err(failure) => Err(failure),
                };
                match started {
                    Ok(()) => drop(memory.waiting.remove(&name)),
                    Err((waiting, until)) => {
                        if waiting.reason == sandbox::SANDBOX_NOT_READY {
                            // The sandbox died under this container: no other may join it in this pass.
                            sandbox = None;
                            sandbox_down = Some(waiting.clone());
                        }
                        if waiting.reason == "ImagePullBackOff" && memory.waiting.get(&name) != Some(&waiting) {
                            ctx.recorder.record(&entry.json, Normal, "BackOff", waiting.message.clone()).await;
                        }
                        memory.waiting.insert(name, waiting);
                        retry_at = earliest(retry_at, until);
                    }
                }
            }
            Action::BackOff { name, until, delay } => {
                let pod = format!("{}_{}({uid})", name_of(entry), namespace_of(entry));
                let message = format!("back-off {} restarting failed container={name} pod={pod}", go_duration(delay));
                let waiting = Waiting { reason: "CrashLoopBackOff".into(), message };
                if memory.waiting.get(&name) != Some(&waiting) {
                    let event = format!("Back-off restarting failed container {name} in pod {pod}");
                    ctx.recorder.record(&entry.json, Warning, "BackOff", event).await;
                }
                memory.waiting.insert(name, waiting);
                retry_at = earliest(retry_at, Some(until));
            }
            Action::DeletePod => delete = true,
        }
    }

    let observed = observe(ctx, &uid, memory).await?;
    update_probers(ctx, entry, &observed, memory, wake);
    let status = pod_status(&entry.pod, &observed, &ctx.probe_results(), clock::now());
    write_status(ctx, entry, &serde_json::to_value(&status).unwrap_or_default(), memory).await?;
    if delete {
        finish_deletion(ctx, entry, &observed).await?;
    }
    Ok(if progressed { Next::Now } else { Next::Later(retry_at) })
}
// ANCHOR_END: sync_pod

/// The pod's containers as the runtime lists them, with the worker's reason cache.
async fn observe(ctx: &Context, uid: &str, memory: &mut Memory) -> Result<ObservedPod, KubeletError> {
    let containers =
        ctx.runtime.list_containers(&BTreeMap::from([(labels::POD_UID.to_string(), uid.to_string())])).await?;
    for running in containers.iter().filter(|c| c.owner.role == Role::Container && c.is_running()) {
        memory.waiting.remove(&running.owner.container);
    }
    Ok(ObservedPod { containers, waiting: memory.waiting.clone(), host_ip: Some(ctx.host_ip()) })
}

/// SIGTERM, grace period, SIGKILL — with the `Killing` event first.
async fn execute_kill(ctx: &Context, entry: &PodEntry, kill: Action) {
    let Action::KillContainer { id, name, grace, message } = kill else { return };
    ctx.recorder.record(&entry.json, Normal, "Killing", message).await;
    if let Err(err) = ctx.runtime.stop_container(&id, grace).await {
        tracing::warn!(container = name, error = %err, "could not stop container");
    }
}

/// Starts the probe tasks of running containers, stops those of containers that no longer run.
fn update_probers(
    ctx: &Arc<Context>,
    entry: &PodEntry,
    observed: &ObservedPod,
    memory: &mut Memory,
    wake: &Arc<Notify>,
) {
    let ip = observed.ready_sandbox().and_then(|s| s.ip);
    let mut running = Vec::new();
    for container in observed.containers.iter().filter(|c| c.owner.role == Role::Container) {
        if !container.is_running() {
            ctx.with_probes(|probes| probes.forget(&container.id));
            continue;
        }
        running.push(container.id.as_str());
        if let Some(spec) = container_spec(entry, &container.owner.container) {
            memory.probers.ensure(ctx, entry, spec, container, ip, wake);
        }
    }
    memory.probers.retain(&running);
}

/// Writes the status through the `status` subresource, only if it would change what is stored.
async fn write_status(
    ctx: &Context,
    entry: &PodEntry,
    status: &Value,
    memory: &mut Memory,
) -> Result<(), KubeletError> {
    let current = entry.json.get("status").cloned().unwrap_or(Value::Null);
    let mut merged = current.clone();
    merge(&mut merged, status);
    if merged == current || memory.written.as_ref() == Some(status) {
        return Ok(());
    }
    let pods = resource()?;
    let patch = json!({"status": status});
    let (namespace, name) = (namespace_of(entry), name_of(entry));
    let written = ctx.config.client.patch_status(pods, Some(&namespace), &name, PatchType::Merge, &patch);
    match written.await {
        Ok(_) => memory.written = Some(status.clone()),
        // Deleted meanwhile (the informer will say so): there is nothing left to report on.
        Err(ClientError::Api(err)) if err.code == 404 => {}
        Err(err) => return Err(err.into()),
    }
    Ok(())
}

/// The end of a graceful deletion: everything stopped, the final status written. Removes the containers, then
/// the Pod object, so that `kubectl delete` returns once the containers are gone.
async fn finish_deletion(ctx: &Context, entry: &PodEntry, observed: &ObservedPod) -> Result<(), KubeletError> {
    for container in &observed.containers {
        ctx.runtime.remove_container(&container.id).await?;
    }
    // The pod is terminal now (Succeeded or Failed), which the apiserver deletes without a further grace period.
    match ctx
        .config
        .client
        .delete(resource()?, Some(&namespace_of(entry)), &name_of(entry), PropagationPolicy::Background)
        .await
    {
        Ok(_) => Ok(()),
        Err(ClientError::Api(err)) if err.code == 404 => Ok(()),
        Err(err) => Err(err.into()),
    }
}

// ANCHOR: cleanup
/// Stops and removes every container of a pod the apiserver no longer has, and its files.
async fn cleanup(ctx: &Context, uid: &str) -> Result<(), KubeletError> {
    let containers =
        ctx.runtime.list_containers(&BTreeMap::from([(labels::POD_UID.to_string(), uid.to_string())])).await?;
    let (apps, sandboxes): (Vec<_>, Vec<_>) = containers.iter().partition(|c| c.owner.role == Role::Container);
    let stops = apps.iter().filter(|c| c.is_running()).map(|c| ctx.runtime.stop_container(&c.id, MINIMUM_GRACE));
    futures::future::join_all(stops).await;
    for container in apps.iter().chain(&sandboxes) {
        ctx.with_probes(|probes| probes.forget(&container.id));
        ctx.runtime.remove_container(&container.id).await?;
    }
    let dir = ctx.pod_dir(uid);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|err| KubeletError::io(&dir, err))?;
    }
    if !containers.is_empty() {
        tracing::info!(uid, removed = containers.len(), "removed the containers of a pod that no longer exists");
    }
    Ok(())
}
// ANCHOR_END: cleanup

/// RFC 7386 merge: what the stored status becomes after our merge patch.
fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(target), Value::Object(patch)) => {
            for (key, value) in patch {
                if value.is_null() {
                    target.remove(key);
                } else {
                    merge(target.entry(key.clone()).or_insert(Value::Null), value);
                }
            }
        }
        (target, patch) => *target = patch.clone(),
    }
}

fn earliest(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn container_spec<'a>(entry: &'a PodEntry, name: &str) -> Option<&'a k8s_openapi::api::core::v1::Container> {
    entry.pod.spec.as_ref()?.containers.iter().find(|c| c.name == name)
}

fn name_of(entry: &PodEntry) -> String {
    entry.pod.metadata.name.clone().unwrap_or_default()
}

fn namespace_of(entry: &PodEntry) -> String {
    entry.pod.metadata.namespace.clone().unwrap_or_else(|| "default".into())
}

fn resource() -> Result<&'static kubelab_api::Resource, KubeletError> {
    kubelab_api::resources::by_kind("v1", "Pod")
        .ok_or_else(|| KubeletError::Config("kubelab-api does not serve v1 Pod".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_merge_patch_replaces_lists_and_keeps_fields_it_does_not_name() {
        let mut stored =
            json!({"phase": "Pending", "nominatedNodeName": "n", "conditions": [{"type": "A"}, {"type": "B"}]});
        merge(&mut stored, &json!({"phase": "Running", "conditions": [{"type": "C"}]}));
        assert_eq!(stored, json!({"phase": "Running", "nominatedNodeName": "n", "conditions": [{"type": "C"}]}));
    }
}
