//! Leader election: several controller managers may run, one acts.
//!
//! Two ReplicaSet controllers working at once would each create the missing Pods: twice as many. Yet a cluster
//! wants a standby controller manager, ready to take over when the active one dies. Kubernetes solves this with
//! a **Lease** object, `kube-system/kube-controller-manager`, used as a lock (client-go's `leaderelection`):
//!
//! ```text
//! spec:
//!   holderIdentity: node-a_6f1c…     who leads
//!   leaseDurationSeconds: 15         how long the lease is good for after each renewal
//!   renewTime: 12:00:04.120000Z      the leader's last renewal
//!   acquireTime: 11:58:31.002000Z    when this leader took it
//!   leaseTransitions: 3              how many times leadership changed hands
//! ```
//!
//! - A candidate reads the Lease. If nobody holds it, or the holder has not renewed it for `leaseDurationSeconds`,
//!   it writes itself in as holder. The write carries the `resourceVersion` it read, so when two candidates try at
//!   once the apiserver accepts one and answers `409 Conflict` to the other: optimistic concurrency is the whole
//!   lock, no other coordination is needed.
//! - The leader renews every `retryPeriod` (2 s). If it cannot renew for `renewDeadline` (10 s) — the apiserver
//!   is unreachable, or someone else holds the lease — it **steps down**: its controllers stop. It must stop well
//!   before the lease expires (15 s), when a standby may take over; the 5 s margin absorbs clock drift and slow
//!   requests.
//! - A follower tries again every `retryPeriod` (with some jitter, so candidates do not retry in lockstep).
//!
//! [`decide`] is the decision, a pure function of the Lease, who we are, and the time. [`run_when_leader`] is the
//! loop around it, wrapping the controllers: they start when leadership is won and are dropped when it is lost.
//!
//! What we leave out: coordinated leader election (`preferredHolder`, `strategy`, Kubernetes 1.31+), and the
//! health-check watchdog. client-go judges expiry by its own clock at the moment it saw the lease change, to be
//! immune to clock skew between machines; kubelab's components share one machine, so we compare `renewTime`.

use crate::controller::now;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kubelab_api::client::{Client, ClientError};
use kubelab_api::events::{EventType, Recorder};
use kubelab_api::{ApiError, resources};
use serde_json::{Value, json};
use std::future::Future;
use std::time::Duration;

// ANCHOR: config
/// Where the lock is and how it is timed (`--leader-elect-*` flags of kube-controller-manager).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderConfig {
    /// `kube-system`.
    pub namespace: String,
    /// `kube-controller-manager`.
    pub name: String,
    /// How long a lease is good for after each renewal: 15 s.
    pub lease_duration: Duration,
    /// How long a leader keeps trying to renew before it steps down: 10 s.
    pub renew_deadline: Duration,
    /// How often the leader renews and a follower retries: 2 s.
    pub retry_period: Duration,
    /// Give the lease up when the wrapped work ends normally, so that a standby need not wait for it to expire.
    /// Off in kube-controller-manager (its work never ends normally); a crash never releases anything.
    pub release_on_exit: bool,
}

impl Default for LeaderConfig {
    fn default() -> Self {
        LeaderConfig {
            namespace: "kube-system".into(),
            name: "kube-controller-manager".into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
            release_on_exit: false,
        }
    }
}
// ANCHOR_END: config

/// client-go's `JitterFactor`: a follower waits between 1 and 2.2 retry periods.
const JITTER_FACTOR: f64 = 1.2;

/// Why [`run_when_leader`] returned without the work's result.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    /// The timings cannot work: a leader must give up renewing before its lease expires.
    #[error("invalid leader election configuration: {0}")]
    Config(String),
    /// The leader could not renew its lease in time (or someone else took it): the work was stopped.
    /// kube-controller-manager exits on this (`leaderelection lost`) and is restarted as a follower.
    #[error("leader election lost: {identity} could not renew the lease {namespace}/{name}")]
    Lost { identity: String, namespace: String, name: String },
}

// ANCHOR: decision
/// What a candidate should do after reading the Lease.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// The lease is free, expired, or ours: write this spec (with the resourceVersion read) to lead.
    Take(LeaseSpec),
    /// Someone else holds a live lease: follow, and try again after `expires`.
    Follow { holder: String, expires: Timestamp },
}

/// Decides from the Lease (`None` when it does not exist yet), who we are and the time.
pub fn decide(lease: Option<&Lease>, identity: &str, now: Timestamp, config: &LeaderConfig) -> Decision {
    let current = lease.and_then(|l| l.spec.clone()).unwrap_or_default();
    let holder = current.holder_identity.clone().unwrap_or_default();
    let duration = Duration::from_secs(u64::try_from(current.lease_duration_seconds.unwrap_or(0)).unwrap_or(0));
    let expires = current.renew_time.as_ref().map(|t| t.0.saturating_add(duration).unwrap_or(Timestamp::MAX));
    if !holder.is_empty()
        && holder != identity
        && let Some(expires) = expires.filter(|e| now < *e)
    {
        return Decision::Follow { holder, expires };
    }
    let ours = holder == identity;
    let transitions = current.lease_transitions.unwrap_or(0);
    Decision::Take(LeaseSpec {
        holder_identity: Some(identity.to_string()),
        lease_duration_seconds: Some(i32::try_from(config.lease_duration.as_secs()).unwrap_or(i32::MAX).max(1)),
        // A renewal keeps the acquisition time and the count; a takeover starts a new term.
        acquire_time: if ours { current.acquire_time.or(Some(MicroTime(now))) } else { Some(MicroTime(now)) },
        renew_time: Some(MicroTime(now)),
        lease_transitions: Some(if ours || lease.is_none() { transitions } else { transitions.saturating_add(1) }),
        ..Default::default()
    })
}
// ANCHOR_END: decision

/// A release: the lease stays, with nobody in it and a duration of one second, so that the next candidate
/// takes it on its next try (client-go's `release`).
fn released(lease: &Lease, now: Timestamp) -> LeaseSpec {
    let current = lease.spec.clone().unwrap_or_default();
    LeaseSpec {
        holder_identity: None,
        lease_duration_seconds: Some(1),
        acquire_time: Some(MicroTime(now)),
        renew_time: Some(MicroTime(now)),
        lease_transitions: current.lease_transitions,
        ..Default::default()
    }
}

/// The outcome of one attempt to acquire or renew.
#[derive(Debug, Clone, PartialEq)]
enum Attempt {
    Leading,
    Following(String),
}

/// One candidate: a client, an identity, a lock.
struct Elector {
    client: Client,
    identity: String,
    config: LeaderConfig,
    recorder: Recorder,
}

impl Elector {
    // ANCHOR: try_acquire_or_renew
    /// Reads the Lease, decides, writes: client-go's `tryAcquireOrRenew`. A `409` means another candidate wrote
    /// first: we follow.
    async fn try_acquire_or_renew(&self) -> Result<Attempt, ClientError> {
        let leases = client_resource()?;
        let (namespace, name) = (Some(self.config.namespace.as_str()), self.config.name.as_str());
        let now = now();
        let lease: Option<Lease> = match self.client.get(leases, namespace, name).await {
            Ok(object) => Some(serde_json::from_value(object).map_err(|err| ClientError::Decode {
                url: format!("lease {}/{name}", self.config.namespace),
                message: err.to_string(),
            })?),
            Err(ClientError::Api(ApiError { code: 404, .. })) => None,
            Err(err) => return Err(err),
        };
        let spec = match decide(lease.as_ref(), &self.identity, now, &self.config) {
            Decision::Follow { holder, .. } => return Ok(Attempt::Following(holder)),
            Decision::Take(spec) => spec,
        };
        let written = match &lease {
            None => {
                let body = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": name, "namespace": self.config.namespace}, "spec": spec});
                self.client.create(leases, namespace, &body).await
            }
            Some(lease) => {
                let mut updated = lease.clone();
                updated.spec = Some(spec);
                let body = serde_json::to_value(&updated).map_err(|err| ClientError::Usage(err.to_string()))?;
                // The resourceVersion read above travels in `body`: if anyone wrote since, this fails with 409.
                self.client.replace(leases, namespace, name, &body).await
            }
        };
        match written {
            Ok(_) => Ok(Attempt::Leading),
            Err(ClientError::Api(ApiError { code: 409, .. })) => Ok(Attempt::Following("another candidate".into())),
            Err(err) => Err(err),
        }
    }
    // ANCHOR_END: try_acquire_or_renew

    /// Tries until it leads. Never returns otherwise.
    async fn acquire(&self) {
        let mut last_holder = String::new();
        loop {
            match tokio::time::timeout(self.config.renew_deadline, self.try_acquire_or_renew()).await {
                Ok(Ok(Attempt::Leading)) => return,
                Ok(Ok(Attempt::Following(holder))) => {
                    if holder != last_holder {
                        tracing::info!(identity = %self.identity, leader = %holder, "following the current leader");
                        last_holder = holder;
                    }
                }
                Ok(Err(err)) => tracing::warn!(identity = %self.identity, error = %err, "could not read the lease"),
                Err(_) => tracing::warn!(identity = %self.identity, "acquiring the lease timed out"),
            }
            tokio::time::sleep(jittered(self.config.retry_period)).await;
        }
    }

    // ANCHOR: renew
    /// Renews every retry period while it can; returns when leadership is lost: no successful renewal within
    /// the renew deadline, or the lease found in someone else's hands.
    async fn keep_renewing(&self) {
        loop {
            tokio::time::sleep(self.config.retry_period).await;
            let deadline = tokio::time::Instant::now() + self.config.renew_deadline;
            loop {
                match tokio::time::timeout_at(deadline, self.try_acquire_or_renew()).await {
                    Ok(Ok(Attempt::Leading)) => break,
                    Ok(Ok(Attempt::Following(holder))) => {
                        tracing::error!(identity = %self.identity, leader = %holder, "the lease was taken over");
                        return;
                    }
                    Ok(Err(err)) => tracing::warn!(identity = %self.identity, error = %err, "could not renew"),
                    Err(_) => {}
                }
                if tokio::time::Instant::now() + self.config.retry_period >= deadline {
                    tracing::error!(identity = %self.identity, "failed to renew the lease before the deadline");
                    return;
                }
                tokio::time::sleep(self.config.retry_period).await;
            }
        }
    }
    // ANCHOR_END: renew

    /// Gives the lease up, if it is still ours.
    async fn release(&self) {
        let Ok(leases) = client_resource() else { return };
        let namespace = Some(self.config.namespace.as_str());
        let Ok(object) = self.client.get(leases, namespace, &self.config.name).await else { return };
        let Ok(mut lease) = serde_json::from_value::<Lease>(object) else { return };
        if lease.spec.as_ref().and_then(|s| s.holder_identity.as_deref()) != Some(self.identity.as_str()) {
            return;
        }
        lease.spec = Some(released(&lease, now()));
        if let Ok(body) = serde_json::to_value(&lease)
            && let Err(err) = self.client.replace(leases, namespace, &self.config.name, &body).await
        {
            tracing::warn!(identity = %self.identity, error = %err, "could not release the lease");
        }
    }

    /// An event on the Lease, as client-go's `LeaseLock.RecordEvent`: `<identity> became leader`.
    async fn record(&self, what: &str) {
        let about: Value = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": self.config.name, "namespace": self.config.namespace}});
        self.recorder.record(&about, EventType::Normal, "LeaderElection", format!("{} {what}", self.identity)).await;
    }
}

// ANCHOR: run_when_leader
/// Waits until `identity` leads, then runs `work` while renewing the lease. Returns the work's output if it ends
/// while leading; if leadership is lost first, `work` is dropped — so it must own what it starts (a `JoinSet`, or
/// tasks aborted on drop) — and [`LeaderError::Lost`] is returned.
pub async fn run_when_leader<F: Future>(
    client: Client,
    identity: impl Into<String>,
    config: LeaderConfig,
    work: F,
) -> Result<F::Output, LeaderError> {
    check(&config)?;
    let identity = identity.into();
    // Events say who became leader; their source is the component the lease is named after.
    let recorder = Recorder::new(client.clone(), config.name.clone());
    let elector = Elector { client, identity, config, recorder };
    let (identity, lease) = (&elector.identity, &elector.config.name);
    tracing::info!(%identity, %lease, "attempting to acquire the leader lease");
    elector.acquire().await;
    tracing::info!(identity = %elector.identity, lease = %elector.config.name, "successfully acquired the lease");
    elector.record("became leader").await;
    tokio::select! {
        output = work => {
            if elector.config.release_on_exit {
                elector.release().await;
            }
            Ok(output)
        }
        () = elector.keep_renewing() => {
            elector.record("stopped leading").await;
            Err(LeaderError::Lost {
                identity: elector.identity.clone(),
                namespace: elector.config.namespace.clone(),
                name: elector.config.name.clone(),
            })
        }
    }
}
// ANCHOR_END: run_when_leader

/// The checks of client-go's `NewLeaderElector`: the leader must stop renewing before its lease expires, and
/// retry more than once before it stops.
fn check(config: &LeaderConfig) -> Result<(), LeaderError> {
    if config.lease_duration < Duration::from_secs(1) {
        return Err(LeaderError::Config("leaseDuration must be at least one second".into()));
    }
    if config.lease_duration <= config.renew_deadline {
        return Err(LeaderError::Config("leaseDuration must be greater than renewDeadline".into()));
    }
    if config.renew_deadline.as_secs_f64() <= JITTER_FACTOR * config.retry_period.as_secs_f64() {
        return Err(LeaderError::Config(format!("renewDeadline must be greater than retryPeriod*{JITTER_FACTOR}")));
    }
    if config.retry_period.is_zero() {
        return Err(LeaderError::Config("retryPeriod must be greater than zero".into()));
    }
    Ok(())
}

/// `period` stretched by a random-ish factor in [1, 1 + JITTER_FACTOR], from the clock's nanoseconds (no `rand`
/// dependency for one number).
fn jittered(period: Duration) -> Duration {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().subsec_nanos();
    period.mul_f64(1.0 + JITTER_FACTOR * f64::from(nanos % 1000) / 1000.0)
}

/// A name for this process as a candidate: the host name and a number that differs between processes
/// (Kubernetes uses `<hostname>_<uuid>`).
pub fn default_identity() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    format!("{host}_{:x}{:x}", std::process::id(), nanos & 0xffff_ffff)
}

fn client_resource() -> Result<&'static resources::Resource, ClientError> {
    resources::by_kind("coordination.k8s.io/v1", "Lease")
        .ok_or_else(|| ClientError::Usage("kubelab does not serve coordination.k8s.io/v1 Lease".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + second).unwrap()
    }

    fn lease(holder: &str, renewed: i64, duration: i32, transitions: i32) -> Lease {
        Lease {
            spec: Some(LeaseSpec {
                holder_identity: Some(holder.into()).filter(|h: &String| !h.is_empty()),
                lease_duration_seconds: Some(duration),
                acquire_time: Some(MicroTime(at(0))),
                renew_time: Some(MicroTime(at(renewed))),
                lease_transitions: Some(transitions),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn taken(decision: Decision) -> LeaseSpec {
        match decision {
            Decision::Take(spec) => spec,
            other => panic!("expected to take the lease, got {other:?}"),
        }
    }

    #[test]
    fn a_missing_lease_is_created_with_us_as_holder() {
        let spec = taken(decide(None, "a", at(5), &LeaderConfig::default()));
        assert_eq!(spec.holder_identity.as_deref(), Some("a"));
        assert_eq!(spec.lease_duration_seconds, Some(15));
        assert_eq!((spec.acquire_time, spec.renew_time), (Some(MicroTime(at(5))), Some(MicroTime(at(5)))));
        assert_eq!(spec.lease_transitions, Some(0));
    }

    #[test]
    fn a_live_lease_held_by_another_makes_us_follow_until_it_expires() {
        let decision = decide(Some(&lease("b", 10, 15, 2)), "a", at(24), &LeaderConfig::default());
        assert_eq!(decision, Decision::Follow { holder: "b".into(), expires: at(25) });
    }

    #[test]
    fn an_expired_lease_is_taken_over_and_counts_a_transition() {
        let spec = taken(decide(Some(&lease("b", 10, 15, 2)), "a", at(25), &LeaderConfig::default()));
        assert_eq!(spec.holder_identity.as_deref(), Some("a"));
        assert_eq!(spec.acquire_time, Some(MicroTime(at(25))));
        assert_eq!(spec.lease_transitions, Some(3));
    }

    #[test]
    fn renewing_our_own_lease_keeps_the_acquire_time_and_the_count() {
        let spec = taken(decide(Some(&lease("a", 10, 15, 2)), "a", at(12), &LeaderConfig::default()));
        assert_eq!(spec.acquire_time, Some(MicroTime(at(0))));
        assert_eq!(spec.renew_time, Some(MicroTime(at(12))));
        assert_eq!(spec.lease_transitions, Some(2));
    }

    #[test]
    fn a_released_lease_is_free_at_once() {
        let released_lease = Lease { spec: Some(released(&lease("b", 10, 15, 2), at(11))), ..Default::default() };
        let spec = taken(decide(Some(&released_lease), "a", at(11), &LeaderConfig::default()));
        assert_eq!(spec.lease_transitions, Some(3));
    }

    #[test]
    fn timings_where_the_lease_could_expire_before_the_leader_gives_up_are_refused() {
        assert!(check(&LeaderConfig::default()).is_ok());
        let late = LeaderConfig { renew_deadline: Duration::from_secs(15), ..LeaderConfig::default() };
        assert!(matches!(check(&late), Err(LeaderError::Config(_))));
        let hasty = LeaderConfig { retry_period: Duration::from_secs(9), ..LeaderConfig::default() };
        assert!(matches!(check(&hasty), Err(LeaderError::Config(_))));
    }

    #[test]
    fn jitter_stays_within_client_gos_bounds() {
        let period = Duration::from_secs(2);
        let waited = jittered(period);
        assert!(waited >= period && waited <= period.mul_f64(1.0 + JITTER_FACTOR), "{waited:?}");
    }
}
