//! The describe pages of the kinds students meet most: Deployment and Pod, laid out like kubectl's.
//!
//! The object is read into its `k8s-openapi` type, so the code reads like the Kubernetes API reference
//! (`spec.strategy.rollingUpdate.maxSurge`). Timestamps are taken from the JSON, as strings.

use super::{Page, timestamp};
use crate::context::Context;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Container, ContainerStatus, Pod, PodTemplateSpec, Volume};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kubelab_api::client::ListParams;
use serde_json::Value;
use std::collections::BTreeMap;

/// Replicas, strategy, pod template, conditions, and the ReplicaSets the Deployment manages.
pub async fn deployment(page: &mut Page, ctx: &Context, object: &Value) {
    let deployment: Deployment = match serde_json::from_value(object.clone()) {
        Ok(d) => d,
        Err(err) => return page.field(0, "Error", &format!("not a valid Deployment: {err}")),
    };
    let spec = deployment.spec.clone().unwrap_or_default();
    let status = deployment.status.clone().unwrap_or_default();
    let selector: Vec<String> = spec.selector.match_labels.iter().flatten().map(|(k, v)| format!("{k}={v}")).collect();
    page.field(0, "Selector", &selector.join(","));
    page.field(
        0,
        "Replicas",
        &format!(
            "{} desired | {} updated | {} total | {} available | {} unavailable",
            spec.replicas.unwrap_or(1),
            status.updated_replicas.unwrap_or(0),
            status.replicas.unwrap_or(0),
            status.available_replicas.unwrap_or(0),
            status.unavailable_replicas.unwrap_or(0),
        ),
    );
    let strategy = spec.strategy.unwrap_or_default();
    let strategy_type = strategy.type_.unwrap_or_else(|| "RollingUpdate".into());
    page.field(0, "StrategyType", &strategy_type);
    page.field(0, "MinReadySeconds", &spec.min_ready_seconds.unwrap_or(0).to_string());
    if strategy_type == "RollingUpdate" {
        let rolling = strategy.rolling_update.unwrap_or_default();
        let text = |v: Option<IntOrString>| match v.unwrap_or(IntOrString::String("25%".into())) {
            IntOrString::Int(n) => n.to_string(),
            IntOrString::String(s) => s,
        };
        let line = format!("{} max unavailable, {} max surge", text(rolling.max_unavailable), text(rolling.max_surge));
        page.field(0, "RollingUpdateStrategy", &line);
    }
    page.line(0, "Pod Template:");
    pod_template(page, &spec.template);
    conditions(
        page,
        status
            .conditions
            .iter()
            .flatten()
            .map(|c| vec![c.type_.clone(), c.status.clone(), c.reason.clone().unwrap_or_default()]),
        &["Type", "Status", "Reason"],
    );
    replica_sets(page, ctx, &deployment).await;
}

/// `OldReplicaSets` and `NewReplicaSet`: the ReplicaSets this Deployment controls, the new one being the one at
/// the Deployment's current revision (annotation `deployment.kubernetes.io/revision`).
async fn replica_sets(page: &mut Page, ctx: &Context, deployment: &Deployment) {
    const REVISION: &str = "deployment.kubernetes.io/revision";
    let revision = |annotations: &Option<BTreeMap<String, String>>| {
        annotations.as_ref().and_then(|a| a.get(REVISION)).cloned().unwrap_or_default()
    };
    let namespace = deployment.metadata.namespace.as_deref();
    let uid = deployment.metadata.uid.clone().unwrap_or_default();
    let owned: Vec<ReplicaSet> = match ctx.client.list_typed::<ReplicaSet>(namespace, &ListParams::default()).await {
        Ok(list) => list
            .items
            .into_iter()
            .filter(|rs| {
                rs.metadata.owner_references.iter().flatten().any(|o| o.uid == uid && o.controller == Some(true))
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    let current = revision(&deployment.metadata.annotations);
    let describe = |rs: &ReplicaSet| {
        let created = rs.status.as_ref().map(|s| s.replicas).unwrap_or(0);
        let desired = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
        format!("{} ({created}/{desired} replicas created)", rs.metadata.name.clone().unwrap_or_default())
    };
    let (new, old): (Vec<&ReplicaSet>, Vec<&ReplicaSet>) =
        owned.iter().partition(|rs| !current.is_empty() && revision(&rs.metadata.annotations) == current);
    let old: Vec<String> =
        old.into_iter().filter(|rs| rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0) > 0).map(describe).collect();
    page.field(0, "OldReplicaSets", &or_none(&old));
    let new = new.first().map(|rs| describe(rs)).unwrap_or_else(|| "<none>".into());
    page.field(0, "NewReplicaSet", &new);
}

/// Node, status, IP, owner, containers with their state, and conditions.
pub fn pod(page: &mut Page, object: &Value) {
    let pod: Pod = match serde_json::from_value(object.clone()) {
        Ok(p) => p,
        Err(err) => return page.field(0, "Error", &format!("not a valid Pod: {err}")),
    };
    let spec = pod.spec.clone().unwrap_or_default();
    let status = pod.status.clone().unwrap_or_default();
    let node = match (spec.node_name.as_deref(), status.host_ip.as_deref()) {
        (Some(node), Some(ip)) => format!("{node}/{ip}"),
        (Some(node), None) => node.to_string(),
        (None, _) => "<none>".into(),
    };
    page.field(0, "Node", &node);
    if let Some(start) = object.pointer("/status/startTime").and_then(Value::as_str) {
        page.field(0, "Start Time", &timestamp(start));
    }
    let phase = status.phase.clone().unwrap_or_else(|| "Pending".into());
    let phase = if pod.metadata.deletion_timestamp.is_some() { format!("Terminating ({phase})") } else { phase };
    page.field(0, "Status", &phase);
    page.field(0, "IP", status.pod_ip.as_deref().unwrap_or(""));
    if let Some(owner) = pod.metadata.owner_references.iter().flatten().find(|o| o.controller == Some(true)) {
        page.field(0, "Controlled By", &format!("{}/{}", owner.kind, owner.name));
    }
    page.line(0, "Containers:");
    let statuses = status.container_statuses.clone().unwrap_or_default();
    for container in &spec.containers {
        let status = statuses.iter().find(|s| s.name == container.name);
        self::container(page, "", container, status);
    }
    volumes(page, 0, spec.volumes.as_deref().unwrap_or_default());
    conditions(
        page,
        status.conditions.iter().flatten().map(|c| vec![c.type_.clone(), c.status.clone()]),
        &["Type", "Status"],
    );
}

/// A pod template: labels, then each container.
fn pod_template(page: &mut Page, template: &PodTemplateSpec) {
    let labels = template.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap_or_default();
    page.labels(1, "Labels", &labels);
    page.line(1, "Containers:");
    for container in template.spec.iter().flat_map(|s| &s.containers) {
        // kubectl indents a template's container names by one more space than a pod's.
        self::container(page, " ", container, None);
    }
    let volumes = template.spec.as_ref().and_then(|s| s.volumes.as_deref()).unwrap_or_default();
    self::volumes(page, 1, volumes);
}

/// `Volumes:` with each volume's name and source type (`configMap`, `emptyDir`...), or `<none>`.
fn volumes(page: &mut Page, level: usize, volumes: &[Volume]) {
    let items: Vec<String> = volumes
        .iter()
        .map(|v| {
            let json = serde_json::to_value(v).unwrap_or_default();
            let source = json.as_object().and_then(|m| m.keys().find(|k| *k != "name").cloned()).unwrap_or_default();
            format!("{} ({source})", v.name)
        })
        .collect();
    page.list(level, "Volumes", &items);
}

/// One container: image, ports, state (for a pod), environment and mounts. Its fields are at level 2 in a pod
/// and in a template alike; only the name line differs (`indent`).
fn container(page: &mut Page, indent: &str, container: &Container, status: Option<&ContainerStatus>) {
    page.line(1, format!("{indent}{}:", container.name));
    let level = 2;
    page.field(level, "Image", container.image.as_deref().unwrap_or(""));
    let ports: Vec<String> = container
        .ports
        .iter()
        .flatten()
        .map(|p| format!("{}/{}", p.container_port, p.protocol.as_deref().unwrap_or("TCP")))
        .collect();
    page.field(level, "Port", &or_none(&ports));
    if let Some(status) = status {
        container_state(page, level, status);
        page.field(level, "Ready", if status.ready { "True" } else { "False" });
        page.field(level, "Restart Count", &status.restart_count.to_string());
    }
    let env: Vec<String> = container
        .env
        .iter()
        .flatten()
        .map(|e| format!("{}:\t{}", e.name, e.value.as_deref().unwrap_or("<set from a source>")))
        .collect();
    if env.is_empty() {
        page.field(level, "Environment", "<none>");
    } else {
        page.line(level, "Environment:");
        env.iter().for_each(|line| page.line(level + 1, line));
    }
    let mounts: Vec<String> = container
        .volume_mounts
        .iter()
        .flatten()
        .map(|m| {
            let mode = if m.read_only == Some(true) { "ro" } else { "rw" };
            format!("{} from {} ({mode})", m.mount_path, m.name)
        })
        .collect();
    page.list(level, "Mounts", &mounts);
}

/// `State: Running` with its start, `Waiting` with its reason, or `Terminated` with reason and exit code.
fn container_state(page: &mut Page, level: usize, status: &ContainerStatus) {
    let Some(state) = &status.state else { return };
    let time = |t: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time| timestamp(&t.0.to_string());
    if let Some(running) = &state.running {
        page.field(level, "State", "Running");
        if let Some(started) = &running.started_at {
            page.field(level + 1, "Started", &time(started));
        }
    } else if let Some(waiting) = &state.waiting {
        page.field(level, "State", "Waiting");
        page.field(level + 1, "Reason", waiting.reason.as_deref().unwrap_or(""));
    } else if let Some(terminated) = &state.terminated {
        page.field(level, "State", "Terminated");
        page.field(level + 1, "Reason", terminated.reason.as_deref().unwrap_or(""));
        page.field(level + 1, "Exit Code", &terminated.exit_code.to_string());
    }
}

/// A `Conditions:` table; left out, as kubectl does, until a controller has written conditions.
fn conditions(page: &mut Page, rows: impl Iterator<Item = Vec<String>>, headers: &[&str]) {
    let rows: Vec<Vec<String>> = rows.collect();
    if rows.is_empty() {
        return;
    }
    page.line(0, "Conditions:");
    page.line(1, headers.join("\t"));
    page.line(1, headers.iter().map(|h| "-".repeat(h.len())).collect::<Vec<_>>().join("\t"));
    for row in rows {
        page.line(1, row.join("\t"));
    }
}

/// Items joined by commas, or kubectl's `<none>`.
fn or_none(items: &[String]) -> String {
    if items.is_empty() { "<none>".into() } else { items.join(", ") }
}
