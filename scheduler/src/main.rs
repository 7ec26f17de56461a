//! `kubelab-scheduler`: the scheduler as a process of its own, as on the course VMs. `kubelab up` runs the same
//! code in-process.

use anyhow::Context;
use clap::Parser;
use std::time::Duration;

/// The kubelab scheduler: watches pods without a node and binds each to the node that suits it best.
///
/// It finds the apiserver like kubectl does: --server, else --kubeconfig, else $KUBECONFIG, else ~/.kube/config.
#[derive(Parser, Debug)]
#[command(version, about, long_about)]
struct Args {
    #[command(flatten)]
    apiserver: kubelab_api::component::ApiserverFlags,
    /// Schedule only pods whose spec.schedulerName is this.
    #[arg(long, default_value = "default-scheduler")]
    scheduler_name: String,
    /// Seconds to wait before retrying a pod after its first failed attempt (doubles with each failure).
    #[arg(long, default_value_t = 1.0)]
    pod_initial_backoff_seconds: f64,
    /// The longest wait between two attempts for the same pod, in seconds.
    #[arg(long, default_value_t = 10.0)]
    pod_max_backoff_seconds: f64,
    /// How many bindings may be sent to the apiserver at once.
    #[arg(long, default_value_t = 16)]
    bindings_in_flight: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    kubelab_api::component::init_tracing();
    let args = Args::parse();
    let client = args.apiserver.connect()?;
    let seconds = |value: f64, flag: &str| {
        Duration::try_from_secs_f64(value).with_context(|| format!("--{flag} must be a positive number of seconds"))
    };
    let mut config = kubelab_scheduler::Config::new();
    config.scheduler_name = args.scheduler_name;
    config.initial_backoff = seconds(args.pod_initial_backoff_seconds, "pod-initial-backoff-seconds")?;
    config.max_backoff = seconds(args.pod_max_backoff_seconds, "pod-max-backoff-seconds")?;
    config.bindings_in_flight = args.bindings_in_flight;
    println!("kubelab-scheduler: scheduling pods through {}", client.base_url());
    tokio::select! {
        result = kubelab_scheduler::run(client, config) => result,
        result = tokio::signal::ctrl_c() => { result?; println!("shutting down"); Ok(()) }
    }
}
