//! `kubelab-kubelet`: the kubelet as a process of its own, as on the course VMs. `kubelab up` runs the same
//! code in-process, one per simulated node.

use clap::Parser;
use kubelab_kubelet::Config;
use std::net::IpAddr;
use std::path::PathBuf;

/// The kubelab kubelet: runs the pods bound to this node as Docker containers.
#[derive(Parser, Debug)]
#[command(version, about, long_about = None)]
struct Args {
    #[command(flatten)]
    apiserver: kubelab_api::component::ApiserverFlags,
    /// The Node's name; pods with this `spec.nodeName` are this kubelet's.
    #[arg(long, env = "NODE_NAME")]
    node_name: String,
    /// The node's address: its InternalIP, where the kubelet's servers listen.
    #[arg(long, default_value = "127.0.0.1")]
    address: IpAddr,
    /// The kubelet API port (/containerLogs, /healthz).
    #[arg(long, default_value_t = 10250)]
    port: u16,
    /// The read-only port (/healthz, /pods, /spec).
    #[arg(long, default_value_t = 10255)]
    read_only_port: u16,
    /// Register the Node with this pod CIDR, for a cluster whose controller manager assigns none. Without it
    /// (the usual case), the kubelet waits for the controller manager to write the Node's spec.podCIDR.
    #[arg(long, value_name = "CIDR")]
    pod_cidr: Option<ipnet::Ipv4Net>,
    /// Where pod files (emptyDir volumes) are kept.
    #[arg(long, default_value = "./kubelab-kubelet")]
    data_dir: PathBuf,
    /// The Docker network for the node's pods (default: kubelab-<node name>, created with the pod CIDR as its
    /// subnet; an existing network must contain the pod CIDR).
    #[arg(long)]
    network: Option<String>,
    /// The image of every pod's sandbox, the container that holds its network namespace.
    #[arg(long, default_value = kubelab_kubelet::images::PAUSE_IMAGE)]
    pod_infra_container_image: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    kubelab_api::component::init_tracing();
    let args = Args::parse();
    let client = args.apiserver.connect()?;
    let mut config = Config::new(args.node_name, client, args.address, args.data_dir);
    config.pod_cidr = args.pod_cidr.map(|cidr| cidr.trunc());
    config.port = args.port;
    config.read_only_port = args.read_only_port;
    config.pod_infra_container_image = args.pod_infra_container_image;
    if let Some(network) = args.network {
        config.network = network;
    }
    tokio::select! {
        result = kubelab_kubelet::run(config) => result,
        signal = tokio::signal::ctrl_c() => {
            signal?;
            // Pods keep running: a kubelet started again adopts them.
            println!("kubelet stopped; its pods keep running");
            Ok(())
        }
    }
}
