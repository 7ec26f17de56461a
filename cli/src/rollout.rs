//! `kubelab rollout status|history|undo deploy/web`: follow and manage a Deployment's rollouts.
//!
//! A *rollout* is the Deployment controller replacing the pods of one template by pods of another, ReplicaSet by
//! ReplicaSet. These commands only read what the controller reports and write what a user wants:
//!
//! - `status` watches the Deployment (list, then watch: no polling) and prints kubectl's progress lines, decided
//!   by the pure [`status::progress`];
//! - `history` lists the Deployment's ReplicaSets, which *are* its history ([`history::revisions`]);
//! - `undo` copies an old ReplicaSet's template back into the Deployment with a JSON patch
//!   ([`history::undo`]); the controller then rolls out to it like to any new template.
//!
//! What we leave out: `pause`, `resume` and `restart`, DaemonSets and StatefulSets (kubelab does not serve
//! them), `history --revision N` (which prints one revision's template) and `--dry-run`.

mod history;
mod status;

use crate::context::Context;
use crate::delete::parse_duration;
use crate::{print, target};
use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use futures::StreamExt;
use kubelab_api::client::{ListParams, PatchParams, PatchType};
use kubelab_api::informer::{self, Change};
use kubelab_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector as WireSelector;
use kubelab_api::resources::Resource;
use kubelab_api::selectors::LabelSelector;
use serde_json::Value;
use status::Progress;
use std::time::Duration;

/// Manage the rollout of a Deployment: follow it, list its revisions, go back to one.
#[derive(Args, Debug)]
pub struct Rollout {
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand, Debug)]
enum What {
    /// Watch a rollout until it is done, printing its progress; fails if the Deployment exceeds its progress
    /// deadline.
    #[command(after_help = "Examples:
  kubelab rollout status deploy/web
  kubelab rollout status deploy web --timeout 2m")]
    Status {
        /// The Deployment: `deploy/NAME` or `deploy NAME`.
        #[arg(value_name = "deploy/NAME", required = true, num_args = 1..=2)]
        args: Vec<String>,
        /// Give up after this long (`30s`, `5m`, `1h`); 0, the default, waits forever.
        #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = parse_duration)]
        timeout: Duration,
    },
    /// List a Deployment's revisions (its ReplicaSets), oldest first, with their change cause.
    #[command(after_help = "Examples:
  kubelab rollout history deploy/web
  kubectl annotate deploy/web kubernetes.io/change-cause='image 2'   # what CHANGE-CAUSE shows")]
    History {
        /// The Deployment: `deploy/NAME` or `deploy NAME`.
        #[arg(value_name = "deploy/NAME", required = true, num_args = 1..=2)]
        args: Vec<String>,
    },
    /// Roll a Deployment back to its previous revision, or to the one given with --to-revision.
    #[command(after_help = "Examples:
  kubelab rollout undo deploy/web
  kubelab rollout undo deploy/web --to-revision 2")]
    Undo {
        /// The Deployment: `deploy/NAME` or `deploy NAME`.
        #[arg(value_name = "deploy/NAME", required = true, num_args = 1..=2)]
        args: Vec<String>,
        /// The revision to go back to (see `rollout history`); 0, the default, means the previous one.
        #[arg(long, value_name = "N", default_value_t = 0)]
        to_revision: i64,
    },
}

impl Rollout {
    pub async fn run(self, ctx: &Context) -> anyhow::Result<()> {
        match self.what {
            What::Status { args, timeout } => {
                let (resource, name) = deployment_target(&args)?;
                let follow = follow_status(ctx, resource, &name);
                if timeout.is_zero() {
                    follow.await
                } else {
                    // kubectl's sentence for a `--timeout` that runs out.
                    tokio::time::timeout(timeout, follow)
                        .await
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("timed out waiting for the condition")))
                }
            }
            What::History { args } => {
                let (resource, name) = deployment_target(&args)?;
                let (deployment, replica_sets) = deployment_and_replica_sets(ctx, resource, &name).await?;
                let revisions = history::revisions(&deployment, &replica_sets);
                println!("{}/{name}", print::kind_name(resource));
                println!("{}", history::history_table(&revisions));
                Ok(())
            }
            What::Undo { args, to_revision } => {
                if to_revision < 0 {
                    bail!("revision must be a positive integer: {to_revision}");
                }
                let (resource, name) = deployment_target(&args)?;
                let (deployment, replica_sets) = deployment_and_replica_sets(ctx, resource, &name).await?;
                let revisions = history::revisions(&deployment, &replica_sets);
                let kind_name = print::kind_name(resource);
                match history::undo(&deployment, &revisions, to_revision).map_err(anyhow::Error::msg)? {
                    history::Undo::AlreadyThere(revision) => {
                        println!(
                            "{kind_name}/{name} skipped rollback (current template already matches revision {revision})"
                        );
                    }
                    history::Undo::Patch(patch) => {
                        let namespace = Some(ctx.namespace.as_str());
                        let params = PatchParams::default();
                        ctx.client.patch(resource, namespace, &name, PatchType::Json, &patch, &params).await?;
                        println!("{kind_name}/{name} rolled back");
                    }
                }
                Ok(())
            }
        }
    }
}

/// The one Deployment named by `deploy/web` or `deploy web`.
fn deployment_target(args: &[String]) -> anyhow::Result<(&'static Resource, String)> {
    let targets = target::parse(args)?;
    let [target] = targets.as_slice() else { bail!("rollout works on one Deployment at a time") };
    if target.resource.kind != "Deployment" {
        bail!("no rollout support for {}: kubelab rolls out Deployments only", target.resource.plural);
    }
    let [name] = target.names.as_slice() else { bail!("name the Deployment, e.g. `deploy/web`") };
    Ok((target.resource, name.clone()))
}

// ANCHOR: follow_status
/// Follows one Deployment until its rollout is done or failed, printing each new progress line.
///
/// An informer's list+watch stream ([`informer::watch_changes`]) narrowed to this one object by a field
/// selector: the first list gives its current state, then every change arrives as it happens, and the stream
/// itself lists again if the watch expires. kubectl prints a line per event; we print a line only when it
/// differs from the previous one.
async fn follow_status(ctx: &Context, resource: &'static Resource, name: &str) -> anyhow::Result<()> {
    // A plain GET first, so that a missing Deployment is reported with the server's own NotFound, as kubectl does.
    ctx.client.get(resource, Some(&ctx.namespace), name).await?;
    let params = ListParams::default().fields(format!("metadata.name={name}"));
    let changes = informer::watch_changes(ctx.client.clone(), resource, Some(ctx.namespace.clone()), params);
    let mut changes = std::pin::pin!(changes);
    let mut last_line = String::new();
    while let Some(change) = changes.next().await {
        let deployment = match change {
            Ok(Change::Restarted(items)) => match items.into_iter().next() {
                Some(deployment) => deployment,
                None => bail!("deployment {name:?} not found"),
            },
            Ok(Change::Applied(deployment)) => deployment,
            Ok(Change::Deleted(_)) => bail!("deployment {name:?} was deleted"),
            // The stream retries by itself; say what went wrong, and go on waiting.
            Err(err) => {
                tracing::warn!("watching deployment {name:?}: {err}");
                continue;
            }
        };
        match status::progress(&deployment) {
            Progress::Waiting(line) => {
                if line != last_line {
                    println!("{line}");
                    last_line = line;
                }
            }
            Progress::Done(line) => {
                println!("{line}");
                return Ok(());
            }
            Progress::Failed(message) => bail!(message),
        }
    }
    bail!("the watch of deployment {name:?} ended unexpectedly")
}
// ANCHOR_END: follow_status

/// The Deployment, and the ReplicaSets its selector matches (owned by it or not: [`history::revisions`] keeps
/// those it controls).
async fn deployment_and_replica_sets(
    ctx: &Context,
    resource: &'static Resource,
    name: &str,
) -> anyhow::Result<(Value, Vec<Value>)> {
    let namespace = Some(ctx.namespace.as_str());
    let deployment = ctx.client.get(resource, namespace, name).await?;
    let wire: WireSelector = serde_json::from_value(deployment["spec"]["selector"].clone())
        .with_context(|| format!("deployment {name:?} has an unreadable selector"))?;
    let selector = LabelSelector::from_wire(&wire)?;
    let replica_sets = target::resolve("replicasets")?;
    let list = ctx.client.list(replica_sets, namespace, &ListParams::default().labels(selector.to_string())).await?;
    Ok((deployment, list.items))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_read_like_kubectls() {
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert!(parse_duration("5 minutes").is_err());
    }

    #[test]
    fn rollout_needs_exactly_one_deployment() {
        let args = |text: &str| text.split_whitespace().map(String::from).collect::<Vec<_>>();
        assert_eq!(deployment_target(&args("deploy/web")).unwrap().1, "web");
        assert_eq!(deployment_target(&args("deployments web")).unwrap().1, "web");
        assert!(deployment_target(&args("pod/web")).is_err());
        assert!(deployment_target(&args("deploy")).is_err());
    }
}
