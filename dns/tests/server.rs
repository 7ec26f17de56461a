//! The DNS server against a real apiserver, asked over loopback with hickory's own client.
//!
//! Each test starts an apiserver on a free port, writes Services (and their endpoints) into it as plain data — the
//! cluster IPs are given in the manifests and nothing ever connects to them — starts the DNS server on
//! `127.0.0.1:0` and asks it questions over UDP (and TCP), as a pod's resolver would.

use hickory_server::net::client::{Client, ClientHandle};
use hickory_server::net::runtime::TokioRuntimeProvider;
use hickory_server::net::tcp::TcpClientStream;
use hickory_server::net::udp::UdpClientStream;
use hickory_server::proto::op::ResponseCode;
use hickory_server::proto::rr::{DNSClass, Name, RecordType};
use kubelab_api::client::PropagationPolicy;
use kubelab_api::resources;
use kubelab_dns::{Config, DnsServer, cluster_domain};
use kubelab_testkit::{AbortOnDrop, TestServer, spawn_apiserver, wait_for};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;

/// How long a change in the apiserver may take to show in the answers (the brief's promise: within a second).
const ONE_SECOND: Duration = Duration::from_secs(1);

/// How long a single question may go unanswered before the client gives up (and `wait_for` asks again).
const QUESTION_TIMEOUT: Duration = Duration::from_millis(500);

/// Starts the DNS server for `server`'s cluster on a free loopback port; it stops when the guard is dropped.
async fn start_dns(server: &TestServer) -> anyhow::Result<(SocketAddr, AbortOnDrop<Result<(), kubelab_dns::Error>>)> {
    let config = Config { listen: "127.0.0.1:0".parse()?, cluster_domain: cluster_domain("cluster.local")? };
    let dns = DnsServer::bind(&config).await?;
    let addr = dns.local_addr();
    Ok((addr, AbortOnDrop::spawn(dns.serve(server.client()?))))
}

/// A DNS client over UDP, as a pod's resolver asks.
fn udp_client(addr: SocketAddr) -> Client<TokioRuntimeProvider> {
    let stream =
        UdpClientStream::builder(addr, TokioRuntimeProvider::default()).with_timeout(Some(QUESTION_TIMEOUT)).build();
    let (client, background) = Client::<TokioRuntimeProvider>::from_sender(stream);
    tokio::spawn(background);
    client
}

/// A DNS client over TCP, as a resolver retries when a UDP answer comes back truncated.
async fn tcp_client(addr: SocketAddr) -> anyhow::Result<Client<TokioRuntimeProvider>> {
    let (stream, sender) = TcpClientStream::new(addr, None, Some(QUESTION_TIMEOUT), TokioRuntimeProvider::new());
    let (client, background) = Client::<TokioRuntimeProvider>::new(stream.await?, sender);
    tokio::spawn(background);
    Ok(client)
}

/// Asks one question; the answer as its response code and its answer records as text (`A 10.96.100.20`).
async fn ask(
    client: &mut Client<TokioRuntimeProvider>,
    name: &str,
    query_type: RecordType,
) -> anyhow::Result<(ResponseCode, Vec<String>)> {
    let response = client.query(Name::from_ascii(name)?, DNSClass::IN, query_type).await?;
    let records = response.answers.iter().map(|r| format!("{} {}", r.record_type(), r.data)).collect();
    Ok((response.metadata.response_code, records))
}

/// Asks until the answer is `expected`, for at most a second.
async fn answered_within_a_second(
    client: &mut Client<TokioRuntimeProvider>,
    name: &str,
    query_type: RecordType,
    expected: (ResponseCode, Vec<&str>),
) -> anyhow::Result<()> {
    let expected = (expected.0, expected.1.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    let what = format!("{name} {query_type} to be answered {expected:?}");
    wait_for(&what, ONE_SECOND, || {
        let mut client = client.clone();
        let expected = expected.clone();
        async move {
            let answer = ask(&mut client, name, query_type).await?;
            anyhow::ensure!(answer == expected, "answered {answer:?}");
            Ok(())
        }
    })
    .await
}

async fn create(server: &TestServer, kind: &str, object: Value) -> anyhow::Result<()> {
    let api_version = object["apiVersion"].as_str().unwrap_or("v1");
    let resource = resources::by_kind(api_version, kind).ok_or_else(|| anyhow::anyhow!("no {kind} resource"))?;
    server.client()?.create(resource, Some("default"), &object).await?;
    Ok(())
}

/// A ClusterIP Service whose cluster IP is given (the apiserver honours a requested one): only data for DNS.
fn service(name: &str, cluster_ip: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
           "spec": {"clusterIP": cluster_ip, "selector": {"app": name}, "ports": [{"name": "http", "port": 80}]}})
}

#[tokio::test]
async fn a_service_is_answered_by_name_over_udp_and_tcp_and_other_names_are_not() -> anyhow::Result<()> {
    let server = spawn_apiserver().await?;
    create(&server, "Service", service("web", "10.96.100.20")).await?;
    let (addr, dns) = start_dns(&server).await?;
    let mut udp = udp_client(addr);

    // The server answers only once its informers hold the Services: the first answer is already the right one.
    let web = "web.default.svc.cluster.local.";
    answered_within_a_second(&mut udp, web, RecordType::A, (ResponseCode::NoError, vec!["A 10.96.100.20"])).await?;
    assert_eq!(ask(&mut udp, web, RecordType::AAAA).await?, (ResponseCode::NoError, vec![]), "NODATA, not NXDOMAIN");
    let srv = ask(&mut udp, "_http._tcp.web.default.svc.cluster.local.", RecordType::SRV).await?;
    assert_eq!(srv, (ResponseCode::NoError, vec!["SRV 0 100 80 web.default.svc.cluster.local.".to_string()]));
    assert_eq!(
        ask(&mut udp, "nope.default.svc.cluster.local.", RecordType::A).await?,
        (ResponseCode::NXDomain, vec![])
    );
    assert_eq!(ask(&mut udp, "example.com.", RecordType::A).await?, (ResponseCode::Refused, vec![]));

    let mut tcp = tcp_client(addr).await?;
    assert_eq!(ask(&mut tcp, web, RecordType::A).await?, (ResponseCode::NoError, vec!["A 10.96.100.20".to_string()]));

    drop(dns);
    server.shutdown().await
}

#[tokio::test]
async fn services_endpoints_and_endpoint_slices_written_after_start_are_answered_within_a_second() -> anyhow::Result<()>
{
    let server = spawn_apiserver().await?;
    let (addr, dns) = start_dns(&server).await?;
    let mut udp = udp_client(addr);
    let late = "late.default.svc.cluster.local.";
    answered_within_a_second(&mut udp, late, RecordType::A, (ResponseCode::NXDomain, vec![])).await?;

    // A Service created after the server started.
    create(&server, "Service", service("late", "10.96.100.21")).await?;
    answered_within_a_second(&mut udp, late, RecordType::A, (ResponseCode::NoError, vec!["A 10.96.100.21"])).await?;

    // A headless Service, and Endpoints written by hand (no Endpoints controller runs here): its pods by name.
    create(
        &server,
        "Service",
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db"},
        "spec": {"clusterIP": "None", "selector": {"app": "db"}, "ports": [{"name": "postgres", "port": 5432}]}}),
    )
    .await?;
    create(
        &server,
        "Endpoints",
        json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "db"},
        "subsets": [{"addresses": [{"ip": "10.244.1.5", "hostname": "db-0"}],
                     "ports": [{"name": "postgres", "port": 5432, "protocol": "TCP"}]}]}),
    )
    .await?;
    let srv = "_postgres._tcp.db.default.svc.cluster.local.";
    let expected = vec!["SRV 0 100 5432 db-0.db.default.svc.cluster.local."];
    answered_within_a_second(&mut udp, srv, RecordType::SRV, (ResponseCode::NoError, expected)).await?;
    let pod = "db-0.db.default.svc.cluster.local.";
    assert_eq!(ask(&mut udp, pod, RecordType::A).await?, (ResponseCode::NoError, vec!["A 10.244.1.5".to_string()]));

    // A headless Service with an EndpointSlice, as the EndpointSlice controller writes them: an unready pod is left out.
    create(
        &server,
        "Service",
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "cache"},
        "spec": {"clusterIP": "None", "selector": {"app": "cache"}, "ports": [{"name": "redis", "port": 6379}]}}),
    )
    .await?;
    create(
        &server,
        "EndpointSlice",
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "cache-x7k2p", "labels": {"kubernetes.io/service-name": "cache"}}, "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.244.1.8"], "conditions": {"ready": true}},
                      {"addresses": ["10.244.2.9"], "conditions": {"ready": false}}],
        "ports": [{"name": "redis", "port": 6379, "protocol": "TCP"}]}),
    )
    .await?;
    let cache = "cache.default.svc.cluster.local.";
    answered_within_a_second(&mut udp, cache, RecordType::A, (ResponseCode::NoError, vec!["A 10.244.1.8"])).await?;

    // A deleted Service leaves the answers.
    let services = resources::by_kind("v1", "Service").ok_or_else(|| anyhow::anyhow!("no Service resource"))?;
    server.client()?.delete(services, Some("default"), "late", PropagationPolicy::Background).await?;
    answered_within_a_second(&mut udp, late, RecordType::A, (ResponseCode::NXDomain, vec![])).await?;

    drop(dns);
    server.shutdown().await
}
