//! A node of one's own for each scenario: an apiserver on a free port (the testkit's [`TestServer`]), a kubelet
//! with a unique node name, its own Docker network and data directory, and short timings. Dropping it — even when
//! the test panics — aborts the kubelet and removes the node's containers and network.

#![allow(dead_code)]

use kubelab_api::client::Client;
use kubelab_api::resources;
use kubelab_kubelet::Config;
use kubelab_kubelet::backoff::BackOffPolicy;
use kubelab_testkit::TestServer;

/// The scenarios wait on `Option`s and fail by panicking: the testkit's `wait_for_some`, under the name they use.
pub use kubelab_testkit::wait_for_some as wait_for;
use serde_json::{Value, json};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::task::JoinHandle;

/// One apiserver, one node (with or without its kubelet running).
pub struct TestNode {
    pub client: Client,
    pub node: String,
    pub network: String,
    pub pod_cidr: String,
    /// The read-only port (not in the Node object, so chosen here rather than left to the kernel).
    pub read_only_port: u16,
    /// The kubelet's files (`kubelet/`) and kubectl's cache; the apiserver keeps its own directory.
    pub dir: tempfile::TempDir,
    pub server: TestServer,
    kubelet: Option<JoinHandle<anyhow::Result<()>>>,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

impl TestNode {
    /// Starts an apiserver and a kubelet for a node named after `name`.
    pub async fn start(name: &str) -> TestNode {
        let mut node = TestNode::without_kubelet(name).await;
        node.start_kubelet();
        node.wait_node_ready().await;
        node
    }

    /// Starts only the apiserver; the kubelet comes with [`TestNode::start_kubelet`].
    pub async fn without_kubelet(name: &str) -> TestNode {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = kubelab_testkit::spawn_apiserver().await.expect("apiserver starts");
        let client = server.client().unwrap();
        let unique = format!("{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst));
        let node = format!("kl-{name}-{unique}");
        let network = format!("kubelab-test-{unique}");
        let read_only_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        TestNode { client, pod_cidr: free_subnet(), read_only_port, node, network, dir, server, kubelet: None }
    }

    /// The kubelet's configuration: free ports, short timings.
    pub fn config(&self) -> Config {
        let mut config =
            Config::new(&self.node, self.client.clone(), "127.0.0.1".parse().unwrap(), self.dir.path().join("kubelet"));
        // No controller manager here: the kubelet registers its Node with its own pod CIDR.
        config.pod_cidr = Some(self.pod_cidr.parse().unwrap());
        config.port = 0;
        config.read_only_port = self.read_only_port;
        config.network = self.network.clone();
        config.lease_renew_interval = Duration::from_secs(1);
        config.node_status_update_frequency = Duration::from_secs(1);
        config.sync_period = Duration::from_secs(2);
        config.backoff = BackOffPolicy { initial: Duration::from_secs(2), max: Duration::from_secs(4) };
        config
    }

    /// Starts (or restarts) the kubelet in this process, as `kubelab up` does.
    pub fn start_kubelet(&mut self) {
        self.start_kubelet_with(self.config());
    }

    pub fn start_kubelet_with(&mut self, config: Config) {
        assert!(self.kubelet.is_none(), "a kubelet is already running");
        self.kubelet = Some(tokio::spawn(kubelab_kubelet::run(config)));
    }

    /// Stops the kubelet task — not its containers.
    pub async fn stop_kubelet(&mut self) {
        if let Some(task) = self.kubelet.take() {
            task.abort();
            let _ = task.await;
        }
    }

    pub async fn wait_node_ready(&self) {
        let nodes = resources::by_kind("v1", "Node").unwrap();
        wait_for("the node to be Ready", Duration::from_secs(60), || async {
            let node = self.client.get(nodes, None, &self.node).await.ok()?;
            let ready = node
                .pointer("/status/conditions")?
                .as_array()?
                .iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            ready.then_some(())
        })
        .await;
    }

    /// Creates a pod bound to this node (no scheduler: `spec.nodeName` is set here).
    pub async fn create_pod(&self, mut pod: Value) -> Value {
        pod["spec"]["nodeName"] = json!(self.node);
        pod["apiVersion"] = json!("v1");
        pod["kind"] = json!("Pod");
        self.client.create(pods(), Some("default"), &pod).await.expect("pod created")
    }

    pub async fn pod(&self, name: &str) -> Option<Value> {
        self.client.get(pods(), Some("default"), name).await.ok()
    }

    /// Waits until the pod satisfies `check`; returns the pod.
    pub async fn wait_pod(&self, name: &str, what: &str, timeout: Duration, check: impl Fn(&Value) -> bool) -> Value {
        wait_for(what, timeout, || async { self.pod(name).await.filter(|p| check(p)) }).await
    }

    /// The reasons of the events about `pod`.
    pub async fn event_reasons(&self, pod: &str) -> Vec<String> {
        self.events(pod).await.iter().map(|e| e["reason"].as_str().unwrap_or_default().to_string()).collect()
    }

    pub async fn events(&self, pod: &str) -> Vec<Value> {
        let events = resources::by_kind("v1", "Event").unwrap();
        let list = self.client.list(events, Some("default"), &Default::default()).await.unwrap();
        list.items.into_iter().filter(|e| e["involvedObject"]["name"] == pod).collect()
    }

    /// `docker ps -a` ids of this node's containers matching an extra label filter (`key=value`).
    pub fn containers(&self, filter: &str) -> Vec<String> {
        let mut args =
            vec!["ps".to_string(), "-aq".into(), "--filter".into(), format!("label=kubelab.node={}", self.node)];
        if !filter.is_empty() {
            args.extend(["--filter".into(), format!("label={filter}")]);
        }
        docker(&args.iter().map(String::as_str).collect::<Vec<_>>()).lines().map(String::from).collect()
    }

    /// A kubeconfig for kubectl, pointing at this apiserver.
    pub fn kubeconfig(&self) -> std::path::PathBuf {
        self.server.kubeconfig().to_path_buf()
    }

    /// The kubelet's API port, as its Node reports it.
    pub async fn kubelet_port(&self) -> u16 {
        let node = self.client.get(resources::by_kind("v1", "Node").unwrap(), None, &self.node).await.unwrap();
        node.pointer("/status/daemonEndpoints/kubeletEndpoint/Port").and_then(Value::as_u64).unwrap() as u16
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        if let Some(task) = self.kubelet.take() {
            task.abort();
        }
        let ids = self.containers("");
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f", "-v"];
            args.extend(ids.iter().map(String::as_str));
            docker(&args);
        }
        // The engine may take a moment to release the endpoints of containers just removed.
        for _ in 0..10 {
            let removed = Command::new("docker").args(["network", "rm", &self.network]).output();
            if removed.is_ok_and(|o| o.status.success() || String::from_utf8_lossy(&o.stderr).contains("not found")) {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

pub fn pods() -> &'static kubelab_api::Resource {
    resources::by_kind("v1", "Pod").unwrap()
}

/// Runs the docker CLI (cleanup must work from `Drop`, even while a test unwinds); returns stdout.
pub fn docker(args: &[&str]) -> String {
    let output = Command::new("docker").args(args).output().expect("docker CLI");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A /24 in 10.200.0.0–10.254.255.0 that no Docker network uses yet.
fn free_subnet() -> String {
    let used = docker(&["network", "inspect", "--format", "{{range .IPAM.Config}}{{.Subnet}} {{end}}", "bridge"])
        + &docker(&["network", "ls", "-q"])
            .lines()
            .map(|id| docker(&["network", "inspect", "--format", "{{range .IPAM.Config}}{{.Subnet}} {{end}}", id]))
            .collect::<String>();
    let seed = std::process::id() as u64 * 7919
        + NEXT.load(Ordering::SeqCst) as u64 * 104729
        + std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos() as u64;
    for step in 0..55 * 256 {
        let n = (seed + step * 40503) % (55 * 256);
        let subnet = format!("10.{}.{}.0/24", 200 + n / 256, n % 256);
        if !used.contains(&subnet) {
            return subnet;
        }
    }
    panic!("no free subnet");
}

/// The status of the pod's only (or first) container.
pub fn container_status(pod: &Value) -> &Value {
    &pod["status"]["containerStatuses"][0]
}

/// `state.waiting.reason` of the first container.
pub fn waiting_reason(pod: &Value) -> Option<&str> {
    container_status(pod)["state"]["waiting"]["reason"].as_str()
}

pub fn phase(pod: &Value) -> &str {
    pod["status"]["phase"].as_str().unwrap_or_default()
}

/// The kubelet's `/containerLogs` for a container, read over HTTP as the apiserver would.
pub async fn kubelet_get(port: u16, path: &str) -> (u16, String) {
    let response = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("http://127.0.0.1:{port}{path}"))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}
