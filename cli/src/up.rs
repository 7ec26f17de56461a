//! `kubelab up`: run a whole cluster in this process until Ctrl-C.
//!
//! A cluster is a control plane — the apiserver, the scheduler, the controller-manager — and nodes, each with its
//! kubelet. `up` starts them all as tasks of this one process, in the order a real cluster comes up: the
//! apiserver first (everything else talks only to it), then the control-plane components, then the kubelets,
//! which register their Nodes. Each simulated node gets its own loopback address (127.0.1.1, 127.0.1.2, ...),
//! which is its InternalIP and where its kubelet listens, and its own Docker network and pod subnet
//! (10.244.1.0/24, 10.244.2.0/24, ...).
//!
//! A real cluster runs each component as its own process, on its own machine (the course VMs do that with the
//! `kubelab-apiserver`, `kubelab-scheduler`, `kubelab-controller-manager` and `kubelab-kubelet` binaries); one
//! process keeps the demo to one command. Stopping `up` stops the components, not the pods: containers keep
//! running, and the next `up` on the same data directory adopts them.

use anyhow::{Context as _, bail};
use clap::Args;
use kubelab_api::client::Client;
use kubelab_apiserver::{Config, RunningServer};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use tokio::task::JoinSet;

/// Start a kubelab cluster in this terminal (apiserver, scheduler, controller-manager and N kubelets), until
/// Ctrl-C.
///
/// The apiserver listens on 127.0.0.1:PORT over plain HTTP, without authentication, and DIR/kubeconfig is
/// written so that both kubelab and kubectl can talk to it. Kubelets run pods as Docker containers; the small
/// local images they need (kubelab/busybox:1, kubelab/pause:1) are built first when missing.
#[derive(Args, Debug)]
#[command(after_help = "Examples:
  kubelab up                                   # 1 node, data in ~/.kubelab, port 6443
  kubelab up --nodes 3                         # 3 simulated nodes: node-1, node-2, node-3
  kubelab up --nodes 0                         # control plane only (no Docker needed)
  kubelab up --data-dir /tmp/lab --port 7443
  kubelab up --etcd-servers http://127.0.0.1:2379")]
pub struct Up {
    /// Where the cluster keeps its data (the embedded store, pod volumes) and its kubeconfig. Default: ~/.kubelab.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// The apiserver's port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 6443)]
    port: u16,

    /// Store objects in etcd at these URLs (comma separated) instead of the embedded store.
    #[arg(long, value_name = "URLS", value_delimiter = ',')]
    etcd_servers: Vec<String>,

    /// How many nodes to simulate, each with its own kubelet, loopback address and Docker network.
    #[arg(long, default_value_t = 1, value_name = "N")]
    nodes: u8,

    /// The first three parts of the nodes' addresses: node i gets <PREFIX>.i.
    #[arg(long, default_value = "127.0.1", value_name = "PREFIX")]
    node_address_prefix: String,

    /// The first two parts of the pod networks: node i's pods get <PREFIX>.i.0/24. Change it when running two
    /// clusters at once (Docker refuses overlapping subnets).
    #[arg(long, default_value = "10.244", value_name = "PREFIX")]
    pod_network_prefix: String,
}

impl Up {
    pub async fn run(self) -> anyhow::Result<()> {
        let data_dir = match &self.data_dir {
            Some(dir) => dir.clone(),
            None => match std::env::var_os("HOME") {
                Some(home) => PathBuf::from(home).join(".kubelab"),
                None => bail!("$HOME is not set: choose a data directory with --data-dir"),
            },
        };
        std::fs::create_dir_all(&data_dir).with_context(|| format!("cannot create {}", data_dir.display()))?;

        // 1. The apiserver: everything else talks only to it.
        let bind = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let mut config = Config::new(bind, data_dir.clone());
        config.etcd_servers = self.etcd_servers.clone();
        let mut server = kubelab_apiserver::start(config).await.map_err(|err| explain_start_error(err, self.port))?;
        println!("apiserver            {} (store: {})", server.url(), server.store_description);
        let kubeconfig = data_dir.join("kubeconfig");
        kubelab_api::kubeconfig::write_kubeconfig(&kubeconfig, &server.url(), "kubelab")?;
        let client = Client::new(&server.url())?;

        // 2. The control plane. A JoinSet: dropping it aborts every component.
        let mut components = JoinSet::new();
        components.spawn(named("scheduler", kubelab_scheduler::run(client.clone(), kubelab_scheduler::Config::new())));
        println!("scheduler            running");
        components.spawn(named(
            "controller-manager",
            kubelab_controller_manager::run(client.clone(), kubelab_controller_manager::Config::default()),
        ));
        println!("controller-manager   running");

        // 3. The nodes.
        if self.nodes > 0 {
            let docker = kubelab_kubelet::docker::connect().await.context(
                "kubelets run pods in Docker, which is not reachable; start Docker, or use --nodes 0 for a control \
                 plane without nodes",
            )?;
            println!("images               checking kubelab/busybox:1 and kubelab/pause:1 (built once, ~10 s)...");
            let built = kubelab_kubelet::images::ensure_local_images(&docker).await?;
            if !built.is_empty() {
                println!("images               built {}", built.join(", "));
            }
            for i in 1..=self.nodes {
                let node = format!("node-{i}");
                let kubelet = self.kubelet_config(&node, i, &client, &data_dir)?;
                println!("kubelet {node:<12} {} (pods: {}, network {})", kubelet.address, kubelet.pod_cidr, kubelet.network);
                components.spawn(named("kubelet", kubelab_kubelet::run(kubelet)));
            }
        }

        println!();
        println!("kubeconfig written to {}. To use the cluster, in another terminal:", kubeconfig.display());
        println!("  export KUBECONFIG={}", kubeconfig.display());
        println!("  kubectl get nodes");
        println!();
        println!("Press Ctrl-C to stop (pods keep running; the next `kubelab up` adopts them).");

        let outcome = tokio::select! {
            signal = wait_for_signal() => signal,
            result = server.wait() => result.context("the apiserver stopped"),
            Some(result) = components.join_next() => match result {
                Ok(Err(err)) => Err(err),
                Ok(Ok(())) => Ok(()),
                Err(err) => Err(err.into()),
            },
        };
        if let Err(err) = &outcome {
            eprintln!("error: {err:#}");
        }
        components.shutdown().await;
        stop(server).await?;
        outcome
    }

    /// The kubelet of simulated node `i`.
    fn kubelet_config(&self, node: &str, i: u8, client: &Client, data_dir: &Path) -> anyhow::Result<kubelab_kubelet::Config> {
        let address: IpAddr = format!("{}.{i}", self.node_address_prefix)
            .parse()
            .with_context(|| format!("--node-address-prefix {:?} does not make an IP address", self.node_address_prefix))?;
        let pod_cidr = format!("{}.{i}.0/24", self.pod_network_prefix);
        let config = kubelab_kubelet::Config::new(node, client.clone(), address, pod_cidr, data_dir.join("nodes").join(node));
        config.validate()?;
        Ok(config)
    }
}

/// Tags a component's error with its name, so that `up` can say which one failed.
async fn named(name: &'static str, component: impl Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    component.await.with_context(|| format!("{name} failed"))
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

/// Shuts the apiserver down gracefully: it stops accepting requests and ends open watches. A second Ctrl-C stops
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
