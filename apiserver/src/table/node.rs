//! The Node row: `node-1   Ready,SchedulingDisabled   control-plane   3d   v1.32.4`.
//!
//! Status is the `Ready` condition (`Ready`, `NotReady`, or `Unknown` when the kubelet never reported it), plus
//! `SchedulingDisabled` once `kubectl cordon` set `spec.unschedulable`. Roles come from labels: every
//! `node-role.kubernetes.io/<role>` key, and the older `kubernetes.io/role=<role>`.

use super::format::{age, flag, list, or_none, text};
use super::{AGE, Column, NAME};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::BTreeSet;

pub(super) const COLUMNS: &[Column] = &[
    NAME,
    Column::text("Status", "The status of the node"),
    Column::text("Roles", "The roles of the node"),
    AGE,
    Column::text("Version", "Kubelet Version reported by the node."),
    Column::text("Internal-IP", "The node's first InternalIP address.").wide(),
    Column::text("External-IP", "The node's first ExternalIP address.").wide(),
    Column::text("OS-Image", "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).")
        .wide(),
    Column::text("Kernel-Version", "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).")
        .wide(),
    Column::text("Container-Runtime", "ContainerRuntime Version reported by the node through runtime remote API.")
        .wide(),
];

/// The label prefix of a node role: `node-role.kubernetes.io/control-plane`.
const ROLE_PREFIX: &str = "node-role.kubernetes.io/";

/// The older label that names a role in its value.
const ROLE_LABEL: &str = "kubernetes.io/role";

pub(super) fn cells(node: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        text(node, "/metadata/name").into(),
        status(node).into(),
        or_none(&roles(node).join(",")).into(),
        age(node, now),
        text(node, "/status/nodeInfo/kubeletVersion").into(),
        address(node, "InternalIP").into(),
        address(node, "ExternalIP").into(),
        or_unknown(text(node, "/status/nodeInfo/osImage")).into(),
        or_unknown(text(node, "/status/nodeInfo/kernelVersion")).into(),
        or_unknown(text(node, "/status/nodeInfo/containerRuntimeVersion")).into(),
    ]
}

/// `Ready`, `NotReady`, `Unknown`, with `,SchedulingDisabled` for a cordoned node.
fn status(node: &Value) -> String {
    let ready = list(node, "/status/conditions").iter().find(|c| text(c, "/type") == "Ready");
    let mut status = vec![match ready {
        Some(condition) if text(condition, "/status") == "True" => "Ready",
        Some(_) => "NotReady",
        None => "Unknown",
    }];
    if flag(node, "/spec/unschedulable") {
        status.push("SchedulingDisabled");
    }
    status.join(",")
}

/// The node's roles, sorted and without duplicates.
fn roles(node: &Value) -> Vec<String> {
    let labels = node.pointer("/metadata/labels").and_then(Value::as_object);
    let mut roles = BTreeSet::new();
    for (key, value) in labels.into_iter().flatten() {
        let role = match key.strip_prefix(ROLE_PREFIX) {
            Some(role) => role,
            None if key == ROLE_LABEL => value.as_str().unwrap_or(""),
            None => "",
        };
        if !role.is_empty() {
            roles.insert(role.to_string());
        }
    }
    roles.into_iter().collect()
}

/// The first address of this type, or `<none>`.
fn address(node: &Value, kind: &str) -> String {
    let found = list(node, "/status/addresses").iter().find(|a| text(a, "/type") == kind);
    or_none(found.map_or("", |a| text(a, "/address")))
}

/// `value`, or `<unknown>` when the kubelet did not report it.
fn or_unknown(value: &str) -> &str {
    if value.is_empty() { "<unknown>" } else { value }
}
