//! The Event row: `2m   Warning   BackOff   pod/web-1   Back-off restarting failed container`.
//!
//! Events come in two API generations: the old `core/v1` fields (`firstTimestamp`, `lastTimestamp`, `count`,
//! `source`) and the newer ones (`eventTime`, `series`, `reportingComponent`). printers.go reads whichever is
//! set, and so do we. Unlike other kinds, Name is not the first column but a wide one at the end.

use super::format::{field, since, since_time, text, timestamp};
use super::{Column, NAME};
use chrono::{DateTime, Utc};
use serde_json::Value;

pub(super) const COLUMNS: &[Column] = &[
    Column::text("Last Seen", "The time at which the most recent occurrence of this event was recorded."),
    Column::text("Type", "Type of this event (Normal, Warning), new types could be added in the future"),
    Column::text(
        "Reason",
        "This should be a short, machine understandable string that gives the reason for the \
        transition into the object's current status.",
    ),
    Column::text("Object", "The object that this event is about."),
    Column::text("Subobject", "The part of the object the event is about, e.g. a container.").wide(),
    Column::text("Source", "The component reporting this event.").wide(),
    Column::text("Message", "A human-readable description of the status of this operation."),
    Column::text("First Seen", "The time at which the event was first recorded.").wide(),
    Column::text("Count", "The number of times this event has occurred.").wide(),
    NAME.wide(),
];

pub(super) fn cells(event: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let first_seen = match timestamp(event, "/firstTimestamp") {
        Some(first) => since_time(Some(first), now),
        None => since(event, "/eventTime", now),
    };
    let mut last_seen = match timestamp(event, "/lastTimestamp") {
        Some(last) => since_time(Some(last), now),
        None => first_seen.clone(),
    };
    let mut count = event.get("count").and_then(Value::as_i64).unwrap_or(0);
    if let Some(series) = field(event, "/series") {
        last_seen = since(series, "/lastObservedTime", now);
        count = series.get("count").and_then(Value::as_i64).unwrap_or(0);
    } else if count == 0 {
        // Singleton events of the new API have no count.
        count = 1;
    }

    vec![
        last_seen.into(),
        text(event, "/type").into(),
        text(event, "/reason").into(),
        involved_object(event).into(),
        text(event, "/involvedObject/fieldPath").into(),
        source(event).into(),
        text(event, "/message").trim().into(),
        first_seen.into(),
        count.into(),
        text(event, "/metadata/name").into(),
    ]
}

/// `pod/web-1`: the kind in lower case and the name of the object the event is about.
fn involved_object(event: &Value) -> String {
    let kind = text(event, "/involvedObject/kind").to_lowercase();
    match text(event, "/involvedObject/name") {
        "" => kind,
        name => format!("{kind}/{name}"),
    }
}

/// `kubelet, node-1`: who reported the event, and where.
fn source(event: &Value) -> String {
    let first_set = |old: &'static str, new: &'static str| match text(event, old) {
        "" => text(event, new),
        value => value,
    };
    let component = first_set("/source/component", "/reportingComponent");
    match first_set("/source/host", "/reportingInstance") {
        "" => component.to_string(),
        instance => format!("{component}, {instance}"),
    }
}
