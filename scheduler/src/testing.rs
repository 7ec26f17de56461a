//! Builders for the unit tests: nodes and pods from plain values, so that a test reads like the case it checks.

use crate::node_info::NodeInfo;
use crate::pod_info::PodInfo;
use crate::resources::PodUsage;
use k8s_openapi::api::core::v1::{Node, Pod};
use serde_json::{Value, json};

/// A Ready node with `cpu` and `memory` allocatable and room for 110 pods.
pub fn node(name: &str, cpu: &str, memory: &str) -> NodeBuilder {
    NodeBuilder {
        node: json!({
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "spec": {},
            "status": {
                "allocatable": {"cpu": cpu, "memory": memory, "pods": "110"},
                "conditions": [{"type": "Ready", "status": "True"}],
            },
        }),
        pods: Vec::new(),
    }
}

/// A pod with one container that requests nothing.
pub fn pod(name: &str) -> PodBuilder {
    PodBuilder {
        pod: json!({
            "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}")},
            "spec": {"containers": [{"name": "main", "image": "busybox"}], "schedulerName": "default-scheduler"},
        }),
    }
}

/// A node under construction.
pub struct NodeBuilder {
    node: Value,
    pods: Vec<PodUsage>,
}

impl NodeBuilder {
    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.node["metadata"]["labels"][key] = json!(value);
        self
    }

    pub fn taint(mut self, key: &str, value: &str, effect: &str) -> Self {
        let taints = self.node["spec"]["taints"].as_array().cloned().unwrap_or_default();
        let mut taints = taints;
        taints.push(json!({"key": key, "value": value, "effect": effect}));
        self.node["spec"]["taints"] = json!(taints);
        self
    }

    pub fn unschedulable(mut self) -> Self {
        self.node["spec"]["unschedulable"] = json!(true);
        self
    }

    pub fn ready(mut self, status: &str) -> Self {
        self.node["status"]["conditions"][0]["status"] = json!(status);
        self
    }

    pub fn pods(mut self, allowed: &str) -> Self {
        self.node["status"]["allocatable"]["pods"] = json!(allowed);
        self
    }

    /// Places a pod on the node.
    pub fn with(mut self, pod: &PodBuilder) -> Self {
        self.pods.push(pod.usage());
        self
    }

    pub fn to_node(&self) -> Node {
        serde_json::from_value(self.node.clone()).expect("a valid Node")
    }

    pub fn info(&self) -> NodeInfo {
        self.pods.iter().fold(NodeInfo::new(&self.to_node()), |info, pod| info.with_pod(pod))
    }
}

/// A pod under construction.
#[derive(Clone)]
pub struct PodBuilder {
    pod: Value,
}

impl PodBuilder {
    pub fn requests(mut self, cpu: &str, memory: &str) -> Self {
        self.pod["spec"]["containers"][0]["resources"] = json!({"requests": {"cpu": cpu, "memory": memory}});
        self
    }

    pub fn tolerate(mut self, toleration: Value) -> Self {
        let mut tolerations = self.pod["spec"]["tolerations"].as_array().cloned().unwrap_or_default();
        tolerations.push(toleration);
        self.pod["spec"]["tolerations"] = json!(tolerations);
        self
    }

    pub fn node_selector(mut self, key: &str, value: &str) -> Self {
        self.pod["spec"]["nodeSelector"][key] = json!(value);
        self
    }

    /// Adds a required node affinity term `key in (values)`.
    pub fn require_label_in(mut self, key: &str, values: &[&str]) -> Self {
        let pointer = "/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution";
        if self.pod.pointer(pointer).is_none() {
            self.pod["spec"]["affinity"] =
                json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}});
        }
        let term = json!({"matchExpressions": [{"key": key, "operator": "In", "values": values}]});
        if let Some(Value::Array(terms)) = self.pod.pointer_mut(&format!("{pointer}/nodeSelectorTerms")) {
            terms.push(term);
        }
        self
    }

    pub fn owner(mut self, uid: &str) -> Self {
        self.pod["metadata"]["ownerReferences"] =
            json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": uid, "uid": uid, "controller": true}]);
        self
    }

    pub fn to_pod(&self) -> Pod {
        serde_json::from_value(self.pod.clone()).expect("a valid Pod")
    }

    pub fn info(&self) -> PodInfo {
        PodInfo::read(&self.to_pod()).expect("readable requests")
    }

    pub fn usage(&self) -> PodUsage {
        PodUsage::of(&self.to_pod()).expect("readable requests")
    }
}
