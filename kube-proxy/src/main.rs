//! `kubelab-kube-proxy`: kube-proxy as a process of its own, as on the course VMs.
//!
//! In the userspace mode (the default, and the only one wired) it runs [`kubelab_kube_proxy::run`], the same loop
//! `kubelab up` starts, until stopped; stopping it removes the service interface. The iptables mode prints the
//! rule set it would apply for the cluster's current Services and exits, changing nothing.

use clap::{Parser, ValueEnum};
use kubelab_kube_proxy::{Config, NodeNetwork};
use std::net::IpAddr;

/// The kubelab kube-proxy: makes Services' cluster IPs and node ports lead to their ready pods.
///
/// --proxy-mode userspace (the default) puts every cluster IP on the interface --interface, listens on each
/// clusterIP:port and on each --nodeport-address:nodePort, and forwards every connection to a ready pod, round
/// robin, until stopped (Ctrl-C or SIGTERM removes the interface). It needs CAP_NET_ADMIN: run it as root. Only TCP.
///
/// --proxy-mode iptables is NOT applied: it only prints the iptables-restore input for the cluster's current
/// Services and exits, changing nothing on the machine.
///
/// It finds the apiserver like kubectl does: --server, else --kubeconfig, else $KUBECONFIG, else ~/.kube/config.
#[derive(Parser, Debug)]
#[command(version, about, long_about)]
struct Args {
    #[command(flatten)]
    apiserver: kubelab_api::component::ApiserverFlags,
    /// userspace: proxy connections (wired). iptables: print the rule set only, apply nothing.
    #[arg(long, value_enum, default_value_t = Mode::Userspace)]
    proxy_mode: Mode,
    /// Userspace mode: the interface that holds the cluster IPs (created at start, deleted at exit).
    #[arg(long, default_value = "kubelab-svc", value_name = "NAME")]
    interface: String,
    /// The apiserver's --service-cluster-ip-range: only its addresses are claimed; the rest is made unreachable.
    #[arg(long, default_value = "10.96.0.0/12", value_name = "CIDR")]
    service_cluster_ip_range: ipnet::Ipv4Net,
    /// The pod network, e.g. 10.244.0.0/16 (iptables mode): clients of a cluster IP from outside it are
    /// masqueraded.
    #[arg(long)]
    cluster_cidr: Option<String>,
    /// An address node ports answer on (repeat for several); none: every local address.
    #[arg(long = "nodeport-address")]
    nodeport_addresses: Vec<IpAddr>,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum Mode {
    Userspace,
    Iptables,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    kubelab_api::component::init_tracing();
    let args = Args::parse();
    let client = args.apiserver.connect()?;
    match args.proxy_mode {
        Mode::Iptables => {
            let node = NodeNetwork { node_port_addresses: args.nodeport_addresses, cluster_cidr: args.cluster_cidr };
            print!("{}", kubelab_kube_proxy::current_rules(&client, &node).await?);
        }
        Mode::Userspace => {
            let cidr = args.service_cluster_ip_range.trunc();
            let config = Config::new(client, &args.interface, cidr, args.nodeport_addresses);
            // Dropping the proxy's future (on Ctrl-C or SIGTERM) is what deletes the interface.
            let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            tokio::select! {
                result = kubelab_kube_proxy::run(config) => result?,
                result = tokio::signal::ctrl_c() => result?,
                _ = terminate.recv() => {}
            }
        }
    }
    Ok(())
}
