//! One "process" of the cross-process stampede tests: `callers` concurrent calls of one
//! cached computation, with a lease, against the Redis at `url`.
//!
//! Usage: `stampede_worker <url> <callers> <body-ms> <lease-ms> <api|memoize|near-api>`: the
//! computation goes through `Cache::get_or_set_with_options` or a `#[memoize(lease = ..)]`
//! function; `near-api` is `api` on a cache with a near cache, whose change channel wakes
//! lease waiters in other processes.
//!
//! Prints `computing` (flushed) each time the body starts, `computed <unix µs>` when it ends,
//! `returned <unix µs>` as each caller returns, and `done <runs>` at the end.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{LazyLock, OnceLock};
use std::time::Duration;

use cache_core::stampede::Stampede;
use cache_core::{Cache, CallOptions, memoize};

static RUNS: AtomicUsize = AtomicUsize::new(0);
static BODY_MS: AtomicU64 = AtomicU64::new(0);
static LEASE_MS: AtomicU64 = AtomicU64::new(0);
static URL: OnceLock<String> = OnceLock::new();
static NEAR: AtomicBool = AtomicBool::new(false);
static CACHE: LazyLock<Cache> = LazyLock::new(|| {
    let backend = cache_redis::RedisBackend::open(URL.get().expect("a URL")).expect("a valid URL");
    let builder = Cache::builder().backend(backend);
    let builder = if NEAR.load(Ordering::Relaxed) {
        builder.near_cache(cache_core::NearCache::new(Duration::from_secs(60)))
    } else {
        builder
    };
    builder.build().expect("a cache")
});

fn unix_us() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros()
}

/// The same computation through the attribute.
#[memoize(cache = CACHE, timeout = 60, lease = Duration::from_millis(LEASE_MS.load(Ordering::Relaxed)))]
async fn cold() -> u64 {
    body(BODY_MS.load(Ordering::Relaxed)).await
}

async fn body(body_ms: u64) -> u64 {
    RUNS.fetch_add(1, Ordering::SeqCst);
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "computing");
        let _ = out.flush();
    }
    tokio::time::sleep(Duration::from_millis(body_ms)).await;
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "computed {}", unix_us());
        let _ = out.flush();
    }
    42
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, callers, body_ms, lease_ms, mode] = &args[..] else {
        eprintln!(
            "usage: stampede_worker <url> <callers> <body-ms> <lease-ms> <api|memoize|near-api>"
        );
        std::process::exit(2);
    };
    let callers: usize = callers.parse().expect("callers");
    let body_ms: u64 = body_ms.parse().expect("body-ms");
    let lease = Duration::from_millis(lease_ms.parse().expect("lease-ms"));
    URL.set(url.clone()).expect("set once");
    BODY_MS.store(body_ms, Ordering::Relaxed);
    LEASE_MS.store(lease.as_millis() as u64, Ordering::Relaxed);
    let through_attribute = mode == "memoize";
    NEAR.store(mode == "near-api", Ordering::Relaxed);
    if NEAR.load(Ordering::Relaxed) {
        // Subscribed and in sync before the callers start.
        CACHE.blocking().has("warm-up").ok();
        std::thread::sleep(Duration::from_millis(300));
    }
    let mut options = CallOptions::timeout(Duration::from_secs(60));
    options.stampede = Stampede::default().lease(lease);

    let mut tasks = Vec::new();
    for _ in 0..callers {
        tasks.push(tokio::spawn(async move {
            let value = if through_attribute {
                cold().await
            } else {
                CACHE
                    .get_or_set_with_options("cold", options, || body(body_ms))
                    .await
            };
            (value, unix_us())
        }));
    }
    for task in tasks {
        let (value, returned) = task.await.expect("no panic");
        assert_eq!(value, 42);
        println!("returned {returned}");
    }
    println!("done {}", RUNS.load(Ordering::SeqCst));
}
