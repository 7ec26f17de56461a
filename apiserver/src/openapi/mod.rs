//! OpenAPI: the complete description of the API, for `kubectl apply`, `kubectl explain` and every other client.
//!
//! A Kubernetes apiserver publishes the schema of every kind it serves, in two forms:
//!
//! ```text
//! GET /openapi/v3                → {"paths":{"apis/apps/v1":{"serverRelativeURL":"/openapi/v3/apis/apps/v1?hash=…"}}}
//! GET /openapi/v3/apis/apps/v1   → one OpenAPI 3.0 document per group version: paths and components.schemas
//! GET /openapi/v2                → one Swagger 2.0 document for everything (JSON, or protobuf when asked)
//! ```
//!
//! Clients use them for three things:
//! - **Validation.** Before `kubectl apply -f` sends a manifest, it looks in the document of the manifest's group
//!   version for the PATCH operation tagged with the manifest's `x-kubernetes-group-version-kind`; if that
//!   operation accepts a `fieldValidation` parameter, kubectl sends `fieldValidation=Strict` and lets the server
//!   report unknown fields (kubelab does, through the typed decode of each kind). With no document at all,
//!   kubectl refuses to apply without `--validate=false`.
//! - **Patches.** A client computing a strategic merge patch needs to know that `containers` merge by `name`:
//!   the schemas say so with `x-kubernetes-patch-merge-key`, as Kubernetes' do. kubectl 1.27 and 1.28 load the v2
//!   document before `kubectl apply` — in protobuf only ([`gnostic`]) — and without it they fail with "the server
//!   could not find the requested resource". (kubectl computes its patches from our keys only if a PATCH
//!   operation lists strategic merge patch, which ours do not: see below.)
//! - **`kubectl explain`** walks the v3 schemas from the kind's root (`io.k8s.api.apps.v1.Deployment`, found by its
//!   `x-kubernetes-group-version-kind`) field by field, printing each one's type and description.
//!
//! The schemas are generated from k8s-openapi ([`schemas`]), the operations from the resource table ([`paths`]).
//! Both documents are built once, on first use, and kept: they never change while the server runs.
//!
//! The index's `hash` lets clients cache a document forever: it is derived from the document's content, so it
//! changes exactly when the document does. (Kubernetes serves a document whose `hash` matches with
//! `Cache-Control: public, immutable`.)
//!
//! One deliberate omission: v3 PATCH operations do not list `application/strategic-merge-patch+json` among their
//! request bodies, although the server accepts it. If they did, every kubectl from 1.27 to 1.33 would compute its
//! strategic merge patches from our v3 schemas (tried: with it, and without our merge keys, `apply` replaces whole
//! lists). Our merge keys would do for that, but the strategic merge table has no `retainKeys` strategies
//! (`DeploymentSpec.strategy`, `PodSpec.volumes`), so switching a Deployment to `Recreate` by `apply` would leave
//! its `rollingUpdate` behind. Without it, kubectl uses the metadata compiled into it, which is complete, and sends
//! exactly the patch it sends to a real cluster.
//!
//! What we leave out: subresource paths (`/status`, `/scale`), watch and deletecollection operations, the
//! `x-kubernetes-list-type`/`-map-keys` extensions, `default` values in schemas, and the `Cache-Control`/`ETag`
//! headers.

mod gnostic;
mod paths;
mod schemas;

use crate::discovery::{group_versions, resources_of};
use kubelab_api::resources::RESOURCES;
use serde_json::{Map, Value, json};
use std::sync::LazyLock;

/// The media type client-go asks for to get `/openapi/v2` in protobuf.
pub const V2_PROTOBUF: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";

/// The media type Kubernetes answers it with: the same with a `.` for the `@`, which is not allowed in a media
/// type (Go's `mime.ParseMediaType`, which client-go applies to every response, refuses it).
pub const V2_PROTOBUF_RESPONSE: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// Every document, built on first use.
struct Documents {
    /// `(index key, document, hash)` per group version: `("apis/apps/v1", {...}, "3F2A…")`.
    v3: Vec<(String, Value, String)>,
    v2_json: Value,
    v2_protobuf: Vec<u8>,
}

static DOCUMENTS: LazyLock<Documents> = LazyLock::new(|| {
    let v3 = group_versions()
        .into_iter()
        .flat_map(|(group, versions)| versions.into_iter().map(move |version| (group, version)))
        .map(|(group, version)| {
            let document = v3_document(group, version);
            let hash = hash(&document);
            (group_version_key(group, version), document, hash)
        })
        .collect();
    let v2_json = v2_document();
    let v2_protobuf = gnostic::encode(&v2_json);
    Documents { v3, v2_json, v2_protobuf }
});

/// The `/openapi/v3` index: where to fetch the document of each group version, with its content hash.
pub fn index() -> Value {
    let paths: Map<String, Value> = DOCUMENTS
        .v3
        .iter()
        .map(|(key, _, hash)| (key.clone(), json!({"serverRelativeURL": format!("/openapi/v3/{key}?hash={hash}")})))
        .collect();
    json!({"paths": paths})
}

/// The document of one group version: `path` is a key of the index (`api/v1`, `apis/apps/v1`), with or
/// without a leading `/openapi/v3/`. `None` for a group version we do not serve (404).
pub fn group_version_document(path: &str) -> Option<&'static Value> {
    let path = path.trim_start_matches('/');
    let key = path.strip_prefix("openapi/v3/").unwrap_or(path);
    DOCUMENTS.v3.iter().find(|(k, _, _)| k == key).map(|(_, document, _)| document)
}

/// `/openapi/v2` as JSON.
pub fn v2_json() -> &'static Value {
    &DOCUMENTS.v2_json
}

/// `/openapi/v2` as gnostic protobuf ([`V2_PROTOBUF`]).
pub fn v2_protobuf() -> &'static [u8] {
    &DOCUMENTS.v2_protobuf
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

// ANCHOR: documents
/// The OpenAPI v3 document of one group version: the paths of its kinds and the schemas they use.
fn v3_document(group: &str, version: &str) -> Value {
    let paths: Map<String, Value> = resources_of(group, version).flat_map(paths::path_items).collect();
    let schemas = schemas::to_v3(&schemas::definitions(resources_of(group, version)));
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    })
}

/// The Swagger 2.0 document: every group version in one, the same operations and schemas in v2's words.
fn v2_document() -> Value {
    let paths: Map<String, Value> =
        RESOURCES.iter().flat_map(paths::path_items).map(|(path, item)| (path, paths::to_v2(&item))).collect();
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": paths,
        "definitions": schemas::definitions(RESOURCES),
    })
}
// ANCHOR_END: documents

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
                kubectl_sees_field_validation(document, resource.group, resource.version, resource.kind),
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
        assert_eq!(paths.len(), 4, "api/v1 and three groups");
        let apps = paths["apis/apps/v1"]["serverRelativeURL"].as_str().unwrap();
        let document = group_version_document("apis/apps/v1").unwrap();
        assert_eq!(apps, format!("/openapi/v3/apis/apps/v1?hash={}", hash(document)));
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
    fn v2_has_every_kind_with_its_patch_operation_and_decodes_from_protobuf() {
        use prost::Message;
        let v2 = v2_json();
        assert_eq!(v2["swagger"], "2.0");
        let definitions = v2["definitions"].as_object().unwrap();
        for resource in RESOURCES {
            let tagged = definitions.values().any(|schema| {
                schema["x-kubernetes-group-version-kind"][0]["kind"] == resource.kind
                    && schema["x-kubernetes-group-version-kind"][0]["group"] == resource.group
            });
            assert!(tagged, "{}", resource.kind);
        }
        let patch = &v2["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(patch["x-kubernetes-group-version-kind"]["kind"], "Deployment");
        let decoded = gnostic::Document::decode(v2_protobuf()).unwrap();
        assert_eq!(decoded.definitions.unwrap().additional_properties.len(), definitions.len());
        assert_eq!(decoded.paths.unwrap().path.len(), RESOURCES.len() * 2);
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
