//! A Deployment's history, and what going back in it means — pure functions over JSON, for `rollout history`
//! and `rollout undo`.
//!
//! A Deployment keeps no history of its own. Each time its pod template changes, the Deployment controller
//! makes a new ReplicaSet (or reuses the one whose template matches) and stamps it with the next number in the
//! annotation `deployment.kubernetes.io/revision`. The old ReplicaSets stay, scaled to zero, up to
//! `spec.revisionHistoryLimit`: *they are the history*. Undo copies an old ReplicaSet's template back into the
//! Deployment, and the controller then rolls out "forward" to it (the revived ReplicaSet gets a new, higher
//! revision number).

use crate::tabwriter::TabWriter;
use serde_json::{Map, Value, json};

/// The annotation holding a ReplicaSet's revision number.
pub const REVISION: &str = "deployment.kubernetes.io/revision";
/// The annotation whose value `rollout history` shows as CHANGE-CAUSE (set by hand, or by the old `--record`).
pub const CHANGE_CAUSE: &str = "kubernetes.io/change-cause";
/// The label the Deployment controller adds to each ReplicaSet's template so that their pods never overlap.
const POD_TEMPLATE_HASH: &str = "pod-template-hash";

/// Deployment annotations that describe the Deployment itself, not a revision: undo keeps the Deployment's
/// values of these and never copies the ReplicaSet's (kubectl's `annotationsToSkip`).
const ANNOTATIONS_TO_SKIP: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "deprecated.deployment.rollback.to",
];

/// One revision: its number and the ReplicaSet holding its template.
#[derive(Debug, Clone, PartialEq)]
pub struct Revision<'a> {
    /// From the revision annotation; 0 when it is missing, as in kubectl.
    pub number: i64,
    pub replica_set: &'a Value,
}

impl Revision<'_> {
    /// The `kubernetes.io/change-cause` annotation, or `<none>`.
    pub fn change_cause(&self) -> &str {
        match annotation(self.replica_set, CHANGE_CAUSE) {
            Some(cause) if !cause.is_empty() => cause,
            _ => "<none>",
        }
    }
}

fn annotation<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object["metadata"]["annotations"][key].as_str()
}

/// The revisions of `deployment`, oldest first. `replica_sets` are those matching its selector; a ReplicaSet
/// counts only if its *controller* owner reference carries the Deployment's uid (another Deployment with an
/// overlapping selector, or an earlier Deployment of the same name, may own ReplicaSets that match).
pub fn revisions<'a>(deployment: &Value, replica_sets: &'a [Value]) -> Vec<Revision<'a>> {
    let uid = &deployment["metadata"]["uid"];
    let owned = |rs: &Value| {
        rs["metadata"]["ownerReferences"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|owner| owner["controller"] == json!(true) && &owner["uid"] == uid)
    };
    let mut revisions: Vec<Revision> = replica_sets
        .iter()
        .filter(|rs| owned(rs))
        .map(|rs| Revision {
            number: annotation(rs, REVISION).and_then(|r| r.parse().ok()).unwrap_or(0),
            replica_set: rs,
        })
        .collect();
    revisions.sort_by_key(|revision| revision.number);
    revisions
}

/// The table of `rollout history`: `REVISION  CHANGE-CAUSE`, one line per revision, oldest first.
pub fn history_table(revisions: &[Revision]) -> String {
    if revisions.is_empty() {
        return "No rollout history found.\n".to_string();
    }
    let mut text = String::from("REVISION\tCHANGE-CAUSE\n");
    for revision in revisions {
        text.push_str(&format!("{}\t{}\n", revision.number, revision.change_cause()));
    }
    // kubectl formats this table like `describe` (`tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)`), not like `get`.
    TabWriter::describe().format(&text)
}

/// What `rollout undo` should do.
#[derive(Debug, Clone, PartialEq)]
pub enum Undo {
    /// Send this JSON patch (`application/json-patch+json`) to the Deployment.
    Patch(Value),
    /// The Deployment's template already is that revision's: nothing to send.
    AlreadyThere(i64),
}

// ANCHOR: undo
/// kubectl's `DeploymentRollbacker`: picks the revision to go back to (`to_revision`, or with 0 the one before
/// the latest), and builds the patch replacing the Deployment's template and annotations with that revision's.
///
/// Errors are kubectl's sentences.
pub fn undo(deployment: &Value, revisions: &[Revision], to_revision: i64) -> Result<Undo, String> {
    let name = deployment["metadata"]["name"].as_str().unwrap_or_default();
    if deployment["spec"]["paused"] == json!(true) {
        return Err(
            "you cannot rollback a paused deployment; resume it first with 'kubectl rollout resume' and try again"
                .to_string(),
        );
    }
    let target = if to_revision > 0 {
        revisions
            .iter()
            .find(|revision| revision.number == to_revision)
            .ok_or_else(|| format!("unable to find specified revision {to_revision} in history"))?
    } else {
        // `revisions` is sorted: the one before the last is the previous revision.
        match revisions {
            [.., previous, _latest] => previous,
            _ => return Err(format!("no rollout history found for deployment {name:?}")),
        }
    };
    let mut template = target.replica_set["spec"]["template"].clone();
    remove_hash_label(&mut template);
    let mut current = deployment["spec"]["template"].clone();
    remove_hash_label(&mut current);
    if template == current {
        return Ok(Undo::AlreadyThere(target.number));
    }
    // The Deployment keeps its own bookkeeping annotations, and takes every other one from the revision.
    let mut annotations = Map::new();
    for (key, value) in deployment["metadata"]["annotations"].as_object().into_iter().flatten() {
        if ANNOTATIONS_TO_SKIP.contains(&key.as_str()) {
            annotations.insert(key.clone(), value.clone());
        }
    }
    for (key, value) in target.replica_set["metadata"]["annotations"].as_object().into_iter().flatten() {
        if !ANNOTATIONS_TO_SKIP.contains(&key.as_str()) {
            annotations.insert(key.clone(), value.clone());
        }
    }
    Ok(Undo::Patch(json!([
        {"op": "replace", "path": "/spec/template", "value": template},
        {"op": "replace", "path": "/metadata/annotations", "value": annotations},
    ])))
}
// ANCHOR_END: undo

/// Removes the `pod-template-hash` label, which belongs to the ReplicaSet, not to the Deployment's template.
fn remove_hash_label(template: &mut Value) {
    // `pointer_mut`, not `template["metadata"]["labels"]`: indexing a JSON value mutably inserts what is missing.
    if let Some(labels) = template.pointer_mut("/metadata/labels").and_then(Value::as_object_mut) {
        labels.remove(POD_TEMPLATE_HASH);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID: &str = "uid-web";

    fn deployment(image: &str, annotations: Value) -> Value {
        json!({
            "metadata": {"name": "web", "uid": UID, "annotations": annotations},
            "spec": {"template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"image": image}]}}},
        })
    }

    /// A ReplicaSet of revision `revision` running `image`, controlled by the Deployment with `owner_uid`.
    fn replica_set(revision: &str, image: &str, owner_uid: &str, cause: Option<&str>) -> Value {
        let mut annotations = json!({REVISION: revision, "deployment.kubernetes.io/desired-replicas": "3"});
        if let Some(cause) = cause {
            annotations[CHANGE_CAUSE] = json!(cause);
        }
        json!({
            "metadata": {"name": format!("web-{revision}"), "annotations": annotations,
                         "ownerReferences": [{"kind": "Deployment", "name": "web", "uid": owner_uid, "controller": true}]},
            "spec": {"template": {
                "metadata": {"labels": {"app": "web", "pod-template-hash": format!("h{revision}")}},
                "spec": {"containers": [{"image": image}]}}},
        })
    }

    #[test]
    fn history_keeps_the_deployments_replica_sets_in_numeric_revision_order() {
        let sets = vec![
            replica_set("10", "web:10", UID, None),
            replica_set("2", "web:2", UID, Some("kubectl set image web=web:2")),
            replica_set("1", "other:1", "uid-of-another-deployment", None),
            replica_set("9", "web:9", UID, None),
        ];
        let deployment = deployment("web:10", json!({}));
        let numbers: Vec<i64> = revisions(&deployment, &sets).iter().map(|r| r.number).collect();
        assert_eq!(numbers, vec![2, 9, 10], "10 after 9: sorted as numbers, not strings");
        assert_eq!(
            history_table(&revisions(&deployment, &sets)),
            "REVISION  CHANGE-CAUSE\n2         kubectl set image web=web:2\n9         <none>\n10        <none>\n"
        );
    }

    #[test]
    fn undo_goes_back_to_the_previous_revision_without_the_hash_label() {
        let sets = vec![replica_set("1", "web:1", UID, Some("first")), replica_set("2", "web:2", UID, None)];
        let deployment = deployment(
            "web:2",
            json!({REVISION: "2", "kubectl.kubernetes.io/last-applied-configuration": "{}", "team": "blue"}),
        );
        let Ok(Undo::Patch(patch)) = undo(&deployment, &revisions(&deployment, &sets), 0) else {
            panic!("expected a patch");
        };
        assert_eq!(
            patch,
            json!([
                {"op": "replace", "path": "/spec/template", "value": {
                    "metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"image": "web:1"}]}}},
                // The Deployment's own bookkeeping stays; `team` was not on revision 1, so it goes.
                {"op": "replace", "path": "/metadata/annotations", "value": {
                    REVISION: "2", "kubectl.kubernetes.io/last-applied-configuration": "{}",
                    CHANGE_CAUSE: "first"}},
            ])
        );
    }

    #[test]
    fn undo_to_a_named_revision_and_its_errors_use_kubectls_words() {
        let sets = vec![replica_set("1", "web:1", UID, None), replica_set("2", "web:2", UID, None)];
        let deployment = deployment("web:2", json!({}));
        let history = revisions(&deployment, &sets);
        assert!(matches!(undo(&deployment, &history, 1), Ok(Undo::Patch(_))));
        assert_eq!(undo(&deployment, &history, 2), Ok(Undo::AlreadyThere(2)));
        assert_eq!(undo(&deployment, &history, 7), Err("unable to find specified revision 7 in history".into()));
        assert_eq!(undo(&deployment, &history[1..], 0), Err("no rollout history found for deployment \"web\"".into()));
    }
}
