//! One "process" of the cross-process stampede tests: `callers` concurrent calls of one
//! cached computation, with a lease, against the Redis at `url`.
//!
//! Usage: `stampede_worker <url> <callers> <body-ms> <lease-ms> <api|memoize>`
//!
//! Prints `computing` (flushed) each time the body starts, and `done <runs>` at the end.

use std::io::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cache_core::stampede::Stampede;
use cache_core::{Cache, CallOptions};

static RUNS: AtomicUsize = AtomicUsize::new(0);

async fn body(body_ms: u64) -> u64 {
    RUNS.fetch_add(1, Ordering::SeqCst);
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "computing");
        let _ = out.flush();
    }
    tokio::time::sleep(Duration::from_millis(body_ms)).await;
    42
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, callers, body_ms, lease_ms] = &args[..] else {
        eprintln!("usage: stampede_worker <url> <callers> <body-ms> <lease-ms>");
        std::process::exit(2);
    };
    let callers: usize = callers.parse().expect("callers");
    let body_ms: u64 = body_ms.parse().expect("body-ms");
    let lease = Duration::from_millis(lease_ms.parse().expect("lease-ms"));
    let backend = cache_redis::RedisBackend::open(url).expect("a valid URL");
    let cache = Cache::builder().backend(backend).build().expect("a cache");
    let mut options = CallOptions::timeout(Duration::from_secs(60));
    options.stampede = Stampede::default().lease(lease);

    let mut tasks = Vec::new();
    for _ in 0..callers {
        let cache = cache.clone();
        tasks.push(tokio::spawn(async move {
            cache
                .get_or_set_with_options("cold", options, || body(body_ms))
                .await
        }));
    }
    for task in tasks {
        assert_eq!(task.await.expect("no panic"), 42);
    }
    println!("done {}", RUNS.load(Ordering::SeqCst));
}
