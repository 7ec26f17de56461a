//! Every kubectl from 1.27 to 1.33 drives kubelab.
//!
//! Students' laptops carry whatever kubectl they installed last year. Releases differ in what they ask the server:
//! 1.27 and 1.28 fetch `/openapi/v2` in protobuf before `apply` (and fail with "the server could not find the
//! requested resource" without it), 1.29 and later read `/openapi/v3`; discovery, tables, the scale subresource and
//! the rollout commands are asked for alike. So the same session runs with each release's binary
//! (`kubectl.1.27` … `kubectl.1.33`, installed beside the `kubectl` dispatcher): apply (refused for a misspelled
//! field, then create, then update keeping the container's ports), get with columns, describe, rollout status, history and undo, scale.
//!
//! Each release gets its own apiserver and controller-manager (in this process, the deployment controller makes
//! the ReplicaSets the rollout commands read). There are no nodes, so the Deployment asks for no pods until the
//! end: a rollout then completes as soon as the controller has observed it.

use std::time::Duration;

use kubelab_tests::{AbortOnDrop, Kubectl, TestServer, spawn_apiserver, tables, wait_for};
use serde_json::{Value, json};

/// A Deployment as written for a real cluster. Version 1 also exposes a debug port, which version 2 drops.
fn deployment(image: &str) -> String {
    let debug_port =
        if image.ends_with("1.14.2") { "\n        - name: debug\n          containerPort: 8080" } else { "" };
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
spec:
  replicas: 0
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: nginx
        image: {image}
        ports:
        - name: http
          containerPort: 80{debug_port}
        env:
        - name: LOG_LEVEL
          value: info
"
    )
}

/// A server with the controller-manager beside it, and kubectl `1.<minor>` pointed at it.
async fn session(minor: u32) -> anyhow::Result<(TestServer, AbortOnDrop<anyhow::Result<()>>, Kubectl)> {
    let server = spawn_apiserver().await?;
    let controllers = server.spawn_controller_manager()?;
    let kubectl = server.kubectl().release(minor)?;
    Ok((server, controllers, kubectl))
}

/// `kubectl get deploy web -o json`, parsed.
async fn web(kubectl: &Kubectl) -> anyhow::Result<Value> {
    Ok(serde_json::from_str(&kubectl.ok(&["get", "deployment", "web", "-o", "json"]).await?)?)
}

/// The session every release must get through.
async fn drive(minor: u32) -> anyhow::Result<()> {
    let (server, _controllers, kubectl) = session(minor).await?;
    let v1 = server.write_file("web-v1.yaml", &deployment("nginx:1.14.2"))?;
    let v2 = server.write_file("web-v2.yaml", &deployment("nginx:1.16.1"))?;

    // A misspelled field: kubectl leaves validation to the server (`fieldValidation=Strict`), which names it.
    let typo = server.write_file("typo.yaml", &deployment("nginx:1.14.2").replace("image:", "imag:"))?;
    let refused = kubectl.fails(&["apply", "-f", &typo]).await?;
    assert!(refused.contains(r#"unknown field "spec.template.spec.containers[0].imag""#), "{refused}");

    // apply: create, then update through a strategic merge patch.
    assert_eq!(kubectl.ok(&["apply", "-f", &v1]).await?.trim(), "deployment.apps/web created");
    assert_eq!(kubectl.ok(&["apply", "-f", &v1]).await?.trim(), "deployment.apps/web unchanged");
    let status = kubectl.ok(&["rollout", "status", "deployment/web", "--timeout=30s"]).await?;
    assert!(status.contains(r#"deployment "web" successfully rolled out"#), "{status}");
    // Someone else adds a port the manifest does not know, and version 2 of the manifest drops its debug port.
    // kubectl's three-way patch must merge `containers` by `name` and `ports` by `containerPort`, deleting the
    // dropped port by its key and leaving the other one alone; a patch that sent the list whole would keep the
    // debug port, merged by key on the server.
    let metrics = r#"{"spec":{"template":{"spec":{"containers":[{"name":"nginx","ports":[{"name":"metrics","containerPort":9090}]}]}}}}"#;
    kubectl.ok(&["patch", "deployment", "web", "--type=strategic", "-p", metrics]).await?;
    assert_eq!(kubectl.ok(&["apply", "-f", &v2]).await?.trim(), "deployment.apps/web configured");
    let updated = web(&kubectl).await?;
    let container = &updated["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "nginx:1.16.1", "{updated:#}");
    assert_eq!(
        container["ports"],
        json!([
            {"name": "metrics", "containerPort": 9090, "protocol": "TCP"},
            {"name": "http", "containerPort": 80, "protocol": "TCP"}
        ]),
        "{updated:#}"
    );
    assert_eq!(container["env"], json!([{"name": "LOG_LEVEL", "value": "info"}]), "{updated:#}");

    // rollout: the new template completes, history lists the three templates, undo brings the old image back.
    let status = kubectl.ok(&["rollout", "status", "deployment/web", "--timeout=30s"]).await?;
    assert!(status.contains(r#"deployment "web" successfully rolled out"#), "{status}");
    let history = kubectl.ok(&["rollout", "history", "deployment/web"]).await?;
    let revisions: Vec<&str> = history
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|w| w.parse::<u32>().is_ok())
        .collect();
    assert_eq!(revisions, ["1", "2", "3"], "created, patched, applied: {history}");
    assert_eq!(kubectl.ok(&["rollout", "undo", "deployment/web"]).await?.trim(), "deployment.apps/web rolled back");
    let image = || async {
        let image = kubectl
            .ok(&["get", "deployment", "web", "-o", "jsonpath={.spec.template.spec.containers[0].image}"])
            .await?;
        anyhow::ensure!(image == "nginx:1.14.2", "image {image}");
        Ok(())
    };
    wait_for("the undone image", Duration::from_secs(10), image).await?;
    let status = kubectl.ok(&["rollout", "status", "deployment/web", "--timeout=30s"]).await?;
    assert!(status.contains("successfully rolled out"), "{status}");

    // scale, then get with the columns a real cluster prints, and describe.
    assert_eq!(kubectl.ok(&["scale", "deployment/web", "--replicas=2"]).await?.trim(), "deployment.apps/web scaled");
    let out = kubectl.ok(&["get", "deployments"]).await?;
    let printed = tables(&out);
    assert_eq!(printed[0].header_line(), "NAME READY UP-TO-DATE AVAILABLE AGE", "{out}");
    assert_eq!(printed[0].cell("web", "READY"), Some("0/2"), "no node runs the pods:\n{out}");
    let described = kubectl.ok(&["describe", "deployment", "web"]).await?;
    for expected in ["Name:", "web", "Selector:", "app=web", "Replicas:", "2 desired", "nginx:1.14.2", "80/TCP"] {
        assert!(described.contains(expected), "describe prints {expected:?}:\n{described}");
    }
    Ok(())
}

/// One test per release: they run in parallel, and a failure names its release.
macro_rules! releases {
    ($($test:ident => $minor:literal),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $test() -> anyhow::Result<()> {
            drive($minor).await
        }
    )*};
}

releases! {
    kubectl_1_27 => 27,
    kubectl_1_28 => 28,
    kubectl_1_29 => 29,
    kubectl_1_30 => 30,
    kubectl_1_31 => 31,
    kubectl_1_32 => 32,
    kubectl_1_33 => 33,
}
