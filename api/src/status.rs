//! Errors as Kubernetes reports them: a `metav1.Status` with a code, a reason and, for invalid objects,
//! one cause per field path.
//!
//! kubectl builds its messages from these fields, so getting them right is what makes
//! `The Deployment "web" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0`
//! appear on a student's terminal exactly as it would against a real cluster.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Status, StatusCause, StatusDetails};
use std::fmt;

// ANCHOR: cause
/// One problem with one field of an object, as `field.Error` in Kubernetes' `apimachinery/pkg/util/validation/field`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// Machine-readable kind of problem, e.g. `FieldValueInvalid`.
    pub reason: String,
    /// The field path, e.g. `spec.template.spec.containers[0].image`.
    pub field: String,
    /// The human text, already prefixed the way Kubernetes prefixes it (`Invalid value: -1: ...`).
    pub message: String,
}
// ANCHOR_END: cause

impl Cause {
    /// `Invalid value: <value>: <detail>`; `value` is printed as JSON, so strings are quoted as Kubernetes quotes them.
    pub fn invalid(field: impl Into<String>, value: impl fmt::Debug, detail: impl fmt::Display) -> Self {
        Cause {
            reason: "FieldValueInvalid".into(),
            field: field.into(),
            message: format!("Invalid value: {value:?}: {detail}"),
        }
    }

    /// `Required value` (with an optional detail).
    pub fn required(field: impl Into<String>, detail: &str) -> Self {
        let message =
            if detail.is_empty() { "Required value".to_string() } else { format!("Required value: {detail}") };
        Cause { reason: "FieldValueRequired".into(), field: field.into(), message }
    }

    /// `Unsupported value: "X": supported values: "A", "B"`.
    pub fn not_supported(field: impl Into<String>, value: &str, supported: &[&str]) -> Self {
        let list: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
        Cause {
            reason: "FieldValueNotSupported".into(),
            field: field.into(),
            message: format!("Unsupported value: {value:?}: supported values: {}", list.join(", ")),
        }
    }

    /// `Duplicate value: "x"`.
    pub fn duplicate(field: impl Into<String>, value: impl fmt::Debug) -> Self {
        Cause {
            reason: "FieldValueDuplicate".into(),
            field: field.into(),
            message: format!("Duplicate value: {value:?}"),
        }
    }

    /// `Forbidden: <detail>`, e.g. for a change to an immutable field.
    pub fn forbidden(field: impl Into<String>, detail: impl fmt::Display) -> Self {
        Cause { reason: "FieldValueForbidden".into(), field: field.into(), message: format!("Forbidden: {detail}") }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

// ANCHOR: api_error
/// An API error: what the apiserver answers instead of an object, and what the client hands back to its caller.
///
/// It is a thin, readable wrapper around the wire type `metav1.Status`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// HTTP status code: 404, 409, 422, ...
    pub code: u16,
    /// `NotFound`, `AlreadyExists`, `Conflict`, `Invalid`, `BadRequest`, `Expired`, ...
    pub reason: String,
    /// The sentence kubectl prints after `Error from server (<reason>):`.
    pub message: String,
    /// Which object the error is about (resource plural as `kind`, as Kubernetes does) and, for `Invalid`, why.
    pub details: Option<StatusDetails>,
}
// ANCHOR_END: api_error

impl ApiError {
    fn new(code: u16, reason: &str, message: impl Into<String>) -> Self {
        ApiError { code, reason: reason.into(), message: message.into(), details: None }
    }

    fn about(mut self, group: &str, plural: &str, name: &str) -> Self {
        self.details = Some(StatusDetails {
            name: Some(name.into()).filter(|n: &String| !n.is_empty()),
            group: Some(group.into()).filter(|g: &String| !g.is_empty()),
            kind: Some(plural.into()),
            ..Default::default()
        });
        self
    }

    /// 404: `deployments.apps "web" not found`.
    pub fn not_found(group: &str, plural: &str, name: &str) -> Self {
        Self::new(404, "NotFound", format!("{} {name:?} not found", qualified(group, plural)))
            .about(group, plural, name)
    }

    /// 409: `deployments.apps "web" already exists`.
    pub fn already_exists(group: &str, plural: &str, name: &str) -> Self {
        Self::new(409, "AlreadyExists", format!("{} {name:?} already exists", qualified(group, plural)))
            .about(group, plural, name)
    }

    // ANCHOR: conflict
    /// 409: an update carried a resourceVersion that is no longer current (optimistic concurrency).
    pub fn conflict(group: &str, plural: &str, name: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} {name:?}: the object has been modified; please apply your changes to the latest version and try again",
                qualified(group, plural)
            ),
        )
        .about(group, plural, name)
    }
    // ANCHOR_END: conflict

    // ANCHOR: invalid
    /// 422: the object failed validation; one cause per field.
    pub fn invalid(group: &str, kind: &str, name: &str, causes: Vec<Cause>) -> Self {
        let list: Vec<String> = causes.iter().map(|c| c.to_string()).collect();
        let kind_group = if group.is_empty() { kind.to_string() } else { format!("{kind}.{group}") };
        let mut err = Self::new(422, "Invalid", format!("{kind_group} {name:?} is invalid: {}", bracketed(&list)));
        err.details = Some(StatusDetails {
            name: Some(name.into()),
            group: Some(group.into()).filter(|g: &String| !g.is_empty()),
            kind: Some(kind.into()),
            causes: Some(
                causes
                    .into_iter()
                    .map(|c| StatusCause { reason: Some(c.reason), message: Some(c.message), field: Some(c.field) })
                    .collect(),
            ),
            ..Default::default()
        });
        err
    }
    // ANCHOR_END: invalid

    /// 400: the request itself is malformed.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 404 for a path that names no resource we serve.
    pub fn no_such_path(path: &str) -> Self {
        Self::new(404, "NotFound", format!("the server could not find the requested resource ({path})"))
    }

    /// 405: the resource exists but does not support this verb.
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", message)
    }

    /// 403: refused by policy, e.g. creating in a namespace that is being deleted.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", message)
    }

    /// 410: a watch asked for a resourceVersion older than the store still remembers.
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    /// 413: the body is larger than the apiserver accepts (3 MiB, as Kubernetes).
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(413, "RequestEntityTooLarge", message)
    }

    /// 415: a body in a content type we cannot read.
    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!("the body of the request was in an unknown format: {content_type}"),
        )
    }

    /// 500: something went wrong that is not the caller's fault.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", format!("Internal error occurred: {}", message.into()))
    }

    /// 503: the store (etcd) cannot be reached; clients should retry.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(503, "ServiceUnavailable", message)
    }

    /// 504: a request took longer than allowed.
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(504, "Timeout", message)
    }

    /// The wire form, `{"kind":"Status","apiVersion":"v1","status":"Failure",...}`.
    pub fn to_status(&self) -> Status {
        Status {
            code: Some(self.code.into()),
            details: self.details.clone(),
            message: Some(self.message.clone()),
            metadata: Default::default(),
            reason: Some(self.reason.clone()),
            status: Some("Failure".into()),
        }
    }

    /// The wire form as JSON, with `kind` and `apiVersion` (which the typed struct leaves to its serializer).
    pub fn to_status_value(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self.to_status()).unwrap_or_default();
        if let Some(map) = value.as_object_mut() {
            map.insert("kind".into(), "Status".into());
            map.insert("apiVersion".into(), "v1".into());
        }
        value
    }

    /// Reads a `Status` received from a server (the client side of `to_status`).
    pub fn from_status(status: Status, http_code: u16) -> Self {
        ApiError {
            code: status.code.and_then(|c| u16::try_from(c).ok()).unwrap_or(http_code),
            reason: status.reason.unwrap_or_default(),
            message: status.message.unwrap_or_default(),
            details: status.details,
        }
    }

    /// The field causes of an `Invalid` error, in order.
    pub fn causes(&self) -> Vec<&StatusCause> {
        self.details.iter().flat_map(|d| d.causes.iter().flatten()).collect()
    }
}

/// `deployments.apps` or, for the core group, `pods`.
fn qualified(group: &str, plural: &str) -> String {
    if group.is_empty() { plural.to_string() } else { format!("{plural}.{group}") }
}

/// Kubernetes prints one cause bare and several as `[a, b]`.
fn bracketed(items: &[String]) -> String {
    match items {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_message_reads_like_kubernetes() {
        let err = ApiError::invalid(
            "apps",
            "Deployment",
            "web",
            vec![Cause::invalid("spec.replicas", -1, "must be greater than or equal to 0")],
        );
        assert_eq!(
            err.message,
            "Deployment.apps \"web\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0"
        );
        assert_eq!(err.causes()[0].field.as_deref(), Some("spec.replicas"));
    }

    #[test]
    fn not_found_names_the_qualified_resource() {
        assert_eq!(ApiError::not_found("apps", "deployments", "web").message, "deployments.apps \"web\" not found");
        assert_eq!(ApiError::not_found("", "pods", "p").message, "pods \"p\" not found");
    }
}
