//! `kubelab-apiserver`: the API server as a process of its own, as on the course VMs.
//! `kubelab up` runs the same code in-process.

use clap::Parser;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

/// The kubelab API server: the Kubernetes REST API, stored in etcd or in an embedded database.
#[derive(Parser, Debug)]
#[command(version, about, long_about = None)]
struct Args {
    /// Address to listen on. Use 0.0.0.0 to accept connections from other machines (course VMs).
    #[arg(long, default_value = "127.0.0.1")]
    bind_address: IpAddr,
    /// Port to listen on (plain HTTP: kubelab leaves out TLS and authentication).
    #[arg(long, default_value_t = 6443)]
    port: u16,
    /// Directory for the embedded store (used when no --etcd-servers is given).
    #[arg(long, default_value = "./kubelab-data")]
    data_dir: PathBuf,
    /// Comma-separated etcd endpoints, e.g. http://127.0.0.1:2379. Without it, the embedded store is used.
    #[arg(long, value_delimiter = ',')]
    etcd_servers: Vec<String>,
    /// The CIDR Service cluster IPs are allocated from (IPv4, /12 to /30).
    #[arg(long, default_value = "10.96.0.0/12")]
    service_cluster_ip_range: kubelab_apiserver::allocator::IpRange,
    /// The ports NodePort Services are allocated from, e.g. 30000-32767.
    #[arg(long, default_value = "30000-32767")]
    service_node_port_range: kubelab_apiserver::allocator::PortRange,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    kubelab_api::component::init_tracing();
    let args = Args::parse();
    let mut config = kubelab_apiserver::Config::new(SocketAddr::new(args.bind_address, args.port), args.data_dir);
    config.etcd_servers = args.etcd_servers;
    config.service_cluster_ip_range = args.service_cluster_ip_range;
    config.service_node_port_range = args.service_node_port_range;
    let server = kubelab_apiserver::start(config).await?;
    println!("kubelab-apiserver listening on {} (store: {})", server.url(), server.store_description);
    tokio::select! {
        result = tokio::signal::ctrl_c() => { result?; println!("shutting down"); }
    }
    server.shutdown().await
}
