//! # kubelab-controller-manager: where declared state becomes actual state
//!
//! A user writes *what* they want — "a Deployment of 4 pods running `web:2`" — and nothing in the apiserver
//! makes it so: it only stores the wish. The controller manager is the process that acts on wishes. It runs a set
//! of **controllers**, each a loop that watches some kinds of objects through the apiserver, compares what is
//! asked for with what exists, and writes whatever brings the two closer: a Deployment controller creates
//! ReplicaSets, a ReplicaSet controller creates pods, the scheduler (elsewhere) binds them to nodes, the kubelet
//! runs them. No controller calls another: they only read and write objects, and react to each other's writes.
//!
//! ## The modules, in reading order
//! - [`controller`]: the shape every controller shares — informers feeding a deduplicating, rate-limited work
//!   queue of keys; a pure `reconcile` from cached state to actions; a thin shell applying them;
//! - [`replicaset`]: keeps `spec.replicas` pods running from a template (adopts, releases, creates, deletes,
//!   reports status);
//! - [`deployment`]: rolls ReplicaSets forward and back — rolling updates within `maxSurge` and
//!   `maxUnavailable`, Recreate, revisions, rollback, pause, progress deadline;
//! - [`garbage_collector`], [`namespace`], [`node_lifecycle`] and [`leader`]: the controllers that clean up and
//!   keep the cluster alive, and leader election among controller managers;
//! - [`node_ipam`]: gives each Node its slice of the pod network (`spec.podCIDR`);
//! - [`endpoints`]: the Endpoints and EndpointSlice controllers — which pods stand behind each Service.
//!
//! ## What it watches and writes
//! Watches Deployments, ReplicaSets and pods (and, for the other controllers, nodes, leases, namespaces, Services
//! and every owned kind). Writes ReplicaSets, pods, Endpoints, EndpointSlices, the `status` of Deployments and
//! ReplicaSets, and Events, always through the apiserver (a [`kubelab_api::client::Client`]).
//!
//! ## Upstream
//! Mirrors `kube-controller-manager` (`cmd/kube-controller-manager`, `pkg/controller/*`), with the same
//! reasons, messages and defaults, so that `kubectl rollout status`, `describe` and `get -o wide` read the same.
//!
//! ## What we leave out
//! The other ~30 controllers (StatefulSet, DaemonSet, Job, CronJob, HPA, service accounts...),
//! shared informers, metrics, and per-controller flags beyond those in [`Config`].
//!
//! Book chapters: "The controller manager", "Garbage collection, namespaces, nodes and leaders" and
//! "Deployments and rolling updates".

pub mod controller;
pub mod deployment;
pub mod endpoints;
pub mod garbage_collector;
pub mod leader;
pub mod namespace;
pub mod node_ipam;
pub mod node_lifecycle;
pub mod replicaset;

pub use controller::Error;

use controller::start;
use deployment::DeploymentController;
use endpoints::{EndpointSliceController, EndpointsController};
use garbage_collector::GarbageCollector;
use kubelab_api::client::Client;
use namespace::NamespaceController;
use node_ipam::NodeIpamController;
use node_lifecycle::NodeLifecycleController;
use replicaset::ReplicaSetController;
use std::time::Duration;

// ANCHOR: config
/// How the controllers run. Every default is Kubernetes' own; tests shorten timings here, never by sleeping.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// ReplicaSets reconciled in parallel (`--concurrent-replicaset-syncs`, 5).
    pub replicaset_workers: usize,
    /// Deployments reconciled in parallel (`--concurrent-deployment-syncs`, 5).
    pub deployment_workers: usize,
    /// Objects the garbage collector looks at in parallel (`--concurrent-gc-syncs`, 20).
    pub garbage_collector_workers: usize,
    /// Namespaces emptied in parallel (`--concurrent-namespace-syncs`, 10).
    pub namespace_workers: usize,
    /// Delay of a failed key's first retry; it doubles with each failure (client-go: 5 ms).
    pub retry_base_delay: Duration,
    /// The longest delay between retries of a failing key (client-go: 1000 s).
    pub retry_max_delay: Duration,
    /// How long a controller waits for its caches to show its own writes (Kubernetes' expectations: 5 min).
    pub cache_timeout: Duration,
    /// Whether the ReplicaSet controller creates pods in batches of 1, 2, 4... (Kubernetes: always).
    pub slow_start: bool,
    /// When a silent node becomes `Unknown`, and when its pods are evicted.
    pub node_lifecycle: node_lifecycle::NodeLifecycleConfig,
    /// How often a terminating namespace is looked at again.
    pub namespace: namespace::NamespaceTimings,
    /// The pod network and the size of each node's slice (`--cluster-cidr`, `--node-cidr-mask-size`).
    pub node_ipam: node_ipam::NodeIpamConfig,
    /// Services whose Endpoints are computed in parallel (`--concurrent-endpoint-syncs`, 5).
    pub endpoint_workers: usize,
    /// Services whose EndpointSlices are computed in parallel (`--concurrent-service-endpoint-syncs`, 5).
    pub endpoint_slice_workers: usize,
    /// The most endpoints one EndpointSlice holds (`--max-endpoints-per-slice`, 100).
    pub max_endpoints_per_slice: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            replicaset_workers: 5,
            deployment_workers: 5,
            garbage_collector_workers: 20,
            namespace_workers: 10,
            retry_base_delay: Duration::from_millis(5),
            retry_max_delay: Duration::from_secs(1000),
            cache_timeout: Duration::from_secs(300),
            slow_start: true,
            node_lifecycle: node_lifecycle::NodeLifecycleConfig::default(),
            namespace: namespace::NamespaceTimings::default(),
            node_ipam: node_ipam::NodeIpamConfig::default(),
            endpoint_workers: 5,
            endpoint_slice_workers: 5,
            max_endpoints_per_slice: 100,
        }
    }
}
// ANCHOR_END: config

impl Config {
    /// How controller `C` runs with these options: its own number of workers, and the back-off and cache timeout
    /// every controller shares (see [`controller::start`]).
    pub fn settings_for<C: controller::Controller>(&self) -> controller::Settings {
        controller::Settings {
            workers: C::workers(self),
            backoff: controller::Backoff { base: self.retry_base_delay, max: self.retry_max_delay },
            cache_timeout: self.cache_timeout,
        }
    }
}

// ANCHOR: run
/// Runs every controller until the returned future is dropped or its task aborted (`kubelab up` spawns it in
/// its own process; `kubelab-controller-manager` runs it until Ctrl-C). Controllers retry failures forever, so
/// this only returns early if a controller cannot start at all.
pub async fn run(client: Client, config: Config) -> anyhow::Result<()> {
    // Dropping the JoinSet aborts every controller in it.
    let mut controllers = tokio::task::JoinSet::new();
    // Every controller is built and started alike: from a client and this configuration.
    controllers.spawn(start::<ReplicaSetController>(client.clone(), config.clone()));
    controllers.spawn(start::<DeploymentController>(client.clone(), config.clone()));
    controllers.spawn(start::<GarbageCollector>(client.clone(), config.clone()));
    controllers.spawn(start::<NamespaceController>(client.clone(), config.clone()));
    controllers.spawn(start::<NodeLifecycleController>(client.clone(), config.clone()));
    controllers.spawn(start::<EndpointsController>(client.clone(), config.clone()));
    controllers.spawn(start::<EndpointSliceController>(client.clone(), config.clone()));
    controllers.spawn(start::<NodeIpamController>(client.clone(), config));
    while let Some(finished) = controllers.join_next().await {
        finished??;
    }
    Ok(())
}
// ANCHOR_END: run
