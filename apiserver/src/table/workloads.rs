//! The ReplicaSet and Deployment rows: how many replicas are wanted, and how many are there.
//!
//! A Deployment mid-rollout reads `web   2/3   1   2   5m`: 2 pods ready of the 3 wanted, 1 already on the new
//! template (Up-to-date), 2 available to serve. With `-o wide` both kinds add their containers, images and
//! selector.

use super::format::{age, container_cells, format_label_selector, int, label_selector, list, text};
use super::{AGE, Column, NAME};
use chrono::{DateTime, Utc};
use serde_json::Value;

const CONTAINERS: Column = Column::text("Containers", "Names of each container in the template.").wide();
const IMAGES: Column = Column::text("Images", "Images referenced by each container in the template.").wide();

pub(super) const REPLICA_SET_COLUMNS: &[Column] = &[
    NAME,
    Column::integer("Desired", "Replicas is the number of desired replicas."),
    Column::integer("Current", "Replicas is the most recently observed number of replicas."),
    Column::integer("Ready", "The number of ready replicas for this replica set."),
    AGE,
    CONTAINERS,
    IMAGES,
    Column::text("Selector", "Selector is a label query over pods that should match the replica count.").wide(),
];

pub(super) fn replica_set_cells(replica_set: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let (containers, images) = container_cells(list(replica_set, "/spec/template/spec/containers"));
    vec![
        text(replica_set, "/metadata/name").into(),
        desired_replicas(replica_set).into(),
        int(replica_set, "/status/replicas").into(),
        int(replica_set, "/status/readyReplicas").into(),
        age(replica_set, now),
        containers,
        images,
        format_label_selector(replica_set.pointer("/spec/selector")).into(),
    ]
}

pub(super) const DEPLOYMENT_COLUMNS: &[Column] = &[
    NAME,
    Column::text("Ready", "Number of the pod with ready state"),
    Column::text(
        "Up-to-date",
        "Total number of non-terminated pods targeted by this deployment that have the \
        desired template spec.",
    ),
    Column::text(
        "Available",
        "Total number of available pods (ready for at least minReadySeconds) targeted by \
        this deployment.",
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    Column::text("Selector", "Label selector for pods.").wide(),
];

pub(super) fn deployment_cells(deployment: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let (containers, images) = container_cells(list(deployment, "/spec/template/spec/containers"));
    let ready = int(deployment, "/status/readyReplicas");
    // Unlike the ReplicaSet, printers.go prints a Deployment's empty selector as "" and a bad one as <invalid>.
    let selector = label_selector(deployment.pointer("/spec/selector")).unwrap_or_else(|_| "<invalid>".to_string());
    vec![
        text(deployment, "/metadata/name").into(),
        format!("{ready}/{}", desired_replicas(deployment)).into(),
        int(deployment, "/status/updatedReplicas").into(),
        int(deployment, "/status/availableReplicas").into(),
        age(deployment, now),
        containers,
        images,
        selector.into(),
    ]
}

/// `spec.replicas`, `1` when unset: Kubernetes defaults it before storing.
fn desired_replicas(workload: &Value) -> i64 {
    workload.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1)
}
