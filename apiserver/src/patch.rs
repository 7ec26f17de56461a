//! PATCH: the four ways a client can describe a change instead of sending the whole object.
//!
//! `kubectl` rarely sends a full object for an update. It sends a *patch*, and the `Content-Type` says which
//! language the patch is written in:
//!
//! | Content-Type                             | Sent by                                 | Meaning                 |
//! |------------------------------------------|-----------------------------------------|-------------------------|
//! | `application/json-patch+json`            | `rollout undo`, `patch --type=json`     | RFC 6902 operations     |
//! | `application/merge-patch+json`           | `label`, `annotate`, `scale`            | RFC 7386 merge patch    |
//! | `application/strategic-merge-patch+json` | `apply`, `set image`, `rollout restart` | Kubernetes' merge patch |
//! | `application/apply-patch+yaml`           | `apply --server-side`                   | server-side apply       |
//!
//! Everything here is a pure function from (stored object, patch body) to the new object. The REST handler
//! reads the object, calls [`apply`], then validates and stores the result with the usual optimistic-concurrency
//! check, exactly like an update; so a patch can never bypass validation.
//!
//! The two RFC formats come from the `json-patch` crate. The strategic merge patch is written by hand in
//! [`strategic`], because it is the lesson: it is why `kubectl apply` can change a container's image without
//! dropping the ports the live object already has.
//!
//! What we leave out:
//! - **Server-side apply is approximated.** Real server-side apply records, per field, which *field manager*
//!   set it (in `metadata.managedFields`), reports conflicts between managers, and removes fields a manager
//!   stopped applying. We apply the submitted configuration as a strategic merge patch onto the live object and
//!   track no owners, so `--force-conflicts` has nothing to override and fields dropped from the file stay.
//! - Patches of custom resources (Kubernetes refuses strategic merge for them; we serve no CRDs).
//! - `application/apply-patch+cbor` and the other CBOR variants added in Kubernetes 1.32.

mod strategic;

pub(crate) use strategic::patch_extensions;

use kubelab_api::ApiError;
use serde_json::Value;

/// The patch languages, named after their `Content-Type`: one enum for the client that sends a patch and the
/// apiserver that reads it.
pub use kubelab_api::patch::PatchType;

// ANCHOR: apply
/// Applies a patch `body` to the `original` object and returns the patched object.
///
/// Errors follow Kubernetes: a body that cannot be read as the stated patch type is a 400 `BadRequest`; a
/// well-formed JSON patch that cannot be carried out (a `test` that fails, a path that does not exist) is a
/// 422 `Invalid`. The result is *not* validated here; the caller validates it like any update.
pub fn apply(patch_type: PatchType, original: &Value, body: &[u8]) -> Result<Value, ApiError> {
    match patch_type {
        PatchType::Json => json_patch(original, body),
        PatchType::Merge => merge_patch(original, body),
        PatchType::StrategicMerge => strategic::merge(original, parse_json_object(body, patch_type)?),
        PatchType::Apply => strategic::merge(original, parse_apply_configuration(body)?),
    }
}
// ANCHOR_END: apply

/// RFC 6902. The operations run in order on a copy; if one fails, the whole patch fails and nothing changes.
fn json_patch(original: &Value, body: &[u8]) -> Result<Value, ApiError> {
    let patch: json_patch::Patch = serde_json::from_slice(body)
        .map_err(|err| ApiError::bad_request(format!("the body is not a valid JSON patch (RFC 6902): {err}")))?;
    let mut patched = original.clone();
    json_patch::patch(&mut patched, &patch).map_err(|err| {
        // The crate's own message names the operation only by its index; say which operation and path it was.
        let operation = patch.0.get(err.operation).map_or("unknown", operation_name);
        unprocessable(format!(
            "the JSON patch could not be applied: operation {} ({operation} {}) failed: {}",
            err.operation,
            pointer_display(err.path.as_str()),
            err.kind
        ))
    })?;
    Ok(patched)
}

/// RFC 7386. Kubernetes accepts only an object here, never a bare value that would replace the whole object.
fn merge_patch(original: &Value, body: &[u8]) -> Result<Value, ApiError> {
    let patch = parse_json_object(body, PatchType::Merge)?;
    let mut patched = original.clone();
    json_patch::merge(&mut patched, &patch);
    Ok(patched)
}

/// Parses a JSON patch body that must be an object (merge and strategic merge patches).
fn parse_json_object(body: &[u8], patch_type: PatchType) -> Result<Value, ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|err| {
        ApiError::bad_request(format!("the body of a {} patch is not valid JSON: {err}", patch_type.content_type()))
    })?;
    ensure_object(value, patch_type)
}

/// The apply configuration is YAML, and JSON is YAML too; kubectl actually sends JSON. We try the strict JSON
/// parser first, because it is exact and fast, and fall back to YAML.
fn parse_apply_configuration(body: &[u8]) -> Result<Value, ApiError> {
    let value = match serde_json::from_slice::<Value>(body) {
        Ok(value) => value,
        Err(_) => serde_saphyr::from_slice::<Value>(body).map_err(|err| {
            ApiError::bad_request(format!("the body of an apply patch is neither valid YAML nor JSON: {err}"))
        })?,
    };
    ensure_object(value, PatchType::Apply)
}

fn ensure_object(value: Value, patch_type: PatchType) -> Result<Value, ApiError> {
    if value.is_object() {
        Ok(value)
    } else {
        Err(ApiError::bad_request(format!(
            "a {} patch must be a JSON object, not {}",
            patch_type.content_type(),
            strategic::json_type(&value)
        )))
    }
}

/// 422 `Invalid` without field causes: what Kubernetes answers when a well-formed patch cannot be applied.
fn unprocessable(message: String) -> ApiError {
    ApiError { code: 422, reason: "Invalid".into(), message, details: None }
}

fn operation_name(operation: &json_patch::PatchOperation) -> &'static str {
    match operation {
        json_patch::PatchOperation::Add(_) => "add",
        json_patch::PatchOperation::Remove(_) => "remove",
        json_patch::PatchOperation::Replace(_) => "replace",
        json_patch::PatchOperation::Move(_) => "move",
        json_patch::PatchOperation::Copy(_) => "copy",
        json_patch::PatchOperation::Test(_) => "test",
    }
}

/// The root pointer is the empty string, which reads badly in a message.
fn pointer_display(pointer: &str) -> &str {
    if pointer.is_empty() { "/" } else { pointer }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A Deployment as the apiserver stores it: one container with a port, an env var and a volume mount.
    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web", "tier": "front"},
                         "annotations": {"team": "blue"}},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{
                        "name": "web",
                        "image": "x:1",
                        "ports": [{"containerPort": 80, "protocol": "TCP"}],
                        "env": [{"name": "MODE", "value": "prod"}, {"name": "LOG", "value": "info"}]
                    }]}
                }
            }
        })
    }

    fn patch(patch_type: PatchType, original: &Value, body: Value) -> Result<Value, ApiError> {
        apply(patch_type, original, body.to_string().as_bytes())
    }

    fn container(object: &Value, index: usize) -> &Value {
        &object["spec"]["template"]["spec"]["containers"][index]
    }

    #[test]
    fn content_types_are_recognised_with_or_without_parameters() {
        assert_eq!(PatchType::from_content_type("application/json-patch+json"), Some(PatchType::Json));
        assert_eq!(PatchType::from_content_type("application/merge-patch+json"), Some(PatchType::Merge));
        assert_eq!(
            PatchType::from_content_type("application/strategic-merge-patch+json; charset=utf-8"),
            Some(PatchType::StrategicMerge)
        );
        assert_eq!(PatchType::from_content_type("Application/Apply-Patch+YAML"), Some(PatchType::Apply));
        assert_eq!(PatchType::from_content_type("application/json"), None);
    }

    #[test]
    fn kubectl_apply_patch_changes_the_image_and_keeps_the_ports() {
        let body = json!({
            "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{...}"}},
            "spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "web"}],
                "containers": [{"image": "x:2", "name": "web"}]
            }}}
        });
        let patched = patch(PatchType::StrategicMerge, &deployment(), body).unwrap();
        assert_eq!(container(&patched, 0)["image"], "x:2");
        assert_eq!(container(&patched, 0)["ports"], json!([{"containerPort": 80, "protocol": "TCP"}]));
        assert_eq!(patched["metadata"]["annotations"]["team"], "blue");
        assert_eq!(patched["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"], "{...}");
        assert!(patched["spec"]["template"]["spec"].get("$setElementOrder/containers").is_none());
    }

    #[test]
    fn env_merges_by_name() {
        let body = json!({"spec": {"template": {"spec": {"containers": [{
            "name": "web",
            "env": [{"name": "LOG", "value": "debug"}, {"name": "NEW", "value": "1"}]
        }]}}}});
        let patched = patch(PatchType::StrategicMerge, &deployment(), body).unwrap();
        assert_eq!(
            container(&patched, 0)["env"],
            json!([{"name": "MODE", "value": "prod"}, {"name": "LOG", "value": "debug"}, {"name": "NEW", "value": "1"}])
        );
    }

    #[test]
    fn a_container_is_deleted_by_a_patch_delete_directive() {
        let mut original = deployment();
        original["spec"]["template"]["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "sidecar", "image": "envoy"}));
        let body = json!({"spec": {"template": {"spec": {
            "containers": [{"$patch": "delete", "name": "sidecar"}]
        }}}});
        let patched = patch(PatchType::StrategicMerge, &original, body).unwrap();
        let containers = patched["spec"]["template"]["spec"]["containers"].as_array().unwrap();
        assert_eq!(containers.len(), 1);
        assert_eq!(containers[0]["name"], "web");
        assert_eq!(containers[0]["ports"][0]["containerPort"], 80);
    }

    #[test]
    fn kubectl_set_image_changes_only_the_named_container() {
        let mut original = deployment();
        original["spec"]["template"]["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "sidecar", "image": "envoy:1"}));
        // What `kubectl set image deployment/web web=x:3` sends: a two-way strategic merge patch.
        let body = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "web"}, {"name": "sidecar"}],
            "containers": [{"image": "x:3", "name": "web"}]
        }}}});
        let patched = patch(PatchType::StrategicMerge, &original, body).unwrap();
        assert_eq!(container(&patched, 0)["image"], "x:3");
        assert_eq!(container(&patched, 0)["env"][0]["name"], "MODE");
        assert_eq!(container(&patched, 1), &json!({"name": "sidecar", "image": "envoy:1"}));
    }

    #[test]
    fn kubectl_rollout_restart_adds_the_restarted_at_annotation_to_the_template() {
        let body = json!({"spec": {"template": {"metadata": {"annotations": {
            "kubectl.kubernetes.io/restartedAt": "2025-01-01T10:00:00Z"
        }}}}});
        let patched = patch(PatchType::StrategicMerge, &deployment(), body).unwrap();
        let template_metadata = &patched["spec"]["template"]["metadata"];
        assert_eq!(template_metadata["annotations"]["kubectl.kubernetes.io/restartedAt"], "2025-01-01T10:00:00Z");
        assert_eq!(template_metadata["labels"]["app"], "web");
        assert_eq!(container(&patched, 0), container(&deployment(), 0));
    }

    #[test]
    fn merge_patch_null_removes_a_label_and_keeps_the_others() {
        let body = json!({"metadata": {"labels": {"tier": null, "owner": "ana"}}});
        let patched = patch(PatchType::Merge, &deployment(), body).unwrap();
        assert_eq!(patched["metadata"]["labels"], json!({"app": "web", "owner": "ana"}));
    }

    #[test]
    fn merge_patch_replaces_lists_whole_which_is_why_apply_does_not_use_it() {
        let body = json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "x:2"}]}}}});
        let patched = patch(PatchType::Merge, &deployment(), body).unwrap();
        assert_eq!(container(&patched, 0), &json!({"name": "web", "image": "x:2"}));
    }

    #[test]
    fn merge_patch_on_the_scale_subresource_sets_replicas() {
        let scale = json!({"kind": "Scale", "spec": {"replicas": 2}});
        let patched = patch(PatchType::Merge, &scale, json!({"spec": {"replicas": 5}})).unwrap();
        assert_eq!(patched["spec"]["replicas"], 5);
    }

    #[test]
    fn json_patch_replaces_the_template_as_rollout_undo_sends_it() {
        let old_template = json!({
            "metadata": {"creationTimestamp": null, "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "x:1", "resources": {}}]}
        });
        let body = json!([
            {"op": "replace", "path": "/spec/template", "value": old_template},
            {"op": "replace", "path": "/metadata/annotations", "value": {"deployment.kubernetes.io/revision": "3"}}
        ]);
        let patched = patch(PatchType::Json, &deployment(), body).unwrap();
        assert_eq!(patched["spec"]["template"], old_template);
        assert_eq!(patched["metadata"]["annotations"], json!({"deployment.kubernetes.io/revision": "3"}));
        assert_eq!(patched["spec"]["replicas"], 2);
    }

    #[test]
    fn a_failed_json_patch_test_is_a_422_that_names_the_operation() {
        let body = json!([
            {"op": "replace", "path": "/spec/replicas", "value": 9},
            {"op": "test", "path": "/metadata/name", "value": "other"}
        ]);
        let err = patch(PatchType::Json, &deployment(), body).unwrap_err();
        assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
        assert_eq!(
            err.message,
            "the JSON patch could not be applied: operation 1 (test /metadata/name) failed: value did not match"
        );
    }

    #[test]
    fn a_json_patch_to_a_missing_path_is_a_422() {
        let body = json!([{"op": "replace", "path": "/spec/nothing/here", "value": 1}]);
        let err = patch(PatchType::Json, &deployment(), body).unwrap_err();
        assert_eq!(err.code, 422);
        assert!(err.message.contains("replace /spec/nothing/here"), "{}", err.message);
    }

    #[test]
    fn a_malformed_json_patch_is_a_400_saying_what_is_wrong() {
        let err = patch(PatchType::Json, &deployment(), json!([{"op": "frobnicate", "path": "/a"}])).unwrap_err();
        assert_eq!((err.code, err.reason.as_str()), (400, "BadRequest"));
        assert!(err.message.starts_with("the body is not a valid JSON patch (RFC 6902)"), "{}", err.message);
        let err = apply(PatchType::Json, &deployment(), b"{not json").unwrap_err();
        assert_eq!(err.code, 400);
    }

    #[test]
    fn merge_and_strategic_patches_must_be_objects() {
        for patch_type in [PatchType::Merge, PatchType::StrategicMerge, PatchType::Apply] {
            let err = patch(patch_type, &deployment(), json!([1, 2])).unwrap_err();
            assert_eq!(err.code, 400, "{patch_type:?}");
            assert!(err.message.ends_with("must be a JSON object, not an array"), "{}", err.message);
        }
    }

    #[test]
    fn an_apply_patch_in_yaml_merges_like_a_strategic_merge_patch() {
        let body = "
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  template:
    spec:
      containers:
      - name: web
        image: x:2
";
        let patched = apply(PatchType::Apply, &deployment(), body.as_bytes()).unwrap();
        assert_eq!(patched["spec"]["replicas"], 3);
        assert_eq!(container(&patched, 0)["image"], "x:2");
        assert_eq!(container(&patched, 0)["ports"][0]["containerPort"], 80);
    }

    #[test]
    fn an_apply_patch_in_json_as_kubectl_sends_it_is_accepted() {
        let body = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                          "spec": {"replicas": 4}});
        let patched = patch(PatchType::Apply, &deployment(), body).unwrap();
        assert_eq!(patched["spec"]["replicas"], 4);
    }

    #[test]
    fn an_apply_patch_creates_from_an_empty_object() {
        let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}});
        let patched = patch(PatchType::Apply, &json!({}), body.clone()).unwrap();
        assert_eq!(patched, body);
    }
}
