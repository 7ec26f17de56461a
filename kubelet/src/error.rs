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
