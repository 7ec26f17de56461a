//! Scheduler throughput through the apiserver: pods bound per second.
//!
//! For each node count, the benchmark starts an apiserver in this process (embedded store in a temporary
//! directory), creates that many fake Nodes (Ready, with capacity, no kubelet behind them — as kwok does),
//! starts the scheduler, warms it up with one pod, then creates the pods and measures the time from the first
//! pod created to the last pod seen bound by a watch. Everything — the load generator, the apiserver, its store
//! and the scheduler — shares this machine's cores, as it would in `kubelab up`.
//!
//! To tell the scheduler's own work from the I/O around it, it also times the same scheduling cycles (read the
//! pod, filter and score every node, assume the pod on the chosen one) in memory, with no apiserver at all.
//!
//! Kubernetes' own figure for comparison: kube-scheduler's CI (`scheduler_perf`, SchedulingBasic) expects at least
//! 680 pods/s with 5000 nodes, with the scheduler in-process and an apiserver tuned for it.
//!
//! It prints a markdown section and rewrites its own section of `BENCHMARKS.md` (see [`kubelab_tests::bench`]):
//!
//! ```text
//! cargo run --release -p kubelab-tests --bin bench_scheduler [-- --nodes 100,1000 --pods 3000]
//! ```
//!
//! Add `-- --help` for every setting.

use anyhow::{Context, bail};
use clap::Parser;
use futures::{StreamExt, TryStreamExt};
use kubelab_api::client::{Client, ListParams, PatchType};
use kubelab_api::informer::{Change, watch_changes};
use kubelab_api::resources::{self, Resource};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::{Duration, Instant};

use kubelab_tests::bench;

/// The section of `BENCHMARKS.md` this benchmark owns.
const SECTION: &str = "bench_scheduler";

/// The command that reproduces the figures.
const RERUN: &str = "cargo run --release -p kubelab-tests --bin bench_scheduler";

/// Measures how many pods per second the scheduler binds through the apiserver.
#[derive(Parser, Debug)]
struct Args {
    /// Node counts to measure, one run each.
    #[arg(long, value_delimiter = ',', default_value = "100,1000")]
    nodes: Vec<usize>,
    /// Pods to schedule in each run.
    #[arg(long, default_value_t = 3000)]
    pods: usize,
    /// Pods (and nodes) created at once by the load generator.
    #[arg(long, default_value_t = 32)]
    create_concurrency: usize,
    /// The scheduler's bindings in flight.
    #[arg(long, default_value_t = kubelab_scheduler::Config::new().bindings_in_flight)]
    bindings_in_flight: usize,
}

/// One run's figures.
struct Run {
    nodes: usize,
    pods: usize,
    /// First pod created → last pod seen bound.
    total: Duration,
    /// First pod created → last pod created.
    creating: Duration,
    /// The same number of scheduling cycles (read the pod, filter, score, assume) with no I/O at all.
    deciding: Duration,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // Before we add load of our own: the load average then says how busy the machine was with other work.
    let machine = bench::machine();
    let mut runs = Vec::new();
    for &nodes in &args.nodes {
        eprintln!("bench_scheduler: {nodes} nodes, {} pods...", args.pods);
        let run = run(nodes, &args).await?;
        eprintln!("  {:.2} s, {:.0} pods/s", run.total.as_secs_f64(), run.pods as f64 / run.total.as_secs_f64());
        runs.push(run);
    }
    let section = markdown(&runs, &args, &machine);
    println!("{section}");
    let path = bench::write_section(SECTION, &section)?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

async fn run(node_count: usize, args: &Args) -> anyhow::Result<Run> {
    let dir = tempfile::tempdir()?;
    let server =
        kubelab_apiserver::start(kubelab_apiserver::Config::new("127.0.0.1:0".parse()?, dir.path().to_path_buf()))
            .await?;
    let client = Client::new(&server.url())?;
    client.create(res("Namespace")?, None, &json!({"metadata": {"name": "bench"}})).await?;

    let names: Vec<String> = (0..node_count).map(|i| format!("node-{i:04}")).collect();
    futures::stream::iter(names.iter().map(|name| create_node(&client, name)))
        .buffer_unordered(args.create_concurrency)
        .try_collect::<Vec<()>>()
        .await?;

    let mut config = kubelab_scheduler::Config::new();
    config.bindings_in_flight = args.bindings_in_flight;
    let scheduler = tokio::spawn(kubelab_scheduler::run(client.clone(), config));

    // Warm-up: once one pod is bound, the scheduler has listed every node and is waiting for work.
    let mut bound = BoundPods::watch(&client)?;
    create_pod(&client, "warmup").await?;
    bound.wait_for(1, Duration::from_secs(60)).await?;

    let started = Instant::now();
    futures::stream::iter((0..args.pods).map(|i| {
        let client = client.clone();
        async move { create_pod(&client, &format!("pod-{i:05}")).await }
    }))
    .buffer_unordered(args.create_concurrency)
    .try_collect::<Vec<()>>()
    .await?;
    let creating = started.elapsed();
    bound.wait_for(args.pods + 1, Duration::from_secs(600)).await?;
    let total = started.elapsed();

    scheduler.abort();
    // No graceful shutdown: the informers' watches outlive the aborted scheduler and would keep it waiting.
    drop(server);
    Ok(Run { nodes: node_count, pods: args.pods, total, creating, deciding: decide_only(node_count, args.pods)? })
}

/// Times the scheduling cycles alone: the same nodes and pods, decided and assumed in memory.
fn decide_only(node_count: usize, pods: usize) -> anyhow::Result<Duration> {
    use kubelab_scheduler::{cache::ClusterCache, pod_info::PodInfo, schedule::choose_node};
    let mut cache = ClusterCache::default();
    for i in 0..node_count {
        let node = json!({"metadata": {"name": format!("node-{i:04}")}, "status": {
            "allocatable": {"cpu": "32", "memory": "128Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True"}]}});
        cache.set_node(&serde_json::from_value(node)?);
    }
    let started = Instant::now();
    for i in 0..pods {
        let pod = json!({"metadata": {"name": format!("pod-{i:05}"), "namespace": "bench"}, "spec": {"containers": [
            {"name": "pause", "image": "pause", "resources": {"requests": {"cpu": "100m", "memory": "500Mi"}}}]}});
        let info = PodInfo::read(&serde_json::from_value(pod)?)?;
        let node = choose_node(&info, cache.nodes()).map_err(|why| anyhow::anyhow!("{why}"))?;
        cache.assume(&format!("bench/pod-{i:05}"), info.usage, &node);
    }
    Ok(started.elapsed())
}

fn res(kind: &str) -> anyhow::Result<&'static Resource> {
    resources::by_kind("v1", kind).with_context(|| format!("no v1 {kind}"))
}

/// A Ready node with room for everything the benchmark creates.
async fn create_node(client: &Client, name: &str) -> anyhow::Result<()> {
    let nodes = res("Node")?;
    let node = json!({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "type": "fake"}}});
    client.create(nodes, None, &node).await?;
    let status = json!({"status": {
        "capacity": {"cpu": "32", "memory": "128Gi", "pods": "110"},
        "allocatable": {"cpu": "32", "memory": "128Gi", "pods": "110"},
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
    }});
    client.patch_status(nodes, None, name, PatchType::Merge, &status).await?;
    Ok(())
}

/// A pod as kube-scheduler's SchedulingBasic benchmark makes them: one container with requests.
async fn create_pod(client: &Client, name: &str) -> anyhow::Result<()> {
    let pod = json!({"metadata": {"name": name}, "spec": {"containers": [{"name": "pause", "image": "pause",
        "resources": {"requests": {"cpu": "100m", "memory": "500Mi"}}}]}});
    client.create(res("Pod")?, Some("bench"), &pod).await?;
    Ok(())
}

/// The bench pods seen bound so far, from a watch.
struct BoundPods {
    /// Names of pods as they are seen with a `spec.nodeName` (a pod may appear more than once).
    stream: std::pin::Pin<Box<dyn futures::Stream<Item = String> + Send>>,
    /// Distinct names seen.
    seen: HashSet<String>,
}

impl BoundPods {
    fn watch(client: &Client) -> anyhow::Result<BoundPods> {
        let changes = watch_changes(client.clone(), res("Pod")?, Some("bench".into()), ListParams::default());
        let stream = changes.flat_map(|change| {
            let objects = match change {
                Ok(Change::Restarted(items)) => items,
                Ok(Change::Applied(object)) => vec![object],
                _ => Vec::new(),
            };
            let bound: Vec<String> = objects
                .into_iter()
                .filter(|pod| pod.pointer("/spec/nodeName").and_then(Value::as_str).is_some_and(|n| !n.is_empty()))
                .filter_map(|pod| pod.pointer("/metadata/name").and_then(Value::as_str).map(String::from))
                .collect();
            futures::stream::iter(bound)
        });
        Ok(BoundPods { stream: Box::pin(stream), seen: HashSet::new() })
    }

    /// Waits until `count` distinct pods have been seen bound.
    async fn wait_for(&mut self, count: usize, timeout: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.seen.len() < count {
            match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Ok(Some(name)) => {
                    self.seen.insert(name);
                }
                Ok(None) => bail!("the watch ended"),
                Err(_) => bail!("only {} of {count} pods bound after {timeout:?}", self.seen.len()),
            }
        }
        Ok(())
    }
}

/// The section of `BENCHMARKS.md`: the table, where the time goes, the machine and the command to rerun it.
fn markdown(runs: &[Run], args: &Args, machine: &str) -> String {
    let mut out = String::new();
    out += "## Scheduler throughput (`bench_scheduler`)\n\n";
    out += &format!(
        "Measured on {} by `{RERUN}` ({} pods per run, created {} at a time; {} bindings in flight). Time runs from \
         the first pod created to the last pod seen bound by a watch; \"pod creation\" is the load generator's rate \
         while the scheduler binds, \"decisions alone\" the same scheduling cycles in memory, without the apiserver.\n\n",
        bench::today(),
        args.pods,
        args.create_concurrency,
        args.bindings_in_flight
    );
    out += "| nodes | pods | seconds | pods/s | pod creation (pods/s) | decisions alone (pods/s) |\n";
    out += "|---:|---:|---:|---:|---:|---:|\n";
    for run in runs {
        let rate = run.pods as f64 / run.total.as_secs_f64();
        let create_rate = run.pods as f64 / run.creating.as_secs_f64();
        let decide_rate = run.pods as f64 / run.deciding.as_secs_f64();
        let seconds = run.total.as_secs_f64();
        out += &format!(
            "| {} | {} | {seconds:.2} | {rate:.0} | {create_rate:.0} | {decide_rate:.0} |\n",
            run.nodes, run.pods
        );
    }
    out += &format!("\n**Where the time goes.** {}\n", where_the_time_goes(runs));
    out += &format!(
        "\n**Machine:** {machine}. The apiserver (embedded store), the scheduler and the load generator run in one \
         process and share these cores.\n\n**Rerun:** `{RERUN}` (add `-- --nodes 100,1000 --pods N` to change the \
         sizes, `-- --help` for the rest).\n"
    );
    out
}

/// A paragraph computed from the runs: how much of each run the scheduling decisions themselves account for, and
/// whether the scheduler kept up with the pods being created.
fn where_the_time_goes(runs: &[Run]) -> String {
    let mut sentences = Vec::new();
    for run in runs {
        let (total, deciding, creating) =
            (run.total.as_secs_f64(), run.deciding.as_secs_f64(), run.creating.as_secs_f64());
        sentences.push(format!(
            "With {} nodes, the {} decisions take {deciding:.2} s in memory: {:.0}% of the {total:.2} s the run took; \
             the last pod was created after {creating:.2} s and the last binding seen {:.2} s later.",
            run.nodes,
            run.pods,
            deciding / total * 100.0,
            total - creating
        ));
    }
    let decisions = runs.iter().map(|r| r.deciding.as_secs_f64()).sum::<f64>();
    let total = runs.iter().map(|r| r.total.as_secs_f64()).sum::<f64>();
    if total > 0.0 {
        sentences.push(if decisions < total / 2.0 {
            format!(
                "Over all runs, deciding is {:.0}% of the time: the rest — creating pods, watching them, writing \
                 bindings through the apiserver and its store — bounds the throughput, not the scheduling algorithm.",
                decisions / total * 100.0
            )
        } else {
            format!(
                "Over all runs, deciding is {:.0}% of the time: filtering and scoring every node, not the \
                 apiserver, bounds the throughput.",
                decisions / total * 100.0
            )
        });
    }
    sentences.join(" ")
}
