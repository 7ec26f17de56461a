//! Pod startup latency: from creating a Pod to seeing it `Running` and `Ready` through a watch, next to
//! `docker run -d` of the same image on the same machine, in the same run.
//!
//! The benchmark starts a whole one-node cluster in this process — apiserver, scheduler, controller-manager and a
//! kubelet running real Docker containers, the very code `kubelab up` runs — through the end-to-end tests'
//! [`spawn_cluster`], with Kubernetes' default timings. Then, `--pods` times, one after the other:
//!
//! 1. it opens a watch on the pod's name, creates a Pod (`kubelab/busybox:1` running `sleep 3600`, no node
//!    chosen: the scheduler binds it), and times until the watch shows it bound, `Running`, and `Ready`;
//! 2. it times `docker run -d` of the same image and command, which returns once Docker has started the
//!    container (the benchmark then checks, untimed, that it is running).
//!
//! The two are interleaved, so that other work on a shared machine weighs on both alike, and everything stays
//! running until the end, so both sides start their n-th container next to n-1 others. One pod and one container
//! are started first as a warm-up and not counted. At the end — or on an error — the cluster's containers and
//! Docker network and the benchmark's own containers are removed.
//!
//! Kubernetes' own objective (the SIG Scalability pod startup SLO) is p99 <= 5 s, excluding image pulls; here the
//! image is always present.
//!
//! It prints a markdown section and rewrites its own section of `BENCHMARKS.md` (see [`kubelab_tests::bench`]):
//!
//! ```text
//! cargo run --release -p kubelab-tests --bin bench_pod_startup [-- --pods 30]
//! ```

use anyhow::{Context, bail};
use clap::Parser;
use futures::StreamExt;
use kubelab_api::client::{Client, ListParams, WatchEventType};
use kubelab_api::resources::{self, Resource};
use kubelab_tests::{bench, spawn_cluster, wait_for};
use serde_json::{Value, json};
use std::process::Command;
use std::time::{Duration, Instant};

/// The section of `BENCHMARKS.md` this benchmark owns.
const SECTION: &str = "bench_pod_startup";

/// The command that reproduces the figures.
const RERUN: &str = "cargo run --release -p kubelab-tests --bin bench_pod_startup";

/// The image and command of every pod and container: present locally (the cluster builds it), and quick to start.
const IMAGE: &str = "kubelab/busybox:1";
const COMMAND: [&str; 2] = ["sleep", "3600"];

/// How long one pod may take to start before the benchmark gives up.
const POD_TIMEOUT: Duration = Duration::from_secs(120);

/// Measures how long a pod takes to start in kubelab, next to `docker run -d`.
#[derive(Parser, Debug)]
struct Args {
    /// Pods (and containers) started, one at a time.
    #[arg(long, default_value_t = 30)]
    pods: usize,
}

/// When the watch showed each step of one pod's start, counted from the create request.
#[derive(Debug, Clone, Copy)]
struct PodStart {
    /// `spec.nodeName` set: the scheduler has bound it.
    bound: Duration,
    /// `status.phase` = `Running`: the kubelet has started its containers and reported it.
    running: Duration,
    /// The `Ready` condition is `True`.
    ready: Duration,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // The components' warnings and errors (RUST_LOG=info for more), so that a failed run says why.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    anyhow::ensure!(args.pods > 0, "--pods must be at least 1");
    // Before we add load of our own: the load average then says how busy the machine was with other work.
    let machine = format!("{}; Docker {}", bench::machine(), docker_version());

    eprintln!("bench_pod_startup: starting a one-node cluster...");
    // Its drop removes the node's containers and network, also when the start fails half-way or a panic unwinds.
    let mut cluster = spawn_cluster(1, |_| {}).await?;
    let containers = Containers { label: format!("kubelab.bench=pod-startup-{}", std::process::id()) };
    let client = cluster.get().client.clone();
    let measured = tokio::select! {
        measured = measure(&client, &containers, args.pods) => measured,
        failure = cluster.get().failed() => Err(failure.context("a component of the cluster failed")),
    };

    // Clean up before reporting, and also after an error (the cluster's drop removes its pods and network).
    drop(containers);
    drop(cluster);
    let (pods, docker) = measured?;

    let section = markdown(&pods, docker, &machine);
    println!("{section}");
    let path = bench::write_section(SECTION, &section)?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

/// Starts `count` pods and `count` containers, interleaved, after one of each as a warm-up.
async fn measure(
    client: &Client,
    containers: &Containers,
    count: usize,
) -> anyhow::Result<(Vec<PodStart>, Vec<Duration>)> {
    wait_node_ready(client).await?;
    eprintln!("warm-up: one pod, one container...");
    start_pod(client, "warmup").await?;
    containers.run()?;

    let (mut pods, mut docker) = (Vec::with_capacity(count), Vec::with_capacity(count));
    for i in 0..count {
        let pod = start_pod(client, &format!("bench-{i:03}")).await?;
        let container = containers.run()?;
        eprintln!("  {i:3}: pod Running after {}, docker run after {}", ms(pod.running), ms(container));
        pods.push(pod);
        docker.push(container);
    }
    Ok((pods, docker))
}

fn res(kind: &str) -> anyhow::Result<&'static Resource> {
    resources::by_kind("v1", kind).with_context(|| format!("no v1 {kind}"))
}

/// Waits until the cluster's one node reports `Ready` (its kubelet has registered and synced).
async fn wait_node_ready(client: &Client) -> anyhow::Result<()> {
    let nodes = res("Node")?;
    wait_for("the node to be Ready", Duration::from_secs(60), || async {
        let list = client.list(nodes, None, &ListParams::default()).await?;
        let ready = list.items.iter().any(|node| has_condition(node, "Ready"));
        anyhow::ensure!(ready, "{} nodes, none Ready", list.items.len());
        Ok(())
    })
    .await
}

/// Whether `object` has the condition `kind` with status `True`.
fn has_condition(object: &Value, kind: &str) -> bool {
    object
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|conditions| conditions.iter().any(|c| c["type"] == kind && c["status"] == "True"))
}

/// Creates the pod `name` and follows it through a watch (opened before the create) until it is Ready.
async fn start_pod(client: &Client, name: &str) -> anyhow::Result<PodStart> {
    let pods = res("Pod")?;
    let params = ListParams::default().fields(format!("metadata.name={name}"));
    let list = client.list(pods, Some("default"), &params).await?;
    let mut watch = client.watch(pods, Some("default"), &params, &list.resource_version).await?;
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"containers": [{"name": "main", "image": IMAGE, "command": COMMAND}]}});

    let started = Instant::now();
    client.create(pods, Some("default"), &pod).await?;
    let (mut bound, mut running) = (None, None);
    let deadline = tokio::time::Instant::now() + POD_TIMEOUT;
    loop {
        let event = match tokio::time::timeout_at(deadline, watch.next()).await {
            Ok(Some(event)) => event?,
            Ok(None) => bail!("the watch on pod {name} ended"),
            Err(_) => bail!("pod {name} was not Ready after {POD_TIMEOUT:?}"),
        };
        if let Some(error) = event.error() {
            bail!("the watch on pod {name} failed: {error}");
        }
        if event.type_ == WatchEventType::Bookmark {
            continue;
        }
        let seen = started.elapsed();
        let object = &event.object;
        if object.pointer("/spec/nodeName").and_then(Value::as_str).is_some_and(|n| !n.is_empty()) {
            bound.get_or_insert(seen);
        }
        if object.pointer("/status/phase") == Some(&json!("Running")) {
            running.get_or_insert(seen);
        }
        if has_condition(object, "Ready") {
            // A Ready pod is bound and running: an update that showed all three at once gives them one time.
            let running = *running.get_or_insert(seen);
            return Ok(PodStart { bound: *bound.get_or_insert(running), running, ready: seen });
        }
    }
}

/// The containers this benchmark starts with `docker run`, all carrying one label; removed on drop.
struct Containers {
    /// `key=value`, unique to this process.
    label: String,
}

impl Containers {
    /// Times `docker run -d` of the pod's image and command, then checks (untimed) that the container runs.
    fn run(&self) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let output = Command::new("docker")
            .args(["run", "-d", "--label", &self.label, IMAGE])
            .args(COMMAND)
            .output()
            .context("cannot run docker")?;
        let elapsed = started.elapsed();
        anyhow::ensure!(output.status.success(), "docker run failed: {}", String::from_utf8_lossy(&output.stderr));
        let id = String::from_utf8_lossy(&output.stdout).trim().to_string();
        let state = Command::new("docker").args(["inspect", "--format", "{{.State.Running}}", &id]).output()?;
        anyhow::ensure!(
            String::from_utf8_lossy(&state.stdout).trim() == "true",
            "container {id} is not running after docker run"
        );
        Ok(elapsed)
    }
}

impl Drop for Containers {
    fn drop(&mut self) {
        let Ok(list) =
            Command::new("docker").args(["ps", "-aq", "--filter", &format!("label={}", self.label)]).output()
        else {
            return;
        };
        let ids: Vec<String> = String::from_utf8_lossy(&list.stdout).split_whitespace().map(String::from).collect();
        if !ids.is_empty() {
            let _ = Command::new("docker").args(["rm", "-f"]).args(&ids).output();
        }
    }
}

/// The Docker engine's version, for the machine line.
fn docker_version() -> String {
    Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "(version unknown)".into())
}

/// The nearest-rank percentile of sorted values: the smallest value that `percent`% of them do not exceed.
fn percentile(sorted: &[Duration], percent: usize) -> Duration {
    let rank = (percent * sorted.len()).div_ceil(100).clamp(1, sorted.len().max(1));
    sorted.get(rank - 1).copied().unwrap_or_default()
}

fn ms(duration: Duration) -> String {
    format!("{:.0} ms", duration.as_secs_f64() * 1000.0)
}

/// The section of `BENCHMARKS.md`: the table, the ratios, where the time goes, the machine, the rerun command.
fn markdown(pods: &[PodStart], mut docker: Vec<Duration>, machine: &str) -> String {
    let sorted = |pick: fn(&PodStart) -> Duration| {
        let mut values: Vec<Duration> = pods.iter().map(pick).collect();
        values.sort();
        values
    };
    let (bound, running, ready) = (sorted(|p| p.bound), sorted(|p| p.running), sorted(|p| p.ready));
    let kubelet = sorted(|p| p.running.saturating_sub(p.bound));
    docker.sort();
    let row = |name: &str, values: &[Duration]| {
        let max = values.last().copied().unwrap_or_default();
        format!("| {name} | {} | {} | {} |\n", ms(percentile(values, 50)), ms(percentile(values, 99)), ms(max))
    };
    let ratio = |p: usize| percentile(&running, p).as_secs_f64() / percentile(&docker, p).as_secs_f64();

    let mut out = String::new();
    out += "## Pod startup (`bench_pod_startup`)\n\n";
    out += &format!(
        "Measured on {} by `{RERUN}`: {} pods created one at a time in a one-node cluster (in-process, default \
         timings), each `{IMAGE}` running `{}`, followed by a watch; and as many `docker run -d` of the same image \
         and command, interleaved with them. Times run from the create request (or from starting `docker`); \
         the image is present; one warm-up of each is not counted.\n\n",
        bench::today(),
        pods.len(),
        COMMAND.join(" ")
    );
    out += "| path | p50 | p99 | max |\n|---|---:|---:|---:|\n";
    out += &row("kubelab: create Pod → bound (watch)", &bound);
    out += &row("kubelab: create Pod → `Running` (watch)", &running);
    out += &row("kubelab: create Pod → `Ready` (watch)", &ready);
    out += &row("`docker run -d` (CLI returns, container running)", &docker);
    out += &format!(
        "\n**Ratios** (kubelab `Running` / `docker run -d`): p50 **{:.1}×**, p99 **{:.1}×**. Kubernetes' pod \
         startup SLO is p99 <= 5 s (image pulls excluded): {}.\n",
        ratio(50),
        ratio(99),
        if percentile(&running, 99) <= Duration::from_secs(5) { "met" } else { "NOT met" }
    );
    let total_running: f64 = pods.iter().map(|p| p.running.as_secs_f64()).sum();
    let share = |pick: fn(&PodStart) -> Duration| {
        pods.iter().map(|p| pick(p).as_secs_f64()).sum::<f64>() / total_running * 100.0
    };
    let (to_bind, on_node, docker_p50) = (percentile(&bound, 50), percentile(&kubelet, 50), percentile(&docker, 50));
    out += &format!(
        "\n**Where the time goes** (medians): the scheduler has bound the pod {} after its creation; the kubelet \
         needs {} more until the watch shows `Running` — noticing the pod, starting its pause container and \
         `{IMAGE}` through Docker's API, and reporting the status — against {} for `docker run -d` of one \
         container. Over all {} pods, scheduling is {:.0}% of the time to `Running`, the node {:.0}%.\n",
        ms(to_bind),
        ms(on_node),
        ms(docker_p50),
        pods.len(),
        share(|p| p.bound),
        share(|p| p.running.saturating_sub(p.bound))
    );
    out += &format!(
        "\n**Machine:** {machine}. The whole cluster, the benchmark and Docker share these cores.\n\n\
         **Rerun:** `{RERUN}` (add `-- --pods N` to change the count).\n"
    );
    out
}
