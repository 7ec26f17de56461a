//! What every command but `up` starts from: a client for the cluster and the namespace to work in.

use anyhow::Context as _;
use kubelab_api::client::Client;
use kubelab_api::kubeconfig::{self, KubeconfigError};
use kubelab_api::resources::Resource;
use std::path::Path;

/// The cluster and namespace a command works with.
pub struct Context {
    /// Talks to the apiserver of the kubeconfig's current context.
    pub client: Client,
    /// `-n`, else the context's namespace, else `default`.
    pub namespace: String,
    /// Whether the user typed `-n`: then a manifest naming another namespace is an error, as in kubectl.
    pub namespace_flag: bool,
}

impl Context {
    // ANCHOR: load
    /// Reads the kubeconfig kubectl would read and builds the client.
    pub fn load(kubeconfig_path: Option<&Path>, namespace_flag: Option<String>) -> anyhow::Result<Context> {
        let access = kubeconfig::load(kubeconfig_path).map_err(|err| match err {
            KubeconfigError::Io { path, source } if source.kind() == std::io::ErrorKind::NotFound => anyhow::anyhow!(
                "no kubeconfig at {}: start a cluster with `kubelab up`, then `export KUBECONFIG=<data dir>/kubeconfig` \
                 (or pass --kubeconfig)",
                path.display()
            ),
            other => other.into(),
        })?;
        let client = kubelab_api::client::Client::from_access(&access).context("cannot build the client")?;
        let flag = namespace_flag.filter(|ns| !ns.is_empty());
        Ok(Context {
            client,
            namespace_flag: flag.is_some(),
            namespace: flag.or(access.namespace).unwrap_or_else(|| "default".to_string()),
        })
    }
    // ANCHOR_END: load

    /// The namespace to use for `resource`: `None` for cluster-scoped kinds (nodes, namespaces).
    pub fn namespace_for(&self, resource: &Resource) -> Option<&str> {
        resource.namespaced.then_some(self.namespace.as_str())
    }
}
