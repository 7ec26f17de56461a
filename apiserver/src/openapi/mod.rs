//! OpenAPI v3: just enough description of the API for `kubectl apply` to trust the server.
//!
//! Before `kubectl apply -f` (or `create -f`) sends a manifest, it wants to check it for misspelled fields.
//! It can do that itself, against schemas, or hand the job to the apiserver with `fieldValidation=Strict` —
//! which kubelab does, through the typed decode of each kind. kubectl decides by reading `/openapi/v3` (this
//! module) and, failing that, `/openapi/v2`; if neither exists it refuses to apply without `--validate=false`.
//!
//! How kubectl 1.32 decides (`supportsQueryParamV3` in `k8s.io/cli-runtime/pkg/resource`): in the document of
//! the manifest's group version, it looks for the PATCH operation tagged with the manifest's
//! `x-kubernetes-group-version-kind`, and checks that one of its parameters is named `fieldValidation`. Only the
//! first such operation counts, so each kind here has exactly one PATCH, on its object path:
//!
//! ```text
//! GET /openapi/v3                → {"paths":{"apis/apps/v1":{"serverRelativeURL":"/openapi/v3/apis/apps/v1?hash=…"}}}
//! GET /openapi/v3/apis/apps/v1   → {"paths":{"/apis/apps/v1/namespaces/{namespace}/deployments/{name}":{"patch":{
//!                                     "parameters":[…,{"name":"fieldValidation","in":"query",…}],
//!                                     "x-kubernetes-group-version-kind":{"group":"apps","version":"v1","kind":"Deployment"}}}}}
//! ```
//!
//! The `hash` lets clients cache a document forever: it is derived from the document's content, so it changes
//! exactly when the document does. (Kubernetes serves a document whose `hash` matches with
//! `Cache-Control: public, immutable`.)
//!
//! One deliberate omission: PATCH operations do not list `application/strategic-merge-patch+json` among their
//! request bodies, although the server accepts it. If they did, kubectl would compute its strategic merge patches
//! from *our* schemas, which do not carry merge keys (`containers` merge by `name`); without it, kubectl uses the
//! schemas compiled into it, which do — and sends exactly the patch it sends to a real cluster.
//!
//! What we leave out: the real object schemas (each kind has a one-level schema, so `kubectl explain pod` shows
//! the top fields only), subresource paths, watch and deletecollection operations, and `/openapi/v2`.

use crate::discovery::{group_versions, resources_of};
use kubelab_api::Resource;
use serde_json::{Map, Value, json};

/// The `/openapi/v3` index: where to fetch the document of each group version, with its content hash.
pub fn index() -> Value {
    let paths: Map<String, Value> = group_versions()
        .into_iter()
        .flat_map(|(group, versions)| versions.into_iter().map(move |version| (group, version)))
        .map(|(group, version)| {
            let key = group_version_key(group, version);
            let url = format!("/openapi/v3/{key}?hash={}", hash(&document(group, version)));
            (key, json!({"serverRelativeURL": url}))
        })
        .collect();
    json!({"paths": paths})
}

/// The document of one group version: `path` is a key of the index (`api/v1`, `apis/apps/v1`), with or
/// without a leading `/openapi/v3/`. `None` for a group version we do not serve (404).
pub fn group_version_document(path: &str) -> Option<Value> {
    let path = path.trim_start_matches('/');
    let key = path.strip_prefix("openapi/v3/").unwrap_or(path);
    group_versions()
        .into_iter()
        .flat_map(|(group, versions)| versions.into_iter().map(move |version| (group, version)))
        .find(|(group, version)| group_version_key(group, version) == key)
        .map(|(group, version)| document(group, version))
}

/// A stable hash of a document's content: FNV-1a (64 bits) of its JSON text, in upper-case hex.
///
/// Kubernetes uses SHA-512; any function works as long as it changes when the content does, and serde_json
/// writes an object's keys in sorted order, so equal documents give equal text.
pub fn hash(document: &Value) -> String {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0100_0000_01b3;
    let digest = document.to_string().bytes().fold(OFFSET_BASIS, |h, byte| (h ^ u64::from(byte)).wrapping_mul(PRIME));
    format!("{digest:016X}")
}

/// `api/v1` for the core group, `apis/apps/v1` otherwise: the keys of the index.
fn group_version_key(group: &str, version: &str) -> String {
    if group.is_empty() { format!("api/{version}") } else { format!("apis/{group}/{version}") }
}

/// The OpenAPI document of one group version: the paths of its kinds and a schema per kind.
fn document(group: &str, version: &str) -> Value {
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for resource in resources_of(group, version) {
        let (collection, object) = paths_of(resource);
        paths.insert(resource_path(resource, false), collection);
        paths.insert(resource_path(resource, true), object);
        schemas.insert(schema_name(resource, resource.kind), kind_schema(resource));
        let list_kind = resource.list_kind();
        schemas.insert(schema_name(resource, &list_kind), list_schema(resource));
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "kubelab", "version": "unversioned"},
        "paths": paths,
        "components": {"schemas": schemas},
    })
}

/// `/apis/apps/v1/namespaces/{namespace}/deployments`, and `.../{name}` for one object.
fn resource_path(resource: &Resource, object: bool) -> String {
    let namespace = if resource.namespaced { "/namespaces/{namespace}" } else { "" };
    let name = if object { "/{name}" } else { "" };
    format!("{}{namespace}/{}{name}", resource.group_version_path(), resource.plural)
}

/// The operations on the collection (list, create) and on one object (read, replace, patch, delete).
fn paths_of(resource: &Resource) -> (Value, Value) {
    let mut scope = Vec::new();
    if resource.namespaced {
        scope.push(path_parameter("namespace", "object name and auth scope, such as for teams and projects"));
    }
    let mut object_scope = scope.clone();
    object_scope.push(path_parameter("name", &format!("name of the {}", resource.kind)));

    let kind = resource.kind;
    let object_body =
        json!({"content": {"application/json": {"schema": schema_ref(resource, kind)}}, "required": true});
    // No strategic merge patch here: see the module documentation.
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
    (collection, object)
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

/// `io.k8s.api.apps.v1.Deployment`: Kubernetes' name for the schema of a kind.
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

/// The fields every kind has, described as Kubernetes describes them.
fn type_meta_properties() -> Map<String, Value> {
    let mut properties = Map::new();
    properties.insert(
        "apiVersion".into(),
        json!({"type": "string", "description": "APIVersion defines the \
        versioned schema of this representation of an object. Servers should convert recognized schemas to the \
        latest internal value, and may reject unrecognized values."}),
    );
    properties.insert(
        "kind".into(),
        json!({"type": "string", "description": "Kind is a string value \
        representing the REST resource this object represents. Servers may infer this from the endpoint the \
        client submits requests to. Cannot be updated. In CamelCase."}),
    );
    properties
}

/// The schema of a kind: its type fields and metadata, tagged with its group, version and kind (as a list:
/// a schema may serve several kinds) so that `kubectl explain` finds it.
fn kind_schema(resource: &Resource) -> Value {
    let mut properties = type_meta_properties();
    properties.insert("metadata".into(), json!({"type": "object", "description": "Standard object's metadata."}));
    json!({
        "description": format!("{} {} (kubelab publishes the top level of the schema only).", resource.api_version(),
            resource.kind),
        "type": "object",
        "properties": properties,
        "x-kubernetes-group-version-kind": [{"group": resource.group, "version": resource.version, "kind": resource.kind}],
    })
}

/// The schema of a list of the kind: `DeploymentList`, whose `items` are Deployments.
fn list_schema(resource: &Resource) -> Value {
    let list_kind = resource.list_kind();
    let mut properties = type_meta_properties();
    properties.insert("metadata".into(), json!({"type": "object", "description": "Standard list metadata."}));
    properties.insert("items".into(), json!({"type": "array", "items": schema_ref(resource, resource.kind)}));
    json!({
        "description": format!("{list_kind} is a list of {}.", resource.kind),
        "type": "object",
        "required": ["items"],
        "properties": properties,
        "x-kubernetes-group-version-kind": [{"group": resource.group, "version": resource.version, "kind": list_kind}],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kubelab_api::resources::RESOURCES;

    /// kubectl's `supportsQueryParamV3`, transcribed: the first PATCH tagged with the kind decides.
    fn kubectl_sees_field_validation(document: &Value, group: &str, version: &str, kind: &str) -> bool {
        let wanted = json!({"group": group, "version": version, "kind": kind});
        for path in document["paths"].as_object().unwrap().values() {
            let Some(patch) = path.get("patch") else { continue };
            if patch["x-kubernetes-group-version-kind"] != wanted {
                continue;
            }
            return patch["parameters"].as_array().unwrap().iter().any(|p| p["name"] == "fieldValidation");
        }
        false
    }

    #[test]
    fn kubectl_hands_field_validation_to_the_server_for_every_kind() {
        for resource in RESOURCES {
            let key = group_version_key(resource.group, resource.version);
            let document = group_version_document(&key).unwrap();
            assert!(
                kubectl_sees_field_validation(&document, resource.group, resource.version, resource.kind),
                "{}",
                resource.kind
            );
        }
    }

    #[test]
    fn each_kind_has_exactly_one_patch_and_no_strategic_merge_body() {
        let document = group_version_document("apis/apps/v1").unwrap();
        let patches: Vec<&Value> =
            document["paths"].as_object().unwrap().values().filter_map(|p| p.get("patch")).collect();
        assert_eq!(patches.len(), 2);
        for patch in patches {
            assert!(patch["requestBody"]["content"].get("application/strategic-merge-patch+json").is_none());
        }
    }

    #[test]
    fn the_index_points_at_each_group_version_with_its_hash() {
        let first = index();
        let paths = first["paths"].as_object().unwrap();
        assert_eq!(paths.len(), 3);
        let apps = paths["apis/apps/v1"]["serverRelativeURL"].as_str().unwrap();
        let document = group_version_document("apis/apps/v1").unwrap();
        assert_eq!(apps, format!("/openapi/v3/apis/apps/v1?hash={}", hash(&document)));
        assert!(paths.contains_key("api/v1") && paths.contains_key("apis/coordination.k8s.io/v1"));
        assert_eq!(first, index(), "the index is stable");
    }

    #[test]
    fn documents_are_found_by_index_key_or_full_path() {
        assert!(group_version_document("api/v1").is_some());
        assert_eq!(group_version_document("/openapi/v3/apis/apps/v1"), group_version_document("apis/apps/v1"));
        assert!(group_version_document("apis/batch/v1").is_none());
        assert!(group_version_document("api").is_none());
    }

    #[test]
    fn kinds_have_schemas_tagged_for_kubectl_explain() {
        let document = group_version_document("api/v1").unwrap();
        let pod = &document["components"]["schemas"]["io.k8s.api.core.v1.Pod"];
        assert_eq!(pod["x-kubernetes-group-version-kind"], json!([{"group": "", "version": "v1", "kind": "Pod"}]));
        let path = &document["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"];
        assert_eq!(path["patch"]["operationId"], "patchCoreV1NamespacedPod");
        assert_eq!(
            path["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/io.k8s.api.core.v1.Pod"
        );
        let nodes = &document["paths"]["/api/v1/nodes"];
        assert_eq!(nodes["get"]["operationId"], "listCoreV1Node");
        let leases = group_version_document("apis/coordination.k8s.io/v1").unwrap();
        assert!(leases["components"]["schemas"].get("io.k8s.api.coordination.v1.LeaseList").is_some());
    }

    #[test]
    fn the_hash_changes_with_the_content_and_only_then() {
        let a = json!({"paths": {"b": 1, "a": 2}});
        let b = json!({"paths": {"a": 2, "b": 1}});
        assert_eq!(hash(&a), hash(&b));
        assert_ne!(hash(&a), hash(&json!({"paths": {"a": 2}})));
        assert_eq!(hash(&a).len(), 16);
    }
}
