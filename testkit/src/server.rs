//! A private apiserver for one test.
//!
//! [`spawn_apiserver`] starts the real `kubelab_apiserver` in this process, listening on `127.0.0.1:0` (the
//! operating system picks a free port, so parallel tests never collide), with a fresh temporary directory holding
//! its data and a kubeconfig that points at it. Everything a test needs to talk to the server comes from the
//! [`TestServer`]: [`TestServer::client`] for kubelab's own client, [`TestServer::kubeconfig`] for a component,
//! [`TestServer::kubectl`] to run the real kubectl, [`TestServer::http`] for requests no client would send.
//!
//! The temporary directory is deleted when the `TestServer` is dropped. The server itself is a task of the test's
//! Tokio runtime, which ends with the test, passed or failed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use kubelab_api::client::Client;
use kubelab_apiserver::store::etcd_server::EtcdServer;
use kubelab_apiserver::{Config, RunningServer};

use crate::kubectl::Kubectl;
use tempfile::TempDir;

/// The bearer token written in the kubeconfig. The kubelab apiserver does no authentication; real clusters do,
/// so clients are configured the way they would be for one.
pub const TOKEN: &str = "kubelab-test-token";

/// How long a graceful shutdown may take before the test reports it as a bug.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(15);

/// An apiserver started for one test, and everything around it.
pub struct TestServer {
    /// The running server; `None` only between [`TestServer::stop`] and [`TestServer::start`].
    running: Option<RunningServer>,
    /// How it was started, so that a restart starts the same server on the same data.
    config: Config,
    /// `http://127.0.0.1:PORT`.
    url: String,
    /// `<dir>/kubeconfig`, pointing at `url`.
    kubeconfig: PathBuf,
    /// The temporary directory: `data/` (the embedded store), `kubeconfig`, and whatever the test keeps there
    /// (kubectl's cache, manifests, a kubelet's files). Deleted on drop. Declared last so that it is dropped
    /// after everything that uses it.
    dir: TempDir,
}

/// Starts an apiserver on the embedded store, in a fresh temporary directory.
pub async fn spawn_apiserver() -> anyhow::Result<TestServer> {
    spawn(Vec::new()).await
}

/// Starts an apiserver on `etcd` (a throwaway [`EtcdServer`] the test started), in a fresh temporary directory.
pub async fn spawn_apiserver_on_etcd(etcd: &EtcdServer) -> anyhow::Result<TestServer> {
    spawn(vec![etcd.endpoint()]).await
}

/// Both of the above: only the store differs.
async fn spawn(etcd_servers: Vec<String>) -> anyhow::Result<TestServer> {
    init_tracing();
    let dir = tempfile::Builder::new().prefix("kubelab-test-").tempdir().context("creating a temporary directory")?;
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut config = Config::new(loopback, dir.path().join("data"));
    config.etcd_servers = etcd_servers;
    let running = kubelab_apiserver::start(config.clone()).await.context("starting the apiserver")?;
    let url = running.url();
    let kubeconfig = dir.path().join("kubeconfig");
    write_kubeconfig(&kubeconfig, &url)?;
    Ok(TestServer { running: Some(running), config, url, kubeconfig, dir })
}

impl TestServer {
    /// The server's base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// kubelab's client for this server, as every component uses it.
    pub fn client(&self) -> anyhow::Result<Client> {
        Client::new(&self.url).context("a client for the test server")
    }

    /// The test's temporary directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Where the server keeps its data (the embedded store's file lives here).
    pub fn data_dir(&self) -> &Path {
        &self.config.data_dir
    }

    /// The kubeconfig that points at this server.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The real kubectl, pointed at this server: this server's kubeconfig, and a discovery cache in the test's
    /// directory (kubectl caches discovery per server address, and a port reused by a later test must not find
    /// the previous server's resource list). See [`Kubectl`] for what it runs and how.
    pub fn kubectl(&self) -> Kubectl {
        Kubectl::new(&self.kubeconfig, &self.dir.path().join("kubectl-cache"), self.dir.path())
    }

    /// A plain HTTP client, for requests kubectl would never send.
    pub fn http(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("a reqwest client without TLS or proxies always builds")
    }

    /// `url` + `path`, e.g. `server.path_url("/api/v1/namespaces")`.
    pub fn path_url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// Writes `contents` to `name` in the test's directory and returns its path as a string, ready to be a kubectl
    /// argument (`-f <path>`).
    pub fn write_file(&self, name: &str, contents: &str) -> anyhow::Result<String> {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))?;
        Ok(path.to_str().context("temporary paths are UTF-8")?.to_string())
    }

    /// Stops the server gracefully and starts it again with the same configuration and data directory.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.stop().await?;
        self.start().await
    }

    /// Stops the server gracefully, keeping its data; [`TestServer::start`] starts it again. In between, the data
    /// directory is free (the embedded store's file is unlocked) for a test to inspect.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        let running = self.running.take().context("the server is not running")?;
        // The next start binds the same port, so the kubeconfig stays right.
        self.config.bind = running.addr;
        stop(running).await
    }

    /// Starts the server again after [`TestServer::stop`], on the same data, on the same port when it is still
    /// free (else on a new one, and the kubeconfig is rewritten).
    pub async fn start(&mut self) -> anyhow::Result<()> {
        anyhow::ensure!(self.running.is_none(), "the server is already running");
        let running = match kubelab_apiserver::start(self.config.clone()).await {
            Ok(running) => running,
            // Someone took the port in the meantime: any free port will do.
            Err(_) => {
                let mut config = self.config.clone();
                config.bind = SocketAddr::from(([127, 0, 0, 1], 0));
                kubelab_apiserver::start(config).await.context("restarting the apiserver")?
            }
        };
        if running.url() != self.url {
            self.url = running.url();
            write_kubeconfig(&self.kubeconfig, &self.url)?;
        }
        self.running = Some(running);
        Ok(())
    }

    /// Stops the server gracefully and reports an error if it does not stop in time or stopped with an error.
    ///
    /// Tests whose components keep watches open (an informer cannot be stopped) should not call it: the
    /// graceful shutdown would wait for those connections until its timeout (15 s). Dropping the `TestServer`
    /// is enough; the server stops with the test's runtime.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        match self.running.take() {
            Some(running) => stop(running).await,
            None => Ok(()),
        }
    }
}

/// A graceful shutdown, bounded by [`SHUTDOWN_TIMEOUT`].
async fn stop(running: RunningServer) -> anyhow::Result<()> {
    tokio::time::timeout(SHUTDOWN_TIMEOUT, running.shutdown())
        .await
        .with_context(|| format!("the apiserver did not shut down within {SHUTDOWN_TIMEOUT:?}"))?
        .context("the apiserver stopped with an error")
}

/// A kubeconfig for a plain-HTTP server: one cluster, one user with a token, one context, current.
///
/// Written by hand (it is a few lines) so that the tests do not depend on the code they test to find the server.
pub fn write_kubeconfig(path: &Path, url: &str) -> anyhow::Result<()> {
    let text = format!(
        "apiVersion: v1
kind: Config
clusters:
- name: kubelab-test
  cluster:
    server: {url}
users:
- name: kubelab-test
  user:
    token: {TOKEN}
contexts:
- name: kubelab-test
  context:
    cluster: kubelab-test
    user: kubelab-test
current-context: kubelab-test
"
    );
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Sends the apiserver's (and the components') logs to the test output, shown for failed tests. `RUST_LOG` picks
/// the level; the default shows warnings, `RUST_LOG=kubelab_apiserver=debug` one line per request.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into());
    // Fails when another test of this binary already installed it, which is fine.
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
}
