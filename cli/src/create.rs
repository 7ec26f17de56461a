//! `kubelab create namespace NAME`: the one imperative `create` we need.
//!
//! kubectl 1.32 sends its `create namespace` body as protobuf; we send the same object as JSON, which every
//! apiserver accepts.

use crate::context::Context;
use clap::{Args, Subcommand};
use serde_json::json;

/// Create an object from the command line.
#[derive(Args, Debug)]
pub struct Create {
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand, Debug)]
enum What {
    /// Create a namespace: a name scope for namespaced objects (pods, deployments, services...).
    #[command(visible_alias = "ns", after_help = "Example:\n  kubelab create namespace dev")]
    Namespace {
        /// The new namespace's name (lower case letters, digits and `-`).
        name: String,
    },
}

impl Create {
    pub async fn run(self, ctx: &Context) -> anyhow::Result<()> {
        match self.what {
            What::Namespace { name } => {
                // The resource table always has namespaces; a failure here would be a bug in that table.
                let resource = crate::target::resolve("namespaces")?;
                let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
                let created = ctx.client.create(resource, None, &namespace).await?;
                let name = kubelab_api::object::name(&created);
                println!("{}/{name} created", crate::print::kind_name(resource));
                Ok(())
            }
        }
    }
}
