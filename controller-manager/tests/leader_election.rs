//! Leader election against a real apiserver, with Kubernetes' timings divided by about 7 (lease 2 s, renew
//! deadline 1 s, retry every 200 ms).
//!
//! Each candidate's "controllers" are a future that raises a flag while it runs and lowers it when dropped, so
//! the tests can see who is acting at any moment.

use anyhow::{Context, bail};
use kubelab_api::client::{Client, ClientError, ListParams};
use kubelab_controller_manager::leader::{LeaderConfig, LeaderError, run_when_leader};
use kubelab_testkit::{spawn_apiserver, wait_for};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::Instant;

mod common;
use common::{TIMEOUT, resource};

fn config() -> LeaderConfig {
    LeaderConfig {
        lease_duration: Duration::from_secs(2),
        renew_deadline: Duration::from_secs(1),
        retry_period: Duration::from_millis(200),
        ..LeaderConfig::default()
    }
}

#[tokio::test]
async fn only_one_candidate_leads_and_a_standby_takes_over_within_the_lease_duration() -> anyhow::Result<()> {
    let server = spawn_apiserver().await?;
    let client = server.client()?;
    let a = Candidate::start(&client, "a");
    wait_for("a to lead", TIMEOUT, || async { if a.leading() { Ok(()) } else { bail!("a is not leading") } }).await?;
    let b = Candidate::start(&client, "b");

    // While a renews its lease, b only follows.
    let first = renew_time(&client).await?;
    wait_for("a to renew its lease twice more", TIMEOUT, || async {
        let renewed = renew_time(&client).await?;
        if renewed <= first + 0.3 {
            bail!("last renewal {renewed}");
        }
        Ok(())
    })
    .await?;
    assert!(a.leading() && !b.leading(), "exactly one leader");
    assert_eq!(lease(&client).await?["spec"]["holderIdentity"], "a");

    // a crashes: nothing releases the lease; b takes it once it expires.
    let last_renewal = renew_time(&client).await?;
    a.task.abort();
    let crashed = Instant::now();
    wait_for("b to take over", TIMEOUT, || async { if b.leading() { Ok(()) } else { bail!("b is not leading") } })
        .await?;
    let handover = crashed.elapsed();
    assert!(handover <= Duration::from_secs(3), "took {handover:?}: the lease is 2 s, b retries every 0.2-0.44 s");
    let taken = lease(&client).await?;
    assert_eq!(taken["spec"]["holderIdentity"], "b");
    assert_eq!(taken["spec"]["leaseTransitions"], 1);
    let acquired = seconds(taken["spec"]["acquireTime"].as_str().context("no acquireTime")?)?;
    assert!(
        acquired >= last_renewal + 2.0,
        "b took the lease at {acquired}, before a's expired ({last_renewal} + 2 s)"
    );

    let events = client.list(resource("Event")?, Some("kube-system"), &ListParams::default()).await?;
    let messages: Vec<&str> =
        events.items.iter().filter(|e| e["reason"] == "LeaderElection").filter_map(|e| e["message"].as_str()).collect();
    assert_eq!(messages.iter().filter(|m| **m == "a became leader").count(), 1, "{messages:?}");
    assert_eq!(messages.iter().filter(|m| **m == "b became leader").count(), 1, "{messages:?}");
    Ok(())
}

#[tokio::test]
async fn a_leader_whose_lease_is_taken_stops_its_controllers() -> anyhow::Result<()> {
    let server = spawn_apiserver().await?;
    let client = server.client()?;
    let a = Candidate::start(&client, "a");
    wait_for("a to lead", TIMEOUT, || async { if a.leading() { Ok(()) } else { bail!("a is not leading") } }).await?;

    // Someone overwrites the lease (an operator, a split brain): a finds it in other hands at its next renewal.
    let mut taken = lease(&client).await?;
    taken["spec"]["holderIdentity"] = json!("intruder");
    taken["spec"]["leaseDurationSeconds"] = json!(3600);
    client.replace(resource("Lease")?, Some("kube-system"), "kube-controller-manager", &taken).await?;

    let outcome = tokio::time::timeout(TIMEOUT, a.task).await.context("a never stepped down")??;
    assert!(matches!(outcome, Err(LeaderError::Lost { .. })), "{outcome:?}");
    assert!(!a.flag.load(Ordering::SeqCst), "its work was dropped");
    Ok(())
}

#[tokio::test]
async fn a_leader_cut_off_from_the_apiserver_steps_down_before_its_lease_could_expire() -> anyhow::Result<()> {
    let server = spawn_apiserver().await?;
    let client = server.client()?;
    let a = Candidate::start(&client, "a");
    wait_for("a to lead", TIMEOUT, || async { if a.leading() { Ok(()) } else { bail!("a is not leading") } }).await?;

    server.shutdown().await?;
    let cut_off = Instant::now();
    let outcome = tokio::time::timeout(TIMEOUT, a.task).await.context("a never stepped down")??;
    assert!(matches!(outcome, Err(LeaderError::Lost { .. })), "{outcome:?}");
    // It renewed at most one retry period before the cut, and gives up after the renew deadline (1 s) plus the
    // retry period it waits first: well before the 2 s lease expires and a standby may start.
    assert!(cut_off.elapsed() < Duration::from_secs(2), "stepped down after {:?}", cut_off.elapsed());
    Ok(())
}

// ---- harness ----

/// One controller manager: a task running `run_when_leader` around work that raises `flag` while it runs.
struct Candidate {
    flag: Arc<AtomicBool>,
    task: JoinHandle<Result<(), LeaderError>>,
}

impl Candidate {
    fn start(client: &Client, identity: &'static str) -> Candidate {
        let flag = Arc::new(AtomicBool::new(false));
        let work = {
            let flag = flag.clone();
            async move {
                let _running = Raised::new(flag);
                std::future::pending::<()>().await;
            }
        };
        let task = tokio::spawn(run_when_leader(client.clone(), identity, config(), work));
        Candidate { flag, task }
    }

    fn leading(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
}

/// Raises a flag while alive; lowers it when dropped (when `run_when_leader` drops the work).
struct Raised(Arc<AtomicBool>);

impl Raised {
    fn new(flag: Arc<AtomicBool>) -> Raised {
        flag.store(true, Ordering::SeqCst);
        Raised(flag)
    }
}

impl Drop for Raised {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

async fn lease(client: &Client) -> anyhow::Result<Value> {
    match client.get(resource("Lease")?, Some("kube-system"), "kube-controller-manager").await {
        Ok(lease) => Ok(lease),
        Err(ClientError::Api(err)) if err.code == 404 => bail!("no lease yet"),
        Err(err) => Err(err.into()),
    }
}

/// The lease's renewTime, as seconds since the epoch.
async fn renew_time(client: &Client) -> anyhow::Result<f64> {
    seconds(lease(client).await?["spec"]["renewTime"].as_str().context("no renewTime")?)
}

fn seconds(time: &str) -> anyhow::Result<f64> {
    let parsed = chrono::DateTime::parse_from_rfc3339(time).with_context(|| format!("bad time {time}"))?;
    Ok(parsed.timestamp_micros() as f64 / 1e6)
}
