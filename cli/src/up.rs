//! `kubelab up`: run a cluster in this process until Ctrl-C.
//!
//! For now a cluster is its apiserver: `up` starts it in-process with `kubelab_apiserver::start`, writes a
//! kubeconfig that points at it, and tells the user the two lines to type in another terminal. The data
//! directory keeps the embedded store, so objects survive a restart; with `--etcd-servers` they live in etcd.
//!
//! A real cluster runs each component as its own process (often in containers, started by the kubelet from
//! static pod manifests); running them as tasks of one process keeps the demo to one command.

use anyhow::{Context as _, bail};
use clap::Args;
use kubelab_apiserver::{Config, RunningServer};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

/// Start a kubelab cluster (the apiserver) in this terminal, until Ctrl-C.
///
/// Listens on 127.0.0.1:PORT over plain HTTP, without authentication, and writes DIR/kubeconfig so that both
/// kubelab and kubectl can talk to it.
#[derive(Args, Debug)]
#[command(after_help = "Examples:
  kubelab up                                   # data in ~/.kubelab, port 6443
  kubelab up --data-dir /tmp/lab --port 7443
  kubelab up --etcd-servers http://127.0.0.1:2379")]
pub struct Up {
    /// Where the cluster keeps its data (the embedded store) and its kubeconfig. Default: ~/.kubelab.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// The apiserver's port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 6443)]
    port: u16,

    /// Store objects in etcd at these URLs (comma separated) instead of the embedded store.
    #[arg(long, value_name = "URLS", value_delimiter = ',')]
    etcd_servers: Vec<String>,
}

impl Up {
    pub async fn run(self) -> anyhow::Result<()> {
        let data_dir = match self.data_dir {
            Some(dir) => dir,
            None => match std::env::var_os("HOME") {
                Some(home) => PathBuf::from(home).join(".kubelab"),
                None => bail!("$HOME is not set: choose a data directory with --data-dir"),
            },
        };
        std::fs::create_dir_all(&data_dir).with_context(|| format!("cannot create {}", data_dir.display()))?;
        let bind = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        // Try the port first, so that a taken port is reported plainly, before the store is even opened.
        // (The listener is dropped at once; another process could take the port in between, then `start` fails.)
        if let Err(err) = std::net::TcpListener::bind(bind) {
            return Err(explain_start_error(err.into(), self.port));
        }
        let mut config = Config::new(bind, data_dir.clone());
        config.etcd_servers = self.etcd_servers.clone();
        let server = kubelab_apiserver::start(config).await.map_err(|err| explain_start_error(err, self.port))?;

        let kubeconfig = data_dir.join("kubeconfig");
        kubelab_api::kubeconfig::write_kubeconfig(&kubeconfig, &server.url(), "kubelab")?;
        println!("kubelab apiserver listening on {} (store: {})", server.url(), server.store_description);
        println!("kubeconfig written to {}", kubeconfig.display());
        println!();
        println!("To use the cluster, in another terminal:");
        println!("  export KUBECONFIG={}", kubeconfig.display());
        println!("  kubectl get nodes");
        println!();
        println!("Press Ctrl-C to stop.");

        wait_for_signal().await?;
        stop(server).await
    }
}

/// Turns "address in use" into advice; other errors are shown as they are.
fn explain_start_error(err: anyhow::Error, port: u16) -> anyhow::Error {
    let in_use = err
        .chain()
        .filter_map(|cause| cause.downcast_ref::<std::io::Error>())
        .any(|io| io.kind() == std::io::ErrorKind::AddrInUse);
    if in_use {
        anyhow::anyhow!(
            "port {port} on 127.0.0.1 is already in use: is another `kubelab up` (or a Kubernetes cluster) running? \
             Stop it, or choose another port with --port"
        )
    } else {
        err.context("cannot start the apiserver")
    }
}

/// Returns on Ctrl-C (SIGINT) or SIGTERM (what `kill` and container runtimes send).
async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("cannot listen for Ctrl-C")?,
        _ = terminate.recv() => {}
    }
    Ok(())
}

/// Shuts the server down gracefully: it stops accepting requests and ends open watches. A second Ctrl-C stops
/// at once, in case a client holds a connection open.
async fn stop(server: RunningServer) -> anyhow::Result<()> {
    eprintln!("stopping...");
    tokio::select! {
        result = server.shutdown() => result?,
        _ = wait_for_signal() => eprintln!("stopped without waiting for open connections"),
    }
    eprintln!("stopped");
    Ok(())
}
