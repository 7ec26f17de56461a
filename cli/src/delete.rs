//! `kubelab delete KIND NAME...` or `delete -f FILE`: delete objects, and wait until they are really gone.
//!
//! A `DELETE` request does not always remove an object at once. If it has *finalizers* (strings in
//! `metadata.finalizers`), the server only sets `deletionTimestamp`, and the object stays until every finalizer
//! is removed by the controller that put it there. With `--cascade=foreground`, the garbage collector adds the
//! `foregroundDeletion` finalizer and removes it once the dependents (a Deployment's ReplicaSets and pods) are
//! gone. A pod bound to a node is deleted *gracefully*: it stays, marked, until that node's kubelet has stopped
//! its containers (within `terminationGracePeriodSeconds`) and confirms. So, like kubectl, we wait — by *watching* the object until the server reports it `DELETED`, never by
//! polling in a sleep loop.

use crate::context::Context;
use crate::manifest;
use crate::target;
use crate::{AlreadyReported, print};
use anyhow::bail;
use clap::{ArgAction, Args, ValueEnum};
use futures::StreamExt;
use kubelab_api::client::{ListParams, PropagationPolicy, WatchEventType};
use kubelab_api::object;
use kubelab_api::resources::{self, Resource};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;
use tokio::time::Instant;

/// Delete objects by kind and name, by label, or as listed in manifests.
///
/// Prints `deployment.apps "web" deleted` for each object, then (unless --wait=false) waits until the objects
/// are gone: an object with finalizers, or deleted with --cascade=foreground, stays until its finalizers are
/// done.
#[derive(Args, Debug)]
#[command(after_help = "Examples:
  kubelab delete deploy web
  kubelab delete pod/web-1 pod/web-2
  kubelab delete pods -l app=web
  kubelab delete -f web.yaml
  kubelab delete deploy web --cascade=foreground   # wait until its pods are gone too")]
pub struct Delete {
    /// What to delete: KIND NAME..., or KIND/NAME... (`deploy web`, `pod/web-1`).
    #[arg(value_name = "KIND [NAME...]", required_unless_present = "files")]
    args: Vec<String>,

    /// Delete the objects described in a manifest file, a directory of manifests, or `-` (standard input).
    #[arg(short = 'f', long = "filename", value_name = "FILE|DIR|-", conflicts_with = "args")]
    files: Vec<PathBuf>,

    /// Delete every object of KIND whose labels match, e.g. `app=web`.
    #[arg(short = 'l', long, value_name = "SELECTOR")]
    selector: Option<String>,

    /// What happens to the objects this one owns (a Deployment's ReplicaSets and pods): `background` deletes
    /// them after it, `foreground` before it (the object lingers until they are gone), `orphan` keeps them.
    #[arg(long, value_enum, default_value = "background", value_name = "POLICY")]
    cascade: Cascade,

    /// Wait until the objects are gone before returning (`--wait=false` to return at once).
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_name = "BOOL")]
    wait: bool,

    /// With --wait, give up after this long (`30s`, `5m`, `1h`; a bare number is seconds). `0` waits for ever.
    #[arg(long, default_value = "0", value_parser = parse_duration, value_name = "DURATION")]
    timeout: Duration,
}

/// `30s`, `5m`, `1h`, or a number of seconds (also `--timeout` of `rollout status`).
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let number: u64 = number.parse().map_err(|_| format!("{text:?} is not a duration such as 30s, 5m or 1h"))?;
    match unit {
        "s" => Ok(Duration::from_secs(number)),
        "m" => Ok(Duration::from_secs(number * 60)),
        "h" => Ok(Duration::from_secs(number * 3600)),
        _ => Err(format!("{text:?} is not a duration such as 30s, 5m or 1h")),
    }
}

/// The `--cascade` values, as kubectl spells them.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum Cascade {
    Background,
    Foreground,
    Orphan,
}

/// One object to delete.
struct Victim {
    resource: &'static Resource,
    namespace: Option<String>,
    name: String,
}

impl Delete {
    pub async fn run(self, ctx: &Context) -> anyhow::Result<()> {
        let policy = match self.cascade {
            Cascade::Background => PropagationPolicy::Background,
            Cascade::Foreground => PropagationPolicy::Foreground,
            Cascade::Orphan => PropagationPolicy::Orphan,
        };
        let victims = self.victims(ctx).await?;
        let mut failed = false;
        let mut deleted = Vec::new();
        for victim in victims {
            let label = format!("{} {:?}", print::kind_name(victim.resource), victim.name);
            match ctx.client.delete(victim.resource, victim.namespace.as_deref(), &victim.name, policy).await {
                Ok(_) => {
                    println!("{label} deleted");
                    deleted.push((victim, label));
                }
                Err(err) => {
                    eprintln!("{}", print::error_message(&err.into()));
                    failed = true;
                }
            }
        }
        if self.wait {
            for (victim, label) in &deleted {
                let waited = if self.timeout.is_zero() {
                    wait_until_gone(ctx, victim, label).await
                } else {
                    tokio::time::timeout(self.timeout, wait_until_gone(ctx, victim, label))
                        .await
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("timed out waiting for {label} to be deleted")))
                };
                if let Err(err) = waited {
                    eprintln!("{}", print::error_message(&err));
                    failed = true;
                }
            }
        }
        if failed { Err(AlreadyReported.into()) } else { Ok(()) }
    }

    /// The objects named on the command line, selected by label, or read from manifests.
    async fn victims(&self, ctx: &Context) -> anyhow::Result<Vec<Victim>> {
        let mut victims = Vec::new();
        if !self.files.is_empty() {
            for document in manifest::read_all(&self.files)? {
                let (api_version, kind) = (&document.object["apiVersion"], &document.object["kind"]);
                let Some(resource) =
                    resources::by_kind(api_version.as_str().unwrap_or(""), kind.as_str().unwrap_or(""))
                else {
                    bail!("{}: no matches for kind {kind} in version {api_version}", document.source);
                };
                let namespace = match object::namespace(&document.object) {
                    "" => ctx.namespace.clone(),
                    own => own.to_string(),
                };
                let name = object::name(&document.object).to_string();
                victims.push(Victim { resource, namespace: resource.namespaced.then_some(namespace), name });
            }
            return Ok(victims);
        }
        for target in target::parse(&self.args)? {
            let namespace = ctx.namespace_for(target.resource).map(String::from);
            let names = match (&self.selector, target.names.is_empty()) {
                (Some(_), false) => bail!("name cannot be provided when a selector is specified"),
                (None, true) => bail!("resource(s) were provided, but no name was specified"),
                (None, false) => target.names.clone(),
                (Some(selector), true) => {
                    let params = ListParams::default().labels(selector.clone());
                    let list = ctx.client.list(target.resource, namespace.as_deref(), &params).await?;
                    list.items.iter().map(|o| object::name(o).to_string()).collect()
                }
            };
            for name in names {
                victims.push(Victim { resource: target.resource, namespace: namespace.clone(), name });
            }
        }
        if victims.is_empty() {
            eprintln!("No resources found");
        }
        Ok(victims)
    }
}

// ANCHOR: wait_until_gone
/// Waits until the object is gone (or replaced by a new one with the same name: another uid).
///
/// The loop: read the object; if it is absent, done; else watch it from the resourceVersion just read, until a
/// `DELETED` event. If the watch ends without one (server timeout, or an `ERROR` such as `410 Expired`), read
/// again and watch again. After two seconds, say what we are waiting for and what holds the object, then again
/// every 30 seconds, and whenever that changes.
async fn wait_until_gone(ctx: &Context, victim: &Victim, label: &str) -> anyhow::Result<()> {
    let (resource, namespace, name) = (victim.resource, victim.namespace.as_deref(), victim.name.as_str());
    let started = Instant::now();
    let mut next_notice = started + Duration::from_secs(2);
    let mut uid = None;
    loop {
        let current = match ctx.client.get(resource, namespace, name).await {
            Ok(current) => current,
            Err(err) if print::is_not_found(&err) => return Ok(()),
            Err(err) => return Err(err.into()),
        };
        let current_uid = object::meta_str(&current, "uid").to_string();
        // Another uid: ours is gone and a new object took its name.
        if *uid.get_or_insert_with(|| current_uid.clone()) != current_uid {
            return Ok(());
        }
        let mut holder = holding(&current);
        let params = ListParams::default().fields(format!("metadata.name={name}"));
        let mut events = ctx.client.watch(resource, namespace, &params, object::resource_version(&current)).await?;
        loop {
            tokio::select! {
                event = events.next() => match event {
                    None => break,
                    Some(Err(err)) => return Err(err.into()),
                    Some(Ok(event)) if object::name(&event.object) != name => {}
                    Some(Ok(event)) => match event.type_ {
                        WatchEventType::Deleted => return Ok(()),
                        WatchEventType::Error => break,
                        WatchEventType::Modified => {
                            let now = holding(&event.object);
                            if now != holder && Instant::now() >= started + Duration::from_secs(2) {
                                eprintln!("{label} is now held by {now}");
                            }
                            holder = now;
                        }
                        _ => {}
                    },
                },
                _ = tokio::time::sleep_until(next_notice) => {
                    let waited = started.elapsed().as_secs();
                    eprintln!("waiting for {label} to be deleted ({waited}s; held by {holder})");
                    next_notice += Duration::from_secs(30);
                }
            }
        }
    }
}
// ANCHOR_END: wait_until_gone

/// What keeps a deleted object in place: its finalizers, or a graceful deletion the kubelet must confirm.
fn holding(object: &Value) -> String {
    let finalizers = object::finalizers(object);
    if !finalizers.is_empty() {
        return format!("finalizers {}", finalizers.join(", "));
    }
    match object.pointer("/metadata/deletionGracePeriodSeconds").and_then(Value::as_i64) {
        Some(grace) if grace > 0 => format!("graceful deletion: the kubelet has {grace}s to stop its containers"),
        _ => "nothing visible yet".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_read_seconds_minutes_and_hours() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert!(parse_duration("soon").is_err());
    }
}
