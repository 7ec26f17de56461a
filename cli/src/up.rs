//! `kubelab up`: run a whole cluster in this process until Ctrl-C — see [`kubelab::cluster`] for what starts,
//! in which order, and why in one process.

use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};
use kubelab::cluster::{Cluster, ClusterConfig};
use std::path::PathBuf;

/// Start a kubelab cluster in this terminal (apiserver, scheduler, controller-manager and N kubelets), until
/// Ctrl-C.
///
/// The apiserver listens on 127.0.0.1:PORT over plain HTTP, without authentication, and DIR/kubeconfig is
/// written so that both kubelab and kubectl can talk to it. Kubelets run pods as Docker containers; the small
/// local images they need (kubelab/busybox:1, kubelab/pause:1) are built first when missing. Stopping leaves
/// the pods' containers running: the next `kubelab up` on the same data directory adopts them.
#[derive(Args, Debug)]
#[command(after_help = "Examples:
  kubelab up                                   # 1 node, data in ~/.kubelab, port 6443
  kubelab up --nodes 3                         # 3 simulated nodes: kubelab-node-1, -2, -3
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

    /// How many nodes to simulate, each with its own kubelet, loopback address and slice of the pod network.
    #[arg(long, default_value_t = 1, value_name = "N")]
    nodes: u8,

    /// The cluster's name: nodes are <NAME>-node-1, -2... Give two clusters on one machine different names.
    #[arg(long, default_value = "kubelab")]
    name: String,

    /// The first three parts of the nodes' addresses: node i gets <PREFIX>.i.
    #[arg(long, default_value = "127.0.1", value_name = "PREFIX")]
    node_address_prefix: String,

    /// The pod network: the controller manager gives each node a slice of it (its spec.podCIDR), and the
    /// Docker network <NAME>-pods holding every node's pods has it as its subnet. Change it when running two
    /// clusters at once (Docker refuses overlapping subnets).
    #[arg(long, default_value = "10.244.0.0/16", value_name = "CIDR")]
    cluster_cidr: ipnet::Ipv4Net,

    /// The prefix length of each node's slice of --cluster-cidr (24: up to 254 pods per node).
    #[arg(long, default_value_t = 24, value_name = "BITS")]
    node_cidr_mask_size: u8,

    /// The CIDR Service cluster IPs come from (IPv4, /12 to /30).
    #[arg(long, default_value = "10.96.0.0/12", value_name = "CIDR")]
    service_cluster_ip_range: kubelab_apiserver::allocator::IpRange,

    /// The ports NodePort Services get, e.g. 30000-32767.
    #[arg(long, default_value = "30000-32767", value_name = "RANGE")]
    service_node_port_range: kubelab_apiserver::allocator::PortRange,

    /// userspace: one kube-proxy for all the nodes, which puts the cluster IPs on the interface <NAME>-svc and
    /// forwards each connection to a ready pod (needs root). It is the only wired mode: the iptables mode
    /// (`kubelab-kube-proxy --proxy-mode iptables`) only prints its rules. none: no kube-proxy, so Services get
    /// addresses that lead nowhere.
    #[arg(long, value_enum, default_value_t = ProxyMode::Userspace)]
    proxy_mode: ProxyMode,
}

/// `kubelab up --proxy-mode`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum ProxyMode {
    Userspace,
    None,
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
        let mut config = ClusterConfig::new(data_dir);
        config.name = self.name.clone();
        config.port = self.port;
        config.etcd_servers = self.etcd_servers.clone();
        config.nodes = self.nodes;
        config.node_address_prefix = self.node_address_prefix.clone();
        config.controller_manager.node_ipam.cluster_cidr = self.cluster_cidr.trunc();
        config.controller_manager.node_ipam.node_cidr_mask_size = self.node_cidr_mask_size;
        config.service_cluster_ip_range = self.service_cluster_ip_range;
        config.service_node_port_range = self.service_node_port_range;
        config.kube_proxy = self.proxy_mode == ProxyMode::Userspace;
        let mut cluster = Cluster::start(config, |line| println!("{line}"))
            .await
            .map_err(|err| explain_start_error(err, self.port))?;

        println!();
        println!("kubeconfig written to {}. To use the cluster, in another terminal:", cluster.kubeconfig.display());
        println!("  export KUBECONFIG={}", cluster.kubeconfig.display());
        println!("  kubectl get nodes");
        println!();
        println!("Press Ctrl-C to stop (pods keep running; the next `kubelab up` adopts them).");

        let outcome = tokio::select! {
            signal = wait_for_signal() => signal,
            err = cluster.failed() => Err(err),
        };
        if let Err(err) = &outcome {
            eprintln!("error: {err:#}");
        }
        eprintln!("stopping...");
        tokio::select! {
            result = cluster.shutdown() => result?,
            _ = wait_for_signal() => eprintln!("stopped without waiting for open connections"),
        }
        eprintln!("stopped");
        outcome
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
