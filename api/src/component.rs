//! What every component's `main` does before its own work: turn on logging, and find the apiserver.
//!
//! The apiserver, the scheduler, the controller manager and the kubelet are each a thin `main.rs` around a
//! library (`kubelab up` runs the same libraries in one process). Those `main`s used to repeat the same dozen
//! lines; these two functions are that part, written once, so a `main` reads as only what makes its component
//! different. Like Kubernetes' components, they find the apiserver as `kubectl` does: `--server` when given,
//! else `--kubeconfig`, else `$KUBECONFIG`, else `~/.kube/config`.

use crate::client::{Client, ClientError};
use crate::kubeconfig::{self, KubeconfigError};
use std::path::Path;

/// Logs to stderr at `info`, or as `RUST_LOG` says (`RUST_LOG=kubelab_scheduler=debug` to see every decision).
///
/// Call it once, first thing in `main`: a second call panics, because a process has one global subscriber.
/// Tests use `try_init` with a test writer instead, so that their logs stay with the test that wrote them.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
}

/// Why a component could not find the apiserver.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// No `--server` was given and no kubeconfig could be read; the cause says which file and why.
    #[error("cannot find the apiserver (pass --server or --kubeconfig)")]
    Kubeconfig(#[from] KubeconfigError),
    /// An address was found, but it is not a URL a client can use.
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// The two flags by which every component's binary finds the apiserver, flattened into its own arguments
/// (`#[command(flatten)] apiserver: ApiserverFlags`), so that they read and behave the same in every `--help`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ApiserverFlags {
    /// Kubeconfig file to read the apiserver's address (and token) from. Default: the first file of $KUBECONFIG,
    /// else ~/.kube/config.
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<std::path::PathBuf>,
    /// The apiserver's URL, e.g. http://127.0.0.1:6443; overrides the kubeconfig.
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
}

impl ApiserverFlags {
    /// A client for the apiserver these flags point at (see [`connect`]).
    pub fn connect(&self) -> Result<Client, ConnectError> {
        connect(self.server.as_deref(), self.kubeconfig.as_deref())
    }
}

/// A client for the apiserver at `server` if given, else at what the kubeconfig's current context points to
/// (`kubeconfig` if given, else `$KUBECONFIG`, else `~/.kube/config`), with its token.
pub fn connect(server: Option<&str>, kubeconfig: Option<&Path>) -> Result<Client, ConnectError> {
    match server {
        Some(server) => Ok(Client::new(server)?),
        None => Ok(Client::from_access(&kubeconfig::load(kubeconfig)?)?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_explicit_server_wins_over_any_kubeconfig() {
        let missing = Path::new("/nonexistent/kubeconfig");
        let client = connect(Some("http://127.0.0.1:6443/"), Some(missing)).unwrap();
        assert_eq!(client.base_url(), "http://127.0.0.1:6443");
    }

    #[test]
    fn a_missing_kubeconfig_says_how_to_point_at_the_apiserver() {
        let err = connect(None, Some(Path::new("/nonexistent/kubeconfig"))).unwrap_err();
        assert!(matches!(err, ConnectError::Kubeconfig(_)), "{err:?}");
        assert!(err.to_string().contains("--server or --kubeconfig"), "{err}");
    }
}
