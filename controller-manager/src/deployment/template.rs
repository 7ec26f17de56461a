//! Pod templates, their hash, and the annotations that make revisions.
//!
//! A Deployment does not run pods itself: each version of its pod template gets a ReplicaSet, named
//! `<deployment>-<hash of the template>` and labelled `pod-template-hash: <hash>` (so the pods of two versions
//! never match each other's selector). Finding "the ReplicaSet of the current template" is comparing templates,
//! and that needs care: a template read back from the API is not byte-for-byte what was written. It carries
//! `metadata.creationTimestamp: null`, `resources: {}` and other empty defaults, and `kubectl rollout undo`
//! copies a ReplicaSet's template back into the Deployment with all of them. So templates are **normalised**
//! before they are hashed or compared: the `pod-template-hash` label, nulls, empty objects and empty lists are
//! dropped (Kubernetes compares Go structs, where an empty struct and a missing one are the same thing).
//!
//! The hash is Kubernetes' recipe with a different input: FNV-1a (32 bits) of the template — here its
//! normalised JSON with sorted keys, in Kubernetes a dump of the Go struct — followed by the Deployment's
//! `collisionCount`, written in decimal and encoded with the alphabet `bcdfghjklmnpqrstvwxz2456789` (no vowels,
//! so no words). The names look like Kubernetes' (`web-5d8f9c7b6d`) but are not the same numbers.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;
use std::collections::BTreeMap;

/// The label that tells the pods (and ReplicaSets) of one template version from another's.
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";
/// On a ReplicaSet: which revision of its Deployment it is. On the Deployment: its current revision.
pub const REVISION: &str = "deployment.kubernetes.io/revision";
/// On a ReplicaSet that was rolled back to: the revisions it had before, comma-separated.
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
/// On a ReplicaSet: the Deployment's `spec.replicas` when the ReplicaSet was last scaled (proportional scaling).
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
/// On a ReplicaSet: the Deployment's replicas + maxSurge when it was last scaled (proportional scaling).
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";

/// Annotations of the Deployment that are *not* copied to its ReplicaSets: they describe the Deployment itself.
const NOT_COPIED: [&str; 6] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    REVISION_HISTORY,
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    "deprecated.deployment.rollback.to",
];

/// How many characters of old revisions `revision-history` keeps (Kubernetes: 2000).
const MAX_REVISION_HISTORY_CHARS: usize = 2000;

// ANCHOR: normalise
/// The template as compared and hashed: JSON without the `pod-template-hash` label, nulls, empty objects and
/// empty lists.
pub fn normalised(template: &PodTemplateSpec) -> Value {
    let mut template = template.clone();
    if let Some(labels) = template.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        labels.remove(POD_TEMPLATE_HASH);
    }
    let mut value = serde_json::to_value(&template).unwrap_or(Value::Null);
    if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("creationTimestamp");
    }
    prune(&mut value);
    value
}

/// Drops nulls, empty objects and empty lists, inside out (so `{"a": {"b": {}}}` disappears entirely).
fn prune(value: &mut Value) -> bool {
    match value {
        Value::Null => false,
        Value::Object(map) => {
            map.retain(|_, v| prune(v));
            !map.is_empty()
        }
        Value::Array(items) => {
            for item in items.iter_mut() {
                prune(item);
            }
            !items.is_empty()
        }
        _ => true,
    }
}

/// Whether two templates describe the same pods, ignoring the `pod-template-hash` label (Kubernetes'
/// `EqualIgnoreHash`). This is how a Deployment recognises the ReplicaSet of its current template — after a
/// rollback, an old one.
pub fn equal_ignore_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    normalised(a) == normalised(b)
}
// ANCHOR_END: normalise

// ANCHOR: hash
/// The `pod-template-hash` of a template (`controller.ComputeHash`): FNV-1a of the normalised template and the
/// collision count, as a short string of consonants and digits.
pub fn template_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let mut text = String::new();
    canonical_json(&normalised(template), &mut text);
    let mut hash = fnv1a(0x811c_9dc5, text.as_bytes());
    if let Some(count) = collision_count {
        let mut bytes = [0u8; 8];
        bytes[..4].copy_from_slice(&(count as u32).to_le_bytes());
        hash = fnv1a(hash, &bytes);
    }
    safe_encode(&hash.to_string())
}

fn fnv1a(mut hash: u32, bytes: &[u8]) -> u32 {
    for byte in bytes {
        hash ^= u32::from(*byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

/// Kubernetes' `rand.SafeEncodeString`: each character mapped into an alphabet without vowels.
fn safe_encode(text: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    text.chars().map(|c| char::from(ALPHABET[(c as usize) % ALPHABET.len()])).collect()
}
// ANCHOR_END: hash

/// JSON with object keys sorted, whatever the map type serde_json was built with, so the hash is stable.
fn canonical_json(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            out.push('{');
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                canonical_json(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// The revision of a ReplicaSet (or Deployment): its `deployment.kubernetes.io/revision` annotation, 0 when
/// absent; `None` when it is not a number.
pub fn revision(meta: &ObjectMeta) -> Option<i64> {
    match meta.annotations.as_ref().and_then(|a| a.get(REVISION)) {
        None => Some(0),
        Some(text) => text.parse().ok(),
    }
}

/// The highest revision among `replica_sets` (0 for none).
pub fn max_revision<'a>(replica_sets: impl IntoIterator<Item = &'a ReplicaSet>) -> i64 {
    replica_sets.into_iter().filter_map(|rs| revision(&rs.metadata)).max().unwrap_or(0)
}

/// Copies the Deployment's own annotations (`kubernetes.io/change-cause`...) to the new ReplicaSet, so that
/// `kubectl rollout history` can show them per revision. Returns whether anything changed.
fn copy_annotations(deployment: &Deployment, rs: &mut ReplicaSet) -> bool {
    let mut changed = false;
    let annotations = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    for (key, value) in deployment.metadata.annotations.iter().flatten() {
        if !NOT_COPIED.contains(&key.as_str()) && annotations.get(key) != Some(value) {
            annotations.insert(key.clone(), value.clone());
            changed = true;
        }
    }
    changed
}

// ANCHOR: new_rs_annotations
/// Brings the new ReplicaSet's annotations up to date (`SetNewReplicaSetAnnotations`): the Deployment's own
/// annotations, and revision `new_revision` if its revision is lower. A ReplicaSet that already had a revision
/// is being rolled back to: its old revisions are kept in `revision-history`. Returns whether anything changed.
pub fn set_new_rs_annotations(deployment: &Deployment, rs: &mut ReplicaSet, new_revision: i64) -> bool {
    let mut changed = copy_annotations(deployment, rs);
    let annotations = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    let old = annotations.get(REVISION).cloned();
    let Ok(old_revision) = old.as_deref().map_or(Ok(0), str::parse::<i64>) else { return changed };
    if old_revision < new_revision {
        annotations.insert(REVISION.into(), new_revision.to_string());
        changed = true;
        if let Some(old) = old {
            let history = annotations.get(REVISION_HISTORY).cloned().unwrap_or_default();
            let mut revisions: Vec<&str> = history.split(',').filter(|r| !r.is_empty()).collect();
            revisions.push(&old);
            while revisions.join(",").len() > MAX_REVISION_HISTORY_CHARS && revisions.len() > 1 {
                revisions.remove(0);
            }
            annotations.insert(REVISION_HISTORY.into(), revisions.join(","));
        }
    }
    changed
}
// ANCHOR_END: new_rs_annotations

/// Records on a ReplicaSet the Deployment size it was scaled for (`SetReplicasAnnotations`): proportional
/// scaling later reads it to know what share of the Deployment this ReplicaSet holds. Returns whether anything
/// changed.
pub fn set_replicas_annotations(rs: &mut ReplicaSet, desired: i32, max: i32) -> bool {
    let annotations = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    let mut changed = false;
    for (key, value) in [(DESIRED_REPLICAS, desired), (MAX_REPLICAS, max)] {
        if annotations.get(key).map(String::as_str) != Some(&value.to_string()) {
            annotations.insert(key.into(), value.to_string());
            changed = true;
        }
    }
    changed
}

/// An integer annotation of a ReplicaSet (`desired-replicas`, `max-replicas`).
pub fn int_annotation(rs: &ReplicaSet, key: &str) -> Option<i32> {
    rs.metadata.annotations.as_ref()?.get(key)?.parse().ok()
}

// ANCHOR: new_replica_set
/// The ReplicaSet for the Deployment's current template: named `<deployment>-<hash>`, the hash added to its
/// labels, selector and template labels, owned by the Deployment, `replicas` pods.
pub fn new_replica_set(deployment: &Deployment, hash: &str, replicas: i32) -> ReplicaSet {
    let spec = deployment.spec.clone().unwrap_or_default();
    let mut template = spec.template.clone();
    let template_meta = template.metadata.get_or_insert_with(ObjectMeta::default);
    template_meta.labels.get_or_insert_with(BTreeMap::new).insert(POD_TEMPLATE_HASH.into(), hash.into());
    let labels = template_meta.labels.clone();
    let mut selector = spec.selector.clone();
    selector.match_labels.get_or_insert_with(BTreeMap::new).insert(POD_TEMPLATE_HASH.into(), hash.into());
    let name = deployment.metadata.name.clone().unwrap_or_default();
    ReplicaSet {
        metadata: ObjectMeta {
            name: Some(format!("{name}-{hash}")),
            namespace: deployment.metadata.namespace.clone(),
            labels,
            owner_references: Some(vec![crate::controller::ownership::controller_ref(
                "apps/v1",
                "Deployment",
                &deployment.metadata,
            )]),
            ..Default::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(replicas),
            min_ready_seconds: spec.min_ready_seconds,
            selector,
            template: Some(template),
        }),
        status: None,
    }
}
// ANCHOR_END: new_replica_set

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodSpec, ResourceRequirements};

    fn template(image: &str) -> PodTemplateSpec {
        PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some([("app".to_string(), "web".to_string())].into()),
                ..Default::default()
            }),
            spec: Some(PodSpec {
                containers: vec![Container { name: "web".into(), image: Some(image.into()), ..Default::default() }],
                ..Default::default()
            }),
        }
    }

    #[test]
    fn a_template_read_back_from_the_api_equals_the_one_written() {
        let written = template("web:1");
        // What `kubectl rollout undo` copies back from a ReplicaSet: the hash label, `creationTimestamp: null`,
        // `resources: {}`.
        let json = serde_json::json!({
            "metadata": {"creationTimestamp": null, "labels": {"app": "web", "pod-template-hash": "5d8f9c7b6d"}},
            "spec": {"containers": [{"name": "web", "image": "web:1", "resources": {}}]}
        });
        let read_back: PodTemplateSpec = serde_json::from_value(json).unwrap();
        assert!(equal_ignore_hash(&written, &read_back));
        assert_eq!(template_hash(&written, None), template_hash(&read_back, None));
        let mut with_resources = template("web:1");
        with_resources.spec.as_mut().unwrap().containers[0].resources = Some(ResourceRequirements::default());
        assert!(equal_ignore_hash(&written, &with_resources));
        assert!(!equal_ignore_hash(&written, &template("web:2")));
    }

    #[test]
    fn the_hash_changes_with_the_template_and_the_collision_count_and_reads_like_kubernetes() {
        let hash = template_hash(&template("web:1"), None);
        assert!((8..=10).contains(&hash.len()), "{hash}");
        assert!(hash.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)), "{hash}");
        assert_ne!(hash, template_hash(&template("web:2"), None));
        assert_ne!(hash, template_hash(&template("web:1"), Some(1)));
        assert_eq!(hash, template_hash(&template("web:1"), None));
    }

    #[test]
    fn rolling_back_to_a_replica_set_gives_it_the_next_revision_and_remembers_its_old_ones() {
        let deployment = Deployment::default();
        let mut rs = ReplicaSet::default();
        rs.metadata.annotations = Some([(REVISION.to_string(), "1".to_string())].into());
        assert!(set_new_rs_annotations(&deployment, &mut rs, 3));
        assert_eq!(revision(&rs.metadata), Some(3));
        assert_eq!(rs.metadata.annotations.as_ref().unwrap()[REVISION_HISTORY], "1");
        assert!(set_new_rs_annotations(&deployment, &mut rs, 5));
        assert_eq!(rs.metadata.annotations.as_ref().unwrap()[REVISION_HISTORY], "1,3");
        // Never lowered.
        assert!(!set_new_rs_annotations(&deployment, &mut rs, 2));
        assert_eq!(revision(&rs.metadata), Some(5));
    }

    #[test]
    fn the_deployments_own_annotations_are_copied_but_not_its_revision_or_last_applied_configuration() {
        let mut deployment = Deployment::default();
        deployment.metadata.annotations = Some(
            [
                ("kubernetes.io/change-cause".to_string(), "set image web:2".to_string()),
                (REVISION.to_string(), "9".to_string()),
                ("kubectl.kubernetes.io/last-applied-configuration".to_string(), "{}".to_string()),
            ]
            .into(),
        );
        let mut rs = ReplicaSet::default();
        set_new_rs_annotations(&deployment, &mut rs, 2);
        let annotations = rs.metadata.annotations.unwrap();
        assert_eq!(annotations["kubernetes.io/change-cause"], "set image web:2");
        assert_eq!(annotations[REVISION], "2");
        assert!(!annotations.contains_key("kubectl.kubernetes.io/last-applied-configuration"));
    }
}
