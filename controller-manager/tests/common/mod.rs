//! Helpers shared by the controller-manager's scenario tests (each test binary uses a part of them). The
//! apiserver, kubectl and waiting come from `kubelab-testkit`, as for every component's tests; what is here is
//! what only these scenarios need: a [`Cluster`] running the controllers a test picks, reading objects by kind,
//! and conditions.
#![allow(dead_code)]

use anyhow::Context;
use kubelab_api::client::{Client, ClientError};
use kubelab_api::resources::{self, Resource};
use kubelab_controller_manager::Config;
use kubelab_controller_manager::controller::{Controller, start};
use kubelab_testkit::{TestServer, spawn_apiserver};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::task::JoinSet;

/// How long any single wait of these scenarios may take.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// The served resource of a kind.
pub fn resource(kind: &str) -> anyhow::Result<&'static Resource> {
    resources::RESOURCES.iter().find(|r| r.kind == kind).with_context(|| format!("no resource for {kind}"))
}

/// A status condition of `object` by type.
pub fn condition(object: &Value, type_: &str) -> Option<Value> {
    object.pointer("/status/conditions")?.as_array()?.iter().find(|c| c["type"] == type_).cloned()
}

/// Kubernetes' defaults, but a controller waits at most 5 s for its caches to show its own writes.
pub fn config() -> Config {
    Config { cache_timeout: Duration::from_secs(5), ..Default::default() }
}

/// An apiserver on a free port with its data in a temporary directory, and the controllers a test runs against
/// it. Everything stops when the test ends, passed or failed: the controllers and the server are tasks of the
/// test's runtime, and the directory is deleted on drop.
pub struct Cluster {
    pub client: Client,
    pub server: TestServer,
    /// The running controllers; a `JoinSet` aborts them when dropped.
    controllers: JoinSet<Result<(), kubelab_controller_manager::Error>>,
}

impl Cluster {
    /// An apiserver with no controller yet: [`Cluster::run`] starts each one the test needs.
    pub async fn start() -> anyhow::Result<Cluster> {
        let server = spawn_apiserver().await?;
        let client = server.client()?;
        Ok(Cluster { client, server, controllers: JoinSet::new() })
    }

    /// Starts controller `C` against the apiserver, as the controller manager would.
    pub fn run<C: Controller>(&mut self, config: &Config) {
        self.controllers.spawn(start::<C>(self.client.clone(), config.clone()));
    }

    /// Creates an object of `kind` from `body`, which need not say its `apiVersion` and `kind`.
    pub async fn create(&self, namespace: Option<&str>, kind: &str, mut body: Value) -> anyhow::Result<Value> {
        let resource = resource(kind)?;
        body["apiVersion"] = json!(resource.api_version());
        body["kind"] = json!(kind);
        Ok(self.client.create(resource, namespace, &body).await?)
    }

    /// The object, or `None` once it is gone.
    pub async fn get(&self, namespace: Option<&str>, kind: &str, name: &str) -> anyhow::Result<Option<Value>> {
        match self.client.get(resource(kind)?, namespace, name).await {
            Ok(object) => Ok(Some(object)),
            Err(ClientError::Api(err)) if err.code == 404 => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    /// Runs the real kubectl against this cluster and fails unless it succeeds; returns its stdout.
    pub async fn kubectl(&self, args: &[&str]) -> anyhow::Result<String> {
        self.server.kubectl().ok(args).await
    }
}
