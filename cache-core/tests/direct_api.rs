//! The direct `Cache` API behaves like the attributes, and the defects found in it stay
//! fixed: one regression test per defect, named after what it reproduced.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, mpsc};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use cache_core::backend::{Backend, BlockingBackend, Ttl};
use cache_core::{Cache, CallOptions, Error, ErrorKind, memoize};

const TTL: Duration = Duration::from_secs(60);

#[tokio::test]
async fn get_or_set_with_stored_an_err() {
    let cache = Cache::memory();
    let runs = AtomicUsize::new(0);
    for _ in 0..2 {
        let failed: Result<u32, String> = cache
            .get_or_set_with("user", TTL, || async {
                runs.fetch_add(1, Ordering::SeqCst);
                Err("db down".to_owned())
            })
            .await;
        assert_eq!(failed, Err("db down".to_owned()));
    }
    assert_eq!(
        runs.load(Ordering::SeqCst),
        2,
        "an Err is recomputed, never served"
    );
    assert!(!cache.has("user").await.unwrap());
    let ok: Result<u32, String> = cache.get_or_set_with("user", TTL, || async { Ok(7) }).await;
    assert_eq!(ok, Ok(7));
    let hit: Result<u32, String> = cache
        .get_or_set_with("user", TTL, || async { unreachable!("a hit") })
        .await;
    assert_eq!(hit, Ok(7));

    let blocking = cache.blocking();
    let failed: Result<u32, String> =
        blocking.get_or_set_with("sync", TTL, || Err("db down".to_owned()));
    assert!(failed.is_err());
    assert!(!blocking.has("sync").unwrap());
}

#[tokio::test]
async fn get_or_set_with_options_ignored_unless() {
    let cache = Cache::memory();
    let unless = CallOptions::builder().timeout(TTL).unless(true).build();
    let v = cache
        .get_or_set_with_options("k", unless, || async { 1u8 })
        .await;
    assert_eq!(v, 1);
    assert!(!cache.has("k").await.unwrap(), "unless: nothing stored");
    cache.set("k", &2u8).await.unwrap();
    let v = cache
        .get_or_set_with_options("k", unless, || async { 3u8 })
        .await;
    assert_eq!(v, 3, "unless: nothing read either");
    let v = cache
        .blocking()
        .get_or_set_with_options("k", unless, || 4u8);
    assert_eq!(v, 4);
    assert_eq!(cache.stats().bypasses, 3);
}

#[tokio::test]
async fn get_or_set_with_options_ignored_cache_none() {
    let cache = Cache::memory();
    let plain = CallOptions::timeout(TTL);
    let none: Option<u8> = cache
        .get_or_set_with_options("a", plain, || async { None })
        .await;
    assert_eq!(none, None);
    assert!(
        !cache.has("a").await.unwrap(),
        "None is not stored by default"
    );

    let cache_none = CallOptions::builder().timeout(TTL).cache_none(true).build();
    let none: Option<u8> = cache
        .get_or_set_with_options("b", cache_none, || async { None })
        .await;
    assert_eq!(none, None);
    let hit: Option<u8> = cache
        .get_or_set_with_options("b", cache_none, || async { unreachable!("a cached None") })
        .await;
    assert_eq!(hit, None);
    let sync: Option<u8> = cache
        .blocking()
        .get_or_set_with_options("c", cache_none, || None);
    assert_eq!(sync, None);
    assert!(cache.blocking().has("c").unwrap());
}

#[tokio::test]
async fn try_and_optionally_store_like_the_attributes() {
    let cache = Cache::memory();
    let failed = cache
        .try_get_or_set_with("t", TTL, || async {
            Err::<u8, _>(std::io::Error::other("down"))
        })
        .await;
    assert!(failed.is_err());
    assert!(!cache.has("t").await.unwrap());
    let ok = cache
        .try_get_or_set_with("t", TTL, || async { Ok::<u8, std::io::Error>(5) })
        .await;
    assert_eq!(ok.unwrap(), 5);
    assert_eq!(cache.get::<u8>("t").await.unwrap(), Some(5));

    let none = cache
        .optionally_get_or_set_with("o", TTL, || async { None::<u8> })
        .await;
    assert_eq!(none, None);
    assert!(!cache.has("o").await.unwrap());
    let some = cache
        .optionally_get_or_set_with("o", TTL, || async { Some(6u8) })
        .await;
    assert_eq!(some, Some(6));
    assert_eq!(cache.get::<Option<u8>>("o").await.unwrap(), Some(Some(6)));

    let blocking = cache.blocking();
    assert!(
        blocking
            .try_get_or_set_with("bt", TTL, || Err::<u8, &str>("down"))
            .is_err()
    );
    assert!(!blocking.has("bt").unwrap());
    assert_eq!(
        blocking.optionally_get_or_set_with("bo", TTL, || None::<u8>),
        None
    );
    assert!(!blocking.has("bo").unwrap());
}

static HERD: LazyLock<Cache> = LazyLock::new(Cache::memory);
static CLONE_RUNS: AtomicUsize = AtomicUsize::new(0);
static UNCLONE_RUNS: AtomicUsize = AtomicUsize::new(0);
static UNCLONE_INSIDE: AtomicUsize = AtomicUsize::new(0);
static UNCLONE_MOST_INSIDE: AtomicUsize = AtomicUsize::new(0);

#[memoize(cache = HERD, timeout = 60)]
async fn failing_clone(id: u32) -> Result<u32, String> {
    CLONE_RUNS.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(100)).await;
    Err(format!("db down for {id}"))
}

/// Not `Clone`: the failure cannot be shared.
#[derive(Debug)]
struct Down;

#[memoize(cache = HERD, timeout = 60)]
async fn failing_unclone(id: u32) -> Result<u32, Down> {
    UNCLONE_RUNS.fetch_add(1, Ordering::SeqCst);
    let inside = UNCLONE_INSIDE.fetch_add(1, Ordering::SeqCst) + 1;
    UNCLONE_MOST_INSIDE.fetch_max(inside, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(5)).await;
    UNCLONE_INSIDE.fetch_sub(1, Ordering::SeqCst);
    let _ = id;
    Err(Down)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_leader_set_off_a_herd() {
    let calls: Vec<_> = (0..20).map(|_| tokio::spawn(failing_clone(1))).collect();
    for call in calls {
        assert_eq!(call.await.unwrap(), Err("db down for 1".to_owned()));
    }
    assert_eq!(
        CLONE_RUNS.load(Ordering::SeqCst),
        1,
        "a Clone error is shared with the 19 waiters"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_leader_with_an_unclonable_error_hands_over_one_waiter_at_a_time() {
    let calls: Vec<_> = (0..20).map(|_| tokio::spawn(failing_unclone(1))).collect();
    for call in calls {
        assert!(call.await.unwrap().is_err());
    }
    assert_eq!(
        UNCLONE_RUNS.load(Ordering::SeqCst),
        20,
        "every caller gets its own Err"
    );
    assert_eq!(
        UNCLONE_MOST_INSIDE.load(Ordering::SeqCst),
        1,
        "never two bodies at once"
    );
}

static MIXED: LazyLock<Cache> = LazyLock::new(Cache::memory);

#[memoize(cache = MIXED, key_prefix = "shared", timeout = 60)]
async fn shared_async(n: u32) -> u32 {
    tokio::task::yield_now().await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    n + 1
}

#[memoize(cache = MIXED, key_prefix = "shared", timeout = 60)]
fn shared_sync(n: u32) -> u32 {
    n + 1
}

/// Runs `test` on a current-thread runtime in its own thread; fails instead of hanging.
fn within_seconds(test: impl FnOnce() + Send + 'static) {
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        test();
        let _ = done.send(());
    });
    finished
        .recv_timeout(Duration::from_secs(10))
        .expect("the calls finished (a blocking follower must not wait on its own thread)");
}

#[test]
fn a_sync_follower_never_woke_on_a_current_thread_runtime() {
    within_seconds(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let leader = tokio::spawn(shared_async(1));
            tokio::task::yield_now().await; // the async leader is now inside its body
            assert_eq!(
                shared_sync(1),
                2,
                "computed without waiting for the async leader"
            );
            assert_eq!(leader.await.unwrap(), 2);
        });
    });
}

#[test]
fn blocking_get_or_set_with_inside_async_code_never_woke() {
    within_seconds(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let cache = Cache::memory();
        runtime.block_on(async {
            let leader = {
                let cache = cache.clone();
                tokio::spawn(async move {
                    cache
                        .get_or_set_with("k", TTL, || async {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            1u8
                        })
                        .await
                })
            };
            tokio::task::yield_now().await;
            assert_eq!(cache.blocking().get_or_set_with("k", TTL, || 1u8), 1);
            assert_eq!(leader.await.unwrap(), 1);
        });
    });
}

#[test]
fn a_sync_follower_outside_a_runtime_still_waits_for_an_async_leader() {
    let cache = Cache::memory();
    let runs = Arc::new(AtomicUsize::new(0));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (entered, inside) = mpsc::channel();
    let leader = {
        let (cache, runs) = (cache.clone(), runs.clone());
        runtime.spawn(async move {
            cache
                .get_or_set_with("k", TTL, || async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    entered.send(()).unwrap();
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    1u8
                })
                .await
        })
    };
    inside.recv().unwrap();
    let v = cache.blocking().get_or_set_with("k", TTL, || {
        runs.fetch_add(1, Ordering::SeqCst);
        2u8
    });
    assert_eq!(v, 1, "the plain thread waited for the leader's value");
    assert_eq!(runtime.block_on(leader).unwrap(), 1);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn delete_has_clear_and_delete_prefix_counted_nothing() {
    let cache = Cache::memory();
    cache
        .set_many(&[("a", 1u8), ("b", 2), ("user:1", 3), ("user:2", 4), ("c", 5)])
        .await
        .unwrap();
    assert!(cache.has("a").await.unwrap());
    assert!(!cache.has("zz").await.unwrap());
    assert!(cache.delete("a").await.unwrap());
    assert_eq!(cache.delete_many(&["b", "nothing"]).await.unwrap(), 1);
    assert_eq!(cache.delete_prefix("user:").await.unwrap(), 2);
    assert_eq!(cache.blocking().clear().unwrap(), 1);
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses), (1, 1), "has is a read");
    assert_eq!(stats.deletes, 5);
    assert_eq!(stats.errors, 0);
}

/// A backend whose every operation fails, as an unreachable server's would.
#[derive(Debug)]
struct Unreachable;

fn down<T>() -> cache_core::Result<T> {
    Err(Error::new(ErrorKind::Connection, "unreachable"))
}

impl BlockingBackend for Unreachable {
    fn get(&self, _: &str) -> cache_core::Result<Option<Bytes>> {
        down()
    }
    fn get_many(&self, _: &[&str]) -> cache_core::Result<Vec<Option<Bytes>>> {
        down()
    }
    fn set(&self, _: &str, _: Bytes, _: Ttl) -> cache_core::Result<()> {
        down()
    }
    fn set_many(&self, _: &[(&str, Bytes)], _: Ttl) -> cache_core::Result<()> {
        down()
    }
    fn add(&self, _: &str, _: Bytes, _: Ttl) -> cache_core::Result<bool> {
        down()
    }
    fn delete(&self, _: &str) -> cache_core::Result<bool> {
        down()
    }
    fn delete_many(&self, _: &[&str]) -> cache_core::Result<u64> {
        down()
    }
    fn exists(&self, _: &str) -> cache_core::Result<bool> {
        down()
    }
    fn delete_prefix(&self, _: &str) -> cache_core::Result<u64> {
        down()
    }
}

#[async_trait]
impl Backend for Unreachable {
    async fn get(&self, _: &str) -> cache_core::Result<Option<Bytes>> {
        down()
    }
    async fn get_many(&self, _: &[&str]) -> cache_core::Result<Vec<Option<Bytes>>> {
        down()
    }
    async fn set(&self, _: &str, _: Bytes, _: Ttl) -> cache_core::Result<()> {
        down()
    }
    async fn set_many(&self, _: &[(&str, Bytes)], _: Ttl) -> cache_core::Result<()> {
        down()
    }
    async fn add(&self, _: &str, _: Bytes, _: Ttl) -> cache_core::Result<bool> {
        down()
    }
    async fn delete(&self, _: &str) -> cache_core::Result<bool> {
        down()
    }
    async fn delete_many(&self, _: &[&str]) -> cache_core::Result<u64> {
        down()
    }
    async fn exists(&self, _: &str) -> cache_core::Result<bool> {
        down()
    }
    async fn delete_prefix(&self, _: &str) -> cache_core::Result<u64> {
        down()
    }
}

#[tokio::test]
async fn failed_deletes_reads_and_clears_counted_nothing() {
    let cache = Cache::builder().backend(Unreachable).build().unwrap();
    assert!(cache.delete("a").await.is_err());
    assert!(cache.delete_many(&["a", "b"]).await.is_err());
    assert!(cache.has("a").await.is_err());
    assert!(cache.clear().await.is_err());
    assert!(cache.delete_prefix("user:").await.is_err());
    assert!(cache.get::<u8>("a").await.is_err());
    assert!(cache.get_many::<u8>(&["a"]).await.is_err());
    let blocking = cache.blocking();
    assert!(blocking.delete("a").is_err());
    assert!(blocking.delete_many(&["a"]).is_err());
    assert!(blocking.has("a").is_err());
    assert!(blocking.clear().is_err());
    assert!(blocking.delete_prefix("u").is_err());
    assert!(blocking.get::<u8>("a").is_err());
    assert!(blocking.get_many::<u8>(&["a"]).is_err());
    assert_eq!(cache.stats().errors, 14);
}
