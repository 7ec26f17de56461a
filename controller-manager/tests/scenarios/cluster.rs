//! A cluster without nodes for one test: a real apiserver, the controller manager, and a fake kubelet.
//!
//! Nothing runs containers here. Like [kwok](https://kwok.sigs.k8s.io), the test plays the kubelet: a small task
//! watches pods and reports each one `Running` and `Ready` through the `status` subresource, exactly as a
//! kubelet would once its containers pass their readiness probes. Images whose name contains `does-not-exist`
//! never become ready, as if their pull failed. The apiserver is the testkit's, on a free port in a fresh
//! temporary directory; everything is stopped when the [`Cluster`] is dropped (tasks aborted, directory removed),
//! even when the test fails half-way.

use anyhow::{Context, ensure};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kubelab_api::client::{Client, ListParams, PatchType};
use kubelab_api::informer::Informer;
use kubelab_api::resources;
use kubelab_controller_manager::Config;
use kubelab_testkit::{TestServer, spawn_apiserver, wait_for};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::task::JoinHandle;

/// How long a test waits for the cluster to converge. Generous: the machine may be busy with other builds.
pub const CONVERGE: Duration = Duration::from_secs(90);

/// A running cluster for one test.
pub struct Cluster {
    pub client: Client,
    /// The controller manager and the fake kubelet: aborted on drop.
    tasks: Vec<JoinHandle<()>>,
    /// Declared last: its directory is removed after everything that uses it.
    server: TestServer,
}

impl Cluster {
    /// Starts an apiserver, the controller manager (with `config`) and the fake kubelet.
    pub async fn start(config: Config) -> anyhow::Result<Cluster> {
        let server = spawn_apiserver().await?;
        let client = server.client()?;
        let mut cluster = Cluster { client: client.clone(), tasks: Vec::new(), server };
        cluster.tasks.push(tokio::spawn({
            let client = client.clone();
            async move {
                if let Err(err) = kubelab_controller_manager::run(client, config).await {
                    tracing::error!("controller manager stopped: {err:#}");
                }
            }
        }));
        cluster.tasks.push(tokio::spawn(fake_kubelet(client)));
        cluster.wait_until_controllers_run().await?;
        Ok(cluster)
    }

    /// Waits until the ReplicaSet controller has synced its caches and acts, so that a test's first objects
    /// are not raced by the controllers' initial lists: an empty ReplicaSet in `kube-system` gets its status.
    async fn wait_until_controllers_run(&self) -> anyhow::Result<()> {
        let probe = json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "probe", "namespace": "kube-system"},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"probe": "yes"}},
                     "template": {"metadata": {"labels": {"probe": "yes"}},
                                  "spec": {"containers": [{"name": "probe", "image": "probe"}]}}}
        });
        let replica_sets = resources::by_kind("apps/v1", "ReplicaSet").context("ReplicaSets")?;
        self.client.create(replica_sets, Some("kube-system"), &probe).await?;
        wait_for("the controllers to start", CONVERGE, || async {
            let rs = self.client.get(replica_sets, Some("kube-system"), "probe").await?;
            ensure!(rs.pointer("/status/observedGeneration").is_some(), "no status yet");
            Ok(())
        })
        .await
    }

    /// Runs the real kubectl against this cluster; returns stdout, or fails with everything kubectl said.
    pub async fn kubectl(&self, args: &[&str]) -> anyhow::Result<String> {
        self.server.kubectl().ok(args).await
    }

    /// Runs kubectl; returns whether it succeeded, its stdout and its stderr.
    pub async fn kubectl_status(&self, args: &[&str]) -> anyhow::Result<(bool, String, String)> {
        let run = self.server.kubectl().run(args).await?;
        Ok((run.success(), run.stdout, run.stderr))
    }

    /// Creates an object from its JSON manifest.
    pub async fn create(&self, manifest: Value) -> anyhow::Result<Value> {
        let resource = resources::by_kind(
            manifest["apiVersion"].as_str().unwrap_or_default(),
            manifest["kind"].as_str().unwrap_or_default(),
        )
        .context("a kind kubelab serves")?;
        Ok(self.client.create(resource, Some("default"), &manifest).await?)
    }

    /// Stops the apiserver cleanly (the tasks and the directory go on drop).
    pub async fn stop(mut self) -> anyhow::Result<()> {
        for task in &self.tasks {
            task.abort();
        }
        self.server.stop().await
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Plays the kubelet of every node: each new pod is reported running and ready, unless its image "does not
/// exist".
async fn fake_kubelet(client: Client) {
    let Some(pods) = resources::by_kind("v1", "Pod") else { return };
    let mut informer = Informer::spawn(client.clone(), pods, None, ListParams::default());
    while let Some(key) = informer.changed.recv().await {
        let Some(pod) = informer.cache.get_typed::<Pod>(&key) else { continue };
        let ready = kubelab_controller_manager::replicaset::pods::is_ready(&pod);
        let image = pod.spec.as_ref().and_then(|s| s.containers.first()).and_then(|c| c.image.clone());
        let image = image.unwrap_or_default();
        if ready || pod.metadata.deletion_timestamp.is_some() || image.contains("does-not-exist") {
            continue;
        }
        let now = json!(Time(kubelab_api::time::now()));
        let condition = |type_: &str| json!({"type": type_, "status": "True", "lastTransitionTime": now});
        let status = json!({"status": {
            "phase": "Running",
            "startTime": now,
            "conditions": [condition("PodScheduled"), condition("Initialized"), condition("ContainersReady"),
                           condition("Ready")],
            "containerStatuses": [{"name": "web", "image": image, "imageID": "", "ready": true, "started": true,
                                   "restartCount": 0, "state": {"running": {"startedAt": now}}}],
        }});
        let name = pod.metadata.name.unwrap_or_default();
        let namespace = pod.metadata.namespace.as_deref();
        if let Err(err) = client.patch_status(pods, namespace, &name, PatchType::Merge, &status).await {
            tracing::debug!("fake kubelet: {name}: {err}");
        }
    }
}
