//! Streaming lists (watch-list, KEP-3157): a watch that starts with the whole collection.
//!
//! An informer used to begin with a `LIST` — every object in one large response the apiserver builds in memory —
//! and then a `WATCH` from the list's resourceVersion. Since Kubernetes 1.27 a client may instead ask for one
//! watch that *sends the list as events*:
//!
//! ```text
//! GET /apis/apps/v1/namespaces/default/deployments?watch=1&sendInitialEvents=true
//!     &resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true
//!
//! {"type":"ADDED","object":{ ...web... }}           ← every object the selectors match, as it is now
//! {"type":"ADDED","object":{ ...api... }}
//! {"type":"BOOKMARK","object":{"kind":"Deployment","apiVersion":"apps/v1","metadata":{
//!     "resourceVersion":"42","annotations":{"k8s.io/initial-events-end":"true"}}}}   ← "that was all of it"
//! {"type":"MODIFIED","object":{ ...web... }}        ← then the changes after revision 42, as any watch
//! ```
//!
//! kubectl 1.37 follows objects this way in `rollout status` and `wait`, and waits for that bookmark before it
//! looks at what it received: a server that ignores `sendInitialEvents` makes both commands hang.
//!
//! This module holds the two decisions, as pure functions: which query parameters go together
//! ([`validate_list_query`], Kubernetes' `ValidateListOptions`), and what a watch sends before the first change
//! ([`watch_start`], then [`initial_events`]). The store I/O stays in `watch.rs`.
//!
//! Where we differ from kube-apiserver, which serves these watches from its watch cache:
//! - `resourceVersion=N` with `NotOlderThan` asks for a state at least as new as N. The watch cache may be
//!   behind and waits up to 3 s to catch up before it gives up with `Too large resource version`. We read the
//!   store itself, which is never behind, so a revision beyond the store's is refused at once.
//! - Its bookmark carries, for `resourceVersion=N`, N itself; ours carries the revision the objects were read at
//!   (never older than N), which is what the KEP describes: "the RV corresponding to the set of objects".

use super::{Filter, WatchEvent};
use crate::store::Revision;
use kubelab_api::status::Cause;
use kubelab_api::{ApiError, object};
use serde_json::Value;

/// The annotation that marks the bookmark ending the initial events (one constant for server and client).
pub const INITIAL_EVENTS_END: &str = kubelab_api::client::WatchEvent::INITIAL_EVENTS_END;

/// The one `resourceVersionMatch` a watch accepts (lists also accept `Exact`).
const NOT_OLDER_THAN: &str = "NotOlderThan";
const EXACT: &str = "Exact";

/// The query parameters of a list or a watch that decide *which state* it starts from — the part of
/// Kubernetes' `metav1.ListOptions` that is not about selecting objects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// `watch=1`.
    pub watch: bool,
    /// `resourceVersion`: absent or `""` (the latest state), `"0"` (any state), or a revision `N`.
    pub resource_version: Option<String>,
    /// `resourceVersionMatch`: how `resourceVersion` is to be read (`NotOlderThan`, `Exact`).
    pub resource_version_match: Option<String>,
    /// `sendInitialEvents`: `None` when the client did not say — which is not the same as `false`.
    pub send_initial_events: Option<bool>,
    /// `allowWatchBookmarks=true`.
    pub allow_watch_bookmarks: bool,
    /// A `continue` token was given (the next page of a list).
    pub continuing: bool,
}

/// Where a watch starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchStart {
    /// First the current objects as ADDED events; then, if `end_bookmark`, the BOOKMARK annotated
    /// [`INITIAL_EVENTS_END`]; then the changes after the revision they were read at.
    Initial {
        end_bookmark: bool,
        /// The objects must be read at this revision or a later one (`resourceVersion=N`).
        not_older_than: Option<Revision>,
    },
    /// Only the changes after this revision.
    ChangesAfter(Revision),
    /// Only the changes from now on (`sendInitialEvents=false` without a revision).
    ChangesFromNow,
}

/// Refuses combinations a 1.32 kube-apiserver refuses (`ValidateListOptions` in apimachinery's
/// `pkg/apis/meta/internalversion/validation`), with the same `422 Invalid` on `ListOptions.meta.k8s.io`.
pub fn validate_list_query(query: &ListQuery) -> Result<(), ApiError> {
    let rv = query.resource_version.as_deref().unwrap_or("");
    let matching = query.resource_version_match.as_deref().unwrap_or("");
    let mut causes = Vec::new();
    if query.watch {
        if query.send_initial_events.is_some() && matching != NOT_OLDER_THAN {
            causes.push(Cause::forbidden(
                "resourceVersionMatch",
                format!("sendInitialEvents requires setting resourceVersionMatch to {NOT_OLDER_THAN}"),
            ));
        }
        if !matching.is_empty() {
            if query.send_initial_events.is_none() {
                causes.push(Cause::forbidden(
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
                ));
            }
            if matching != NOT_OLDER_THAN {
                causes.push(Cause::not_supported("resourceVersionMatch", matching, &[NOT_OLDER_THAN]));
            }
            if query.continuing {
                causes.push(Cause::forbidden(
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden when continue is provided",
                ));
            }
        }
    } else {
        if !matching.is_empty() {
            if rv.is_empty() {
                causes.push(Cause::forbidden(
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden unless resourceVersion is provided",
                ));
            }
            if query.continuing {
                causes.push(Cause::forbidden(
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden when continue is provided",
                ));
            }
            if matching != EXACT && matching != NOT_OLDER_THAN {
                causes.push(Cause::not_supported("resourceVersionMatch", matching, &[EXACT, NOT_OLDER_THAN, ""]));
            }
            if matching == EXACT && rv == "0" {
                causes.push(Cause::forbidden(
                    "resourceVersionMatch",
                    "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
                ));
            }
        }
        if query.send_initial_events.is_some() {
            causes.push(Cause::forbidden("sendInitialEvents", "sendInitialEvents is forbidden for list"));
        }
    }
    if causes.is_empty() { Ok(()) } else { Err(ApiError::invalid("meta.k8s.io", "ListOptions", "", causes)) }
}

// ANCHOR: watch_start
/// Where a (valid) watch starts. Without `sendInitialEvents`, the legacy rule: `resourceVersion` `""` or `"0"`
/// sends the current objects first (with no bookmark after them), `N` only the changes after N.
pub fn watch_start(query: &ListQuery) -> Result<WatchStart, ApiError> {
    let revision = match query.resource_version.as_deref().unwrap_or("") {
        "" | "0" => None,
        rv => Some(
            rv.parse::<Revision>()
                .ok()
                .filter(|r| *r > 0)
                .ok_or_else(|| ApiError::bad_request(format!("invalid resourceVersion {rv:?}")))?,
        ),
    };
    Ok(match (query.send_initial_events, revision) {
        (Some(true), not_older_than) => {
            WatchStart::Initial { end_bookmark: query.allow_watch_bookmarks, not_older_than }
        }
        (None, None) => WatchStart::Initial { end_bookmark: false, not_older_than: None },
        (Some(false), None) => WatchStart::ChangesFromNow,
        (_, Some(revision)) => WatchStart::ChangesAfter(revision),
    })
}
// ANCHOR_END: watch_start

// ANCHOR: initial_events
/// What a watch that starts with [`WatchStart::Initial`] sends before any change, given every object of the
/// collection read at `revision`: the ones `filter` selects, as ADDED, then the end bookmark when asked for.
/// A state older than the client has already seen is refused, as an ERROR event (which ends the watch).
pub(crate) fn initial_events(
    start: &WatchStart,
    objects: Vec<Value>,
    filter: &Filter,
    revision: Revision,
) -> Vec<WatchEvent> {
    let WatchStart::Initial { end_bookmark, not_older_than } = start else {
        return Vec::new();
    };
    if let Some(wanted) = not_older_than.filter(|wanted| *wanted > revision) {
        return vec![WatchEvent::Error(too_large_resource_version(wanted, revision))];
    }
    let mut events: Vec<WatchEvent> =
        objects.into_iter().filter(|o| filter.matches(o)).map(WatchEvent::Added).collect();
    if *end_bookmark {
        events.push(WatchEvent::InitialEventsEnd(revision));
    }
    events
}
// ANCHOR_END: initial_events

/// The object of a BOOKMARK event: only the kind, and the revision in `metadata` (with the end-of-initial-events
/// annotation when it is that bookmark).
pub fn bookmark_object(kind: &str, api_version: &str, revision: Revision, initial_events_end: bool) -> Value {
    let mut bookmark = serde_json::json!({"kind": kind, "apiVersion": api_version, "metadata": {}});
    object::set_meta(&mut bookmark, "resourceVersion", revision.to_string());
    if initial_events_end {
        bookmark["metadata"]["annotations"] = serde_json::json!({ INITIAL_EVENTS_END: "true" });
    }
    bookmark
}

/// kube-apiserver's `504 Timeout` for a state newer than it has (`storage.NewTooLargeResourceVersionError`).
fn too_large_resource_version(wanted: Revision, current: Revision) -> ApiError {
    let mut err = ApiError::timeout(format!("Too large resource version: {wanted}, current: {current}"));
    err.details = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::StatusDetails {
        causes: Some(vec![k8s_openapi::apimachinery::pkg::apis::meta::v1::StatusCause {
            reason: Some("ResourceVersionTooLarge".into()),
            message: Some("Too large resource version".into()),
            field: None,
        }]),
        retry_after_seconds: Some(1),
        ..Default::default()
    });
    err
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::ListOptions;
    use kubelab_api::resources;
    use serde_json::json;

    fn query(params: &[(&str, &str)]) -> ListQuery {
        let get = |name: &str| params.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string());
        ListQuery {
            watch: get("watch").is_some_and(|v| v == "1"),
            resource_version: get("resourceVersion"),
            resource_version_match: get("resourceVersionMatch"),
            send_initial_events: get("sendInitialEvents").map(|v| v == "true"),
            allow_watch_bookmarks: get("allowWatchBookmarks").is_some_and(|v| v == "true"),
            continuing: get("continue").is_some(),
        }
    }

    /// What kubectl 1.37 (client-go's reflector with WatchListClient on) sends.
    const WATCH_LIST: &[(&str, &str)] = &[
        ("watch", "1"),
        ("sendInitialEvents", "true"),
        ("resourceVersionMatch", "NotOlderThan"),
        ("allowWatchBookmarks", "true"),
    ];

    fn message(params: &[(&str, &str)]) -> String {
        validate_list_query(&query(params)).unwrap_err().message
    }

    fn pod(name: &str, app: &str, node: &str) -> Value {
        json!({"kind": "Pod", "apiVersion": "v1",
               "metadata": {"name": name, "namespace": "default", "labels": {"app": app}, "resourceVersion": "5"},
               "spec": {"nodeName": node}})
    }

    fn filter(labels: &str, fields: &str) -> Filter {
        let pods = resources::by_user_name("pods").unwrap();
        let options = ListOptions {
            label_selector: Some(labels.into()),
            field_selector: Some(fields.into()),
            ..Default::default()
        };
        Filter::new(pods, &options).unwrap()
    }

    fn names(events: &[WatchEvent]) -> Vec<String> {
        events
            .iter()
            .map(|event| match event {
                WatchEvent::Added(o) => format!("ADDED {}", object::name(o)),
                WatchEvent::InitialEventsEnd(rv) => format!("END {rv}"),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn what_kubectl_1_37_sends_is_valid_and_starts_with_the_objects_then_the_end_bookmark() {
        let q = query(WATCH_LIST);
        assert_eq!(validate_list_query(&q), Ok(()));
        assert_eq!(watch_start(&q), Ok(WatchStart::Initial { end_bookmark: true, not_older_than: None }));
    }

    #[test]
    fn an_empty_collection_sends_only_the_end_bookmark() {
        let start = watch_start(&query(WATCH_LIST)).unwrap();
        assert_eq!(names(&initial_events(&start, vec![], &filter("", ""), 7)), ["END 7"]);
    }

    #[test]
    fn a_collection_sends_each_object_as_added_then_the_end_bookmark_at_the_list_revision() {
        let start = watch_start(&query(WATCH_LIST)).unwrap();
        let pods = vec![pod("a", "web", "n1"), pod("b", "db", "n2")];
        assert_eq!(names(&initial_events(&start, pods, &filter("", ""), 9)), ["ADDED a", "ADDED b", "END 9"]);
    }

    #[test]
    fn selectors_choose_the_initial_objects_and_the_bookmark_still_ends_them() {
        let start = watch_start(&query(WATCH_LIST)).unwrap();
        let pods = || vec![pod("a", "web", "n1"), pod("b", "db", "n1"), pod("c", "web", "n2")];
        assert_eq!(names(&initial_events(&start, pods(), &filter("app=web", ""), 9)), ["ADDED a", "ADDED c", "END 9"]);
        assert_eq!(
            names(&initial_events(&start, pods(), &filter("app=web", "spec.nodeName=n2"), 9)),
            ["ADDED c", "END 9"]
        );
        assert_eq!(names(&initial_events(&start, pods(), &filter("app=none", ""), 9)), ["END 9"]);
    }

    #[test]
    fn the_end_bookmark_carries_the_annotation_and_the_revision() {
        assert_eq!(
            bookmark_object("Deployment", "apps/v1", 42, true),
            json!({"kind": "Deployment", "apiVersion": "apps/v1",
                   "metadata": {"resourceVersion": "42", "annotations": {"k8s.io/initial-events-end": "true"}}})
        );
        assert_eq!(bookmark_object("Pod", "v1", 3, false)["metadata"], json!({"resourceVersion": "3"}));
    }

    #[test]
    fn without_bookmarks_allowed_the_objects_are_sent_with_no_end_bookmark() {
        // kube-apiserver accepts this and simply sends no bookmark (`isInitialEventsEndBookmarkRequired`).
        let q = query(&[("watch", "1"), ("sendInitialEvents", "true"), ("resourceVersionMatch", "NotOlderThan")]);
        assert_eq!(validate_list_query(&q), Ok(()));
        let start = watch_start(&q).unwrap();
        assert_eq!(names(&initial_events(&start, vec![pod("a", "web", "n1")], &filter("", ""), 4)), ["ADDED a"]);
    }

    #[test]
    fn the_resource_version_says_how_fresh_the_initial_state_must_be() {
        let with_rv = |rv: &str| {
            let mut q = query(WATCH_LIST);
            q.resource_version = Some(rv.into());
            watch_start(&q).unwrap()
        };
        assert_eq!(with_rv(""), WatchStart::Initial { end_bookmark: true, not_older_than: None });
        assert_eq!(with_rv("0"), WatchStart::Initial { end_bookmark: true, not_older_than: None });
        assert_eq!(with_rv("12"), WatchStart::Initial { end_bookmark: true, not_older_than: Some(12) });
        // Read at 20, not older than 12: served, and the bookmark says 20.
        assert_eq!(names(&initial_events(&with_rv("12"), vec![], &filter("", ""), 20)), ["END 20"]);
        // Not older than 30 when the store is at 20: refused as kube-apiserver refuses it.
        let events = initial_events(&with_rv("30"), vec![pod("a", "web", "n1")], &filter("", ""), 20);
        let [WatchEvent::Error(err)] = events.as_slice() else { panic!("expected one error, got {events:?}") };
        assert_eq!((err.code, err.reason.as_str()), (504, "Timeout"));
        assert_eq!(err.message, "Too large resource version: 30, current: 20");
    }

    #[test]
    fn without_send_initial_events_the_legacy_rules_hold() {
        let start = |params: &[(&str, &str)]| watch_start(&query(params)).unwrap();
        assert_eq!(start(&[("watch", "1")]), WatchStart::Initial { end_bookmark: false, not_older_than: None });
        assert_eq!(
            start(&[("watch", "1"), ("resourceVersion", "0"), ("allowWatchBookmarks", "true")]),
            WatchStart::Initial { end_bookmark: false, not_older_than: None }
        );
        assert_eq!(start(&[("watch", "1"), ("resourceVersion", "8")]), WatchStart::ChangesAfter(8));
        let no_initial = [("watch", "1"), ("sendInitialEvents", "false"), ("resourceVersionMatch", "NotOlderThan")];
        assert_eq!(start(&no_initial), WatchStart::ChangesFromNow);
        let mut from_8 = no_initial.to_vec();
        from_8.push(("resourceVersion", "8"));
        assert_eq!(start(&from_8), WatchStart::ChangesAfter(8));
        assert!(watch_start(&query(&[("watch", "1"), ("resourceVersion", "x")])).is_err());
    }

    #[test]
    fn refusals_read_as_kube_apiserver_writes_them() {
        assert_eq!(
            message(&[("watch", "1"), ("sendInitialEvents", "true"), ("allowWatchBookmarks", "true")]),
            "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: sendInitialEvents requires \
             setting resourceVersionMatch to NotOlderThan"
        );
        assert_eq!(
            message(&[("watch", "1"), ("sendInitialEvents", "true"), ("resourceVersionMatch", "Exact")]),
            "ListOptions.meta.k8s.io \"\" is invalid: [resourceVersionMatch: Forbidden: sendInitialEvents requires \
             setting resourceVersionMatch to NotOlderThan, resourceVersionMatch: Unsupported value: \"Exact\": \
             supported values: \"NotOlderThan\"]"
        );
        assert_eq!(
            message(&[("watch", "1"), ("resourceVersionMatch", "NotOlderThan")]),
            "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is \
             forbidden for watch unless sendInitialEvents is provided"
        );
        assert_eq!(
            message(&[("sendInitialEvents", "true"), ("resourceVersionMatch", "NotOlderThan")]),
            "ListOptions.meta.k8s.io \"\" is invalid: [resourceVersionMatch: Forbidden: resourceVersionMatch is \
             forbidden unless resourceVersion is provided, sendInitialEvents: Forbidden: sendInitialEvents is \
             forbidden for list]"
        );
        assert_eq!(
            message(&[("resourceVersion", "0"), ("resourceVersionMatch", "Exact")]),
            "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch \
             \"exact\" is forbidden for resourceVersion \"0\""
        );
        let err = validate_list_query(&query(&[("sendInitialEvents", "false")])).unwrap_err();
        assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
        let details = err.details.unwrap();
        assert_eq!((details.group.as_deref(), details.kind.as_deref()), (Some("meta.k8s.io"), Some("ListOptions")));
        assert_eq!(details.causes.unwrap()[0].field.as_deref(), Some("sendInitialEvents"));
    }

    #[test]
    fn plain_lists_and_watches_stay_valid() {
        for params in [
            &[][..],
            &[("limit", "500"), ("resourceVersion", "0")],
            &[("resourceVersion", "10"), ("resourceVersionMatch", "NotOlderThan")],
            &[("watch", "1"), ("resourceVersion", "10"), ("allowWatchBookmarks", "true")],
        ] {
            assert_eq!(validate_list_query(&query(params)), Ok(()), "{params:?}");
        }
    }
}
