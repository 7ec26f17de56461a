//! Services carry traffic end to end: a two-node cluster (the code `kubelab up --nodes 2` runs, kube-proxy in the
//! userspace mode) with real Docker.
//!
//! A Deployment of three busybox `httpd`s, each serving a page that names its pod, behind a NodePort Service.
//! Checked as a student would check it with curl and a shell in a pod: requests to the cluster IP from the host
//! reach every replica; `wget` to the cluster IP works from a pod on each node; the node port on each node's
//! address reaches every replica; a deleted pod leaves the rotation, and once its endpoint is gone no request
//! fails or reaches it.
//!
//! Each test cluster has its own service CIDR and kube-proxy interface (see `spawn_cluster`), removed when the
//! test ends.

use kubelab_tests::{TestCluster, spawn_cluster, wait_for};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(90);
const REPLICAS: usize = 3;

/// A page naming the pod (its hostname is its name), served on 8080.
const SERVER: &str = "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_port_service_reaches_every_ready_replica_from_the_host_pods_and_every_node() -> anyhow::Result<()> {
    let mut cluster = spawn_cluster(2, |_| {}).await?;
    let nodes = cluster.nodes.clone();
    let node_addresses: Vec<String> =
        (1..=2).map(|i| format!("{}.{i}", cluster.get().config.node_address_prefix)).collect();

    // 1. Three replicas behind a NodePort Service; wait until the Service's slice lists them all ready.
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": REPLICAS, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "httpd",
                "image": "kubelab/busybox:1", "command": ["sh", "-c", SERVER],
                "ports": [{"name": "http", "containerPort": 8080}]}]}}}});
    create(&cluster, "apps/v1", "Deployment", &deployment).await?;
    let service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"type": "NodePort", "selector": {"app": "web"},
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}});
    create(&cluster, "v1", "Service", &service).await?;
    let service = get(&cluster, "v1", "Service", "web").await?;
    let cluster_ip = service["spec"]["clusterIP"].as_str().unwrap_or_default().to_string();
    let node_port = service["spec"]["ports"][0]["nodePort"].as_u64().unwrap_or_default();
    assert!(!cluster_ip.is_empty() && node_port != 0, "no cluster IP or node port: {service}");
    let pods = wait_for("3 ready endpoints", TIMEOUT, || ready_pods(&cluster, REPLICAS)).await?;
    assert_eq!(pods.len(), REPLICAS);

    // 2. From the host, the cluster IP reaches every replica (each connection goes to the next one in turn).
    let cluster_addr: SocketAddr = format!("{cluster_ip}:80").parse()?;
    let http =
        reqwest::Client::builder().no_proxy().pool_max_idle_per_host(0).timeout(Duration::from_secs(5)).build()?;
    let seen = wait_for("the cluster IP to reach every replica", TIMEOUT, || async {
        let seen = answers(&http, cluster_addr, 2 * REPLICAS).await?;
        anyhow::ensure!(seen == pods, "answers {seen:?}, pods {pods:?}");
        Ok(seen)
    })
    .await?;
    assert_eq!(seen.len(), REPLICAS);

    // 3. From a pod on each node, wget to the cluster IP answers with one of the replicas.
    for (i, node) in nodes.iter().enumerate() {
        let name = format!("client-{}", i + 1);
        let command = json!(["timeout", "10", "wget", "-q", "-O", "-", format!("http://{cluster_ip}/")]);
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeSelector": {"kubernetes.io/hostname": node}, "restartPolicy": "Never",
                "containers": [{"name": "main", "image": "kubelab/busybox:1", "command": command}]}});
        create(&cluster, "v1", "Pod", &pod).await?;
    }
    for i in 1..=nodes.len() {
        let name = format!("client-{i}");
        let phase = wait_for(&format!("{name} to finish"), TIMEOUT, || async {
            let phase = get(&cluster, "v1", "Pod", &name).await?["status"]["phase"].as_str().unwrap_or("").to_string();
            anyhow::ensure!(phase == "Succeeded" || phase == "Failed", "phase {phase:?}");
            Ok(phase)
        })
        .await?;
        let logs = cluster.kubectl().ok(&["logs", &name]).await?;
        assert_eq!(phase, "Succeeded", "{name} could not reach {cluster_ip}: {logs}");
        assert!(pods.contains(logs.trim()), "{name} got {logs:?}, not one of {pods:?}");
    }

    // 4. The node port, on each node's address, reaches every replica.
    for address in &node_addresses {
        let addr: SocketAddr = format!("{address}:{node_port}").parse()?;
        wait_for(&format!("{addr} to reach every replica"), TIMEOUT, || async {
            let seen = answers(&http, addr, 2 * REPLICAS).await?;
            anyhow::ensure!(seen == pods, "answers {seen:?}, pods {pods:?}");
            Ok(())
        })
        .await?;
    }

    // 5. A deleted pod leaves the rotation: once its endpoint is gone, every request succeeds, none reaches it.
    let gone = pods.iter().next().expect("three pods").clone();
    cluster.kubectl().ok(&["delete", "pod", &gone, "--wait=false"]).await?;
    wait_for(&format!("{gone} to leave the ready endpoints"), TIMEOUT, || async {
        let ready = ready_pods(&cluster, 1).await?;
        anyhow::ensure!(!ready.contains(&gone), "still ready: {ready:?}");
        // kube-proxy follows the same slice a moment later: wait until a round of requests shows it.
        let seen = answers(&http, cluster_addr, 2 * REPLICAS).await?;
        anyhow::ensure!(!seen.contains(&gone), "{gone} still answers");
        Ok(())
    })
    .await?;
    let seen = answers(&http, cluster_addr, 4 * REPLICAS).await?;
    assert!(!seen.contains(&gone) && !seen.is_empty(), "after the update: {seen:?}");
    Ok(())
}

/// The distinct answers to `count` requests to `addr`, each on a new connection; any failed request is an error.
async fn answers(http: &reqwest::Client, addr: SocketAddr, count: usize) -> anyhow::Result<BTreeSet<String>> {
    let mut seen = BTreeSet::new();
    for _ in 0..count {
        let answer = http.get(format!("http://{addr}/")).send().await?.error_for_status()?.text().await?;
        seen.insert(answer.trim().to_string());
    }
    Ok(seen)
}

/// The names of the pods the Service's EndpointSlices list as ready; an error while there are fewer than
/// `at_least` (so that `wait_for` waits for them).
async fn ready_pods(cluster: &TestCluster, at_least: usize) -> anyhow::Result<BTreeSet<String>> {
    let slices = kubelab_api::resources::by_kind("discovery.k8s.io/v1", "EndpointSlice").expect("served");
    let client = &cluster.cluster.as_ref().expect("running").client;
    let list = client.list(slices, Some("default"), &Default::default()).await?;
    let ready: BTreeSet<String> = list
        .items
        .iter()
        .filter(|slice| slice["metadata"]["labels"]["kubernetes.io/service-name"] == "web")
        .flat_map(|slice| slice["endpoints"].as_array().cloned().unwrap_or_default())
        .filter(|e| e["conditions"]["ready"] != json!(false))
        .filter_map(|e| e["targetRef"]["name"].as_str().map(String::from))
        .collect();
    anyhow::ensure!(ready.len() >= at_least, "ready endpoints: {ready:?}");
    Ok(ready)
}

async fn create(cluster: &TestCluster, api_version: &str, kind: &str, object: &Value) -> anyhow::Result<()> {
    let resource = kubelab_api::resources::by_kind(api_version, kind).expect("a served kind");
    let client = &cluster.cluster.as_ref().expect("running").client;
    client.create(resource, Some("default"), object).await?;
    Ok(())
}

async fn get(cluster: &TestCluster, api_version: &str, kind: &str, name: &str) -> anyhow::Result<Value> {
    let resource = kubelab_api::resources::by_kind(api_version, kind).expect("a served kind");
    let client = &cluster.cluster.as_ref().expect("running").client;
    Ok(client.get(resource, Some("default"), name).await?)
}
