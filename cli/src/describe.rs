//! `kubelab describe KIND NAME`: one object, explained for a human, with what happened to it.
//!
//! `get -o yaml` shows everything; `describe` shows what matters and adds what the object alone cannot tell:
//! its *events*. Events are separate objects (`kind: Event`) that controllers write about an object ("Scaled
//! up replica set web-5d4f to 3", "Successfully assigned default/web-1 to node-1"); we find them with a field
//! selector on `involvedObject`, as kubectl does.
//!
//! Deployments and pods get the layout kubectl gives them ([`kinds`]); other kinds show their spec and status
//! as indented YAML. The layout itself is kubectl's: `Key:\tvalue` lines, aligned by the
//! [`TabWriter`](crate::tabwriter::TabWriter).

mod kinds;

use crate::context::Context;
use crate::tabwriter::TabWriter;
use crate::target;
use crate::{AlreadyReported, print};
use chrono::{DateTime, Utc};
use clap::Args;
use kubelab_api::client::{ClientError, ListParams};
use kubelab_api::object;
use kubelab_api::resources::Resource;
use serde_json::Value;
use std::collections::BTreeMap;

/// Show the details of an object, and its recent events.
///
/// Prints a readable page about each object: its metadata, the parts of its spec and status that matter for
/// its kind, and the events recorded about it (scheduling, scaling, failures). Without NAME, describes every
/// object of the kind in the namespace.
#[derive(Args, Debug)]
#[command(after_help = "Examples:
  kubelab describe deploy web
  kubelab describe pod/web-5d4f8c-x2x9q
  kubelab describe nodes")]
pub struct Describe {
    /// What to describe: KIND [NAME...] or KIND/NAME... (`deploy web`, `pod/web-1`).
    #[arg(value_name = "KIND [NAME...]", required = true)]
    args: Vec<String>,
}

impl Describe {
    pub async fn run(self, ctx: &Context) -> anyhow::Result<()> {
        let mut failed = false;
        let mut first = true;
        for target in target::parse(&self.args)? {
            let namespace = ctx.namespace_for(target.resource);
            let objects: Vec<Result<Value, ClientError>> = if target.names.is_empty() {
                ctx.client
                    .list(target.resource, namespace, &ListParams::default())
                    .await?
                    .items
                    .into_iter()
                    .map(Ok)
                    .collect()
            } else {
                let mut objects = Vec::new();
                for name in &target.names {
                    objects.push(ctx.client.get(target.resource, namespace, name).await);
                }
                objects
            };
            for object in objects {
                match object {
                    Ok(object) => {
                        if !first {
                            println!();
                        }
                        first = false;
                        print!("{}", describe(ctx, target.resource, &object).await);
                    }
                    Err(err) => {
                        eprintln!("{}", print::error_message(&err.into()));
                        failed = true;
                    }
                }
            }
        }
        if failed { Err(AlreadyReported.into()) } else { Ok(()) }
    }
}

/// The whole page for one object.
async fn describe(ctx: &Context, resource: &'static Resource, object: &Value) -> String {
    let mut page = Page::default();
    metadata(&mut page, resource, object);
    match resource.kind {
        "Deployment" => kinds::deployment(&mut page, ctx, object).await,
        "Pod" => kinds::pod(&mut page, object),
        _ => generic(&mut page, object),
    }
    events(&mut page, ctx, resource, object).await;
    page.finish()
}

/// Name, Namespace, CreationTimestamp, Labels, Annotations: the same for every kind, in kubectl's Deployment order.
fn metadata(page: &mut Page, resource: &Resource, object: &Value) {
    page.field(0, "Name", object::name(object));
    if resource.namespaced {
        page.field(0, "Namespace", object::namespace(object));
    }
    page.field(0, "CreationTimestamp", &timestamp(object::meta_str(object, "creationTimestamp")));
    page.labels(0, "Labels", &object::labels(object));
    let annotations = object.pointer("/metadata/annotations").and_then(Value::as_object);
    let annotations: Vec<String> = annotations
        .map(|a| a.iter().map(|(k, v)| format!("{k}: {}", v.as_str().unwrap_or_default())).collect())
        .unwrap_or_default();
    page.list(0, "Annotations", &annotations);
}

/// Every top-level field but the metadata, as YAML: `Spec:`, `Status:`, `Data:`...
fn generic(page: &mut Page, object: &Value) {
    let Some(fields) = object.as_object() else { return };
    for (key, value) in fields {
        if matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
            continue;
        }
        let mut title = key.clone();
        if let Some(first) = title.get_mut(0..1) {
            first.make_ascii_uppercase();
        }
        match value {
            Value::Object(_) | Value::Array(_) => {
                page.line(0, format!("{title}:"));
                let yaml = print::to_yaml(value).unwrap_or_else(|err| format!("<{err}>"));
                for line in yaml.lines() {
                    // A tab in the YAML would be read as a column separator.
                    page.line(1, line.replace('\t', "    "));
                }
            }
            Value::String(text) => page.field(0, &title, text),
            other => page.field(0, &title, &other.to_string()),
        }
    }
}

/// The `Events:` table, oldest first, or `<none>`.
async fn events(page: &mut Page, ctx: &Context, resource: &Resource, object: &Value) {
    let events = match find_events(ctx, resource, object).await {
        Ok(events) => events,
        Err(err) => {
            page.field(0, "Events", &format!("<error: {err}>"));
            return;
        }
    };
    if events.is_empty() {
        page.field(0, "Events", "<none>");
        return;
    }
    let now = Utc::now();
    page.line(0, "Events:");
    page.line(1, "Type\tReason\tAge\tFrom\tMessage");
    page.line(1, "----\t------\t----\t----\t-------");
    for event in &events {
        let text = |field: &str| event[field].as_str().unwrap_or_default().to_string();
        let row =
            [text("type"), text("reason"), event_age(event, now), event_source(event), text("message").trim().into()];
        page.line(1, row.join("\t"));
    }
}

/// Events about `object`: by field selector on `involvedObject`; if the server cannot select on those fields,
/// every event of the namespace, filtered here.
async fn find_events(ctx: &Context, resource: &Resource, object: &Value) -> Result<Vec<Value>, ClientError> {
    let events = target::resolve("events").map_err(|err| ClientError::Usage(err.to_string()))?;
    let (name, namespace, uid) = (object::name(object), object::namespace(object), object::meta_str(object, "uid"));
    let selector = format!("involvedObject.name={name},involvedObject.namespace={namespace},involvedObject.uid={uid}");
    let scope = resource.namespaced.then_some(namespace);
    let mut found = match ctx.client.list(events, scope, &ListParams::default().fields(selector)).await {
        Ok(list) => list.items,
        Err(ClientError::Api(err)) if err.code == 400 => {
            let all = ctx.client.list(events, scope, &ListParams::default()).await?.items;
            all.into_iter().filter(|e| e.pointer("/involvedObject/uid").and_then(Value::as_str) == Some(uid)).collect()
        }
        Err(err) => return Err(err),
    };
    found.sort_by_key(|e| last_seen(e).unwrap_or_default());
    Ok(found)
}

/// When an event last happened: `lastTimestamp`, else the newer `series.lastObservedTime` or `eventTime`.
fn last_seen(event: &Value) -> Option<String> {
    ["/lastTimestamp", "/series/lastObservedTime", "/eventTime", "/firstTimestamp"]
        .iter()
        .find_map(|p| event.pointer(p).and_then(Value::as_str).filter(|s| !s.is_empty()).map(String::from))
}

/// `5s`, or `2m (x4 over 10m)` for an event that repeated.
fn event_age(event: &Value, now: DateTime<Utc>) -> String {
    let at = |pointer: &str| event.pointer(pointer).and_then(Value::as_str).unwrap_or_default();
    let count = event["count"].as_i64().or_else(|| event.pointer("/series/count").and_then(Value::as_i64));
    let first = [at("/firstTimestamp"), at("/eventTime")].into_iter().find(|s| !s.is_empty()).unwrap_or_default();
    match count {
        Some(count) if count > 1 => {
            let last = last_seen(event).unwrap_or_default();
            format!("{} (x{count} over {})", print::age(&last, now), print::age(first, now))
        }
        _ => print::age(first, now),
    }
}

/// Who reported an event: `default-scheduler`, `kubelet` (kubectl 1.32 shows the component, not the host).
fn event_source(event: &Value) -> String {
    let at = |pointer: &str| event.pointer(pointer).and_then(Value::as_str).unwrap_or_default();
    match at("/source/component") {
        "" => at("/reportingController").to_string(),
        component => component.to_string(),
    }
}

/// kubectl's describe time format: `Mon, 02 Jan 2006 15:04:05 +0000`.
pub fn timestamp(rfc3339: &str) -> String {
    match DateTime::parse_from_rfc3339(rfc3339) {
        Ok(time) => time.format("%a, %d %b %Y %H:%M:%S %z").to_string(),
        Err(_) => "<unknown>".to_string(),
    }
}

/// A describe page under construction: `Key:\tvalue` lines, indented by level, aligned at the end.
#[derive(Default)]
pub struct Page {
    text: String,
}

impl Page {
    /// A line at `level` (two spaces each), tabs separating columns.
    pub fn line(&mut self, level: usize, text: impl AsRef<str>) {
        self.text.push_str(&"  ".repeat(level));
        self.text.push_str(text.as_ref());
        self.text.push('\n');
    }

    /// `Key:\tvalue`.
    pub fn field(&mut self, level: usize, key: &str, value: &str) {
        self.line(level, format!("{key}:\t{value}"));
    }

    /// `Key:\tfirst`, then one `\tnext` line per further item; `<none>` when empty.
    pub fn list(&mut self, level: usize, key: &str, items: &[String]) {
        match items.split_first() {
            None => self.field(level, key, "<none>"),
            Some((first, rest)) => {
                self.field(level, key, first);
                for item in rest {
                    self.line(level, format!("\t{item}"));
                }
            }
        }
    }

    /// Labels as `key=value`, one a line.
    pub fn labels(&mut self, level: usize, key: &str, labels: &BTreeMap<String, String>) {
        let items: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        self.list(level, key, &items);
    }

    /// The aligned text.
    pub fn finish(self) -> String {
        TabWriter::describe().format(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn several_labels_line_up_under_the_first() {
        let mut page = Page::default();
        page.field(0, "Name", "web");
        page.labels(0, "Labels", &BTreeMap::from([("app".into(), "web".into()), ("tier".into(), "front".into())]));
        assert_eq!(page.finish(), "Name:    web\nLabels:  app=web\n         tier=front\n");
    }

    #[test]
    fn a_repeated_event_shows_its_count_and_span() {
        let now = DateTime::parse_from_rfc3339("2024-01-01T00:10:00Z").unwrap().with_timezone(&Utc);
        let event =
            json!({"count": 4, "firstTimestamp": "2024-01-01T00:00:00Z", "lastTimestamp": "2024-01-01T00:09:30Z"});
        assert_eq!(event_age(&event, now), "30s (x4 over 10m)");
        let once = json!({"count": 1, "firstTimestamp": "2024-01-01T00:09:55Z"});
        assert_eq!(event_age(&once, now), "5s");
    }

    #[test]
    fn the_event_source_is_the_reporting_component() {
        assert_eq!(event_source(&json!({"source": {"component": "kubelet", "host": "node-1"}})), "kubelet");
        assert_eq!(event_source(&json!({"reportingController": "deployment-controller"})), "deployment-controller");
    }

    #[test]
    fn timestamps_read_like_kubectl() {
        assert_eq!(timestamp("2024-03-04T05:06:07Z"), "Mon, 04 Mar 2024 05:06:07 +0000");
    }
}
