//! The operations of each resource, as OpenAPI describes them, and their Swagger 2.0 form.
//!
//! kubectl reads one thing from the operations: the PATCH of a kind, tagged with its
//! `x-kubernetes-group-version-kind`, and whether it accepts a `fieldValidation` parameter (then kubectl sends
//! `fieldValidation=Strict` and lets the server report unknown fields). The rest describes the API for other
//! tools, written once in v3's words; [`to_v2`] says the same in Swagger 2.0's.

use kubelab_api::Resource;
use serde_json::{Map, Value, json};

/// The path items of one resource: its collection (`.../deployments`: list, create) and one object
/// (`.../deployments/{name}`: read, replace, patch, delete).
pub(super) fn path_items(resource: &Resource) -> [(String, Value); 2] {
    let mut scope = Vec::new();
    if resource.namespaced {
        scope.push(path_parameter("namespace", "object name and auth scope, such as for teams and projects"));
    }
    let mut object_scope = scope.clone();
    object_scope.push(path_parameter("name", &format!("name of the {}", resource.kind)));

    let kind = resource.kind;
    let object_body =
        json!({"content": {"application/json": {"schema": schema_ref(resource, kind)}}, "required": true});
    // No strategic merge patch here: see the documentation of the `openapi` module.
    let patch_body = json!({
        "content": {
            "application/json-patch+json": {"schema": {"type": "object"}},
            "application/merge-patch+json": {"schema": {"type": "object"}},
            "application/apply-patch+yaml": {"schema": {"type": "object"}},
        },
        "required": true,
    });
    let writes = || vec![field_manager(), field_validation()];
    let mut patch_parameters = writes();
    patch_parameters.push(query_parameter(
        "force",
        "Force is going to \"force\" Apply requests: it re-acquires conflicting fields owned by other managers.",
        "boolean",
    ));

    let list_kind = resource.list_kind();
    let collection = json!({
        "parameters": scope,
        "get": operation(resource, "list", &format!("list objects of kind {kind}"), vec![], None, &list_kind),
        "post": operation(resource, "post", &format!("create a {kind}"), writes(), Some(object_body.clone()), kind),
    });
    let object = json!({
        "parameters": object_scope,
        "get": operation(resource, "get", &format!("read the specified {kind}"), vec![], None, kind),
        "put": operation(resource, "put", &format!("replace the specified {kind}"), writes(), Some(object_body), kind),
        "patch": operation(resource, "patch", &format!("partially update the specified {kind}"), patch_parameters,
            Some(patch_body), kind),
        "delete": operation(resource, "delete", &format!("delete a {kind}"), vec![], None, kind),
    });
    [(resource_path(resource, false), collection), (resource_path(resource, true), object)]
}

/// `/apis/apps/v1/namespaces/{namespace}/deployments`, and `.../{name}` for one object.
fn resource_path(resource: &Resource, object: bool) -> String {
    let namespace = if resource.namespaced { "/namespaces/{namespace}" } else { "" };
    let name = if object { "/{name}" } else { "" };
    format!("{}{namespace}/{}{name}", resource.group_version_path(), resource.plural)
}

/// One operation, tagged with the kind it acts on: the tag is what kubectl looks for.
fn operation(
    resource: &Resource,
    action: &str,
    description: &str,
    parameters: Vec<Value>,
    request_body: Option<Value>,
    response_kind: &str,
) -> Value {
    let mut operation = json!({
        "tags": [tag(resource)],
        "description": description,
        "operationId": operation_id(resource, action),
        "parameters": parameters,
        "responses": {"200": {"description": "OK",
            "content": {"application/json": {"schema": schema_ref(resource, response_kind)}}}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": resource.group, "version": resource.version, "kind": resource.kind},
    });
    if let Some(body) = request_body {
        operation["requestBody"] = body;
    }
    operation
}

/// The parameter kubectl checks for: the server reports unknown fields when asked `fieldValidation=Strict`.
fn field_validation() -> Value {
    query_parameter(
        "fieldValidation",
        "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing \
        unknown or duplicate fields. Valid values are: Ignore (drop them silently), Warn (drop them with a warning), \
        Strict (fail the request with a BadRequest error listing them).",
        "string",
    )
}

/// Who makes the change, for server-side apply's field ownership.
fn field_manager() -> Value {
    query_parameter(
        "fieldManager",
        "fieldManager is a name associated with the actor or entity that is making these changes.",
        "string",
    )
}

fn query_parameter(name: &str, description: &str, kind: &str) -> Value {
    json!({"name": name, "in": "query", "description": description, "schema": {"type": kind, "uniqueItems": true}})
}

fn path_parameter(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "path", "description": description, "required": true,
           "schema": {"type": "string", "uniqueItems": true}})
}

/// `io.k8s.api.apps.v1.Deployment`: Kubernetes' name for the schema of a kind, as k8s-openapi names it too.
fn schema_name(resource: &Resource, kind: &str) -> String {
    format!("io.k8s.api.{}.{}.{kind}", package(resource), resource.version)
}

fn schema_ref(resource: &Resource, kind: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{}", schema_name(resource, kind))})
}

/// The Go package of a group: `core` for the core group, `coordination` for `coordination.k8s.io`.
fn package(resource: &Resource) -> &'static str {
    match resource.group.split('.').next() {
        Some("") | None => "core",
        Some(first) => first,
    }
}

/// `apps_v1`, `core_v1`: how Kubernetes groups operations.
fn tag(resource: &Resource) -> String {
    format!("{}_{}", package(resource), resource.version)
}

/// `patchAppsV1NamespacedDeployment`, `readCoreV1Node`: Kubernetes' operation names.
fn operation_id(resource: &Resource, action: &str) -> String {
    let verb = match action {
        "get" => "read",
        "put" => "replace",
        "post" => "create",
        other => other,
    };
    let namespaced = if resource.namespaced { "Namespaced" } else { "" };
    format!("{verb}{}{}{namespaced}{}", capitalize(package(resource)), capitalize(resource.version), resource.kind)
}

fn capitalize(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map(|first| first.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
}

// ANCHOR: to_v2
/// A path item in Swagger 2.0's words: a parameter states its `type` itself, a request body is a parameter
/// `in: body`, media types move to `consumes` and `produces`, and a response names its schema directly.
pub(super) fn to_v2(path_item: &Value) -> Value {
    let mut v2 = Map::new();
    for (key, value) in path_item.as_object().into_iter().flatten() {
        let converted = match key.as_str() {
            "parameters" => Value::Array(value.as_array().into_iter().flatten().map(parameter_to_v2).collect()),
            _ => operation_to_v2(value),
        };
        v2.insert(key.clone(), converted);
    }
    Value::Object(v2)
}

fn operation_to_v2(operation: &Value) -> Value {
    let mut v2 = operation.clone();
    let Some(object) = v2.as_object_mut() else { return v2 };
    let mut parameters: Vec<Value> = object
        .remove("parameters")
        .as_ref()
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(parameter_to_v2)
        .collect();
    if let Some(body) = object.remove("requestBody") {
        let content = body["content"].as_object().cloned().unwrap_or_default();
        object.insert("consumes".into(), content.keys().cloned().collect());
        let schema = content.values().next().map(|media| media["schema"].clone()).unwrap_or(json!({}));
        parameters.push(json!({"name": "body", "in": "body", "required": true, "schema": v2_ref(schema)}));
    }
    object.insert("parameters".into(), parameters.into());
    object.insert("produces".into(), json!(["application/json"]));
    if let Some(Value::Object(responses)) = object.get_mut("responses") {
        for response in responses.values_mut() {
            let schema = response["content"]["application/json"]["schema"].clone();
            if let Some(response) = response.as_object_mut() {
                response.remove("content");
                response.insert("schema".into(), v2_ref(schema));
            }
        }
    }
    v2
}

fn parameter_to_v2(parameter: &Value) -> Value {
    let mut v2 = parameter.clone();
    if let Some(object) = v2.as_object_mut()
        && let Some(Value::Object(schema)) = object.remove("schema")
    {
        object.extend(schema);
    }
    v2
}

fn v2_ref(schema: Value) -> Value {
    match schema["$ref"].as_str() {
        Some(reference) => json!({"$ref": reference.replacen("#/components/schemas/", "#/definitions/", 1)}),
        None => schema,
    }
}
// ANCHOR_END: to_v2

#[cfg(test)]
mod tests {
    use super::*;
    use kubelab_api::resources::by_kind;

    #[test]
    fn v2_operations_state_parameter_types_and_a_body_parameter() {
        let deployment = by_kind("apps/v1", "Deployment").unwrap();
        let [_, (path, object)] = path_items(deployment);
        assert_eq!(path, "/apis/apps/v1/namespaces/{namespace}/deployments/{name}");
        let v2 = to_v2(&object);
        assert_eq!(
            v2["parameters"][0],
            json!({"name": "namespace", "in": "path", "required": true,
            "type": "string", "uniqueItems": true,
            "description": "object name and auth scope, such as for teams and projects"})
        );
        let put = &v2["put"];
        assert_eq!(put["consumes"], json!(["application/json"]));
        let body = put["parameters"].as_array().unwrap().iter().find(|p| p["in"] == "body").unwrap();
        assert_eq!(body["schema"]["$ref"], "#/definitions/io.k8s.api.apps.v1.Deployment");
        assert_eq!(put["responses"]["200"]["schema"]["$ref"], "#/definitions/io.k8s.api.apps.v1.Deployment");
        let patch = &v2["patch"];
        assert!(
            patch["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "fieldValidation" && p["type"] == "string")
        );
        assert_eq!(patch["x-kubernetes-group-version-kind"]["kind"], "Deployment");
    }
}
