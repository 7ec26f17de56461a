//! A whole cluster in one process: what `kubelab up` runs, and what the end-to-end tests start.
//!
//! A cluster is a control plane — the apiserver, the scheduler, the controller-manager — and nodes, each with its
//! kubelet. [`Cluster::start`] brings them up in the order a real cluster comes up: the apiserver first
//! (everything else talks only to it), then the control-plane components, then the kubelets, which register their
//! Nodes. Each simulated node gets its own loopback address (127.0.1.1, 127.0.1.2, ...), which is its InternalIP
//! and where its kubelet listens, and its own pod CIDR (10.244.0.0/24, 10.244.1.0/24, ...), which the controller
//! manager's node IPAM controller cuts out of the cluster CIDR and writes into the Node.
//!
//! The simulated nodes share one host, so they share one pod network: a Docker bridge network for the whole
//! cluster CIDR, `<name>-pods`, made here before the kubelets start. Each kubelet puts
//! its pods on it at addresses of its own pod CIDR. One bridge is the simplest wire between the nodes: a pod on
//! node-2 reaches a pod on node-1 straight across it, without NAT, and the host reaches every pod through the
//! bridge's gateway address. (Separate Docker networks per node would be isolated from each other by Docker's
//! firewall rules and masqueraded; real machines instead route each node's pod CIDR to it: see the chapter "The
//! pod network".) The network outlives `kubelab up` while pods are attached to it, as the pods do; stopping
//! removes it once no container uses it.
//!
//! Services reach their pods through one kube-proxy for the whole cluster, in the userspace mode: all simulated
//! nodes share the host's network namespace (one set of local addresses, one port space), so a proxy per node
//! would fight over the same cluster IPs and ports. The one proxy puts the cluster IPs on the interface
//! `<name>-svc` and listens on every node's address for the node ports (see `kubelab_kube_proxy`).
//!
//! A real cluster runs each component as its own process, usually on its own machine (the course VMs do that
//! with the `kubelab-apiserver`, `kubelab-scheduler`, `kubelab-controller-manager` and `kubelab-kubelet`
//! binaries); tasks of one process keep the demo to one command. Stopping a kubelet stops the kubelet, not its
//! pods: their containers keep running, and a kubelet started again for the node adopts them.

use anyhow::Context as _;
use ipnet::Ipv4Net;
use kubelab_api::client::Client;
use kubelab_apiserver::RunningServer;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use tokio::task::{AbortHandle, JoinSet};

/// What to start.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// Names the nodes (`<name>-node-1`) and their Docker networks, so that two clusters on one machine never
    /// touch each other's containers.
    pub name: String,
    /// The embedded store, the kubeconfig and the kubelets' pod files live here.
    pub data_dir: PathBuf,
    /// The apiserver's port on 127.0.0.1 (0: a free one).
    pub port: u16,
    /// etcd endpoints; empty means the embedded store.
    pub etcd_servers: Vec<String>,
    /// How many nodes (kubelets) to simulate; 0 runs the control plane only (no Docker needed).
    pub nodes: u8,
    /// Node `i` gets the address `<prefix>.i`.
    pub node_address_prefix: String,
    /// Where the apiserver allocates Service cluster IPs and node ports from.
    pub service_cluster_ip_range: kubelab_apiserver::allocator::IpRange,
    pub service_node_port_range: kubelab_apiserver::allocator::PortRange,
    pub scheduler: kubelab_scheduler::Config,
    /// The controller manager's settings, among them the one source of pod addresses:
    /// `controller_manager.node_ipam.cluster_cidr` (10.244.0.0/16), which is also the pod network's subnet.
    pub controller_manager: kubelab_controller_manager::Config,
    /// Applied to every kubelet's configuration (tests shorten heartbeats and back-off here).
    pub kubelet: fn(&mut kubelab_kubelet::Config),
    /// Whether to start kube-proxy (userspace mode) when there are nodes. It needs CAP_NET_ADMIN (root).
    pub kube_proxy: bool,
    /// The interface kube-proxy puts cluster IPs on; `None`: `<name>-svc`.
    pub service_interface: Option<String>,
}

impl ClusterConfig {
    /// Kubernetes' defaults everywhere; one node.
    pub fn new(data_dir: PathBuf) -> Self {
        ClusterConfig {
            name: "kubelab".into(),
            data_dir,
            port: 6443,
            etcd_servers: Vec::new(),
            nodes: 1,
            node_address_prefix: "127.0.1".into(),
            service_cluster_ip_range: Default::default(),
            service_node_port_range: Default::default(),
            scheduler: kubelab_scheduler::Config::new(),
            controller_manager: kubelab_controller_manager::Config::default(),
            kubelet: |_| {},
            kube_proxy: true,
            service_interface: None,
        }
    }

    /// The name of node `i` (from 1).
    pub fn node_name(&self, i: u8) -> String {
        format!("{}-node-{i}", self.name)
    }

    /// The Docker network every node's pods join: `<name>-pods`.
    pub fn pod_network(&self) -> String {
        format!("{}-pods", self.name)
    }

    /// The cluster CIDR: the pod network's subnet, cut into the nodes' pod CIDRs.
    pub fn cluster_cidr(&self) -> Ipv4Net {
        self.controller_manager.node_ipam.cluster_cidr
    }

    /// The interface holding the cluster IPs: `<name>-svc` unless set.
    pub fn service_interface(&self) -> String {
        self.service_interface.clone().unwrap_or_else(|| format!("{}-svc", self.name))
    }

    /// The address of node `i` (from 1): `<prefix>.i`.
    fn node_address(&self, i: u8) -> anyhow::Result<IpAddr> {
        format!("{}.{i}", self.node_address_prefix).parse().with_context(|| {
            format!("the node address prefix {:?} does not make an IP address", self.node_address_prefix)
        })
    }

    /// The kubelet of node `i`.
    fn kubelet_config(&self, i: u8, client: &Client) -> anyhow::Result<kubelab_kubelet::Config> {
        let node = self.node_name(i);
        let address = self.node_address(i)?;
        // No pod CIDR: the kubelet waits for the one the node IPAM controller writes into its Node.
        let mut config =
            kubelab_kubelet::Config::new(&node, client.clone(), address, self.data_dir.join("nodes").join(&node));
        config.network = self.pod_network();
        (self.kubelet)(&mut config);
        config.validate()?;
        Ok(config)
    }
}

/// A running cluster.
pub struct Cluster {
    pub config: ClusterConfig,
    pub server: RunningServer,
    /// A client of the apiserver.
    pub client: Client,
    /// `<data dir>/kubeconfig`, for kubectl and kubelab.
    pub kubeconfig: PathBuf,
    /// Every component's task; dropping the set aborts them all.
    components: JoinSet<anyhow::Result<()>>,
    /// Each node's kubelet task, to stop and start one node (as an instructor pulls a node's plug).
    kubelets: BTreeMap<String, AbortHandle>,
}

impl Cluster {
    /// Starts the cluster; `progress` is told each step (what `kubelab up` prints).
    pub async fn start(config: ClusterConfig, progress: impl Fn(&str)) -> anyhow::Result<Cluster> {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("cannot create {}", config.data_dir.display()))?;
        config.controller_manager.node_ipam.validate().map_err(anyhow::Error::msg)?;
        let bind = SocketAddr::from((Ipv4Addr::LOCALHOST, config.port));
        let mut server_config = kubelab_apiserver::Config::new(bind, config.data_dir.clone());
        server_config.etcd_servers = config.etcd_servers.clone();
        server_config.service_cluster_ip_range = config.service_cluster_ip_range;
        server_config.service_node_port_range = config.service_node_port_range;
        let server = kubelab_apiserver::start(server_config).await?;
        progress(&format!("apiserver            {} (store: {})", server.url(), server.store_description));
        let kubeconfig = config.data_dir.join("kubeconfig");
        kubelab_api::kubeconfig::write_kubeconfig(&kubeconfig, &server.url(), &config.name)?;
        let client = Client::new(&server.url())?;

        let mut components = JoinSet::new();
        components.spawn(named("scheduler", kubelab_scheduler::run(client.clone(), config.scheduler.clone())));
        progress("scheduler            running");
        components.spawn(named(
            "controller-manager",
            kubelab_controller_manager::run(client.clone(), config.controller_manager.clone()),
        ));
        progress("controller-manager   running");

        let mut cluster = Cluster { config, server, client, kubeconfig, components, kubelets: BTreeMap::new() };
        if cluster.config.nodes > 0 {
            let docker = kubelab_kubelet::docker::connect().await.context(
                "kubelets run pods in Docker, which is not reachable; start Docker, or run without nodes (--nodes 0)",
            )?;
            progress("images               checking kubelab/busybox:1 and kubelab/pause:1...");
            let built = kubelab_kubelet::images::ensure_local_images(&docker).await?;
            if !built.is_empty() {
                progress(&format!("images               built {}", built.join(", ")));
            }
            // ANCHOR: pod_network
            // One Docker bridge for the whole cluster CIDR: the wire between the simulated nodes' pods.
            let (network, cidr) = (cluster.config.pod_network(), cluster.config.cluster_cidr());
            let label = ("kubelab.cluster", cluster.config.name.as_str());
            kubelab_kubelet::docker::ensure_network(&docker, &network, cidr, label).await.with_context(|| {
                format!(
                    "cannot set up the pod network {network} for the cluster CIDR {cidr}. If another Docker network \
                     uses part of it (`docker network ls`; an older kubelab made one per node), remove that network \
                     or choose another --cluster-cidr"
                )
            })?;
            // ANCHOR_END: pod_network
            let mask = cluster.config.controller_manager.node_ipam.node_cidr_mask_size;
            progress(&format!("pod network          {network} ({cidr}, a /{mask} per node)"));
            for i in 1..=cluster.config.nodes {
                let kubelet = cluster.config.kubelet_config(i, &cluster.client)?;
                progress(&format!("kubelet {:<12} {}", kubelet.node_name, kubelet.address));
                cluster.start_kubelet(kubelet);
            }
            if cluster.config.kube_proxy {
                cluster.start_kube_proxy(&progress)?;
            }
        }
        Ok(cluster)
    }

    // ANCHOR: kube_proxy
    /// One kube-proxy for every simulated node (they share the host's network namespace), node ports on each
    /// node's address. Its task deletes the service interface when it is stopped.
    ///
    /// Without the privilege to add addresses (not root), the rest of the cluster is still worth running: the
    /// proxy says once what is missing and why, and the cluster goes on as with `--proxy-mode none`.
    fn start_kube_proxy(&mut self, progress: &impl Fn(&str)) -> anyhow::Result<()> {
        let addresses = (1..=self.config.nodes).map(|i| self.config.node_address(i)).collect::<Result<_, _>>()?;
        let cidr: Ipv4Net = self.config.service_cluster_ip_range.to_string().parse()?;
        let interface = self.config.service_interface();
        let proxy = kubelab_kube_proxy::Config::new(self.client.clone(), &interface, cidr, addresses);
        self.components.spawn(named("kube-proxy", async move {
            match kubelab_kube_proxy::run(proxy).await {
                Err(err @ kubelab_kube_proxy::Error::NotPermitted { .. }) => {
                    tracing::warn!(
                        "{err}. Going on without kube-proxy: Services get addresses, but nothing answers on them \
                         (start kubelab up as root, or with --proxy-mode none to say this is meant)"
                    );
                    std::future::pending().await
                }
                result => result.map_err(Into::into),
            }
        }));
        progress(&format!("kube-proxy           userspace mode, cluster IPs ({cidr}) on {interface}"));
        Ok(())
    }
    // ANCHOR_END: kube_proxy

    fn start_kubelet(&mut self, kubelet: kubelab_kubelet::Config) {
        let node = kubelet.node_name.clone();
        let handle = self.components.spawn(named("kubelet", kubelab_kubelet::run(kubelet)));
        self.kubelets.insert(node, handle);
    }

    /// The names of the nodes, in order.
    pub fn node_names(&self) -> Vec<String> {
        (1..=self.config.nodes).map(|i| self.config.node_name(i)).collect()
    }

    /// Stops one node's kubelet, as if the machine lost power: its Lease is no longer renewed (its containers
    /// keep running).
    pub fn stop_kubelet(&mut self, node: &str) -> anyhow::Result<()> {
        self.kubelets.remove(node).with_context(|| format!("no running kubelet for node {node}"))?.abort();
        Ok(())
    }

    /// Starts a stopped node's kubelet again; it adopts the containers it finds.
    pub fn restart_kubelet(&mut self, node: &str) -> anyhow::Result<()> {
        let i = (1..=self.config.nodes)
            .find(|i| self.config.node_name(*i) == node)
            .with_context(|| format!("no node {node} in this cluster"))?;
        let kubelet = self.config.kubelet_config(i, &self.client)?;
        self.start_kubelet(kubelet);
        Ok(())
    }

    /// Waits until a component fails (they run forever otherwise) or the apiserver stops.
    pub async fn failed(&mut self) -> anyhow::Error {
        tokio::select! {
            result = self.server.wait() => match result {
                Ok(()) => anyhow::anyhow!("the apiserver stopped"),
                Err(err) => err.context("the apiserver stopped"),
            },
            Some(result) = self.components.join_next() => match result {
                Ok(Err(err)) => err,
                Ok(Ok(())) => anyhow::anyhow!("a component stopped"),
                Err(err) => anyhow::anyhow!("a component stopped: {err}"),
            },
        }
    }

    /// Stops every component, then the apiserver. Pods keep running in Docker, and so their network; it is
    /// removed if no container uses it any more.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        self.components.shutdown().await;
        if self.config.nodes > 0
            && let Ok(docker) = kubelab_kubelet::docker::connect().await
        {
            // Refused while containers are attached: then the network stays, for the pods that keep running.
            let _ = kubelab_kubelet::docker::remove_network(&docker, &self.config.pod_network()).await;
        }
        self.server.shutdown().await
    }
}

/// Tags a component's error with its name, so that one can tell which failed.
async fn named(name: &'static str, component: impl Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    component.await.with_context(|| format!("{name} failed"))
}
