//! `spawn_cluster`: a whole kubelab cluster — apiserver, scheduler, controller-manager and kubelets running real
//! Docker containers — for the end-to-end tests of nodes, pods and controllers.
//!
//! It is the very code `kubelab up` runs ([`kubelab::cluster::Cluster`]), started in this process so that a test
//! can stop one node's kubelet. Each cluster gets a unique name, node addresses, cluster CIDR, service CIDR (a /24
//! of 10.96.0.0/16, outside every test's pod network) and kube-proxy interface, so clusters of tests running in
//! parallel never touch each other's containers or networks; when the test ends (passed or failed) its
//! containers, networks, service interface and the service CIDR's route are removed.

use crate::Kubectl;
use kubelab::cluster::{Cluster, ClusterConfig};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// Clusters started by this test process so far: makes names and subnets unique.
static STARTED: AtomicU32 = AtomicU32::new(0);

/// A cluster for one test; cleaned up on drop.
pub struct TestCluster {
    /// `None` once shut down.
    pub cluster: Option<Cluster>,
    /// Node names, in order.
    pub nodes: Vec<String>,
    /// The Docker network of the cluster's pods (`<name>-pods`), removed on drop.
    network: String,
    /// kube-proxy's interface and the service CIDR it routes nowhere, removed on drop.
    service_interface: String,
    service_cidr: String,
    dir: tempfile::TempDir,
}

impl TestCluster {
    /// The running cluster.
    pub fn get(&mut self) -> &mut Cluster {
        self.cluster.as_mut().expect("the cluster is running until the test drops it")
    }

    /// The real kubectl, pointed at this cluster.
    pub fn kubectl(&self) -> Kubectl {
        let cluster = self.cluster.as_ref().expect("the cluster is running until the test drops it");
        Kubectl::new(&cluster.kubeconfig, &self.dir.path().join("kubectl-cache"), self.dir.path())
    }

    /// The temporary directory (manifests can be written here).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

/// Starts a cluster with `nodes` nodes; `tweak` adjusts the configuration (shorter timings...).
pub async fn spawn_cluster(nodes: u8, tweak: impl FnOnce(&mut ClusterConfig)) -> anyhow::Result<TestCluster> {
    let n = STARTED.fetch_add(1, Ordering::SeqCst);
    let unique = (std::process::id() % 40) * 4 + n;
    let dir = tempfile::Builder::new().prefix("kubelab-e2e-").tempdir()?;
    let mut config = ClusterConfig::new(dir.path().join("data"));
    config.name = format!("e2e{}-{n}", std::process::id());
    config.port = 0;
    config.nodes = nodes;
    config.node_address_prefix = format!("127.{}.{}", 100 + unique / 200, unique % 200 + 1);
    let pod_prefix = format!("10.{}", 100 + unique % 150);
    config.controller_manager.node_ipam.cluster_cidr = format!("{pod_prefix}.0.0/16").parse()?;
    // Derived like the pod network's prefix: should two clusters pick the same, Docker refuses the second's pod
    // network before its kube-proxy starts, so two live clusters never share a service CIDR (and its route).
    config.service_cluster_ip_range = format!("10.96.{}.0/24", unique % 150).parse().map_err(anyhow::Error::msg)?;
    config.service_interface = Some(format!("ksvc{}-{n}", std::process::id()));
    remove_stale_networks(&pod_prefix);
    tweak(&mut config);
    let node_names: Vec<String> = (1..=nodes).map(|i| config.node_name(i)).collect();
    let network = config.pod_network();
    let service_interface = config.service_interface();
    let service_cidr = config.service_cluster_ip_range.to_string();
    // From here on, the drop guard cleans up even if the start fails half-way.
    let mut test = TestCluster { cluster: None, nodes: node_names, network, service_interface, service_cidr, dir };
    test.cluster = Some(Cluster::start(config, |_| {}).await?);
    Ok(test)
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        // Stop the components first (aborting their tasks), so no kubelet recreates what we remove.
        if let Some(cluster) = self.cluster.take() {
            drop(cluster);
        }
        for node in &self.nodes {
            remove_node_containers(node);
        }
        remove_network(&self.network);
        // kube-proxy removes both when its task is dropped; this is in case it could not (errors: already gone).
        let _ = Command::new("ip").args(["link", "del", &self.service_interface]).output();
        let _ = Command::new("ip").args(["route", "del", "unreachable", &self.service_cidr]).output();
    }
}

/// Removes the cluster's pod network once its containers are gone. The engine may take a moment to release the
/// endpoints of containers just removed, so it tries again for a few seconds (a `Drop` cannot await a condition).
fn remove_network(name: &str) {
    for _ in 0..20 {
        let Ok(output) = Command::new("docker").args(["network", "rm", name]).output() else { return };
        let error = String::from_utf8_lossy(&output.stderr);
        if output.status.success() || error.contains("not found") || error.contains("No such network") {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    eprintln!("could not remove the Docker network {name}; remove it with `docker network rm {name}`");
}

/// Removes every container a kubelet of `node` started (they carry the `kubelab.node` label).
pub fn remove_node_containers(node: &str) {
    let Ok(list) =
        Command::new("docker").args(["ps", "-aq", "--filter", &format!("label=kubelab.node={node}")]).output()
    else {
        return;
    };
    let ids: Vec<String> = String::from_utf8_lossy(&list.stdout).split_whitespace().map(String::from).collect();
    if !ids.is_empty() {
        let _ = Command::new("docker").arg("rm").arg("-f").args(&ids).output();
    }
}

/// A network left by a crashed earlier run would block our subnet ("pool overlaps"): remove unused e2e networks.
fn remove_stale_networks(pod_prefix: &str) {
    let Ok(list) = Command::new("docker").args(["network", "ls", "--format", "{{.Name}}"]).output() else { return };
    for name in String::from_utf8_lossy(&list.stdout).lines().filter(|n| n.starts_with("e2e")) {
        let Ok(inspect) = Command::new("docker")
            .args(["network", "inspect", name, "--format", "{{range .IPAM.Config}}{{.Subnet}}{{end}}"])
            .output()
        else {
            continue;
        };
        if String::from_utf8_lossy(&inspect.stdout).starts_with(&format!("{pod_prefix}.")) {
            // Fails (and is left alone) while containers still use it.
            let _ = Command::new("docker").args(["network", "rm", name]).output();
        }
    }
}
