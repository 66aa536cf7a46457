//! The stampede options of the attributes, on the in-memory backend.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use cache_core::{Cache, cached, memoize};

static CACHE: LazyLock<Cache> = LazyLock::new(Cache::memory);
static RUNS: AtomicU32 = AtomicU32::new(0);

#[memoize(cache = CACHE, timeout = Duration::from_millis(50), serve_stale = 30)]
fn version(id: u8) -> u32 {
    let _ = id;
    RUNS.fetch_add(1, Ordering::SeqCst)
}

#[test]
fn serve_stale_serves_the_old_value_to_others_while_one_refreshes() {
    assert_eq!(version(1), 0);
    std::thread::sleep(Duration::from_millis(80));
    // The first caller past the timeout refreshes in line and gets the new value.
    assert_eq!(version(1), 1);
    assert_eq!(version(1), 1, "fresh again");
    assert_eq!(RUNS.load(Ordering::SeqCst), 2);
}

static LEASED_RUNS: AtomicU32 = AtomicU32::new(0);

#[cached(cache = CACHE, key_prefix = "leased", timeout = 60, lease = 2, jitter = 0.5, early_refresh = 1.0)]
async fn leased() -> u32 {
    tokio::time::sleep(Duration::from_millis(50)).await;
    LEASED_RUNS.fetch_add(1, Ordering::SeqCst)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_jitter_and_early_refresh_combine_on_cached() {
    let tasks: Vec<_> = (0..50).map(|_| tokio::spawn(leased())).collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), 0);
    }
    assert_eq!(LEASED_RUNS.load(Ordering::SeqCst), 1);
    assert!(
        !CACHE.has("leased:~lease").await.unwrap(),
        "the lease was released"
    );
    assert!(CACHE.has("leased").await.unwrap());
}

static SLOW_RUNS: AtomicU32 = AtomicU32::new(0);
/// Holds the refresh until the test has made its calls, so "nobody waited" needs no clock.
static REFRESH_GATE: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(0);

/// An async function whose arguments own their data: its stale refresh runs in the
/// background.
#[memoize(cache = CACHE, timeout = Duration::from_millis(50), serve_stale = 30)]
async fn slow_version(id: u64) -> u32 {
    let _ = id;
    if SLOW_RUNS.load(Ordering::SeqCst) > 0 {
        REFRESH_GATE.acquire().await.unwrap().forget();
    }
    SLOW_RUNS.fetch_add(1, Ordering::SeqCst)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_serve_stale_refreshes_in_the_background_and_nobody_waits() {
    assert_eq!(slow_version(9).await, 0);
    tokio::time::sleep(Duration::from_millis(80)).await;
    // Past the timeout: every caller, the one that starts the refresh included, gets the
    // stale value while the refresh is held at the gate. A caller that waited for the
    // refresh would never return before the gate opens.
    for _ in 0..20 {
        let served = tokio::time::timeout(Duration::from_secs(5), slow_version(9)).await;
        assert_eq!(served.expect("served without waiting for the refresh"), 0);
    }
    assert_eq!(
        SLOW_RUNS.load(Ordering::SeqCst),
        1,
        "the refresh is still held"
    );
    REFRESH_GATE.add_permits(1);
    // The background refresh lands, once.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while slow_version(9).await != 1 {
        assert!(std::time::Instant::now() < deadline, "the refresh landed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        SLOW_RUNS.load(Ordering::SeqCst),
        2,
        "one initial run, one refresh"
    );
}
