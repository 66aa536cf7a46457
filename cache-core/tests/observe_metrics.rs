//! The `metrics` counters of a hit, a miss, a stale hit, a lease wait and a fail-open call,
//! for sync and async functions, read from a debugging recorder and checked against the
//! functions' and caches' `stats()`.
#![cfg(feature = "metrics")]

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use cache_core::backend::memory::MemoryBackend;
use cache_core::backend::{Backend, BlockingBackend, Capabilities, Ttl};
use cache_core::{Cache, Error, ErrorKind, StatsSnapshot, memoize};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

/// The global recorder, installed before any cached call of this binary.
static SNAPSHOTTER: LazyLock<Snapshotter> = LazyLock::new(|| {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().expect("the only recorder");
    snapshotter
});

/// Every counter's total and every histogram's number of values so far, by name and
/// labels: a snapshot drains the recorder, and tests run in parallel.
static TOTALS: LazyLock<Mutex<HashMap<(String, String), u64>>> = LazyLock::new(Mutex::default);

/// The total of metric `name` with exactly `labels` (`k=v` joined by `,`, in order).
fn total(name: &str, labels: &str) -> u64 {
    let mut totals = TOTALS.lock().unwrap();
    for (key, _, _, value) in SNAPSHOTTER.snapshot().into_vec() {
        let n = match value {
            DebugValue::Counter(n) => n,
            DebugValue::Histogram(values) => values.len() as u64,
            DebugValue::Gauge(_) => continue,
        };
        let key = key.key();
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        *totals
            .entry((key.name().to_owned(), labels.join(",")))
            .or_default() += n;
    }
    totals
        .get(&(name.to_owned(), labels.to_owned()))
        .copied()
        .unwrap_or(0)
}

/// The counters of `function` in the cache labelled `cache`, as a snapshot.
fn counted(cache: &str, function: &str) -> StatsSnapshot {
    let labels = format!("cache={cache},function={function}");
    let get = |name: &str| total(name, &labels);
    let mut snapshot = StatsSnapshot::default();
    snapshot.hits = get("cache_hits_total");
    snapshot.misses = get("cache_misses_total");
    snapshot.stale_hits = get("cache_stale_hits_total");
    snapshot.early_refreshes = get("cache_early_refreshes_total");
    snapshot.stores = get("cache_stores_total");
    snapshot.errors = get("cache_errors_total");
    snapshot.fail_opens = get("cache_fail_opens_total");
    snapshot.bypasses = get("cache_bypasses_total");
    snapshot.lease_waits = get("cache_lease_waits_total");
    snapshot.lease_takeovers = get("cache_lease_takeovers_total");
    snapshot.deletes = get("cache_deletes_total");
    snapshot.near_hits = get("cache_near_hits_total");
    snapshot
}

fn cache(namespace: &str) -> Cache {
    LazyLock::force(&SNAPSHOTTER);
    Cache::builder().namespace(namespace).build().unwrap()
}

fn snapshot(hits: u64, misses: u64, stores: u64) -> StatsSnapshot {
    let mut snapshot = StatsSnapshot::default();
    (snapshot.hits, snapshot.misses, snapshot.stores) = (hits, misses, stores);
    snapshot
}

static PLAIN_SYNC: LazyLock<Cache> = LazyLock::new(|| cache("plain_sync"));
static PLAIN_ASYNC: LazyLock<Cache> = LazyLock::new(|| cache("plain_async"));

#[memoize(cache = PLAIN_SYNC)]
fn square_sync(n: u64) -> u64 {
    n * n
}

#[memoize(cache = PLAIN_ASYNC)]
async fn square_async(n: u64) -> u64 {
    n * n
}

#[test]
fn a_sync_miss_then_hit_counts_one_miss_one_store_one_hit() {
    let function = "observe_metrics::square_sync";
    assert_eq!(square_sync(3), 9);
    assert_eq!(counted("plain_sync", function), snapshot(0, 1, 1));
    assert_eq!(square_sync(3), 9);
    assert_eq!(counted("plain_sync", function), snapshot(1, 1, 1));
    assert_eq!(square_sync::stats(), counted("plain_sync", function));
    assert_eq!(PLAIN_SYNC.stats(), counted("plain_sync", function));
}

#[tokio::test]
async fn an_async_miss_then_hit_counts_one_miss_one_store_one_hit() {
    let function = "observe_metrics::square_async";
    assert_eq!(square_async(3).await, 9);
    assert_eq!(counted("plain_async", function), snapshot(0, 1, 1));
    assert_eq!(square_async(3).await, 9);
    assert_eq!(counted("plain_async", function), snapshot(1, 1, 1));
    assert_eq!(square_async::stats(), counted("plain_async", function));
    assert_eq!(PLAIN_ASYNC.stats(), counted("plain_async", function));
}

static STALE_SYNC: LazyLock<Cache> = LazyLock::new(|| cache("stale_sync"));
static STALE_ASYNC: LazyLock<Cache> = LazyLock::new(|| cache("stale_async"));

#[memoize(cache = STALE_SYNC, timeout = Duration::from_millis(50), serve_stale = 30)]
fn stale_sync(n: u64) -> u64 {
    n + 1
}

#[memoize(cache = STALE_ASYNC, timeout = Duration::from_millis(50), serve_stale = 30)]
async fn stale_async(n: u64) -> u64 {
    n + 1
}

/// A stale hit: one hit, one stale hit, and the refresh's store.
fn stale_hit_counts() -> StatsSnapshot {
    let mut expected = snapshot(1, 1, 2);
    expected.stale_hits = 1;
    expected
}

#[test]
fn a_sync_stale_hit_counts_a_hit_a_stale_hit_and_the_refresh() {
    let function = "observe_metrics::stale_sync";
    assert_eq!(stale_sync(1), 2);
    std::thread::sleep(Duration::from_millis(120));
    assert_eq!(stale_sync(1), 2); // stale: refreshed in line
    assert_eq!(counted("stale_sync", function), stale_hit_counts());
    assert_eq!(stale_sync::stats(), counted("stale_sync", function));
}

#[tokio::test]
async fn an_async_stale_hit_counts_a_hit_a_stale_hit_and_the_refresh() {
    let function = "observe_metrics::stale_async";
    assert_eq!(stale_async(1).await, 2);
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert_eq!(stale_async(1).await, 2); // stale: refreshed in a background task
    for _ in 0..100 {
        if stale_async::stats().stores == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(counted("stale_async", function), stale_hit_counts());
    assert_eq!(stale_async::stats(), counted("stale_async", function));
}

static EARLY: LazyLock<Cache> = LazyLock::new(|| cache("early"));

/// With so large a beta, every hit is refreshed early.
#[memoize(cache = EARLY, timeout = 60, early_refresh = 1000000000.0)]
fn early_sync(n: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(1));
    n + 2
}

#[test]
fn a_hit_refreshed_early_counts_a_hit_an_early_refresh_and_the_store() {
    let function = "observe_metrics::early_sync";
    assert_eq!(early_sync(1), 3);
    assert_eq!(early_sync(1), 3);
    let mut expected = snapshot(1, 1, 2);
    expected.early_refreshes = 1;
    assert_eq!(counted("early", function), expected);
    assert_eq!(early_sync::stats(), expected);
}

static LEASE_STORE: LazyLock<Arc<MemoryBackend>> = LazyLock::new(Arc::default);
static LEASE_SYNC: LazyLock<Cache> = LazyLock::new(|| leased("lease_sync"));
static LEASE_ASYNC: LazyLock<Cache> = LazyLock::new(|| leased("lease_async"));

fn leased(namespace: &str) -> Cache {
    LazyLock::force(&SNAPSHOTTER);
    let store = LEASE_STORE.clone();
    Cache::builder()
        .namespace(namespace)
        .shared_backend(store)
        .build()
        .unwrap()
}

#[memoize(cache = LEASE_SYNC, lease = 5)]
fn leased_sync(n: u64) -> u64 {
    n * 10
}

#[memoize(cache = LEASE_ASYNC, lease = 5)]
async fn leased_async(n: u64) -> u64 {
    n * 10
}

/// Takes the lease of `key` (without the namespace) in `cache` as "another process" would,
/// for 150 ms.
fn hold_lease(cache: &Cache, key: &str) {
    let lease = format!("{}{key}:~lease", cache.namespace());
    let token = Bytes::from_static(b"someone else");
    let taken = BlockingBackend::add(
        &**LEASE_STORE,
        &lease,
        token,
        Some(Duration::from_millis(150)),
    );
    assert!(taken.unwrap());
}

/// A call that found the lease held until it expired: a miss, a lease wait, a take-over
/// and its store.
fn lease_counts() -> StatsSnapshot {
    let mut expected = snapshot(0, 1, 1);
    (expected.lease_waits, expected.lease_takeovers) = (1, 1);
    expected
}

#[test]
fn a_sync_call_that_waits_on_a_lease_counts_the_wait_and_the_take_over() {
    let function = "observe_metrics::leased_sync";
    hold_lease(&LEASE_SYNC, &leased_sync::key(4).unwrap());
    assert_eq!(leased_sync(4), 40);
    assert_eq!(counted("lease_sync", function), lease_counts());
    assert_eq!(leased_sync::stats(), counted("lease_sync", function));
}

#[tokio::test]
async fn an_async_call_that_waits_on_a_lease_counts_the_wait_and_the_take_over() {
    let function = "observe_metrics::leased_async";
    hold_lease(&LEASE_ASYNC, &leased_async::key(4).unwrap());
    assert_eq!(leased_async(4).await, 40);
    assert_eq!(counted("lease_async", function), lease_counts());
    assert_eq!(leased_async::stats(), counted("lease_async", function));
}

/// A backend that does I/O and whose every operation fails to connect.
#[derive(Debug)]
struct Unreachable;

fn refused<T>() -> cache_core::Result<T> {
    Err(Error::new(ErrorKind::Connection, "connection refused"))
}

#[async_trait]
impl Backend for Unreachable {
    fn capabilities(&self) -> Capabilities {
        Capabilities::REMOTE
    }
    async fn get(&self, _: &str) -> cache_core::Result<Option<Bytes>> {
        refused()
    }
    async fn get_many(&self, _: &[&str]) -> cache_core::Result<Vec<Option<Bytes>>> {
        refused()
    }
    async fn set(&self, _: &str, _: Bytes, _: Ttl) -> cache_core::Result<()> {
        refused()
    }
    async fn set_many(&self, _: &[(&str, Bytes)], _: Ttl) -> cache_core::Result<()> {
        refused()
    }
    async fn add(&self, _: &str, _: Bytes, _: Ttl) -> cache_core::Result<bool> {
        refused()
    }
    async fn delete(&self, _: &str) -> cache_core::Result<bool> {
        refused()
    }
    async fn delete_many(&self, _: &[&str]) -> cache_core::Result<u64> {
        refused()
    }
    async fn exists(&self, _: &str) -> cache_core::Result<bool> {
        refused()
    }
    async fn delete_prefix(&self, _: &str) -> cache_core::Result<u64> {
        refused()
    }
}

impl BlockingBackend for Unreachable {
    fn get(&self, _: &str) -> cache_core::Result<Option<Bytes>> {
        refused()
    }
    fn get_many(&self, _: &[&str]) -> cache_core::Result<Vec<Option<Bytes>>> {
        refused()
    }
    fn set(&self, _: &str, _: Bytes, _: Ttl) -> cache_core::Result<()> {
        refused()
    }
    fn set_many(&self, _: &[(&str, Bytes)], _: Ttl) -> cache_core::Result<()> {
        refused()
    }
    fn add(&self, _: &str, _: Bytes, _: Ttl) -> cache_core::Result<bool> {
        refused()
    }
    fn delete(&self, _: &str) -> cache_core::Result<bool> {
        refused()
    }
    fn delete_many(&self, _: &[&str]) -> cache_core::Result<u64> {
        refused()
    }
    fn exists(&self, _: &str) -> cache_core::Result<bool> {
        refused()
    }
    fn delete_prefix(&self, _: &str) -> cache_core::Result<u64> {
        refused()
    }
}

fn unreachable(namespace: &str) -> Cache {
    LazyLock::force(&SNAPSHOTTER);
    let builder = Cache::builder().namespace(namespace).backend(Unreachable);
    builder.build().unwrap()
}

static DOWN_SYNC: LazyLock<Cache> = LazyLock::new(|| unreachable("down_sync"));
static DOWN_ASYNC: LazyLock<Cache> = LazyLock::new(|| unreachable("down_async"));

#[memoize(cache = DOWN_SYNC)]
fn down_sync(n: u64) -> u64 {
    n + 100
}

#[memoize(cache = DOWN_ASYNC)]
async fn down_async(n: u64) -> u64 {
    n + 100
}

/// A call whose read failed to connect: a miss, a fail-open, and two errors (the read, and
/// the store skipped after the outage).
fn fail_open_counts() -> StatsSnapshot {
    let mut expected = snapshot(0, 1, 0);
    (expected.fail_opens, expected.errors) = (1, 2);
    expected
}

/// How many reads the backend-latency histogram of `cache` holds with `outcome`.
fn timed_reads(cache: &str, outcome: &str) -> u64 {
    total(
        "cache_backend_seconds",
        &format!("cache={cache},op=get,outcome={outcome}"),
    )
}

#[test]
fn a_sync_call_on_an_unreachable_backend_counts_a_fail_open() {
    let function = "observe_metrics::down_sync";
    assert_eq!(down_sync(1), 101);
    assert_eq!(counted("down_sync", function), fail_open_counts());
    assert_eq!(down_sync::stats(), counted("down_sync", function));
    assert_eq!(timed_reads("down_sync", "error"), 1);
}

#[tokio::test]
async fn an_async_call_on_an_unreachable_backend_counts_a_fail_open() {
    let function = "observe_metrics::down_async";
    assert_eq!(down_async(1).await, 101);
    assert_eq!(counted("down_async", function), fail_open_counts());
    assert_eq!(down_async::stats(), counted("down_async", function));
    assert_eq!(timed_reads("down_async", "error"), 1);
}

static DIRECT: LazyLock<Cache> = LazyLock::new(|| cache("direct"));

#[test]
fn the_cache_methods_count_under_the_direct_function_label() {
    DIRECT.blocking().set("a", &1u8).unwrap();
    assert_eq!(DIRECT.blocking().get::<u8>("a").unwrap(), Some(1));
    assert_eq!(DIRECT.blocking().get::<u8>("b").unwrap(), None);
    assert!(DIRECT.blocking().delete("a").unwrap());
    let mut expected = snapshot(1, 1, 1);
    expected.deletes = 1;
    assert_eq!(counted("direct", "(direct)"), expected);
    assert_eq!(DIRECT.stats(), expected);
}
