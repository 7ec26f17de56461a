//! `kubelab-controller-manager`: the controllers as a process of their own, as on the course VMs.
//! `kubelab up` runs the same [`kubelab_controller_manager::run`] in-process.

use clap::Parser;
use kubelab_controller_manager::{Config, leader};
use std::time::Duration;

/// The kubelab controller manager: keeps ReplicaSets and Deployments (and more) converging to their spec.
///
/// It finds the apiserver like kubectl does (--kubeconfig, else $KUBECONFIG, else ~/.kube/config), or at
/// --server. Set RUST_LOG=kubelab_controller_manager=debug to see every reconcile.
#[derive(Parser, Debug)]
#[command(version, about, long_about)]
struct Args {
    #[command(flatten)]
    apiserver: kubelab_api::component::ApiserverFlags,
    /// ReplicaSets reconciled in parallel.
    #[arg(long, default_value_t = 5)]
    concurrent_replicaset_syncs: usize,
    /// Deployments reconciled in parallel.
    #[arg(long, default_value_t = 5)]
    concurrent_deployment_syncs: usize,
    /// Create a ReplicaSet's missing pods all at once instead of in batches of 1, 2, 4...
    #[arg(long)]
    no_slow_start: bool,
    /// Longest delay between two retries of a failing object, in seconds.
    #[arg(long, default_value_t = 1000)]
    retry_max_delay_seconds: u64,
    /// Elect a leader through the Lease kube-system/kube-controller-manager before acting, so that several
    /// controller-managers can run and only one acts (as on a cluster with several control-plane machines).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    leader_elect: bool,
    /// Seconds without a node heartbeat (Lease renewal) before the node is marked Unknown and tainted.
    #[arg(long, default_value_t = 50)]
    node_monitor_grace_period: u64,
    /// Seconds a pod stays on an unreachable or not-ready node before it is evicted (unless it tolerates longer).
    #[arg(long, default_value_t = 300)]
    default_toleration_seconds: u64,
    /// The pod network, which the node IPAM controller cuts into one slice (spec.podCIDR) per Node.
    #[arg(long, default_value = "10.244.0.0/16", value_name = "CIDR")]
    cluster_cidr: ipnet::Ipv4Net,
    /// The prefix length of each Node's slice of --cluster-cidr (24: up to 254 pods per node).
    #[arg(long, default_value_t = 24, value_name = "BITS")]
    node_cidr_mask_size: u8,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    kubelab_api::component::init_tracing();
    let args = Args::parse();
    let client = args.apiserver.connect()?;
    let config = Config {
        replicaset_workers: args.concurrent_replicaset_syncs,
        deployment_workers: args.concurrent_deployment_syncs,
        slow_start: !args.no_slow_start,
        retry_max_delay: Duration::from_secs(args.retry_max_delay_seconds),
        ..Config::default()
    };
    let mut config = config;
    config.node_lifecycle.health.grace_period = Duration::from_secs(args.node_monitor_grace_period);
    config.node_lifecycle.eviction.default_toleration = Duration::from_secs(args.default_toleration_seconds);
    config.node_ipam.cluster_cidr = args.cluster_cidr.trunc();
    config.node_ipam.node_cidr_mask_size = args.node_cidr_mask_size;
    config.node_ipam.validate().map_err(anyhow::Error::msg)?;
    println!("kubelab-controller-manager: controlling the cluster at {}", client.base_url());
    let controllers = kubelab_controller_manager::run(client.clone(), config);
    let work = async move {
        if args.leader_elect {
            let identity = leader::default_identity();
            println!("waiting to lead as {identity} (Lease kube-system/kube-controller-manager)");
            leader::run_when_leader(client, identity, leader::LeaderConfig::default(), controllers).await?
        } else {
            controllers.await
        }
    };
    tokio::select! {
        result = work => result,
        signal = tokio::signal::ctrl_c() => {
            signal?;
            println!("shutting down");
            Ok(())
        }
    }
}
