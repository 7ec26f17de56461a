//! Small readers and formatters shared by the row functions.
//!
//! The printers of Kubernetes read typed Go structs, where a missing field is simply its zero value: `""`, `0`,
//! an empty list. We read stored JSON, so these helpers give the same zero values for absent fields; that way a
//! row function reads like its Go original and needs no `Option` juggling.

use super::human_duration;
use chrono::{DateTime, Utc};
use serde_json::Value;

/// The value at `pointer`, unless it is absent or `null` (a nil pointer in Go).
pub(super) fn field<'a>(object: &'a Value, pointer: &str) -> Option<&'a Value> {
    object.pointer(pointer).filter(|value| !value.is_null())
}

/// The string at `pointer` (`"/status/phase"`), or `""` when it is absent.
pub(super) fn text<'a>(object: &'a Value, pointer: &str) -> &'a str {
    object.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// The integer at `pointer`, or `0` when it is absent.
pub(super) fn int(object: &Value, pointer: &str) -> i64 {
    object.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

/// The boolean at `pointer`, or `false` when it is absent.
pub(super) fn flag(object: &Value, pointer: &str) -> bool {
    object.pointer(pointer).and_then(Value::as_bool).unwrap_or(false)
}

/// The list at `pointer`, or an empty list when it is absent.
pub(super) fn list<'a>(object: &'a Value, pointer: &str) -> &'a [Value] {
    object.pointer(pointer).and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

/// The number of entries of the map at `pointer` (`data` of a ConfigMap).
pub(super) fn map_len(object: &Value, pointer: &str) -> usize {
    object.pointer(pointer).and_then(Value::as_object).map_or(0, |map| map.len())
}

/// The timestamp at `pointer`. `None` when absent or unreadable: Go's zero `time.Time`.
pub(super) fn timestamp(object: &Value, pointer: &str) -> Option<DateTime<Utc>> {
    let text = object.pointer(pointer)?.as_str()?;
    DateTime::parse_from_rfc3339(text).ok().map(|time| time.with_timezone(&Utc))
}

/// How long ago the timestamp at `pointer` was: printers.go's `translateTimestampSince`.
pub(super) fn since(object: &Value, pointer: &str, now: DateTime<Utc>) -> String {
    since_time(timestamp(object, pointer), now)
}

/// [`since`] for a timestamp already read; `<unknown>` when there is none.
pub(super) fn since_time(time: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    match time {
        Some(time) => human_duration(now - time),
        None => "<unknown>".to_string(),
    }
}

/// The Age column of every kind.
pub(super) fn age(object: &Value, now: DateTime<Utc>) -> Value {
    since(object, "/metadata/creationTimestamp", now).into()
}

/// `value`, or `<none>` when it is empty — how Kubernetes prints an unset field.
pub(super) fn or_none(value: &str) -> String {
    if value.is_empty() { "<none>".to_string() } else { value.to_string() }
}

/// `app=web,tier=front` from a map of labels, sorted by key; `<none>` when empty (`labels.FormatLabels`).
pub(super) fn format_labels(labels: Option<&Value>) -> String {
    let mut pairs: Vec<String> = labels
        .and_then(Value::as_object)
        .map(|map| map.iter().map(|(key, value)| format!("{key}={}", value.as_str().unwrap_or(""))).collect())
        .unwrap_or_default();
    pairs.sort();
    or_none(&pairs.join(","))
}

/// A `LabelSelector` written the way `kubectl` users type it: `app=web,tier in (back,front),!canary`.
///
/// This is `metav1.LabelSelectorAsSelector(...).String()`: one requirement per `matchLabels` entry and per
/// `matchExpressions` entry, sorted by key. An absent or empty selector gives `""`. `Err` for an operator
/// Kubernetes does not know, which Kubernetes prints as `<error>` or `<invalid>` depending on the kind.
pub(super) fn label_selector(selector: Option<&Value>) -> Result<String, UnknownOperator> {
    let Some(selector) = selector else { return Ok(String::new()) };
    let mut requirements: Vec<(String, String)> = Vec::new();
    if let Some(labels) = selector.get("matchLabels").and_then(Value::as_object) {
        for (key, value) in labels {
            requirements.push((key.clone(), format!("{key}={}", value.as_str().unwrap_or(""))));
        }
    }
    for expression in list(selector, "/matchExpressions") {
        let key = text(expression, "/key");
        let mut values: Vec<&str> = list(expression, "/values").iter().filter_map(Value::as_str).collect();
        values.sort_unstable();
        let values = values.join(",");
        let requirement = match text(expression, "/operator") {
            "In" => format!("{key} in ({values})"),
            "NotIn" => format!("{key} notin ({values})"),
            "Exists" => key.to_string(),
            "DoesNotExist" => format!("!{key}"),
            _ => return Err(UnknownOperator),
        };
        requirements.push((key.to_string(), requirement));
    }
    requirements.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(requirements.into_iter().map(|(_, requirement)| requirement).collect::<Vec<_>>().join(","))
}

/// A `matchExpressions` operator other than `In`, `NotIn`, `Exists`, `DoesNotExist`.
#[derive(Debug, PartialEq)]
pub(super) struct UnknownOperator;

/// `metav1.FormatLabelSelector`: like [`label_selector`], but `<none>` when empty and `<error>` when invalid.
pub(super) fn format_label_selector(selector: Option<&Value>) -> String {
    match label_selector(selector) {
        Ok(text) => or_none(&text),
        Err(UnknownOperator) => "<error>".to_string(),
    }
}

/// The Containers and Images cells of a workload: names and images of its pod template, comma-separated.
pub(super) fn container_cells(containers: &[Value]) -> (Value, Value) {
    let names: Vec<&str> = containers.iter().map(|c| text(c, "/name")).collect();
    let images: Vec<&str> = containers.iter().map(|c| text(c, "/image")).collect();
    (names.join(",").into(), images.join(",").into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selectors_read_like_kubectl_users_type_them() {
        let selector = json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["front", "back"]},
                {"key": "canary", "operator": "DoesNotExist"},
            ],
        });
        assert_eq!(label_selector(Some(&selector)), Ok("app=web,!canary,tier in (back,front)".to_string()));
        assert_eq!(format_label_selector(Some(&json!({}))), "<none>");
        assert_eq!(format_label_selector(None), "<none>");
        let bad = json!({"matchExpressions": [{"key": "a", "operator": "Near"}]});
        assert_eq!(format_label_selector(Some(&bad)), "<error>");
    }

    #[test]
    fn labels_are_sorted_and_empty_labels_print_none() {
        assert_eq!(format_labels(Some(&json!({"tier": "front", "app": "web"}))), "app=web,tier=front");
        assert_eq!(format_labels(Some(&json!({}))), "<none>");
        assert_eq!(format_labels(None), "<none>");
    }
}
