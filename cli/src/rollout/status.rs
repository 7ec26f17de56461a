//! The decision of `rollout status`: given a Deployment as the server last showed it, is its rollout done,
//! still going (and what to say), or failed? kubectl's `DeploymentStatusViewer`, as a pure function.

use serde_json::Value;

/// Where a Deployment's rollout stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Still rolling out; the line to print, e.g. `Waiting for deployment "web" rollout to finish: ...`.
    Waiting(String),
    /// Every replica runs the new template and is available: `deployment "web" successfully rolled out`.
    Done(String),
    /// The Deployment controller gave up (its `progressDeadlineSeconds` passed without progress).
    Failed(String),
}

// ANCHOR: progress
/// Reads the rollout's state from the Deployment alone, in kubectl's order of checks.
///
/// The first check matters most: `status` describes the spec of generation `status.observedGeneration`. Until
/// the controller has seen the latest spec (`metadata.generation`), the counters speak of an older spec and
/// say nothing about this rollout.
pub fn progress(deployment: &Value) -> Progress {
    let name = deployment["metadata"]["name"].as_str().unwrap_or_default();
    let int = |value: &Value| value.as_i64().unwrap_or(0);
    let generation = int(&deployment["metadata"]["generation"]);
    let status = &deployment["status"];
    if generation > int(&status["observedGeneration"]) {
        return Progress::Waiting("Waiting for deployment spec update to be observed...".to_string());
    }
    let progressing =
        status["conditions"].as_array().into_iter().flatten().find(|condition| condition["type"] == "Progressing");
    if progressing.is_some_and(|condition| condition["reason"] == "ProgressDeadlineExceeded") {
        return Progress::Failed(format!("deployment {name:?} exceeded its progress deadline"));
    }
    let (updated, replicas, available) =
        (int(&status["updatedReplicas"]), int(&status["replicas"]), int(&status["availableReplicas"]));
    let waiting =
        |what: String| Progress::Waiting(format!("Waiting for deployment {name:?} rollout to finish: {what}"));
    // A missing `spec.replicas` is skipped by kubectl (the server defaults it to 1, so it is never missing).
    if let Some(wanted) = deployment["spec"]["replicas"].as_i64().filter(|wanted| updated < *wanted) {
        return waiting(format!("{updated} out of {wanted} new replicas have been updated..."));
    }
    if replicas > updated {
        return waiting(format!("{} old replicas are pending termination...", replicas - updated));
    }
    if available < updated {
        return waiting(format!("{available} of {updated} updated replicas are available..."));
    }
    Progress::Done(format!("deployment {name:?} successfully rolled out"))
}
// ANCHOR_END: progress

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A Deployment `web` wanting `wanted` replicas, at generation 2, with the given status.
    fn web(wanted: i64, status: Value) -> Value {
        json!({"metadata": {"name": "web", "generation": 2}, "spec": {"replicas": wanted}, "status": status})
    }

    fn waiting(what: &str) -> Progress {
        Progress::Waiting(format!("Waiting for deployment \"web\" rollout to finish: {what}"))
    }

    #[test]
    fn an_unobserved_spec_is_waited_for_before_anything_else() {
        // Even a deadline exceeded for the old spec says nothing about the new one.
        let status = json!({"observedGeneration": 1, "conditions": [
            {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]});
        assert_eq!(
            progress(&web(3, status)),
            Progress::Waiting("Waiting for deployment spec update to be observed...".into())
        );
    }

    #[test]
    fn a_rollout_goes_through_kubectls_messages_in_order() {
        let steps = [
            (
                json!({"replicas": 3, "updatedReplicas": 1, "availableReplicas": 2}),
                waiting("1 out of 3 new replicas have been updated..."),
            ),
            (
                json!({"replicas": 4, "updatedReplicas": 3, "availableReplicas": 3}),
                waiting("1 old replicas are pending termination..."),
            ),
            (
                json!({"replicas": 3, "updatedReplicas": 3, "availableReplicas": 2}),
                waiting("2 of 3 updated replicas are available..."),
            ),
            (
                json!({"replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}),
                Progress::Done("deployment \"web\" successfully rolled out".into()),
            ),
        ];
        for (mut status, expected) in steps {
            status["observedGeneration"] = json!(2);
            assert_eq!(progress(&web(3, status)), expected);
        }
    }

    #[test]
    fn an_exceeded_progress_deadline_fails_the_rollout() {
        let status = json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 1, "conditions": [
            {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
            {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]});
        assert_eq!(
            progress(&web(3, status)),
            Progress::Failed("deployment \"web\" exceeded its progress deadline".into())
        );
    }

    #[test]
    fn a_deployment_scaled_to_zero_is_rolled_out_at_once() {
        let status = json!({"observedGeneration": 2});
        assert!(matches!(progress(&web(0, status)), Progress::Done(_)));
    }
}
