//! What the cluster was told survives a restart of the apiserver, on either store.

use kubelab_tests::{EtcdServer, TestServer, spawn_apiserver, spawn_apiserver_on_etcd};
use serde_json::{Value, json};

/// A Deployment and a ConfigMap in a namespace, created through the API; returns them as the server answered.
async fn create_objects(server: &TestServer) -> anyhow::Result<Vec<Value>> {
    let http = server.http();
    let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "keep"}});
    let configmap = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": "keep", "labels": {"app": "web"}},
        "data": {"color": "blue"}
    });
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "keep"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27", "ports": [{"containerPort": 80}]}]}
            }
        }
    });
    let mut created = Vec::new();
    for (path, body) in [
        ("/api/v1/namespaces", namespace),
        ("/api/v1/namespaces/keep/configmaps", configmap),
        ("/apis/apps/v1/namespaces/keep/deployments", deployment),
    ] {
        let response = http.post(server.path_url(path)).json(&body).send().await?;
        let status = response.status();
        let text = response.text().await?;
        assert_eq!(status, 201, "POST {path} → {status}: {text}");
        created.push(serde_json::from_str(&text)?);
    }
    Ok(created)
}

/// GETs each object again and checks it is the same object: same uid, same resourceVersion, same content.
async fn assert_still_there(server: &TestServer, before: &[Value]) -> anyhow::Result<()> {
    let paths = [
        "/api/v1/namespaces/keep",
        "/api/v1/namespaces/keep/configmaps/settings",
        "/apis/apps/v1/namespaces/keep/deployments/web",
    ];
    for (path, before) in paths.iter().zip(before) {
        let response = server.http().get(server.path_url(path)).send().await?;
        let status = response.status();
        let text = response.text().await?;
        assert_eq!(status, 200, "GET {path} after the restart → {status}: {text}");
        let after: Value = serde_json::from_str(&text)?;
        assert_eq!(after["metadata"]["uid"], before["metadata"]["uid"], "{path}: same uid");
        assert_eq!(
            after["metadata"]["resourceVersion"], before["metadata"]["resourceVersion"],
            "{path}: same resourceVersion"
        );
        assert_eq!(after.get("spec"), before.get("spec"), "{path}: same spec");
        assert_eq!(after.get("data"), before.get("data"), "{path}: same data");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_on_the_embedded_store_survive_a_restart() -> anyhow::Result<()> {
    let mut server = spawn_apiserver().await?;
    let created = create_objects(&server).await?;

    server.restart().await?;
    assert_still_there(&server, &created).await?;

    // Revisions go on from where they were: a new write gets a higher resourceVersion than anything before.
    let response = server
        .http()
        .post(server.path_url("/api/v1/namespaces/keep/configmaps"))
        .json(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "after-restart"}}))
        .send()
        .await?;
    assert_eq!(response.status(), 201);
    let newest: Value = response.json().await?;
    let rv = |v: &Value| v["metadata"]["resourceVersion"].as_str().and_then(|s| s.parse::<i64>().ok()).unwrap();
    let highest_before = created.iter().map(rv).max().unwrap();
    assert!(
        rv(&newest) > highest_before,
        "resourceVersion {} after the restart vs {highest_before} before",
        rv(&newest)
    );
    server.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_on_etcd_live_under_registry_keys_and_survive_a_restart() -> anyhow::Result<()> {
    let etcd = EtcdServer::start().await?;
    let mut server = spawn_apiserver_on_etcd(&etcd).await?;
    let created = create_objects(&server).await?;

    // Read etcd directly, as `etcdctl get --prefix /registry/` would.
    let mut client = etcd_client::Client::connect([etcd.endpoint()], None).await?;
    let listed = client.get("/registry/", Some(etcd_client::GetOptions::new().with_prefix())).await?;
    let keys: Vec<String> = listed.kvs().iter().map(|kv| kv.key_str().unwrap_or("<not utf-8>").to_string()).collect();
    for (expected, object) in [
        ("/registry/namespaces/keep", &created[0]),
        ("/registry/configmaps/keep/settings", &created[1]),
        ("/registry/deployments/keep/web", &created[2]),
    ] {
        let kv = listed
            .kvs()
            .iter()
            .find(|kv| kv.key() == expected.as_bytes())
            .unwrap_or_else(|| panic!("no key {expected} in etcd; keys under /registry/: {keys:#?}"));
        let stored: Value = serde_json::from_slice(kv.value())?;
        assert_eq!(stored["metadata"]["uid"], object["metadata"]["uid"], "{expected} holds the object");
        assert_eq!(
            kv.mod_revision().to_string(),
            object["metadata"]["resourceVersion"].as_str().unwrap_or_default(),
            "{expected}: resourceVersion is etcd's mod revision"
        );
    }
    assert!(keys.contains(&"/registry/namespaces/default".to_string()), "the system namespaces are created: {keys:#?}");

    server.restart().await?;
    assert_still_there(&server, &created).await?;
    server.shutdown().await
}
