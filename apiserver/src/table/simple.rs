//! Kinds whose row is a field or two: Namespace, ConfigMap, Lease.

use super::format::{age, map_len, text};
use super::{AGE, Column, NAME};
use chrono::{DateTime, Utc};
use serde_json::Value;

pub(super) const NAMESPACE_COLUMNS: &[Column] = &[NAME, Column::text("Status", "The status of the namespace"), AGE];

/// `default   Active   3d`.
pub(super) fn namespace_cells(namespace: &Value, now: DateTime<Utc>) -> Vec<Value> {
    // The apiserver sets the phase to Active on create; a stored namespace without one is new.
    let phase = match text(namespace, "/status/phase") {
        "" => "Active",
        phase => phase,
    };
    vec![text(namespace, "/metadata/name").into(), phase.into(), age(namespace, now)]
}

pub(super) const CONFIG_MAP_COLUMNS: &[Column] =
    &[NAME, Column::text("Data", "The number of keys in data and binaryData."), AGE];

/// `settings   2   5m`: how many keys, text and binary together.
pub(super) fn config_map_cells(config_map: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let keys = map_len(config_map, "/data") + map_len(config_map, "/binaryData");
    vec![text(config_map, "/metadata/name").into(), keys.into(), age(config_map, now)]
}

pub(super) const LEASE_COLUMNS: &[Column] =
    &[NAME, Column::text("Holder", "holderIdentity contains the identity of the holder of a current lease."), AGE];

/// `kube-scheduler   kube-scheduler-node-1_4f6a...   3d`; an unheld lease shows an empty holder.
pub(super) fn lease_cells(lease: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![text(lease, "/metadata/name").into(), text(lease, "/spec/holderIdentity").into(), age(lease, now)]
}
