//! The schemas of the kinds: generated from k8s-openapi, never written by hand.
//!
//! k8s-openapi is itself generated from Kubernetes' OpenAPI document, and with its `schemars` feature every type
//! implements `JsonSchema` with Kubernetes' definition name (`io.k8s.api.apps.v1.Deployment`) and the field
//! descriptions a real cluster publishes. Each [`Resource`] of the table adds its kind through
//! [`kubelab_api::kinds::Rules::schema`]; the generator pulls in every type the kind uses, down to `Container`
//! and `Quantity`. Four things are then added as Kubernetes adds them, from data we already have:
//!
//! | What                                   | Where it comes from                                     |
//! |----------------------------------------|---------------------------------------------------------|
//! | `x-kubernetes-group-version-kind`      | the resource table: how kubectl finds a kind's schema   |
//! | the `DeploymentList` schemas           | the resource table: `items` of the kind, `ListMeta`     |
//! | `x-kubernetes-patch-strategy`, `-merge-key` | the strategic merge table in [`crate::patch`]       |
//! | `IntOrString` and `Quantity` formats   | how Kubernetes publishes them, in v2 and in v3          |
//!
//! The definitions are built once in Swagger 2.0's form (`#/definitions/...` references with a description beside
//! them); [`to_v3`] rewrites them for OpenAPI v3 (`#/components/schemas/...`, and a description beside a
//! reference wrapped in `allOf`, as Kubernetes does, because v3 ignores siblings of `$ref`).

use crate::patch::patch_extensions;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ListMeta;
use k8s_openapi::schemars::generate::SchemaSettings;
use kubelab_api::Resource;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// Name → schema, the `definitions` of a Swagger 2.0 document.
pub(super) type Definitions = Map<String, Value>;

const INT_OR_STRING: &str = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";

// ANCHOR: definitions
/// The definitions of `resources`' kinds and lists, and of every type they use, in Swagger 2.0's form.
pub(super) fn definitions<'a>(resources: impl IntoIterator<Item = &'a Resource>) -> Definitions {
    let settings = SchemaSettings::draft07().with(|settings| {
        settings.definitions_path = "/definitions".into();
        settings.meta_schema = None;
        // No rewriting: Swagger 2.0 keeps a description beside a `$ref`, as Kubernetes publishes it.
        settings.transforms.clear();
    });
    let mut generator = settings.into_generator();
    let mut kinds = Vec::new();
    for resource in resources {
        let name = resource.rules.schema(&mut generator);
        let list_meta = generator.subschema_for::<ListMeta>().to_value();
        kinds.push((resource, name, list_meta));
    }
    let mut definitions = generator.take_definitions(false);
    for (resource, name, list_meta) in kinds {
        if let Some(schema) = definitions.get_mut(&name) {
            schema["x-kubernetes-group-version-kind"] = group_version_kind(resource, resource.kind);
            if !METADATA_REQUIRED.contains(&name.as_str()) {
                optional_metadata(schema);
            }
        }
        let list_name = format!("{}List", name);
        definitions.insert(list_name, list_schema(resource, &name, list_meta));
    }
    kubernetes_formats(&mut definitions);
    patch_strategies(&mut definitions);
    definitions
}
// ANCHOR_END: definitions

/// The kinds whose `metadata` Kubernetes marks required: those whose Go field lacks `omitempty`. k8s-openapi marks
/// it required on every kind (its structs hold `ObjectMeta`, not an `Option`), so it is taken off the others, or
/// `kubectl explain pod` would print `metadata <ObjectMeta> -required-` where a real cluster does not.
const METADATA_REQUIRED: &[&str] = &["io.k8s.api.core.v1.Event"];

fn optional_metadata(schema: &mut Value) {
    let Some(required) = schema.get_mut("required").and_then(Value::as_array_mut) else { return };
    required.retain(|field| field != "metadata");
    if required.is_empty() {
        schema.as_object_mut().map(|s| s.remove("required"));
    }
}

/// `[{"group": "apps", "kind": "Deployment", "version": "v1"}]`: a list, because one schema may serve several
/// group versions.
fn group_version_kind(resource: &Resource, kind: &str) -> Value {
    json!([{"group": resource.group, "kind": kind, "version": resource.version}])
}

/// `DeploymentList`: Kubernetes' list types are `metadata` and `items`; k8s-openapi has one generic `List<T>`.
fn list_schema(resource: &Resource, item: &str, mut list_meta: Value) -> Value {
    let kind = resource.kind;
    list_meta["description"] = "Standard list metadata. More info: \
        https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"
        .into();
    json!({
        "description": format!("{kind}List is a list of {kind} objects."),
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string", "description": "APIVersion defines the versioned schema of this \
                representation of an object. Servers should convert recognized schemas to the latest internal \
                value, and may reject unrecognized values. More info: \
                https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources"},
            "items": {"type": "array", "description": format!("Items is the list of {kind} objects."),
                "items": {"$ref": format!("#/definitions/{item}")}},
            "kind": {"type": "string", "description": "Kind is a string value representing the REST resource \
                this object represents. Servers may infer this from the endpoint the client submits requests to. \
                Cannot be updated. In CamelCase. More info: \
                https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"},
            "metadata": list_meta,
        },
        "required": ["items"],
        "x-kubernetes-group-version-kind": group_version_kind(resource, &resource.list_kind()),
    })
}

/// k8s-openapi marks `IntOrString` and `Quantity` with `x-kubernetes-int-or-string` (the CRD convention);
/// Kubernetes' own documents describe them by type and format, which is what clients look for.
fn kubernetes_formats(definitions: &mut Definitions) {
    for (name, schema) in definitions.iter_mut() {
        let description = schema.get("description").cloned().unwrap_or_default();
        match name.as_str() {
            INT_OR_STRING => *schema = json!({"description": description, "type": "string", "format": "int-or-string"}),
            QUANTITY => *schema = json!({"description": description, "type": "string"}),
            _ => {}
        }
    }
}

// ANCHOR: patch_strategies
/// Marks the lists that merge by key (`containers` by `name`, a container's `ports` by `containerPort`) with
/// `x-kubernetes-patch-strategy` and `x-kubernetes-patch-merge-key`.
///
/// The strategic merge table knows a list by its field name and the name of the field holding its object
/// (`ports` within `containers`); a schema knows it by its definition (`ports` of `io.k8s.api.core.v1.Container`).
/// So first find, for each definition, the names of the fields that hold it, then ask the table.
fn patch_strategies(definitions: &mut Definitions) {
    let mut holders: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for schema in definitions.values() {
        for (field, property) in properties(schema) {
            if let Some(target) = referenced_definition(property) {
                holders.entry(target.to_string()).or_default().insert(field.clone());
            }
        }
    }
    let mut marks = Vec::new();
    for (name, schema) in definitions.iter() {
        let Some(holders) = holders.get(name) else { continue };
        for (field, _) in properties(schema).filter(|(_, p)| p["type"] == "array") {
            if let Some(extensions) = holders.iter().find_map(|holder| patch_extensions(holder, field)) {
                marks.push((name.clone(), field.clone(), extensions));
            }
        }
    }
    for (name, field, (strategy, merge_key)) in marks {
        let property = &mut definitions[&name]["properties"][&field];
        property["x-kubernetes-patch-strategy"] = strategy.into();
        if let Some(key) = merge_key {
            property["x-kubernetes-patch-merge-key"] = key.into();
        }
    }
}
// ANCHOR_END: patch_strategies

/// The properties of an object schema (none for other schemas).
fn properties(schema: &Value) -> impl Iterator<Item = (&String, &Value)> {
    schema.get("properties").and_then(Value::as_object).into_iter().flatten()
}

/// The definition a property holds: itself, each item of a list, or each value of a map.
fn referenced_definition(property: &Value) -> Option<&str> {
    let holder = [property.get("items"), property.get("additionalProperties"), Some(property)]
        .into_iter()
        .flatten()
        .find(|schema| schema.get("$ref").is_some())?;
    holder["$ref"].as_str()?.strip_prefix("#/definitions/")
}

// ANCHOR: to_v3
/// The same definitions for an OpenAPI v3 document.
pub(super) fn to_v3(definitions: &Definitions) -> Definitions {
    let mut v3: Definitions = definitions.iter().map(|(name, schema)| (name.clone(), v3_schema(schema))).collect();
    // v3 can say "an integer or a string" directly.
    if let Some(schema) = v3.get_mut(INT_OR_STRING) {
        schema.as_object_mut().map(|s| s.remove("type"));
        schema["oneOf"] = json!([{"type": "integer"}, {"type": "string"}]);
    }
    if let Some(schema) = v3.get_mut(QUANTITY) {
        schema.as_object_mut().map(|s| s.remove("type"));
        schema["oneOf"] = json!([{"type": "string"}, {"type": "number"}]);
    }
    v3
}

/// One schema, rewritten recursively: references point into `components/schemas`, and a reference with
/// siblings (a field's own description) becomes `allOf: [{"$ref": ...}]` beside them.
fn v3_schema(schema: &Value) -> Value {
    match schema {
        Value::Object(object) => {
            let mut out: Map<String, Value> = object.iter().map(|(k, v)| (k.clone(), v3_schema(v))).collect();
            if let Some(Value::String(reference)) = out.remove("$ref") {
                let reference = reference.replacen("#/definitions/", "#/components/schemas/", 1);
                if out.is_empty() {
                    out.insert("$ref".into(), reference.into());
                } else {
                    out.insert("allOf".into(), json!([{"$ref": reference}]));
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(v3_schema).collect()),
        other => other.clone(),
    }
}
// ANCHOR_END: to_v3

#[cfg(test)]
mod tests {
    use super::*;
    use kubelab_api::resources::{RESOURCES, by_kind};

    fn all() -> Definitions {
        definitions(RESOURCES)
    }

    #[test]
    fn every_kind_and_list_is_tagged_with_its_group_version_kind() {
        let definitions = all();
        for resource in RESOURCES {
            let tagged = |kind: &str| {
                definitions.values().any(|schema| {
                    schema["x-kubernetes-group-version-kind"]
                        == json!([{"group": resource.group, "kind": kind, "version": resource.version}])
                })
            };
            assert!(tagged(resource.kind), "{}", resource.kind);
            assert!(tagged(&resource.list_kind()), "{}", resource.list_kind());
        }
        assert!(definitions.contains_key("io.k8s.api.apps.v1.DeploymentList"));
        assert!(definitions["io.k8s.api.core.v1.Pod"].get("required").is_none(), "metadata is optional");
        assert_eq!(definitions["io.k8s.api.core.v1.Event"]["required"], json!(["involvedObject", "metadata"]));
    }

    #[test]
    fn schemas_reach_the_deepest_fields_with_their_descriptions() {
        let definitions = all();
        let probe = &definitions["io.k8s.api.core.v1.Probe"];
        assert!(probe["properties"]["httpGet"]["description"].as_str().unwrap().starts_with("HTTPGet specifies"));
        let http_get = &definitions["io.k8s.api.core.v1.HTTPGetAction"]["properties"]["port"];
        assert_eq!(http_get["$ref"], "#/definitions/io.k8s.apimachinery.pkg.util.intstr.IntOrString");
        assert_eq!(definitions[INT_OR_STRING]["format"], "int-or-string");
        assert_eq!(definitions[QUANTITY]["type"], "string");
    }

    #[test]
    fn keyed_lists_carry_the_merge_key_of_the_strategic_merge_table() {
        let definitions = all();
        let pod_spec = &definitions["io.k8s.api.core.v1.PodSpec"]["properties"];
        assert_eq!(pod_spec["containers"]["x-kubernetes-patch-merge-key"], "name");
        assert_eq!(pod_spec["containers"]["x-kubernetes-patch-strategy"], "merge");
        assert_eq!(pod_spec["volumes"]["x-kubernetes-patch-merge-key"], "name");
        assert!(pod_spec["tolerations"].get("x-kubernetes-patch-strategy").is_none(), "atomic");
        let container = &definitions["io.k8s.api.core.v1.Container"]["properties"];
        assert_eq!(container["ports"]["x-kubernetes-patch-merge-key"], "containerPort");
        assert_eq!(container["env"]["x-kubernetes-patch-merge-key"], "name");
        assert_eq!(container["volumeMounts"]["x-kubernetes-patch-merge-key"], "mountPath");
        assert!(container["envFrom"].get("x-kubernetes-patch-strategy").is_none());
        let service = &definitions["io.k8s.api.core.v1.ServiceSpec"]["properties"];
        assert_eq!(service["ports"]["x-kubernetes-patch-merge-key"], "port");
        let meta = &definitions["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]["properties"];
        assert_eq!(meta["finalizers"]["x-kubernetes-patch-strategy"], "merge");
        assert!(meta["finalizers"].get("x-kubernetes-patch-merge-key").is_none(), "a set has no key");
        let subset = &definitions["io.k8s.api.core.v1.EndpointSubset"]["properties"];
        assert!(subset["ports"].get("x-kubernetes-patch-strategy").is_none(), "endpoint ports are atomic");
    }

    #[test]
    fn v3_wraps_described_references_in_all_of_and_points_into_components() {
        let deployment = by_kind("apps/v1", "Deployment").unwrap();
        let v3 = to_v3(&definitions([deployment]));
        let spec = &v3["io.k8s.api.apps.v1.Deployment"]["properties"]["spec"];
        assert_eq!(spec["allOf"], json!([{"$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"}]));
        assert!(spec["description"].as_str().unwrap().starts_with("Specification of the desired behavior"));
        let containers = &v3["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
        assert_eq!(containers["items"], json!({"$ref": "#/components/schemas/io.k8s.api.core.v1.Container"}));
        assert_eq!(v3[INT_OR_STRING]["oneOf"], json!([{"type": "integer"}, {"type": "string"}]));
        assert!(!v3.values().any(|s| s.to_string().contains("#/definitions/")));
    }

    /// What kube-openapi's v2 parser (used by kubectl 1.27 and 1.28) refuses: several types, an array without
    /// exactly one item schema, a reference to a missing definition.
    #[test]
    fn every_v2_schema_is_one_kubectl_can_parse() {
        fn check(schema: &Value, definitions: &Definitions, at: &str) {
            let Some(object) = schema.as_object() else { return };
            if let Some(reference) = object.get("$ref").and_then(Value::as_str) {
                let name = reference.strip_prefix("#/definitions/").unwrap_or(reference);
                assert!(definitions.contains_key(name), "{at}: dangling reference {reference}");
            }
            assert!(object.get("type").is_none_or(Value::is_string), "{at}: one type");
            if object.get("type").and_then(Value::as_str) == Some("array") {
                assert!(object.get("items").is_some_and(Value::is_object), "{at}: an array has one item schema");
            }
            for key in ["anyOf", "oneOf", "allOf"] {
                assert!(!object.contains_key(key), "{at}: {key}");
            }
            for (field, property) in properties(schema) {
                check(property, definitions, &format!("{at}.{field}"));
            }
            for key in ["items", "additionalProperties"] {
                if let Some(sub) = object.get(key) {
                    check(sub, definitions, &format!("{at}[{key}]"));
                }
            }
        }
        let definitions = all();
        for (name, schema) in &definitions {
            check(schema, &definitions, name);
        }
    }
}
