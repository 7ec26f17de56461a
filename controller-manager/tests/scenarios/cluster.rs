//! A cluster without nodes for one test: a real apiserver, the controller manager, and a fake kubelet.
//!
//! Nothing runs containers here. Like [kwok](https://kwok.sigs.k8s.io), the test plays the kubelet: a small task
//! watches pods and reports each one `Running` and `Ready` through the `status` subresource, exactly as a
//! kubelet would once its containers pass their readiness probes. Images whose name contains `does-not-exist`
//! never become ready, as if their pull failed. Everything is started on a free port in a fresh temporary
//! directory, and stopped when the [`Cluster`] is dropped (tasks aborted, directory removed), even when the test
//! fails half-way.

use anyhow::{Context, bail, ensure};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kubelab_api::client::{Client, ListParams, PatchType};
use kubelab_api::informer::Informer;
use kubelab_api::resources;
use kubelab_controller_manager::Config;
use serde_json::{Value, json};
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;
use tokio::task::JoinHandle;

/// How long a test waits for the cluster to converge. Generous: the machine may be busy with other builds.
pub const CONVERGE: Duration = Duration::from_secs(90);

/// A running cluster for one test.
pub struct Cluster {
    pub client: Client,
    server: Option<kubelab_apiserver::RunningServer>,
    kubeconfig: PathBuf,
    /// The controller manager and the fake kubelet: aborted on drop.
    tasks: Vec<JoinHandle<()>>,
    /// Declared last: removed after everything that uses it.
    dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts an apiserver, the controller manager (with `config`) and the fake kubelet.
    pub async fn start(config: Config) -> anyhow::Result<Cluster> {
        let _ = tracing_subscriber::fmt().with_env_filter(tracing_filter()).with_test_writer().try_init();
        let dir = tempfile::Builder::new().prefix("kubelab-cm-").tempdir()?;
        let server_config = kubelab_apiserver::Config::new("127.0.0.1:0".parse()?, dir.path().join("data"));
        let server = kubelab_apiserver::start(server_config).await.context("starting the apiserver")?;
        let kubeconfig = dir.path().join("kubeconfig");
        kubelab_api::kubeconfig::write_kubeconfig(&kubeconfig, &server.url(), "kubelab-test")?;
        let client = Client::new(&server.url())?;
        let mut cluster = Cluster { client: client.clone(), server: Some(server), kubeconfig, tasks: Vec::new(), dir };
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
        let (ok, stdout, stderr) = self.kubectl_status(args).await?;
        if !ok {
            bail!("kubectl {} failed:\n{stdout}{stderr}", args.join(" "));
        }
        Ok(stdout)
    }

    /// Runs kubectl; returns whether it succeeded, its stdout and its stderr.
    pub async fn kubectl_status(&self, args: &[&str]) -> anyhow::Result<(bool, String, String)> {
        let output = tokio::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.dir.path().join("kubectl-cache"))
            .args(args)
            .env_remove("KUBECONFIG")
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(Duration::from_secs(120), output)
            .await
            .with_context(|| format!("kubectl {} did not finish", args.join(" ")))?
            .context("running kubectl: is it on the PATH?")?;
        let text = |bytes: Vec<u8>| String::from_utf8_lossy(&bytes).into_owned();
        Ok((output.status.success(), text(output.stdout), text(output.stderr)))
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
        if let Some(server) = self.server.take() {
            server.shutdown().await?;
        }
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn tracing_filter() -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into())
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
        let now = json!(Time(kubelab_controller_manager::controller::now()));
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

/// Calls `check` until it returns `Ok`, and returns that value; after `timeout`, fails saying what was awaited
/// and what the last check said.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = String::from("never checked");
    loop {
        match tokio::time::timeout_at(deadline, check()).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(not_yet)) => last = format!("{not_yet:#}"),
            Err(_) => last = format!("the last check was still running at the deadline ({last})"),
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}; last check: {last}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
