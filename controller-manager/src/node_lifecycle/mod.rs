//! The node lifecycle controller: notices dead nodes, and moves their Pods away.
//!
//! A kubelet proves it is alive by renewing its node's **Lease** (`kube-node-lease/<node>`) every 10 s. When it
//! stops — the machine crashed, the network is cut, an instructor killed it — nobody is there to say so. This
//! controller does, on the node's behalf:
//!
//! 1. **Unknown.** A node whose last heartbeat (Lease `renewTime`, or the Ready condition's
//!    `lastHeartbeatTime`) is older than the grace period (50 s) gets its conditions set to `Unknown`, reason
//!    `NodeStatusUnknown`, message `Kubelet stopped posting node status.`, through the `nodes/status`
//!    subresource, and a `NodeNotReady` event.
//! 2. **Tainted.** Its conditions call for taints: `node.kubernetes.io/unreachable:NoSchedule` keeps the scheduler
//!    from sending new Pods there, `node.kubernetes.io/unreachable:NoExecute` starts evicting the Pods already
//!    there (`not-ready` instead of `unreachable` when the kubelet itself reports Ready=False).
//! 3. **Evicted.** Each Pod on the node tolerates the `NoExecute` taint for its `tolerationSeconds` (300 s unless
//!    it says otherwise), then is deleted, with a `TaintManagerEviction` event. Its ReplicaSet, which does not
//!    count terminating Pods, creates a replacement, and the scheduler puts it on a healthy node.
//! 4. **Recovered.** When the kubelet comes back, it reports Ready=True and renews its Lease again: the taints
//!    are removed. (Pods already evicted stay evicted.)
//!
//! Time matters here even when nothing changes — a Lease that is *not* renewed produces no event — so each node
//! comes back to the work queue every monitor period (5 s), and at the next eviction deadline.
//!
//! The decisions are pure functions ([`health`]: node health and taints; [`eviction`]: which Pods go when);
//! this module is the shell: informers on Nodes, Leases and Pods, and the writes.
//!
//! Mirrors `pkg/controller/nodelifecycle` and the taint eviction controller (`pkg/controller/tainteviction`).
//! What we leave out: availability zones and eviction rate limits (`--node-eviction-rate`; we only keep the
//! "full disruption" rule, see [`health::full_disruption`]), marking Pods `Ready=False` on an unhealthy node, the
//! `DisruptionTarget` Pod condition, and deleting Pods of nodes that no longer exist (the Pod garbage collector).

pub mod eviction;
pub mod health;

use crate::Config;
use crate::controller::{self, Controller, Error, Lister, Outcomes, Reconciled, Source, Writes, Written};
use eviction::{EvictionTimings, pods_to_evict};
use health::{HealthTimings, plan_node};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, Pod, Taint};
use k8s_openapi::jiff::Timestamp;
use kubelab_api::client::{Client, ClientError, PatchParams, PatchType, PropagationPolicy, resource_of};
use kubelab_api::events::{EventType, Recorder};
use kubelab_api::taints::NO_EXECUTE;
use kubelab_api::{ApiError, object};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// The namespace of the kubelets' heartbeat Leases.
pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

// ANCHOR: config
/// The node lifecycle controller's timings, all Kubernetes' defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeLifecycleConfig {
    /// `--node-monitor-period`: how often each node is looked at even if nothing changes (5 s).
    pub monitor_period: Duration,
    /// Grace periods before a silent node is `Unknown`.
    pub health: HealthTimings,
    /// How long Pods tolerate `not-ready` and `unreachable` by default.
    pub eviction: EvictionTimings,
}

impl Default for NodeLifecycleConfig {
    fn default() -> Self {
        NodeLifecycleConfig {
            monitor_period: Duration::from_secs(5),
            health: HealthTimings::default(),
            eviction: EvictionTimings::default(),
        }
    }
}
// ANCHOR_END: config

/// The controller: a client, a recorder, and caches of Nodes, Leases and Pods.
pub struct NodeLifecycleController {
    client: Client,
    recorder: Recorder,
    nodes: Lister,
    leases: Lister,
    pods: Lister,
    config: NodeLifecycleConfig,
    /// When each `NoExecute` taint without a `timeAdded` was first seen, by (node, taint key): tolerations count
    /// from there. Our own taints always carry `timeAdded`; one added by hand may not.
    first_seen: Mutex<HashMap<(String, String), Timestamp>>,
}

/// One node, and what its health and its Pods' fate depend on.
#[derive(Debug, Clone)]
pub struct Observed {
    pub node: Node,
    pub lease: Option<Lease>,
    /// The Pods bound to the node.
    pub pods: Vec<Pod>,
    /// Every node with its Lease, to tell a full disruption.
    pub cluster: Vec<(Node, Option<Lease>)>,
    /// When each of the node's untimed `NoExecute` taints was first seen, by key.
    pub first_seen: HashMap<String, Timestamp>,
}

/// One write to a node or one of its Pods.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Write the node's conditions (through `nodes/status`).
    SetConditions(Vec<NodeCondition>),
    /// Write the node's taints.
    SetTaints(Vec<Taint>),
    /// Record `NodeNotReady` on the node.
    RecordNotReady,
    /// Delete a Pod whose tolerations ran out.
    Evict { namespace: String, name: String, uid: String },
}

// ANCHOR: reconcile
/// Decides what to write for one node, at `now`.
pub fn reconcile(observed: &Observed, now: Timestamp, config: &NodeLifecycleConfig) -> Reconciled<Action> {
    let mut decided = Reconciled::nothing();
    // Which nodes are healthy once silent ones count as Unknown: if none is, stop evicting.
    let ready_after = |node: &Node, lease: Option<&Lease>| {
        let conditions = health::mark_unknown_if_silent(node, lease, now, &config.health)
            .or_else(|| node.status.as_ref().and_then(|s| s.conditions.clone()))
            .unwrap_or_default();
        health::condition(&conditions, "Ready").map(|c| c.status.clone())
    };
    let statuses: Vec<Option<String>> = observed.cluster.iter().map(|(n, l)| ready_after(n, l.as_ref())).collect();
    let evictions_stopped = health::full_disruption(statuses.iter().map(Option::as_deref));

    let update = plan_node(&observed.node, observed.lease.as_ref(), now, &config.health, evictions_stopped);
    let current_taints = observed.node.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default();
    let taints = update.taints.clone().unwrap_or(current_taints);
    decided.actions.extend(update.conditions.map(Action::SetConditions));
    decided.actions.extend(update.taints.map(Action::SetTaints));
    if update.became_not_ready {
        decided.actions.push(Action::RecordNotReady);
    }

    let first_seen = |taint: &Taint| observed.first_seen.get(&taint.key).copied().unwrap_or(now);
    let evictions = pods_to_evict(&observed.pods, &taints, first_seen, now, &config.eviction);
    for (namespace, name) in evictions.due {
        let uid = observed
            .pods
            .iter()
            .find(|p| p.metadata.name.as_deref() == Some(&name) && p.metadata.namespace.as_deref() == Some(&namespace))
            .and_then(|p| p.metadata.uid.clone())
            .unwrap_or_default();
        decided.actions.push(Action::Evict { namespace, name, uid });
    }
    // Look again at the next eviction deadline, and every monitor period for a heartbeat that does not come.
    if let Some(next) = evictions.next {
        decided.requeue_within(Duration::try_from(next.duration_since(now)).unwrap_or(Duration::ZERO));
    }
    decided.requeue_within(config.monitor_period);
    decided
}
// ANCHOR_END: reconcile

impl NodeLifecycleController {
    fn lease_of(&self, node: &str) -> Option<Lease> {
        self.leases.get(&format!("{NODE_LEASE_NAMESPACE}/{node}"))
    }

    /// Remembers when each untimed `NoExecute` taint of `node` was first seen, forgetting those gone.
    fn first_seen(&self, node: &Node, name: &str) -> HashMap<String, Timestamp> {
        let untimed: Vec<&Taint> = node
            .spec
            .iter()
            .flat_map(|s| s.taints.iter().flatten())
            .filter(|t| t.effect == NO_EXECUTE && t.time_added.is_none())
            .collect();
        let mut seen = self.first_seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        seen.retain(|(n, key), _| n != name || untimed.iter().any(|t| &t.key == key));
        untimed
            .into_iter()
            .map(|t| {
                let at = *seen.entry((name.to_string(), t.key.clone())).or_insert_with(controller::now);
                (t.key.clone(), at)
            })
            .collect()
    }

    /// Writes a merge patch carrying the resourceVersion read, to the node or its status; returns the new
    /// resourceVersion. A `409` means the kubelet (or someone) wrote in between: the key is retried.
    async fn patch_node(&self, name: &str, version: &str, patch: Value, status: bool) -> Result<String, Error> {
        let nodes = resource_of::<Node>()?;
        let mut patch = patch;
        patch["metadata"] = json!({"resourceVersion": version});
        let patched = if status {
            self.client.patch_status(nodes, None, name, PatchType::Merge, &patch).await?
        } else {
            self.client.patch(nodes, None, name, PatchType::Merge, &patch, &PatchParams::default()).await?
        };
        Ok(object::resource_version(&patched).to_string())
    }

    /// Deletes one Pod, saying why on the Pod, as the taint eviction controller does.
    async fn evict(&self, namespace: &str, name: &str, uid: &str) -> Result<Option<Written>, Error> {
        let pods = resource_of::<Pod>()?;
        let about =
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace, "uid": uid}});
        self.recorder
            .record(
                &about,
                EventType::Normal,
                "TaintManagerEviction",
                format!("Marking for deletion Pod {namespace}/{name}"),
            )
            .await;
        match self.client.delete(pods, Some(namespace), name, PropagationPolicy::Background).await {
            Ok(_) => Ok(Some(Written::Deleted { key: format!("{namespace}/{name}") })),
            Err(ClientError::Api(ApiError { code: 404, .. })) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }
}

impl Controller for NodeLifecycleController {
    type Observed = Observed;
    type Action = Action;

    /// Its informers: a Node, its Lease and its Pods all map to the node's name.
    fn new(client: &Client, config: &Config) -> Result<(Self, Vec<Source>), Error> {
        let (node_source, nodes) = Source::new(client, resource_of::<Node>()?, |n| vec![object::name(n).into()]);
        let (lease_source, leases) =
            Source::new(client, resource_of::<Lease>()?, |lease| match object::namespace(lease) {
                NODE_LEASE_NAMESPACE => vec![object::name(lease).to_string()],
                _ => Vec::new(),
            });
        let (pod_source, pods) = Source::new(client, resource_of::<Pod>()?, |pod| {
            let node = pod.pointer("/spec/nodeName").and_then(Value::as_str).unwrap_or_default();
            if node.is_empty() { Vec::new() } else { vec![node.to_string()] }
        });
        let controller = NodeLifecycleController {
            client: client.clone(),
            recorder: Recorder::new(client.clone(), "node-controller"),
            nodes,
            leases,
            pods,
            config: config.node_lifecycle,
            first_seen: Mutex::default(),
        };
        Ok((controller, vec![node_source, lease_source, pod_source]))
    }

    /// One worker: deciding for one node is quick, and the nodes are few.
    fn workers(_config: &Config) -> usize {
        1
    }

    fn name(&self) -> &'static str {
        "node-lifecycle-controller"
    }

    fn observe(&self, key: &str) -> Option<Observed> {
        let node: Node = self.nodes.get(key)?;
        let pods = self
            .pods
            .list_values()
            .into_iter()
            .filter(|pod| pod.pointer("/spec/nodeName").and_then(Value::as_str) == Some(key))
            .filter_map(|pod| serde_json::from_value(pod).ok())
            .collect();
        let cluster = self
            .nodes
            .list_values()
            .into_iter()
            .filter_map(|n| serde_json::from_value::<Node>(n).ok())
            .map(|n| {
                let lease = self.lease_of(n.metadata.name.as_deref().unwrap_or_default());
                (n, lease)
            })
            .collect();
        let first_seen = self.first_seen(&node, key);
        Some(Observed { lease: self.lease_of(key), node, pods, cluster, first_seen })
    }

    fn reconcile(&self, observed: &Observed, now: Timestamp) -> Reconciled<Action> {
        reconcile(observed, now, &self.config)
    }

    async fn apply(&self, observed: &Observed, actions: Vec<Action>, writes: &mut Writes) -> Result<(), Error> {
        let node = &observed.node;
        let name = node.metadata.name.clone().unwrap_or_default();
        let mut version = node.metadata.resource_version.clone().unwrap_or_default();
        let mut outcomes = Outcomes::default();
        let mut evicted = Vec::new();
        for action in actions {
            match action {
                // The node's writes depend on each other (each carries the resourceVersion the previous one
                // returned): the first failure stops them, and the key is retried on fresh data.
                Action::SetConditions(conditions) => {
                    tracing::info!(node = %name, "kubelet stopped posting node status: marking the node Unknown");
                    version =
                        self.patch_node(&name, &version, json!({"status": {"conditions": conditions}}), true).await?;
                }
                Action::SetTaints(taints) => {
                    let keys: Vec<&str> = taints.iter().map(|t| t.key.as_str()).collect();
                    tracing::info!(node = %name, taints = ?keys, "updating taints");
                    version = self.patch_node(&name, &version, json!({"spec": {"taints": taints}}), false).await?;
                }
                Action::RecordNotReady => {
                    let about = json!({"apiVersion": "v1", "kind": "Node",
                        "metadata": {"name": name, "uid": node.metadata.uid}});
                    let message = format!("Node {name} status is now: NodeNotReady");
                    self.recorder.record(&about, EventType::Normal, "NodeNotReady", message).await;
                }
                Action::Evict { namespace, name: pod, uid } => {
                    tracing::info!(node = %name, pod = %format!("{namespace}/{pod}"), "evicting");
                    evicted.extend(outcomes.record(self.evict(&namespace, &pod, &uid).await).flatten());
                }
            }
        }
        writes.extend(&self.pods, evicted);
        outcomes.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + second).unwrap()
    }

    fn node(name: &str, heartbeat: i64) -> Node {
        let stamp = |s: i64| at(s).strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
        serde_json::from_value(json!({"metadata": {"name": name, "uid": name, "creationTimestamp": stamp(0)},
            "status": {"conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": stamp(heartbeat)}]}}))
        .unwrap()
    }

    fn pod(name: &str) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": name, "namespace": "shop", "uid": name},
            "spec": {"nodeName": "dead", "containers": []}}))
        .unwrap()
    }

    fn observed(dead: Node, alive: Node, pods: Vec<Pod>) -> Observed {
        Observed {
            node: dead.clone(),
            lease: None,
            pods,
            cluster: vec![(dead, None), (alive, None)],
            first_seen: HashMap::new(),
        }
    }

    fn kinds(actions: &[Action]) -> Vec<&'static str> {
        actions
            .iter()
            .map(|a| match a {
                Action::SetConditions(_) => "conditions",
                Action::SetTaints(_) => "taints",
                Action::RecordNotReady => "event",
                Action::Evict { .. } => "evict",
            })
            .collect()
    }

    #[test]
    fn a_silent_node_is_marked_tainted_and_reported_and_its_pods_wait_for_their_toleration() {
        let config = NodeLifecycleConfig::default();
        let decided = reconcile(&observed(node("dead", 0), node("alive", 100), vec![pod("web")]), at(100), &config);
        assert_eq!(kinds(&decided.actions), ["conditions", "taints", "event"]);
        assert_eq!(decided.requeue_after, Some(Duration::from_secs(5)));
    }

    #[test]
    fn pods_are_evicted_once_their_toleration_has_run_out() {
        let config = NodeLifecycleConfig::default();
        let mut dead = node("dead", 0);
        let first = reconcile(&observed(dead.clone(), node("alive", 100), vec![]), at(100), &config);
        for action in first.actions {
            match action {
                Action::SetConditions(c) => dead.status.get_or_insert_with(Default::default).conditions = Some(c),
                Action::SetTaints(t) => dead.spec.get_or_insert_with(Default::default).taints = Some(t),
                _ => {}
            }
        }
        let waiting = reconcile(&observed(dead.clone(), node("alive", 399), vec![pod("web")]), at(399), &config);
        assert!(waiting.actions.is_empty());
        assert_eq!(waiting.requeue_after, Some(Duration::from_secs(1)), "the eviction deadline comes first");
        let due = reconcile(&observed(dead, node("alive", 400), vec![pod("web")]), at(400), &config);
        assert_eq!(due.actions, [Action::Evict { namespace: "shop".into(), name: "web".into(), uid: "web".into() }]);
    }

    #[test]
    fn when_every_node_is_silent_nothing_is_evicted() {
        let config = NodeLifecycleConfig::default();
        let decided = reconcile(&observed(node("dead", 0), node("alive", 0), vec![pod("web")]), at(100), &config);
        let Some(Action::SetTaints(taints)) = decided.actions.get(1) else { panic!("{decided:?}") };
        assert!(taints.iter().all(|t| t.effect != NO_EXECUTE), "{taints:?}");
    }
}
