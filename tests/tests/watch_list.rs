//! Streaming lists (watch-list, KEP-3157), as clients nobody here wrote use them.
//!
//! kubectl 1.37 runs `rollout status` and `wait` as one watch with `sendInitialEvents=true`: the current objects
//! as ADDED events, then a BOOKMARK annotated `k8s.io/initial-events-end`, then the changes. It waits for that
//! bookmark before it looks at anything, so a server that ignores the parameter makes both commands hang.
//!
//! The tests here check the wire (raw HTTP: the event sequence, selectors, the refusals), then the real kubectl
//! 1.37 from PyPI (see `kubelab_tests::venv`) on a one-node cluster running real Docker containers.

use futures::StreamExt;
use kubelab_tests::venv::kubectl_1_37;
use kubelab_tests::{EtcdServer, TestServer, spawn_apiserver, spawn_apiserver_on_etcd, spawn_cluster, wait_for};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(90);
const TEN_SECONDS: Duration = Duration::from_secs(10);

/// What client-go's reflector sends for a streaming list.
const WATCH_LIST: &str = "watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true";

/// A watch's events, read line by line as they arrive.
struct Events {
    body: futures::stream::BoxStream<'static, reqwest::Result<Vec<u8>>>,
    pending: Vec<u8>,
}

impl Events {
    async fn open(server: &TestServer, path_and_query: &str) -> anyhow::Result<Events> {
        let response = server.http().get(server.path_url(path_and_query)).send().await?;
        anyhow::ensure!(response.status() == 200, "{path_and_query}: {} {}", response.status(), response.text().await?);
        Ok(Events { body: response.bytes_stream().map(|chunk| chunk.map(|b| b.to_vec())).boxed(), pending: Vec::new() })
    }

    /// The next event, `(type, object)`.
    async fn next(&mut self) -> anyhow::Result<(String, Value)> {
        let line = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = self.pending.drain(..=end).collect();
                    return anyhow::Ok(line);
                }
                let chunk = self.body.next().await.ok_or_else(|| anyhow::anyhow!("the watch ended"))??;
                self.pending.extend_from_slice(&chunk);
            }
        })
        .await
        .map_err(|_| anyhow::anyhow!("no event within 10s"))??;
        let event: Value = serde_json::from_slice(&line)?;
        Ok((event["type"].as_str().unwrap_or("").to_string(), event["object"].clone()))
    }
}

fn name(object: &Value) -> &str {
    object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("")
}

async fn create_config_map(server: &TestServer, name: &str, app: &str) -> anyhow::Result<Value> {
    let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"app": app}}});
    let response =
        server.http().post(server.path_url("/api/v1/namespaces/default/configmaps")).json(&body).send().await?;
    anyhow::ensure!(response.status() == 201, "creating {name}: {}", response.status());
    Ok(response.json().await?)
}

#[tokio::test]
async fn a_streaming_list_sends_the_selected_objects_then_the_end_bookmark_then_the_changes() -> anyhow::Result<()> {
    streaming_list_sequence(spawn_apiserver().await?).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streaming_list_on_etcd_sends_the_same_sequence() -> anyhow::Result<()> {
    let etcd = EtcdServer::start().await?;
    streaming_list_sequence(spawn_apiserver_on_etcd(&etcd).await?).await
}

/// The event sequence of a streaming list, whatever the store.
async fn streaming_list_sequence(server: TestServer) -> anyhow::Result<()> {
    create_config_map(&server, "web-1", "web").await?;
    create_config_map(&server, "db-1", "db").await?;
    let last = create_config_map(&server, "web-2", "web").await?;
    let last_rv = last["metadata"]["resourceVersion"].as_str().unwrap_or("").to_string();

    let mut events =
        Events::open(&server, &format!("/api/v1/namespaces/default/configmaps?{WATCH_LIST}&labelSelector=app%3Dweb"))
            .await?;
    let first = events.next().await?;
    let second = events.next().await?;
    assert_eq!(
        [(first.0.as_str(), name(&first.1)), (second.0.as_str(), name(&second.1))],
        [("ADDED", "web-1"), ("ADDED", "web-2")]
    );
    let (kind, bookmark) = events.next().await?;
    assert_eq!(kind, "BOOKMARK");
    assert_eq!(bookmark["kind"], "ConfigMap");
    assert_eq!(bookmark["metadata"]["annotations"], json!({"k8s.io/initial-events-end": "true"}));
    let list_rv: i64 = bookmark["metadata"]["resourceVersion"].as_str().unwrap_or("").parse()?;
    assert!(list_rv >= last_rv.parse::<i64>()?, "the bookmark's revision {list_rv} is older than {last_rv}");

    // Then the changes, filtered by the same selector.
    create_config_map(&server, "db-2", "db").await?;
    create_config_map(&server, "web-3", "web").await?;
    let (kind, object) = events.next().await?;
    assert_eq!((kind.as_str(), name(&object)), ("ADDED", "web-3"));

    // An empty collection: the bookmark alone.
    let mut empty = Events::open(&server, &format!("/api/v1/namespaces/kube-system/configmaps?{WATCH_LIST}")).await?;
    let (kind, bookmark) = empty.next().await?;
    assert_eq!(kind, "BOOKMARK");
    assert_eq!(bookmark["metadata"]["annotations"]["k8s.io/initial-events-end"], "true");
    // Open watches hold a graceful shutdown back: close them first.
    drop((events, empty));
    server.shutdown().await
}

#[tokio::test]
async fn unsupported_combinations_are_refused_as_kube_apiserver_refuses_them() -> anyhow::Result<()> {
    let server = spawn_apiserver().await?;
    let refused = |query: &'static str| {
        let server = &server;
        async move {
            let response =
                server.http().get(server.path_url(&format!("/api/v1/namespaces/default/pods?{query}"))).send().await?;
            let code = response.status().as_u16();
            let status: Value = response.json().await?;
            anyhow::Ok((code, status))
        }
    };
    let (code, status) = refused("watch=1&sendInitialEvents=true&allowWatchBookmarks=true").await?;
    assert_eq!(code, 422);
    assert_eq!(status["reason"], "Invalid");
    assert_eq!(
        status["details"],
        json!({"name": "", "group": "meta.k8s.io", "kind": "ListOptions", "causes": [{
        "reason": "FieldValueForbidden", "field": "resourceVersionMatch",
        "message": "Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"}]})
    );
    assert_eq!(
        status["message"],
        "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: sendInitialEvents requires setting \
         resourceVersionMatch to NotOlderThan"
    );
    let (code, status) = refused("sendInitialEvents=true").await?;
    assert_eq!(code, 422);
    assert_eq!(
        status["message"],
        "ListOptions.meta.k8s.io \"\" is invalid: sendInitialEvents: Forbidden: sendInitialEvents is forbidden for list"
    );
    let (code, status) = refused("watch=1&resourceVersionMatch=NotOlderThan").await?;
    assert_eq!(code, 422);
    assert!(status["message"].as_str().unwrap_or("").ends_with("unless sendInitialEvents is provided"), "{status}");
    // A state newer than the store's: one ERROR event (504, Too large resource version), as from kube-apiserver.
    let mut events =
        Events::open(&server, &format!("/api/v1/namespaces/default/pods?{WATCH_LIST}&resourceVersion=999999")).await?;
    let (kind, status) = events.next().await?;
    assert_eq!((kind.as_str(), &status["code"], &status["reason"]), ("ERROR", &json!(504), &json!("Timeout")));
    drop(events);
    server.shutdown().await
}

/// A Deployment whose pod sleeps (no probe: Ready as soon as its container runs).
const SLEEPER: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: sleeper
spec:
  replicas: 1
  selector:
    matchLabels: {app: sleeper}
  template:
    metadata:
      labels: {app: sleeper}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: kubelab/busybox:1
        imagePullPolicy: IfNotPresent
        command: [sleep, '3600']
";

fn available(deployment: &Value) -> bool {
    deployment
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Available" && c["status"] == "True"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_1_37_rollout_status_and_wait_return_as_soon_as_the_deployment_is_available() -> anyhow::Result<()> {
    let kubectl_1_37 = kubectl_1_37()?;
    let mut cluster = spawn_cluster(1, |_| {}).await?;
    let kubectl = cluster.kubectl().with_binary(&kubectl_1_37);
    let client = cluster.get().client.clone();
    let manifest = cluster.dir().join("sleeper.yaml");
    std::fs::write(&manifest, SLEEPER)?;
    let manifest = manifest.to_str().unwrap_or_default().to_string();

    kubectl.ok(&["apply", "-f", &manifest]).await?;
    let started = Instant::now();
    // Both start while the Deployment is not available yet, and must see it become so.
    let (rollout, wait, became_available) = tokio::join!(
        kubectl.run(&["rollout", "status", "deploy/sleeper", "--timeout=80s", "-v=8"]),
        kubectl.run(&["wait", "--for=condition=available", "deploy/sleeper", "--timeout=80s", "-v=8"]),
        wait_for("the Deployment to be Available", TIMEOUT, || async {
            let deployment = client.get(deployments(), Some("default"), "sleeper").await?;
            anyhow::ensure!(available(&deployment), "status: {}", deployment["status"]);
            Ok(started.elapsed())
        }),
    );
    let (rollout, wait, became_available) = (rollout?, wait?, became_available?);
    assert!(rollout.success(), "{rollout}");
    assert!(rollout.stdout.contains("deployment \"sleeper\" successfully rolled out"), "{rollout}");
    assert!(wait.success(), "{wait}");
    assert_eq!(wait.stdout.trim(), "deployment.apps/sleeper condition met", "{wait}");
    let finished = started.elapsed();
    // They returned because of the events, not a timeout: `kubectl` ran the streaming list, and both finished
    // moments after the Deployment became Available (not at their 80 s timeout).
    for (command, output) in [("rollout status", &rollout), ("wait", &wait)] {
        assert!(
            output.stderr.contains("sendInitialEvents=true")
                && output.stderr.contains("resourceVersionMatch=NotOlderThan"),
            "kubectl 1.37 {command} did not ask for a streaming list:\n{}",
            output.stderr
        );
    }
    assert!(
        finished < became_available + Duration::from_secs(10),
        "available after {became_available:?}, kubectl done after {finished:?}"
    );
    eprintln!("available after {became_available:?}; rollout status and wait returned by {finished:?}");
    // What it asked for, in the test's output (`--nocapture`).
    for (command, output) in [("rollout status", &rollout), ("wait", &wait)] {
        for request in output.stderr.lines().filter(|l| l.contains("verb=\"GET\"")) {
            eprintln!("kubectl 1.37 {command}: {request}");
        }
    }
    Ok(())
}

fn deployments() -> &'static kubelab_api::Resource {
    kubelab_api::resources::by_user_name("deployments").expect("deployments are served")
}

#[tokio::test]
async fn kubelabs_informer_starts_from_a_streaming_list_and_follows_the_changes() -> anyhow::Result<()> {
    use kubelab_api::client::{Client, ListParams};
    use kubelab_api::informer::{Change, watch_changes};
    let server = spawn_apiserver().await?;
    create_config_map(&server, "web-1", "web").await?;
    create_config_map(&server, "db-1", "db").await?;
    let config_maps = kubelab_api::resources::by_user_name("configmaps").expect("configmaps are served");
    let client = Client::new(server.url())?;
    let mut changes =
        Box::pin(watch_changes(client, config_maps, Some("default".into()), ListParams::default().labels("app=web")));
    let Ok(Some(Ok(Change::Restarted(items)))) = tokio::time::timeout(TEN_SECONDS, changes.next()).await else {
        anyhow::bail!("no first list")
    };
    assert_eq!(items.iter().map(name).collect::<Vec<_>>(), ["web-1"]);
    create_config_map(&server, "web-2", "web").await?;
    let Ok(Some(Ok(Change::Applied(object)))) = tokio::time::timeout(TEN_SECONDS, changes.next()).await else {
        anyhow::bail!("no change")
    };
    assert_eq!(name(&object), "web-2");
    drop(changes);
    server.shutdown().await
}

/// Beyond streaming lists: the everyday commands of a student's newer kubectl work against kubelab too.
#[tokio::test]
async fn kubectl_1_37_applies_gets_watches_scales_and_deletes() -> anyhow::Result<()> {
    let server = spawn_apiserver().await?;
    let kubectl = server.kubectl().with_binary(kubectl_1_37()?);
    let manifest = server.write_file("web.yaml", &SLEEPER.replace("sleeper", "web"))?;
    assert_eq!(kubectl.ok(&["apply", "-f", &manifest]).await?.trim(), "deployment.apps/web created");
    assert_eq!(kubectl.ok(&["apply", "-f", &manifest]).await?.trim(), "deployment.apps/web unchanged");
    assert_eq!(
        kubectl.ok(&["apply", "--server-side", "-f", &manifest]).await?.trim(),
        "deployment.apps/web serverside-applied"
    );
    let wide = kubectl.ok(&["get", "deploy", "-o", "wide"]).await?;
    assert!(
        wide.starts_with("NAME   READY   UP-TO-DATE   AVAILABLE   AGE   CONTAINERS   IMAGES              SELECTOR"),
        "{wide}"
    );
    assert!(wide.contains("kubelab/busybox:1   app=web"), "{wide}");
    assert_eq!(kubectl.ok(&["create", "configmap", "c", "--from-literal=a=b"]).await?.trim(), "configmap/c created");
    assert!(
        kubectl
            .ok(&["describe", "deploy", "web"])
            .await?
            .contains("RollingUpdateStrategy:  25% max unavailable, 25% max surge")
    );

    // `get -w`: the list, then the change.
    let mut watch = kubectl.watch(&["get", "deploy", "web", "-w", "--no-headers"])?;
    watch.line("the first row", TEN_SECONDS, |l| l.starts_with("web ")).await?;
    assert_eq!(kubectl.ok(&["scale", "deploy/web", "--replicas=2"]).await?.trim(), "deployment.apps/web scaled");
    assert_eq!(kubectl.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]).await?, "2");
    watch.line("a second row after the scale", TEN_SECONDS, |l| l.starts_with("web ")).await?;
    drop(watch);

    assert!(kubectl.ok(&["delete", "-f", &manifest]).await?.starts_with("deployment.apps \"web\" deleted"));
    let gone = kubectl.fails(&["get", "deploy", "web"]).await?;
    assert!(gone.contains("deployments.apps \"web\" not found"), "{gone}");
    server.shutdown().await
}

/// A fake apiserver with the `WatchList` feature off, as kube-apiserver before 1.32 (or with the gate closed):
/// it refuses `sendInitialEvents` with kube-apiserver's `422`, lists one ConfigMap at revision 10 and watches with
/// one change. Returns its URL and the request targets it saw.
async fn server_without_watch_list() -> anyhow::Result<(String, std::sync::Arc<std::sync::Mutex<Vec<String>>>)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let requests = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let requests = requests.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && socket.read(&mut byte).await.unwrap_or(0) == 1 {
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head);
                let target = head.split_whitespace().nth(1).unwrap_or("").to_string();
                requests.lock().unwrap_or_else(|p| p.into_inner()).push(target.clone());
                let (response, is_watch) = answer_without_watch_list(&target);
                let _ = socket.write_all(response.as_bytes()).await;
                if is_watch {
                    // A watch stays open until the client goes.
                    let _ = socket.read(&mut byte).await;
                }
            });
        }
    });
    Ok((url, seen))
}

/// What [`server_without_watch_list`] answers to a request for `target`, and whether it is a watch.
fn answer_without_watch_list(target: &str) -> (String, bool) {
    let config_map = |name: &str, rv: &str| {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": name, "namespace": "default", "resourceVersion": rv}})
    };
    let reply = |code: &str, body: Value| {
        let body = body.to_string();
        let length = body.len();
        // One request per connection: the client must not reuse it.
        let headers = format!("Content-Type: application/json\r\nContent-Length: {length}\r\nConnection: close");
        format!("HTTP/1.1 {code}\r\n{headers}\r\n\r\n{body}")
    };
    if target.contains("sendInitialEvents=true") {
        let message = "ListOptions.meta.k8s.io \"\" is invalid: sendInitialEvents: Forbidden: sendInitialEvents is \
                       forbidden for watch unless the WatchList feature gate is enabled";
        let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                            "message": message, "reason": "Invalid", "code": 422});
        (reply("422 Unprocessable Entity", status), false)
    } else if target.contains("watch=1") {
        let event = format!("{}\n", json!({"type": "ADDED", "object": config_map("web-2", "11")}));
        let chunk = format!("{:x}\r\n{event}\r\n", event.len());
        (
            format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{chunk}"),
            true,
        )
    } else {
        let list = json!({"apiVersion": "v1", "kind": "ConfigMapList", "metadata": {"resourceVersion": "10"},
                          "items": [config_map("web-1", "9")]});
        (reply("200 OK", list), false)
    }
}

#[tokio::test]
async fn kubelabs_informer_lists_and_watches_when_the_server_refuses_a_streaming_list() -> anyhow::Result<()> {
    use kubelab_api::client::{Client, ListParams};
    use kubelab_api::informer::{Change, watch_changes};
    let (url, seen) = server_without_watch_list().await?;
    let config_maps = kubelab_api::resources::by_user_name("configmaps").expect("configmaps are served");
    let mut changes =
        Box::pin(watch_changes(Client::new(&url)?, config_maps, Some("default".into()), ListParams::default()));
    let Ok(Some(Ok(Change::Restarted(items)))) = tokio::time::timeout(TEN_SECONDS, changes.next()).await else {
        anyhow::bail!("no first list")
    };
    assert_eq!(items.iter().map(name).collect::<Vec<_>>(), ["web-1"]);
    let Ok(Some(Ok(Change::Applied(object)))) = tokio::time::timeout(TEN_SECONDS, changes.next()).await else {
        anyhow::bail!("no change from the watch")
    };
    assert_eq!(name(&object), "web-2");
    drop(changes);
    let seen = seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let [streaming, list, watch] = seen.as_slice() else { anyhow::bail!("requests: {seen:?}") };
    assert!(streaming.contains("sendInitialEvents=true"), "{seen:?}");
    assert!(!list.contains("watch=") && list.contains("limit=500"), "{seen:?}");
    assert!(watch.contains("watch=1") && watch.contains("resourceVersion=10"), "{seen:?}");
    Ok(())
}
