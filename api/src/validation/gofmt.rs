//! Composite values printed the way Kubernetes prints them in `Invalid value: ...` messages.
//!
//! Kubernetes formats a bad value that is not a string or a number with Go's `%#v`, which shows Go type names:
//! `map[string]string{"app":"web"}` or `v1.LabelSelector{MatchLabels:...}`. These wrappers have a `Debug`
//! implementation that produces that text, so they can be handed to [`crate::Cause::invalid`] like any value.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;
use std::fmt;

/// A `map[string]string`: `map[string]string{"app":"web", "tier":"fe"}`, or `map[string]string(nil)`.
pub struct GoMap<'a>(pub Option<&'a BTreeMap<String, String>>);

impl fmt::Debug for GoMap<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => write!(f, "map[string]string(nil)"),
            Some(map) => {
                let entries: Vec<String> = map.iter().map(|(k, v)| format!("{k:?}:{v:?}")).collect();
                write!(f, "map[string]string{{{}}}", entries.join(", "))
            }
        }
    }
}

/// A `[]string`: `[]string{"a", "b"}`, or `[]string(nil)`.
struct GoStrings<'a>(Option<&'a Vec<String>>);

impl fmt::Debug for GoStrings<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => write!(f, "[]string(nil)"),
            Some(values) => {
                let quoted: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
                write!(f, "[]string{{{}}}", quoted.join(", "))
            }
        }
    }
}

/// A label selector, as in the famous
/// `spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"web"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable`.
pub struct GoSelector<'a>(pub &'a LabelSelector);

impl fmt::Debug for GoSelector<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v1.LabelSelector{{MatchLabels:{:?}, MatchExpressions:", GoMap(self.0.match_labels.as_ref()))?;
        match &self.0.match_expressions {
            None => write!(f, "[]v1.LabelSelectorRequirement(nil)")?,
            Some(expressions) => {
                let items: Vec<String> = expressions
                    .iter()
                    .map(|e| {
                        format!(
                            "v1.LabelSelectorRequirement{{Key:{:?}, Operator:{:?}, Values:{:?}}}",
                            e.key,
                            e.operator,
                            GoStrings(e.values.as_ref())
                        )
                    })
                    .collect();
                write!(f, "[]v1.LabelSelectorRequirement{{{}}}", items.join(", "))?;
            }
        }
        write!(f, "}}")
    }
}

/// An `intstr.IntOrString`: `intstr.IntOrString{Type:0, IntVal:0, StrVal:""}` or
/// `intstr.IntOrString{Type:1, IntVal:0, StrVal:"25%"}`.
pub struct GoIntOrString<'a>(pub &'a IntOrString);

impl fmt::Debug for GoIntOrString<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IntOrString::Int(i) => write!(f, "intstr.IntOrString{{Type:0, IntVal:{i}, StrVal:\"\"}}"),
            IntOrString::String(s) => write!(f, "intstr.IntOrString{{Type:1, IntVal:0, StrVal:{s:?}}}"),
        }
    }
}

/// Any text that is already in its printed form (a Go struct literal built by the caller).
pub(crate) struct Raw(pub String);

impl fmt::Debug for Raw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    #[test]
    fn maps_and_selectors_print_like_go() {
        let labels: BTreeMap<String, String> = [("app".to_string(), "web".to_string())].into();
        assert_eq!(format!("{:?}", GoMap(Some(&labels))), r#"map[string]string{"app":"web"}"#);
        assert_eq!(format!("{:?}", GoMap(None)), "map[string]string(nil)");
        let selector = LabelSelector { match_labels: Some(labels), match_expressions: None };
        assert_eq!(
            format!("{:?}", GoSelector(&selector)),
            r#"v1.LabelSelector{MatchLabels:map[string]string{"app":"web"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}"#
        );
        let selector = LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "In".into(),
                values: Some(vec!["fe".into()]),
            }]),
        };
        assert_eq!(
            format!("{:?}", GoSelector(&selector)),
            r#"v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement{v1.LabelSelectorRequirement{Key:"tier", Operator:"In", Values:[]string{"fe"}}}}"#
        );
    }

    #[test]
    fn int_or_string_prints_its_go_struct() {
        assert_eq!(
            format!("{:?}", GoIntOrString(&IntOrString::Int(0))),
            r#"intstr.IntOrString{Type:0, IntVal:0, StrVal:""}"#
        );
        assert_eq!(
            format!("{:?}", GoIntOrString(&IntOrString::String("110%".into()))),
            r#"intstr.IntOrString{Type:1, IntVal:0, StrVal:"110%"}"#
        );
    }
}
