//! `kubelab apply -f FILE`: make the cluster hold what the manifests say.
//!
//! Each object is sent as a *server-side apply*: `PATCH <object URL>?fieldManager=kubelab&fieldValidation=Strict`
//! with `Content-Type: application/apply-patch+yaml`. The server creates the object if it does not exist, and
//! otherwise merges in the fields this manager owns — the same request `kubectl apply --server-side` sends.
//!
//! To print `created`, `configured` or `unchanged` honestly we read the object first: absent means created;
//! present with the same resourceVersion afterwards means the apply changed nothing.
//!
//! What we leave out: client-side apply (kubectl's default, a three-way strategic merge with the
//! `last-applied-configuration` annotation), `--prune`, `--force-conflicts`, `-R`.

use crate::context::Context;
use crate::manifest::{self, Document};
use crate::{AlreadyReported, print};
use anyhow::bail;
use clap::Args;
use kubelab_api::client::{PatchParams, PatchType};
use kubelab_api::{object, resources};
use std::path::PathBuf;

/// Create or update objects from manifests (server-side apply).
///
/// Each object in the files is created if it does not exist and updated if it does; the output says which,
/// like kubectl: `deployment.apps/web created`, `configured` or `unchanged`. An object that fails is reported
/// and the others are still applied; the exit code is then 1.
#[derive(Args, Debug)]
#[command(after_help = "Examples:
  kubelab apply -f web.yaml            # one file, any number of `---` documents
  kubelab apply -f manifests/          # every .yaml, .yml and .json file of a directory, in name order
  cat web.json | kubelab apply -f -    # standard input")]
pub struct Apply {
    /// A manifest file, a directory of manifests, or `-` for standard input. Repeat to apply several.
    #[arg(short = 'f', long = "filename", value_name = "FILE|DIR|-", required = true)]
    files: Vec<PathBuf>,
}

/// What apply did to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Created,
    Configured,
    Unchanged,
}

impl Apply {
    pub async fn run(self, ctx: &Context) -> anyhow::Result<()> {
        let documents = manifest::read_all(&self.files)?;
        let mut failed = false;
        for document in &documents {
            match apply_one(ctx, document).await {
                Ok((name, outcome)) => println!("{name} {}", format!("{outcome:?}").to_lowercase()),
                Err(err) => {
                    eprintln!("{}", print::error_message(&err));
                    failed = true;
                }
            }
        }
        if failed { Err(AlreadyReported.into()) } else { Ok(()) }
    }
}

// ANCHOR: apply_one
/// Applies one object; returns `deployment.apps/web` and what happened.
async fn apply_one(ctx: &Context, document: &Document) -> anyhow::Result<(String, Outcome)> {
    let mut body = document.object.clone();
    let api_version = body["apiVersion"].as_str().unwrap_or_default().to_string();
    let kind = body["kind"].as_str().unwrap_or_default().to_string();
    let source = &document.source;
    if api_version.is_empty() || kind.is_empty() {
        bail!("{source}: apiVersion and kind are required");
    }
    let Some(resource) = resources::by_kind(&api_version, &kind) else {
        bail!("{source}: no matches for kind {kind:?} in version {api_version:?}: kubelab does not serve it");
    };
    let name = object::name(&body).to_string();
    if name.is_empty() {
        bail!("{source}: {kind} has no metadata.name");
    }
    let namespace = if resource.namespaced {
        let own = object::namespace(&body).to_string();
        if ctx.namespace_flag && !own.is_empty() && own != ctx.namespace {
            bail!(
                "{source}: the namespace from the provided object {own:?} does not match the namespace {:?}. \
                 You must pass '--namespace={own}' to perform this operation.",
                ctx.namespace
            );
        }
        let namespace = if own.is_empty() { ctx.namespace.clone() } else { own };
        object::set_meta(&mut body, "namespace", namespace.clone());
        Some(namespace)
    } else {
        object::metadata_mut(&mut body).remove("namespace");
        None
    };

    let client = &ctx.client;
    let before = match client.get(resource, namespace.as_deref(), &name).await {
        Ok(current) => Some(object::resource_version(&current).to_string()),
        Err(err) if print::is_not_found(&err) => None,
        Err(err) => return Err(err.into()),
    };
    let params = PatchParams::apply("kubelab");
    let after = client.patch(resource, namespace.as_deref(), &name, PatchType::Apply, &body, &params).await?;
    let outcome = match before {
        None => Outcome::Created,
        Some(rv) if rv == object::resource_version(&after) => Outcome::Unchanged,
        Some(_) => Outcome::Configured,
    };
    Ok((format!("{}/{name}", print::kind_name(resource)), outcome))
}
// ANCHOR_END: apply_one
