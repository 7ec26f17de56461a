//! ConfigMaps: configuration data, mounted as files or read as environment variables.
//!
//! Mirrors `ValidateConfigMap` and `ValidateConfigMapUpdate` in `pkg/apis/core/validation`.

use super::meta::{ObjectScope, validate_object_meta, validate_object_meta_update};
use super::{Path, each_invalid, too_long};
use crate::names::{is_config_map_key, name_is_dns_subdomain};
use crate::status::Cause;
use k8s_openapi::api::core::v1::ConfigMap;

/// A ConfigMap must fit in one etcd value: 1 MiB of data (Kubernetes' `MaxSecretSize`).
const MAX_SIZE: usize = 1024 * 1024;

pub(super) fn validate_config_map(config_map: &ConfigMap, old: Option<&ConfigMap>) -> Vec<Cause> {
    let mut causes = validate_object_meta(&config_map.metadata, ObjectScope::Namespaced, name_is_dns_subdomain);
    if let Some(old) = old {
        causes.extend(validate_object_meta_update(&config_map.metadata, &old.metadata));
    }
    let mut total = 0;
    let binary = config_map.binary_data.as_ref();
    for (key, value) in config_map.data.iter().flatten() {
        let path = Path::new("data").key(key);
        causes.extend(each_invalid(&path, key, is_config_map_key(key)));
        // A key becomes a file name when mounted: it cannot be in both maps.
        if binary.is_some_and(|b| b.contains_key(key)) {
            causes.push(Cause::invalid(&path, key, "duplicate of key present in binaryData"));
        }
        total += value.len();
    }
    for (key, value) in binary.into_iter().flatten() {
        causes.extend(each_invalid(&Path::new("binaryData").key(key), key, is_config_map_key(key)));
        total += value.0.len();
    }
    if total > MAX_SIZE {
        causes.push(too_long(Path::new(""), MAX_SIZE));
    }
    if let Some(old) = old
        && old.immutable == Some(true)
    {
        // An immutable ConfigMap lets kubelets stop watching it; it can only be deleted and recreated.
        let detail = "field is immutable when `immutable` is set";
        if config_map.immutable != Some(true) {
            causes.push(Cause::forbidden(Path::new("immutable"), detail));
        }
        if config_map.data != old.data {
            causes.push(Cause::forbidden(Path::new("data"), detail));
        }
        if config_map.binary_data != old.binary_data {
            causes.push(Cause::forbidden(Path::new("binaryData"), detail));
        }
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::Validate;
    use crate::validation::test_support::{decode, lines};
    use serde_json::{Value, json};

    fn config_map(extra: Value) -> ConfigMap {
        let mut manifest =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app", "namespace": "default"}});
        manifest.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        decode(manifest)
    }

    #[test]
    fn keys_must_be_valid_file_names() {
        let cm = config_map(json!({"data": {"app.properties": "a=b", "bad key": "x", "..": "y"}}));
        assert_eq!(
            lines(&cm.validate(None)),
            vec![
                "data[..]: Invalid value: \"..\": must not be '..'",
                "data[bad key]: Invalid value: \"bad key\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
            ]
        );
    }

    #[test]
    fn a_config_map_may_not_exceed_one_mebibyte() {
        let cm = config_map(json!({"data": {"big": "x".repeat(MAX_SIZE + 1)}}));
        assert_eq!(lines(&cm.validate(None)), vec![": Too long: must have at most 1048576 bytes"]);
    }

    #[test]
    fn an_immutable_config_map_cannot_change() {
        let old = config_map(json!({"immutable": true, "data": {"a": "1"}}));
        let new = config_map(json!({"immutable": true, "data": {"a": "2"}}));
        assert_eq!(
            lines(&new.validate(Some(&old))),
            vec!["data: Forbidden: field is immutable when `immutable` is set"]
        );
        let mutable = config_map(json!({"data": {"a": "2"}}));
        assert!(mutable.validate(Some(&config_map(json!({"data": {"a": "1"}})))).is_empty());
    }
}
