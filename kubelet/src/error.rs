//! What can go wrong in the kubelet, as one small enum.

use kubelab_api::client::ClientError;

/// Why a kubelet operation failed.
#[derive(Debug, thiserror::Error)]
pub enum KubeletError {
    /// The container runtime refused or failed an operation (create, start, stop, inspect...).
    #[error("container runtime: {operation}: {message}")]
    Runtime {
        /// What the kubelet asked for, e.g. `create container k8s_web_...`.
        operation: String,
        /// What the runtime answered.
        message: String,
    },
    /// The container (or image, or network) the kubelet asked about does not exist (any more).
    #[error("{0} not found")]
    NotFound(String),
    /// An image could not be pulled: no registry, an unknown name, a missing tag.
    #[error("{0}")]
    ImagePull(String),
    /// The local images (`kubelab/busybox:1`, `kubelab/pause:1`) could not be built.
    #[error("cannot build the local images: {0}")]
    Images(String),
    /// The kubelet's configuration cannot work: a bad pod CIDR, a network that exists with another subnet...
    #[error("{0}")]
    Config(String),
    /// A container cannot be configured from its pod spec (an unsupported volume, a bad quantity...): the
    /// kubelet reports it as `CreateContainerConfigError`.
    #[error("{0}")]
    ContainerConfig(String),
    /// A pod's sandbox has exited: its exit code and last output say why (a pause image that cannot run, like one
    /// built from a dynamically linked busybox). Reported as `FailedCreatePodSandBox`.
    #[error("pod sandbox {name} exited with code {exit_code} right after it started; {}", output_of(output))]
    SandboxExited {
        /// The runtime's name of the sandbox, `k8s_POD_<pod>_<namespace>_<uid>_<attempt>`.
        name: String,
        /// Its exit status.
        exit_code: i64,
        /// Its last lines of output (stdout and stderr).
        output: String,
    },
    /// Talking to the apiserver failed.
    #[error(transparent)]
    Api(#[from] ClientError),
    /// A file of the kubelet's data directory (volumes) or of the host (`/proc`) could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// What the operating system said.
        source: std::io::Error,
    },
}

impl KubeletError {
    /// A runtime error from a Docker error, naming the operation.
    pub fn docker(operation: impl Into<String>, err: bollard::errors::Error) -> KubeletError {
        if let bollard::errors::Error::DockerResponseServerError { status_code: 404, message } = &err {
            return KubeletError::NotFound(message.clone());
        }
        KubeletError::Runtime { operation: operation.into(), message: docker_message(&err) }
    }

    /// An I/O error on `path`.
    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> KubeletError {
        KubeletError::Io { path: path.as_ref().display().to_string(), source }
    }
}

/// Docker's own message when it sent one, rather than bollard's wrapping of it.
pub fn docker_message(err: &bollard::errors::Error) -> String {
    match err {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message.clone(),
        bollard::errors::Error::DockerStreamError { error } => error.clone(),
        other => other.to_string(),
    }
}

/// A sandbox's output, quoted (newlines shown as `\n`, so the event stays one line), or that there was none.
fn output_of(output: &str) -> String {
    if output.is_empty() { "it wrote nothing".to_string() } else { format!("its last output: {output:?}") }
}
