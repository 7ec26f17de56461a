//! Deployments and ReplicaSets: a selector, a Pod template the selector matches, and how to roll out.
//!
//! Mirrors `ValidateDeployment`, `ValidateReplicaSet` and their update rules in `pkg/apis/apps/validation`, and
//! `ValidateLabelSelector` in `pkg/apis/meta/v1/validation`. The selector is what ties a workload to its Pods;
//! that is why it must match the template (or the controller would create Pods it cannot see, forever) and why
//! it may not change once the workload exists.

use super::gofmt::{GoIntOrString, GoMap, GoSelector, Raw};
use super::meta::{
    ObjectScope, validate_label_name, validate_labels, validate_object_meta, validate_object_meta_update,
};
use super::pod::validate_pod_template;
use super::{IMMUTABLE, Path, non_negative, not_supported_value};
use crate::names::{is_label_value, is_valid_percent, name_is_dns_subdomain};
use crate::selectors::LabelSelector as Selector;
use crate::status::Cause;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// A Deployment on create or update.
pub(super) fn validate_deployment(deployment: &Deployment, old: Option<&Deployment>) -> Vec<Cause> {
    let mut causes = validate_object_meta(&deployment.metadata, ObjectScope::Namespaced, name_is_dns_subdomain);
    let spec = deployment.spec.clone().unwrap_or_default();
    if let Some(old) = old {
        causes.extend(validate_object_meta_update(&deployment.metadata, &old.metadata));
    }
    causes.extend(validate_deployment_spec(&spec, &Path::new("spec")));
    if let Some(old) = old {
        let old_spec = old.spec.clone().unwrap_or_default();
        causes.extend(immutable_selector(&spec.selector, &old_spec.selector));
    }
    causes
}

/// A ReplicaSet on create or update.
pub(super) fn validate_replica_set(replica_set: &ReplicaSet, old: Option<&ReplicaSet>) -> Vec<Cause> {
    let mut causes = validate_object_meta(&replica_set.metadata, ObjectScope::Namespaced, name_is_dns_subdomain);
    let spec = replica_set.spec.clone().unwrap_or_default();
    if let Some(old) = old {
        causes.extend(validate_object_meta_update(&replica_set.metadata, &old.metadata));
    }
    causes.extend(validate_replica_set_spec(&spec, &Path::new("spec")));
    if let Some(old) = old {
        let old_spec = old.spec.clone().unwrap_or_default();
        causes.extend(immutable_selector(&spec.selector, &old_spec.selector));
    }
    causes
}

/// `spec.selector: Invalid value: v1.LabelSelector{...}: field is immutable`.
fn immutable_selector(new: &LabelSelector, old: &LabelSelector) -> Option<Cause> {
    (new != old).then(|| Cause::invalid(Path::new("spec").child("selector"), GoSelector(new), IMMUTABLE))
}

fn validate_deployment_spec(spec: &DeploymentSpec, path: &Path) -> Vec<Cause> {
    let mut causes = Vec::new();
    causes.extend(non_negative(spec.replicas.unwrap_or(0).into(), path.child("replicas")));
    causes.extend(validate_selector_and_template(&spec.selector, &spec.template, path));
    let strategy = spec.strategy.clone().unwrap_or_default();
    causes.extend(validate_strategy(&strategy, &path.child("strategy")));
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    causes.extend(non_negative(min_ready.into(), path.child("minReadySeconds")));
    if let Some(limit) = spec.revision_history_limit {
        causes.extend(non_negative(limit.into(), path.child("revisionHistoryLimit")));
    }
    if let Some(deadline) = spec.progress_deadline_seconds {
        causes.extend(non_negative(deadline.into(), path.child("progressDeadlineSeconds")));
        // The deadline counts from when Pods are created; it must leave them time to become ready.
        if deadline <= min_ready {
            causes.push(Cause::invalid(
                path.child("progressDeadlineSeconds"),
                deadline,
                "must be greater than minReadySeconds",
            ));
        }
    }
    causes
}

fn validate_replica_set_spec(spec: &ReplicaSetSpec, path: &Path) -> Vec<Cause> {
    let mut causes = Vec::new();
    causes.extend(non_negative(spec.replicas.unwrap_or(0).into(), path.child("replicas")));
    causes.extend(non_negative(spec.min_ready_seconds.unwrap_or(0).into(), path.child("minReadySeconds")));
    let template = spec.template.clone().unwrap_or_default();
    causes.extend(validate_selector_and_template(&spec.selector, &template, path));
    causes
}

/// The selector, then the template against it (`ValidatePodTemplateSpecForReplicaSet`).
///
/// `k8s-openapi` cannot tell a missing `selector` from `selector: {}`; both come out empty, and we read them as
/// missing, the mistake students actually make: Kubernetes then reports the selector as required and, since a
/// missing selector matches nothing, the template labels as not matching.
fn validate_selector_and_template(selector: &LabelSelector, template: &PodTemplateSpec, path: &Path) -> Vec<Cause> {
    let mut causes = Vec::new();
    let selector_path = path.child("selector");
    let missing = selector.match_labels.is_none() && selector.match_expressions.is_none();
    let parsed = if missing {
        causes.push(Cause::required(&selector_path, ""));
        Ok(Selector::nothing())
    } else {
        causes.extend(validate_label_selector(selector, &selector_path));
        let count = selector.match_labels.as_ref().map_or(0, |m| m.len())
            + selector.match_expressions.as_ref().map_or(0, |e| e.len());
        if count == 0 {
            causes.push(Cause::invalid(
                &selector_path,
                GoSelector(selector),
                "empty selector is invalid for deployment",
            ));
        }
        Selector::from_wire(selector)
    };
    let Ok(parsed) = parsed else {
        causes.push(Cause::invalid(&selector_path, GoSelector(selector), "invalid label selector"));
        return causes;
    };
    let template_path = path.child("template");
    let labels = template.metadata.as_ref().and_then(|m| m.labels.as_ref());
    if !parsed.is_empty() && !parsed.matches(labels.unwrap_or(&Default::default())) {
        let field = template_path.child("metadata").child("labels");
        causes.push(Cause::invalid(field, GoMap(labels), "`selector` does not match template `labels`"));
    }
    causes.extend(validate_pod_template(template, &template_path));
    let spec = template.spec.clone().unwrap_or_default();
    // A workload's Pods are replaced when they stop, so they must restart rather than finish.
    let restart_policy = spec.restart_policy.as_deref().unwrap_or("");
    if restart_policy != "Always" {
        let field = template_path.child("spec").child("restartPolicy");
        causes.push(Cause::not_supported(field, restart_policy, &["Always"]));
    }
    if spec.active_deadline_seconds.is_some() {
        let field = template_path.child("spec").child("activeDeadlineSeconds");
        causes.push(Cause::forbidden(field, "activeDeadlineSeconds in ReplicaSet is not Supported"));
    }
    causes
}

/// `matchLabels` and `matchExpressions` (`ValidateLabelSelector`).
fn validate_label_selector(selector: &LabelSelector, path: &Path) -> Vec<Cause> {
    let mut causes = validate_labels(selector.match_labels.as_ref(), &path.child("matchLabels"));
    for (i, requirement) in selector.match_expressions.iter().flatten().enumerate() {
        let item = path.child("matchExpressions").index(i);
        let values = requirement.values.as_deref().unwrap_or(&[]);
        match requirement.operator.as_str() {
            "In" | "NotIn" if values.is_empty() => {
                causes.push(Cause::required(
                    item.child("values"),
                    "must be specified when `operator` is 'In' or 'NotIn'",
                ));
            }
            "Exists" | "DoesNotExist" if !values.is_empty() => {
                let detail = "may not be specified when `operator` is 'Exists' or 'DoesNotExist'";
                causes.push(Cause::forbidden(item.child("values"), detail));
            }
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            other => causes.push(Cause::invalid(item.child("operator"), other, "not a valid selector operator")),
        }
        causes.extend(validate_label_name(&requirement.key, &item.child("key")));
        for (j, value) in values.iter().enumerate() {
            causes.extend(super::each_invalid(&item.child("values").index(j), value, is_label_value(value)));
        }
    }
    causes
}

/// `RollingUpdate` with sane surge and unavailability, or `Recreate` without them.
fn validate_strategy(strategy: &DeploymentStrategy, path: &Path) -> Vec<Cause> {
    let mut causes = Vec::new();
    match strategy.type_.as_deref().unwrap_or("") {
        "Recreate" => {
            if strategy.rolling_update.is_some() {
                let detail = "may not be specified when strategy `type` is 'Recreate'";
                causes.push(Cause::forbidden(path.child("rollingUpdate"), detail));
            }
        }
        "RollingUpdate" => match &strategy.rolling_update {
            None => {
                let detail = "this should be defaulted and never be nil";
                causes.push(Cause::required(path.child("rollingUpdate"), detail));
            }
            Some(rolling) => {
                let zero = IntOrString::Int(0);
                let max_unavailable = rolling.max_unavailable.as_ref().unwrap_or(&zero);
                let max_surge = rolling.max_surge.as_ref().unwrap_or(&zero);
                let rolling_path = path.child("rollingUpdate");
                causes.extend(validate_int_or_percent(max_unavailable, &rolling_path.child("maxUnavailable")));
                causes.extend(validate_int_or_percent(max_surge, &rolling_path.child("maxSurge")));
                // Neither extra Pods nor missing Pods: the rollout could never make progress.
                if int_or_percent_value(max_unavailable) == 0 && int_or_percent_value(max_surge) == 0 {
                    let field = rolling_path.child("maxUnavailable");
                    causes.push(Cause::invalid(
                        field,
                        GoIntOrString(max_unavailable),
                        "may not be 0 when `maxSurge` is 0",
                    ));
                }
                if percent(max_unavailable).is_some_and(|p| p > 100) {
                    let field = rolling_path.child("maxUnavailable");
                    causes.push(Cause::invalid(field, GoIntOrString(max_unavailable), "must not be greater than 100%"));
                }
            }
        },
        other => {
            let rolling = if strategy.rolling_update.is_some() {
                "&apps.RollingUpdateDeployment{...}"
            } else {
                "(*apps.RollingUpdateDeployment)(nil)"
            };
            let value = Raw(format!("apps.DeploymentStrategy{{Type:{other:?}, RollingUpdate:{rolling}}}"));
            causes.push(not_supported_value(path.clone(), value, &["Recreate", "RollingUpdate"]));
        }
    }
    causes
}

/// `ValidatePositiveIntOrPercent`: a non-negative number, or a percentage such as `25%`.
fn validate_int_or_percent(value: &IntOrString, path: &Path) -> Vec<Cause> {
    match value {
        IntOrString::String(text) => {
            is_valid_percent(text).into_iter().map(|m| Cause::invalid(path, GoIntOrString(value), m)).collect()
        }
        IntOrString::Int(number) => non_negative((*number).into(), path.clone()).into_iter().collect(),
    }
}

/// `25%` → 25; not a percentage → `None`.
fn percent(value: &IntOrString) -> Option<i64> {
    match value {
        IntOrString::String(text) if is_valid_percent(text).is_empty() => text.trim_end_matches('%').parse().ok(),
        _ => None,
    }
}

/// The number in a number or a percentage, 0 for anything unreadable (as Kubernetes' `IntValue`).
fn int_or_percent_value(value: &IntOrString) -> i64 {
    match value {
        IntOrString::Int(number) => (*number).into(),
        IntOrString::String(text) => percent(value).unwrap_or_else(|| text.parse().unwrap_or(0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::Validate;
    use crate::validation::test_support::{decode, lines};
    use serde_json::{Value, json};

    fn deployment(spec: Value) -> Deployment {
        decode(json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default"}, "spec": spec}))
    }

    fn web_spec() -> Value {
        json!({"selector": {"matchLabels": {"app": "web"}},
               "template": {"metadata": {"labels": {"app": "web"}},
                            "spec": {"containers": [{"name": "web", "image": "nginx"}]}}})
    }

    fn errors(spec: Value) -> Vec<String> {
        lines(&deployment(spec).validate(None))
    }

    #[test]
    fn a_valid_deployment_has_no_errors() {
        assert_eq!(errors(web_spec()), Vec::<String>::new());
    }

    #[test]
    fn the_selector_must_match_the_template_labels() {
        let mut spec = web_spec();
        spec["template"]["metadata"]["labels"] = json!({"app": "api"});
        assert_eq!(
            errors(spec),
            vec![
                "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"api\"}: `selector` does not match template `labels`"
            ]
        );
    }

    #[test]
    fn a_missing_selector_is_required_and_matches_no_template() {
        let mut spec = web_spec();
        spec.as_object_mut().unwrap().remove("selector");
        assert_eq!(
            errors(spec),
            vec![
                "spec.selector: Required value",
                "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`",
            ]
        );
        let mut spec = web_spec();
        spec["selector"] = json!({"matchLabels": {}});
        assert_eq!(
            errors(spec),
            vec![
                "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment"
            ]
        );
    }

    #[test]
    fn negative_numbers_are_refused() {
        let mut spec = web_spec();
        spec["replicas"] = json!(-1);
        spec["revisionHistoryLimit"] = json!(-2);
        assert_eq!(
            errors(spec),
            vec![
                "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
                "spec.revisionHistoryLimit: Invalid value: -2: must be greater than or equal to 0",
            ]
        );
    }

    #[test]
    fn a_rollout_must_be_able_to_make_progress() {
        let mut spec = web_spec();
        spec["strategy"] = json!({"rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}});
        assert_eq!(
            errors(spec),
            vec![
                "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"0%\"}: may not be 0 when `maxSurge` is 0"
            ]
        );
        let mut spec = web_spec();
        spec["strategy"] = json!({"rollingUpdate": {"maxUnavailable": "110%", "maxSurge": "lots"}});
        assert_eq!(
            errors(spec),
            vec![
                "spec.strategy.rollingUpdate.maxSurge: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"lots\"}: a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
                "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"110%\"}: must not be greater than 100%",
            ]
        );
    }

    #[test]
    fn recreate_takes_no_rolling_update_and_unknown_types_are_refused() {
        let mut spec = web_spec();
        spec["strategy"] = json!({"type": "Recreate", "rollingUpdate": {"maxSurge": 1}});
        assert_eq!(
            errors(spec),
            vec!["spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'"]
        );
        let mut spec = web_spec();
        spec["strategy"] = json!({"type": "BlueGreen"});
        assert_eq!(
            errors(spec),
            vec![
                "spec.strategy: Unsupported value: apps.DeploymentStrategy{Type:\"BlueGreen\", RollingUpdate:(*apps.RollingUpdateDeployment)(nil)}: supported values: \"Recreate\", \"RollingUpdate\""
            ]
        );
    }

    #[test]
    fn the_progress_deadline_must_exceed_min_ready_seconds() {
        let mut spec = web_spec();
        spec["minReadySeconds"] = json!(600);
        assert_eq!(
            errors(spec),
            vec!["spec.progressDeadlineSeconds: Invalid value: 600: must be greater than minReadySeconds"]
        );
    }

    #[test]
    fn the_template_pod_spec_is_checked_under_spec_template_spec() {
        let mut spec = web_spec();
        spec["template"]["spec"] = json!({"restartPolicy": "Never", "containers": [{"name": "web"}]});
        assert_eq!(
            errors(spec),
            vec![
                "spec.template.spec.containers[0].image: Required value",
                "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"",
            ]
        );
    }

    #[test]
    fn the_selector_cannot_change_on_update() {
        let old = deployment(web_spec());
        let mut spec = web_spec();
        spec["selector"] = json!({"matchLabels": {"app": "web2"}});
        spec["template"]["metadata"]["labels"] = json!({"app": "web2"});
        let new = deployment(spec);
        assert_eq!(
            lines(&new.validate(Some(&old))),
            vec![
                "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"web2\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"
            ]
        );
        let mut scaled = web_spec();
        scaled["replicas"] = json!(5);
        assert!(deployment(scaled).validate(Some(&old)).is_empty());
    }

    #[test]
    fn selector_expressions_are_checked() {
        let mut spec = web_spec();
        spec["selector"] = json!({"matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In"}, {"key": "x", "operator": "Equals", "values": ["a"]}]});
        assert_eq!(
            errors(spec),
            vec![
                "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
                "spec.selector.matchExpressions[1].operator: Invalid value: \"Equals\": not a valid selector operator",
                "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"web\"}, MatchExpressions:[]v1.LabelSelectorRequirement{v1.LabelSelectorRequirement{Key:\"tier\", Operator:\"In\", Values:[]string(nil)}, v1.LabelSelectorRequirement{Key:\"x\", Operator:\"Equals\", Values:[]string{\"a\"}}}}: invalid label selector",
            ]
        );
    }

    #[test]
    fn a_replica_set_is_checked_like_a_deployment() {
        let rs: ReplicaSet = decode(json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "web-abc", "namespace": "default"},
            "spec": {"replicas": -1, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "api"}}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}}));
        assert_eq!(
            lines(&rs.validate(None)),
            vec![
                "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
                "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"api\"}: `selector` does not match template `labels`",
            ]
        );
    }
}
