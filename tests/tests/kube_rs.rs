//! kube-rs, a Kubernetes client nobody here wrote, against the kubelab apiserver.
//!
//! kube-rs decodes responses into the `k8s-openapi` types and is strict about the wire format: every object and
//! list needs `apiVersion` and `kind`, lists a `resourceVersion`, errors a `Status`, watches newline-delimited
//! events. Passing these tests means a Rust controller written for Kubernetes works against kubelab unchanged.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Container, ContainerPort, Namespace, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::Api;
use kube::api::{ListParams, PostParams, WatchEvent, WatchParams};
use kubelab_tests::spawn_apiserver;

fn configmap(name: &str, data: &[(&str, &str)]) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta { name: Some(name.into()), ..Default::default() },
        data: Some(data.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_lists_gets_and_creates() -> anyhow::Result<()> {
    let server = spawn_apiserver().await?;
    let client = server.kube_client()?;

    let namespaces: Api<Namespace> = Api::all(client.clone());
    let list = namespaces.list(&ListParams::default()).await?;
    let names: Vec<String> = list.items.iter().filter_map(|ns| ns.metadata.name.clone()).collect();
    assert!(names.contains(&"default".to_string()), "{names:?}");
    assert!(list.metadata.resource_version.is_some_and(|rv| !rv.is_empty()), "a list carries its resourceVersion");

    let configmaps: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let created = configmaps.create(&PostParams::default(), &configmap("settings", &[("color", "blue")])).await?;
    assert!(created.metadata.uid.is_some() && created.metadata.resource_version.is_some(), "{created:?}");
    let got = configmaps.get("settings").await?;
    assert_eq!(got.data, Some(BTreeMap::from([("color".to_string(), "blue".to_string())])));
    assert_eq!(got.metadata.uid, created.metadata.uid);
    let listed = configmaps.list(&ListParams::default()).await?;
    assert_eq!(listed.items.iter().filter_map(|cm| cm.metadata.name.as_deref()).collect::<Vec<_>>(), ["settings"]);

    // A typed Deployment round-trips through the k8s-openapi types, defaults filled in by the server.
    let labels = BTreeMap::from([("app".to_string(), "web".to_string())]);
    let deployment = Deployment {
        metadata: ObjectMeta { name: Some("web".into()), ..Default::default() },
        spec: Some(DeploymentSpec {
            replicas: Some(2),
            selector: LabelSelector { match_labels: Some(labels.clone()), ..Default::default() },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta { labels: Some(labels), ..Default::default() }),
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: "nginx".into(),
                        image: Some("nginx:1.27".into()),
                        ports: Some(vec![ContainerPort { container_port: 80, ..Default::default() }]),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    };
    let deployments: Api<Deployment> = Api::default_namespaced(client);
    deployments.create(&PostParams::default(), &deployment).await?;
    let got = deployments.get("web").await?;
    let spec = got.spec.expect("a deployment has a spec");
    assert_eq!(spec.replicas, Some(2));
    let container = &spec.template.spec.expect("a pod template has a spec").containers[0];
    assert_eq!(container.image.as_deref(), Some("nginx:1.27"));
    assert_eq!(
        container.ports.as_ref().map(|p| (p[0].container_port, p[0].protocol.clone())),
        Some((80, Some("TCP".into())))
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_watch_sees_an_object_created_after_it_started() -> anyhow::Result<()> {
    let server = spawn_apiserver().await?;
    let configmaps: Api<ConfigMap> = Api::default_namespaced(server.kube_client()?);
    configmaps.create(&PostParams::default(), &configmap("before", &[])).await?;

    // List, then watch from the list's resourceVersion: the informer pattern.
    let list = configmaps.list(&ListParams::default()).await?;
    let version = list.metadata.resource_version.clone().unwrap_or_default();
    let mut events = configmaps.watch(&WatchParams::default().timeout(60), &version).await?.boxed();

    configmaps.create(&PostParams::default(), &configmap("after", &[("k", "v")])).await?;
    let added = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(event) = events.try_next().await? {
            match event {
                WatchEvent::Added(cm) if cm.metadata.name.as_deref() == Some("after") => return Ok(cm),
                WatchEvent::Error(status) => anyhow::bail!("the watch failed: {status:?}"),
                _ => {}
            }
        }
        anyhow::bail!("the watch ended without an ADDED event for `after`")
    })
    .await
    .map_err(|_| anyhow::anyhow!("no ADDED event for `after` within 30s"))??;
    assert_eq!(added.data, Some(BTreeMap::from([("k".to_string(), "v".to_string())])));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_maps_a_missing_object_to_an_api_error_404() -> anyhow::Result<()> {
    let server = spawn_apiserver().await?;
    let configmaps: Api<ConfigMap> = Api::default_namespaced(server.kube_client()?);
    match configmaps.get("missing").await {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 404, "{status:?}");
            assert_eq!(status.reason, "NotFound", "{status:?}");
            assert_eq!(status.message, r#"configmaps "missing" not found"#, "{status:?}");
        }
        other => panic!("expected Error::Api with code 404, got {other:?}"),
    }
    // `get_opt` is how controllers ask "does it exist?": it turns that 404 into `None`.
    assert!(configmaps.get_opt("missing").await?.is_none());
    Ok(())
}
