//! The DNS server behind the real EndpointSlice controller: a headless Service's name follows its pods' readiness.
//!
//! No kubelet and no Docker: the test plays the kubelets by patching each pod's status (an IP, the `Ready`
//! condition), the controller manager's EndpointSlice controller writes the slices, and the DNS server, which
//! reads only those slices for this Service, must answer with exactly the ready pods, each change within a second.

use hickory_server::net::client::{Client, ClientHandle};
use hickory_server::net::runtime::TokioRuntimeProvider;
use hickory_server::net::udp::UdpClientStream;
use hickory_server::proto::op::ResponseCode;
use hickory_server::proto::rr::{DNSClass, Name, RecordType};
use kubelab_api::client::PatchType;
use kubelab_api::resources;
use kubelab_controller_manager::controller::start;
use kubelab_controller_manager::endpoints::EndpointSliceController;
use kubelab_dns::{Config, DnsServer, cluster_domain};
use kubelab_testkit::{AbortOnDrop, spawn_apiserver, wait_for};
use serde_json::json;
use std::time::Duration;

/// How soon a pod's change must show in the answers: the controller's reaction and the DNS server's together.
const ONE_SECOND: Duration = Duration::from_secs(1);

/// The A records of `name`, sorted and joined by commas, or the response code (`NXDomain`) when it is an error.
async fn addresses(client: &mut Client<TokioRuntimeProvider>, name: &str) -> anyhow::Result<String> {
    let response = client.query(Name::from_ascii(name)?, DNSClass::IN, RecordType::A).await?;
    let mut ips: Vec<String> = response.answers.iter().map(|r| r.data.to_string()).collect();
    ips.sort();
    Ok(match response.metadata.response_code {
        ResponseCode::NoError => ips.join(","),
        code => format!("{code:?}"),
    })
}

#[tokio::test]
async fn a_headless_service_answers_with_exactly_its_ready_pods_as_they_change() -> anyhow::Result<()> {
    let server = spawn_apiserver().await?;
    let client = server.client()?;
    let controller_config = kubelab_controller_manager::Config::default();
    let controller = AbortOnDrop::spawn(start::<EndpointSliceController>(client.clone(), controller_config));

    let config = Config { listen: "127.0.0.1:0".parse()?, cluster_domain: cluster_domain("cluster.local")? };
    let dns = DnsServer::bind(&config).await?;
    let stream = UdpClientStream::builder(dns.local_addr(), TokioRuntimeProvider::default())
        .with_timeout(Some(Duration::from_millis(500)))
        .build();
    let dns = AbortOnDrop::spawn(dns.serve(client.clone()));
    let (asker, background) = Client::<TokioRuntimeProvider>::from_sender(stream);
    tokio::spawn(background);

    let [services, pods] = ["Service", "Pod"].map(|kind| resources::by_kind("v1", kind).expect("a core kind"));
    let service = json!({"metadata": {"name": "db"},
        "spec": {"clusterIP": "None", "selector": {"app": "db"}, "ports": [{"name": "postgres", "port": 5432}]}});
    client.create(services, Some("default"), &service).await?;
    // Pods with `hostname` and `subdomain: db` get a name of their own under the Service's, as StatefulSets' do.
    for name in ["db-0", "db-1"] {
        let pod = json!({"metadata": {"name": name, "labels": {"app": "db"}},
            "spec": {"hostname": name, "subdomain": "db", "nodeName": "node-1",
                "containers": [{"name": "postgres", "image": "postgres"}]}});
        client.create(pods, Some("default"), &pod).await?;
    }
    let set_status = |pod: &'static str, ip: &'static str, ready: bool| {
        let client = client.clone();
        async move {
            let ready = if ready { "True" } else { "False" };
            let status = json!({"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                "conditions": [{"type": "Ready", "status": ready}]}});
            client.patch_status(pods, Some("default"), pod, PatchType::Merge, &status).await?;
            anyhow::Ok(())
        }
    };
    let follows = async |name: &str, expected: &str| {
        wait_for(&format!("{name} to answer {expected}"), ONE_SECOND, || {
            let mut asker = asker.clone();
            async move {
                let seen = addresses(&mut asker, name).await?;
                anyhow::ensure!(seen == expected, "answered {seen}");
                Ok(())
            }
        })
        .await
    };

    let db = "db.default.svc.cluster.local.";
    // No pod is ready: the Service exists, with no address.
    follows(db, "").await?;

    // The kubelets report: one ready, one not.
    set_status("db-0", "10.244.1.5", true).await?;
    set_status("db-1", "10.244.2.7", false).await?;
    follows(db, "10.244.1.5").await?;
    follows("db-0.db.default.svc.cluster.local.", "10.244.1.5").await?;
    follows("db-1.db.default.svc.cluster.local.", "NXDomain").await?;

    // db-1 becomes ready, db-0 fails its probe.
    set_status("db-1", "10.244.2.7", true).await?;
    set_status("db-0", "10.244.1.5", false).await?;
    follows(db, "10.244.2.7").await?;
    follows("db-1.db.default.svc.cluster.local.", "10.244.2.7").await?;
    follows("db-0.db.default.svc.cluster.local.", "NXDomain").await?;

    // Their watches end before the server waits for its open requests to finish.
    drop((dns, controller));
    server.shutdown().await
}
