//! The etcd store: the cluster's state in etcd, laid out as Kubernetes lays it out.
//!
//! etcd is a small, replicated key-value store, and the only place where a Kubernetes cluster keeps its state.
//! Every other component (scheduler, controllers, kubelets) reads and writes through the apiserver, and the
//! apiserver is the only client of etcd. Four of etcd's features carry the whole API:
//!
//! - **Keys.** An object lives at `/registry/<resource>/<namespace>/<name>` (cluster-scoped objects leave out the
//!   namespace), its value the serialized object. Listing pods of a namespace is a range read of every key with the
//!   prefix `/registry/pods/<namespace>/`; all pods, of `/registry/pods/`. The trailing slash matters: without it,
//!   namespace `default` would also match `default-2`.
//! - **Revisions.** etcd numbers every change with one global, increasing revision and stamps each key with the
//!   revision of its last change (its *mod revision*). That number is the object's `resourceVersion`, and a
//!   list's `resourceVersion` is the revision the read saw.
//! - **Transactions.** A txn is "if these comparisons hold, do these operations, else those", atomically. Create
//!   is `if version(key) == 0 then put` (the key does not exist); update is `if mod_revision(key) == N then put`
//!   (nobody wrote since we read at N), which is optimistic concurrency: a stale writer gets `409 Conflict` and
//!   retries with a fresh read. Kubernetes never locks anything.
//! - **Watch.** Because etcd keeps the history of changes (until it is compacted), a client can ask for every
//!   change under a prefix *after* revision N, then for every future one, on one stream. A controller lists at
//!   revision N and watches from N: it misses nothing and sees nothing twice. Once the history before N has been
//!   compacted (the apiserver compacts every five minutes), such a watch fails and the client must list again:
//!   `410 Gone`.
//!
//! The store keeps one gRPC client. Its channel connects on first use and reconnects by itself, so the apiserver
//! needs no restart when etcd comes back, and may even start before etcd: in a real control plane the two start in
//! any order. While etcd is down, every request fails fast with [`StoreError::Unavailable`] (the apiserver answers
//! `503`) and open watches end with it (their clients watch again later); losing etcd and finding it again are
//! logged once each.
//!
//! What we leave out: TLS and authentication to etcd, the apiserver's periodic compaction (run etcd with
//! `--auto-compaction-retention`), leases for expiring keys, paginated lists at a past revision, watch progress
//! notifications, and the apiserver's watch cache, which serves most reads and watches from memory so that
//! thousands of clients do not each hold a watch on etcd.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, DeleteOptions, EventType, GetOptions, GetResponse, Txn, TxnOp,
    TxnOpResponse, TxnResponse, WatchOptions, WatchResponse,
};
use futures::StreamExt;

use super::{Event, KeyValue, Revision, Store, StoreError, WatchStream};

/// How often the client pings etcd on an idle connection, and how long it waits for the answer. A connection whose
/// peer vanished without closing it (a crashed host, a network partition) is noticed within these.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Timings of the etcd client. Kubernetes-like defaults; tests may shorten them.
#[derive(Debug, Clone)]
pub struct EtcdConfig {
    /// How long one request may take before we call etcd unavailable. Also bounds the wait for a new watch to be
    /// confirmed.
    pub request_timeout: Duration,
    /// How long to wait for a TCP connection to etcd. A refused connection fails at once; this covers a host that
    /// does not answer at all.
    pub connect_timeout: Duration,
}

impl Default for EtcdConfig {
    fn default() -> Self {
        EtcdConfig { request_timeout: Duration::from_secs(5), connect_timeout: Duration::from_secs(2) }
    }
}

/// A [`Store`] backed by an etcd cluster (etcd 3.4 or later), keys used exactly as given.
pub struct EtcdStore {
    /// The etcd endpoints, e.g. `http://127.0.0.1:2379`, kept to name them in errors and logs.
    endpoints: Vec<String>,
    config: EtcdConfig,
    /// The gRPC client. Its channel connects lazily and reconnects by itself after etcd comes back, so one client
    /// serves for the life of the store; each request works on a cheap clone.
    client: Client,
    /// Whether the last request reached etcd, so that we log when etcd goes away and comes back, not every failed
    /// request in between.
    reachable: AtomicBool,
}

impl EtcdStore {
    /// Connects to etcd at `endpoints` with the default [`EtcdConfig`].
    ///
    /// Fails only if the endpoints are malformed. If etcd is down, the store still starts, logs a warning, and
    /// answers [`StoreError::Unavailable`] until etcd is up.
    pub async fn connect(endpoints: &[String]) -> Result<Self, StoreError> {
        Self::connect_with(endpoints, EtcdConfig::default()).await
    }

    /// Like [`EtcdStore::connect`], with explicit timings.
    pub async fn connect_with(endpoints: &[String], config: EtcdConfig) -> Result<Self, StoreError> {
        if endpoints.is_empty() {
            return Err(StoreError::Internal("no etcd endpoints given".to_owned()));
        }
        // Building the client checks the endpoints' syntax without connecting: a typo stops the apiserver here,
        // instead of looking like an outage forever.
        let options = ConnectOptions::new()
            .with_connect_timeout(config.connect_timeout)
            .with_keep_alive(KEEP_ALIVE_INTERVAL, KEEP_ALIVE_TIMEOUT);
        let client = Client::connect(endpoints, Some(options))
            .await
            .map_err(|err| StoreError::Internal(format!("cannot use etcd endpoints {}: {err}", endpoints.join(","))))?;
        let store = EtcdStore { endpoints: endpoints.to_vec(), config, client, reachable: AtomicBool::new(false) };
        // One request to say in the log whether etcd is there. Made with `request`, not `call`: at startup there is
        // nothing to call "lost" or "reachable again".
        match store.request(read_revision).await.and_then(|response| header_revision(response.header())) {
            Ok(revision) => {
                store.reachable.store(true, Ordering::Relaxed);
                tracing::info!(endpoints = ?store.endpoints, revision, "connected to etcd");
            }
            Err(err) => {
                tracing::warn!(endpoints = ?store.endpoints, "etcd is not reachable yet; answering Unavailable until it is: {err}")
            }
        }
        Ok(store)
    }

    /// Runs one request (see [`EtcdStore::request`]) and logs when etcd goes away or comes back.
    async fn call<T, F, Fut>(&self, request: F) -> Result<T, StoreError>
    where
        F: FnOnce(Client) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        let outcome = self.request(request).await;
        match &outcome {
            Err(StoreError::Unavailable(reason)) => {
                if self.reachable.swap(false, Ordering::Relaxed) {
                    tracing::warn!("lost etcd: {reason}");
                }
            }
            _ => {
                if !self.reachable.swap(true, Ordering::Relaxed) {
                    tracing::info!(endpoints = ?self.endpoints, "etcd is reachable again");
                }
            }
        }
        outcome
    }

    /// Runs one request with a handle on the client, within the request timeout, and turns its failure into a
    /// [`StoreError`]. Every request goes through here, so every request is bounded and classified alike.
    async fn request<T, F, Fut>(&self, request: F) -> Result<T, StoreError>
    where
        F: FnOnce(Client) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        match tokio::time::timeout(self.config.request_timeout, request(self.client.clone())).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => Err(self.classify(err)),
            Err(_) => Err(self.unavailable(format!("no answer within {:?}", self.config.request_timeout))),
        }
    }

    /// Sorts etcd's errors into ours: connection trouble is `Unavailable`, anything else `Internal`.
    fn classify(&self, err: etcd_client::Error) -> StoreError {
        use etcd_client::Error as E;
        // gRPC status codes are numbered the same in every gRPC implementation.
        const CANCELLED: i32 = 1;
        const DEADLINE_EXCEEDED: i32 = 4;
        const UNAVAILABLE: i32 = 14;
        match &err {
            E::TransportError(_) | E::IoError(_) => self.unavailable(with_causes(&err)),
            // A status that carries a source error was made by our own gRPC client from a failed connection
            // ("transport error: broken pipe"); statuses sent by etcd never do.
            E::GRpcStatus(status)
                if matches!(i32::from(status.code()), UNAVAILABLE | DEADLINE_EXCEEDED | CANCELLED)
                    || std::error::Error::source(status).is_some() =>
            {
                self.unavailable(with_causes(status))
            }
            _ => StoreError::Internal(format!("etcd: {err}")),
        }
    }

    fn unavailable(&self, reason: String) -> StoreError {
        StoreError::Unavailable(format!("etcd at {} is unreachable: {reason}", self.endpoints.join(",")))
    }

    /// Runs a conditional transaction: `if compares { then } else { get key }`. When the comparison fails, the
    /// `else` branch tells us what the key holds, hence why it failed.
    async fn txn(&self, key: &str, compares: Vec<Compare>, then: TxnOp) -> Result<Outcome, StoreError> {
        let txn = Txn::new().when(compares).and_then([then]).or_else([TxnOp::get(key, None)]);
        let response = self.call(|mut client| async move { client.txn(txn).await }).await?;
        let revision = header_revision(response.header())?;
        if response.succeeded() {
            return Ok(Outcome::Done { revision, response });
        }
        let current = match response.op_responses().into_iter().next() {
            Some(TxnOpResponse::Get(get)) => get.kvs().first().map(|kv| kv.mod_revision()),
            _ => None,
        };
        Ok(match current {
            Some(mod_revision) => Outcome::Refused { found: mod_revision },
            None => Outcome::Missing,
        })
    }

    /// Whether etcd still has the history after `after`: reading at revision `after + 1` fails once it has been
    /// compacted. (etcd says "future revision" when nothing was written after `after` yet, which is fine.)
    async fn is_compacted(&self, prefix: &str, after: Revision) -> Result<bool, StoreError> {
        let options = GetOptions::new().with_prefix().with_revision(after + 1).with_count_only();
        let prefix = prefix.to_owned();
        match self.call(|mut client| async move { client.get(prefix, Some(options)).await }).await {
            Ok(_) => Ok(false),
            Err(StoreError::Internal(message)) if message.contains("required revision has been compacted") => Ok(true),
            Err(StoreError::Internal(message)) if message.contains("required revision is a future revision") => {
                Ok(false)
            }
            Err(err) => Err(err),
        }
    }
}

/// What a conditional transaction did.
enum Outcome {
    /// The comparison held and the operation ran at `revision`.
    Done { revision: Revision, response: TxnResponse },
    /// The key exists, at mod revision `found`, and the comparison failed.
    Refused { found: Revision },
    /// The key does not exist.
    Missing,
}

/// An error's message followed by those of its causes: "transport error: broken pipe" says more than
/// "transport error".
fn with_causes(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut cause = err.source();
    while let Some(err) = cause {
        message = format!("{message}: {err}");
        cause = err.source();
    }
    message
}

fn header_revision(header: Option<&etcd_client::ResponseHeader>) -> Result<Revision, StoreError> {
    header.map(|header| header.revision()).ok_or_else(|| StoreError::Internal("etcd answered without a header".into()))
}

fn to_key_value(kv: &etcd_client::KeyValue) -> Result<KeyValue, StoreError> {
    let key = kv.key_str().map_err(|err| StoreError::Internal(format!("etcd key is not UTF-8: {err}")))?;
    Ok(KeyValue { key: key.to_owned(), value: kv.value().to_vec(), mod_revision: kv.mod_revision() })
}

/// One etcd watch event as ours. etcd marks a deletion by a key with the deletion's revision and no value; what
/// the key held comes in `prev_kv`, which we ask for.
fn to_event(event: &etcd_client::Event) -> Result<Event, StoreError> {
    let kv = event.kv().ok_or_else(|| StoreError::Internal("etcd watch event without a key".into()))?;
    let prev = event.prev_kv().map(to_key_value).transpose()?;
    match event.event_type() {
        EventType::Put => Ok(Event::Put { kv: to_key_value(kv)?, prev }),
        EventType::Delete => match prev {
            Some(prev) => Ok(Event::Delete { prev, revision: kv.mod_revision() }),
            None => Err(StoreError::Internal(format!(
                "etcd reported the deletion of {} without its previous value",
                String::from_utf8_lossy(kv.key())
            ))),
        },
    }
}

#[async_trait::async_trait]
impl Store for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let key = key.to_owned();
        let response = self.call(|mut client| async move { client.get(key, None).await }).await?;
        response.kvs().first().map(to_key_value).transpose()
    }

    async fn list(&self, prefix: &str) -> Result<(Vec<KeyValue>, Revision), StoreError> {
        let prefix = prefix.to_owned();
        let options = GetOptions::new().with_prefix();
        let response = self.call(|mut client| async move { client.get(prefix, Some(options)).await }).await?;
        // etcd returns a range in key order.
        let items = response.kvs().iter().map(to_key_value).collect::<Result<_, _>>()?;
        Ok((items, header_revision(response.header())?))
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<Revision, StoreError> {
        let absent = Compare::version(key, CompareOp::Equal, 0);
        match self.txn(key, vec![absent], TxnOp::put(key, value, None)).await? {
            Outcome::Done { revision, .. } => Ok(revision),
            Outcome::Refused { .. } | Outcome::Missing => Err(StoreError::AlreadyExists(key.to_owned())),
        }
    }

    async fn update(&self, key: &str, value: Vec<u8>, expected: Revision) -> Result<Revision, StoreError> {
        // `version > 0` too: an absent key has mod revision 0, and updating "at revision 0" must not create it.
        let compares =
            vec![Compare::version(key, CompareOp::Greater, 0), Compare::mod_revision(key, CompareOp::Equal, expected)];
        match self.txn(key, compares, TxnOp::put(key, value, None)).await? {
            Outcome::Done { revision, .. } => Ok(revision),
            Outcome::Refused { found } => Err(StoreError::Conflict { key: key.to_owned(), expected, found }),
            Outcome::Missing => Err(StoreError::NotFound(key.to_owned())),
        }
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<(KeyValue, Revision), StoreError> {
        let mut compares = vec![Compare::version(key, CompareOp::Greater, 0)];
        if let Some(expected) = expected {
            compares.push(Compare::mod_revision(key, CompareOp::Equal, expected));
        }
        let delete = TxnOp::delete(key, Some(DeleteOptions::new().with_prev_key()));
        match self.txn(key, compares, delete).await? {
            Outcome::Done { revision, response } => {
                let prev = match response.op_responses().into_iter().next() {
                    Some(TxnOpResponse::Delete(deleted)) => deleted.prev_kvs().first().map(to_key_value).transpose()?,
                    _ => None,
                };
                let prev =
                    prev.ok_or_else(|| StoreError::Internal(format!("etcd deleted {key} but returned nothing")))?;
                Ok((prev, revision))
            }
            Outcome::Refused { found } => Err(StoreError::Conflict {
                key: key.to_owned(),
                // Only a conditional delete can be refused while the key exists.
                expected: expected.unwrap_or_default(),
                found,
            }),
            Outcome::Missing => Err(StoreError::NotFound(key.to_owned())),
        }
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StoreError> {
        let compacted = after > 0 && self.is_compacted(prefix, after).await?;
        let mut options = WatchOptions::new().with_prefix().with_prev_key();
        if after > 0 {
            options = options.with_start_revision(after + 1);
        }
        // With no start revision etcd watches from "now", the moment it registers the watch.
        let key = prefix.to_owned();
        let mut watch = self.call(|mut client| async move { client.watch(key, Some(options)).await }).await?;

        // Wait for etcd to confirm the watch: from then on no change can slip past it. If the history is gone,
        // etcd cancels the watch and says how far back it still reaches, which we report.
        let timeout = self.config.request_timeout;
        loop {
            let response = match tokio::time::timeout(timeout, watch.message()).await {
                Ok(Ok(Some(response))) => response,
                Ok(Ok(None)) => return Err(self.unavailable("etcd closed the watch as it opened".into())),
                Ok(Err(err)) => return Err(self.classify(err)),
                Err(_) if compacted => {
                    // etcd did not say where its history now starts; we only know that `after + 1` is not in it, so
                    // it starts at `after + 2` or later.
                    return Err(StoreError::Compacted { requested: after, oldest: after + 2 });
                }
                Err(_) => return Err(self.unavailable(format!("etcd did not confirm a watch within {timeout:?}"))),
            };
            if let Some(err) = cancellation(&response, after) {
                return Err(err);
            }
            if response.created() && !compacted {
                break;
            }
        }

        let follow = Follow { watch, pending: VecDeque::new(), seen: after, endpoints: self.endpoints.join(",") };
        let stream = futures::stream::unfold(Some(follow), |follow| async move {
            let mut follow = follow?;
            match follow.next().await {
                Ok(event) => Some((Ok(event), Some(follow))),
                // An error ends the stream: the caller must start a new watch (or list again).
                Err(err) => Some((Err(err), None)),
            }
        });
        Ok(stream.boxed())
    }

    async fn current_revision(&self) -> Result<Revision, StoreError> {
        let response = self.call(read_revision).await?;
        header_revision(response.header())
    }
}

/// The cheapest read there is, to learn etcd's revision: count the keys called "/". Every answer carries the
/// store's revision in its header.
async fn read_revision(mut client: Client) -> Result<GetResponse, etcd_client::Error> {
    client.get("/", Some(GetOptions::new().with_count_only())).await
}

/// Why etcd cancelled a watch, if it did: the history was compacted, or some other reason it gives.
fn cancellation(response: &WatchResponse, seen: Revision) -> Option<StoreError> {
    if response.compact_revision() != 0 {
        return Some(StoreError::Compacted { requested: seen, oldest: response.compact_revision() });
    }
    if response.canceled() {
        return Some(StoreError::Internal(format!("etcd cancelled the watch: {}", response.cancel_reason())));
    }
    None
}

/// The state of one watch: etcd's stream, and the events of its last message not yet handed out.
struct Follow {
    /// Kept whole (not split) because dropping its request half would tell etcd we are done.
    watch: etcd_client::WatchStream,
    /// etcd sends the events of a revision, or several, in one message; we hand them out one by one.
    pending: VecDeque<Event>,
    /// The revision of the last event handed out: where a new watch should resume.
    seen: Revision,
    /// For error messages.
    endpoints: String,
}

impl Follow {
    async fn next(&mut self) -> Result<Event, StoreError> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                self.seen = event.revision();
                return Ok(event);
            }
            let lost = |reason: String| {
                StoreError::Unavailable(format!("lost the watch on etcd at {}: {reason}", self.endpoints))
            };
            let response = match self.watch.message().await {
                Ok(Some(response)) => response,
                Ok(None) => return Err(lost("etcd closed the stream".into())),
                // Once a watch is established, any failure of its stream means the connection is gone.
                Err(err) => return Err(lost(with_causes(&err))),
            };
            if let Some(err) = cancellation(&response, self.seen) {
                return Err(err);
            }
            for event in response.events() {
                self.pending.push_back(to_event(event)?);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::etcd_server::EtcdServer;
    use crate::store::suite::{self, Fixture};

    /// A store on its own throwaway etcd, so that tests do not see each other's revisions.
    struct Etcd {
        store: EtcdStore,
        server: EtcdServer,
    }

    async fn fixture() -> Etcd {
        let server = EtcdServer::start().await.expect("start etcd");
        let store = EtcdStore::connect(&[server.endpoint()]).await.expect("connect");
        Etcd { store, server }
    }

    #[async_trait::async_trait]
    impl Fixture for Etcd {
        fn store(&self) -> &dyn Store {
            &self.store
        }

        async fn compact(&self, revision: Revision) {
            let mut raw = Client::connect([self.server.endpoint()], None).await.expect("raw client");
            raw.compact(revision, Some(etcd_client::CompactionOptions::new().with_physical())).await.expect("compact");
        }
    }

    suite::contract_tests!(fixture);

    #[tokio::test]
    async fn objects_live_in_etcd_under_their_own_key() {
        let etcd = fixture().await;
        let key = "/registry/deployments/default/web";
        let revision = etcd.store.create(key, b"{\"kind\":\"Deployment\"}".to_vec()).await.unwrap();

        let mut raw = Client::connect([etcd.server.endpoint()], None).await.unwrap();
        let response = raw.get(key, None).await.unwrap();
        let [kv] = response.kvs() else { panic!("expected exactly one key, got {:?}", response.kvs()) };
        assert_eq!(kv.key(), key.as_bytes());
        assert_eq!(kv.value(), b"{\"kind\":\"Deployment\"}");
        assert_eq!(kv.mod_revision(), revision);
    }

    #[tokio::test]
    async fn the_store_answers_unavailable_while_etcd_is_down_and_recovers_when_it_is_back() {
        let mut etcd = fixture().await;
        let revision = etcd.store.create("/registry/pods/default/a", b"v1".to_vec()).await.unwrap();
        let mut watch = etcd.store.watch("/registry/pods/", revision).await.unwrap();

        etcd.server.stop().unwrap();
        let err = etcd.store.get("/registry/pods/default/a").await.unwrap_err();
        assert!(matches!(&err, StoreError::Unavailable(message) if message.contains(&etcd.server.endpoint())), "{err}");
        let err = etcd.store.create("/registry/pods/default/b", b"v1".to_vec()).await.unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
        // The open watch ends with the same error: its client must watch again once etcd is back.
        let end = tokio::time::timeout(Duration::from_secs(10), watch.next()).await.expect("the watch notices");
        assert!(matches!(end, Some(Err(StoreError::Unavailable(_)))), "{end:?}");

        etcd.server.restart().await.unwrap();
        let kv = etcd.store.get("/registry/pods/default/a").await.unwrap().unwrap();
        assert_eq!(kv.mod_revision, revision, "etcd kept its data");
        let mut watch = etcd.store.watch("/registry/pods/", revision).await.unwrap();
        let b = etcd.store.create("/registry/pods/default/b", b"v1".to_vec()).await.unwrap();
        assert_eq!(suite::next_event(&mut watch).await.revision(), b);
    }

    #[tokio::test]
    async fn the_store_recovers_even_if_no_request_came_while_etcd_was_down() {
        let mut etcd = fixture().await;
        etcd.store.create("/registry/pods/default/a", b"v1".to_vec()).await.unwrap();
        etcd.server.restart().await.unwrap();
        assert!(etcd.store.get("/registry/pods/default/a").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn a_store_started_before_etcd_answers_unavailable_until_etcd_is_up() {
        let mut server = EtcdServer::start().await.unwrap();
        server.stop().unwrap();

        let store = EtcdStore::connect(&[server.endpoint()]).await.expect("connecting does not need etcd up");
        let err = store.current_revision().await.unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err}");

        server.restart().await.unwrap();
        assert_eq!(store.current_revision().await.unwrap(), 1);
        assert_eq!(store.create("/registry/pods/default/a", b"v1".to_vec()).await.unwrap(), 2);
    }

    #[tokio::test]
    async fn malformed_endpoints_are_refused_at_connect() {
        let err = EtcdStore::connect(&["http://[not a host".to_owned()]).await.err().unwrap();
        assert!(matches!(&err, StoreError::Internal(message) if message.contains("[not a host")), "{err}");
        let err = EtcdStore::connect(&[]).await.err().unwrap();
        assert!(matches!(err, StoreError::Internal(_)), "{err}");
    }
}
