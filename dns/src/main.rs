//! `kubelab-dns`: the cluster DNS server as a process of its own. Not started by `kubelab up` yet (see the crate
//! docs): run it by hand and ask it with `dig -p 10053 @127.0.0.1 kubernetes.default.svc.cluster.local`.

use clap::Parser;
use std::net::SocketAddr;

/// The kubelab cluster DNS server: answers `<service>.<namespace>.svc.<cluster domain>` from the apiserver's
/// Services and Endpoints, over UDP and TCP.
///
/// It finds the apiserver like kubectl does: --server, else --kubeconfig, else $KUBECONFIG, else ~/.kube/config.
#[derive(Parser, Debug)]
#[command(version, about, long_about)]
struct Args {
    #[command(flatten)]
    apiserver: kubelab_api::component::ApiserverFlags,
    /// Address to answer on, UDP and TCP (port 53 needs privileges).
    #[arg(long, default_value = "127.0.0.1:10053")]
    listen: SocketAddr,
    /// The domain Service names live under (the kubelet's --cluster-domain).
    #[arg(long, default_value = "cluster.local")]
    cluster_domain: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    kubelab_api::component::init_tracing();
    let args = Args::parse();
    let client = args.apiserver.connect()?;
    let config =
        kubelab_dns::Config { listen: args.listen, cluster_domain: kubelab_dns::cluster_domain(&args.cluster_domain)? };
    let server = kubelab_dns::DnsServer::bind(&config).await?;
    println!("kubelab-dns: answering {} on {} from {}", config.cluster_domain, server.local_addr(), client.base_url());
    tokio::select! {
        result = server.serve(client) => Ok(result?),
        result = tokio::signal::ctrl_c() => { result?; println!("shutting down"); Ok(()) }
    }
}
