//! Object metadata: the rules every kind shares.
//!
//! Mirrors `ValidateObjectMetaAccessor` and `ValidateObjectMetaUpdate` in `k8s.io/apimachinery/pkg/api/validation`,
//! `ValidateLabels` in `pkg/apis/meta/v1/validation`, and the finalizer rule of `pkg/apis/core/validation`.

use super::{IMMUTABLE, Path, each_invalid, non_negative, too_long};
use crate::names::{NameRule, is_label_value, is_qualified_name, name_is_dns_label};
use crate::status::Cause;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::collections::BTreeMap;

/// Whether objects of a kind live in a namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectScope {
    /// Pods, Deployments, Services...: `metadata.namespace` is required.
    Namespaced,
    /// Nodes, Namespaces: `metadata.namespace` is not allowed.
    Cluster,
}

/// The total size of an object's annotations: 256 KiB, so that objects stay small enough for etcd.
const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

/// Finalizers Kubernetes itself knows; any other finalizer must be domain-qualified (`example.com/cleanup`).
const STANDARD_FINALIZERS: &[&str] = &["kubernetes", "orphan", "foregroundDeletion"];

/// The metadata of a new object: name (by the kind's `name_rule`), namespace, labels, annotations, finalizers,
/// owner references.
pub fn validate_object_meta(meta: &ObjectMeta, scope: ObjectScope, name_rule: NameRule) -> Vec<Cause> {
    let path = Path::new("metadata");
    let mut causes = Vec::new();
    let generate_name = meta.generate_name.as_deref().unwrap_or("");
    if !generate_name.is_empty() {
        causes.extend(each_invalid(&path.child("generateName"), generate_name, name_rule(generate_name, true)));
    }
    match meta.name.as_deref().unwrap_or("") {
        // The apiserver generates the name from `generateName` before it validates; a name still missing here
        // but with a `generateName` is about to be generated.
        "" if !generate_name.is_empty() => {}
        "" => causes.push(Cause::required(path.child("name"), "name or generateName is required")),
        name => causes.extend(each_invalid(&path.child("name"), name, name_rule(name, false))),
    }
    let namespace = meta.namespace.as_deref().unwrap_or("");
    match scope {
        ObjectScope::Namespaced if namespace.is_empty() => causes.push(Cause::required(path.child("namespace"), "")),
        ObjectScope::Namespaced => {
            causes.extend(each_invalid(&path.child("namespace"), namespace, name_is_dns_label(namespace, false)));
        }
        ObjectScope::Cluster if !namespace.is_empty() => {
            causes.push(Cause::forbidden(path.child("namespace"), "not allowed on this type"));
        }
        ObjectScope::Cluster => {}
    }
    causes.extend(common(meta, &path));
    causes
}

/// What may not change when an object is updated, plus the checks that apply to any metadata.
pub fn validate_object_meta_update(new: &ObjectMeta, old: &ObjectMeta) -> Vec<Cause> {
    let path = Path::new("metadata");
    let mut causes = Vec::new();
    let immutable = [
        ("name", new.name.as_deref(), old.name.as_deref()),
        ("namespace", new.namespace.as_deref(), old.namespace.as_deref()),
        ("uid", new.uid.as_deref(), old.uid.as_deref()),
    ];
    for (field, new_value, old_value) in immutable {
        let new_value = new_value.unwrap_or("");
        // An update that leaves the uid out means "the same object"; the apiserver fills it in.
        if field == "uid" && new_value.is_empty() {
            continue;
        }
        if new_value != old_value.unwrap_or("") {
            causes.push(Cause::invalid(path.child(field), new_value, IMMUTABLE));
        }
    }
    causes.extend(common(new, &path));
    causes
}

/// The checks of metadata that do not depend on create or update.
fn common(meta: &ObjectMeta, path: &Path) -> Vec<Cause> {
    let mut causes = Vec::new();
    causes.extend(meta.generation.and_then(|g| non_negative(g, path.child("generation"))));
    causes.extend(validate_labels(meta.labels.as_ref(), &path.child("labels")));
    causes.extend(validate_annotations(meta.annotations.as_ref(), &path.child("annotations")));
    causes.extend(validate_owner_references(meta, &path.child("ownerReferences")));
    for (i, finalizer) in meta.finalizers.iter().flatten().enumerate() {
        causes.extend(validate_finalizer_name(
            finalizer,
            &path.child("finalizers"),
            &path.child("finalizers").index(i),
        ));
    }
    causes
}

/// Label keys must be qualified names and values valid label values.
pub fn validate_labels(labels: Option<&BTreeMap<String, String>>, path: &Path) -> Vec<Cause> {
    let mut causes = Vec::new();
    for (key, value) in labels.into_iter().flatten() {
        causes.extend(validate_label_name(key, path));
        causes.extend(each_invalid(path, value, is_label_value(value)));
    }
    causes
}

/// A label key (also a selector requirement's key, a toleration's key).
pub(crate) fn validate_label_name(key: &str, path: &Path) -> Vec<Cause> {
    each_invalid(path, key, is_qualified_name(key))
}

/// Annotation keys are qualified names (case does not matter), and all annotations together stay under 256 KiB.
pub(crate) fn validate_annotations(annotations: Option<&BTreeMap<String, String>>, path: &Path) -> Vec<Cause> {
    let mut causes = Vec::new();
    let mut total = 0;
    for (key, value) in annotations.into_iter().flatten() {
        causes.extend(each_invalid(path, key, is_qualified_name(&key.to_lowercase())));
        total += key.len() + value.len();
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        causes.push(too_long(path.clone(), TOTAL_ANNOTATION_SIZE_LIMIT));
    }
    causes
}

/// A finalizer is a qualified name, and a bare one must be one Kubernetes knows.
pub(crate) fn validate_finalizer_name(finalizer: &str, list_path: &Path, item_path: &Path) -> Vec<Cause> {
    let mut causes = each_invalid(list_path, finalizer, is_qualified_name(finalizer));
    if !finalizer.contains('/') && !STANDARD_FINALIZERS.contains(&finalizer) {
        causes.push(Cause::invalid(
            item_path,
            finalizer,
            "name is neither a standard finalizer name nor is it fully qualified",
        ));
    }
    causes
}

/// Owner references must name their owner completely, and at most one may be the controller: garbage
/// collection and controllers' adoption depend on it.
fn validate_owner_references(meta: &ObjectMeta, path: &Path) -> Vec<Cause> {
    let mut causes = Vec::new();
    let mut controllers = Vec::new();
    for reference in meta.owner_references.iter().flatten() {
        let version = reference.api_version.rsplit('/').next().unwrap_or("");
        if version.is_empty() {
            causes.push(Cause::invalid(path.child("apiVersion"), &reference.api_version, "version must not be empty"));
        }
        if reference.kind.is_empty() {
            causes.push(Cause::invalid(path.child("kind"), &reference.kind, "kind must not be empty"));
        }
        if reference.name.is_empty() {
            causes.push(Cause::invalid(path.child("name"), &reference.name, "name must not be empty"));
        }
        if reference.uid.is_empty() {
            causes.push(Cause::invalid(path.child("uid"), &reference.uid, "uid must not be empty"));
        }
        if reference.controller == Some(true) {
            controllers.push(format!("{}/{}", reference.kind, reference.name));
        }
    }
    if let [first, second, ..] = controllers.as_slice() {
        // Kubernetes prints the whole list of references here; we abbreviate it.
        causes.push(Cause::invalid(
            path,
            super::gofmt::Raw("[]v1.OwnerReference{...}".into()),
            format!("Only one reference can have Controller set to true. Found \"true\" in references for {first} and {second}"),
        ));
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::name_is_dns_subdomain;
    use crate::validation::test_support::lines;

    fn meta(name: &str, namespace: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.into()).filter(|n: &String| !n.is_empty()),
            namespace: Some(namespace.into()).filter(|n: &String| !n.is_empty()),
            ..Default::default()
        }
    }

    #[test]
    fn a_name_is_required_unless_one_will_be_generated() {
        let causes = validate_object_meta(&meta("", "default"), ObjectScope::Namespaced, name_is_dns_subdomain);
        assert_eq!(lines(&causes), vec!["metadata.name: Required value: name or generateName is required"]);
        let mut generated = meta("", "default");
        generated.generate_name = Some("web-".into());
        assert!(validate_object_meta(&generated, ObjectScope::Namespaced, name_is_dns_subdomain).is_empty());
    }

    #[test]
    fn an_invalid_name_gets_the_subdomain_sentence() {
        let causes = validate_object_meta(&meta("Web_1", "default"), ObjectScope::Namespaced, name_is_dns_subdomain);
        assert_eq!(
            lines(&causes),
            vec![
                "metadata.name: Invalid value: \"Web_1\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
            ]
        );
    }

    #[test]
    fn namespaces_are_required_or_forbidden_by_scope() {
        let causes = validate_object_meta(&meta("web", ""), ObjectScope::Namespaced, name_is_dns_subdomain);
        assert_eq!(lines(&causes), vec!["metadata.namespace: Required value"]);
        let causes = validate_object_meta(&meta("n1", "default"), ObjectScope::Cluster, name_is_dns_subdomain);
        assert_eq!(lines(&causes), vec!["metadata.namespace: Forbidden: not allowed on this type"]);
    }

    #[test]
    fn bad_label_keys_and_values_are_reported_on_the_labels_field() {
        let mut object = meta("web", "default");
        object.labels = Some([("-app".to_string(), "ok".to_string()), ("tier".to_string(), "a b".to_string())].into());
        let causes = validate_object_meta(&object, ObjectScope::Namespaced, name_is_dns_subdomain);
        let lines = lines(&causes);
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("metadata.labels: Invalid value: \"-app\": name part must consist of"));
        assert!(lines[1].starts_with("metadata.labels: Invalid value: \"a b\": a valid label must be an empty string"));
    }

    #[test]
    fn a_bare_unknown_finalizer_is_refused() {
        let mut object = meta("web", "default");
        object.finalizers = Some(vec!["kubernetes".into(), "example.com/cleanup".into(), "cleanup".into()]);
        let causes = validate_object_meta(&object, ObjectScope::Namespaced, name_is_dns_subdomain);
        assert_eq!(
            lines(&causes),
            vec![
                "metadata.finalizers[2]: Invalid value: \"cleanup\": name is neither a standard finalizer name nor is it fully qualified"
            ]
        );
    }

    #[test]
    fn name_and_namespace_never_change() {
        let causes = validate_object_meta_update(&meta("web2", "default"), &meta("web", "default"));
        assert_eq!(lines(&causes), vec!["metadata.name: Invalid value: \"web2\": field is immutable"]);
    }
}
