//! The embedded store: etcd's semantics in one file on disk.
//!
//! `kubelab up` should run with nothing installed, so the apiserver can keep the cluster in a [redb] database
//! instead of etcd. redb gives us ACID transactions over sorted tables; on top of them we rebuild the two ideas of
//! etcd that Kubernetes relies on.
//!
//! **A revision counter.** The `meta` table holds one number, the store's revision. It starts at 1 in an empty
//! store. Every write runs in one redb write transaction that reads the counter, checks its condition against the
//! key (absent for a create, at the expected mod revision for an update or a delete), writes the key stamped with
//! `revision + 1`, and stores the new counter. Either all of that commits or none of it does, so revisions are
//! gap-free and each names exactly one change: the same promise etcd makes.
//!
//! **An event log.** etcd is a multi-version store: it keeps old versions of every key, so it can answer "what
//! changed after revision N?". We keep only the current version of each key (the `objects` table), and next to it a
//! log of changes keyed by revision (the `events` table), written in the same transaction as the change itself:
//!
//! | revision | key                       | value    | previous          |
//! |----------|---------------------------|----------|-------------------|
//! | 2        | `/registry/pods/default/a` | `{..v1}` | —                 |
//! | 3        | `/registry/pods/default/a` | `{..v2}` | `{..v1}` at 2     |
//! | 4        | `/registry/pods/default/a` | deleted  | `{..v2}` at 3     |
//!
//! A watch from revision N replays the log after N, then follows live changes, which committed writes announce on
//! a [`broadcast`] channel. The watch subscribes to the channel *before* reading the log, so a write that commits
//! in between shows up in both; it is passed on once, by revision. A watcher too slow for the channel catches up
//! from the log, as etcd's slow watchers do.
//!
//! **Compaction.** The log cannot grow forever. Like etcd's compaction (which the real apiserver requests every
//! five minutes), we forget events older than a bound, here the last [`EmbeddedConfig::history`] revisions. A
//! watch that starts before the oldest remembered event fails with [`StoreError::Compacted`]; the client must list
//! again, exactly what happens with etcd (`410 Gone` in the API).
//!
//! What we leave out: old versions of keys (etcd can read a key or a list *as of* a past revision), leases,
//! multi-key transactions, several processes sharing the file (redb locks it), and replication: one file on one
//! machine is one point of failure, which is why real clusters run three or five etcd members.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use futures::StreamExt;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::broadcast::{self, error::RecvError};

use super::{Event, KeyValue, Revision, Store, StoreError, WatchStream};

/// The current version of every key: key → (mod revision, value).
const OBJECTS: TableDefinition<&str, (i64, &[u8])> = TableDefinition::new("objects");

/// The event log: revision → one [`EventRow`].
const EVENTS: TableDefinition<i64, EventRow> = TableDefinition::new("events");

/// One change as stored in the log: the key, its new value (`None` for a deletion), and the previous
/// (mod revision, value) if the key existed. The revision is the row's key.
type EventRow<'a> = (&'a str, Option<&'a [u8]>, Option<(i64, &'a [u8])>);

/// The store's counters, under the names below.
const META: TableDefinition<&str, i64> = TableDefinition::new("meta");

/// The revision of the last write (1 in an empty store, as in etcd).
const REVISION: &str = "revision";

/// The oldest revision whose event the log still holds: a watch may start after `COMPACTED - 1` at the earliest.
/// etcd calls this the compact revision.
const COMPACTED: &str = "compacted";

/// Tunables of the embedded store. The defaults suit a small cluster; tests shrink them.
#[derive(Debug, Clone)]
pub struct EmbeddedConfig {
    /// How many revisions of history the event log keeps for watches. A client that falls further behind (an
    /// informer offline for a while) must list again. 10 000 writes is minutes of a busy small cluster.
    pub history: i64,
    /// How many live events a watch may have queued before it falls back to reading the log. A bigger buffer
    /// costs memory; a smaller one costs reads of the log for slow watchers.
    pub watch_buffer: usize,
}

impl Default for EmbeddedConfig {
    fn default() -> Self {
        EmbeddedConfig { history: 10_000, watch_buffer: 1024 }
    }
}

/// A [`Store`] in a single redb file, with etcd's revisions, conditional writes and watches.
///
/// Cloning is cheap and shares the database.
#[derive(Clone)]
pub struct EmbeddedStore {
    inner: Arc<Inner>,
}

/// What every clone of the store and every watch shares.
struct Inner {
    db: Database,
    config: EmbeddedConfig,
    /// Writers take turns through this lock, holding it from the start of their transaction until their event is
    /// broadcast. redb already runs one write transaction at a time, but without the lock two writers could
    /// announce their events in the opposite order from the one they committed in, and watchers need revision
    /// order. A std mutex, not Tokio's: it is only taken on blocking threads, never across an `.await`.
    writer: Mutex<()>,
    /// Announces every committed change to the live watches. `Arc` so each watcher's copy is a pointer, not the
    /// object's bytes.
    live: broadcast::Sender<Arc<Event>>,
}

/// The write a caller asked for, before we know whether it may happen.
#[derive(Debug)]
enum Write {
    Create { value: Vec<u8> },
    Update { value: Vec<u8>, expected: Revision },
    Delete { expected: Option<Revision> },
}

impl EmbeddedStore {
    /// Opens the store in the file at `path`, creating the file and its parent directories if needed.
    ///
    /// Blocks while redb opens the file (and repairs it after a crash); call it once, at startup.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(path, EmbeddedConfig::default())
    }

    /// Like [`EmbeddedStore::open`], with non-default history and buffer sizes.
    pub fn open_with(path: &Path, config: EmbeddedConfig) -> Result<Self, StoreError> {
        if config.history < 1 || config.watch_buffer < 1 {
            return Err(StoreError::Internal(format!(
                "the embedded store needs history and buffer sizes of at least 1, not {config:?}"
            )));
        }
        let db =
            create_database(path).map_err(|err| StoreError::Internal(format!("opening {}: {err}", path.display())))?;
        let (live, _) = broadcast::channel(config.watch_buffer);
        Ok(EmbeddedStore { inner: Arc::new(Inner { db, config, writer: Mutex::new(()), live }) })
    }

    /// Forgets the event log before `revision` (at most the current revision), like etcd's `Compact` call.
    ///
    /// The store compacts by itself to keep [`EmbeddedConfig::history`] revisions; this is the same step on demand,
    /// for tests and for parity with the etcd store, where compaction is a call the apiserver makes.
    pub async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        self.blocking(move |inner| {
            let _turn = inner.writer.lock().unwrap_or_else(PoisonError::into_inner);
            let txn = inner.db.begin_write().map_err(db_error)?;
            {
                let mut meta = txn.open_table(META).map_err(db_error)?;
                let mut events = txn.open_table(EVENTS).map_err(db_error)?;
                let current = counter(&meta, REVISION)?;
                compact(&mut meta, &mut events, revision.min(current))?;
            }
            txn.commit().map_err(db_error)
        })
        .await
    }

    /// Runs redb's blocking calls on Tokio's blocking thread pool, so they never stall the async workers.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Inner) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || work(&inner))
            .await
            .map_err(|err| StoreError::Internal(format!("embedded store task failed: {err}")))?
    }

    /// Performs one write in one transaction and announces it to the watches.
    async fn write(&self, key: &str, write: Write) -> Result<Event, StoreError> {
        let key = key.to_owned();
        self.blocking(move |inner| {
            let _turn = inner.writer.lock().unwrap_or_else(PoisonError::into_inner);
            let txn = inner.db.begin_write().map_err(db_error)?;
            let event = {
                let mut meta = txn.open_table(META).map_err(db_error)?;
                let mut objects = txn.open_table(OBJECTS).map_err(db_error)?;
                let mut events = txn.open_table(EVENTS).map_err(db_error)?;

                // 1. Decide, from what the key holds now, whether the write may happen and what it changes.
                let revision = counter(&meta, REVISION)? + 1;
                let current = objects.get(key.as_str()).map_err(db_error)?.map(|row| to_key_value(&key, row.value()));
                let event = decide(&key, current, write, revision)?;

                // 2. Apply it: the key, the log, the counter.
                let applied = match &event {
                    Event::Put { kv, .. } => objects.insert(key.as_str(), (revision, kv.value.as_slice())),
                    Event::Delete { .. } => objects.remove(key.as_str()),
                };
                applied.map_err(db_error)?;
                events.insert(revision, to_row(&event)).map_err(db_error)?;
                meta.insert(REVISION, revision).map_err(db_error)?;

                // 3. Keep the log within its bound.
                compact(&mut meta, &mut events, revision - inner.config.history + 1)?;
                event
            };
            txn.commit().map_err(db_error)?;
            // Sending fails only when no watch is listening, which is fine.
            let _ = inner.live.send(Arc::new(event.clone()));
            Ok(event)
        })
        .await
    }
}

/// Opens or creates the database file, and creates the tables and counters once, so that readers never meet a
/// missing table.
fn create_database(path: &Path) -> Result<Database, redb::Error> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let db = Database::create(path)?;
    let txn = db.begin_write()?;
    {
        txn.open_table(OBJECTS)?;
        txn.open_table(EVENTS)?;
        let mut meta = txn.open_table(META)?;
        for counter in [REVISION, COMPACTED] {
            if meta.get(counter)?.is_none() {
                meta.insert(counter, 1)?;
            }
        }
    }
    txn.commit()?;
    Ok(db)
}

/// The rules of a conditional write, as a pure function: given what `key` holds now and the write asked for,
/// the change to make at `revision`, or why not.
fn decide(key: &str, current: Option<KeyValue>, write: Write, revision: Revision) -> Result<Event, StoreError> {
    let stamped = |value: Vec<u8>| KeyValue { key: key.to_owned(), value, mod_revision: revision };
    match (write, current) {
        (Write::Create { value }, None) => Ok(Event::Put { kv: stamped(value), prev: None }),
        (Write::Create { .. }, Some(_)) => Err(StoreError::AlreadyExists(key.to_owned())),
        (Write::Update { .. } | Write::Delete { .. }, None) => Err(StoreError::NotFound(key.to_owned())),
        (Write::Update { expected, .. } | Write::Delete { expected: Some(expected) }, Some(prev))
            if prev.mod_revision != expected =>
        {
            Err(StoreError::Conflict { key: key.to_owned(), expected, found: prev.mod_revision })
        }
        (Write::Update { value, .. }, Some(prev)) => Ok(Event::Put { kv: stamped(value), prev: Some(prev) }),
        (Write::Delete { .. }, Some(prev)) => Ok(Event::Delete { prev, revision }),
    }
}

/// Drops the log's events before `oldest` and remembers that it did. Never moves backwards.
fn compact(
    meta: &mut redb::Table<'_, &'static str, i64>,
    events: &mut redb::Table<'_, i64, EventRow<'static>>,
    oldest: Revision,
) -> Result<(), StoreError> {
    if oldest <= counter(meta, COMPACTED)? {
        return Ok(());
    }
    events.retain_in(..oldest, |_, _| false).map_err(db_error)?;
    meta.insert(COMPACTED, oldest).map_err(db_error)?;
    Ok(())
}

/// Reads one of the counters in `meta`, which `create_database` created.
fn counter(meta: &impl ReadableTable<&'static str, i64>, name: &str) -> Result<i64, StoreError> {
    match meta.get(name).map_err(db_error)? {
        Some(value) => Ok(value.value()),
        None => Err(StoreError::Internal(format!("the embedded store has lost its {name} counter"))),
    }
}

/// The log entries of keys under `prefix` with revisions after `after`, and the store revision they go up to.
///
/// `after == 0` means "from now": no entries. Fails with `Compacted` if the log no longer reaches back to `after`.
fn read_log(inner: &Inner, prefix: &str, after: Revision) -> Result<(Vec<Event>, Revision), StoreError> {
    let txn = inner.db.begin_read().map_err(db_error)?;
    let meta = txn.open_table(META).map_err(db_error)?;
    let current = counter(&meta, REVISION)?;
    if after == 0 {
        return Ok((Vec::new(), current));
    }
    let oldest = counter(&meta, COMPACTED)?;
    if after + 1 < oldest {
        return Err(StoreError::Compacted { requested: after, oldest });
    }
    let events = txn.open_table(EVENTS).map_err(db_error)?;
    let mut found = Vec::new();
    for entry in events.range(after + 1..).map_err(db_error)? {
        let (revision, row) = entry.map_err(db_error)?;
        let row = row.value();
        if row.0.starts_with(prefix) {
            found.push(from_row(revision.value(), row)?);
        }
    }
    Ok((found, current))
}

/// The key an event is about.
fn event_key(event: &Event) -> &str {
    match event {
        Event::Put { kv, .. } => &kv.key,
        Event::Delete { prev, .. } => &prev.key,
    }
}

fn to_key_value(key: &str, (mod_revision, value): (i64, &[u8])) -> KeyValue {
    KeyValue { key: key.to_owned(), value: value.to_vec(), mod_revision }
}

fn to_row(event: &Event) -> EventRow<'_> {
    match event {
        Event::Put { kv, prev } => {
            let prev = prev.as_ref().map(|prev| (prev.mod_revision, prev.value.as_slice()));
            (kv.key.as_str(), Some(kv.value.as_slice()), prev)
        }
        Event::Delete { prev, .. } => (prev.key.as_str(), None, Some((prev.mod_revision, prev.value.as_slice()))),
    }
}

fn from_row(revision: Revision, (key, value, prev): EventRow) -> Result<Event, StoreError> {
    let prev = prev.map(|prev| to_key_value(key, prev));
    match (value, prev) {
        (Some(value), prev) => Ok(Event::Put { kv: to_key_value(key, (revision, value)), prev }),
        (None, Some(prev)) => Ok(Event::Delete { prev, revision }),
        (None, None) => Err(StoreError::Internal(format!("corrupt event log: deletion of {key} without a value"))),
    }
}

/// Every redb failure is ours to report, not the caller's to fix.
fn db_error(err: impl Into<redb::Error>) -> StoreError {
    StoreError::Internal(format!("embedded store: {}", err.into()))
}

#[async_trait::async_trait]
impl Store for EmbeddedStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let key = key.to_owned();
        self.blocking(move |inner| {
            let txn = inner.db.begin_read().map_err(db_error)?;
            let objects = txn.open_table(OBJECTS).map_err(db_error)?;
            Ok(objects.get(key.as_str()).map_err(db_error)?.map(|row| to_key_value(&key, row.value())))
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<(Vec<KeyValue>, Revision), StoreError> {
        let prefix = prefix.to_owned();
        self.blocking(move |inner| {
            // One read transaction: the objects and the revision come from the same snapshot.
            let txn = inner.db.begin_read().map_err(db_error)?;
            let revision = counter(&txn.open_table(META).map_err(db_error)?, REVISION)?;
            let objects = txn.open_table(OBJECTS).map_err(db_error)?;
            let mut found = Vec::new();
            // Keys are sorted, so the keys under `prefix` are one run starting at `prefix` itself.
            for entry in objects.range(prefix.as_str()..).map_err(db_error)? {
                let (key, row) = entry.map_err(db_error)?;
                if !key.value().starts_with(prefix.as_str()) {
                    break;
                }
                found.push(to_key_value(key.value(), row.value()));
            }
            Ok((found, revision))
        })
        .await
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<Revision, StoreError> {
        Ok(self.write(key, Write::Create { value }).await?.revision())
    }

    async fn update(&self, key: &str, value: Vec<u8>, expected: Revision) -> Result<Revision, StoreError> {
        Ok(self.write(key, Write::Update { value, expected }).await?.revision())
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<(KeyValue, Revision), StoreError> {
        match self.write(key, Write::Delete { expected }).await? {
            Event::Delete { prev, revision } => Ok((prev, revision)),
            Event::Put { .. } => Err(StoreError::Internal("a deletion produced a put".to_owned())),
        }
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StoreError> {
        // Subscribe first, then read the log: whatever commits in between is in both, and `seen` drops the copy.
        let live = self.inner.live.subscribe();
        let owned_prefix = prefix.to_owned();
        let (backlog, current) = self.blocking(move |inner| read_log(inner, &owned_prefix, after)).await?;
        let watch = Watch {
            store: self.clone(),
            prefix: prefix.to_owned(),
            backlog: backlog.into(),
            seen: current.max(after),
            live,
        };
        let stream = futures::stream::unfold(Some(watch), |watch| async move {
            let mut watch = watch?;
            match watch.next().await? {
                Ok(event) => Some((Ok(event), Some(watch))),
                // An error ends the stream: the caller must start a new watch (or list again).
                Err(err) => Some((Err(err), None)),
            }
        });
        Ok(stream.boxed())
    }

    async fn current_revision(&self) -> Result<Revision, StoreError> {
        self.blocking(|inner| {
            let txn = inner.db.begin_read().map_err(db_error)?;
            counter(&txn.open_table(META).map_err(db_error)?, REVISION)
        })
        .await
    }
}

/// The state of one watch: replay the log, then follow the live channel.
struct Watch {
    store: EmbeddedStore,
    prefix: String,
    /// Events read from the log and not yet handed out.
    backlog: VecDeque<Event>,
    /// Every change up to this revision has been handed out (or was not under `prefix`). Live events at or below
    /// it are copies of what the log already gave us.
    seen: Revision,
    live: broadcast::Receiver<Arc<Event>>,
}

impl Watch {
    /// The next change under the prefix; `None` when the store is gone.
    async fn next(&mut self) -> Option<Result<Event, StoreError>> {
        loop {
            if let Some(event) = self.backlog.pop_front() {
                return Some(Ok(event));
            }
            match self.live.recv().await {
                Ok(event) if event.revision() <= self.seen => continue,
                Ok(event) => {
                    self.seen = event.revision();
                    if event_key(&event).starts_with(&self.prefix) {
                        return Some(Ok(Event::clone(&event)));
                    }
                }
                // We were too slow and the channel dropped events for us. They are in the log: catch up from there
                // (or fail with `Compacted` if even the log has forgotten them).
                Err(RecvError::Lagged(_)) => {
                    let (prefix, seen) = (self.prefix.clone(), self.seen);
                    match self.store.blocking(move |inner| read_log(inner, &prefix, seen)).await {
                        Ok((missed, current)) => {
                            self.backlog.extend(missed);
                            self.seen = current.max(seen);
                        }
                        Err(err) => return Some(Err(err)),
                    }
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::suite::{self, Fixture};

    /// An embedded store in a temporary directory, deleted when the fixture is dropped.
    struct Embedded {
        store: EmbeddedStore,
        _dir: tempfile::TempDir,
    }

    async fn fixture() -> Embedded {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = EmbeddedStore::open(&dir.path().join("state/kubelab.redb")).expect("open the store");
        Embedded { store, _dir: dir }
    }

    #[async_trait::async_trait]
    impl Fixture for Embedded {
        fn store(&self) -> &dyn Store {
            &self.store
        }

        async fn compact(&self, revision: Revision) {
            self.store.compact(revision).await.expect("compact");
        }
    }

    suite::contract_tests!(fixture);

    fn value(text: &str) -> Vec<u8> {
        text.as_bytes().to_vec()
    }

    #[tokio::test]
    async fn objects_and_the_revision_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kubelab.redb");
        let store = EmbeddedStore::open(&path).unwrap();
        let created = store.create("/registry/pods/default/a", value("v1")).await.unwrap();
        let updated = store.update("/registry/pods/default/a", value("v2"), created).await.unwrap();
        drop(store);

        let store = EmbeddedStore::open(&path).unwrap();
        assert_eq!(store.current_revision().await.unwrap(), updated);
        let kv = store.get("/registry/pods/default/a").await.unwrap().unwrap();
        assert_eq!((kv.value, kv.mod_revision), (value("v2"), updated));
        assert_eq!(store.create("/registry/pods/default/b", value("v1")).await.unwrap(), updated + 1);

        // The event log survived too: a watch can replay what happened before the restart.
        let mut watch = store.watch("/registry/pods/", created).await.unwrap();
        assert_eq!(suite::next_event(&mut watch).await.revision(), updated);
        assert_eq!(suite::next_event(&mut watch).await.revision(), updated + 1);
    }

    #[tokio::test]
    async fn the_log_keeps_only_the_configured_number_of_revisions() {
        let dir = tempfile::tempdir().unwrap();
        let config = EmbeddedConfig { history: 3, ..EmbeddedConfig::default() };
        let store = EmbeddedStore::open_with(&dir.path().join("kubelab.redb"), config).unwrap();
        let mut revisions = Vec::new();
        for name in ["a", "b", "c", "d", "e"] {
            revisions.push(store.create(&format!("/registry/pods/default/{name}"), value("v")).await.unwrap());
        }
        // Revisions 2..=6 were written; the log keeps the last three: 4, 5 and 6.
        assert_eq!(revisions, [2, 3, 4, 5, 6]);
        let err = store.watch("/registry/pods/", 2).await.err().unwrap();
        assert_eq!(err, StoreError::Compacted { requested: 2, oldest: 4 });

        let mut watch = store.watch("/registry/pods/", 3).await.unwrap();
        for expected in [4, 5, 6] {
            assert_eq!(suite::next_event(&mut watch).await.revision(), expected);
        }
        suite::assert_no_event(&mut watch).await;
    }

    #[tokio::test]
    async fn a_watcher_that_falls_behind_the_channel_catches_up_from_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let config = EmbeddedConfig { watch_buffer: 2, ..EmbeddedConfig::default() };
        let store = EmbeddedStore::open_with(&dir.path().join("kubelab.redb"), config).unwrap();
        let mut watch = store.watch("/registry/pods/", 0).await.unwrap();
        let mut written = Vec::new();
        for i in 0..20 {
            written.push(store.create(&format!("/registry/pods/default/p{i:02}"), value("v")).await.unwrap());
        }
        let mut received = Vec::new();
        for _ in 0..20 {
            received.push(suite::next_event(&mut watch).await.revision());
        }
        assert_eq!(received, written);
        suite::assert_no_event(&mut watch).await;
    }

    #[tokio::test]
    async fn a_watcher_that_falls_behind_the_log_too_ends_with_compacted() {
        let dir = tempfile::tempdir().unwrap();
        let config = EmbeddedConfig { history: 3, watch_buffer: 2 };
        let store = EmbeddedStore::open_with(&dir.path().join("kubelab.redb"), config).unwrap();
        let mut watch = store.watch("/registry/pods/", 0).await.unwrap();
        for i in 0..10 {
            store.create(&format!("/registry/pods/default/p{i}"), value("v")).await.unwrap();
        }
        // The channel still holds the last two events, but the first eight are gone from both channel and log:
        // the watch must not skip them silently.
        let end = watch.next().await.expect("an error, not the end of the stream");
        assert!(matches!(end, Err(StoreError::Compacted { requested: 1, .. })), "{end:?}");
        assert!(watch.next().await.is_none(), "the stream ends after the error");
    }

    #[test]
    fn decide_explains_every_refusal() {
        let current = || Some(KeyValue { key: "k".into(), value: value("v"), mod_revision: 5 });
        assert_eq!(
            decide("k", current(), Write::Create { value: value("x") }, 9),
            Err(StoreError::AlreadyExists("k".into()))
        );
        assert_eq!(
            decide("k", None, Write::Update { value: value("x"), expected: 5 }, 9),
            Err(StoreError::NotFound("k".into()))
        );
        assert_eq!(
            decide("k", current(), Write::Delete { expected: Some(4) }, 9),
            Err(StoreError::Conflict { key: "k".into(), expected: 4, found: 5 })
        );
        assert_eq!(
            decide("k", current(), Write::Delete { expected: None }, 9),
            Ok(Event::Delete { prev: current().unwrap(), revision: 9 })
        );
    }

    #[test]
    fn opening_a_file_that_is_already_open_fails_with_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kubelab.redb");
        let _first = EmbeddedStore::open(&path).unwrap();
        let err = EmbeddedStore::open(&path).err().unwrap();
        assert!(err.to_string().contains("kubelab.redb"), "{err}");
    }
}
