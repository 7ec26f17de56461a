//! The pod network end to end: a two-node cluster (the code `kubelab up --nodes 2` runs) with real Docker.
//!
//! Kubernetes' network model, checked as a student would check it with kubectl and a shell in a pod:
//! each Node has its own `spec.podCIDR` and its pods' IPs lie inside it; a pod on node-2 reaches a pod on node-1
//! at its IP (and the other way round), and the server sees the client's own pod IP: no NAT on the way; the host
//! reaches every pod.
//!
//! The servers are busybox `httpd` with one CGI script, `/cgi-bin/ip`, that answers the address the request came
//! from (`REMOTE_ADDR`). The clients are `wget` in pods that print that answer and exit: `kubectl logs` shows what
//! the server saw.

use ipnet::Ipv4Net;
use kubelab_tests::{TestCluster, spawn_cluster, wait_for};
use serde_json::{Value, json};
use std::net::Ipv4Addr;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(60);

/// An httpd whose `/cgi-bin/ip` answers the caller's address.
const SERVER: &str = r#"mkdir -p /www/cgi-bin && printf '#!/bin/sh\necho Content-Type: text/plain\necho\necho "$REMOTE_ADDR"\n' > /www/cgi-bin/ip && chmod +x /www/cgi-bin/ip && exec httpd -f -p 8080 -h /www"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_on_two_nodes_reach_each_other_by_ip_without_nat_and_the_host_reaches_them_all() -> anyhow::Result<()> {
    let mut cluster = spawn_cluster(2, |_| {}).await?;
    let nodes = cluster.nodes.clone();
    let cluster_cidr = cluster.get().config.cluster_cidr();

    // 1. Each Node gets its own slice of the cluster CIDR from the node IPAM controller.
    let mut pod_cidrs = Vec::new();
    for node in &nodes {
        let cidr = wait_for(&format!("{node} to get a spec.podCIDR and be Ready"), TIMEOUT, || async {
            let node = get(&cluster, "Node", None, node).await?;
            let cidr = node["spec"]["podCIDR"].as_str().unwrap_or_default().to_string();
            let ready = node["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            anyhow::ensure!(!cidr.is_empty() && ready, "podCIDR {cidr:?}, ready {ready}");
            assert_eq!(node["spec"]["podCIDRs"], json!([cidr]));
            Ok(cidr.parse::<Ipv4Net>()?)
        })
        .await?;
        assert!(cluster_cidr.contains(&cidr), "{node}'s {cidr:?} is outside the cluster CIDR {cluster_cidr}");
        pod_cidrs.push(cidr);
    }
    assert_ne!(pod_cidrs[0], pod_cidrs[1], "two nodes were given the same pod CIDR");

    // 2. A server on each node; each pod's IP lies in its node's pod CIDR.
    for (i, node) in nodes.iter().enumerate() {
        create_pod(&cluster, &format!("server-{}", i + 1), node, json!(["sh", "-c", SERVER]), "Always").await?;
    }
    let mut servers = Vec::new();
    for (i, cidr) in pod_cidrs.iter().enumerate() {
        let ip = pod_ip(&cluster, &format!("server-{}", i + 1)).await?;
        assert!(cidr.contains(&ip), "server-{}'s IP {ip} is not in its node's pod CIDR {cidr:?}", i + 1);
        servers.push(ip);
    }

    // 3. The host reaches every pod, from its own address on the pod network (the bridge's gateway).
    let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(5)).build()?;
    let gateway = cluster_cidr.hosts().next().expect("a /16 has hosts");
    for server in &servers {
        let seen = wait_for(&format!("the host to reach {server}"), TIMEOUT, || async {
            let answer = http.get(format!("http://{server}:8080/cgi-bin/ip")).send().await?.error_for_status()?;
            Ok(address(&answer.text().await?))
        })
        .await?;
        assert_eq!(seen, Some(gateway), "the host's request to {server} came from elsewhere");
    }

    // 4. Across nodes, both ways: a client on node-2 calls the server on node-1, and one on node-1 the server on
    //    node-2. Each prints what the server saw: its own pod IP, untranslated.
    let calls = [("client-2-to-1", &nodes[1], servers[0]), ("client-1-to-2", &nodes[0], servers[1])];
    for (name, node, server) in calls {
        // busybox wget crashes with its own -T (timeout): `timeout` bounds it instead.
        let command = json!(["timeout", "10", "wget", "-q", "-O", "-", format!("http://{server}:8080/cgi-bin/ip")]);
        create_pod(&cluster, name, node, command, "Never").await?;
    }
    for (name, node, server) in calls {
        let phase = wait_for(&format!("{name} to finish"), TIMEOUT, || async {
            let pod = get(&cluster, "Pod", Some("default"), name).await?;
            let phase = pod["status"]["phase"].as_str().unwrap_or_default().to_string();
            anyhow::ensure!(phase == "Succeeded" || phase == "Failed", "phase {phase:?}");
            Ok(phase)
        })
        .await?;
        let logs = cluster.kubectl().ok(&["logs", name]).await?;
        assert_eq!(phase, "Succeeded", "{name} on {node} could not reach {server}: {logs}");
        let client = pod_ip(&cluster, name).await?;
        assert_eq!(address(&logs), Some(client), "{server} saw {logs:?}, not {name}'s own IP {client}: NAT?");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_beyond_the_cluster_cidr_waits_not_ready_until_a_deleted_node_frees_its_slice() -> anyhow::Result<()> {
    // A /24 cut into /25s: room for two nodes of three.
    let mut cluster = spawn_cluster(3, |config| {
        let ipam = &mut config.controller_manager.node_ipam;
        ipam.cluster_cidr = Ipv4Net::new(ipam.cluster_cidr.network(), 24).expect("a valid prefix");
        ipam.node_cidr_mask_size = 25;
        ipam.recheck_when_full = Duration::from_millis(500);
    })
    .await?;
    let nodes = cluster.nodes.clone();
    let kubectl = cluster.kubectl();

    // Two nodes get a /25 each; the third none, a CIDRNotAvailable event, and Ready=False saying why.
    let waiting = wait_for("two nodes with a pod CIDR and a CIDRNotAvailable event", TIMEOUT, || async {
        let mut without = Vec::new();
        for node in &nodes {
            if get(&cluster, "Node", None, node).await?["spec"]["podCIDR"].as_str().is_none_or(str::is_empty) {
                without.push(node.clone());
            }
        }
        anyhow::ensure!(without.len() == 1, "nodes without a pod CIDR: {without:?}");
        let node = without.remove(0);
        let selector = format!("involvedObject.name={node},reason=CIDRNotAvailable");
        let message =
            kubectl.ok(&["get", "events", "--field-selector", &selector, "-o", "jsonpath={.items[0].message}"]).await?;
        anyhow::ensure!(!message.is_empty(), "no event yet");
        assert_eq!(message, format!("Node {node} status is now: CIDRNotAvailable"));
        Ok(node)
    })
    .await?;
    let ready = kubectl
        .ok(&["get", "node", &waiting, "-o", r#"jsonpath={.status.conditions[?(@.type=="Ready")].status} {.status.conditions[?(@.type=="Ready")].message}"#])
        .await?;
    assert!(ready.starts_with("False ") && ready.contains("no spec.podCIDR yet"), "{ready}");

    // A node goes away (its kubelet stopped, its Node deleted): the waiting node gets its slice and is Ready.
    let gone = nodes.iter().find(|n| **n != waiting).expect("three nodes").clone();
    let freed = get(&cluster, "Node", None, &gone).await?["spec"]["podCIDR"].as_str().unwrap_or_default().to_string();
    cluster.get().stop_kubelet(&gone)?;
    kubectl.ok(&["delete", "node", &gone]).await?;
    wait_for(&format!("{waiting} to get {freed} and be Ready"), TIMEOUT, || async {
        let out = kubectl
            .ok(&[
                "get",
                "node",
                &waiting,
                "-o",
                r#"jsonpath={.spec.podCIDR} {.status.conditions[?(@.type=="Ready")].status}"#,
            ])
            .await?;
        anyhow::ensure!(out == format!("{freed} True"), "{out}");
        Ok(())
    })
    .await?;
    Ok(())
}

/// The IPv4 address in what httpd's `REMOTE_ADDR` says (`[::ffff:10.244.1.2]`).
fn address(text: &str) -> Option<Ipv4Addr> {
    text.trim().trim_start_matches('[').trim_end_matches(']').trim_start_matches("::ffff:").parse().ok()
}

/// Creates a pod running `command` in busybox on `node`.
async fn create_pod(
    cluster: &TestCluster,
    name: &str,
    node: &str,
    command: Value,
    restart: &str,
) -> anyhow::Result<()> {
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"nodeSelector": {"kubernetes.io/hostname": node}, "restartPolicy": restart,
            "containers": [{"name": "main", "image": "kubelab/busybox:1", "command": command}]}});
    let pods = kubelab_api::resources::by_kind("v1", "Pod").expect("pods are served");
    let client = &cluster.cluster.as_ref().expect("running").client;
    client.create(pods, Some("default"), &pod).await?;
    Ok(())
}

/// The pod's IP, once it has one.
async fn pod_ip(cluster: &TestCluster, name: &str) -> anyhow::Result<Ipv4Addr> {
    wait_for(&format!("{name} to get an IP"), TIMEOUT, || async {
        let pod = get(cluster, "Pod", Some("default"), name).await?;
        let ip = pod["status"]["podIP"].as_str().unwrap_or_default();
        Ok(ip.parse::<Ipv4Addr>()?)
    })
    .await
}

async fn get(cluster: &TestCluster, kind: &str, namespace: Option<&str>, name: &str) -> anyhow::Result<Value> {
    let resource = kubelab_api::resources::by_kind("v1", kind).expect("a core kind");
    let client = &cluster.cluster.as_ref().expect("running").client;
    Ok(client.get(resource, namespace, name).await?)
}
