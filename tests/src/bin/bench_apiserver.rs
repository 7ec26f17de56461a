//! How much does the apiserver cost on top of etcd?
//!
//! Every write in a cluster goes client → apiserver → etcd. The apiserver decodes, defaults, validates, stamps
//! metadata, encodes, and runs a compare-and-put transaction; so it can never beat etcd, but it should not be far
//! behind. This benchmark measures, on one throwaway etcd in one run:
//!
//! 1. raw `etcd-client` puts and gets of ConfigMap-sized JSON values, `--concurrency` requests in flight, and the
//!    create-if-absent transaction the apiserver itself runs for a create (to tell etcd's cost from ours);
//! 2. the same number of ConfigMap creates (`POST`) and gets (`GET`) through the apiserver's HTTP API, at the same
//!    concurrency (the apiserver runs in this process, on the same etcd);
//! 3. watch delivery latency: one watcher on a namespace, objects created one after the other, and the time from
//!    each create's response (and from its request) to the ADDED event reaching the watcher.
//!
//! It prints a markdown table and rewrites its section of `BENCHMARKS.md` at the root of the workspace with the
//! figures, the ratios, the machine and the command to rerun it:
//!
//! ```text
//! cargo run --release -p kubelab-tests --bin bench_apiserver [-- --objects N --concurrency C --watch-objects M]
//! ```
//!
//! Goal (from the foundation issue): creates through the apiserver at >= 50% of raw etcd puts.
//!
//! What it leaves out: TLS and authentication (kubelab has none), a separate apiserver process (the load generator
//! and the apiserver share this process and the machine's cores, as they would share a small VM), and many watchers.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use kubelab_apiserver::store::etcd_server::EtcdServer;
use kubelab_tests::bench;
use serde_json::{Value, json};

/// The section of `BENCHMARKS.md` this benchmark owns; the rest of the file is left alone.
const SECTION: &str = "bench_apiserver";

/// The command that reproduces the figures.
const RERUN: &str = "cargo run --release -p kubelab-tests --bin bench_apiserver";

/// What to measure; each can be changed on the command line.
#[derive(Debug, Clone, Copy)]
struct Settings {
    /// Objects written (then read) by each throughput phase.
    objects: usize,
    /// Requests in flight at once, in every throughput phase.
    concurrency: usize,
    /// Objects created one by one for the watch latency.
    watch_objects: usize,
}

/// One throughput phase: how many operations in how long.
#[derive(Debug, Clone, Copy)]
struct Throughput {
    count: usize,
    elapsed: Duration,
}

impl Throughput {
    fn per_second(&self) -> f64 {
        self.count as f64 / self.elapsed.as_secs_f64()
    }
}

/// Everything one run measured.
struct Report {
    settings: Settings,
    /// The machine, as [`machine`] describes it before the run.
    machine: String,
    value_bytes: usize,
    etcd_put: Throughput,
    etcd_txn: Throughput,
    etcd_get: Throughput,
    api_create: Throughput,
    api_get: Throughput,
    /// Watch latencies from the create's response, and from its request, sorted.
    from_response: Vec<Duration>,
    from_request: Vec<Duration>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = parse_args()?;
    // Before we add load of our own: the load average then says how busy the machine was with other work.
    let machine = machine();
    eprintln!("starting a throwaway etcd...");
    let etcd = EtcdServer::start().await?;
    let value_bytes = configmap("sizing", "bench").to_string().len();

    eprintln!("raw etcd: {} puts, then gets, {} in flight...", settings.objects, settings.concurrency);
    let mut etcd_client = etcd_client::Client::connect([etcd.endpoint()], None).await?;
    etcd_client.put("/bench/warmup", "x", None).await?;
    let etcd_put = etcd_puts(&etcd_client, settings).await?;
    let etcd_txn = etcd_create_txns(&etcd_client, settings).await?;
    let etcd_get = etcd_gets(&etcd_client, settings).await?;

    eprintln!("apiserver on the same etcd: {} creates, then gets...", settings.objects);
    let dir = tempfile::tempdir()?;
    let mut config = kubelab_apiserver::Config::new(([127, 0, 0, 1], 0).into(), dir.path().join("data"));
    config.etcd_servers = vec![etcd.endpoint()];
    let server = kubelab_apiserver::start(config).await?;
    let base = server.url();
    let http = reqwest::Client::builder().pool_max_idle_per_host(settings.concurrency * 2).build()?;
    for namespace in ["bench", "latency"] {
        post(
            &http,
            &format!("{base}/api/v1/namespaces"),
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}),
        )
        .await?;
    }
    let api_create = api_creates(&http, &base, settings).await?;
    let api_get = api_gets(&http, &base, settings).await?;

    eprintln!("watch latency: {} creates, one at a time...", settings.watch_objects);
    let (from_response, from_request) = watch_latency(&http, &base, settings.watch_objects).await?;
    server.shutdown().await?;
    drop(etcd);

    let report = Report {
        settings,
        machine,
        value_bytes,
        etcd_put,
        etcd_txn,
        etcd_get,
        api_create,
        api_get,
        from_response,
        from_request,
    };
    let section = report.markdown();
    println!("{section}");
    let path = bench::write_section(SECTION, &section)?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

/// `--objects N --concurrency C --watch-objects M`, with defaults that take well under a minute on 2 cores.
fn parse_args() -> anyhow::Result<Settings> {
    let mut settings = Settings { objects: 10_000, concurrency: 16, watch_objects: 300 };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().with_context(|| format!("{flag} needs a value"))?;
        let number: usize = value.parse().with_context(|| format!("{flag} {value}: not a number"))?;
        anyhow::ensure!(number > 0, "{flag} must be at least 1");
        match flag.as_str() {
            "--objects" => settings.objects = number,
            "--concurrency" => settings.concurrency = number,
            "--watch-objects" => settings.watch_objects = number,
            _ => {
                bail!("unknown flag {flag}; usage: bench_apiserver [--objects N] [--concurrency C] [--watch-objects M]")
            }
        }
    }
    Ok(settings)
}

/// A ConfigMap of realistic size (about 1.1 KiB of JSON): labels, annotations, a few settings and a config file.
fn configmap(name: &str, namespace: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/name": "shop", "app.kubernetes.io/component": "web", "tier": "frontend"},
            "annotations": {"example.com/owner": "team-storefront", "example.com/ticket": "SHOP-1234"}
        },
        "data": {
            "APP_MODE": "production",
            "LOG_LEVEL": "info",
            "CACHE_TTL_SECONDS": "300",
            "FEATURE_FLAGS": "checkout-v2,fast-search,recommendations",
            "default.conf": "server {\n    listen 80;\n    server_name shop.example.com;\n    location / {\n        root /usr/share/nginx/html;\n        index index.html;\n        try_files $uri $uri/ /index.html;\n    }\n    location /api/ {\n        proxy_pass http://shop-api:8080/;\n        proxy_set_header Host $host;\n        proxy_set_header X-Real-IP $remote_addr;\n        proxy_read_timeout 30s;\n    }\n    location /healthz {\n        access_log off;\n        return 200 'ok';\n    }\n    gzip on;\n    gzip_types text/css application/javascript application/json;\n    client_max_body_size 10m;\n}\n",
            "robots.txt": "User-agent: *\nDisallow: /api/\nDisallow: /checkout/\nAllow: /\nSitemap: https://shop.example.com/sitemap.xml\n"
        }
    })
}

/// Runs `operation(i)` for every `i` in `0..count`, `concurrency` at a time, and times the whole.
async fn run_concurrently<F, Fut>(count: usize, concurrency: usize, operation: F) -> anyhow::Result<Throughput>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let operation = Arc::new(operation);
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (next, operation) = (next.clone(), operation.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        return Ok::<_, anyhow::Error>(());
                    }
                    operation(i).await?;
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await??;
    }
    Ok(Throughput { count, elapsed: started.elapsed() })
}

fn raw_key(i: usize) -> String {
    format!("/bench/raw/configmaps/bench/cm-{i:06}")
}

async fn etcd_puts(client: &etcd_client::Client, settings: Settings) -> anyhow::Result<Throughput> {
    let client = client.clone();
    run_concurrently(settings.objects, settings.concurrency, move |i| {
        let mut client = client.clone();
        async move {
            let value = configmap(&format!("cm-{i:06}"), "bench").to_string();
            client.put(raw_key(i), value, None).await?;
            Ok(())
        }
    })
    .await
}

/// The transaction behind every create of the etcd store: put the key only if it does not exist yet.
async fn etcd_create_txns(client: &etcd_client::Client, settings: Settings) -> anyhow::Result<Throughput> {
    use etcd_client::{Compare, CompareOp, Txn, TxnOp};
    let client = client.clone();
    run_concurrently(settings.objects, settings.concurrency, move |i| {
        let mut client = client.clone();
        async move {
            let key = format!("/bench/txn/configmaps/bench/cm-{i:06}");
            let value = configmap(&format!("cm-{i:06}"), "bench").to_string();
            let txn = Txn::new().when([Compare::version(key.as_str(), CompareOp::Equal, 0)]).and_then([TxnOp::put(
                key.as_str(),
                value,
                None,
            )]);
            anyhow::ensure!(client.txn(txn).await?.succeeded(), "{key} existed already");
            Ok(())
        }
    })
    .await
}

async fn etcd_gets(client: &etcd_client::Client, settings: Settings) -> anyhow::Result<Throughput> {
    let client = client.clone();
    run_concurrently(settings.objects, settings.concurrency, move |i| {
        let mut client = client.clone();
        async move {
            let got = client.get(raw_key(i), None).await?;
            anyhow::ensure!(got.kvs().len() == 1, "{} is missing", raw_key(i));
            Ok(())
        }
    })
    .await
}

async fn post(http: &reqwest::Client, url: &str, body: &Value) -> anyhow::Result<Value> {
    let response = http.post(url).json(body).send().await?;
    let status = response.status();
    if status != 201 {
        bail!("POST {url} → {status}: {}", response.text().await?);
    }
    Ok(response.json().await?)
}

async fn api_creates(http: &reqwest::Client, base: &str, settings: Settings) -> anyhow::Result<Throughput> {
    let (http, url) = (http.clone(), format!("{base}/api/v1/namespaces/bench/configmaps"));
    run_concurrently(settings.objects, settings.concurrency, move |i| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            post(&http, &url, &configmap(&format!("cm-{i:06}"), "bench")).await?;
            Ok(())
        }
    })
    .await
}

async fn api_gets(http: &reqwest::Client, base: &str, settings: Settings) -> anyhow::Result<Throughput> {
    let (http, base) = (http.clone(), base.to_string());
    run_concurrently(settings.objects, settings.concurrency, move |i| {
        let url = format!("{base}/api/v1/namespaces/bench/configmaps/cm-{i:06}");
        let http = http.clone();
        async move {
            let response = http.get(&url).send().await?;
            let status = response.status();
            let _ = response.bytes().await?;
            anyhow::ensure!(status == 200, "GET {url} → {status}");
            Ok(())
        }
    })
    .await
}

/// Opens one watch, creates `count` objects one after the other, and returns, sorted, the delays from each create's
/// response and from its request to its ADDED event.
async fn watch_latency(
    http: &reqwest::Client,
    base: &str,
    count: usize,
) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
    let list: Value = http.get(format!("{base}/api/v1/namespaces/latency/configmaps")).send().await?.json().await?;
    let version = list["metadata"]["resourceVersion"].as_str().context("the list has a resourceVersion")?.to_string();
    let response = http
        .get(format!("{base}/api/v1/namespaces/latency/configmaps?watch=1&resourceVersion={version}"))
        .send()
        .await?;
    anyhow::ensure!(response.status() == 200, "watch → {}", response.status());

    // The watcher: split the chunked body into lines and report each ADDED object's name with the time it arrived.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, Instant)>();
    let watcher = tokio::spawn(async move {
        let mut body = response.bytes_stream();
        let mut buffer = Vec::new();
        while let Some(chunk) = body.next().await {
            let received = Instant::now();
            buffer.extend_from_slice(&chunk?);
            while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buffer.drain(..=end).collect();
                let event: Value = serde_json::from_slice(&line)?;
                if event["type"] == "ADDED"
                    && let Some(name) = event["object"]["metadata"]["name"].as_str()
                    && tx.send((name.to_string(), received)).is_err()
                {
                    return Ok(());
                }
            }
        }
        Ok::<_, anyhow::Error>(())
    });

    let url = format!("{base}/api/v1/namespaces/latency/configmaps");
    let mut early = HashMap::new();
    let (mut from_response, mut from_request) = (Vec::with_capacity(count), Vec::with_capacity(count));
    for i in 0..count {
        let name = format!("lat-{i:06}");
        let sent = Instant::now();
        post(http, &url, &configmap(&name, "latency")).await?;
        let answered = Instant::now();
        let arrived = loop {
            if let Some(arrived) = early.remove(&name) {
                break arrived;
            }
            let (seen, arrived) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .with_context(|| format!("no ADDED event for {name} within 10s"))?
                .context("the watch ended")?;
            early.insert(seen, arrived);
        };
        // The event can arrive before the create's response has been read: that is a delay of zero.
        from_response.push(arrived.saturating_duration_since(answered));
        from_request.push(arrived.saturating_duration_since(sent));
    }
    watcher.abort();
    from_response.sort();
    from_request.sort();
    Ok((from_response, from_request))
}

/// The value below which `fraction` of the sorted `values` lie.
fn percentile(values: &[Duration], fraction: f64) -> Duration {
    let index = ((values.len() as f64 * fraction).ceil() as usize).clamp(1, values.len()) - 1;
    values[index]
}

fn ms(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1000.0)
}

impl Report {
    fn markdown(&self) -> String {
        let s = self.settings;
        let row = |name: &str, t: &Throughput| {
            format!(
                "| {name} | {} | {} | {:.2} s | {:.0} |\n",
                t.count,
                s.concurrency,
                t.elapsed.as_secs_f64(),
                t.per_second()
            )
        };
        let create_ratio = self.api_create.per_second() / self.etcd_put.per_second();
        let txn_ratio = self.api_create.per_second() / self.etcd_txn.per_second();
        let get_ratio = self.api_get.per_second() / self.etcd_get.per_second();
        let goal = if create_ratio >= 0.5 { "met" } else { "NOT met" };
        let mut out = String::new();
        out += "## apiserver vs raw etcd (`bench_apiserver`)\n\n";
        out += &format!(
            "Measured on {} by `{RERUN}` (objects {}, concurrency {}, watch objects {}). Each value is a ConfigMap of {} bytes of JSON; \
             the apiserver runs in the benchmark's process on the same throwaway etcd.\n\n",
            bench::today(),
            s.objects,
            s.concurrency,
            s.watch_objects,
            self.value_bytes
        );
        out += "| operation | count | in flight | time | per second |\n|---|---:|---:|---:|---:|\n";
        out += &row("raw etcd put", &self.etcd_put);
        out += &row("raw etcd txn create-if-absent", &self.etcd_txn);
        out += &row("raw etcd get", &self.etcd_get);
        out += &row("apiserver create (POST)", &self.api_create);
        out += &row("apiserver get (GET)", &self.api_get);
        out += &format!(
            "\n**Ratios:** apiserver creates / raw etcd puts = **{:.0}%** (goal >= 50%: {goal}); apiserver creates / raw create-if-absent txns = {:.0}%; \
             apiserver gets / raw etcd gets = **{:.0}%**.\n\n",
            create_ratio * 100.0,
            txn_ratio * 100.0,
            get_ratio * 100.0
        );
        out += &format!(
            "**Watch delivery latency** ({} creates one at a time, one watcher):\n\n| measured from | p50 | p99 | max |\n|---|---:|---:|---:|\n",
            self.from_response.len()
        );
        for (name, values) in
            [("create response received", &self.from_response), ("create request sent", &self.from_request)]
        {
            out += &format!(
                "| {name} | {} | {} | {} |\n",
                ms(percentile(values, 0.5)),
                ms(percentile(values, 0.99)),
                ms(*values.last().unwrap_or(&Duration::ZERO))
            );
        }
        out += "\nA delay of 0 from the response means the event had reached the watcher before the client had read the \
                create's response; the delay from the request includes the create itself.\n";
        out += &format!(
            "\n**Machine:** {}\n\n**Rerun:** `{RERUN}` (add `-- --objects N --concurrency C --watch-objects M` to change the sizes).\n",
            self.machine
        );
        out
    }
}

/// The shared machine line, with the etcd version, for the reader to judge the figures.
fn machine() -> String {
    let etcd = std::process::Command::new(std::env::var("KUBELAB_ETCD").unwrap_or_else(|_| "etcd".into()))
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|text| text.lines().next().map(str::to_string))
        .unwrap_or_else(|| "etcd version unknown".into());
    format!("{}; {etcd}. The load generator, the apiserver and etcd share these cores.", bench::machine())
}
