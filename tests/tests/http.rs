//! Raw HTTP: the requests kubectl never sends, and the failures a cluster must survive.
//!
//! Each test checks the status code and the `Status` object a client gets back, since that is what every client
//! (kubectl, client-go, kube-rs) builds its error from.

use std::time::Duration;

use kubelab_apiserver::store::embedded::EmbeddedStore;
use kubelab_tests::{EtcdServer, TestServer, spawn_apiserver, spawn_apiserver_on_etcd, wait_for};
use serde_json::{Value, json};

/// How long the apiserver may take to notice etcd went away, or came back.
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// A request's status code and body, parsed as JSON when it is JSON.
async fn answer(response: reqwest::Response) -> anyhow::Result<(u16, Value, String)> {
    let status = response.status().as_u16();
    let text = response.text().await?;
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Ok((status, body, text))
}

/// Checks that `body` is a `metav1.Status` failure with `code` and `reason`, and returns its message.
fn status_message(body: &Value, code: u16, reason: &str, raw: &str) -> String {
    assert_eq!(body["kind"], "Status", "the error is a Status object: {raw}");
    assert_eq!(body["apiVersion"], "v1", "{raw}");
    assert_eq!(body["status"], "Failure", "{raw}");
    assert_eq!(body["code"], code, "{raw}");
    assert_eq!(body["reason"], reason, "{raw}");
    body["message"].as_str().unwrap_or_default().to_string()
}

/// Creates a ConfigMap in `default` through the API and returns its resourceVersion.
async fn create_configmap(server: &TestServer, name: &str) -> anyhow::Result<String> {
    let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"n": "0"}});
    let response =
        server.http().post(server.path_url("/api/v1/namespaces/default/configmaps")).json(&body).send().await?;
    let (status, body, raw) = answer(response).await?;
    assert_eq!(status, 201, "{raw}");
    Ok(body["metadata"]["resourceVersion"].as_str().unwrap_or_default().to_string())
}

/// Changes a ConfigMap with a merge patch, to move the store's revision on.
async fn touch_configmap(server: &TestServer, name: &str, n: usize) -> anyhow::Result<()> {
    let response = server
        .http()
        .patch(server.path_url(&format!("/api/v1/namespaces/default/configmaps/{name}")))
        .header("Content-Type", "application/merge-patch+json")
        .body(json!({"data": {"n": n.to_string()}}).to_string())
        .send()
        .await?;
    let (status, _, raw) = answer(response).await?;
    assert_eq!(status, 200, "{raw}");
    Ok(())
}

/// Watches configmaps in `default` from `resource_version` and returns the events until the stream ends.
async fn watch_from(server: &TestServer, resource_version: &str) -> anyhow::Result<(u16, Vec<Value>)> {
    let url =
        server.path_url(&format!("/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={resource_version}"));
    let response = server.http().get(url).send().await?;
    let status = response.status().as_u16();
    // A watch that cannot start sends one ERROR event and ends; one that hangs here is a bug the timeout reports.
    let text = tokio::time::timeout(Duration::from_secs(20), response.text())
        .await
        .map_err(|_| anyhow::anyhow!("the watch from a compacted resourceVersion did not end"))??;
    let events = text.lines().filter(|l| !l.trim().is_empty()).map(serde_json::from_str).collect::<Result<_, _>>()?;
    Ok((status, events))
}

/// The single ERROR event of a watch from a forgotten revision: a Status with 410 Expired.
fn assert_expired(status: u16, events: &[Value]) {
    assert_eq!(status, 200, "Kubernetes answers 200 and reports the error in the stream: {events:?}");
    assert_eq!(events.len(), 1, "one ERROR event, then the stream ends: {events:#?}");
    assert_eq!(events[0]["type"], "ERROR", "{events:#?}");
    let message = status_message(&events[0]["object"], 410, "Expired", &events[0].to_string());
    assert!(message.contains("too old resource version"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_is_a_400_that_says_where() -> anyhow::Result<()> {
    let server = spawn_apiserver().await?;
    let broken =
        "{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"ConfigMap\",\n  \"metadata\": {\"name\": \"broken\",}\n}\n";
    let response = server
        .http()
        .post(server.path_url("/api/v1/namespaces/default/configmaps"))
        .header("Content-Type", "application/json")
        .body(broken)
        .send()
        .await?;
    let (status, body, raw) = answer(response).await?;
    assert_eq!(status, 400, "{raw}");
    let message = status_message(&body, 400, "BadRequest", &raw);
    assert!(message.contains("line 4 column"), "the message gives the position of the error: {message}");

    let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [broken\n";
    let response = server
        .http()
        .post(server.path_url("/api/v1/namespaces/default/configmaps"))
        .header("Content-Type", "application/yaml")
        .body(yaml)
        .send()
        .await?;
    let (status, body, raw) = answer(response).await?;
    assert_eq!(status, 400, "{raw}");
    let message = status_message(&body, 400, "BadRequest", &raw);
    assert!(message.contains("line") && message.contains("column"), "the message gives the position: {message}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_resource_is_a_404_status() -> anyhow::Result<()> {
    let server = spawn_apiserver().await?;
    for path in [
        "/api/v1/namespaces/default/widgets",
        "/apis/example.com/v1/things",
        "/apis/apps/v1/namespaces/default/gizmos/x",
    ] {
        let (status, body, raw) = answer(server.http().get(server.path_url(path)).send().await?).await?;
        assert_eq!(status, 404, "GET {path}: {raw}");
        status_message(&body, 404, "NotFound", &raw);
    }
    let response = server
        .http()
        .post(server.path_url("/api/v1/namespaces/default/widgets"))
        .json(&json!({"apiVersion": "v1", "kind": "Widget", "metadata": {"name": "w"}}))
        .send()
        .await?;
    let (status, body, raw) = answer(response).await?;
    assert_eq!(status, 404, "POST of an unknown kind: {raw}");
    status_message(&body, 404, "NotFound", &raw);

    // A known resource, a missing object: 404 naming it, as kubectl prints it.
    let (status, body, raw) =
        answer(server.http().get(server.path_url("/apis/apps/v1/namespaces/default/deployments/nope")).send().await?)
            .await?;
    assert_eq!(status, 404, "{raw}");
    assert_eq!(status_message(&body, 404, "NotFound", &raw), r#"deployments.apps "nope" not found"#);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_3_mib_is_refused_with_413() -> anyhow::Result<()> {
    let server = spawn_apiserver().await?;
    let huge = "x".repeat(3 * 1024 * 1024 + 512 * 1024);
    let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "huge"}, "data": {"blob": huge}});
    let response = server
        .http()
        .post(server.path_url("/api/v1/namespaces/default/configmaps"))
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await?;
    let (status, body, raw) = answer(response).await?;
    assert_eq!(status, 413, "{}", &raw[..raw.len().min(500)]);
    status_message(&body, 413, "RequestEntityTooLarge", &raw);

    let (status, _, raw) =
        answer(server.http().get(server.path_url("/api/v1/namespaces/default/configmaps/huge")).send().await?).await?;
    assert_eq!(status, 404, "nothing was stored: {}", &raw[..raw.len().min(500)]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_from_a_compacted_revision_on_etcd_ends_with_410_expired() -> anyhow::Result<()> {
    let etcd = EtcdServer::start().await?;
    let server = spawn_apiserver_on_etcd(&etcd).await?;
    let old = create_configmap(&server, "counter").await?;
    for n in 1..=3 {
        touch_configmap(&server, "counter", n).await?;
    }
    // What the real apiserver asks etcd to do every five minutes: forget the history before now.
    let mut client = etcd_client::Client::connect([etcd.endpoint()], None).await?;
    let now = client.get("/registry/", Some(etcd_client::GetOptions::new().with_prefix().with_limit(1))).await?;
    let revision = now.header().map(|h| h.revision()).unwrap_or_default();
    client.compact(revision, None).await?;

    let (status, events) = watch_from(&server, &old).await?;
    assert_expired(status, &events);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_from_a_compacted_revision_on_the_embedded_store_ends_with_410_expired() -> anyhow::Result<()> {
    let mut server = spawn_apiserver().await?;
    let old = create_configmap(&server, "counter").await?;
    for n in 1..=3 {
        touch_configmap(&server, "counter", n).await?;
    }
    // The embedded store keeps 10 000 revisions of history; rather than writing that much, compact it by hand
    // while the server is stopped (its file is locked while it runs).
    server.stop().await?;
    let store = EmbeddedStore::open(&server.data_dir().join("store.redb"))?;
    store.compact(i64::MAX).await?;
    drop(store);
    server.start().await?;

    let (status, events) = watch_from(&server, &old).await?;
    assert_expired(status, &events);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_down_is_a_503_and_the_same_server_recovers_when_it_returns() -> anyhow::Result<()> {
    let mut etcd = EtcdServer::start().await?;
    let server = spawn_apiserver_on_etcd(&etcd).await?;
    let list = server.path_url("/api/v1/namespaces/default/configmaps");
    let (status, _, raw) = answer(server.http().get(&list).send().await?).await?;
    assert_eq!(status, 200, "{raw}");

    etcd.stop()?;
    let (body, raw) = wait_for("a 503 while etcd is down", RECOVERY_TIMEOUT, || async {
        let (status, body, raw) = answer(server.http().get(&list).send().await?).await?;
        anyhow::ensure!(status == 503, "GET {list} → {status}: {raw}");
        Ok((body, raw))
    })
    .await?;
    let message = status_message(&body, 503, "ServiceUnavailable", &raw);
    assert!(message.contains(&etcd.endpoint()), "the message says which etcd is unreachable: {message}");
    let (status, _, raw) = answer(server.http().get(server.path_url("/readyz")).send().await?).await?;
    assert_eq!(status, 503, "/readyz reports the store: {raw}");

    etcd.restart().await?;
    wait_for("200 again once etcd is back", RECOVERY_TIMEOUT, || async {
        let (status, _, raw) = answer(server.http().get(&list).send().await?).await?;
        anyhow::ensure!(status == 200, "GET {list} → {status}: {raw}");
        Ok(())
    })
    .await?;
    create_configmap(&server, "after-the-outage").await?;
    Ok(())
}
