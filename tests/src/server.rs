//! The test apiserver of the end-to-end tests: [`kubelab_testkit::TestServer`], the one every test harness
//! shares, plus the two clients only these tests drive it with — the real kubectl and kube-rs.
//!
//! [`TestServer`] wraps the testkit's and dereferences to it, so `server.url()`, `server.restart()` and the rest
//! are the testkit's; only [`TestServer::kubectl`] and [`TestServer::kube_client`] are added here, because they
//! need this crate's [`Kubectl`] and the `kube` crate, which the components' tests have no use for.

use std::ops::{Deref, DerefMut};

use anyhow::Context;
use kubelab_apiserver::store::etcd_server::EtcdServer;

pub use kubelab_testkit::server::{TOKEN, write_kubeconfig};

use crate::kubectl::Kubectl;

/// An apiserver started for one test, and everything around it (see [`kubelab_testkit::TestServer`]).
pub struct TestServer(kubelab_testkit::TestServer);

/// Starts an apiserver on the embedded store, in a fresh temporary directory.
pub async fn spawn_apiserver() -> anyhow::Result<TestServer> {
    Ok(TestServer(kubelab_testkit::spawn_apiserver().await?))
}

/// Starts an apiserver on `etcd` (a throwaway [`EtcdServer`] the test started), in a fresh temporary directory.
pub async fn spawn_apiserver_on_etcd(etcd: &EtcdServer) -> anyhow::Result<TestServer> {
    Ok(TestServer(kubelab_testkit::spawn_apiserver_on_etcd(etcd).await?))
}

impl TestServer {
    /// The real kubectl, configured for this server (its own kubeconfig and discovery cache).
    pub fn kubectl(&self) -> Kubectl {
        Kubectl::new(self.kubeconfig(), &self.dir().join("kubectl-cache"), self.dir())
    }

    /// A kube-rs client for this server: plain HTTP, a bearer token, namespace `default`.
    pub fn kube_client(&self) -> anyhow::Result<kube::Client> {
        let mut config = kube::Config::new(self.url().parse().context("parsing the server URL")?);
        config.auth_info.token = Some(TOKEN.to_string().into());
        config.default_namespace = "default".into();
        kube::Client::try_from(config).context("building the kube-rs client")
    }

    /// Stops the server gracefully and reports an error if it does not stop in time or stopped with an error.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.0.shutdown().await
    }
}

impl Deref for TestServer {
    type Target = kubelab_testkit::TestServer;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for TestServer {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}
