//! The store contract as tests: every [`Store`] must pass every function here.
//!
//! Each function is one promise of the contract, written against `&dyn Store` so that it cannot depend on how a
//! store keeps its data. A store's own test module runs all of them with one line,
//! `suite::contract_tests!(fixture)`, where `fixture` is an async function returning a fresh [`Fixture`]: a new,
//! empty store (a temporary file, a throwaway etcd) that is cleaned up when dropped.
//!
//! The functions assume an empty store, and only use keys under `/registry/`.

use std::time::Duration;

use futures::StreamExt;

use super::{Event, KeyValue, Revision, Store, StoreError, WatchStream};

/// A fresh, empty store for one test, and the one thing the contract cannot ask through [`Store`]: compaction.
#[async_trait::async_trait]
pub trait Fixture: Send + Sync {
    /// The store under test.
    fn store(&self) -> &dyn Store;

    /// Forgets the history before `revision`, the way this store does it (etcd's `Compact`).
    async fn compact(&self, revision: Revision);
}

/// Generates one `#[tokio::test]` per contract function in the calling module, each on a fresh fixture.
///
/// `$fixture` is the path of an async function returning a [`Fixture`].
macro_rules! contract_tests {
    ($fixture:path) => {
        $crate::store::suite::contract_tests!(@store $fixture;
            a_fresh_store_is_at_revision_1_and_the_first_write_gets_2,
            created_key_reads_back_with_its_revision,
            creating_a_key_twice_fails_with_already_exists,
            update_with_the_current_revision_succeeds_and_a_stale_one_conflicts,
            update_or_delete_of_a_missing_key_is_not_found,
            delete_with_a_stale_revision_conflicts_and_keeps_the_key,
            delete_returns_what_the_key_held_and_the_revision_of_the_deletion,
            list_by_prefix_does_not_match_sibling_prefixes_and_reports_the_revision,
            revisions_strictly_increase_with_every_write,
            watch_from_a_revision_replays_exactly_the_later_events_then_follows_live_ones,
            watch_from_zero_sees_only_new_events,
        );

        #[tokio::test]
        async fn watch_from_a_compacted_revision_fails_with_compacted() {
            let fixture = $fixture().await;
            $crate::store::suite::watch_from_a_compacted_revision_fails_with_compacted(&fixture).await;
        }
    };
    (@store $fixture:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let fixture = $fixture().await;
                $crate::store::suite::$name($crate::store::suite::Fixture::store(&fixture)).await;
            }
        )*
    };
}
pub(crate) use contract_tests;

/// How long a test waits for an event before calling it missing.
const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a test listens to conclude that no further event is coming.
const QUIET_PERIOD: Duration = Duration::from_millis(300);

const POD_A: &str = "/registry/pods/default/a";
const POD_B: &str = "/registry/pods/default/b";
/// Same namespace name with a suffix: a prefix scan of `default/` must not reach it.
const SIBLING_POD: &str = "/registry/pods/default-2/a";

fn value(text: &str) -> Vec<u8> {
    text.as_bytes().to_vec()
}

fn kv(key: &str, text: &str, mod_revision: Revision) -> KeyValue {
    KeyValue { key: key.to_owned(), value: value(text), mod_revision }
}

/// The next event of a watch; panics on an error, the end of the stream, or silence.
pub async fn next_event(watch: &mut WatchStream) -> Event {
    match tokio::time::timeout(EVENT_TIMEOUT, watch.next()).await {
        Ok(Some(Ok(event))) => event,
        Ok(Some(Err(err))) => panic!("the watch failed: {err}"),
        Ok(None) => panic!("the watch ended"),
        Err(_) => panic!("no event within {EVENT_TIMEOUT:?}"),
    }
}

/// Panics if the watch yields anything during a short quiet period.
pub async fn assert_no_event(watch: &mut WatchStream) {
    if let Ok(item) = tokio::time::timeout(QUIET_PERIOD, watch.next()).await {
        panic!("expected no event, got {item:?}");
    }
}

/// Both stores count like etcd, so resource versions look the same whichever store a cluster runs on.
pub async fn a_fresh_store_is_at_revision_1_and_the_first_write_gets_2(store: &dyn Store) {
    assert_eq!(store.current_revision().await.unwrap(), 1);
    assert_eq!(store.create(POD_A, value("v1")).await.unwrap(), 2);
    assert_eq!(store.current_revision().await.unwrap(), 2);
}

/// The mod revision read back is what the apiserver reports as `resourceVersion`.
pub async fn created_key_reads_back_with_its_revision(store: &dyn Store) {
    assert_eq!(store.get(POD_A).await.unwrap(), None);
    let revision = store.create(POD_A, value("v1")).await.unwrap();
    assert_eq!(store.get(POD_A).await.unwrap(), Some(kv(POD_A, "v1", revision)));
}

/// Two clients creating the same name must not overwrite each other: the second gets `409 AlreadyExists`.
pub async fn creating_a_key_twice_fails_with_already_exists(store: &dyn Store) {
    let revision = store.create(POD_A, value("v1")).await.unwrap();
    assert_eq!(store.create(POD_A, value("v2")).await, Err(StoreError::AlreadyExists(POD_A.to_owned())));
    assert_eq!(store.get(POD_A).await.unwrap(), Some(kv(POD_A, "v1", revision)), "the first value stays");
}

/// Optimistic concurrency: a writer that read an old version loses (`409 Conflict`) instead of erasing a newer one.
pub async fn update_with_the_current_revision_succeeds_and_a_stale_one_conflicts(store: &dyn Store) {
    let created = store.create(POD_A, value("v1")).await.unwrap();
    let updated = store.update(POD_A, value("v2"), created).await.unwrap();
    assert!(updated > created);
    assert_eq!(store.get(POD_A).await.unwrap(), Some(kv(POD_A, "v2", updated)));

    // A second writer that read the key at `created` has lost the race.
    let stale = store.update(POD_A, value("v3"), created).await;
    assert_eq!(stale, Err(StoreError::Conflict { key: POD_A.to_owned(), expected: created, found: updated }));
    assert_eq!(store.get(POD_A).await.unwrap(), Some(kv(POD_A, "v2", updated)));
}

/// Writes to a missing key fail as `404`, and a failed write leaves no trace in the revision.
pub async fn update_or_delete_of_a_missing_key_is_not_found(store: &dyn Store) {
    let missing = StoreError::NotFound(POD_A.to_owned());
    assert_eq!(store.update(POD_A, value("v1"), 1).await, Err(missing.clone()));
    assert_eq!(store.delete(POD_A, None).await, Err(missing.clone()));
    assert_eq!(store.delete(POD_A, Some(1)).await, Err(missing));
    assert_eq!(store.current_revision().await.unwrap(), 1, "failed writes do not move the revision");
}

/// A delete with a precondition (`DeleteOptions.preconditions.resourceVersion`) is refused once the object moved on.
pub async fn delete_with_a_stale_revision_conflicts_and_keeps_the_key(store: &dyn Store) {
    let created = store.create(POD_A, value("v1")).await.unwrap();
    let updated = store.update(POD_A, value("v2"), created).await.unwrap();
    let stale = store.delete(POD_A, Some(created)).await;
    assert_eq!(stale, Err(StoreError::Conflict { key: POD_A.to_owned(), expected: created, found: updated }));
    assert_eq!(store.get(POD_A).await.unwrap(), Some(kv(POD_A, "v2", updated)));
}

/// The apiserver answers a delete with the deleted object, and watchers see the deletion at its own revision.
pub async fn delete_returns_what_the_key_held_and_the_revision_of_the_deletion(store: &dyn Store) {
    let a = store.create(POD_A, value("a")).await.unwrap();
    let b = store.create(POD_B, value("b")).await.unwrap();

    let (prev, deleted_a) = store.delete(POD_A, Some(a)).await.unwrap();
    assert_eq!(prev, kv(POD_A, "a", a));
    assert_eq!(deleted_a, b + 1);
    assert_eq!(store.current_revision().await.unwrap(), deleted_a);

    // Without an expected revision the deletion is unconditional.
    let (prev, deleted_b) = store.delete(POD_B, None).await.unwrap();
    assert_eq!((prev, deleted_b), (kv(POD_B, "b", b), deleted_a + 1));
    assert_eq!(store.get(POD_A).await.unwrap(), None);
    assert_eq!(store.get(POD_B).await.unwrap(), None);
}

/// A list of one namespace must not leak another whose name starts the same, and its revision is where a watch
/// resumes.
pub async fn list_by_prefix_does_not_match_sibling_prefixes_and_reports_the_revision(store: &dyn Store) {
    // Created out of order, listed in key order.
    let b = store.create(POD_B, value("b")).await.unwrap();
    let a = store.create(POD_A, value("a")).await.unwrap();
    let sibling = store.create(SIBLING_POD, value("s")).await.unwrap();
    store.create("/registry/services/default/a", value("svc")).await.unwrap();

    let (items, revision) = store.list("/registry/pods/default/").await.unwrap();
    assert_eq!(items, [kv(POD_A, "a", a), kv(POD_B, "b", b)]);
    assert_eq!(revision, store.current_revision().await.unwrap());

    let (items, _) = store.list("/registry/pods/").await.unwrap();
    assert_eq!(items, [kv(SIBLING_POD, "s", sibling), kv(POD_A, "a", a), kv(POD_B, "b", b)]);

    let (items, revision_now) = store.list("/registry/pods/nothing-here/").await.unwrap();
    assert_eq!((items, revision_now), (Vec::new(), revision), "an empty list still reports the revision");
}

/// One write, one revision: watchers resume "after N" and must never see two changes share a number.
pub async fn revisions_strictly_increase_with_every_write(store: &dyn Store) {
    let r1 = store.create(POD_A, value("v1")).await.unwrap();
    let r2 = store.update(POD_A, value("v2"), r1).await.unwrap();
    let r3 = store.create(POD_B, value("v1")).await.unwrap();
    let (_, r4) = store.delete(POD_A, Some(r2)).await.unwrap();
    let r5 = store.create(POD_A, value("again")).await.unwrap();
    assert_eq!([r2, r3, r4, r5], [r1 + 1, r1 + 2, r1 + 3, r1 + 4], "each write moves the revision by one");
    assert_eq!(store.current_revision().await.unwrap(), r5);
}

/// List-then-watch: a client that listed at revision N and watches from N misses nothing and sees nothing twice.
pub async fn watch_from_a_revision_replays_exactly_the_later_events_then_follows_live_ones(store: &dyn Store) {
    let created = store.create(POD_A, value("v1")).await.unwrap();
    // The watch starts after this point: everything below must be replayed, and nothing above.
    let updated = store.update(POD_A, value("v2"), created).await.unwrap();
    let b = store.create(POD_B, value("b")).await.unwrap();
    store.create(SIBLING_POD, value("not under the prefix")).await.unwrap();
    let (_, deleted) = store.delete(POD_A, Some(updated)).await.unwrap();

    let mut watch = store.watch("/registry/pods/default/", created).await.unwrap();
    assert_eq!(
        next_event(&mut watch).await,
        Event::Put { kv: kv(POD_A, "v2", updated), prev: Some(kv(POD_A, "v1", created)) }
    );
    assert_eq!(next_event(&mut watch).await, Event::Put { kv: kv(POD_B, "b", b), prev: None });
    assert_eq!(next_event(&mut watch).await, Event::Delete { prev: kv(POD_A, "v2", updated), revision: deleted });
    assert_no_event(&mut watch).await;

    // Then it follows changes as they happen.
    let live = store.update(POD_B, value("b2"), b).await.unwrap();
    store.update(SIBLING_POD, value("still not"), deleted - 1).await.unwrap();
    assert_eq!(next_event(&mut watch).await, Event::Put { kv: kv(POD_B, "b2", live), prev: Some(kv(POD_B, "b", b)) });
    assert_no_event(&mut watch).await;
}

/// Watching from 0 means "from now on": nothing that happened before the watch is replayed.
pub async fn watch_from_zero_sees_only_new_events(store: &dyn Store) {
    store.create(POD_A, value("before")).await.unwrap();
    let mut watch = store.watch("/registry/pods/", 0).await.unwrap();
    assert_no_event(&mut watch).await;
    let b = store.create(POD_B, value("after")).await.unwrap();
    assert_eq!(next_event(&mut watch).await, Event::Put { kv: kv(POD_B, "after", b), prev: None });
}

/// History is finite: a watch that needs forgotten events must fail (`410 Gone`), never silently skip them.
pub async fn watch_from_a_compacted_revision_fails_with_compacted(fixture: &dyn Fixture) {
    let store = fixture.store();
    let first = store.create(POD_A, value("v1")).await.unwrap();
    let second = store.update(POD_A, value("v2"), first).await.unwrap();
    let third = store.update(POD_A, value("v3"), second).await.unwrap();
    let fourth = store.update(POD_A, value("v4"), third).await.unwrap();
    fixture.compact(fourth).await;

    // The events at `second` and `third` are forgotten: a watch that needs them cannot start, and is told where
    // the history now begins.
    for after in [first, second] {
        let err = store.watch("/registry/pods/", after).await.err().expect("watching from a compacted revision");
        assert_eq!(err, StoreError::Compacted { requested: after, oldest: fourth });
    }

    // The event at `fourth` is kept: a watch from just before it still works.
    let mut watch = store.watch("/registry/pods/", third).await.unwrap();
    assert_eq!(next_event(&mut watch).await.revision(), fourth);
}
