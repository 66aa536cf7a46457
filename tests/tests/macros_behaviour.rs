//! What `#[cached]` and `#[memoize]` ask of the backend, call by call, on an in-memory
//! backend that records every operation.
//!
//! Each test uses its own cache (`cache = ...`), so tests stay independent when run in
//! parallel; no default cache is ever installed in this binary.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use cache_core::backend::{Backend, BlockingBackend, Ttl};
use cache_core::{Cache, cached, memoize};
use serde::{Deserialize, Serialize};

/// An in-memory backend that logs every call as `"op key"` (and `"set key ttl"`).
#[derive(Debug, Clone, Default)]
struct Recorder {
    log: Arc<Mutex<Vec<String>>>,
    entries: Arc<Mutex<HashMap<String, Bytes>>>,
}

impl Recorder {
    fn record(&self, call: String) {
        self.log.lock().unwrap().push(call);
    }
}

impl BlockingBackend for Recorder {
    fn get(&self, key: &str) -> cache_core::Result<Option<Bytes>> {
        self.record(format!("get {key}"));
        Ok(self.entries.lock().unwrap().get(key).cloned())
    }
    fn get_many(&self, keys: &[&str]) -> cache_core::Result<Vec<Option<Bytes>>> {
        self.record(format!("get_many {}", keys.join(" ")));
        let entries = self.entries.lock().unwrap();
        Ok(keys.iter().map(|k| entries.get(*k).cloned()).collect())
    }
    fn set(&self, key: &str, value: Bytes, ttl: Ttl) -> cache_core::Result<()> {
        self.record(format!("set {key} {ttl:?}"));
        self.entries.lock().unwrap().insert(key.to_owned(), value);
        Ok(())
    }
    fn set_many(&self, entries: &[(&str, Bytes)], ttl: Ttl) -> cache_core::Result<()> {
        for (key, value) in entries {
            BlockingBackend::set(self, key, value.clone(), ttl)?;
        }
        Ok(())
    }
    fn add(&self, key: &str, value: Bytes, _ttl: Ttl) -> cache_core::Result<bool> {
        self.record(format!("add {key}"));
        let mut entries = self.entries.lock().unwrap();
        if entries.contains_key(key) {
            return Ok(false);
        }
        entries.insert(key.to_owned(), value);
        Ok(true)
    }
    fn delete(&self, key: &str) -> cache_core::Result<bool> {
        self.record(format!("delete {key}"));
        Ok(self.entries.lock().unwrap().remove(key).is_some())
    }
    fn delete_many(&self, keys: &[&str]) -> cache_core::Result<u64> {
        let mut removed = 0;
        for key in keys {
            removed += u64::from(BlockingBackend::delete(self, key)?);
        }
        Ok(removed)
    }
    fn exists(&self, key: &str) -> cache_core::Result<bool> {
        self.record(format!("exists {key}"));
        Ok(self.entries.lock().unwrap().contains_key(key))
    }
    fn delete_prefix(&self, prefix: &str) -> cache_core::Result<u64> {
        self.record(format!("delete_prefix {prefix}"));
        let mut entries = self.entries.lock().unwrap();
        let before = entries.len();
        entries.retain(|key, _| !key.starts_with(prefix));
        Ok((before - entries.len()) as u64)
    }
    fn delete_if_equal(&self, key: &str, expected: &[u8]) -> cache_core::Result<bool> {
        self.record(format!("delete_if_equal {key}"));
        let mut entries = self.entries.lock().unwrap();
        if entries.get(key).is_some_and(|value| value == expected) {
            entries.remove(key);
            return Ok(true);
        }
        Ok(false)
    }
}

/// The async half goes through the same recording methods, so sync and async functions
/// are held to the same sequence.
#[async_trait]
impl Backend for Recorder {
    // A custom backend: async functions take the async path.
    async fn get(&self, key: &str) -> cache_core::Result<Option<Bytes>> {
        BlockingBackend::get(self, key)
    }
    async fn get_many(&self, keys: &[&str]) -> cache_core::Result<Vec<Option<Bytes>>> {
        BlockingBackend::get_many(self, keys)
    }
    async fn set(&self, key: &str, value: Bytes, ttl: Ttl) -> cache_core::Result<()> {
        BlockingBackend::set(self, key, value, ttl)
    }
    async fn set_many(&self, entries: &[(&str, Bytes)], ttl: Ttl) -> cache_core::Result<()> {
        BlockingBackend::set_many(self, entries, ttl)
    }
    async fn add(&self, key: &str, value: Bytes, ttl: Ttl) -> cache_core::Result<bool> {
        BlockingBackend::add(self, key, value, ttl)
    }
    async fn delete(&self, key: &str) -> cache_core::Result<bool> {
        BlockingBackend::delete(self, key)
    }
    async fn delete_many(&self, keys: &[&str]) -> cache_core::Result<u64> {
        BlockingBackend::delete_many(self, keys)
    }
    async fn exists(&self, key: &str) -> cache_core::Result<bool> {
        BlockingBackend::exists(self, key)
    }
    async fn delete_prefix(&self, prefix: &str) -> cache_core::Result<u64> {
        BlockingBackend::delete_prefix(self, prefix)
    }
    async fn delete_if_equal(&self, key: &str, expected: &[u8]) -> cache_core::Result<bool> {
        BlockingBackend::delete_if_equal(self, key, expected)
    }
}

/// A cache on a fresh [`Recorder`], for one test.
struct Recorded {
    cache: Cache,
    recorder: Recorder,
}

impl Recorded {
    fn new() -> Self {
        let recorder = Recorder::default();
        let cache = Cache::builder()
            .backend(recorder.clone())
            .default_timeout(Duration::from_secs(300))
            .build()
            .unwrap();
        Self { cache, recorder }
    }

    /// The calls since the last `take`.
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.recorder.log.lock().unwrap())
    }
}

impl Deref for Recorded {
    type Target = Cache;
    fn deref(&self) -> &Cache {
        &self.cache
    }
}

/// A static recorded cache: `recorded!(NAME);`.
macro_rules! recorded {
    ($name:ident) => {
        static $name: LazyLock<Recorded> = LazyLock::new(Recorded::new);
    };
}

const FIVE_MINUTES: &str = "Some(300s)";

// ---------------------------------------------------------------- hit and miss

recorded!(SQUARE);
static SQUARE_RUNS: AtomicUsize = AtomicUsize::new(0);

#[memoize(cache = SQUARE)]
fn square(num: u64) -> String {
    SQUARE_RUNS.fetch_add(1, Ordering::SeqCst);
    format!("Square of {num} is {}", num * num)
}

#[test]
fn a_miss_is_one_get_and_one_set_and_a_hit_is_one_get() {
    let key = "cache:memoize:macros_behaviour.square:4";
    assert_eq!(square(4), "Square of 4 is 16");
    assert_eq!(
        SQUARE.take(),
        [format!("get {key}"), format!("set {key} {FIVE_MINUTES}")]
    );
    assert_eq!(square(4), "Square of 4 is 16");
    assert_eq!(SQUARE.take(), [format!("get {key}")]);
    assert_eq!(SQUARE_RUNS.load(Ordering::SeqCst), 1);
    let stats = square::stats();
    assert_eq!((stats.hits, stats.misses, stats.stores), (1, 1, 1));
}

recorded!(ASYNC_SQUARE);

#[memoize(cache = ASYNC_SQUARE, timeout = 60)]
async fn async_square(num: u64) -> u64 {
    tokio::task::yield_now().await;
    num * num
}

#[tokio::test]
async fn an_async_function_reads_and_writes_the_same_way() {
    let key = "cache:memoize:macros_behaviour.async_square:3";
    assert_eq!(async_square(3).await, 9);
    assert_eq!(async_square(3).await, 9);
    assert_eq!(
        ASYNC_SQUARE.take(),
        [
            format!("get {key}"),
            format!("set {key} Some(60s)"),
            format!("get {key}")
        ]
    );
}

// ---------------------------------------------------------------- #[cached]

recorded!(HOME);
static HOME_RUNS: AtomicUsize = AtomicUsize::new(0);

#[cached(cache = HOME, key_prefix = "homepage", timeout = 30)]
fn home() -> String {
    HOME_RUNS.fetch_add(1, Ordering::SeqCst);
    "<h1>home</h1>".to_owned()
}

#[cached(cache = HOME, key_prefix = "sidebar")]
fn sidebar(user: &str) -> String {
    format!("hello {user}")
}

#[test]
fn cached_keeps_one_entry_under_its_key_prefix() {
    assert_eq!(home(), "<h1>home</h1>");
    assert_eq!(home(), "<h1>home</h1>");
    assert_eq!(HOME_RUNS.load(Ordering::SeqCst), 1);
    assert_eq!(
        HOME.take(),
        [
            "get cache:homepage",
            "set cache:homepage Some(30s)",
            "get cache:homepage"
        ]
    );
    assert_eq!(home::key().unwrap(), "homepage");
    assert!(home::invalidate().unwrap());
    assert_eq!(HOME.take(), ["delete cache:homepage"]);
    // `invalidate_all` deletes exactly the key and its lease, never a prefix.
    assert_eq!(home::invalidate_all().unwrap(), 0);
    assert_eq!(
        HOME.take(),
        ["delete cache:homepage", "delete cache:homepage:~lease"]
    );

    // One entry whatever the arguments.
    assert_eq!(sidebar("ada"), "hello ada");
    assert_eq!(sidebar("bob"), "hello ada");
    assert_eq!(
        HOME.take(),
        [
            "get cache:sidebar",
            "set cache:sidebar Some(300s)",
            "get cache:sidebar"
        ]
    );
}

// ---------------------------------------------------------------- unless, forced_update

recorded!(SWITCHES);
static SWITCH_RUNS: AtomicUsize = AtomicUsize::new(0);

#[memoize(cache = SWITCHES, unless = num == 0, forced_update = refresh, ignore = [refresh])]
fn switched(num: u64, refresh: bool) -> u64 {
    SWITCH_RUNS.fetch_add(1, Ordering::SeqCst);
    num + u64::from(refresh)
}

#[test]
fn unless_skips_the_cache_and_forced_update_only_writes() {
    assert_eq!(switched(0, false), 0);
    assert_eq!(switched(0, false), 0);
    assert_eq!(SWITCHES.take(), Vec::<String>::new());
    assert_eq!(SWITCH_RUNS.load(Ordering::SeqCst), 2);
    assert_eq!(switched::stats().bypasses, 2);

    let key = "cache:memoize:macros_behaviour.switched:7";
    assert_eq!(switched(7, true), 8);
    assert_eq!(SWITCHES.take(), [format!("set {key} {FIVE_MINUTES}")]);
    // `refresh` is ignored, so the forced value is what a normal call reads.
    assert_eq!(switched(7, false), 8);
    assert_eq!(SWITCHES.take(), [format!("get {key}")]);
    assert_eq!(SWITCH_RUNS.load(Ordering::SeqCst), 3);
}

// ---------------------------------------------------------------- Result and Option

recorded!(FALLIBLE);

#[memoize(cache = FALLIBLE)]
fn parse(text: &str) -> Result<u32, String> {
    text.parse().map_err(|_| format!("not a number: {text}"))
}

#[test]
fn an_err_is_returned_but_never_stored() {
    assert!(parse("x").is_err());
    assert!(parse("x").is_err());
    assert_eq!(
        FALLIBLE.take(),
        [
            "get cache:memoize:macros_behaviour.parse:x",
            "get cache:memoize:macros_behaviour.parse:x"
        ]
    );
    assert_eq!(parse("12"), Ok(12));
    assert_eq!(parse("12"), Ok(12));
    assert_eq!(
        FALLIBLE.take(),
        [
            "get cache:memoize:macros_behaviour.parse:12".to_owned(),
            format!("set cache:memoize:macros_behaviour.parse:12 {FIVE_MINUTES}"),
            "get cache:memoize:macros_behaviour.parse:12".to_owned()
        ]
    );
}

/// A `Result` under another name is still a `Result`: the policy follows the type.
type Fallible<T> = Result<T, std::num::ParseIntError>;

#[memoize(cache = FALLIBLE)]
fn parse_aliased(text: String) -> Fallible<u8> {
    text.parse()
}

#[test]
fn a_result_alias_is_recognised_by_its_type() {
    assert!(parse_aliased("300".into()).is_err());
    assert_eq!(
        FALLIBLE.take(),
        ["get cache:memoize:macros_behaviour.parse_aliased:300"]
    );
}

recorded!(OPTIONAL);

#[memoize(cache = OPTIONAL)]
fn find(id: u32) -> Option<String> {
    (id == 1).then(|| "one".to_owned())
}

#[memoize(cache = OPTIONAL, cache_none)]
fn find_remembering_none(id: u32) -> Option<String> {
    (id == 1).then(|| "one".to_owned())
}

#[test]
fn none_is_stored_only_with_cache_none() {
    assert_eq!(find(2), None);
    assert_eq!(find(2), None);
    assert_eq!(
        OPTIONAL.take(),
        [
            "get cache:memoize:macros_behaviour.find:2",
            "get cache:memoize:macros_behaviour.find:2"
        ]
    );
    assert_eq!(find_remembering_none(2), None);
    assert_eq!(find_remembering_none(2), None);
    let key = "cache:memoize:macros_behaviour.find_remembering_none:2";
    assert_eq!(
        OPTIONAL.take(),
        [
            format!("get {key}"),
            format!("set {key} {FIVE_MINUTES}"),
            format!("get {key}")
        ]
    );
    assert_eq!(find(1).as_deref(), Some("one"));
    assert_eq!(find(1).as_deref(), Some("one"));
    assert_eq!(OPTIONAL.take().len(), 3);
}

// ---------------------------------------------------------------- keys and ignore

recorded!(KEYS);

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Query {
    term: String,
    page: u32,
}

#[memoize(cache = KEYS, ignore = [trace_id])]
fn search(query: &Query, tags: &[&str], trace_id: u64) -> Vec<String> {
    let _ = trace_id;
    tags.iter().map(|t| format!("{}:{t}", query.term)).collect()
}

#[memoize(cache = KEYS, key_prefix = "sq")]
fn grouped(num: u64) -> u64 {
    num
}

#[memoize(cache = KEYS)]
fn generic_first<T: Serialize + serde::de::DeserializeOwned + Clone>(items: Vec<T>) -> Option<T> {
    items.first().cloned()
}

#[test]
fn keys_follow_the_scheme_and_leave_out_ignored_parameters() {
    let query = Query {
        term: "a:b".into(),
        page: 2,
    };
    assert_eq!(
        search::key(&query, &["x", "y"]).unwrap(),
        "memoize:macros_behaviour.search:(term=a%3Ab,page=2):[x,y]"
    );
    search(&query, &["x"], 1);
    search(&query, &["x"], 2);
    let key = "cache:memoize:macros_behaviour.search:(term=a%3Ab,page=2):[x]";
    assert_eq!(
        KEYS.take(),
        [
            format!("get {key}"),
            format!("set {key} {FIVE_MINUTES}"),
            format!("get {key}")
        ]
    );
    assert_eq!(grouped::key(4).unwrap(), "memoize:sq:4");
    assert_eq!(
        generic_first::key(vec![1u8]).unwrap(),
        "memoize:macros_behaviour.generic_first:<u8>:[1]"
    );
    // Different instantiations never share an entry.
    assert_eq!(generic_first(vec![1u8]), Some(1u8));
    assert_eq!(generic_first(vec![1u16]), Some(1u16));
    assert_eq!(generic_first::stats().stores, 2);
}

// ---------------------------------------------------------------- invalidation

recorded!(FORGET);

#[memoize(cache = FORGET)]
fn cube(num: u64) -> u64 {
    num * num * num
}

#[memoize(cache = FORGET)]
async fn async_cube(num: u64) -> u64 {
    num * num * num
}

#[test]
fn invalidate_and_invalidate_all_delete_the_function_entries() {
    cube(2);
    cube(3);
    FORGET.take();
    assert!(cube::invalidate(2).unwrap());
    assert!(!cube::invalidate(2).unwrap());
    assert_eq!(
        FORGET.take(),
        [
            "delete cache:memoize:macros_behaviour.cube:2",
            "delete cache:memoize:macros_behaviour.cube:2"
        ]
    );
    assert_eq!(cube::invalidate_all().unwrap(), 1);
    assert_eq!(
        FORGET.take(),
        [
            "delete cache:memoize:macros_behaviour.cube",
            "delete_prefix cache:memoize:macros_behaviour.cube:"
        ]
    );
    cube(3);
    assert_eq!(FORGET.take().len(), 2, "a miss after invalidate_all");
}

#[tokio::test]
async fn async_functions_get_async_invalidation() {
    async_cube(2).await;
    FORGET.take();
    assert!(async_cube::invalidate(2).await.unwrap());
    assert_eq!(async_cube::invalidate_all().await.unwrap(), 0);
    assert_eq!(
        FORGET
            .take()
            .into_iter()
            .filter(|c| c.contains("async_cube"))
            .collect::<Vec<_>>(),
        [
            "delete cache:memoize:macros_behaviour.async_cube:2",
            "delete cache:memoize:macros_behaviour.async_cube",
            "delete_prefix cache:memoize:macros_behaviour.async_cube:"
        ]
    );
}

// ---------------------------------------------------------------- methods

recorded!(METHODS);

#[derive(Debug, Serialize, Deserialize)]
struct Repo {
    table: String,
}

impl Repo {
    /// `self` is part of the key.
    #[memoize(cache = METHODS)]
    fn count(&self, min: u32) -> u32 {
        min + self.table.len() as u32
    }

    /// `self` is left out of the key.
    #[memoize(cache = METHODS, ignore = [self])]
    async fn version(&self, major: u32) -> String {
        format!("{}-{major}", self.table)
    }

    /// An associated function (no receiver).
    #[memoize(cache = METHODS)]
    fn named(table: String) -> Option<Self> {
        Some(Repo { table })
    }
}

#[tokio::test]
async fn methods_key_on_self_unless_it_is_ignored() {
    let users = Repo {
        table: "users".into(),
    };
    let key = "memoize:macros_behaviour.count:<macros_behaviour.Repo>:(table=users):1";
    assert_eq!(users.count_key(1).unwrap(), key);
    assert_eq!(users.count(1), 6);
    assert_eq!(users.count(1), 6);
    assert!(users.count_invalidate(1).unwrap());
    assert_eq!(
        METHODS.take(),
        [
            format!("get cache:{key}"),
            format!("set cache:{key} {FIVE_MINUTES}"),
            format!("get cache:{key}"),
            format!("delete cache:{key}")
        ]
    );
    assert_eq!(Repo::count_stats().hits, 1);

    let posts = Repo {
        table: "posts".into(),
    };
    assert_eq!(users.version(1).await, "users-1");
    // `self` is ignored: another `Repo` reads the same entry.
    assert_eq!(posts.version(1).await, "users-1");
    assert_eq!(
        Repo::version_key(1).unwrap(),
        "memoize:macros_behaviour.version:<macros_behaviour.Repo>:1"
    );
    assert!(Repo::version_invalidate(1).await.unwrap());
    assert_eq!(Repo::version_invalidate_all().await.unwrap(), 0);

    assert_eq!(Repo::named("t".into()).unwrap().table, "t");
    assert_eq!(
        Repo::named_key("t".into()).unwrap(),
        "memoize:macros_behaviour.named:<macros_behaviour.Repo>:t"
    );
}

// ---------------------------------------------------------------- codec, timeout, crate

recorded!(JSON);

#[memoize(cache = JSON, codec = cache_core::codec::Json, timeout = Duration::from_millis(1500))]
fn as_json(num: u64) -> String {
    num.to_string()
}

#[test]
fn the_codec_and_a_duration_timeout_are_used() {
    assert_eq!(as_json(16), "16");
    assert_eq!(as_json(16), "16");
    let key = "cache:memoize:macros_behaviour.as_json:16";
    assert_eq!(
        JSON.take(),
        [
            format!("get {key}"),
            format!("set {key} Some(1.5s)"),
            format!("get {key}")
        ]
    );
    let stored = JSON.recorder.entries.lock().unwrap()[key].clone();
    assert!(stored.starts_with(b"\"16\""), "{stored:?}");
}

mod renamed {
    pub use cache_core as inner;
}

recorded!(RENAMED);

#[memoize(cache = RENAMED, crate = "crate::renamed::inner")]
fn through_a_renamed_crate(num: u64) -> u64 {
    num
}

#[test]
fn the_crate_path_can_be_overridden() {
    assert_eq!(through_a_renamed_crate(1), 1);
    assert_eq!(RENAMED.take().len(), 2);
    assert!(through_a_renamed_crate::invalidate(1).unwrap());
}

// ---------------------------------------------------------------- no cache installed

static UNCACHED_RUNS: AtomicUsize = AtomicUsize::new(0);

#[memoize]
fn uncached(num: u64) -> u64 {
    UNCACHED_RUNS.fetch_add(1, Ordering::SeqCst);
    num
}

#[test]
fn without_an_installed_cache_the_function_runs_uncached() {
    assert!(cache_core::installed().is_none());
    assert_eq!(uncached(1), 1);
    assert_eq!(uncached(1), 1);
    assert_eq!(UNCACHED_RUNS.load(Ordering::SeqCst), 2);
    assert_eq!(uncached::stats().bypasses, 2);
    assert!(!uncached::invalidate(1).unwrap());
    assert_eq!(uncached::invalidate_all().unwrap(), 0);
}

// ---------------------------------------------------------------- one call, step by step

/// A lease miss: read, take the lease, read once more, store, release; then a hit is one read.
#[tokio::test]
async fn a_leased_miss_reads_leases_rereads_stores_and_releases() {
    let recorded = Recorded::new();
    let options = cache_core::CallOptions::builder()
        .timeout(Duration::from_secs(60))
        .stampede(cache_core::stampede::Stampede::default().lease(Duration::from_secs(5)))
        .build();
    let v = recorded
        .get_or_set_with_options("k", options, || async { 1u8 })
        .await;
    assert_eq!(v, 1);
    assert_eq!(
        recorded.take(),
        [
            "get cache:k",
            "add cache:k:~lease",
            "get cache:k",
            "set cache:k Some(60s)",
            "delete_if_equal cache:k:~lease",
        ]
    );
    let blocking = recorded
        .blocking()
        .get_or_set_with_options("k", options, || 2u8);
    assert_eq!(blocking, 1);
    assert_eq!(recorded.take(), ["get cache:k"]);
}

/// A follower sends nothing but its own read: it is served the leader's sealed value.
#[tokio::test]
async fn a_follower_reads_once_and_is_served_the_leaders_value() {
    let recorded = Recorded::new();
    let gate = Arc::new(tokio::sync::Notify::new());
    let (entered, inside) = tokio::sync::oneshot::channel();
    let leader = {
        let (cache, gate) = (recorded.cache.clone(), gate.clone());
        tokio::spawn(async move {
            cache
                .get_or_set_with("k", Duration::from_secs(60), || async move {
                    let _ = entered.send(());
                    gate.notified().await;
                    7u8
                })
                .await
        })
    };
    inside.await.unwrap();
    let follower = {
        let cache = recorded.cache.clone();
        tokio::spawn(async move {
            cache
                .get_or_set_with("k", Duration::from_secs(60), || async { 9u8 })
                .await
        })
    };
    for _ in 0..3 {
        tokio::task::yield_now().await; // the follower reads, then waits on the flight
    }
    gate.notify_one();
    let both = (leader.await.unwrap(), follower.await.unwrap());
    assert_eq!(both, (7, 7), "{:?}", recorded.take());
    assert_eq!(
        recorded.take(),
        ["get cache:k", "get cache:k", "set cache:k Some(60s)"]
    );
}

/// A failing body: one read, no store, no release; the next call computes again.
#[test]
fn a_failed_call_reads_and_stores_nothing() {
    let recorded = Recorded::new();
    let failed = recorded
        .blocking()
        .try_get_or_set_with("k", Duration::from_secs(60), || Err::<u8, _>("down"));
    assert_eq!(failed, Err("down"));
    assert_eq!(recorded.take(), ["get cache:k"]);
}

/// A call dropped inside its body stores nothing and releases its lease; the next caller
/// leads a flight of its own.
#[tokio::test]
async fn a_call_cancelled_in_its_body_stores_nothing_and_the_next_one_leads() {
    let recorded = Recorded::new();
    let options = cache_core::CallOptions::builder()
        .timeout(Duration::from_secs(60))
        .stampede(cache_core::stampede::Stampede::default().lease(Duration::from_secs(5)))
        .build();
    let cancelled = tokio::time::timeout(
        Duration::from_millis(20),
        recorded.get_or_set_with_options("k", options, || async {
            std::future::pending::<u8>().await
        }),
    )
    .await;
    assert!(cancelled.is_err());
    tokio::task::yield_now().await; // the dropped lease's release runs in a spawned task
    assert_eq!(
        recorded.take(),
        [
            "get cache:k",
            "add cache:k:~lease",
            "get cache:k",
            "delete_if_equal cache:k:~lease",
        ],
        "no store; the lease released, so other processes need not wait for it to expire"
    );
    let v = recorded
        .get_or_set_with_options("k", options, || async { 3u8 })
        .await;
    assert_eq!(v, 3, "the abandoned flight does not block the next caller");
}

/// A stale value is served while the caller that won the refresh takes a lease, checks the
/// value is still stale, recomputes, stores and releases.
#[test]
fn a_stale_read_is_served_and_refreshed_once() {
    let recorded = Recorded::new();
    let options = cache_core::CallOptions::builder()
        .timeout(Duration::from_millis(50))
        .stampede(cache_core::stampede::Stampede::default().serve_stale(Duration::from_secs(30)))
        .build();
    let blocking = recorded.blocking();
    assert_eq!(blocking.get_or_set_with_options("k", options, || 1u8), 1);
    recorded.take();
    std::thread::sleep(Duration::from_millis(80));
    assert_eq!(blocking.get_or_set_with_options("k", options, || 2u8), 2);
    assert_eq!(
        recorded.take(),
        [
            "get cache:k",
            "add cache:k:~lease",
            "get cache:k",
            "set cache:k Some(30.05s)",
            "delete_if_equal cache:k:~lease",
        ]
    );
}

/// A sync body that panics while its call holds the lease: the lease is released as the
/// panic unwinds, and the flight is abandoned, not stuck.
#[test]
fn a_panicking_sync_body_releases_its_lease() {
    let recorded = Recorded::new();
    let options = cache_core::CallOptions::builder()
        .timeout(Duration::from_secs(60))
        .stampede(cache_core::stampede::Stampede::default().lease(Duration::from_secs(5)))
        .build();
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        recorded
            .blocking()
            .get_or_set_with_options("k", options, || -> u8 { panic!("body failed") })
    }));
    assert!(panicked.is_err());
    assert_eq!(
        recorded.take(),
        [
            "get cache:k",
            "add cache:k:~lease",
            "get cache:k",
            "delete_if_equal cache:k:~lease",
        ]
    );
    let v = recorded
        .blocking()
        .get_or_set_with_options("k", options, || 4u8);
    assert_eq!(v, 4);
}
