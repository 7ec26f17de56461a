//! Reading and writing the metadata of an object held as JSON.
//!
//! The apiserver and the generic tools (the CLI's `apply`, `get`) handle objects of every kind as
//! `serde_json::Value`; these helpers keep the JSON plumbing out of the code that matters.

use serde_json::{Map, Value};

/// `metadata.<field>` as a string, or `""`.
pub fn meta_str<'a>(object: &'a Value, field: &str) -> &'a str {
    object.pointer(&format!("/metadata/{field}")).and_then(Value::as_str).unwrap_or("")
}

/// `metadata.name`.
pub fn name(object: &Value) -> &str {
    meta_str(object, "name")
}

/// `metadata.namespace`.
pub fn namespace(object: &Value) -> &str {
    meta_str(object, "namespace")
}

/// `metadata.resourceVersion`.
pub fn resource_version(object: &Value) -> &str {
    meta_str(object, "resourceVersion")
}

/// `metadata.labels` as a map (empty when absent).
pub fn labels(object: &Value) -> std::collections::BTreeMap<String, String> {
    object
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
        .unwrap_or_default()
}

/// The `metadata` object, created if missing (and replaced if it is not an object).
pub fn metadata_mut(object: &mut Value) -> &mut Map<String, Value> {
    if !object.is_object() {
        *object = Value::Object(Map::new());
    }
    let root = object.as_object_mut().expect("made an object just above");
    let meta = root.entry("metadata").or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    meta.as_object_mut().expect("made an object just above")
}

/// Sets `metadata.<field>` to a string.
pub fn set_meta(object: &mut Value, field: &str, value: impl Into<String>) {
    metadata_mut(object).insert(field.to_string(), Value::String(value.into()));
}

/// `metadata.finalizers`.
pub fn finalizers(object: &Value) -> Vec<String> {
    object
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn metadata_helpers_read_and_write() {
        let mut pod = json!({"kind": "Pod"});
        set_meta(&mut pod, "name", "p");
        assert_eq!(name(&pod), "p");
        assert_eq!(namespace(&pod), "");
        assert!(labels(&pod).is_empty());
    }
}
