//! The test apiserver of the end-to-end tests: [`kubelab_testkit::TestServer`], the one every test harness
//! shares, plus the two clients only these tests drive it with — the real kubectl and kube-rs.
//!
//! [`TestServer`] wraps the testkit's and dereferences to it, so `server.url()`, `server.kubectl()`,
//! `server.restart()` and the rest are the testkit's; only [`TestServer::kube_client`] and
//! [`TestServer::spawn_controller_manager`] are added here, because they need the `kube` crate and the controller
//! manager, which the testkit cannot depend on (the controller manager's own tests use the testkit).

use std::ops::{Deref, DerefMut};

use anyhow::Context;
use kubelab_apiserver::store::etcd_server::EtcdServer;
use kubelab_testkit::AbortOnDrop;

pub use kubelab_testkit::server::{TOKEN, write_kubeconfig};

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
    /// A kube-rs client for this server: plain HTTP, a bearer token, namespace `default`.
    pub fn kube_client(&self) -> anyhow::Result<kube::Client> {
        let mut config = kube::Config::new(self.url().parse().context("parsing the server URL")?);
        config.auth_info.token = Some(TOKEN.to_string().into());
        config.default_namespace = "default".into();
        kube::Client::try_from(config).context("building the kube-rs client")
    }

    /// Runs the controller manager (every controller, default settings) beside this server, in this process, until
    /// the returned guard is dropped: for tests whose subject needs controllers but no nodes (a namespace removed
    /// once empty, a rollout that completes).
    pub fn spawn_controller_manager(&self) -> anyhow::Result<AbortOnDrop<anyhow::Result<()>>> {
        let client = self.client()?;
        Ok(AbortOnDrop::spawn(kubelab_controller_manager::run(client, Default::default())))
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
