//! Running probes: one small task per probe of each running container.
//!
//! A probe task waits `initialDelaySeconds` after the container started, then every `periodSeconds` runs the
//! probe with its `timeoutSeconds`:
//!
//! - **exec**: a command run inside the container (`docker exec`); exit status 0 is a success;
//! - **httpGet**: `GET http://<pod IP>:<port><path>` from the node; a status from 200 to 399 is a success;
//! - **tcpSocket**: a TCP connection to `<pod IP>:<port>`; connecting is a success.
//!
//! Each outcome goes through a [`Tracker`] (the thresholds); when the verdict flips, the task records it in the
//! shared [`crate::probes::ProbeResults`] and wakes the pod's worker, which acts on it (kill the container for
//! liveness, report `Ready` for readiness). Each failure is also recorded as an `Unhealthy` event, as the real
//! kubelet does. What we leave out: startup probes (a container with one is not started but reported
//! `CreateContainerConfigError`, see [`crate::container_config::unsupported_fields`]), gRPC probes, HTTPS.

use crate::clock;
use crate::context::{Context, PodEntry};
use crate::probes::{ProbeKind, ProbeResult, Tracker};
use crate::runtime::{ContainerInfo, ContainerState};
use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kubelab_api::events::EventType;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// The probe tasks of one pod, by container id and kind. Dropping it stops them all: a worker that ends (or is
/// aborted with the kubelet) leaves no probe running behind it.
#[derive(Default)]
pub struct Probers {
    tasks: BTreeMap<(String, ProbeKind), JoinHandle<()>>,
}

impl Probers {
    /// Starts the probe tasks `container` needs, unless they run already.
    pub fn ensure(
        &mut self,
        ctx: &Arc<Context>,
        pod: &PodEntry,
        spec: &Container,
        info: &ContainerInfo,
        ip: Option<IpAddr>,
        wake: &Arc<Notify>,
    ) {
        let ContainerState::Running { started_at } = info.state else { return };
        for (kind, probe) in
            [(ProbeKind::Liveness, &spec.liveness_probe), (ProbeKind::Readiness, &spec.readiness_probe)]
        {
            let Some(probe) = probe.clone() else { continue };
            let key = (info.id.clone(), kind);
            if self.tasks.get(&key).is_some_and(|task| !task.is_finished()) {
                continue;
            }
            let job = Job {
                ctx: ctx.clone(),
                pod: pod.clone(),
                container: spec.clone(),
                container_id: info.id.clone(),
                pod_ip: ip,
                started_at,
                kind,
                probe,
                wake: wake.clone(),
            };
            self.tasks.insert(key, tokio::spawn(job.run()));
        }
    }

    /// Stops the tasks of containers that no longer run.
    pub fn retain(&mut self, running: &[&str]) {
        self.tasks.retain(|(id, _), task| {
            let keep = running.contains(&id.as_str());
            if !keep {
                task.abort();
            }
            keep
        });
    }
}

impl Drop for Probers {
    fn drop(&mut self) {
        for task in self.tasks.values() {
            task.abort();
        }
    }
}

/// One probe of one container.
struct Job {
    ctx: Arc<Context>,
    pod: PodEntry,
    container: Container,
    container_id: String,
    pod_ip: Option<IpAddr>,
    started_at: k8s_openapi::jiff::Timestamp,
    kind: ProbeKind,
    probe: Probe,
    wake: Arc<Notify>,
}

impl Job {
    async fn run(self) {
        let seconds = |s: Option<i32>, default: u64| {
            Duration::from_secs(s.and_then(|s| u64::try_from(s).ok()).unwrap_or(default))
        };
        let initial_delay = seconds(self.probe.initial_delay_seconds, 0);
        let period = seconds(self.probe.period_seconds, 10).max(Duration::from_secs(1));
        let timeout = seconds(self.probe.timeout_seconds, 1).max(Duration::from_secs(1));
        let mut tracker = Tracker::new(
            self.kind,
            self.probe.success_threshold.unwrap_or(1),
            self.probe.failure_threshold.unwrap_or(3),
        );
        self.ctx.with_probes(|results| results.set(&self.container_id, self.kind, tracker.result));

        let elapsed = clock::between(self.started_at, clock::now());
        tokio::time::sleep(initial_delay.saturating_sub(elapsed)).await;
        let mut ticker = tokio::time::interval(period);
        loop {
            ticker.tick().await;
            let (outcome, output) = self.probe_once(timeout).await;
            if outcome == ProbeResult::Failure {
                let message = format!("{} probe failed: {}", self.kind.title(), output.trim_end());
                self.ctx.recorder.record(&self.pod.json, EventType::Warning, "Unhealthy", message).await;
            }
            if let Some(verdict) = tracker.record(outcome) {
                self.ctx.with_probes(|results| results.set(&self.container_id, self.kind, verdict));
                self.wake.notify_one();
                // A container that failed its liveness probe is about to be killed: stop probing it.
                if self.kind == ProbeKind::Liveness && verdict == ProbeResult::Failure {
                    return;
                }
            }
        }
    }

    /// Runs the probe once: its outcome and what to say about a failure.
    async fn probe_once(&self, timeout: Duration) -> (ProbeResult, String) {
        let probe = &self.probe;
        if let Some(exec) = &probe.exec {
            let command = exec.command.clone().unwrap_or_default();
            return match self.ctx.runtime.exec(&self.container_id, &command, timeout).await {
                Ok(result) if result.exit_code == 0 => (ProbeResult::Success, result.output),
                Ok(result) => (ProbeResult::Failure, result.output),
                Err(err) => (ProbeResult::Failure, err.to_string()),
            };
        }
        let host = |explicit: &Option<String>| {
            explicit.clone().filter(|h| !h.is_empty()).or(self.pod_ip.map(|ip| ip.to_string()))
        };
        if let Some(http) = &probe.http_get {
            let (Some(host), Some(port)) = (host(&http.host), self.port(&http.port)) else {
                return (ProbeResult::Failure, "no pod IP or unknown port".into());
            };
            if http.scheme.as_deref().is_some_and(|s| s.eq_ignore_ascii_case("HTTPS")) {
                return (ProbeResult::Failure, "HTTPS probes are not supported by kubelab".into());
            }
            let url = format!("http://{host}:{port}{}", http.path.as_deref().unwrap_or("/"));
            let mut request = self.ctx.http.get(&url).timeout(timeout).header("User-Agent", "kube-probe/1.32");
            for header in http.http_headers.iter().flatten() {
                request = request.header(&header.name, &header.value);
            }
            return match request.send().await {
                Ok(response) if (200..400).contains(&response.status().as_u16()) => {
                    (ProbeResult::Success, String::new())
                }
                Ok(response) => {
                    (ProbeResult::Failure, format!("HTTP probe failed with statuscode: {}", response.status().as_u16()))
                }
                Err(err) => (ProbeResult::Failure, format!("Get \"{url}\": {err}")),
            };
        }
        if let Some(tcp) = &probe.tcp_socket {
            let (Some(host), Some(port)) = (host(&tcp.host), self.port(&tcp.port)) else {
                return (ProbeResult::Failure, "no pod IP or unknown port".into());
            };
            return match tokio::time::timeout(timeout, tokio::net::TcpStream::connect((host.as_str(), port))).await {
                Ok(Ok(_)) => (ProbeResult::Success, String::new()),
                Ok(Err(err)) => (ProbeResult::Failure, format!("dial tcp {host}:{port}: {err}")),
                Err(_) => (ProbeResult::Failure, format!("dial tcp {host}:{port}: i/o timeout")),
            };
        }
        (ProbeResult::Failure, "only exec, httpGet and tcpSocket probes are supported by kubelab".into())
    }

    /// A probe's port: a number, or the name of one of the container's ports.
    fn port(&self, port: &IntOrString) -> Option<u16> {
        match port {
            IntOrString::Int(n) => u16::try_from(*n).ok(),
            IntOrString::String(name) => self
                .container
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name))
                .and_then(|p| u16::try_from(p.container_port).ok())
                .or_else(|| name.parse().ok()),
        }
    }
}
