//! Counts the client-side cost of cache hits without a clock: run it under
//! `valgrind --tool=callgrind` twice with different `n` and divide the difference in
//! instructions by the difference in `n` (startup cancels out). Wall-clock benchmarks on a
//! shared 2-core machine move by 10 to 20 %; instruction counts do not.
//!
//! Usage: `hit_cost <redis-url> <memoize|backend|raw> <sync|async> <n>` (`backend`: the
//! backend's own async `get`, without the attribute), or `hit_cost memory memoize <sync|async>
//! <n>` for the in-memory backend.

use std::hint::black_box;
use std::sync::{LazyLock, OnceLock};

use cache_core::{Cache, memoize};

static URL: OnceLock<String> = OnceLock::new();
static CACHE: LazyLock<Cache> = LazyLock::new(|| {
    let url = URL.get().expect("a URL");
    if url == MEMORY {
        return Cache::memory();
    }
    let backend = cache_redis::RedisBackend::open(url).expect("a valid URL");
    Cache::builder().backend(backend).build().expect("a cache")
});

/// Given instead of a Redis URL, runs the memoize modes on the in-memory backend.
const MEMORY: &str = "memory";

#[memoize(cache = CACHE, timeout = 0)]
fn hundred_sync(n: u64) -> String {
    format!("{n:0>100}")
}

#[memoize(cache = CACHE, timeout = 0)]
async fn hundred(n: u64) -> String {
    format!("{n:0>100}")
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, what, flavour, n] = &args[..] else {
        eprintln!("usage: hit_cost <redis-url> <memoize|backend|raw> <sync|async> <n>");
        std::process::exit(2);
    };
    URL.set(url.clone()).expect("set once");
    let n: u64 = n.parse().expect("n");
    let client = || redis::Client::open(url.as_str()).expect("a valid URL");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    match (what.as_str(), flavour.as_str()) {
        ("memoize", "sync") => {
            hundred_sync(7);
            for _ in 0..n {
                black_box(hundred_sync(black_box(7)));
            }
        }
        ("raw", "sync") => {
            hundred_sync(7);
            let key = format!(
                "{}{}",
                CACHE.namespace(),
                hundred_sync::key(7).expect("a key")
            );
            let mut conn = client().get_connection().expect("a connection");
            for _ in 0..n {
                let bytes: Vec<u8> = redis::cmd("GET").arg(&key).query(&mut conn).expect("GET");
                black_box(bytes);
            }
        }
        ("memoize", "async") => runtime.block_on(async {
            hundred(7).await;
            for _ in 0..n {
                black_box(hundred(black_box(7)).await);
            }
        }),
        ("backend", "async") => runtime.block_on(async {
            hundred(7).await;
            let key = format!("{}{}", CACHE.namespace(), hundred::key(7).expect("a key"));
            let backend = cache_redis::RedisBackend::open(url.as_str()).expect("a valid URL");
            for _ in 0..n {
                let bytes = cache_core::backend::Backend::get(&backend, &key).await;
                black_box(bytes.expect("GET"));
            }
        }),
        ("raw", "async") => runtime.block_on(async {
            hundred(7).await;
            let key = format!("{}{}", CACHE.namespace(), hundred::key(7).expect("a key"));
            let mut conn = client()
                .get_multiplexed_async_connection()
                .await
                .expect("a connection");
            for _ in 0..n {
                let bytes: Vec<u8> = redis::cmd("GET")
                    .arg(&key)
                    .query_async(&mut conn)
                    .await
                    .expect("GET");
                black_box(bytes);
            }
        }),
        _ => {
            eprintln!("usage: hit_cost <redis-url> <memoize|backend|raw> <sync|async> <n>");
            std::process::exit(2);
        }
    }
}
