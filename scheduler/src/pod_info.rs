//! A pending pod, read once per scheduling attempt.
//!
//! The filters run for every (pod, node) pair: with 1000 nodes, whatever they compute from the pod alone would be
//! computed 1000 times. kube-scheduler's *PreFilter* extension point exists for that: each plugin reads the pod
//! once into a `CycleState`, and its Filter reuses it. [`PodInfo`] is our cycle state: the pod's requests, its
//! tolerations, and its nodeSelector and required node affinity already turned into label requirements.

use crate::SchedulerError;
use crate::resources::PodUsage;
use k8s_openapi::api::core::v1::{NodeSelectorRequirement, NodeSelectorTerm, Pod, Toleration};
use kubelab_api::selectors::{Operator, Requirement};
use std::collections::BTreeMap;

/// What the filters and scores need to know about the pod being scheduled.
#[derive(Debug, Clone, PartialEq)]
pub struct PodInfo {
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// Requests and owner.
    pub usage: PodUsage,
    /// `spec.tolerations`.
    pub tolerations: Vec<Toleration>,
    /// `spec.nodeSelector`: every label must be on the node.
    pub node_selector: BTreeMap<String, String>,
    /// `spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution`, when set: one term must match.
    pub required_terms: Option<Vec<AffinityTerm>>,
}

/// One `nodeSelectorTerm`: all its requirements must hold.
#[derive(Debug, Clone, PartialEq)]
pub struct AffinityTerm {
    /// `matchExpressions`, on the node's labels.
    pub labels: Vec<Requirement>,
    /// `matchFields`, on the node's fields: Kubernetes allows only `metadata.name`, with `In` or `NotIn`.
    pub name: Vec<NameRequirement>,
    /// False when the term cannot be read (an unknown operator or field, a bad value) or is empty: Kubernetes
    /// then lets the term match no node, while the other terms still count.
    pub valid: bool,
}

/// A `matchFields` requirement on `metadata.name`.
#[derive(Debug, Clone, PartialEq)]
pub enum NameRequirement {
    /// The node's name is one of these.
    In(Vec<String>),
    /// The node's name is none of these.
    NotIn(Vec<String>),
}

impl PodInfo {
    /// Reads what scheduling needs from a pod; fails only on a request that is not a quantity.
    pub fn read(pod: &Pod) -> Result<PodInfo, SchedulerError> {
        let spec = pod.spec.as_ref();
        let required_terms = spec
            .and_then(|s| s.affinity.as_ref())
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|a| a.required_during_scheduling_ignored_during_execution.as_ref())
            .map(|selector| selector.node_selector_terms.iter().map(AffinityTerm::read).collect());
        Ok(PodInfo {
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            name: pod.metadata.name.clone().unwrap_or_default(),
            usage: PodUsage::of(pod)?,
            tolerations: spec.and_then(|s| s.tolerations.clone()).unwrap_or_default(),
            node_selector: spec.and_then(|s| s.node_selector.clone()).unwrap_or_default(),
            required_terms,
        })
    }
}

impl AffinityTerm {
    fn read(term: &NodeSelectorTerm) -> AffinityTerm {
        let labels: Option<Vec<_>> = term.match_expressions.iter().flatten().map(label_requirement).collect();
        let name: Option<Vec<_>> = term.match_fields.iter().flatten().map(name_requirement).collect();
        match (labels, name) {
            (Some(labels), Some(name)) => {
                let valid = !(labels.is_empty() && name.is_empty());
                AffinityTerm { labels, name, valid }
            }
            _ => AffinityTerm { labels: Vec::new(), name: Vec::new(), valid: false },
        }
    }

    /// Whether a node with these labels and this name satisfies the term.
    pub fn matches(&self, labels: &BTreeMap<String, String>, node_name: &str) -> bool {
        let name_matches = |r: &NameRequirement| match r {
            NameRequirement::In(names) => names.iter().any(|n| n == node_name),
            NameRequirement::NotIn(names) => !names.iter().any(|n| n == node_name),
        };
        self.valid && self.labels.iter().all(|r| r.matches(labels)) && self.name.iter().all(name_matches)
    }
}

/// A `matchExpressions` entry as a label requirement: node affinity has label selector semantics.
fn label_requirement(r: &NodeSelectorRequirement) -> Option<Requirement> {
    let operator = match r.operator.as_str() {
        "In" => Operator::In,
        "NotIn" => Operator::NotIn,
        "Exists" => Operator::Exists,
        "DoesNotExist" => Operator::DoesNotExist,
        "Gt" => Operator::GreaterThan,
        "Lt" => Operator::LessThan,
        _ => return None,
    };
    Requirement::new(&r.key, operator, r.values.clone().unwrap_or_default()).ok()
}

/// A `matchFields` entry; only `metadata.name` with `In`/`NotIn` and one value is valid, as in Kubernetes.
fn name_requirement(r: &NodeSelectorRequirement) -> Option<NameRequirement> {
    let values = r.values.clone().unwrap_or_default();
    if r.key != "metadata.name" || values.len() != 1 {
        return None;
    }
    match r.operator.as_str() {
        "In" => Some(NameRequirement::In(values)),
        "NotIn" => Some(NameRequirement::NotIn(values)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn terms(affinity: serde_json::Value) -> Vec<AffinityTerm> {
        let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {"containers": [],
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": affinity}}}}))
        .unwrap();
        PodInfo::read(&pod).unwrap().required_terms.unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn a_term_needs_all_its_expressions() {
        let t = terms(json!({"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "zone", "operator": "In", "values": ["a", "b"]},
            {"key": "gpu", "operator": "DoesNotExist"},
            {"key": "cores", "operator": "Gt", "values": ["4"]},
        ]}]}));
        assert!(t[0].matches(&labels(&[("zone", "a"), ("cores", "8")]), "n"));
        assert!(!t[0].matches(&labels(&[("zone", "a"), ("cores", "8"), ("gpu", "1")]), "n"));
        assert!(!t[0].matches(&labels(&[("zone", "c"), ("cores", "8")]), "n"));
        assert!(!t[0].matches(&labels(&[("zone", "a"), ("cores", "2")]), "n"));
    }

    #[test]
    fn match_fields_compare_the_node_name() {
        let t = terms(json!({"nodeSelectorTerms": [{"matchFields": [
            {"key": "metadata.name", "operator": "In", "values": ["node-2"]}]}]}));
        assert!(t[0].matches(&labels(&[]), "node-2"));
        assert!(!t[0].matches(&labels(&[]), "node-1"));
    }

    #[test]
    fn empty_or_unreadable_terms_match_no_node() {
        let t = terms(json!({"nodeSelectorTerms": [
            {},
            {"matchExpressions": [{"key": "zone", "operator": "Near", "values": ["a"]}]},
            {"matchFields": [{"key": "spec.podCIDR", "operator": "In", "values": ["x"]}]},
        ]}));
        assert!(t.iter().all(|t| !t.matches(&labels(&[("zone", "a")]), "n")));
    }
}
