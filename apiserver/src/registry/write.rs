//! Creating, replacing and patching objects.

use super::{Registry, encode_for_store, store_error};
use crate::patch::{self, PatchType};
use crate::store::{Revision, StoreError};
use kubelab_api::{ApiError, Resource, object};
use serde_json::Value;

/// What to do with fields the kind does not have (`?fieldValidation=`), as Kubernetes 1.27+.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    /// Drop them silently.
    Ignore,
    /// Drop them and say so in a `Warning` header (the default).
    #[default]
    Warn,
    /// Refuse the request with 400 (what kubectl asks for).
    Strict,
}

impl FieldValidation {
    /// Reads the query parameter; unknown values fall back to the default.
    pub fn from_query(value: Option<&str>) -> Self {
        match value {
            Some("Ignore") => FieldValidation::Ignore,
            Some("Strict") => FieldValidation::Strict,
            _ => FieldValidation::Warn,
        }
    }
}

/// Options common to every write.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// `?dryRun=All`: do everything but store.
    pub dry_run: bool,
    pub field_validation: FieldValidation,
}

/// The result of a write: the object as stored, and what to tell the client.
#[derive(Debug)]
pub struct Written {
    pub object: Value,
    /// `true` when the write created the object (201 rather than 200).
    pub created: bool,
    /// Sent back as `Warning:` headers (unknown fields under `fieldValidation=Warn`).
    pub warnings: Vec<String>,
}

/// Which part of the object a write may change: the main resource writes everything but `status`; the
/// `status` subresource writes only `status`. This is how Kubernetes keeps the user's desired state (spec) and
/// the controllers' observations (status) from overwriting each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Main,
    Status,
}

/// Resources whose `metadata.generation` counts spec changes (the number controllers report back as
/// `status.observedGeneration`).
fn tracks_generation(resource: &Resource) -> bool {
    matches!(resource.kind, "Deployment" | "ReplicaSet" | "Pod" | "Service")
}

/// Everything but `metadata` and `status`: what a change of bumps the generation.
fn desired_part(object: &Value) -> Value {
    let mut copy = object.clone();
    if let Some(map) = copy.as_object_mut() {
        map.remove("metadata");
        map.remove("status");
    }
    copy
}

impl Registry {
    /// Decodes, defaults and validates `object` as `resource`; returns it with the warnings to send.
    fn admit_shape(
        &self,
        resource: &Resource,
        object: Value,
        old: Option<&Value>,
        options: &WriteOptions,
    ) -> Result<(Value, Vec<String>), ApiError> {
        let name = object::name(&object).to_string();
        let (decoded, causes) = resource.rules.admit(object, old).map_err(|err| {
            ApiError::bad_request(format!(
                "{} in version \"{}\" cannot be handled as a {}: {err}",
                resource.kind, resource.version, resource.kind
            ))
        })?;
        let unknown: Vec<String> = decoded.unknown_fields.iter().map(|f| format!("unknown field \"{f}\"")).collect();
        let warnings = match options.field_validation {
            FieldValidation::Strict if !unknown.is_empty() => {
                return Err(ApiError::bad_request(format!(
                    "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {}",
                    resource.kind,
                    resource.version,
                    resource.kind,
                    unknown.join(", ")
                )));
            }
            FieldValidation::Warn => unknown,
            _ => Vec::new(),
        };
        if !causes.is_empty() {
            return Err(ApiError::invalid(resource.group, resource.kind, &name, causes));
        }
        Ok((decoded.object, warnings))
    }

    /// Checks `apiVersion`/`kind` against the URL and fills them in when missing.
    fn check_type(resource: &Resource, object: &mut Value) -> Result<(), ApiError> {
        let Some(map) = object.as_object_mut() else {
            return Err(ApiError::bad_request("the request body must be a JSON or YAML object"));
        };
        let expected_version = resource.api_version();
        for (field, expected) in [("apiVersion", expected_version.as_str()), ("kind", resource.kind)] {
            match map.get(field).and_then(Value::as_str) {
                None | Some("") => {
                    map.insert(field.into(), Value::String(expected.into()));
                }
                Some(found) if found != expected => {
                    return Err(ApiError::bad_request(format!(
                        "the {field} of the object ({found}) does not match the {field} of the URL ({expected})"
                    )));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// Admission: a namespaced object needs an existing namespace that is not being deleted.
    async fn check_namespace(&self, resource: &Resource, namespace: &str, name: &str) -> Result<(), ApiError> {
        if !resource.namespaced {
            return Ok(());
        }
        let terminating = match self.namespaces.lookup(namespace) {
            Some(terminating) => terminating,
            None => {
                // Not in the cache (yet): the store has the last word.
                let namespaces = kubelab_api::resources::by_path("", "v1", "namespaces")
                    .ok_or_else(|| ApiError::internal("namespaces are not registered"))?;
                let (ns, _) = self.read(namespaces, "", namespace).await?;
                ns.pointer("/metadata/deletionTimestamp").is_some()
            }
        };
        if terminating {
            return Err(ApiError::forbidden(format!(
                "{} {name:?} is forbidden: unable to create new content in namespace {namespace} because it is being terminated",
                resource.plural
            )));
        }
        Ok(())
    }

    // ANCHOR: create
    /// `POST .../<plural>`.
    pub async fn create(
        &self,
        resource: &Resource,
        namespace: &str,
        mut object: Value,
        options: &WriteOptions,
    ) -> Result<Written, ApiError> {
        Self::check_type(resource, &mut object)?;
        let meta = object::metadata_mut(&mut object);
        if resource.namespaced {
            match meta.get("namespace").and_then(Value::as_str) {
                Some(ns) if !ns.is_empty() && ns != namespace => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
                _ => {
                    meta.insert("namespace".into(), Value::String(namespace.into()));
                }
            }
        } else {
            meta.remove("namespace");
        }
        if meta.get("resourceVersion").and_then(Value::as_str).is_some_and(|rv| !rv.is_empty()) {
            return Err(ApiError::bad_request("resourceVersion should not be set on objects to be created"));
        }
        // The server owns these fields: whatever the client sent is replaced.
        let generate_name = meta.get("generateName").and_then(Value::as_str).unwrap_or("").to_string();
        if meta.get("name").and_then(Value::as_str).unwrap_or("").is_empty() && !generate_name.is_empty() {
            meta.insert("name".into(), Value::String(format!("{generate_name}{}", random_suffix())));
        }
        meta.insert("uid".into(), Value::String(uuid::Uuid::new_v4().to_string()));
        meta.insert("creationTimestamp".into(), Value::String(now()));
        meta.remove("deletionTimestamp");
        meta.remove("deletionGracePeriodSeconds");
        meta.remove("managedFields");
        if tracks_generation(resource) {
            meta.insert("generation".into(), Value::from(1));
        } else {
            meta.remove("generation");
        }
        if resource.subresource("status").is_some()
            && let Some(map) = object.as_object_mut()
        {
            // Status is observed by controllers, never declared: a new object starts without one.
            map.remove("status");
        }
        let (object, warnings) = self.admit_shape(resource, object, None, options)?;
        let name = object::name(&object).to_string();
        self.check_namespace(resource, namespace, &name).await?;
        let mut object = object;
        // A Service gets its cluster IP and node ports now, so that the stored object carries them.
        let claim = self.allocators.claim(resource, &mut object, None, options.dry_run).await?;
        if !options.dry_run {
            let key = resource.storage_key(namespace, &name);
            let created = self.store.create(&key, encode_for_store(&object)?).await;
            claim.settle(created.is_ok()).await;
            let revision = created.map_err(|err| store_error(resource, &name, err))?;
            object::set_meta(&mut object, "resourceVersion", revision.to_string());
        }
        Ok(Written { object, created: true, warnings })
    }
    // ANCHOR_END: create

    // ANCHOR: update
    /// `PUT .../<plural>/<name>[/status]`: replaces the object, or only its status.
    pub async fn update(
        &self,
        resource: &Resource,
        namespace: &str,
        name: &str,
        mut object: Value,
        part: Part,
        options: &WriteOptions,
    ) -> Result<Written, ApiError> {
        Self::check_type(resource, &mut object)?;
        let body_name = object::name(&object);
        if !body_name.is_empty() && body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let (old, current) = self.read(resource, namespace, name).await?;
        let expected = match object::resource_version(&object) {
            "" => current,
            rv => {
                rv.parse::<Revision>().map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {rv:?}")))?
            }
        };
        if expected != current {
            return Err(ApiError::conflict(resource.group, resource.plural, name));
        }
        let mut object = merge_parts(resource, &old, object, part);
        if part == Part::Main && resource.kind == "Service" {
            object = crate::allocator::service::prepare_update(&old, object);
        }
        let (mut object, warnings) = self.admit_shape(resource, object, Some(&old), options)?;
        if tracks_generation(resource) {
            let generation = old.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(1);
            let changed = desired_part(&object) != desired_part(&old);
            object::metadata_mut(&mut object).insert("generation".into(), Value::from(generation + i64::from(changed)));
        }
        object::set_meta(&mut object, "resourceVersion", current.to_string());
        if object == old {
            // Kubernetes skips writes that change nothing: the resourceVersion stays, watchers see no event.
            return Ok(Written { object, created: false, warnings });
        }
        if finalization_done(&object) {
            // The last finalizer is gone: the object was only waiting for that to disappear.
            let object = self.remove(resource, namespace, name, current, options).await?;
            return Ok(Written { object, created: false, warnings });
        }
        let claim = self.allocators.claim(resource, &mut object, Some(&old), options.dry_run).await?;
        if !options.dry_run {
            let key = resource.storage_key(namespace, name);
            let updated = self.store.update(&key, encode_for_store(&object)?, current).await;
            claim.settle(updated.is_ok()).await;
            let revision = updated.map_err(|err| store_error(resource, name, err))?;
            object::set_meta(&mut object, "resourceVersion", revision.to_string());
        }
        Ok(Written { object, created: false, warnings })
    }
    // ANCHOR_END: update

    /// `PATCH .../<plural>/<name>[/status]`: read, patch, write — retried when someone else wrote in between,
    /// unless the patch itself names a resourceVersion. A server-side apply patch creates the object if missing.
    #[allow(clippy::too_many_arguments)]
    pub async fn patch(
        &self,
        resource: &Resource,
        namespace: &str,
        name: &str,
        patch_type: PatchType,
        body: &[u8],
        part: Part,
        options: &WriteOptions,
    ) -> Result<Written, ApiError> {
        for _attempt in 0..5 {
            let old = match self.read(resource, namespace, name).await {
                Ok((old, _)) => old,
                Err(err) if err.code == 404 && patch_type == PatchType::Apply && part == Part::Main => {
                    let object = patch::apply(patch_type, &Value::Object(Default::default()), body)?;
                    let mut object = object;
                    object::set_meta(&mut object, "name", name);
                    return self.create(resource, namespace, object, options).await;
                }
                Err(err) => return Err(err),
            };
            let patched = patch::apply(patch_type, &old, body)?;
            match self.update(resource, namespace, name, patched, part, options).await {
                Err(err) if err.reason == "Conflict" && !patch_names_version(body) => continue,
                result => return result,
            }
        }
        Err(ApiError::conflict(resource.group, resource.plural, name))
    }

    /// Deletes the key for good (after finalizers and grace periods are done).
    pub(crate) async fn remove(
        &self,
        resource: &Resource,
        namespace: &str,
        name: &str,
        expected: Revision,
        options: &WriteOptions,
    ) -> Result<Value, ApiError> {
        let key = resource.storage_key(namespace, name);
        if options.dry_run {
            return Ok(self.read(resource, namespace, name).await?.0);
        }
        let (kv, _) = self.store.delete(&key, Some(expected)).await.map_err(|err| match err {
            StoreError::Conflict { .. } => ApiError::conflict(resource.group, resource.plural, name),
            err => store_error(resource, name, err),
        })?;
        let deleted = super::decode_stored(&kv)?;
        self.allocators.release(resource, &deleted).await;
        Ok(deleted)
    }
}

// ANCHOR: merge_parts
/// Combines the stored object and the incoming one according to which part the request may write.
fn merge_parts(resource: &Resource, old: &Value, new: Value, part: Part) -> Value {
    let has_status = resource.subresource("status").is_some();
    let mut result = match part {
        Part::Main if has_status => {
            let mut result = new;
            if let (Some(map), Some(status)) = (result.as_object_mut(), old.get("status")) {
                map.insert("status".into(), status.clone());
            } else if let Some(map) = result.as_object_mut() {
                map.remove("status");
            }
            result
        }
        Part::Main => new,
        Part::Status => {
            let mut result = old.clone();
            if let (Some(map), Some(status)) = (result.as_object_mut(), new.get("status")) {
                map.insert("status".into(), status.clone());
            }
            result
        }
    };
    // System metadata always comes from the stored object.
    let old_meta = old.get("metadata").cloned().unwrap_or_default();
    let meta = object::metadata_mut(&mut result);
    for field in ["uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "namespace", "name"] {
        match old_meta.get(field) {
            Some(value) => meta.insert(field.into(), value.clone()),
            None => meta.remove(field),
        };
    }
    meta.remove("managedFields");
    result
}
// ANCHOR_END: merge_parts

/// Whether an object marked for deletion has nothing left to wait for, as Kubernetes' `shouldDeleteDuringUpdate`:
/// no finalizers, no grace period still running (a terminating pod waits for its kubelet), and for a namespace,
/// no `spec.finalizers` (the namespace controller empties them once the namespace's content is gone).
fn finalization_done(object: &Value) -> bool {
    let marked = object.pointer("/metadata/deletionTimestamp").is_some();
    let grace_over = object.pointer("/metadata/deletionGracePeriodSeconds").and_then(Value::as_i64).unwrap_or(0) == 0;
    let namespace_finalized = object.pointer("/spec/finalizers").and_then(Value::as_array).is_none_or(|f| f.is_empty())
        || object["kind"] != "Namespace";
    marked && grace_over && object::finalizers(object).is_empty() && namespace_finalized
}

/// Whether a patch body carries `metadata.resourceVersion` (then a conflict must be reported, not retried).
fn patch_names_version(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.pointer("/metadata/resourceVersion").map(|rv| !rv.is_null()))
        .unwrap_or(false)
}

/// The current time ([`kubelab_api::time::now`], the one clock every component reads) as Kubernetes writes it
/// into JSON: RFC 3339 to the second.
pub(crate) fn now() -> String {
    kubelab_api::time::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Five characters from Kubernetes' alphabet for generated names (no vowels, so no accidental words).
fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    uuid::Uuid::new_v4().as_bytes()[..5].iter().map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char).collect()
}
