//! The Endpoints and EndpointSlice controllers against a real apiserver.
//!
//! No kubelet and no Docker: the test plays the kubelets by patching each pod's status (an IP, the `Ready`
//! condition) and watches both controllers follow, each step within a second.

use anyhow::{Context, bail};
use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kubelab_api::client::{PatchType, PropagationPolicy};
use kubelab_controller_manager::endpoints::{EndpointSliceController, EndpointsController, slices, subsets};
use kubelab_controller_manager::garbage_collector::GarbageCollector;
use kubelab_testkit::wait_for;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// An object read as JSON, as its typed form.
fn typed<K: serde::de::DeserializeOwned>(value: Value) -> serde_json::Result<K> {
    serde_json::from_value(value)
}

mod common;
use common::{Cluster, TIMEOUT, config, resource};

/// How soon the controllers must reflect a pod's change (the requirement).
const REACTION: Duration = Duration::from_secs(1);

/// Pod `name` labelled `app: web` on `node-1`, serving `http` on port 8080.
fn pod(name: &str) -> Value {
    json!({"metadata": {"name": name, "labels": {"app": "web"}},
           "spec": {"nodeName": "node-1", "containers": [{"name": "web", "image": "nginx",
               "ports": [{"name": "http", "containerPort": 8080}]}]}})
}

/// What a kubelet would report: the pod runs at `ip`, ready or not.
fn status(ip: &str, ready: bool) -> Value {
    let ready = if ready { "True" } else { "False" };
    json!({"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
        "conditions": [{"type": "Ready", "status": ready}]}})
}

impl Cluster {
    async fn set_status(&self, pod: &str, ip: &str, ready: bool) -> anyhow::Result<()> {
        let pods = resource("Pod")?;
        self.client.patch_status(pods, Some("default"), pod, PatchType::Merge, &status(ip, ready)).await?;
        Ok(())
    }

    /// The Endpoints `web` as `ready IPs | not-ready IPs`, or `none` if there is none.
    async fn endpoints(&self) -> anyhow::Result<String> {
        let Some(endpoints) = self.get(Some("default"), "Endpoints", "web").await? else { return Ok("none".into()) };
        let ips = |field: &str| -> Vec<String> {
            let subsets = endpoints["subsets"].as_array().cloned().unwrap_or_default();
            let mut ips: Vec<String> = subsets
                .iter()
                .flat_map(|s| s[field].as_array().cloned().unwrap_or_default())
                .map(|a| format!("{}:{}", a["ip"].as_str().unwrap_or("?"), subsets[0]["ports"][0]["port"]))
                .collect();
            ips.sort();
            ips
        };
        Ok(format!("{} | {}", ips("addresses").join(","), ips("notReadyAddresses").join(",")))
    }

    /// The endpoints of Service `web`'s slices as `ip(ready|serving|terminating)`, sorted, with how many slices.
    async fn slices(&self) -> anyhow::Result<String> {
        let selector = "kubernetes.io/service-name=web";
        let params = kubelab_api::client::ListParams { label_selector: Some(selector.into()), ..Default::default() };
        let list = self.client.list(resource("EndpointSlice")?, Some("default"), &params).await?;
        let slices = list.items;
        let mut endpoints: Vec<String> = slices
            .iter()
            .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
            .map(|e| {
                let c = &e["conditions"];
                let flag = |name: &str, letter: &'static str| if c[name] == true { letter } else { "-" };
                format!(
                    "{}({}{}{})",
                    e["addresses"][0].as_str().unwrap_or("?"),
                    flag("ready", "R"),
                    flag("serving", "S"),
                    flag("terminating", "T")
                )
            })
            .collect();
        endpoints.sort();
        Ok(format!("{} slice(s): {}", slices.len(), endpoints.join(",")))
    }

    /// Waits (at most [`REACTION`]) until `read` answers `expected`, and says how long it took.
    async fn follows<F, Fut>(&self, what: &str, expected: &str, read: F) -> anyhow::Result<Duration>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<String>>,
    {
        let started = Instant::now();
        wait_for(what, REACTION, || async {
            let seen = read().await?;
            if seen == expected { Ok(()) } else { bail!("saw {seen:?}, want {expected:?}") }
        })
        .await?;
        Ok(started.elapsed())
    }
}

#[tokio::test]
async fn endpoints_and_slices_follow_pods_becoming_ready_unready_terminating_and_gone() -> anyhow::Result<()> {
    let mut cluster = Cluster::start().await?;
    let config = config();
    cluster.run::<EndpointsController>(&config);
    cluster.run::<EndpointSliceController>(&config);
    cluster.run::<GarbageCollector>(&config);
    let service = json!({"metadata": {"name": "web", "labels": {"tier": "front"}},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}});
    cluster.create(Some("default"), "Service", service).await?;
    for name in ["web-1", "web-2", "web-3"] {
        cluster.create(Some("default"), "Pod", pod(name)).await?;
    }

    // 1. No pod has an IP yet: an empty Endpoints, and one placeholder slice.
    let took = cluster.follows("an empty Endpoints", " | ", || cluster.endpoints()).await?;
    println!("empty Endpoints after {took:?}");
    cluster.follows("the placeholder slice", "1 slice(s): ", || cluster.slices()).await?;

    // 2. The kubelets report: two ready, one not.
    cluster.set_status("web-1", "10.1.0.1", true).await?;
    cluster.set_status("web-2", "10.1.0.2", true).await?;
    cluster.set_status("web-3", "10.1.0.3", false).await?;
    let want = "10.1.0.1:8080,10.1.0.2:8080 | 10.1.0.3:8080";
    let took = cluster.follows("two ready addresses and one not", want, || cluster.endpoints()).await?;
    println!("pods reported, Endpoints after {took:?}");
    let want = "1 slice(s): 10.1.0.1(RS-),10.1.0.2(RS-),10.1.0.3(---)";
    let took = cluster.follows("the slice to list them", want, || cluster.slices()).await?;
    println!("pods reported, EndpointSlice after {took:?}");

    // 3. `kubectl describe service` (the real one) shows the ready endpoints: kubectl 1.27 reads them from the
    //    Endpoints, later releases from the EndpointSlices.
    for minor in [27, 33] {
        let kubectl = cluster.server.kubectl().release(minor)?;
        let described = kubectl.ok(&["describe", "service", "web"]).await?;
        let line = described.lines().find(|l| l.starts_with("Endpoints:")).context("no Endpoints: line")?;
        println!("kubectl 1.{minor}: {line}");
        assert!(line.contains("10.1.0.1:8080") && line.contains("10.1.0.2:8080"), "{described}");
        assert!(!line.contains("10.1.0.3"), "an unready pod is not an endpoint: {described}");
    }

    // 4. web-3 becomes ready, web-1 unready.
    cluster.set_status("web-3", "10.1.0.3", true).await?;
    cluster.set_status("web-1", "10.1.0.1", false).await?;
    let want = "10.1.0.2:8080,10.1.0.3:8080 | 10.1.0.1:8080";
    let took = cluster.follows("readiness to swap", want, || cluster.endpoints()).await?;
    println!("readiness changed, Endpoints after {took:?}");
    let want = "1 slice(s): 10.1.0.1(---),10.1.0.2(RS-),10.1.0.3(RS-)";
    cluster.follows("the slice to swap too", want, || cluster.slices()).await?;

    // 5. web-2 is deleted: terminating, it leaves the Endpoints at once and stays in the slice, not ready.
    let pods = resource("Pod")?;
    cluster.client.delete(pods, Some("default"), "web-2", PropagationPolicy::Background).await?;
    let took = cluster
        .follows("the terminating pod to leave", "10.1.0.3:8080 | 10.1.0.1:8080", || cluster.endpoints())
        .await?;
    println!("pod terminating, Endpoints after {took:?}");
    let want = "1 slice(s): 10.1.0.1(---),10.1.0.2(-ST),10.1.0.3(RS-)";
    cluster.follows("the slice to mark it terminating", want, || cluster.slices()).await?;

    // 6. Its kubelet is done: the pod is gone, and from the slice too.
    cluster.kubectl(&["delete", "pod", "web-2", "--grace-period=0", "--force"]).await?;
    let want = "1 slice(s): 10.1.0.1(---),10.1.0.3(RS-)";
    let took = cluster.follows("the deleted pod to leave the slice", want, || cluster.slices()).await?;
    println!("pod gone, EndpointSlice after {took:?}");

    // 7. `kubectl get` prints both as Kubernetes does.
    let endpoints = cluster.kubectl(&["get", "endpoints", "web"]).await?;
    println!("{endpoints}");
    assert!(endpoints.lines().nth(1).is_some_and(|row| row.contains("10.1.0.3:8080")), "{endpoints}");
    let slices = cluster.kubectl(&["get", "endpointslices"]).await?;
    println!("{slices}");
    assert!(slices.starts_with("NAME") && slices.contains("IPv4") && slices.contains("8080"), "{slices}");

    // 8. The Service goes: its Endpoints are deleted by name, its slices by the garbage collector.
    let services = resource("Service")?;
    cluster.client.delete(services, Some("default"), "web", PropagationPolicy::Background).await?;
    let took = cluster.follows("the Endpoints to go with the Service", "none", || cluster.endpoints()).await?;
    println!("Service deleted, Endpoints gone after {took:?}");
    wait_for("the slices to go with the Service", TIMEOUT, || async {
        let seen = cluster.slices().await?;
        if seen.starts_with("0 slice") { Ok(()) } else { bail!("{seen}") }
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn a_service_without_selector_keeps_the_endpoints_its_user_wrote() -> anyhow::Result<()> {
    let mut cluster = Cluster::start().await?;
    cluster.run::<EndpointsController>(&config());
    cluster.run::<EndpointSliceController>(&config());
    let service = json!({"metadata": {"name": "web"}, "spec": {"ports": [{"port": 5432}]}});
    cluster.create(Some("default"), "Service", service).await?;
    let endpoints = json!({"metadata": {"name": "web"},
        "subsets": [{"addresses": [{"ip": "192.168.1.10"}], "ports": [{"port": 5432}]}]});
    cluster.create(Some("default"), "Endpoints", endpoints).await?;
    cluster.create(Some("default"), "Pod", pod("web-1")).await?;
    cluster.set_status("web-1", "10.1.0.1", true).await?;
    // A second Service, selecting the pod, shows when the controllers have seen the pod; then nothing of `web`
    // may have been touched: the hand-written address is still there, and no slice was made.
    let marker = json!({"metadata": {"name": "marker"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}});
    cluster.create(Some("default"), "Service", marker).await?;
    wait_for("the marker Service to list the pod", TIMEOUT, || async {
        let marker = cluster.get(Some("default"), "Endpoints", "marker").await?.context("no Endpoints yet")?;
        let ip = &marker["subsets"][0]["addresses"][0]["ip"];
        if ip == "10.1.0.1" { Ok(()) } else { bail!("{marker}") }
    })
    .await?;
    let web = cluster.get(Some("default"), "Endpoints", "web").await?.context("the user's Endpoints")?;
    assert_eq!(web["subsets"][0]["addresses"][0]["ip"], "192.168.1.10");
    assert_eq!(cluster.slices().await?, "0 slice(s): ");
    Ok(())
}

#[tokio::test]
async fn what_the_controllers_wrote_reads_back_as_nothing_to_do() -> anyhow::Result<()> {
    let mut cluster = Cluster::start().await?;
    cluster.run::<EndpointsController>(&config());
    cluster.run::<EndpointSliceController>(&config());
    let service = json!({"metadata": {"name": "web", "labels": {"tier": "front"}},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}});
    cluster.create(Some("default"), "Service", service).await?;
    for (name, ip, ready) in [("web-1", "10.1.0.1", true), ("web-2", "10.1.0.2", false)] {
        cluster.create(Some("default"), "Pod", pod(name)).await?;
        cluster.set_status(name, ip, ready).await?;
    }
    cluster.follows("the slice", "1 slice(s): 10.1.0.1(RS-),10.1.0.2(---)", || cluster.slices()).await?;
    cluster.follows("the Endpoints", "10.1.0.1:8080 | 10.1.0.2:8080", || cluster.endpoints()).await?;
    // Everything read back from the apiserver, as the controllers' caches hold it: after the server's defaulting
    // and a JSON round trip, the objects must still compare equal to what the pods ask for, or every event
    // (including the controllers' own writes) would rewrite them forever.
    let service: Service = typed(cluster.get(Some("default"), "Service", "web").await?.context("no Service")?)?;
    let pods: Vec<Pod> = cluster
        .client
        .list(resource("Pod")?, Some("default"), &Default::default())
        .await?
        .items
        .into_iter()
        .map(typed)
        .collect::<Result<_, _>>()?;
    let endpoints: Endpoints = typed(cluster.get(Some("default"), "Endpoints", "web").await?.context("no Endpoints")?)?;
    let params = kubelab_api::client::ListParams::default().labels("kubernetes.io/service-name=web");
    let slices: Vec<EndpointSlice> = cluster
        .client
        .list(resource("EndpointSlice")?, Some("default"), &params)
        .await?
        .items
        .into_iter()
        .map(typed)
        .collect::<Result<_, _>>()?;
    assert_eq!(subsets::reconcile(Some(&service), &pods, Some(&endpoints)), None);
    assert_eq!(slices::reconcile(&service, &pods, &slices, 100), []);
    Ok(())
}
