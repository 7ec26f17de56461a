//! `kubelab-kube-proxy`: kube-proxy as a process of its own, as on the course VMs.
//!
//! Today it reads the Services and EndpointSlices once and prints the iptables rule set it would apply; it
//! changes nothing on the machine (see the crate documentation for what the wiring step adds).

use clap::Parser;
use kubelab_kube_proxy::NodeNetwork;
use std::net::IpAddr;

/// The kubelab kube-proxy: makes Services' cluster IPs and node ports lead to their ready pods.
///
/// So far it prints the iptables-restore input for the cluster's current Services and exits, changing nothing.
///
/// It finds the apiserver like kubectl does: --server, else --kubeconfig, else $KUBECONFIG, else ~/.kube/config.
#[derive(Parser, Debug)]
#[command(version, about, long_about)]
struct Args {
    #[command(flatten)]
    apiserver: kubelab_api::component::ApiserverFlags,
    /// The pod network, e.g. 10.244.0.0/16: clients of a cluster IP from outside it are masqueraded.
    #[arg(long)]
    cluster_cidr: Option<String>,
    /// An address node ports answer on (repeat for several); none: every local address.
    #[arg(long = "nodeport-address")]
    nodeport_addresses: Vec<IpAddr>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    kubelab_api::component::init_tracing();
    let args = Args::parse();
    let client = args.apiserver.connect()?;
    let node = NodeNetwork { node_port_addresses: args.nodeport_addresses, cluster_cidr: args.cluster_cidr };
    print!("{}", kubelab_kube_proxy::current_rules(&client, &node).await?);
    Ok(())
}
