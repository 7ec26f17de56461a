//! The real kubectl against the kubelab apiserver.
//!
//! Each test starts its own server and types what a student would type, then checks what the student would read:
//! the lines `kubectl apply` prints, the columns of `kubectl get`, the error messages. The manifest,
//! `manifests/shop.yaml`, is written for a real cluster and applied without extra flags.

use std::time::Duration;

use kubelab_tests::{TestServer, missing_fields, spawn_apiserver, tables};
use serde_json::Value;

/// A Namespace, a ConfigMap, a Deployment, a Service and a Lease, as on kubernetes.io.
const SHOP: &str = include_str!("manifests/shop.yaml");

/// How long a `kubectl get -w` may take to print what we expect.
const WATCH_TIMEOUT: Duration = Duration::from_secs(30);

/// The documents of `shop.yaml`, as JSON.
fn shop_documents() -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(SHOP).expect("shop.yaml is valid YAML")
}

/// Starts a server and applies `shop.yaml` to it; returns the server and the manifest's path.
async fn server_with_shop() -> anyhow::Result<(TestServer, String)> {
    let server = spawn_apiserver().await?;
    let manifest = server.write_file("shop.yaml", SHOP)?;
    server.kubectl().ok(&["apply", "-f", &manifest]).await?;
    Ok((server, manifest))
}

/// `kubectl get -o json`, parsed.
async fn get_json(server: &TestServer, args: &[&str]) -> anyhow::Result<Value> {
    let mut all = vec!["get", "-o", "json"];
    all.extend_from_slice(args);
    Ok(serde_json::from_str(&server.kubectl().ok(&all).await?)?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_creates_every_kind_of_a_real_manifest_and_get_prints_the_usual_columns() -> anyhow::Result<()> {
    let server = spawn_apiserver().await?;
    let kubectl = server.kubectl();
    let manifest = server.write_file("shop.yaml", SHOP)?;

    let applied = kubectl.run(&["apply", "-f", &manifest]).await?;
    assert!(applied.success(), "{applied}");
    assert_eq!(
        applied.lines(),
        [
            "namespace/shop created",
            "configmap/web-config created",
            "deployment.apps/web created",
            "service/web created",
            "lease.coordination.k8s.io/web-leader created",
        ],
        "{applied}"
    );

    let out = kubectl.ok(&["get", "deploy,svc,cm", "-n", "shop"]).await?;
    let printed = tables(&out);
    assert_eq!(printed.len(), 3, "one table per kind:\n{out}");
    let (deployments, services, configmaps) = (&printed[0], &printed[1], &printed[2]);
    assert_eq!(deployments.header_line(), "NAME READY UP-TO-DATE AVAILABLE AGE", "{out}");
    assert_eq!(deployments.names(), ["deployment.apps/web"], "{out}");
    assert_eq!(deployments.cell("deployment.apps/web", "READY"), Some("0/3"), "no pods run yet:\n{out}");
    assert_eq!(services.header_line(), "NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE", "{out}");
    assert_eq!(services.cell("service/web", "TYPE"), Some("ClusterIP"), "{out}");
    assert_eq!(services.cell("service/web", "EXTERNAL-IP"), Some("<none>"), "{out}");
    assert_eq!(services.cell("service/web", "PORT(S)"), Some("80/TCP"), "{out}");
    assert_eq!(configmaps.header_line(), "NAME DATA AGE", "{out}");
    assert_eq!(configmaps.cell("configmap/web-config", "DATA"), Some("2"), "{out}");

    let wide = kubectl.ok(&["get", "deploy,svc", "-n", "shop", "-o", "wide"]).await?;
    let printed = tables(&wide);
    assert_eq!(printed.len(), 2, "{wide}");
    assert_eq!(
        printed[0].header_line(),
        "NAME READY UP-TO-DATE AVAILABLE AGE CONTAINERS IMAGES SELECTOR",
        "-o wide adds the priority-1 columns:\n{wide}"
    );
    assert_eq!(printed[0].cell("deployment.apps/web", "CONTAINERS"), Some("nginx"), "{wide}");
    assert_eq!(printed[0].cell("deployment.apps/web", "IMAGES"), Some("nginx:1.14.2"), "{wide}");
    assert_eq!(printed[0].cell("deployment.apps/web", "SELECTOR"), Some("app=web"), "{wide}");
    assert_eq!(printed[1].header_line(), "NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE SELECTOR", "{wide}");
    assert_eq!(printed[1].cell("service/web", "SELECTOR"), Some("app=web"), "{wide}");

    // Short names and cluster-scoped kinds.
    let namespaces = tables(&kubectl.ok(&["get", "ns"]).await?);
    assert_eq!(namespaces[0].header_line(), "NAME STATUS AGE");
    assert_eq!(namespaces[0].cell("shop", "STATUS"), Some("Active"));
    assert!(namespaces[0].names().contains(&"default"), "the default namespace exists from the start");
    let leases = tables(&kubectl.ok(&["get", "leases", "-n", "shop"]).await?);
    assert_eq!(leases[0].header_line(), "NAME HOLDER AGE");
    assert_eq!(leases[0].cell("web-leader", "HOLDER"), Some("web-7d4b9c-abcde"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_o_yaml_returns_every_field_of_the_manifest() -> anyhow::Result<()> {
    let (server, _) = server_with_shop().await?;
    for sent in shop_documents() {
        let kind = sent["kind"].as_str().unwrap().to_lowercase();
        let name = sent["metadata"]["name"].as_str().unwrap();
        let target = format!("{kind}/{name}");
        let yaml = server.kubectl().ok(&["get", "-n", "shop", "-o", "yaml", &target]).await?;
        let got: Value = serde_saphyr::from_str(&yaml)?;
        let missing = missing_fields(&sent, &got);
        assert!(
            missing.is_empty(),
            "{target} lost or changed fields of the manifest:\n{}\n\nit came back as:\n{yaml}",
            missing.join("\n")
        );
        let meta = &got["metadata"];
        assert!(meta["uid"].as_str().is_some_and(|u| !u.is_empty()), "{target} has a uid:\n{yaml}");
        assert!(meta["resourceVersion"].as_str().is_some_and(|v| v.parse::<u64>().is_ok()), "{target}:\n{yaml}");
        assert!(meta["creationTimestamp"].is_string(), "{target}:\n{yaml}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reapplying_is_unchanged_and_a_new_image_is_configured_without_losing_the_ports() -> anyhow::Result<()> {
    let (server, manifest) = server_with_shop().await?;
    let kubectl = server.kubectl();

    let again = kubectl.run(&["apply", "-f", &manifest]).await?;
    assert!(again.success(), "{again}");
    assert_eq!(
        again.lines(),
        [
            "namespace/shop unchanged",
            "configmap/web-config unchanged",
            "deployment.apps/web unchanged",
            "service/web unchanged",
            "lease.coordination.k8s.io/web-leader unchanged",
        ],
        "{again}"
    );

    let generation_before =
        get_json(&server, &["deploy", "web", "-n", "shop"]).await?["metadata"]["generation"].clone();
    let updated = server.write_file("shop-v2.yaml", &SHOP.replace("nginx:1.14.2", "nginx:1.16.1"))?;
    let changed = kubectl.run(&["apply", "-f", &updated]).await?;
    assert!(changed.success(), "{changed}");
    assert_eq!(
        changed.lines(),
        [
            "namespace/shop unchanged",
            "configmap/web-config unchanged",
            "deployment.apps/web configured",
            "service/web unchanged",
            "lease.coordination.k8s.io/web-leader unchanged",
        ],
        "{changed}"
    );

    // kubectl sent a strategic merge patch naming only the image: the container keeps everything else.
    let deployment = get_json(&server, &["deploy", "web", "-n", "shop"]).await?;
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "nginx:1.16.1", "{deployment:#}");
    assert_eq!(
        container["ports"],
        serde_json::json!([{"name": "http", "containerPort": 80, "protocol": "TCP"}]),
        "{deployment:#}"
    );
    assert_eq!(container["env"].as_array().map(Vec::len), Some(2), "{deployment:#}");
    assert_eq!(container["volumeMounts"][0]["mountPath"], "/etc/nginx/conf.d", "{deployment:#}");
    assert_eq!(deployment["spec"]["template"]["spec"]["containers"].as_array().map(Vec::len), Some(1));
    let generation_after = &deployment["metadata"]["generation"];
    assert_eq!(
        generation_after.as_i64(),
        generation_before.as_i64().map(|g| g + 1),
        "a spec change bumps metadata.generation"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misspelled_field_is_refused_with_its_path() -> anyhow::Result<()> {
    let server = spawn_apiserver().await?;
    let typo = SHOP.replace("imagePullPolicy: IfNotPresent", "imagePullPolcy: IfNotPresent");
    let manifest = server.write_file("typo.yaml", &typo)?;

    let applied = server.kubectl().run(&["apply", "-f", &manifest]).await?;
    assert!(!applied.success(), "a misspelled field must not be accepted silently:\n{applied}");
    assert!(
        applied.stderr.contains(r#"unknown field "spec.template.spec.containers[0].imagePullPolcy""#),
        "kubectl names the field and its path:\n{applied}"
    );
    let get = server.kubectl().run(&["get", "deploy", "web", "-n", "shop"]).await?;
    assert!(!get.success() && get.stderr.contains("NotFound"), "the deployment was not created:\n{get}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_deployment_is_refused_with_the_field_and_the_rule() -> anyhow::Result<()> {
    let server = spawn_apiserver().await?;
    let kubectl = server.kubectl();
    let deployment = |replicas: i32, template_app: &str| {
        format!(
            "apiVersion: apps/v1
kind: Deployment
metadata:
  name: x
spec:
  replicas: {replicas}
  selector:
    matchLabels:
      app: x
  template:
    metadata:
      labels:
        app: {template_app}
    spec:
      containers:
      - name: c
        image: nginx
"
        )
    };

    let negative = server.write_file("negative.yaml", &deployment(-1, "x"))?;
    let stderr = kubectl.fails(&["apply", "-f", &negative]).await?;
    assert!(
        stderr.contains(
            r#"The Deployment "x" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0"#
        ),
        "{stderr}"
    );

    let mismatch = server.write_file("mismatch.yaml", &deployment(1, "other"))?;
    let stderr = kubectl.fails(&["apply", "-f", &mismatch]).await?;
    assert!(stderr.contains(r#"The Deployment "x" is invalid"#), "{stderr}");
    assert!(stderr.contains("spec.template.metadata.labels: Invalid value"), "{stderr}");
    assert!(stderr.contains("`selector` does not match template `labels`"), "{stderr}");

    // Both at once: kubectl lists every cause.
    let both = server.write_file("both.yaml", &deployment(-1, "other"))?;
    let stderr = kubectl.fails(&["apply", "-f", &both]).await?;
    assert!(stderr.contains("* spec.replicas: Invalid value: -1: must be greater than or equal to 0"), "{stderr}");
    assert!(stderr.contains("* spec.template.metadata.labels: Invalid value"), "{stderr}");

    let get = kubectl.run(&["get", "deploy", "x"]).await?;
    assert!(get.stderr.contains(r#"deployments.apps "x" not found"#), "nothing was created:\n{get}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replacing_with_a_stale_resource_version_is_a_conflict() -> anyhow::Result<()> {
    let server = spawn_apiserver().await?;
    let kubectl = server.kubectl();
    let original = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  color: blue\n";
    kubectl.ok(&["apply", "-f", &server.write_file("settings.yaml", original)?]).await?;
    let read = get_json(&server, &["configmap", "settings"]).await?;

    // Someone else changes it after we read it...
    kubectl.ok(&["label", "configmap", "settings", "changed-by=someone-else"]).await?;

    // ...so our update, carrying the resourceVersion we read, is refused.
    let mut stale = read.clone();
    stale["data"]["color"] = "red".into();
    let stale_file = server.write_file("stale.json", &stale.to_string())?;
    let replaced = kubectl.run(&["replace", "-f", &stale_file]).await?;
    assert!(!replaced.success(), "{replaced}");
    assert!(replaced.stderr.contains("Error from server (Conflict)"), "{replaced}");
    assert!(
        replaced.stderr.contains(r#"Operation cannot be fulfilled on configmaps "settings": the object has been modified; please apply your changes to the latest version and try again"#),
        "{replaced}"
    );
    let now = get_json(&server, &["configmap", "settings"]).await?;
    assert_eq!(now["data"]["color"], "blue", "the stale write changed nothing");

    // With the current resourceVersion the same replace goes through.
    let mut fresh = now.clone();
    fresh["data"]["color"] = "red".into();
    let fresh_file = server.write_file("fresh.json", &fresh.to_string())?;
    let replaced = kubectl.run(&["replace", "-f", &fresh_file]).await?;
    assert!(replaced.success(), "{replaced}");
    assert_eq!(replaced.lines(), ["configmap/settings replaced"], "{replaced}");
    assert_eq!(get_json(&server, &["configmap", "settings"]).await?["data"]["color"], "red");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_watch_shows_changes_made_afterwards() -> anyhow::Result<()> {
    let (server, _) = server_with_shop().await?;
    let kubectl = server.kubectl();

    let mut configmaps = kubectl.watch(&["get", "configmaps", "-n", "shop", "-w"])?;
    configmaps.line("the header", WATCH_TIMEOUT, |l| l.starts_with("NAME")).await?;
    configmaps.line("the existing configmap", WATCH_TIMEOUT, |l| l.starts_with("web-config ")).await?;
    let mut deployment = kubectl.watch(&["get", "deployment", "web", "-n", "shop", "-w"])?;
    deployment.line("the deployment's row", WATCH_TIMEOUT, |l| l.starts_with("web ")).await?;

    kubectl
        .ok(&[
            "apply",
            "-f",
            &server.write_file(
                "late.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: late\n  namespace: shop\ndata:\n  a: b\n",
            )?,
        ])
        .await?;
    let row = configmaps
        .line("a row for the configmap created after the watch started", WATCH_TIMEOUT, |l| l.starts_with("late "))
        .await?;
    assert_eq!(row.split_whitespace().nth(1), Some("1"), "DATA column: {row}");

    kubectl.ok(&["scale", "deployment", "web", "-n", "shop", "--replicas=5"]).await?;
    let row = deployment
        .line("the deployment's row after scaling to 5", WATCH_TIMEOUT, |l| l.starts_with("web ") && l.contains("/5"))
        .await?;
    assert_eq!(row.split_whitespace().nth(1), Some("0/5"), "READY column: {row}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_f_removes_every_object_and_get_then_says_not_found() -> anyhow::Result<()> {
    let (server, manifest) = server_with_shop().await?;
    let kubectl = server.kubectl();
    // A namespace is removed by the namespace controller once it is empty, as in Kubernetes: run the
    // controller-manager beside the apiserver. (Aborted when the test ends.)
    let controllers = server.spawn_controller_manager()?;

    // The objects first, from the same manifest without its Namespace document: deleting the namespace at the
    // same time would race kubectl (the namespace controller may remove an object before kubectl asks for it).
    let text = std::fs::read_to_string(&manifest)?;
    let objects: Vec<&str> = text.split("\n---").filter(|doc| !doc.contains("kind: Namespace")).collect();
    let objects_manifest = std::path::Path::new(&manifest).with_file_name("shop-objects.yaml");
    std::fs::write(&objects_manifest, objects.join("\n---"))?;
    let deleted = kubectl.run(&["delete", "-f", &objects_manifest.to_string_lossy()]).await?;
    assert!(deleted.success(), "{deleted}");
    assert_eq!(
        deleted.lines(),
        [
            r#"configmap "web-config" deleted"#,
            r#"deployment.apps "web" deleted"#,
            r#"service "web" deleted"#,
            r#"lease.coordination.k8s.io "web-leader" deleted"#,
        ],
        "{deleted}"
    );
    // Then the namespace: kubectl waits until the namespace controller has emptied it and it is gone.
    let deleted = match kubectl.run(&["delete", "namespace", "shop"]).await {
        Ok(deleted) => deleted,
        Err(err) => {
            let left = kubectl.run(&["get", "namespace", "shop", "-o", "yaml"]).await?;
            anyhow::bail!("{err:#}\nthe namespace is left as:\n{}", left.stdout);
        }
    };
    assert!(deleted.success(), "{deleted}");
    assert_eq!(deleted.lines(), [r#"namespace "shop" deleted"#], "{deleted}");

    // kubectl 1.32, on a 404 in a namespace, asks for the namespace too and reports that one when it is gone:
    // exactly what a real cluster shows once the namespace controller has finished.
    for target in ["configmap/web-config", "deployment/web", "service/web", "lease/web-leader", "namespace/shop"] {
        let get = kubectl.run(&["get", "-n", "shop", target]).await?;
        assert!(!get.success(), "{get}");
        assert!(get.stderr.contains(r#"Error from server (NotFound): namespaces "shop" not found"#), "{get}");
    }
    drop(controllers);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_namespace_configmap_and_deployment_work_with_protobuf_bodies() -> anyhow::Result<()> {
    let server = spawn_apiserver().await?;
    let kubectl = server.kubectl();

    assert_eq!(kubectl.ok(&["create", "namespace", "team-a"]).await?.trim(), "namespace/team-a created");
    let created = kubectl
        .ok(&[
            "create",
            "configmap",
            "app-settings",
            "-n",
            "team-a",
            "--from-literal=color=blue",
            "--from-literal=size=10",
        ])
        .await?;
    assert_eq!(created.trim(), "configmap/app-settings created");
    let created = kubectl
        .ok(&["create", "deployment", "hello", "-n", "team-a", "--image=nginx:1.27", "--replicas=2", "--port=80"])
        .await?;
    assert_eq!(created.trim(), "deployment.apps/hello created");

    let namespace = get_json(&server, &["namespace", "team-a"]).await?;
    assert_eq!(namespace["status"]["phase"], "Active", "{namespace:#}");
    let configmap = get_json(&server, &["configmap", "app-settings", "-n", "team-a"]).await?;
    assert_eq!(configmap["data"], serde_json::json!({"color": "blue", "size": "10"}), "{configmap:#}");
    let deployment = get_json(&server, &["deployment", "hello", "-n", "team-a"]).await?;
    assert_eq!(deployment["spec"]["replicas"], 2, "{deployment:#}");
    assert_eq!(deployment["spec"]["selector"]["matchLabels"], serde_json::json!({"app": "hello"}), "{deployment:#}");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "nginx:1.27", "{deployment:#}");
    assert_eq!(container["ports"][0]["containerPort"], 80, "{deployment:#}");

    let again = kubectl.run(&["create", "namespace", "team-a"]).await?;
    assert!(
        again.stderr.contains(r#"Error from server (AlreadyExists): namespaces "team-a" already exists"#),
        "{again}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_changes_the_replicas() -> anyhow::Result<()> {
    let (server, _) = server_with_shop().await?;
    let kubectl = server.kubectl();
    let replicas =
        || async { kubectl.ok(&["get", "deploy", "web", "-n", "shop", "-o", "jsonpath={.spec.replicas}"]).await };

    // A merge patch to deployments/web/scale.
    assert_eq!(
        kubectl.ok(&["scale", "deploy", "web", "-n", "shop", "--replicas=5"]).await?.trim(),
        "deployment.apps/web scaled"
    );
    assert_eq!(replicas().await?, "5");

    // With --current-replicas, kubectl reads the Scale and writes it back with PUT.
    let scaled = kubectl.ok(&["scale", "deploy/web", "-n", "shop", "--current-replicas=5", "--replicas=2"]).await?;
    assert_eq!(scaled.trim(), "deployment.apps/web scaled");
    assert_eq!(replicas().await?, "2");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_resources_lists_our_kinds_with_their_short_names() -> anyhow::Result<()> {
    let server = spawn_apiserver().await?;
    let out = server.kubectl().ok(&["api-resources"]).await?;
    let printed = tables(&out);
    assert_eq!(printed[0].header_line(), "NAME SHORTNAMES APIVERSION NAMESPACED KIND", "{out}");
    for expected in [
        "configmaps cm v1 true ConfigMap",
        "endpoints ep v1 true Endpoints",
        "events ev v1 true Event",
        "namespaces ns v1 false Namespace",
        "nodes no v1 false Node",
        "pods po v1 true Pod",
        "services svc v1 true Service",
        "deployments deploy apps/v1 true Deployment",
        "replicasets rs apps/v1 true ReplicaSet",
        "leases coordination.k8s.io/v1 true Lease",
    ] {
        let found = printed[0].rows.iter().any(|row| row.join(" ") == expected);
        assert!(found, "`kubectl api-resources` has no row `{expected}`:\n{out}");
    }

    // The short names work where a user types them.
    let all = server.kubectl().run(&["get", "po,deploy,rs,svc,cm,ep,ev", "-n", "default"]).await?;
    assert!(all.success(), "{all}");
    Ok(())
}
