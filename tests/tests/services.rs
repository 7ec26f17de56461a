//! Services get an address: cluster IPs and node ports as the real kubectl sees them.
//!
//! The allocation itself is unit-tested in `kubelab_apiserver::allocator`; these tests check what a student sees:
//! the CLUSTER-IP and PORT(S) columns, Kubernetes' refusals word for word, addresses that survive a restart, and
//! two apiservers on one etcd that never hand out the same address. Nothing here connects to a cluster IP: they
//! are only numbers in the API until kube-proxy exists.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use kubelab_tests::{EtcdServer, TestServer, spawn_apiserver, spawn_apiserver_on_etcd, tables};
use serde_json::{Value, json};

/// Two Services written for a real cluster: a NodePort one whose first port targets a container port by name,
/// and a headless one.
const MANIFEST: &str = "\
apiVersion: v1
kind: Service
metadata:
  name: catalog
spec:
  type: NodePort
  selector:
    app: catalog
  ports:
  - name: http
    port: 80
    targetPort: http
  - name: metrics
    port: 9090
    targetPort: 9090
---
apiVersion: v1
kind: Service
metadata:
  name: db
spec:
  clusterIP: None
  selector:
    app: db
  ports:
  - port: 5432
";

/// The `kubectl get svc` row of `name`: its CLUSTER-IP and PORT(S) cells.
async fn columns(server: &TestServer, name: &str) -> anyhow::Result<(String, String)> {
    let out = server.kubectl().ok(&["get", "svc", name]).await?;
    let table = tables(&out).into_iter().next().ok_or_else(|| anyhow::anyhow!("no table:\n{out}"))?;
    let cell = |column| table.cell(name, column).map(str::to_string).unwrap_or_default();
    Ok((cell("CLUSTER-IP"), cell("PORT(S)")))
}

/// An address of the default service CIDR, 10.96.0.0/12, other than the kubernetes Service's 10.96.0.1.
fn in_service_cidr(ip: &str) -> bool {
    ip.parse::<Ipv4Addr>().is_ok_and(|ip| u32::from(ip) >> 20 == u32::from(Ipv4Addr::new(10, 96, 0, 0)) >> 20)
        && ip != "10.96.0.1"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_create_service_shows_a_cluster_ip_and_a_node_port() -> anyhow::Result<()> {
    let server = spawn_apiserver().await?;
    let kubectl = server.kubectl();
    kubectl.ok(&["create", "service", "clusterip", "web", "--tcp=80:8080"]).await?;
    kubectl.ok(&["create", "service", "nodeport", "shop", "--tcp=80:8080", "--node-port=30080"]).await?;

    let (web_ip, web_ports) = columns(&server, "web").await?;
    assert!(in_service_cidr(&web_ip), "{web_ip}");
    assert_eq!(web_ports, "80/TCP");
    let (shop_ip, shop_ports) = columns(&server, "shop").await?;
    assert!(in_service_cidr(&shop_ip) && shop_ip != web_ip, "{shop_ip}");
    assert_eq!(shop_ports, "80:30080/TCP");

    let web: Value = serde_json::from_str(&kubectl.ok(&["get", "svc", "web", "-o", "json"]).await?)?;
    assert_eq!(web["spec"]["clusterIPs"], json!([web_ip]));
    assert_eq!(web["spec"]["ipFamilies"], json!(["IPv4"]));
    assert_eq!(web["spec"]["ipFamilyPolicy"], "SingleStack");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_applied_manifest_gets_node_ports_that_a_second_apply_keeps() -> anyhow::Result<()> {
    let server = spawn_apiserver().await?;
    let kubectl = server.kubectl();
    let manifest = server.write_file("services.yaml", MANIFEST)?;
    kubectl.ok(&["apply", "-f", &manifest]).await?;

    let (catalog_ip, catalog_ports) = columns(&server, "catalog").await?;
    assert!(in_service_cidr(&catalog_ip), "{catalog_ip}");
    let node_ports: Vec<u16> = catalog_ports
        .split(',')
        .map(|p| p.split([':', '/']).nth(1).and_then(|n| n.parse().ok()).unwrap_or(0))
        .collect();
    assert!(node_ports.iter().all(|p| (30000..=32767).contains(p)), "{catalog_ports}");
    assert_ne!(node_ports[0], node_ports[1], "{catalog_ports}");
    assert!(catalog_ports.starts_with("80:") && catalog_ports.contains(",9090:"), "{catalog_ports}");
    assert_eq!(columns(&server, "db").await?, ("None".into(), "5432/TCP".into()), "headless");

    let again = kubectl.ok(&["apply", "-f", &manifest]).await?;
    assert!(again.contains("service/catalog unchanged"), "{again}");
    assert_eq!(columns(&server, "catalog").await?, (catalog_ip, catalog_ports));
    let catalog: Value = serde_json::from_str(&kubectl.ok(&["get", "svc", "catalog", "-o", "json"]).await?)?;
    assert_eq!(catalog["spec"]["ports"][0]["targetPort"], "http", "a target port by name stays a name");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_address_or_port_is_refused_until_its_service_lets_go_even_across_a_restart() -> anyhow::Result<()> {
    let mut server = spawn_apiserver().await?;
    let kubectl = server.kubectl();
    kubectl.ok(&["create", "service", "nodeport", "shop", "--tcp=80", "--node-port=30080"]).await?;
    kubectl.ok(&["create", "service", "clusterip", "web", "--tcp=80", "--clusterip=10.96.0.5"]).await?;
    server.restart().await?;

    let refused = kubectl.fails(&["create", "service", "nodeport", "other", "--tcp=81", "--node-port=30080"]).await?;
    assert!(
        refused.contains(
            "Service \"other\" is invalid: spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated"
        ),
        "{refused}"
    );
    let refused =
        kubectl.fails(&["create", "service", "clusterip", "dup", "--tcp=80", "--clusterip=10.96.0.5"]).await?;
    assert!(
        refused.contains(
            "Service \"dup\" is invalid: spec.clusterIPs: Invalid value: [\"10.96.0.5\"]: failed to allocate IP 10.96.0.5: provided IP is already allocated"
        ),
        "{refused}"
    );
    let refused = kubectl.fails(&["create", "service", "clusterip", "far", "--tcp=80", "--clusterip=10.0.0.5"]).await?;
    assert!(refused.contains("the provided IP (10.0.0.5) is not in the valid range"), "{refused}");

    // NodePort → ClusterIP gives the node port back; a deleted Service gives its address back.
    kubectl.ok(&["patch", "svc", "shop", "-p", r#"{"spec":{"type":"ClusterIP"}}"#]).await?;
    assert_eq!(columns(&server, "shop").await?.1, "80/TCP");
    kubectl.ok(&["create", "service", "nodeport", "other", "--tcp=81", "--node-port=30080"]).await?;
    kubectl.ok(&["delete", "svc", "web"]).await?;
    kubectl.ok(&["create", "service", "clusterip", "dup", "--tcp=80", "--clusterip=10.96.0.5"]).await?;
    assert_eq!(columns(&server, "dup").await?.0, "10.96.0.5");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_apiservers_on_one_etcd_never_hand_out_the_same_address() -> anyhow::Result<()> {
    let etcd = EtcdServer::start().await?;
    let (first, second) = (spawn_apiserver_on_etcd(&etcd).await?, spawn_apiserver_on_etcd(&etcd).await?);
    let services = kubelab_api::resources::by_kind("v1", "Service").expect("Services are registered");
    let (a, b) = (first.client()?, second.client()?);
    // Both servers at once, interleaved: each create reads and writes the same bitmap key in etcd.
    let creates = (0..12).flat_map(|i| {
        [(a.clone(), format!("a-{i}")), (b.clone(), format!("b-{i}"))].map(|(client, name)| async move {
            let service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
                                 "spec": {"type": "NodePort", "ports": [{"port": 80}]}});
            client.create(services, Some("default"), &service).await
        })
    });
    let created = futures::future::try_join_all(creates).await?;
    let ips: BTreeSet<&str> = created.iter().filter_map(|s| s["spec"]["clusterIP"].as_str()).collect();
    let node_ports: BTreeSet<i64> = created.iter().filter_map(|s| s["spec"]["ports"][0]["nodePort"].as_i64()).collect();
    assert_eq!((ips.len(), node_ports.len()), (24, 24), "every address and port once: {ips:?} {node_ports:?}");

    // kubectl on either server lists the same 24 addresses.
    for server in [&first, &second] {
        let out = server.kubectl().ok(&["get", "svc", "-o", "jsonpath={.items[*].spec.clusterIP}"]).await?;
        let listed: BTreeSet<&str> = out.split_whitespace().collect();
        assert_eq!(listed, ips);
    }
    Ok(())
}
