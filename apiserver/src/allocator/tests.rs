//! The allocators against both stores: what the bitmap tests cannot show is that the state outlives an apiserver
//! and is shared by two of them.

use super::*;
use crate::store::embedded::EmbeddedStore;
use crate::store::etcd::EtcdStore;
use crate::store::etcd_server::EtcdServer;
use serde_json::json;
use std::collections::BTreeSet;

fn services() -> &'static Resource {
    kubelab_api::resources::by_kind("v1", "Service").expect("Services are registered")
}

fn cluster_ip(name: &str, ip: &str) -> Value {
    json!({"metadata": {"name": name}, "spec": {"clusterIP": ip, "ports": [{"port": 80}]}})
}

fn node_port(name: &str, node_port: i32) -> Value {
    json!({"metadata": {"name": name}, "spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": node_port}]}})
}

/// Claims and settles as a successful create does; returns the Service as it would be stored.
async fn create(allocators: &ServiceAllocators, mut service: Value) -> Result<Value, ApiError> {
    let claim = allocators.claim(services(), &mut service, None, false).await?;
    claim.settle(true).await;
    Ok(service)
}

fn embedded(dir: &tempfile::TempDir) -> Arc<dyn Store> {
    Arc::new(EmbeddedStore::open(&dir.path().join("store.redb")).expect("open the store"))
}

fn on(store: &Arc<dyn Store>, ips: &str) -> ServiceAllocators {
    ServiceAllocators::new(store.clone(), ips.parse().unwrap(), PortRange::default())
}

async fn a_requested_address_is_honoured_once_and_refused_after(store: Arc<dyn Store>) {
    let allocators = on(&store, "10.96.0.0/12");
    let web = create(&allocators, cluster_ip("web", "10.96.0.5")).await.unwrap();
    assert_eq!(web["spec"]["clusterIPs"], json!(["10.96.0.5"]));
    let err = create(&allocators, cluster_ip("api", "10.96.0.5")).await.unwrap_err();
    assert_eq!(
        err.message,
        "Service \"api\" is invalid: spec.clusterIPs: Invalid value: [\"10.96.0.5\"]: failed to allocate IP 10.96.0.5: provided IP is already allocated"
    );
    let err = create(&allocators, cluster_ip("k", "10.96.0.1")).await.unwrap_err();
    assert!(err.message.contains("provided IP is already allocated"), "the kubernetes Service's: {}", err.message);
}

async fn a_node_port_is_freed_when_its_service_goes_and_when_it_becomes_cluster_ip(store: Arc<dyn Store>) {
    let allocators = on(&store, "10.96.0.0/12");
    let web = create(&allocators, node_port("web", 30080)).await.unwrap();
    let err = create(&allocators, node_port("api", 30080)).await.unwrap_err();
    assert_eq!(
        err.message,
        "Service \"api\" is invalid: spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated"
    );
    assert!(err.message.contains("spec.ports[0].nodePort"));
    allocators.release(services(), &web).await;
    let api = create(&allocators, node_port("api", 30080)).await.unwrap();

    // NodePort → ClusterIP: the update drops the node port, and settling the write gives it back.
    let mut update = service::prepare_update(
        &api,
        json!({"metadata": {"name": "api"}, "spec": {
        "type": "ClusterIP", "clusterIP": api["spec"]["clusterIP"], "ports": [{"port": 80, "nodePort": 30080}]}}),
    );
    let claim = allocators.claim(services(), &mut update, Some(&api), false).await.unwrap();
    claim.settle(true).await;
    create(&allocators, node_port("db", 30080)).await.expect("30080 is free again");
}

async fn a_failed_write_gives_back_what_its_claim_took(store: Arc<dyn Store>) {
    let allocators = on(&store, "10.96.0.0/12");
    let mut service = cluster_ip("web", "10.96.0.9");
    let claim = allocators.claim(services(), &mut service, None, false).await.unwrap();
    claim.settle(false).await;
    create(&allocators, cluster_ip("web", "10.96.0.9")).await.expect("10.96.0.9 was given back");
}

async fn a_full_range_says_so(store: Arc<dyn Store>) {
    // A /29 has six addresses; the first is the kubernetes Service's.
    let allocators = on(&store, "10.0.0.0/29");
    let mut seen = BTreeSet::new();
    for i in 0..5 {
        let service = create(&allocators, cluster_ip(&format!("s{i}"), "")).await.unwrap();
        seen.insert(service["spec"]["clusterIP"].as_str().unwrap().to_string());
    }
    assert_eq!(seen.len(), 5);
    assert!(!seen.contains("10.0.0.1"));
    let err = create(&allocators, cluster_ip("s5", "")).await.unwrap_err();
    assert_eq!(
        (err.code, err.message.as_str()),
        (500, "Internal error occurred: failed to allocate a serviceIP: range is full")
    );
}

async fn two_apiservers_on_one_store_never_hand_out_the_same_address(store: Arc<dyn Store>) {
    // A /27 has 30 addresses: 29 after the kubernetes Service's, 28 of them taken by 2 × 14 concurrent creates.
    let (first, second) = (on(&store, "10.0.0.0/27"), on(&store, "10.0.0.0/27"));
    let creates = (0..14).flat_map(|i| {
        [(first.clone(), format!("a{i}")), (second.clone(), format!("b{i}"))]
            .map(|(allocators, name)| async move { create(&allocators, cluster_ip(&name, "")).await })
    });
    let created = futures::future::try_join_all(creates).await.unwrap();
    let ips: BTreeSet<&str> = created.iter().map(|s| s["spec"]["clusterIP"].as_str().unwrap()).collect();
    assert_eq!(ips.len(), 28, "every address once: {ips:?}");
}

#[tokio::test]
async fn a_restarted_apiserver_remembers_what_was_handed_out() {
    let dir = tempfile::tempdir().unwrap();
    let store = embedded(&dir);
    create(&on(&store, "10.96.0.0/12"), cluster_ip("web", "10.96.0.5")).await.unwrap();
    drop(store);
    let store = embedded(&dir);
    let err = create(&on(&store, "10.96.0.0/12"), cluster_ip("api", "10.96.0.5")).await.unwrap_err();
    assert!(err.message.contains("provided IP is already allocated"), "{}", err.message);
    let err = create(&on(&store, "10.100.0.0/16"), cluster_ip("db", "")).await.unwrap_err();
    assert_eq!(
        err.message,
        "Internal error occurred: the serviceips in the store cover 10.96.0.0/12, but this apiserver is configured with 10.100.0.0/16"
    );
}

/// Runs each scenario on a fresh embedded store and on a fresh etcd.
macro_rules! on_both_stores {
    ($($scenario:ident),* $(,)?) => {
        mod embedded_store {
            $(
                #[tokio::test]
                async fn $scenario() {
                    let dir = tempfile::tempdir().unwrap();
                    super::$scenario(super::embedded(&dir)).await;
                }
            )*
        }
        mod etcd_store {
            use super::*;
            $(
                #[tokio::test]
                async fn $scenario() {
                    let server = EtcdServer::start().await.expect("start etcd");
                    let store: Arc<dyn Store> = Arc::new(EtcdStore::connect(&[server.endpoint()]).await.unwrap());
                    super::$scenario(store).await;
                }
            )*
        }
    };
}

on_both_stores!(
    a_requested_address_is_honoured_once_and_refused_after,
    a_node_port_is_freed_when_its_service_goes_and_when_it_becomes_cluster_ip,
    a_failed_write_gives_back_what_its_claim_took,
    a_full_range_says_so,
    two_apiservers_on_one_store_never_hand_out_the_same_address,
);
