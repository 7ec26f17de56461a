//! The options a request carries: which objects a list or watch is about, how a patch is read, what a delete
//! does to dependents. Each turns into query parameters (or a body) in exactly one place, so a student can see
//! the URL a call becomes.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use serde_json::Value;

/// Which objects a list or a watch is about.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListParams {
    /// `app=web,tier!=db`: only objects whose labels match.
    pub label_selector: Option<String>,
    /// `metadata.name=web`, `spec.nodeName=node-1`: only objects whose fields match.
    pub field_selector: Option<String>,
    /// How many objects to ask for per page; kubectl's 500 when `None`. [`super::Client::list`] asks for pages
    /// until the server has no more, so this changes the number of requests, never the result.
    pub page_size: Option<u32>,
}

impl ListParams {
    /// Only objects with these labels.
    pub fn labels(mut self, selector: impl Into<String>) -> Self {
        self.label_selector = Some(selector.into());
        self
    }

    /// Only objects with these field values.
    pub fn fields(mut self, selector: impl Into<String>) -> Self {
        self.field_selector = Some(selector.into());
        self
    }

    /// The selectors as query parameters; an empty selector is left out (it would select everything anyway).
    pub(super) fn query(&self) -> Vec<(&'static str, String)> {
        let mut query = Vec::new();
        if let Some(s) = self.label_selector.as_ref().filter(|s| !s.is_empty()) {
            query.push(("labelSelector", s.clone()));
        }
        if let Some(s) = self.field_selector.as_ref().filter(|s| !s.is_empty()) {
            query.push(("fieldSelector", s.clone()));
        }
        query
    }
}

/// What the server does with fields it does not know (`fieldValidation=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValidation {
    /// Drop them silently.
    Ignore,
    /// Drop them and say so in a `Warning` header.
    Warn,
    /// Refuse the request: what you want when a typo like `replcas` must not go unnoticed.
    Strict,
}

/// Options of a patch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PatchParams {
    /// Who owns the fields this patch sets (required for [`crate::patch::PatchType::Apply`]), e.g. `kubelab`.
    pub field_manager: Option<String>,
    /// Unknown fields: the server's default (`Warn`) when `None`.
    pub field_validation: Option<FieldValidation>,
    /// Server-side apply only: take ownership of fields another manager set, instead of failing with a conflict.
    pub force: bool,
}

impl PatchParams {
    /// Server-side apply as `manager`, strict about unknown fields.
    pub fn apply(manager: &str) -> Self {
        PatchParams {
            field_manager: Some(manager.to_string()),
            field_validation: Some(FieldValidation::Strict),
            force: false,
        }
    }

    /// The options as query parameters; the server's defaults are left out.
    pub(super) fn query(&self) -> Vec<(&'static str, String)> {
        let mut query = Vec::new();
        if let Some(manager) = &self.field_manager {
            query.push(("fieldManager", manager.clone()));
        }
        if let Some(validation) = self.field_validation {
            query.push(("fieldValidation", format!("{validation:?}")));
        }
        if self.force {
            query.push(("force", "true".to_string()));
        }
        query
    }
}

/// What happens to the objects an object owns (a Deployment's ReplicaSets) when it is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PropagationPolicy {
    /// Delete the owner now; the garbage collector deletes its dependents afterwards (kubectl's default).
    #[default]
    Background,
    /// The owner stays, with a `foregroundDeletion` finalizer, until its dependents are gone.
    Foreground,
    /// Delete only the owner; the dependents stay, without an owner.
    Orphan,
}

/// What a `DELETE` answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Deleted {
    /// The object as it is now: still there when a finalizer holds it (it then has a `deletionTimestamp`).
    Object(Value),
    /// A `Status` saying the object is gone.
    Status(Box<Status>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_params_ask_for_strict_validation() {
        let query = PatchParams::apply("kubelab").query();
        assert_eq!(query, vec![("fieldManager", "kubelab".into()), ("fieldValidation", "Strict".into())]);
    }
}
