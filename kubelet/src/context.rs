//! What every part of a running kubelet shares: its settings, the apiserver, the runtime, the pod cache.

use crate::config::Config;
use crate::probes::ProbeResults;
use crate::runtime::Runtime;
use k8s_openapi::api::core::v1::Pod;
use kubelab_api::events::Recorder;
use kubelab_api::informer::Cache;
use serde_json::Value;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// The running kubelet's shared state, behind an `Arc`.
pub struct Context {
    pub config: Config,
    /// The container runtime, behind the CRI-like trait: the pod workers never see Docker.
    pub runtime: Arc<dyn Runtime>,
    /// Writes the `Pulling`, `Started`, `BackOff`... events, as `kubelet` on this node.
    pub recorder: Recorder,
    /// The pods bound to this node, as the informer keeps them (`namespace/name` → pod JSON).
    pub pods: Cache,
    /// Probe verdicts by container id, written by the probe tasks and read by the pod workers. A std `Mutex`:
    /// it is held for a map lookup, never across an `.await`.
    pub probes: Mutex<ProbeResults>,
    /// For `httpGet` probes: one connection pool for every probe of the node.
    pub http: reqwest::Client,
}

/// A pod from the cache, in both forms: typed for decisions, JSON for events (which need kind and apiVersion).
#[derive(Debug, Clone)]
pub struct PodEntry {
    pub pod: Pod,
    pub json: Value,
}

impl Context {
    /// The pod with this uid, if the apiserver still has it. `key` (`namespace/name`) is a shortcut when known.
    pub fn pod(&self, key: Option<&str>, uid: &str) -> Option<PodEntry> {
        let has_uid = |json: &Value| json.pointer("/metadata/uid").and_then(Value::as_str) == Some(uid);
        let json = match key {
            Some(key) => self.pods.get(key).filter(has_uid),
            None => self.pods.list().into_iter().find(has_uid),
        }?;
        let pod = serde_json::from_value(json.clone()).ok()?;
        Some(PodEntry { pod, json })
    }

    /// A snapshot of the probe verdicts.
    pub fn probe_results(&self) -> ProbeResults {
        self.probes.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Runs `f` on the probe verdicts.
    pub fn with_probes<T>(&self, f: impl FnOnce(&mut ProbeResults) -> T) -> T {
        f(&mut self.probes.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// `<data dir>/pods/<uid>`: the pod's files on the node.
    pub fn pod_dir(&self, uid: &str) -> PathBuf {
        self.config.data_dir.join("pods").join(uid)
    }

    /// The node's address, which pods report as their `hostIP`.
    pub fn host_ip(&self) -> IpAddr {
        self.config.address
    }
}
