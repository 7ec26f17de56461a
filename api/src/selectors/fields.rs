//! Field selectors: equality on a few well-known fields (`spec.nodeName=node-1,status.phase!=Failed`).

use super::SelectorError;
use serde_json::Value;
use std::fmt;
use std::str::FromStr;

/// One `field=value` (or `field!=value`) condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldTerm {
    /// The field, e.g. `spec.nodeName`.
    pub field: String,
    /// The wanted value, unescaped (`\,` in the query becomes `,`).
    pub value: String,
    /// `!=` rather than `=` or `==`.
    pub negated: bool,
}

/// A field selector: every term must hold. The empty selector matches everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldSelector {
    /// Sorted as Kubernetes sorts the terms of the text before reading them.
    terms: Vec<FieldTerm>,
}

/// The fields every kind can be selected by.
const META_FIELDS: &[&str] = &["metadata.name", "metadata.namespace"];

/// The fields each kind can be selected by, as registered by Kubernetes' `pkg/registry/<kind>/strategy.go`
/// (`ToSelectableFields`) and the field-label conversion functions of each API group.
pub fn supported_fields(kind: &str) -> &'static [&'static str] {
    match kind {
        "Pod" => &[
            "metadata.name",
            "metadata.namespace",
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
        "Event" => &[
            "metadata.name",
            "metadata.namespace",
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        "Node" => &["metadata.name", "spec.unschedulable"],
        "Namespace" => &["metadata.name", "status.phase"],
        "Service" => &["metadata.name", "metadata.namespace", "spec.clusterIP", "spec.type"],
        "ReplicaSet" => &["metadata.name", "metadata.namespace", "status.replicas"],
        _ => META_FIELDS,
    }
}

/// Whether objects of `kind` can be selected by `field`. The apiserver answers 400 Bad Request with
/// `field label not supported: <field>` when a list or watch asks for a field that is not.
pub fn is_supported_field(kind: &str, field: &str) -> bool {
    supported_fields(kind).contains(&field)
}

/// The value of a selectable field of an object, as Kubernetes puts it in the object's field set: strings as
/// they are, a missing string as `""` (so `spec.nodeName=` selects unscheduled Pods), booleans as `true`/`false`
/// and numbers in decimal. `None` when no kind can be selected by `field`.
pub fn selectable_field(object: &Value, field: &str) -> Option<String> {
    let text = |pointer: &str| object.pointer(pointer).and_then(Value::as_str).unwrap_or("").to_string();
    let flag = |pointer: &str| object.pointer(pointer).and_then(Value::as_bool).unwrap_or(false).to_string();
    let value = match field {
        "metadata.name" => text("/metadata/name"),
        "metadata.namespace" => text("/metadata/namespace"),
        "spec.nodeName" => text("/spec/nodeName"),
        "spec.restartPolicy" => text("/spec/restartPolicy"),
        "spec.schedulerName" => text("/spec/schedulerName"),
        "spec.serviceAccountName" => text("/spec/serviceAccountName"),
        "spec.hostNetwork" => flag("/spec/hostNetwork"),
        "spec.unschedulable" => flag("/spec/unschedulable"),
        "spec.clusterIP" => text("/spec/clusterIP"),
        "spec.type" => text("/spec/type"),
        "status.phase" => text("/status/phase"),
        "status.podIP" => text("/status/podIP"),
        "status.nominatedNodeName" => text("/status/nominatedNodeName"),
        "status.replicas" => object.pointer("/status/replicas").and_then(Value::as_i64).unwrap_or(0).to_string(),
        "reason" => text("/reason"),
        "type" => text("/type"),
        "reportingComponent" => text("/reportingComponent"),
        // An Event's source is its `source.component`, or the reporting component of newer events.
        "source" => {
            Some(text("/source/component")).filter(|s| !s.is_empty()).unwrap_or_else(|| text("/reportingComponent"))
        }
        _ => {
            let rest = field.strip_prefix("involvedObject.")?;
            if !["kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath"].contains(&rest) {
                return None;
            }
            text(&format!("/involvedObject/{rest}"))
        }
    };
    Some(value)
}

impl FieldSelector {
    /// The empty selector, matching everything.
    pub fn everything() -> FieldSelector {
        FieldSelector::default()
    }

    /// Reads `a=b,c!=d` (also `a==b`). In values, `\,`, `\=` and `\\` stand for `,`, `=` and `\`.
    pub fn parse(text: &str) -> Result<FieldSelector, SelectorError> {
        let mut parts = split_terms(text);
        parts.sort();
        let mut terms = Vec::new();
        for part in parts.iter().filter(|p| !p.is_empty()) {
            let Some((field, operator, value)) = split_term(part) else {
                return Err(SelectorError::InvalidFieldSelector(format!(
                    "invalid selector: '{text}'; can't understand '{part}'"
                )));
            };
            terms.push(FieldTerm { field: field.to_string(), value: unescape(value)?, negated: operator == "!=" });
        }
        Ok(FieldSelector { terms })
    }

    /// The terms, in order.
    pub fn terms(&self) -> &[FieldTerm] {
        &self.terms
    }

    /// True for the selector that matches everything.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Fails with `field label not supported: <field>` on the first field `kind` cannot be selected by.
    pub fn check_supported(&self, kind: &str) -> Result<(), SelectorError> {
        match self.terms.iter().find(|t| !is_supported_field(kind, &t.field)) {
            Some(term) => Err(SelectorError::FieldNotSupported(term.field.clone())),
            None => Ok(()),
        }
    }

    /// Whether an object (any kind, as JSON) satisfies every term. A field that no kind supports is an error;
    /// check [`FieldSelector::check_supported`] first to also refuse fields of other kinds.
    pub fn matches(&self, object: &Value) -> Result<bool, SelectorError> {
        let mut all_hold = true;
        for term in &self.terms {
            // Every field is looked at, so that an unknown field is an error whatever the other terms say.
            let actual = selectable_field(object, &term.field)
                .ok_or_else(|| SelectorError::FieldNotSupported(term.field.clone()))?;
            all_hold &= (actual == term.value) != term.negated;
        }
        Ok(all_hold)
    }

    /// The value the selector requires for `field` with `=`, if any: `spec.nodeName=node-1` gives `node-1`.
    /// Lets a store or cache narrow a list before matching.
    pub fn required_value(&self, field: &str) -> Option<&str> {
        self.terms.iter().find(|t| t.field == field && !t.negated).map(|t| t.value.as_str())
    }
}

impl FromStr for FieldSelector {
    type Err = SelectorError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        FieldSelector::parse(text)
    }
}

impl fmt::Display for FieldSelector {
    /// `a=b,c!=d`, with `,`, `=` and `\` escaped in values (`==` prints as `=`, as in Kubernetes).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .terms
            .iter()
            .map(|t| format!("{}{}{}", t.field, if t.negated { "!=" } else { "=" }, escape(&t.value)))
            .collect();
        write!(f, "{}", parts.join(","))
    }
}

/// Splits on commas that are not escaped.
fn split_terms(text: &str) -> Vec<&str> {
    if text.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut in_slash = false;
    for (i, c) in text.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(&text[start..i]);
            start = i + 1;
        }
    }
    terms.push(&text[start..]);
    terms
}

/// Splits `field<op>value` at the first operator, trying `!=`, then `==`, then `=` at each position.
fn split_term(term: &str) -> Option<(&str, &'static str, &str)> {
    for (i, _) in term.char_indices() {
        let remaining = &term[i..];
        for operator in ["!=", "==", "="] {
            if remaining.starts_with(operator) {
                return Some((&term[..i], operator, &term[i + operator.len()..]));
            }
        }
    }
    None
}

fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace(',', "\\,").replace('=', "\\=")
}

fn unescape(value: &str) -> Result<String, SelectorError> {
    let invalid = |message: String| SelectorError::InvalidFieldSelector(format!("invalid field selector: {message}"));
    let mut out = String::with_capacity(value.len());
    let mut in_slash = false;
    for c in value.chars() {
        if in_slash {
            if !matches!(c, '\\' | ',' | '=') {
                return Err(invalid(format!("invalid escape sequence: \\{c}")));
            }
            out.push(c);
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if matches!(c, ',' | '=') {
            // Kubernetes prints the rune with `%v`, which shows its code point: `61` for `=`.
            return Err(invalid(format!("unescaped character in value: {}", u32::from(c))));
        } else {
            out.push(c);
        }
    }
    if in_slash {
        return Err(invalid("invalid escape sequence: \\".to_string()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Value {
        json!({
            "kind": "Pod",
            "metadata": {"name": "web-1", "namespace": "default"},
            "spec": {"schedulerName": "default-scheduler", "containers": []},
            "status": {"phase": "Pending"}
        })
    }

    #[test]
    fn an_unscheduled_pod_matches_an_empty_node_name() {
        let unscheduled = FieldSelector::parse("spec.nodeName=").unwrap();
        assert!(unscheduled.matches(&pod()).unwrap());
        let mut bound = pod();
        bound["spec"]["nodeName"] = json!("node-1");
        assert!(!unscheduled.matches(&bound).unwrap());
        assert!(FieldSelector::parse("spec.nodeName==node-1").unwrap().matches(&bound).unwrap());
        assert_eq!(
            FieldSelector::parse("spec.nodeName=node-1").unwrap().required_value("spec.nodeName"),
            Some("node-1")
        );
    }

    #[test]
    fn negated_terms_and_several_terms_all_must_hold() {
        let selector = FieldSelector::parse("status.phase!=Failed,metadata.namespace=default").unwrap();
        assert!(selector.matches(&pod()).unwrap());
        let selector = FieldSelector::parse("status.phase!=Pending,metadata.name=web-1").unwrap();
        assert!(!selector.matches(&pod()).unwrap());
        assert!(FieldSelector::parse("").unwrap().matches(&pod()).unwrap());
    }

    #[test]
    fn event_fields_select_by_involved_object_and_source() {
        let event = json!({
            "involvedObject": {"kind": "Pod", "name": "web-1", "namespace": "default"},
            "reason": "Scheduled", "type": "Normal", "source": {"component": "default-scheduler"}
        });
        let selector = FieldSelector::parse(
            "involvedObject.kind=Pod,involvedObject.name=web-1,reason=Scheduled,type=Normal,source=default-scheduler",
        )
        .unwrap();
        assert!(selector.matches(&event).unwrap());
        assert!(selector.check_supported("Event").is_ok());
    }

    #[test]
    fn an_unsupported_field_is_refused_in_kubernetes_words() {
        let selector = FieldSelector::parse("spec.nodeName=n1,spec.replicas=3").unwrap();
        assert_eq!(
            selector.check_supported("Pod").unwrap_err().to_string(),
            "field label not supported: spec.replicas"
        );
        assert_eq!(selector.matches(&pod()).unwrap_err().to_string(), "field label not supported: spec.replicas");
        assert!(is_supported_field("Deployment", "metadata.name"));
        assert!(!is_supported_field("Deployment", "spec.nodeName"));
        assert!(!is_supported_field("Node", "metadata.namespace"));
    }

    #[test]
    fn bad_syntax_and_escapes_are_reported() {
        assert_eq!(
            FieldSelector::parse("spec.nodeName").unwrap_err().to_string(),
            "invalid selector: 'spec.nodeName'; can't understand 'spec.nodeName'"
        );
        assert_eq!(
            FieldSelector::parse("a=b\\x").unwrap_err().to_string(),
            "invalid field selector: invalid escape sequence: \\x"
        );
        let escaped = FieldSelector::parse("metadata.name=a\\,b").unwrap();
        assert_eq!(escaped.terms()[0].value, "a,b");
        assert_eq!(escaped.to_string(), "metadata.name=a\\,b");
    }

    #[test]
    fn the_selector_prints_back_sorted() {
        let selector = FieldSelector::parse("status.phase!=Failed,metadata.name==x").unwrap();
        assert_eq!(selector.to_string(), "metadata.name=x,status.phase!=Failed");
    }
}
