//! # kubelab-scheduler: which node runs each pod
//!
//! A pod is created without a node. The **scheduler** is the component that picks one: it watches for pods
//! whose `spec.nodeName` is empty, chooses the node that suits each best, and records the choice through the
//! pod's `binding` subresource. Then, and only then, the kubelet of that node starts the pod's containers. The
//! scheduler never runs anything itself and never talks to a kubelet: its whole output is bindings, status
//! conditions and events, written to the apiserver.
//!
//! It mirrors Kubernetes' **kube-scheduler** and its *scheduling framework*, where each rule is a plugin:
//!
//! - **watches** every Node and every Pod (informers): pending pods to place, and bound pods because what they
//!   request is no longer free on their node;
//! - **decides** in two steps, both pure functions of the pod and a snapshot of the nodes: *filter* out the nodes
//!   that cannot run the pod ([`filters`]: cordoned, not ready, tainted, not matching its nodeSelector or node
//!   affinity, too full), then *score* the others ([`scores`]: least allocated, balanced, spreading a
//!   controller's pods) and take the best ([`schedule`](schedule::schedule));
//! - **writes** a `Binding` for a pod that fits and a `Scheduled` event; for a pod that fits nowhere, the
//!   condition `PodScheduled=False` with kube-scheduler's very message (`0/3 nodes are available: 1 node(s) had
//!   untolerated taint {...}, 2 Insufficient cpu.`) and a `FailedScheduling` event, and it tries again with
//!   back-off when the cluster changes.
//!
//! Reading order: [`resources`] (what a pod asks for), [`node_info`] and [`pod_info`] (the two sides of a
//! decision), [`filters`], [`scores`], [`schedule`] (the decision), then the machinery around it: [`cache`]
//! (assumed pods), [`queue`] (back-off), [`api`] (binding, condition, events) and [`runner`] (the loop).
//!
//! What we leave out: preemption (evicting lower-priority pods to make room) and pod priority itself; pod
//! affinity and anti-affinity; topology spread constraints (we spread a controller's pods over nodes only);
//! volume binding and volume limits; host ports; preferred node affinity and `PreferNoSchedule` scores; image
//! locality; scheduler extenders and out-of-tree plugins; several profiles in one process; scoring only a
//! sample of nodes in big clusters (`percentageOfNodesToScore`); leader election between replicas.
//!
//! Book chapter: *The scheduler* (`book/src/scheduler.md`).

pub mod api;
pub mod cache;
pub mod filters;
pub mod node_info;
pub mod pod_info;
pub mod queue;
pub mod resources;
pub mod runner;
pub mod schedule;
pub mod scores;
#[cfg(test)]
mod testing;

pub use node_info::NodeInfo;
pub use schedule::{Unschedulable, schedule};

use anyhow::Context;
use kubelab_api::client::{Client, ListParams};
use kubelab_api::informer::Informer;
use kubelab_api::resources as api_resources;
use std::time::Duration;

/// What can go wrong in the scheduler's own logic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchedulerError {
    /// A request, overhead or allocatable that is not a quantity (the apiserver refuses those, so this only
    /// happens with objects built by hand).
    #[error("{field}: invalid quantity {value:?}: {}", kubelab_api::quantity::QUANTITY_FORMAT_ERROR)]
    InvalidQuantity {
        /// Where: `spec.containers[0].resources.requests[cpu]`.
        field: String,
        /// What was there.
        value: String,
    },
    /// The apiserver's resource table lacks a kind the scheduler needs (a build of kubelab-api without Pods).
    #[error("kubelab-api does not serve {0}")]
    NotServed(&'static str),
}

// ANCHOR: config
/// How the scheduler behaves; [`Config::new`] gives Kubernetes' defaults, tests shorten the timings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The pods this scheduler takes: those whose `spec.schedulerName` is this. Events are signed with it too.
    pub scheduler_name: String,
    /// Back-off after a pod's first failed attempt (kube-scheduler's `podInitialBackoffSeconds`: 1 s).
    pub initial_backoff: Duration,
    /// The longest back-off (`podMaxBackoffSeconds`: 10 s).
    pub max_backoff: Duration,
    /// A pod parked as unschedulable is retried after this long even if the cluster did not change
    /// (`podMaxInUnschedulablePodsDuration`: 5 min).
    pub max_unschedulable: Duration,
    /// How many binding cycles may talk to the apiserver at once. Decisions are made one at a time regardless.
    pub bindings_in_flight: usize,
}
// ANCHOR_END: config

impl Config {
    /// Kubernetes' defaults.
    pub fn new() -> Config {
        Config {
            scheduler_name: "default-scheduler".to_string(),
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(10),
            max_unschedulable: Duration::from_secs(5 * 60),
            bindings_in_flight: 16,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::new()
    }
}

/// Runs the scheduler against the apiserver behind `client` until the task is aborted (`kubelab up` spawns it;
/// the binary runs it until Ctrl-C).
pub async fn run(client: Client, config: Config) -> anyhow::Result<()> {
    let nodes = api_resources::by_kind("v1", "Node").context("kubelab-api does not serve Nodes")?;
    let pods = api_resources::by_kind("v1", "Pod").context("kubelab-api does not serve Pods")?;
    let api = api::SchedulerApi::new(client.clone(), &config.scheduler_name)?;
    // Every pod, not only pending ones: the bound ones tell us what is already taken on each node.
    let mut node_informer = Informer::spawn(client.clone(), nodes, None, ListParams::default());
    let mut pod_informer = Informer::spawn(client, pods, None, ListParams::default());
    node_informer.wait_synced().await;
    pod_informer.wait_synced().await;
    tracing::info!(name = config.scheduler_name, "scheduler started");
    let (outcomes, done) = tokio::sync::mpsc::unbounded_channel();
    runner::Scheduler::new(config, api, outcomes).run(node_informer, pod_informer, done).await;
    Ok(())
}
