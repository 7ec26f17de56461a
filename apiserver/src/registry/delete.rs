//! Deleting: sometimes at once, sometimes in stages.
//!
//! A delete in Kubernetes is often a *request* to delete:
//!
//! - an object with **finalizers** gets a `deletionTimestamp` and stays until every finalizer is removed by the
//!   controller that owns it (the garbage collector for `foregroundDeletion` and `orphan`, the namespace
//!   controller for a namespace's `kubernetes` finalizer);
//! - a **pod bound to a node** gets a `deletionTimestamp` and a grace period: its kubelet stops the containers
//!   (SIGTERM, then SIGKILL after the grace period) and then deletes the object with grace 0;
//! - anything else goes at once.

use super::write::WriteOptions;
use super::{ListOptions, Registry};
use kubelab_api::{ApiError, Resource, object};
use serde_json::{Value, json};

/// The query parameters and body of a DELETE (`metav1.DeleteOptions`).
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    /// `Background` (default), `Foreground` or `Orphan`.
    pub propagation_policy: Option<String>,
    /// Overrides the pod's `terminationGracePeriodSeconds`; 0 deletes at once.
    pub grace_period_seconds: Option<i64>,
    /// Delete only if the object still has this uid / resourceVersion.
    pub precondition_uid: Option<String>,
    pub precondition_resource_version: Option<String>,
    pub dry_run: bool,
}

impl DeleteOptions {
    /// Reads a `DeleteOptions` body (kubectl sends `{"propagationPolicy":"Background"}`), keeping query values
    /// already set.
    pub fn merge_body(mut self, body: &Value) -> Self {
        if let Some(policy) = body.get("propagationPolicy").and_then(Value::as_str) {
            self.propagation_policy = Some(policy.to_string());
        }
        if let Some(grace) = body.get("gracePeriodSeconds").and_then(Value::as_i64) {
            self.grace_period_seconds = Some(grace);
        }
        if body.get("orphanDependents").and_then(Value::as_bool) == Some(true) {
            self.propagation_policy.get_or_insert_with(|| "Orphan".into());
        }
        if let Some(uid) = body.pointer("/preconditions/uid").and_then(Value::as_str) {
            self.precondition_uid = Some(uid.to_string());
        }
        if let Some(rv) = body.pointer("/preconditions/resourceVersion").and_then(Value::as_str) {
            self.precondition_resource_version = Some(rv.to_string());
        }
        if body.get("dryRun").and_then(Value::as_array).is_some_and(|a| !a.is_empty()) {
            self.dry_run = true;
        }
        self
    }
}

impl Registry {
    // ANCHOR: delete
    /// `DELETE .../<plural>/<name>`: returns the object as it is after the request (gone, or marked).
    pub async fn delete(
        &self,
        resource: &Resource,
        namespace: &str,
        name: &str,
        options: &DeleteOptions,
    ) -> Result<Value, ApiError> {
        // A controller may write the object (its status) between our read and our delete: as Kubernetes does, read
        // again and retry, unless the client itself named the resourceVersion it wants to delete.
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.delete_once(resource, namespace, name, options).await {
                Err(err)
                    if err.reason == "Conflict" && options.precondition_resource_version.is_none() && attempts < 5 =>
                {
                    continue;
                }
                result => return result,
            }
        }
    }

    /// One attempt at [`Registry::delete`], against the object as read now.
    async fn delete_once(
        &self,
        resource: &Resource,
        namespace: &str,
        name: &str,
        options: &DeleteOptions,
    ) -> Result<Value, ApiError> {
        let (mut object, revision) = self.read(resource, namespace, name).await?;
        let uid = object::meta_str(&object, "uid").to_string();
        if let Some(expected) = options.precondition_uid.as_deref().filter(|u| *u != uid) {
            return Err(precondition_failed(resource, name, "UID", expected, &uid));
        }
        if let Some(expected) =
            options.precondition_resource_version.as_deref().filter(|rv| *rv != revision.to_string())
        {
            return Err(precondition_failed(resource, name, "ResourceVersion", expected, &revision.to_string()));
        }
        let write = WriteOptions { dry_run: options.dry_run, ..Default::default() };

        let mut finalizers = object::finalizers(&object);
        match options.propagation_policy.as_deref() {
            Some("Foreground") => add_once(&mut finalizers, "foregroundDeletion"),
            Some("Orphan") => add_once(&mut finalizers, "orphan"),
            _ => {}
        }
        let grace = graceful_period(resource, &object, options);
        let namespace_finalizers = resource.kind == "Namespace"
            && object.pointer("/spec/finalizers").and_then(Value::as_array).is_some_and(|f| !f.is_empty());

        if finalizers.is_empty() && grace == 0 && !namespace_finalizers {
            return self.remove(resource, namespace, name, revision, &write).await;
        }
        if object.pointer("/metadata/deletionTimestamp").is_some()
            && (grace > 0 || object::finalizers(&object) == finalizers)
        {
            // Already terminating: a second delete neither extends the grace period nor restarts the clock; it
            // can only add a finalizer (a change of propagation policy).
            return Ok(object);
        }
        let deadline = chrono::Utc::now() + chrono::Duration::seconds(grace);
        let meta = object::metadata_mut(&mut object);
        if !meta.contains_key("deletionTimestamp") {
            meta.insert("deletionTimestamp".into(), Value::String(deadline.format("%Y-%m-%dT%H:%M:%SZ").to_string()));
        }
        meta.insert("deletionGracePeriodSeconds".into(), json!(grace));
        meta.insert("finalizers".into(), json!(finalizers));
        if finalizers.is_empty() {
            meta.remove("finalizers");
        }
        if resource.kind == "Namespace"
            && let Some(map) = object.as_object_mut()
        {
            map.insert("status".into(), json!({"phase": "Terminating"}));
        }
        // deletionTimestamp is system metadata, so it is written here, around the usual update path.
        self.write_marked(resource, namespace, name, object, revision, &write).await
    }
    // ANCHOR_END: delete

    /// Stores an object that has just been marked for deletion.
    async fn write_marked(
        &self,
        resource: &Resource,
        namespace: &str,
        name: &str,
        object: Value,
        revision: i64,
        options: &WriteOptions,
    ) -> Result<Value, ApiError> {
        let mut object = object;
        if options.dry_run {
            return Ok(object);
        }
        let key = resource.storage_key(namespace, name);
        let new_revision = self
            .store
            .update(&key, super::encode_for_store(&object)?, revision)
            .await
            .map_err(|err| super::store_error(resource, name, err))?;
        object::set_meta(&mut object, "resourceVersion", new_revision.to_string());
        Ok(object)
    }

    /// `DELETE .../<plural>`: deletes every object the selectors match, one by one.
    pub async fn delete_collection(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        list: &ListOptions,
        options: &DeleteOptions,
    ) -> Result<Vec<Value>, ApiError> {
        let page =
            self.list(resource, namespace, &ListOptions { limit: 0, continue_token: None, ..list.clone() }).await?;
        let mut deleted = Vec::new();
        for item in page.items {
            match self.delete(resource, object::namespace(&item), object::name(&item), options).await {
                Ok(object) => deleted.push(object),
                Err(err) if err.code == 404 => {}
                Err(err) => return Err(err),
            }
        }
        Ok(deleted)
    }
}

/// The grace period a delete gets: only pods already bound to a node wait for their kubelet.
fn graceful_period(resource: &Resource, object: &Value, options: &DeleteOptions) -> i64 {
    let bound = object.pointer("/spec/nodeName").and_then(Value::as_str).is_some_and(|n| !n.is_empty());
    if resource.kind != "Pod" || !bound {
        return 0;
    }
    let finished = matches!(object.pointer("/status/phase").and_then(Value::as_str), Some("Succeeded" | "Failed"));
    if finished {
        return 0;
    }
    options
        .grace_period_seconds
        .or_else(|| object.pointer("/spec/terminationGracePeriodSeconds").and_then(Value::as_i64))
        .unwrap_or(30)
        .max(0)
}

fn add_once(finalizers: &mut Vec<String>, finalizer: &str) {
    if !finalizers.iter().any(|f| f == finalizer) {
        finalizers.push(finalizer.to_string());
    }
}

fn precondition_failed(resource: &Resource, name: &str, what: &str, expected: &str, found: &str) -> ApiError {
    let mut err = ApiError::conflict(resource.group, resource.plural, name);
    err.message = format!(
        "Operation cannot be fulfilled on {} {name:?}: Precondition failed: {what} in precondition: {expected}, {what} in object meta: {found}",
        resource.plural
    );
    err
}
