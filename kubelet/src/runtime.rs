//! The container runtime seam: what the kubelet asks of whatever runs its containers.
//!
//! Kubernetes' kubelet does not know Docker, containerd or CRI-O. It speaks the **CRI** (Container Runtime
//! Interface), a gRPC API with two services: the *RuntimeService* (`RunPodSandbox`, `CreateContainer`,
//! `StartContainer`, `StopContainer`, `RemoveContainer`, `ListContainers`, `ContainerStatus`, `ExecSync`...) and
//! the *ImageService* (`ImageStatus`, `PullImage`). [`Runtime`] is our CRI: the same operations as a Rust trait.
//! [`crate::docker::DockerRuntime`] implements it with Docker (as dockershim once did); another runtime would plug
//! in here without the rest of the kubelet noticing.
//!
//! Everything the kubelet needs to remember about a container it keeps *on the container*, as labels
//! ([`crate::labels`]): the runtime is the source of truth, so a kubelet that restarts finds its pods again.

use crate::error::KubeletError;
use bytes::Bytes;
use futures::stream::BoxStream;
use k8s_openapi::jiff::Timestamp;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

/// A sandbox or an application container, as the runtime reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerInfo {
    /// The runtime's id (64 hex digits for Docker).
    pub id: String,
    /// Which pod and which container of its spec this is, read back from the labels.
    pub owner: crate::labels::Owner,
    /// Created, running or exited.
    pub state: ContainerState,
    /// The image as the pod spec names it (`kubelab/busybox:1`).
    pub image: String,
    /// The image's content id (`sha256:...`), reported as the container status' `imageID`.
    pub image_id: String,
    /// When the runtime created it: the newest of several attempts is the current one.
    pub created_at: Timestamp,
    /// The address of the pod, for a sandbox: the pod IP.
    pub ip: Option<IpAddr>,
    /// For an application container, the sandbox it joined.
    pub sandbox_id: Option<String>,
}

/// The life of a container, as the CRI's `ContainerState` (minus `UNKNOWN`).
#[derive(Debug, Clone, PartialEq)]
pub enum ContainerState {
    /// Created but never started (a kubelet that died between the two steps leaves these behind).
    Created,
    /// Running since `started_at`.
    Running {
        /// When its process started.
        started_at: Timestamp,
    },
    /// Its process ended.
    Exited {
        /// The exit status: 0 for success, 128+N when killed by signal N (137 for SIGKILL, 143 for SIGTERM).
        exit_code: i64,
        /// When it started, if it ever did.
        started_at: Option<Timestamp>,
        /// When it ended.
        finished_at: Timestamp,
        /// The kernel's out-of-memory killer ended it (reported as reason `OOMKilled`).
        oom_killed: bool,
    },
}

impl ContainerInfo {
    /// True while the container's process runs.
    pub fn is_running(&self) -> bool {
        matches!(self.state, ContainerState::Running { .. })
    }
}

/// What the sandbox of a pod needs: its name and labels, and the hostname its containers will share.
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxConfig {
    /// The runtime's name for it: `k8s_POD_<pod>_<namespace>_<uid>_<attempt>`.
    pub name: String,
    /// The labels that say which pod it belongs to.
    pub labels: BTreeMap<String, String>,
    /// The image that holds the namespaces: the kubelet's `--pod-infra-container-image` (`kubelab/pause:1`).
    pub image: String,
    /// The pod's hostname (its name, unless `spec.hostname` says otherwise).
    pub hostname: String,
}

/// An application container, ready for the runtime: every Kubernetes field already turned into runtime terms
/// by [`crate::container_config`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContainerConfig {
    /// The runtime's name for it: `k8s_<container>_<pod>_<namespace>_<uid>_<attempt>`.
    pub name: String,
    /// The labels that say which pod and container it is, and which attempt.
    pub labels: BTreeMap<String, String>,
    /// The image to run.
    pub image: String,
    /// Replaces the image's `ENTRYPOINT` when set (Kubernetes' `command`).
    pub entrypoint: Option<Vec<String>>,
    /// Replaces the image's `CMD` when set (Kubernetes' `args`).
    pub cmd: Option<Vec<String>>,
    /// Environment variables, in order, with `$(VAR)` references already expanded.
    pub env: Vec<(String, String)>,
    /// The directory the process starts in, when not the image's.
    pub working_dir: Option<String>,
    /// Host directories mounted into the container (emptyDir and hostPath volumes).
    pub mounts: Vec<Mount>,
    /// CPU limit in billionths of a CPU (Docker's `NanoCpus`); `500m` is 500 000 000.
    pub nano_cpus: Option<i64>,
    /// Memory limit in bytes (Docker's `Memory`).
    pub memory_bytes: Option<i64>,
    /// Allocate a terminal (`tty: true`).
    pub tty: bool,
    /// Keep standard input open (`stdin: true`).
    pub stdin: bool,
    /// Join the sandbox's process namespace (`shareProcessNamespace: true`).
    pub share_process_namespace: bool,
}

/// A host directory mounted into a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// On the node.
    pub host_path: String,
    /// In the container.
    pub container_path: String,
    /// Mounted read-only.
    pub read_only: bool,
}

/// How much of a log to read, as `kubectl logs` asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogOptions {
    /// Keep streaming as the container writes (`-f`).
    pub follow: bool,
    /// Only the last N lines (`--tail N`).
    pub tail_lines: Option<u64>,
    /// Prefix each line with its RFC 3339 time (`--timestamps`).
    pub timestamps: bool,
    /// Only lines written in the last N seconds (`--since`).
    pub since_seconds: Option<i64>,
}

/// What a command run inside a container (an exec probe) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecResult {
    /// Its exit status.
    pub exit_code: i64,
    /// What it wrote on stdout and stderr, together.
    pub output: String,
}

/// An image present on the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// Its content id, `sha256:...`.
    pub id: String,
    /// `name@sha256:...` when it came from a registry (it then has a digest there).
    pub repo_digest: Option<String>,
    /// Its size in bytes.
    pub size: i64,
}

// ANCHOR: runtime
/// The operations the kubelet needs from a container runtime: a small CRI.
///
/// A runtime serves one node: what it lists is only that node's containers.
#[async_trait::async_trait]
pub trait Runtime: Send + Sync {
    /// `docker://20.10.24`: reported in the Node's `containerRuntimeVersion`.
    async fn version(&self) -> Result<String, KubeletError>;

    /// Creates and starts a pod's sandbox, which holds the network namespace every container of the pod joins.
    async fn run_sandbox(&self, config: &SandboxConfig) -> Result<String, KubeletError>;
    /// Creates an application container inside the sandbox `sandbox_id`.
    async fn create_container(&self, sandbox_id: &str, config: &ContainerConfig) -> Result<String, KubeletError>;
    /// Starts a created container.
    async fn start_container(&self, id: &str) -> Result<(), KubeletError>;
    /// Sends SIGTERM (or the image's stop signal), waits up to `grace`, then SIGKILL. A stopped container is fine.
    async fn stop_container(&self, id: &str, grace: Duration) -> Result<(), KubeletError>;
    /// Removes a stopped container. An absent container is fine.
    async fn remove_container(&self, id: &str) -> Result<(), KubeletError>;

    /// Every container (sandboxes included, running or not) on this node whose labels include all of `labels`.
    async fn list_containers(&self, labels: &BTreeMap<String, String>) -> Result<Vec<ContainerInfo>, KubeletError>;
    /// One container.
    async fn inspect_container(&self, id: &str) -> Result<ContainerInfo, KubeletError>;
    /// A container's output (stdout and stderr, in order), as a stream of chunks.
    fn logs(&self, id: &str, options: LogOptions) -> BoxStream<'static, Result<Bytes, KubeletError>>;
    /// Runs a command in a running container and waits for it, at most `timeout` (exec probes).
    async fn exec(&self, id: &str, command: &[String], timeout: Duration) -> Result<ExecResult, KubeletError>;

    /// The image if it is present on the node.
    async fn image_status(&self, image: &str) -> Result<Option<ImageInfo>, KubeletError>;
    /// Pulls an image from its registry.
    async fn pull_image(&self, image: &str) -> Result<ImageInfo, KubeletError>;

    /// The uids of pods whose containers just changed (started, died...), as they change: how the kubelet hears
    /// about a crash without waiting for its next periodic sync.
    fn container_events(&self) -> BoxStream<'static, Result<String, KubeletError>>;
}
// ANCHOR_END: runtime
