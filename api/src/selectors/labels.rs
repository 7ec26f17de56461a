//! Label selectors: a list of requirements that must all hold (`app=web,tier in (fe,be),!canary`).

use super::SelectorError;
use crate::names::{is_label_value, is_qualified_name};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector as WireSelector;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// How a requirement compares a label with its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// `key=value`
    Equals,
    /// `key==value` (same meaning as `=`, kept apart only to print the selector back as written)
    DoubleEquals,
    /// `key!=value`: also true when the label is absent.
    NotEquals,
    /// `key in (a,b)`
    In,
    /// `key notin (a,b)`: also true when the label is absent.
    NotIn,
    /// `key`: the label is present, whatever its value.
    Exists,
    /// `!key`: the label is absent.
    DoesNotExist,
    /// `key>5`: the label is an integer greater than the value (used by node affinity).
    GreaterThan,
    /// `key<5`
    LessThan,
}

/// One condition on one label key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    key: String,
    operator: Operator,
    /// The values, at least one for `in`/`notin`, exactly one for `=`, `!=`, `>`, `<`, none otherwise.
    values: Vec<String>,
}

/// A label selector: every requirement must hold. The empty selector matches everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector {
    /// Sorted by key, as Kubernetes keeps them, so that the printed form is canonical.
    requirements: Vec<Requirement>,
    /// The selector of a missing `spec.selector`: it matches nothing (Kubernetes' `labels.Nothing()`), so a
    /// controller without a selector never adopts every Pod of its namespace.
    nothing: bool,
}

impl Requirement {
    /// Builds and checks a requirement, with Kubernetes' field paths (`key`, `values[0][app]`) in its errors.
    pub fn new(key: &str, operator: Operator, values: Vec<String>) -> Result<Requirement, SelectorError> {
        let mut errors = Vec::new();
        if let Some(err) = key_error(key) {
            errors.push(err);
        }
        let values_wrong = match operator {
            Operator::In | Operator::NotIn if values.is_empty() => {
                Some("for 'in', 'notin' operators, values set can't be empty")
            }
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals if values.len() != 1 => {
                Some("exact-match compatibility requires one single value")
            }
            Operator::Exists | Operator::DoesNotExist if !values.is_empty() => {
                Some("values set must be empty for exists and does not exist")
            }
            Operator::GreaterThan | Operator::LessThan if values.len() != 1 => {
                Some("for 'Gt', 'Lt' operators, exactly one value is required")
            }
            _ => None,
        };
        if let Some(detail) = values_wrong {
            errors.push(format!("values: Invalid value: {}: {detail}", go_string_slice(&values)));
        }
        if matches!(operator, Operator::GreaterThan | Operator::LessThan) {
            for (i, value) in values.iter().enumerate() {
                if value.parse::<i64>().is_err() {
                    errors.push(format!(
                        "values[{i}]: Invalid value: {value:?}: for 'Gt', 'Lt' operators, the value must be an integer"
                    ));
                }
            }
        }
        for (i, value) in values.iter().enumerate() {
            let problems = is_label_value(value);
            if !problems.is_empty() {
                errors.push(format!("values[{i}][{key}]: Invalid value: {value:?}: {}", problems.join("; ")));
            }
        }
        if errors.is_empty() {
            Ok(Requirement { key: key.to_string(), operator, values })
        } else {
            Err(SelectorError::InvalidLabelSelector(aggregate(errors)))
        }
    }

    /// The label key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The operator.
    pub fn operator(&self) -> Operator {
        self.operator
    }

    /// The values, as given.
    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// Whether a set of labels satisfies this requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let label = labels.get(&self.key);
        let has_value = |v: &String| self.values.contains(v);
        match self.operator {
            Operator::In | Operator::Equals | Operator::DoubleEquals => label.is_some_and(has_value),
            Operator::NotIn | Operator::NotEquals => !label.is_some_and(has_value),
            Operator::Exists => label.is_some(),
            Operator::DoesNotExist => label.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let (Some(label), [bound]) = (label, self.values.as_slice()) else { return false };
                match (label.parse::<i64>(), bound.parse::<i64>()) {
                    (Ok(label), Ok(bound)) if self.operator == Operator::GreaterThan => label > bound,
                    (Ok(label), Ok(bound)) => label < bound,
                    _ => false,
                }
            }
        }
    }
}

impl fmt::Display for Requirement {
    /// The canonical form: `!key`, `key`, `key=v`, `key in (a,b)` with values sorted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.operator == Operator::DoesNotExist {
            write!(f, "!")?;
        }
        write!(f, "{}", self.key)?;
        let op = match self.operator {
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::In => " in ",
            Operator::NotIn => " notin ",
            Operator::GreaterThan => ">",
            Operator::LessThan => "<",
            Operator::Exists | Operator::DoesNotExist => return Ok(()),
        };
        let mut values = self.values.clone();
        values.sort();
        let values = values.join(",");
        match self.operator {
            Operator::In | Operator::NotIn => write!(f, "{op}({values})"),
            _ => write!(f, "{op}{values}"),
        }
    }
}

impl LabelSelector {
    /// The empty selector: matches every object (`kubectl get pods` without `-l`).
    pub fn everything() -> LabelSelector {
        LabelSelector::default()
    }

    /// The selector that matches no object, for a missing `spec.selector`.
    pub fn nothing() -> LabelSelector {
        LabelSelector { requirements: Vec::new(), nothing: true }
    }

    /// Builds a selector from requirements (sorted by key, as Kubernetes does).
    pub fn from_requirements(mut requirements: Vec<Requirement>) -> LabelSelector {
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        LabelSelector { requirements, nothing: false }
    }

    /// Reads the string form, as `kubectl get -l` and the `labelSelector` query parameter carry it.
    pub fn parse(text: &str) -> Result<LabelSelector, SelectorError> {
        super::label_parser::parse(text).map(LabelSelector::from_requirements)
    }

    /// Reads the structured form of a manifest (`matchLabels` and `matchExpressions`). An empty one matches
    /// everything; an operator other than `In`, `NotIn`, `Exists`, `DoesNotExist` is an error.
    pub fn from_wire(selector: &WireSelector) -> Result<LabelSelector, SelectorError> {
        let labels = selector.match_labels.iter().flatten();
        let expressions = selector.match_expressions.iter().flatten();
        let mut requirements = Vec::new();
        for (key, value) in labels {
            requirements.push(Requirement::new(key, Operator::Equals, vec![value.clone()])?);
        }
        for expression in expressions {
            let operator = match expression.operator.as_str() {
                "In" => Operator::In,
                "NotIn" => Operator::NotIn,
                "Exists" => Operator::Exists,
                "DoesNotExist" => Operator::DoesNotExist,
                other => {
                    return Err(SelectorError::InvalidLabelSelector(format!(
                        "{other:?} is not a valid label selector operator"
                    )));
                }
            };
            let values = expression.values.clone().unwrap_or_default();
            requirements.push(Requirement::new(&expression.key, operator, values)?);
        }
        Ok(LabelSelector::from_requirements(requirements))
    }

    /// Whether the labels of an object satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches(labels))
    }

    /// True for the selector that matches everything.
    pub fn is_empty(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    /// The requirements, sorted by key.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }
}

impl FromStr for LabelSelector {
    type Err = SelectorError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        LabelSelector::parse(text)
    }
}

impl fmt::Display for LabelSelector {
    /// The canonical string form, e.g. `app=web,tier in (be,fe)`; empty for everything (and for nothing).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.requirements.iter().map(Requirement::to_string).collect();
        write!(f, "{}", parts.join(","))
    }
}

/// `key: Invalid value: "-x": name part must ...` for a bad label key, or nothing.
pub(super) fn key_error(key: &str) -> Option<String> {
    let problems = is_qualified_name(key);
    (!problems.is_empty()).then(|| format!("key: Invalid value: {key:?}: {}", problems.join("; ")))
}

/// Go's `%#v` of a `[]string`, as the Kubernetes message shows the values: `[]string{"a", "b"}`.
fn go_string_slice(values: &[String]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
    format!("[]string{{{}}}", quoted.join(", "))
}

/// Kubernetes prints one error bare and several as `[a, b]`.
fn aggregate(errors: Vec<String>) -> String {
    match errors.as_slice() {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn selector(text: &str) -> LabelSelector {
        LabelSelector::parse(text).unwrap()
    }

    #[test]
    fn every_operator_of_the_string_form_matches_like_kubernetes() {
        let web = labels(&[("app", "web"), ("tier", "fe"), ("gen", "3")]);
        for (text, expected) in [
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("app!=db", true),
            ("missing!=x", true),
            ("tier in (fe,be)", true),
            ("tier notin (fe)", false),
            ("missing notin (fe)", true),
            ("app", true),
            ("!app", false),
            ("!canary", true),
            ("gen>2", true),
            ("gen<3", false),
            ("app=web, tier in (fe), !canary", true),
            ("app=web,tier=be", false),
        ] {
            assert_eq!(selector(text).matches(&web), expected, "{text}");
        }
    }

    #[test]
    fn an_empty_selector_matches_everything_and_nothing_matches_nothing() {
        assert!(selector("").matches(&labels(&[])));
        assert!(selector("  ").is_empty());
        assert!(!LabelSelector::nothing().matches(&labels(&[("app", "web")])));
    }

    #[test]
    fn the_string_form_prints_back_canonically_sorted_by_key() {
        assert_eq!(selector("tier in (fe, be),app=web,!canary,x").to_string(), "app=web,!canary,tier in (be,fe),x");
        assert_eq!(selector("a==b,c!=d,e notin (f)").to_string(), "a==b,c!=d,e notin (f)");
        assert_eq!(selector("a in (x,)").to_string(), "a in (,x)");
    }

    #[test]
    fn bad_syntax_is_reported_in_kubernetes_words() {
        let err = |text: &str| LabelSelector::parse(text).unwrap_err().to_string();
        assert_eq!(err("app in web"), "unable to parse requirement: found 'web' expected: '('");
        assert_eq!(err("app=web,"), "found '', expected: identifier after ','");
        assert_eq!(err("app web"), "unable to parse requirement: found 'web', expected: in, notin, =, ==, !=, gt, lt");
        assert_eq!(err("(app)"), "found '(', expected: !, identifier, or 'end of string'");
        assert_eq!(err("app in (a b)"), "unable to parse requirement: found 'b', expected: ',' or ')'");
        assert!(err("app=a b").starts_with("found 'b', expected: ',' or 'end of string'"));
    }

    #[test]
    fn bad_keys_and_values_name_the_field() {
        let err = LabelSelector::parse("app=a$b").unwrap_err().to_string();
        assert!(
            err.starts_with("unable to parse requirement: values[0][app]: Invalid value: \"a$b\": a valid label"),
            "{err}"
        );
        let err = LabelSelector::parse("-app=b").unwrap_err().to_string();
        assert!(err.starts_with("unable to parse requirement: key: Invalid value: \"-app\": name part"), "{err}");
        let err = LabelSelector::parse("gen>x").unwrap_err().to_string();
        assert!(err.contains("the value must be an integer"), "{err}");
    }

    #[test]
    fn a_manifest_selector_combines_match_labels_and_expressions() {
        let wire = WireSelector {
            match_labels: Some(labels(&[("app", "web")])),
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "NotIn".into(),
                values: Some(vec!["db".into()]),
            }]),
        };
        let selector = LabelSelector::from_wire(&wire).unwrap();
        assert_eq!(selector.to_string(), "app=web,tier notin (db)");
        assert!(selector.matches(&labels(&[("app", "web")])));
        assert!(!selector.matches(&labels(&[("app", "web"), ("tier", "db")])));
        assert!(LabelSelector::from_wire(&WireSelector::default()).unwrap().is_empty());
    }

    #[test]
    fn a_manifest_selector_with_a_bad_operator_is_an_error() {
        let wire = WireSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "Equals".into(),
                values: None,
            }]),
            ..Default::default()
        };
        let err = LabelSelector::from_wire(&wire).unwrap_err();
        assert_eq!(err.to_string(), "\"Equals\" is not a valid label selector operator");
        let wire = WireSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "In".into(),
                values: None,
            }]),
            ..Default::default()
        };
        let err = LabelSelector::from_wire(&wire).unwrap_err().to_string();
        assert_eq!(err, "values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty");
    }
}
