//! # kubelab: the command line
//!
//! `kubelab` is two things. `kubelab up` starts a whole cluster in this process (apiserver, scheduler,
//! controller-manager and kubelets: see [`kubelab::cluster`]) and writes a kubeconfig for it. Every other command
//! is a small `kubectl`: it reads the kubeconfig, finds the resource the user names in the shared table
//! (`kubelab_api::resources`) and talks to the apiserver through the shared client (`kubelab_api::client`),
//! sending what kubectl would send. Put a `kubelab` command next to its
//! `kubectl -v=8` twin and the requests are the same.
//!
//! One file per command, each with a struct named after it (`Apply`, `Get`...) that derives clap's `Args` (its
//! flags, whose doc comments are the `--help` text), and an `async fn run`:
//!
//! - [`apply`]: server-side apply of manifests, `created`/`configured`/`unchanged`;
//! - [`get`]: the server-printed table, `-o yaml|json|name|wide`, `-w` to follow changes;
//! - [`describe`]: a readable page about one object, with its events;
//! - [`delete`]: delete and wait until the object is really gone;
//! - [`create`]: `create namespace`;
//! - [`scale`]: set a Deployment's or ReplicaSet's replicas through its `scale` subresource;
//! - [`rollout`]: `status` (watch a rollout), `history` (revisions), `undo` (go back to one);
//! - [`up`]: run the cluster.
//!
//! Shared helpers: [`context`] (kubeconfig → client and namespace), [`target`] (what `deploy/web` means),
//! [`manifest`] (reading YAML/JSON files), [`table`] and [`tabwriter`] (kubectl's column layout), [`print`]
//! (errors, ages and names the way kubectl prints them).
//!
//! What we leave out: most of kubectl's 40 commands and 200 flags, client-side apply and its
//! `last-applied-configuration` annotation, `-R`, kustomize, TLS and authentication.

mod apply;
mod context;
mod create;
mod delete;
mod describe;
mod get;
mod manifest;
mod print;
mod rollout;
mod scale;
mod table;
mod tabwriter;
mod target;
mod up;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// kubelab: a small Kubernetes to learn from. `kubelab up` starts it; the other commands work like kubectl's.
#[derive(Parser, Debug)]
#[command(name = "kubelab", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,

    /// Path to the kubeconfig file to use. Without it: the first file of $KUBECONFIG, else ~/.kube/config,
    /// exactly as kubectl.
    #[arg(long, global = true, value_name = "PATH")]
    kubeconfig: Option<PathBuf>,

    /// The namespace to work in. Without it: the current context's namespace, else `default`.
    #[arg(short = 'n', long, global = true, value_name = "NAMESPACE")]
    namespace: Option<String>,

    /// Log more: -v for info, -vv for debug, -vvv for trace. RUST_LOG, if set, takes precedence.
    #[arg(short = 'v', long = "verbose", global = true, action = clap::ArgAction::Count)]
    verbose: u8,
}

// ANCHOR: command
#[derive(Subcommand, Debug)]
enum Command {
    Apply(apply::Apply),
    Get(get::Get),
    Describe(describe::Describe),
    Delete(delete::Delete),
    Create(create::Create),
    Scale(scale::Scale),
    Rollout(rollout::Rollout),
    Up(up::Up),
}
// ANCHOR_END: command

// ANCHOR: main
/// Returned by a command that already printed its errors: like kubectl, it went on with the other objects,
/// and only the exit code (1) is left to report.
#[derive(Debug)]
pub struct AlreadyReported;

impl std::fmt::Display for AlreadyReported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("some operations failed")
    }
}

impl std::error::Error for AlreadyReported {}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli);
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if !err.is::<AlreadyReported>() {
                eprintln!("{}", print::error_message(&err));
            }
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    // `up` starts a cluster, so it must not need a kubeconfig; every other command talks to one.
    let ctx = || context::Context::load(cli.kubeconfig.as_deref(), cli.namespace.clone());
    match cli.command {
        Command::Up(cmd) => cmd.run().await,
        Command::Apply(cmd) => cmd.run(&ctx()?).await,
        Command::Get(cmd) => cmd.run(&ctx()?).await,
        Command::Describe(cmd) => cmd.run(&ctx()?).await,
        Command::Delete(cmd) => cmd.run(&ctx()?).await,
        Command::Create(cmd) => cmd.run(&ctx()?).await,
        Command::Scale(cmd) => cmd.run(&ctx()?).await,
        Command::Rollout(cmd) => cmd.run(&ctx()?).await,
    }
}
// ANCHOR_END: main

/// Logs go to stderr, so that they never mix with the output a user may pipe (`kubelab get -o json | jq`).
/// `up` logs at info by default, to show what the apiserver does; the other commands only warn.
fn init_logging(cli: &Cli) {
    let base = if matches!(cli.command, Command::Up(_)) { 1 } else { 0 };
    let level = match base + cli.verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}
