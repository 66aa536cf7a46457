//! Leases on a shared in-memory store seen by the async driver, through a backend that
//! counts the leased miss's looks and can hold their answers back: a waiter woken by the
//! holder's store without a poll, and a call cancelled at each await of the lease
//! operations. Two `Cache` handles on one backend stand in for two processes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use cache_core::backend::memory::MemoryBackend;
use cache_core::backend::{Acquired, Backend, BlockingBackend, Ttl};
use cache_core::stampede::Stampede;
use cache_core::{Cache, CallOptions, Result};

/// A shared memory store that counts the looks of leased misses; while `hold` is set, the
/// lease operations reach the store but their answers never come back.
#[derive(Debug, Default)]
struct Gated {
    store: MemoryBackend,
    looks: AtomicUsize,
    hold: AtomicBool,
}

impl Gated {
    fn memory(&self) -> &dyn BlockingBackend {
        &self.store
    }

    async fn answer<T>(&self, answer: Result<T>) -> Result<T> {
        if self.hold.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        answer
    }
}

#[async_trait]
impl Backend for Gated {
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        BlockingBackend::get(&self.store, key)
    }
    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        BlockingBackend::get_many(&self.store, keys)
    }
    async fn set(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<()> {
        BlockingBackend::set(&self.store, key, value, ttl)
    }
    async fn set_many(&self, entries: &[(&str, Bytes)], ttl: Ttl) -> Result<()> {
        BlockingBackend::set_many(&self.store, entries, ttl)
    }
    async fn add(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<bool> {
        BlockingBackend::add(&self.store, key, value, ttl)
    }
    async fn delete(&self, key: &str) -> Result<bool> {
        BlockingBackend::delete(&self.store, key)
    }
    async fn delete_many(&self, keys: &[&str]) -> Result<u64> {
        BlockingBackend::delete_many(&self.store, keys)
    }
    async fn exists(&self, key: &str) -> Result<bool> {
        BlockingBackend::exists(&self.store, key)
    }
    async fn delete_prefix(&self, prefix: &str) -> Result<u64> {
        BlockingBackend::delete_prefix(&self.store, prefix)
    }
    async fn delete_if_equal(&self, key: &str, expected: &[u8]) -> Result<bool> {
        BlockingBackend::delete_if_equal(&self.store, key, expected)
    }
    async fn acquire_lease(
        &self,
        key: &str,
        lease_key: &str,
        token: Bytes,
        time: Duration,
    ) -> Result<Acquired> {
        self.looks.fetch_add(1, Ordering::SeqCst);
        let acquired = self.memory().acquire_lease(key, lease_key, token, time);
        self.answer(acquired).await
    }
    async fn set_releasing(
        &self,
        key: &str,
        value: Bytes,
        ttl: Ttl,
        lease_key: &str,
        token: &[u8],
    ) -> Result<()> {
        let stored = self
            .memory()
            .set_releasing(key, value, ttl, lease_key, token);
        self.answer(stored).await
    }
}

/// Sync callers are not part of these tests: the blocking half only forwards.
impl BlockingBackend for Gated {
    fn get(&self, key: &str) -> Result<Option<Bytes>> {
        self.memory().get(key)
    }
    fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        self.memory().get_many(keys)
    }
    fn set(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<()> {
        self.memory().set(key, value, ttl)
    }
    fn set_many(&self, entries: &[(&str, Bytes)], ttl: Ttl) -> Result<()> {
        self.memory().set_many(entries, ttl)
    }
    fn add(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<bool> {
        self.memory().add(key, value, ttl)
    }
    fn delete(&self, key: &str) -> Result<bool> {
        self.memory().delete(key)
    }
    fn delete_many(&self, keys: &[&str]) -> Result<u64> {
        self.memory().delete_many(keys)
    }
    fn exists(&self, key: &str) -> Result<bool> {
        self.memory().exists(key)
    }
    fn delete_prefix(&self, prefix: &str) -> Result<u64> {
        self.memory().delete_prefix(prefix)
    }
    fn delete_if_equal(&self, key: &str, expected: &[u8]) -> Result<bool> {
        self.memory().delete_if_equal(key, expected)
    }
}

fn processes(store: &Arc<Gated>) -> [Cache; 2] {
    let cache = || {
        Cache::builder()
            .shared_backend(store.clone())
            .build()
            .unwrap()
    };
    [cache(), cache()]
}

fn leased() -> CallOptions {
    let mut options = CallOptions::timeout(Duration::from_secs(60));
    options.stampede = Stampede::default().lease(Duration::from_secs(5));
    options
}

/// With the clock paused, a pause only ends early: the clock has not moved when the waiter
/// returns, so no pause ran out, and it looked once more only.
#[tokio::test(start_paused = true)]
async fn a_waiter_on_another_process_lease_is_woken_by_its_store_before_any_poll() {
    let store = Arc::new(Gated::default());
    let [holder, waiter] = processes(&store);
    let (finish, finished) = tokio::sync::oneshot::channel::<()>();
    let holding = tokio::spawn(async move {
        holder
            .get_or_set_with_options("k", leased(), || async move {
                finished.await.unwrap();
                "theirs".to_owned()
            })
            .await
    });
    while !store.memory().exists("cache:k:~lease").unwrap() {
        tokio::task::yield_now().await;
    }
    let started = tokio::time::Instant::now();
    let waiting = tokio::spawn(async move {
        waiter
            .get_or_set_with_options("k", leased(), || async { "mine".to_owned() })
            .await
    });
    // The holder's look, and the waiter's first, which finds the lease busy.
    while store.looks.load(Ordering::SeqCst) < 2 {
        tokio::task::yield_now().await;
    }
    finish.send(()).unwrap();
    assert_eq!(holding.await.unwrap(), "theirs");
    assert_eq!(
        waiting.await.unwrap(),
        "theirs",
        "the waiter did not compute"
    );
    assert_eq!(
        started.elapsed(),
        Duration::ZERO,
        "woken before its pause ran out"
    );
    assert_eq!(
        store.looks.load(Ordering::SeqCst),
        3,
        "one more look by the waiter"
    );
}

/// A call dropped while its acquiring look is in flight (the look took the lease, its
/// answer never came) releases the lease.
#[tokio::test]
async fn a_call_cancelled_during_its_acquiring_look_releases_the_lease() {
    let store = Arc::new(Gated::default());
    let [cache, next] = processes(&store);
    store.hold.store(true, Ordering::SeqCst);
    let call = cache.get_or_set_with_options("k", leased(), || async { "v".to_owned() });
    let cancelled = tokio::time::timeout(Duration::from_millis(20), call).await;
    assert!(cancelled.is_err(), "the look never answered");
    assert_eq!(store.looks.load(Ordering::SeqCst), 1);
    store.hold.store(false, Ordering::SeqCst);
    tokio::task::yield_now().await; // the dropped lease's release runs in a spawned task
    assert!(
        !store.memory().exists("cache:k:~lease").unwrap(),
        "released"
    );
    let value = next
        .get_or_set_with_options("k", leased(), || async { "next".to_owned() })
        .await;
    assert_eq!(value, "next", "the next caller took the lease at once");
}

/// A call dropped while its store-and-release is in flight leaves no lease behind (the
/// guard's release finds nothing of its own) and its value stored.
#[tokio::test]
async fn a_call_cancelled_during_its_store_and_release_leaves_no_lease() {
    let store = Arc::new(Gated::default());
    let [cache, _] = processes(&store);
    let call = cache.get_or_set_with_options("k", leased(), || async {
        // The body runs once the lease is taken: from now on, answers are held back.
        store.hold.store(true, Ordering::SeqCst);
        "v".to_owned()
    });
    let cancelled = tokio::time::timeout(Duration::from_millis(20), call).await;
    assert!(cancelled.is_err(), "the store never answered");
    store.hold.store(false, Ordering::SeqCst);
    tokio::task::yield_now().await;
    assert!(
        !store.memory().exists("cache:k:~lease").unwrap(),
        "released"
    );
    assert_eq!(
        cache.get::<String>("k").await.unwrap().as_deref(),
        Some("v")
    );
}

/// A call dropped while it pauses on another caller's lease releases nothing.
#[tokio::test]
async fn a_call_cancelled_while_it_waits_on_another_lease_leaves_that_lease() {
    let store = Arc::new(Gated::default());
    let [cache, _] = processes(&store);
    let theirs = Bytes::from_static(b"theirs");
    assert!(
        store
            .memory()
            .add(
                "cache:k:~lease",
                theirs.clone(),
                Some(Duration::from_secs(60))
            )
            .unwrap()
    );
    let call = cache.get_or_set_with_options("k", leased(), || async { "v".to_owned() });
    let cancelled = tokio::time::timeout(Duration::from_millis(30), call).await;
    assert!(cancelled.is_err(), "still waiting");
    assert!(store.looks.load(Ordering::SeqCst) >= 1);
    tokio::task::yield_now().await;
    assert_eq!(
        store.memory().get("cache:k:~lease").unwrap(),
        Some(theirs),
        "the other caller's lease stays"
    );
}

/// A holder cancelled in its body releases its lease and wakes the waiters of this
/// process: one takes over at once, before its pause runs out.
#[tokio::test(start_paused = true)]
async fn a_cancelled_holder_wakes_a_waiter_that_takes_over_before_any_poll() {
    let store = Arc::new(Gated::default());
    let [holder, waiter] = processes(&store);
    let holding = tokio::spawn(async move {
        holder
            .get_or_set_with_options("k", leased(), std::future::pending::<String>)
            .await
    });
    while !store.memory().exists("cache:k:~lease").unwrap() {
        tokio::task::yield_now().await;
    }
    let started = tokio::time::Instant::now();
    let waiting = tokio::spawn(async move {
        waiter
            .get_or_set_with_options("k", leased(), || async { "mine".to_owned() })
            .await
    });
    while store.looks.load(Ordering::SeqCst) < 2 {
        tokio::task::yield_now().await;
    }
    holding.abort();
    assert_eq!(waiting.await.unwrap(), "mine", "the waiter took over");
    assert_eq!(
        started.elapsed(),
        Duration::ZERO,
        "woken before its pause ran out"
    );
    assert_eq!(store.looks.load(Ordering::SeqCst), 3);
}
