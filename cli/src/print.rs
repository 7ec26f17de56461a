//! Small things printed the way kubectl prints them: errors, object names, ages, YAML.

use chrono::{DateTime, Utc};
use kubelab_api::ApiError;
use kubelab_api::client::ClientError;
use kubelab_api::resources::Resource;
use kubelab_api::time::human_duration;
use serde_json::Value;

/// `deployment.apps` or, for the core group, `pod`: how kubectl names a kind in `deployment.apps/web created`.
pub fn kind_name(resource: &Resource) -> String {
    let kind = resource.kind.to_ascii_lowercase();
    if resource.group.is_empty() { kind } else { format!("{kind}.{}", resource.group) }
}

/// The line kubectl prints for an error.
///
/// An `Invalid` error is rebuilt from its field causes (`The Deployment "web" is invalid: spec.replicas: ...`),
/// other server errors read `Error from server (NotFound): deployments.apps "web" not found`.
pub fn error_message(err: &anyhow::Error) -> String {
    let api = err.downcast_ref::<ApiError>().or_else(|| match err.downcast_ref::<ClientError>() {
        Some(ClientError::Api(api)) => Some(api),
        _ => None,
    });
    match (api, err.downcast_ref::<ClientError>()) {
        (Some(api), _) => api_error_message(api),
        // The connection error's own chain (`tcp connect error: Connection refused`) adds nothing for a student.
        (None, Some(unreachable @ ClientError::Unreachable { .. })) => format!("error: {unreachable}"),
        (None, _) => format!("error: {err:#}"),
    }
}

/// See [`error_message`]; this is kubectl's `cmdutil.CheckErr` for a `Status`.
pub fn api_error_message(err: &ApiError) -> String {
    let causes = err.causes();
    if err.reason == "Invalid" && !causes.is_empty() {
        let details = err.details.as_ref();
        let kind = details.and_then(|d| d.kind.as_deref()).unwrap_or_default();
        let name = details.and_then(|d| d.name.as_deref()).unwrap_or_default();
        let lines: Vec<String> = causes
            .iter()
            .map(|c| match c.field.as_deref().filter(|f| !f.is_empty()) {
                Some(field) => format!("{field}: {}", c.message.as_deref().unwrap_or_default()),
                None => c.message.clone().unwrap_or_default(),
            })
            .collect();
        let head = format!("The {kind} {name:?} is invalid: ");
        return match lines.as_slice() {
            [one] => format!("{head}{one}"),
            many => format!("{head}\n* {}", many.join("\n* ")),
        };
    }
    if err.reason.is_empty() {
        format!("Error from server: {}", err.message)
    } else {
        format!("Error from server ({}): {}", err.reason, err.message)
    }
}

/// Whether an error is the server's 404.
pub fn is_not_found(err: &ClientError) -> bool {
    matches!(err, ClientError::Api(api) if api.code == 404)
}

/// The age of an object from an RFC 3339 timestamp, or `<unknown>`.
pub fn age(timestamp: &str, now: DateTime<Utc>) -> String {
    match DateTime::parse_from_rfc3339(timestamp) {
        Ok(then) => human_duration(now.signed_duration_since(then)),
        Err(_) => "<unknown>".to_string(),
    }
}

/// An object (or a list) as YAML, as `-o yaml` prints it.
pub fn to_yaml(value: &Value) -> anyhow::Result<String> {
    Ok(serde_saphyr::to_string(value)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    #[test]
    fn ages_read_like_kubectl() {
        let cases =
            [(5, "5s"), (119, "119s"), (200, "3m20s"), (600, "10m"), (3 * 3600 + 120, "3h2m"), (30 * 3600, "30h")];
        for (seconds, expected) in cases {
            assert_eq!(human_duration(TimeDelta::seconds(seconds)), expected, "{seconds}s");
        }
        assert_eq!(human_duration(TimeDelta::days(3) + TimeDelta::hours(4)), "3d4h");
        assert_eq!(human_duration(TimeDelta::days(400)), "400d");
    }

    #[test]
    fn invalid_errors_are_rebuilt_from_their_causes() {
        let err = ApiError::invalid(
            "apps",
            "Deployment",
            "web",
            vec![kubelab_api::Cause::invalid("spec.replicas", -1, "must be greater than or equal to 0")],
        );
        assert_eq!(
            api_error_message(&err),
            "The Deployment \"web\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0"
        );
    }

    #[test]
    fn other_errors_name_their_reason() {
        let err = ApiError::not_found("apps", "deployments", "web");
        assert_eq!(api_error_message(&err), "Error from server (NotFound): deployments.apps \"web\" not found");
    }

    #[test]
    fn core_kinds_have_no_group_suffix() {
        let pods = kubelab_api::resources::by_user_name("po").unwrap();
        let deploy = kubelab_api::resources::by_user_name("deploy").unwrap();
        assert_eq!((kind_name(pods), kind_name(deploy)), ("pod".to_string(), "deployment.apps".to_string()));
    }
}
