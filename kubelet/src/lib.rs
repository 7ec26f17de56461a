//! # kubelab-kubelet: the agent on every node
//!
//! The scheduler decides *where* a pod runs by writing a node's name into `spec.nodeName`; nothing runs yet.
//! The **kubelet** of that node is what makes it real. It is the only component that touches containers: it
//! watches the pods bound to its node, runs them through the container runtime, and reports back — the pod's
//! status, and its own node's existence and health. It mirrors Kubernetes' `kubelet` (`pkg/kubelet`), with
//! Docker behind a small CRI-like trait where the real one speaks the CRI to containerd or CRI-O.
//!
//! ## What it watches and what it writes
//! - watches **Pods** with `fieldSelector=spec.nodeName=<node>` (an informer), and the runtime's container events;
//!   at start, its own **Node** until the controller manager gives it a pod CIDR ([`network`]);
//! - writes the **Node** (registration, then its status: capacity, addresses, condition `Ready`), the **Lease**
//!   `kube-node-lease/<node>` (the heartbeat), each pod's **status** (through the `status` subresource, never
//!   the spec), **Events** (`Pulled`, `Created`, `Started`, `Killing`, `BackOff`, `Unhealthy`...), and deletes
//!   the Pod objects whose graceful deletion it has completed;
//! - serves `/containerLogs` (what `kubectl logs` reaches through the apiserver) and the read-only `/pods`,
//!   `/spec`, `/healthz`.
//!
//! ## The modules, in reading order
//! - [`runtime`]: the runtime trait (our CRI); [`docker`] implements it; [`labels`] is how containers remember
//!   their pod; [`images`] builds the local busybox and pause images (from a static busybox only);
//! - the pure core, no I/O: [`sync`] (what to do for a pod: `sync_actions`), [`status`] (what to report:
//!   `pod_status`), [`backoff`], [`probes`] (probe verdicts), [`container_config`] (pod spec → runtime config);
//! - the shell: [`pods`] (one worker per pod, woken by the informer and the runtime), [`worker`] (observe →
//!   decide → act → report), [`sandbox`] (running the sandbox, and why it died), [`start`] (image pulls and
//!   container starts), [`prober`] (probe tasks), [`node`] (registration, lease and status heartbeats),
//!   [`network`] (the node's pod CIDR, and each pod's address in it),
//!   [`machine`] (the host), [`server`] (HTTP), [`config`].
//!
//! ## What we leave out
//! Init containers, ephemeral and sidecar containers; startup probes and lifecycle hooks; `envFrom`, configMap,
//! secret and persistent volumes; CNI (Docker's bridge plays the plugin, [`network`] the `host-local` IPAM) and cgroups per pod; eviction under memory
//! or disk pressure; static pods; TLS and authentication on the kubelet's ports; exec, attach and port-forward;
//! image garbage collection; the status manager's batching. Where a pod asks for init containers, a startup
//! probe, `envFrom`, lifecycle hooks, a `securityContext`, the host's namespaces or an unsupported volume, the
//! container is not started: it waits with reason `CreateContainerConfigError` and a message naming the field's
//! path (`spec.initContainers`), with a Warning event — never run as if the field were not there
//! ([`container_config::unsupported_fields`]). A sandbox that cannot run is reported with its own exit code and
//! output ([`sandbox`]).
//!
//! Book chapter: "The kubelet and the container runtime".

pub mod backoff;
pub mod clock;
pub mod config;
pub mod container_config;
pub mod context;
pub mod docker;
pub mod error;
pub mod images;
pub mod labels;
pub mod machine;
pub mod network;
pub mod node;
pub mod pods;
pub mod prober;
pub mod probes;
pub mod runtime;
pub mod sandbox;
pub mod server;
pub mod start;
pub mod status;
pub mod sync;
pub mod worker;

#[cfg(test)]
mod fixtures;

pub use config::Config;
pub use error::KubeletError;

use anyhow::Context as _;
use context::Context;
use kubelab_api::client::ListParams;
use kubelab_api::events::Recorder;
use kubelab_api::informer::Informer;
use runtime::Runtime;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

// ANCHOR: run
/// Runs a kubelet until its task is aborted (or a part of it fails).
///
/// Aborting stops the kubelet, not its pods: containers keep running, and a kubelet started again for the same
/// node adopts them.
pub async fn run(config: Config) -> anyhow::Result<()> {
    config.validate()?;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create the data directory {}", config.data_dir.display()))?;

    // The container runtime: Docker and the local images.
    let docker = docker::connect().await?;
    for image in images::ensure_local_images(&docker).await? {
        tracing::info!(image, "built missing local image");
    }
    let runtime_version = docker::runtime_version(&docker).await?;

    // The servers are bound first: the Node must report the port the kubelet really listens on.
    let api = TcpListener::bind((config.address, config.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", config.address, config.port))?;
    let read_only = TcpListener::bind((config.address, config.read_only_port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", config.address, config.read_only_port))?;

    // Registration, then the Lease heartbeat: the node is alive, even while its network is not ready.
    let mut facts = node::NodeFacts {
        name: config.node_name.clone(),
        address: config.address.to_string(),
        pod_cidr: config.pod_cidr,
        kubelet_port: api.local_addr()?.port(),
        runtime_version,
        machine: machine::MachineInfo::read(),
    };
    let registered = register(&config, &facts).await;
    let node_uid = registered.metadata.uid.clone().unwrap_or_default();
    let mut tasks: JoinSet<anyhow::Result<()>> = JoinSet::new();
    let (lease_config, status_config) = (config.clone(), config.clone());
    tasks.spawn(async move {
        node::renew_lease(lease_config, node_uid).await;
        Ok(())
    });

    // The pod network: the Node's pod CIDR (waiting for the controller manager to assign it), then the Docker
    // network the pods join. Only then is the node Ready.
    let pod_cidr = network::wait_for_pod_cidr(&config, &registered).await?;
    if config.pod_cidr.is_some_and(|asked| asked != pod_cidr) {
        tracing::warn!(node = %config.node_name, %pod_cidr, "--pod-cidr differs from the Node's spec.podCIDR: using the Node's");
    }
    facts.pod_cidr = Some(pod_cidr);
    let runtime = docker::DockerRuntime::new(docker, &config.node_name, &config.network, pod_cidr).await?;
    let status = registered.status.unwrap_or_default();
    tasks.spawn(async move {
        node::report_status(status_config, facts, status).await;
        Ok(())
    });

    // The pods bound to this node, and what every part of the kubelet shares.
    let pods = kubelab_api::resources::by_kind("v1", "Pod").context("kubelab-api does not serve pods")?;
    let selector = ListParams::default().fields(format!("spec.nodeName={}", config.node_name));
    let informer = Informer::spawn(config.client.clone(), pods, None, selector);
    let ctx = Arc::new(Context {
        recorder: Recorder::new(config.client.clone(), "kubelet").on_host(&config.node_name),
        runtime: Arc::new(runtime) as Arc<dyn Runtime>,
        pods: informer.cache.clone(),
        probes: Mutex::default(),
        http: reqwest::Client::builder().no_proxy().build().context("cannot build the probe HTTP client")?,
        config,
    });
    tasks.spawn(serve(api, server::api(ctx.clone())));
    tasks.spawn(serve(read_only, server::read_only(ctx.clone())));
    tracing::info!(node = %ctx.config.node_name, "kubelet running");

    tokio::select! {
        result = pods::dispatch(ctx, informer) => Ok(result?),
        Some(ended) = tasks.join_next() => match ended {
            Ok(Ok(())) => anyhow::bail!("a kubelet task ended unexpectedly"),
            Ok(Err(err)) => Err(err),
            Err(err) => Err(err.into()),
        },
    }
}
// ANCHOR_END: run

/// Registers the node, retrying while the apiserver cannot be reached (a kubelet may start before it).
async fn register(config: &Config, facts: &node::NodeFacts) -> k8s_openapi::api::core::v1::Node {
    let mut delay = Duration::from_millis(500);
    loop {
        match node::register(config, facts).await {
            Ok(node) => return node,
            Err(err) => tracing::warn!(error = %err, "cannot register the node yet; retrying"),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(10));
    }
}

async fn serve(listener: TcpListener, router: axum::Router) -> anyhow::Result<()> {
    axum::serve(listener, router).await.context("kubelet server stopped")
}
