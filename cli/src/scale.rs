//! `kubelab scale deploy/web --replicas 5`: change how many replicas a Deployment or ReplicaSet wants.
//!
//! Like kubectl, we do not touch the object itself but its `scale` *subresource*
//! (`.../deployments/web/scale`), a small `autoscaling/v1` `Scale` object that exists for exactly this job: the
//! HorizontalPodAutoscaler and `kubectl scale` can change the replica count of any scalable kind without knowing
//! its schema. We send the same merge patch kubectl sends, `{"spec":{"replicas":5}}`.
//!
//! What we leave out: `--current-replicas` and `--resource-version` preconditions, `-l`, `-f`, and StatefulSets
//! (kubelab does not serve them).

use crate::context::Context;
use crate::{print, target};
use anyhow::bail;
use clap::Args;
use kubelab_api::client::PatchType;
use serde_json::json;

/// Set a new size for a Deployment or ReplicaSet.
///
/// Patches the object's `scale` subresource; the controllers then create or delete pods until the new size is
/// reached. Prints `deployment.apps/web scaled`.
#[derive(Args, Debug)]
#[command(after_help = "Examples:
  kubelab scale deploy/web --replicas 3
  kubelab scale deploy web --replicas 0       # stop every pod, keep the Deployment
  kubelab scale rs/web-5d4f8c --replicas 2 -n dev")]
pub struct Scale {
    /// What to scale: KIND/NAME... or KIND NAME... (`deploy/web`, `deploy web`).
    #[arg(value_name = "KIND/NAME | KIND NAME", required = true)]
    args: Vec<String>,

    /// The number of replicas wanted.
    #[arg(long, value_name = "N", required = true)]
    replicas: u32,
}

// ANCHOR: scale
impl Scale {
    pub async fn run(self, ctx: &Context) -> anyhow::Result<()> {
        let targets = target::parse(&self.args)?;
        let patch = json!({"spec": {"replicas": self.replicas}});
        for target in &targets {
            if !target.resource.subresources.iter().any(|s| s.name == "scale") {
                bail!("cannot scale {}: it has no scale subresource", target.resource.plural);
            }
            if target.names.is_empty() {
                bail!("resource(s) were provided, but no name was specified");
            }
            for name in &target.names {
                let namespace = ctx.namespace_for(target.resource);
                ctx.client
                    .patch_subresource(target.resource, namespace, name, "scale", PatchType::Merge, &patch)
                    .await?;
                println!("{}/{name} scaled", print::kind_name(target.resource));
            }
        }
        Ok(())
    }
}
// ANCHOR_END: scale
