//! The Node object and the heartbeats: how the cluster learns that this node exists and is alive.
//!
//! A kubelet **registers** its node: it creates the `Node` object named after it, with what the scheduler needs
//! (capacity and allocatable CPU, memory and pod count, labels such as `kubernetes.io/hostname`) and what
//! `kubectl describe node` shows (addresses, OS, kernel, runtime and kubelet versions, the kubelet's port).
//!
//! Then it proves it is alive, two ways, as Kubernetes has done since 1.17:
//!
//! - a **Lease** `kube-node-lease/<node>`, whose `renewTime` it bumps every 10 s. A tiny object, cheap to write
//!   often: the node lifecycle controller declares the node unreachable when the lease is older than its 40 s;
//! - the **node status**, with condition `Ready` (reason `KubeletReady`) and its `lastHeartbeatTime`, recomputed
//!   every 10 s but written only when something changed, or every 5 minutes anyway.
//!
//! A Node registers without a pod CIDR and stays `Ready=False` until the controller manager gives it one (see
//! [`crate::network`]): without it, no pod can get an address.
//!
//! Allocatable is capacity minus what the node keeps for itself; like a default kubelet we reserve only the
//! 100 MiB of the memory eviction threshold. What we leave out: node images, volume and swap status, taints at
//! registration, and the MemoryPressure/DiskPressure/PIDPressure *checks* (the conditions are always False).

use crate::clock;
use crate::config::{Config, KUBELET_VERSION};
use crate::error::KubeletError;
use crate::machine::MachineInfo;
use crate::network;
use ipnet::Ipv4Net;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{
    DaemonEndpoint, Node, NodeAddress, NodeCondition, NodeDaemonEndpoints, NodeSpec, NodeStatus, NodeSystemInfo,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;
use kubelab_api::client::{ClientError, PatchParams, PatchType};
use kubelab_api::resources;
use std::collections::BTreeMap;

/// The namespace of node leases.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";
/// The memory a kubelet keeps out of allocatable by default (`evictionHard: memory.available<100Mi`).
const EVICTION_RESERVE: u64 = 100 * 1024 * 1024;

/// What the node reports besides the host: its name, address, port, runtime and pod CIDR.
#[derive(Debug, Clone)]
pub struct NodeFacts {
    pub name: String,
    pub address: String,
    /// The node's pod CIDR once known: `None` while the kubelet waits for it (the Node is then not Ready).
    pub pod_cidr: Option<Ipv4Net>,
    pub kubelet_port: u16,
    pub runtime_version: String,
    pub machine: MachineInfo,
}

// ANCHOR: node_object
/// The Node as this kubelet registers it: labels, spec and status.
pub fn node_object(facts: &NodeFacts, previous: Option<&NodeStatus>, now: Timestamp) -> Node {
    let labels = BTreeMap::from([
        ("kubernetes.io/hostname".to_string(), facts.name.clone()),
        ("kubernetes.io/os".to_string(), facts.machine.operating_system.clone()),
        ("kubernetes.io/arch".to_string(), facts.machine.architecture.clone()),
    ]);
    Node {
        metadata: ObjectMeta { name: Some(facts.name.clone()), labels: Some(labels), ..Default::default() },
        // Empty unless the kubelet was given `--pod-cidr`: the node IPAM controller fills it in.
        spec: Some(NodeSpec {
            pod_cidr: facts.pod_cidr.map(|cidr| cidr.to_string()),
            pod_cidrs: facts.pod_cidr.map(|cidr| vec![cidr.to_string()]),
            ..Default::default()
        }),
        status: Some(node_status(facts, previous, now)),
    }
}
// ANCHOR_END: node_object

/// The node's status now; conditions keep their `lastTransitionTime` from `previous` while unchanged.
pub fn node_status(facts: &NodeFacts, previous: Option<&NodeStatus>, now: Timestamp) -> NodeStatus {
    let machine = &facts.machine;
    let quantity = |q: String| Quantity(q);
    let capacity = BTreeMap::from([
        ("cpu".to_string(), quantity(machine.num_cores.to_string())),
        ("memory".to_string(), quantity(format!("{}Ki", machine.memory_capacity / 1024))),
        ("pods".to_string(), quantity("110".into())),
    ]);
    let mut allocatable = capacity.clone();
    let usable = machine.memory_capacity.saturating_sub(EVICTION_RESERVE);
    allocatable.insert("memory".into(), quantity(format!("{}Ki", usable / 1024)));
    let condition = |kind: &str, status: &str, reason: &str, message: &str| {
        let old = previous.and_then(|p| p.conditions.iter().flatten().find(|c| c.type_ == kind).cloned());
        let last_transition_time = match old {
            Some(old) if old.status == status => old.last_transition_time,
            _ => Some(Time(now)),
        };
        NodeCondition {
            type_: kind.into(),
            status: status.into(),
            reason: Some(reason.into()),
            message: Some(message.into()),
            last_heartbeat_time: Some(Time(now)),
            last_transition_time,
        }
    };
    NodeStatus {
        addresses: Some(vec![
            NodeAddress { type_: "InternalIP".into(), address: facts.address.clone() },
            NodeAddress { type_: "Hostname".into(), address: facts.name.clone() },
        ]),
        capacity: Some(capacity),
        allocatable: Some(allocatable),
        conditions: Some(vec![
            condition(
                "MemoryPressure",
                "False",
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available",
            ),
            condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            // Ready once pods can get addresses; before that, a real kubelet's "network not ready".
            match facts.pod_cidr {
                Some(_) => condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
                None => condition("Ready", "False", "KubeletNotReady", network::NOT_READY_MESSAGE),
            },
        ]),
        daemon_endpoints: Some(NodeDaemonEndpoints {
            kubelet_endpoint: Some(DaemonEndpoint { port: i32::from(facts.kubelet_port) }),
        }),
        node_info: Some(NodeSystemInfo {
            architecture: machine.architecture.clone(),
            boot_id: machine.boot_id.clone(),
            container_runtime_version: facts.runtime_version.clone(),
            kernel_version: machine.kernel_version.clone(),
            kube_proxy_version: String::new(),
            kubelet_version: KUBELET_VERSION.into(),
            machine_id: machine.machine_id.clone(),
            operating_system: machine.operating_system.clone(),
            os_image: machine.os_image.clone(),
            system_uuid: machine.system_uuid.clone(),
            swap: None,
        }),
        ..Default::default()
    }
}

/// The status without its heartbeat times: what is compared to decide whether there is news to write.
fn without_heartbeats(status: &NodeStatus) -> NodeStatus {
    let mut status = status.clone();
    for condition in status.conditions.iter_mut().flatten() {
        condition.last_heartbeat_time = None;
    }
    status
}

/// Creates the Node, or updates its labels if it exists (a restarted kubelet), then writes its status: Ready if
/// the stored Node has a pod CIDR (given now, or earlier), not Ready otherwise.
pub async fn register(config: &Config, facts: &NodeFacts) -> Result<Node, KubeletError> {
    let nodes = resource("Node")?;
    let node = node_object(facts, None, clock::now());
    let body = to_json(&node)?;
    let stored = match config.client.create(nodes, None, &body).await {
        Ok(created) => created,
        Err(ClientError::Api(err)) if err.code == 409 => {
            let patch = serde_json::json!({"metadata": {"labels": node.metadata.labels}});
            config.client.patch(nodes, None, &facts.name, PatchType::Merge, &patch, &PatchParams::default()).await?
        }
        Err(err) => return Err(err.into()),
    };
    let previous: Option<NodeStatus> = stored.get("status").and_then(|s| serde_json::from_value(s.clone()).ok());
    let stored_cidr = serde_json::from_value::<Node>(stored.clone()).ok().and_then(|n| network::pod_cidr_of(&n).ok());
    let facts = NodeFacts { pod_cidr: stored_cidr.flatten(), ..facts.clone() };
    let status = node_status(&facts, previous.as_ref(), clock::now());
    let patch = serde_json::json!({"status": to_json(&status)?});
    let written = config.client.patch_status(nodes, None, &facts.name, PatchType::Merge, &patch).await?;
    tracing::info!(node = %facts.name, "registered node");
    serde_json::from_value(written)
        .map_err(|err| KubeletError::Config(format!("the apiserver returned a bad Node: {err}")))
}

// ANCHOR: heartbeat
/// Keeps the node's status current: recomputes it every `node_status_update_frequency`, writes it when it
/// changed or when `node_status_report_frequency` has passed. Runs until aborted.
pub async fn report_status(config: Config, facts: NodeFacts, mut last: NodeStatus) {
    let mut written_at = clock::now();
    let mut ticker = tokio::time::interval(config.node_status_update_frequency);
    loop {
        ticker.tick().await;
        let now = clock::now();
        let status = node_status(&facts, Some(&last), now);
        let due = clock::between(written_at, now) >= config.node_status_report_frequency;
        if !due && without_heartbeats(&status) == without_heartbeats(&last) {
            continue;
        }
        let patch = match to_json(&status) {
            Ok(status) => serde_json::json!({"status": status}),
            Err(_) => continue,
        };
        let Ok(nodes) = resource("Node") else { return };
        match config.client.patch_status(nodes, None, &facts.name, PatchType::Merge, &patch).await {
            Ok(_) => (last, written_at) = (status, now),
            Err(err) => tracing::warn!(error = %err, "could not update node status"),
        }
    }
}

/// Renews the node's Lease every `lease_renew_interval`, creating it when missing. Runs until aborted.
pub async fn renew_lease(config: Config, node_uid: String) {
    let mut ticker = tokio::time::interval(config.lease_renew_interval);
    loop {
        ticker.tick().await;
        if let Err(err) = renew_once(&config, &node_uid).await {
            tracing::warn!(error = %err, "could not renew the node lease");
        }
    }
}
// ANCHOR_END: heartbeat

async fn renew_once(config: &Config, node_uid: &str) -> Result<(), KubeletError> {
    let name = config.node_name.as_str();
    let client = &config.client;
    let renew = |lease: &mut Lease| {
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        spec.holder_identity = Some(name.to_string());
        spec.lease_duration_seconds = Some(i32::try_from(config.lease_duration.as_secs()).unwrap_or(i32::MAX));
        spec.renew_time = Some(MicroTime(clock::now()));
    };
    match client.get_typed::<Lease>(Some(LEASE_NAMESPACE), name).await {
        Ok(mut lease) => {
            renew(&mut lease);
            client.replace_typed(Some(LEASE_NAMESPACE), name, &lease).await?;
        }
        Err(ClientError::Api(err)) if err.code == 404 => {
            let mut lease = Lease {
                metadata: ObjectMeta {
                    name: Some(name.to_string()),
                    namespace: Some(LEASE_NAMESPACE.into()),
                    // Owned by the Node: deleting the Node deletes its Lease.
                    owner_references: Some(vec![OwnerReference {
                        api_version: "v1".into(),
                        kind: "Node".into(),
                        name: name.to_string(),
                        uid: node_uid.to_string(),
                        ..Default::default()
                    }]),
                    ..Default::default()
                },
                spec: None,
            };
            renew(&mut lease);
            client.create_typed(Some(LEASE_NAMESPACE), &lease).await?;
        }
        Err(err) => return Err(err.into()),
    }
    Ok(())
}

fn resource(kind: &str) -> Result<&'static kubelab_api::Resource, KubeletError> {
    resources::by_kind("v1", kind).ok_or_else(|| KubeletError::Config(format!("kubelab-api does not serve v1 {kind}")))
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<serde_json::Value, KubeletError> {
    serde_json::to_value(value).map_err(|err| KubeletError::Config(format!("cannot encode: {err}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::at_second;

    fn facts() -> NodeFacts {
        NodeFacts {
            name: "node-1".into(),
            address: "127.0.1.1".into(),
            pod_cidr: Some("10.244.1.0/24".parse().unwrap()),
            kubelet_port: 10250,
            runtime_version: "docker://20.10.24".into(),
            machine: MachineInfo {
                num_cores: 2,
                memory_capacity: 4 * 1024 * 1024 * 1024,
                machine_id: "m".into(),
                system_uuid: "m".into(),
                boot_id: "b".into(),
                kernel_version: "6.1.0".into(),
                os_image: "Debian GNU/Linux 12 (bookworm)".into(),
                operating_system: "linux".into(),
                architecture: "amd64".into(),
            },
        }
    }

    #[test]
    fn a_node_reports_capacity_allocatable_addresses_and_labels() {
        let node = node_object(&facts(), None, at_second(100));
        let labels = node.metadata.labels.unwrap();
        assert_eq!(labels["kubernetes.io/hostname"], "node-1");
        assert_eq!(labels["kubernetes.io/os"], "linux");
        let status = node.status.unwrap();
        let capacity = status.capacity.unwrap();
        assert_eq!(
            (capacity["cpu"].0.as_str(), capacity["memory"].0.as_str(), capacity["pods"].0.as_str()),
            ("2", "4194304Ki", "110")
        );
        assert_eq!(status.allocatable.unwrap()["memory"].0, "4091904Ki");
        let addresses: Vec<(String, String)> =
            status.addresses.unwrap().into_iter().map(|a| (a.type_, a.address)).collect();
        assert_eq!(addresses, vec![("InternalIP".into(), "127.0.1.1".into()), ("Hostname".into(), "node-1".into())]);
        assert_eq!(status.daemon_endpoints.unwrap().kubelet_endpoint.unwrap().port, 10250);
        assert_eq!(status.node_info.unwrap().kubelet_version, "v1.32.0-kubelab");
    }

    #[test]
    fn the_ready_condition_says_the_kubelet_is_posting_ready_status() {
        let status = node_status(&facts(), None, at_second(100));
        let ready = status.conditions.unwrap().into_iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!((ready.status.as_str(), ready.reason.as_deref()), ("True", Some("KubeletReady")));
        assert_eq!(ready.message.as_deref(), Some("kubelet is posting ready status"));
        assert_eq!(ready.last_heartbeat_time, Some(Time(at_second(100))));
    }

    #[test]
    fn a_node_without_a_pod_cidr_registers_without_one_and_is_not_ready_saying_why() {
        let waiting = NodeFacts { pod_cidr: None, ..facts() };
        let node = node_object(&waiting, None, at_second(100));
        assert_eq!(node.spec.unwrap().pod_cidr, None);
        let ready = node.status.unwrap().conditions.unwrap().into_iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!((ready.status.as_str(), ready.reason.as_deref()), ("False", Some("KubeletNotReady")));
        assert!(ready.message.unwrap().contains("the node has no spec.podCIDR yet"));
        let given = node_object(&facts(), None, at_second(100)).spec.unwrap();
        assert_eq!(
            (given.pod_cidr.as_deref(), given.pod_cidrs),
            (Some("10.244.1.0/24"), Some(vec!["10.244.1.0/24".into()]))
        );
    }

    #[test]
    fn a_heartbeat_moves_only_the_heartbeat_time() {
        let first = node_status(&facts(), None, at_second(100));
        let second = node_status(&facts(), Some(&first), at_second(110));
        assert_eq!(without_heartbeats(&first), without_heartbeats(&second));
        let ready = second.conditions.unwrap().into_iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!(ready.last_transition_time, Some(Time(at_second(100))));
        assert_eq!(ready.last_heartbeat_time, Some(Time(at_second(110))));
    }
}
