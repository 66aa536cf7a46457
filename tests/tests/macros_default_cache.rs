//! Without `cache = ...`, functions use the process-wide cache: uncached (with a warning)
//! until one is installed, cached after. One test, because a process installs only once.

use std::sync::atomic::{AtomicUsize, Ordering};

use cache_core::{Cache, cached, memoize};

static RUNS: AtomicUsize = AtomicUsize::new(0);

#[memoize(timeout = 60)]
fn square(num: u64) -> String {
    RUNS.fetch_add(1, Ordering::SeqCst);
    format!("Square of {num} is {}", num * num)
}

#[cached(key_prefix = "homepage", timeout = 30)]
async fn home() -> String {
    "<h1>home</h1>".to_owned()
}

#[tokio::test(flavor = "current_thread")]
async fn functions_run_uncached_until_a_default_cache_is_installed() {
    let (logs, guard) = tests::logs::capture();
    assert_eq!(square(4), "Square of 4 is 16");
    assert_eq!(square(4), "Square of 4 is 16");
    drop(guard);
    let warnings: Vec<_> = logs
        .text()
        .lines()
        .filter(|l| l.contains("WARN"))
        .map(str::to_owned)
        .collect();
    assert_eq!(
        warnings.len(),
        1,
        "one warning, on the first call only: {warnings:?}"
    );
    assert!(
        warnings[0].contains("macros_default_cache::square"),
        "names the function: {}",
        warnings[0]
    );
    assert!(
        warnings[0].contains("no cache is installed"),
        "{}",
        warnings[0]
    );
    assert_eq!(
        RUNS.load(Ordering::SeqCst),
        2,
        "no cache: the body runs every time"
    );
    assert_eq!(square::stats().bypasses, 2);

    cache_core::install(Cache::memory()).unwrap();
    let cache = cache_core::installed().unwrap();
    assert_eq!(square(4), "Square of 4 is 16");
    assert_eq!(square(4), "Square of 4 is 16");
    assert_eq!(RUNS.load(Ordering::SeqCst), 3, "cached once installed");
    assert!(
        square::invalidate(4).unwrap(),
        "stored in the installed cache"
    );

    assert_eq!(home().await, "<h1>home</h1>");
    assert!(cache.has("homepage").await.unwrap());
    assert!(home::invalidate().await.unwrap());
    assert!(!cache.has("homepage").await.unwrap());
}
