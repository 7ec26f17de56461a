//! Pods, and the Pod specs inside workload templates.
//!
//! Mirrors `ValidatePodCreate`, `ValidatePodUpdate`, `ValidatePodSpec`, `ValidatePodTemplateSpec` and the
//! volume and toleration checks of `pkg/apis/core/validation/validation.go`. Containers are checked in
//! [`super::container`], probes and hooks in [`super::probe`].

use super::container::{validate_containers, validate_init_containers};
use super::meta::{ObjectScope, validate_annotations, validate_label_name, validate_labels, validate_object_meta};
use super::{Path, each_invalid, enum_value, not_supported_value};
use crate::names::{inclusive_range_error, is_dns1123_label, is_label_value, name_is_dns_subdomain};
use crate::status::Cause;
use k8s_openapi::api::core::v1::{Pod, PodSpec, PodTemplateSpec, Toleration, Volume};
use serde_json::Value;
use std::collections::BTreeSet;

const RESTART_POLICIES: &[&str] = &["Always", "OnFailure", "Never"];
const DNS_POLICIES: &[&str] = &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"];
const MAX_INT32: i64 = i32::MAX as i64;

/// What a Pod update may change; everything else in a Pod's spec is fixed once the Pod exists, because the
/// kubelet has already acted on it.
const UPDATABLE_POD_SPEC_FIELDS: &[&str] = &[
    "`spec.containers[*].image`",
    "`spec.initContainers[*].image`",
    "`spec.activeDeadlineSeconds`",
    "`spec.tolerations` (only additions to existing tolerations)",
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
];

/// A Pod on create (`old` is `None`) or update.
pub(super) fn validate_pod(pod: &Pod, old: Option<&Pod>) -> Vec<Cause> {
    let spec_path = Path::new("spec");
    let empty = PodSpec::default();
    let spec = pod.spec.as_ref().unwrap_or(&empty);
    let mut causes = validate_object_meta(&pod.metadata, ObjectScope::Namespaced, name_is_dns_subdomain);
    if let Some(old) = old {
        causes.extend(super::meta::validate_object_meta_update(&pod.metadata, &old.metadata));
    }
    causes.extend(validate_pod_spec(spec, &spec_path));
    // Only a Pod, not a template, is checked for stray whitespace around images (templates are older and lax).
    for (list, containers) in
        [("containers", spec.containers.as_slice()), ("initContainers", spec.init_containers.as_deref().unwrap_or(&[]))]
    {
        for (i, container) in containers.iter().enumerate() {
            let image = container.image.as_deref().unwrap_or("");
            if image.trim() != image {
                let path = spec_path.child(list).index(i).child("image");
                causes.push(Cause::invalid(path, image, "must not have leading or trailing whitespace"));
            }
        }
    }
    match old {
        None => {
            if spec.ephemeral_containers.as_ref().is_some_and(|e| !e.is_empty()) {
                causes.push(Cause::forbidden(spec_path.child("ephemeralContainers"), "cannot be set on create"));
            }
            let gated = spec.scheduling_gates.as_ref().is_some_and(|g| !g.is_empty());
            if gated && spec.node_name.as_deref().is_some_and(|n| !n.is_empty()) {
                causes.push(Cause::forbidden(
                    spec_path.child("nodeName"),
                    "cannot be set until all schedulingGates have been cleared",
                ));
            }
        }
        Some(old) => causes.extend(validate_pod_update(spec, old.spec.as_ref().unwrap_or(&empty), &spec_path)),
    }
    causes
}

/// Only images, `activeDeadlineSeconds` (downwards), tolerations and scheduling gates may change.
fn validate_pod_update(new: &PodSpec, old: &PodSpec, path: &Path) -> Vec<Cause> {
    let mut causes = Vec::new();
    let lists = [
        ("containers", new.containers.as_slice(), old.containers.as_slice()),
        (
            "initContainers",
            new.init_containers.as_deref().unwrap_or(&[]),
            old.init_containers.as_deref().unwrap_or(&[]),
        ),
    ];
    for (list, new_list, old_list) in lists {
        if new_list.len() != old_list.len() {
            causes.push(Cause::forbidden(path.child(list), "pod updates may not add or remove containers"));
            return causes;
        }
    }
    match (new.active_deadline_seconds, old.active_deadline_seconds) {
        (Some(new_deadline), _) if !(0..=MAX_INT32).contains(&new_deadline) => {
            causes.push(Cause::invalid(
                path.child("activeDeadlineSeconds"),
                new_deadline,
                inclusive_range_error(0, MAX_INT32),
            ));
            return causes;
        }
        (Some(new_deadline), Some(old_deadline)) if old_deadline < new_deadline => {
            let detail = "must be less than or equal to previous value";
            causes.push(Cause::invalid(path.child("activeDeadlineSeconds"), new_deadline, detail));
            return causes;
        }
        (None, Some(_)) => {
            let detail = "must not update from a positive integer to nil value";
            causes.push(Cause::invalid(path.child("activeDeadlineSeconds"), super::gofmt::Raw("null".into()), detail));
        }
        _ => {}
    }
    // Put the updatable fields back to their old values; whatever still differs was not allowed to change.
    let mut munged = new.clone();
    for (container, old) in munged.containers.iter_mut().zip(&old.containers) {
        container.image.clone_from(&old.image);
    }
    for (container, old) in munged.init_containers.iter_mut().flatten().zip(old.init_containers.iter().flatten()) {
        container.image.clone_from(&old.image);
    }
    munged.active_deadline_seconds = old.active_deadline_seconds;
    munged.tolerations.clone_from(&old.tolerations);
    munged.scheduling_gates.clone_from(&old.scheduling_gates);
    if old.termination_grace_period_seconds.is_some_and(|s| s < 0) && munged.termination_grace_period_seconds == Some(1)
    {
        munged.termination_grace_period_seconds = old.termination_grace_period_seconds;
    }
    let (munged, old) =
        (serde_json::to_value(&munged).unwrap_or_default(), serde_json::to_value(old).unwrap_or_default());
    if munged != old {
        causes.push(Cause::forbidden(
            path,
            format!(
                "pod updates may not change fields other than {}\n{}",
                UPDATABLE_POD_SPEC_FIELDS.join(","),
                spec_diff(&old, &munged)
            ),
        ));
    }
    causes
}

/// A short account of what changed, one line per top-level field of the spec. Kubernetes prints a full
/// `cmp.Diff` of the spec here; this keeps its spirit with less noise.
fn spec_diff(old: &Value, new: &Value) -> String {
    let empty = serde_json::Map::new();
    let (old, new) = (old.as_object().unwrap_or(&empty), new.as_object().unwrap_or(&empty));
    let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    let mut lines = Vec::new();
    for key in keys {
        let (before, after) = (old.get(key), new.get(key));
        if before != after {
            let show = |v: Option<&Value>| v.map_or_else(|| "null".to_string(), Value::to_string);
            lines.push(format!("-  {key}: {}\n+  {key}: {}", show(before), show(after)));
        }
    }
    lines.join("\n")
}

/// The Pod template of a workload: its labels and annotations (at `<path>.labels`, as Kubernetes names them)
/// and its spec.
pub fn validate_pod_template(template: &PodTemplateSpec, path: &Path) -> Vec<Cause> {
    let metadata = template.metadata.clone().unwrap_or_default();
    let mut causes = validate_labels(metadata.labels.as_ref(), &path.child("labels"));
    causes.extend(validate_annotations(metadata.annotations.as_ref(), &path.child("annotations")));
    let spec = template.spec.clone().unwrap_or_default();
    causes.extend(validate_pod_spec(&spec, &path.child("spec")));
    if spec.ephemeral_containers.as_ref().is_some_and(|e| !e.is_empty()) {
        let field = path.child("spec").child("ephemeralContainers");
        causes.push(Cause::forbidden(field, "ephemeral containers not allowed in pod template"));
    }
    causes
}

/// A Pod spec, wherever it is (`spec` of a Pod, `spec.template.spec` of a Deployment).
pub fn validate_pod_spec(spec: &PodSpec, path: &Path) -> Vec<Cause> {
    let mut causes = Vec::new();
    if spec.termination_grace_period_seconds.is_none() {
        causes.push(Cause::required(path.child("terminationGracePeriodSeconds"), ""));
    }
    let grace_period = spec.termination_grace_period_seconds;
    let volumes = validate_volumes(spec.volumes.as_deref().unwrap_or(&[]), &path.child("volumes"), &mut causes);
    causes.extend(validate_containers(&spec.containers, &volumes, grace_period, &path.child("containers")));
    let init = spec.init_containers.as_deref().unwrap_or(&[]);
    causes.extend(validate_init_containers(
        init,
        &spec.containers,
        &volumes,
        grace_period,
        &path.child("initContainers"),
    ));
    causes.extend(enum_value(spec.restart_policy.as_deref(), RESTART_POLICIES, path.child("restartPolicy")));
    causes.extend(enum_value(spec.dns_policy.as_deref(), DNS_POLICIES, path.child("dnsPolicy")));
    causes.extend(validate_labels(spec.node_selector.as_ref(), &path.child("nodeSelector")));
    for (field, value) in [("serviceAccountName", &spec.service_account_name), ("nodeName", &spec.node_name)] {
        if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
            causes.extend(each_invalid(&path.child(field), value, name_is_dns_subdomain(value, false)));
        }
    }
    if let Some(deadline) = spec.active_deadline_seconds
        && !(1..=MAX_INT32).contains(&deadline)
    {
        causes.push(Cause::invalid(path.child("activeDeadlineSeconds"), deadline, inclusive_range_error(1, MAX_INT32)));
    }
    for (field, value) in [("hostname", &spec.hostname), ("subdomain", &spec.subdomain)] {
        if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
            causes.extend(each_invalid(&path.child(field), value, is_dns1123_label(value)));
        }
    }
    causes.extend(validate_tolerations(spec.tolerations.as_deref().unwrap_or(&[]), &path.child("tolerations")));
    if let Some(class) = spec.priority_class_name.as_deref().filter(|v| !v.is_empty()) {
        causes.extend(each_invalid(&path.child("priorityClassName"), class, name_is_dns_subdomain(class, false)));
    }
    causes
}

/// Volume names are DNS labels, unique, and each volume has exactly one source. Returns the valid names, which
/// volume mounts must refer to.
fn validate_volumes(volumes: &[Volume], path: &Path, causes: &mut Vec<Cause>) -> BTreeSet<String> {
    /// Volume sources in the order Kubernetes checks them.
    const SOURCES: &[&str] = &[
        "emptyDir",
        "hostPath",
        "gitRepo",
        "gcePersistentDisk",
        "awsElasticBlockStore",
        "secret",
        "nfs",
        "iscsi",
        "glusterfs",
        "flocker",
        "persistentVolumeClaim",
        "rbd",
        "cinder",
        "cephfs",
        "quobyte",
        "downwardAPI",
        "fc",
        "flexVolume",
        "configMap",
        "azureFile",
        "vsphereVolume",
        "photonPersistentDisk",
        "portworxVolume",
        "azureDisk",
        "storageos",
        "projected",
        "scaleIO",
        "csi",
        "ephemeral",
        "image",
    ];
    let mut names = BTreeSet::new();
    for (i, volume) in volumes.iter().enumerate() {
        let item = path.index(i);
        let mut problems = Vec::new();
        let json = serde_json::to_value(volume).unwrap_or_default();
        let mut sources = SOURCES.iter().filter(|s| json.get(**s).is_some());
        match (sources.next(), sources.next()) {
            (None, _) => problems.push(Cause::required(&item, "must specify a volume type")),
            (Some(_), Some(second)) => {
                problems.push(Cause::forbidden(item.child(second), "may not specify more than 1 volume type"))
            }
            (Some(source), None) => problems.extend(validate_volume_source(volume, source, &item)),
        }
        if volume.name.is_empty() {
            problems.push(Cause::required(item.child("name"), ""));
        } else {
            problems.extend(each_invalid(&item.child("name"), &volume.name, is_dns1123_label(&volume.name)));
        }
        if names.contains(&volume.name) {
            problems.push(Cause::duplicate(item.child("name"), &volume.name));
        }
        if problems.is_empty() {
            names.insert(volume.name.clone());
        }
        causes.extend(problems);
    }
    names
}

/// The one required field of the sources students use.
fn validate_volume_source(volume: &Volume, source: &str, path: &Path) -> Vec<Cause> {
    let missing = match source {
        "configMap" => volume.config_map.as_ref().is_some_and(|s| s.name.is_empty()).then_some("name"),
        "secret" => volume
            .secret
            .as_ref()
            .is_some_and(|s| s.secret_name.as_deref().unwrap_or("").is_empty())
            .then_some("secretName"),
        "hostPath" => volume.host_path.as_ref().is_some_and(|s| s.path.is_empty()).then_some("path"),
        "persistentVolumeClaim" => {
            volume.persistent_volume_claim.as_ref().is_some_and(|s| s.claim_name.is_empty()).then_some("claimName")
        }
        _ => None,
    };
    missing.map(|field| Cause::required(path.child(source).child(field), "")).into_iter().collect()
}

/// Tolerations: what taints a Pod accepts.
fn validate_tolerations(tolerations: &[Toleration], path: &Path) -> Vec<Cause> {
    let mut causes = Vec::new();
    for (i, toleration) in tolerations.iter().enumerate() {
        let item = path.index(i);
        let key = toleration.key.as_deref().unwrap_or("");
        let operator = toleration.operator.as_deref().unwrap_or("");
        let effect = toleration.effect.as_deref().unwrap_or("");
        let value = toleration.value.as_deref().unwrap_or("");
        if !key.is_empty() {
            causes.extend(validate_label_name(key, &item.child("key")));
        }
        if key.is_empty() && operator != "Exists" {
            let detail = "operator must be Exists when `key` is empty, which means \"match all values and all keys\"";
            causes.push(Cause::invalid(item.child("operator"), operator, detail));
        }
        if toleration.toleration_seconds.is_some() && effect != "NoExecute" {
            let detail = "effect must be 'NoExecute' when `tolerationSeconds` is set";
            causes.push(Cause::invalid(item.child("effect"), effect, detail));
        }
        match operator {
            "Equal" | "" => {
                let problems = is_label_value(value);
                if !problems.is_empty() {
                    causes.push(Cause::invalid(item.child("operator"), value, problems.join(";")));
                }
            }
            "Exists" if !value.is_empty() => {
                let detail = "value must be empty when `operator` is 'Exists'";
                causes.push(Cause::invalid(item.child("operator"), value, detail));
            }
            "Exists" => {}
            other => causes.push(Cause::not_supported(item.child("operator"), other, &["Equal", "Exists"])),
        }
        if !effect.is_empty() {
            causes.extend(validate_taint_effect(effect, &item.child("effect")));
        }
    }
    causes
}

/// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
pub(super) fn validate_taint_effect(effect: &str, path: &Path) -> Option<Cause> {
    const EFFECTS: &[&str] = &["NoSchedule", "PreferNoSchedule", "NoExecute"];
    (!EFFECTS.contains(&effect)).then(|| not_supported_value(path.clone(), effect, EFFECTS))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::Validate;
    use crate::validation::test_support::{decode, lines, pod_errors as errors};
    use serde_json::json;

    fn pod(spec: Value) -> Pod {
        decode(
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "default"}, "spec": spec}),
        )
    }

    #[test]
    fn a_valid_pod_has_no_errors() {
        let spec = json!({"containers": [{"name": "web", "image": "nginx", "ports": [{"containerPort": 80, "name": "http"}],
            "resources": {"requests": {"cpu": "100m"}, "limits": {"cpu": "0.5", "memory": "64Mi"}},
            "readinessProbe": {"httpGet": {"port": "http"}}}]});
        assert_eq!(errors(spec), Vec::<String>::new());
    }

    #[test]
    fn a_pod_needs_at_least_one_container() {
        assert_eq!(errors(json!({"containers": []})), vec!["spec.containers: Required value"]);
        let pod: Pod =
            decode(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "default"}}));
        assert_eq!(lines(&pod.validate(None)), vec!["spec.containers: Required value"]);
    }

    #[test]
    fn policies_must_be_known_values() {
        let spec = json!({"restartPolicy": "Sometimes", "dnsPolicy": "Google",
            "containers": [{"name": "web", "image": "nginx", "imagePullPolicy": "Daily"}]});
        assert_eq!(
            errors(spec),
            vec![
                "spec.containers[0].imagePullPolicy: Unsupported value: \"Daily\": supported values: \"Always\", \"IfNotPresent\", \"Never\"",
                "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
                "spec.dnsPolicy: Unsupported value: \"Google\": supported values: \"ClusterFirstWithHostNet\", \"ClusterFirst\", \"Default\", \"None\"",
            ]
        );
    }

    #[test]
    fn volume_mounts_must_name_a_volume() {
        let spec = json!({"volumes": [{"name": "config", "configMap": {"name": "app"}}, {"name": "empty"}],
            "containers": [{"name": "web", "image": "nginx",
                "volumeMounts": [{"name": "config", "mountPath": "/etc/app"}, {"name": "data", "mountPath": "/data"}]}]});
        assert_eq!(
            errors(spec),
            vec![
                "spec.volumes[1]: Required value: must specify a volume type",
                "spec.containers[0].volumeMounts[1].name: Not found: \"data\"",
            ]
        );
    }

    #[test]
    fn a_pod_update_may_change_images_but_not_the_restart_policy() {
        let spec = json!({"containers": [{"name": "web", "image": "nginx:1.26"}]});
        let old = pod(spec);
        let new = pod(json!({"containers": [{"name": "web", "image": "nginx:1.27"}]}));
        assert!(new.validate(Some(&old)).is_empty());
        let new = pod(json!({"restartPolicy": "Never", "containers": [{"name": "web", "image": "nginx:1.27"}]}));
        let errors = lines(&new.validate(Some(&old)));
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].starts_with(
                "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
            ),
            "{}",
            errors[0]
        );
        assert!(errors[0].contains("+  restartPolicy: \"Never\""), "{}", errors[0]);
        let grown = pod(json!({"containers": [{"name": "web", "image": "a"}, {"name": "b", "image": "b"}]}));
        assert_eq!(
            lines(&grown.validate(Some(&old))),
            vec!["spec.containers: Forbidden: pod updates may not add or remove containers"]
        );
    }

    #[test]
    fn tolerations_without_a_key_must_use_exists() {
        let spec = json!({"containers": [{"name": "web", "image": "nginx"}],
            "tolerations": [{"operator": "Equal", "value": "x"}, {"key": "gpu", "operator": "Exists", "effect": "Never"}]});
        assert_eq!(
            errors(spec),
            vec![
                "spec.tolerations[0].operator: Invalid value: \"Equal\": operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
                "spec.tolerations[1].effect: Unsupported value: \"Never\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"",
            ]
        );
    }
}
