//! The blocking half needs no async runtime and never waits on one: it works from a plain
//! `fn`, inside a Tokio worker thread, in `spawn_blocking` and on a `current_thread` runtime.

mod redis_support;

use std::time::Duration;

use cache_core::Cache;
use redis_support::cache;
use tests::RedisServer;

const TTL: Duration = Duration::from_secs(60);

fn square(cache: &Cache, n: u64) -> u64 {
    cache
        .blocking()
        .get_or_set_with(&format!("square:{n}"), TTL, || n * n)
}

#[test]
fn from_a_plain_fn_without_any_runtime() {
    let server = RedisServer::start();
    let cache = cache(&server, "sync:");
    assert_eq!(square(&cache, 4), 16);
    server.reset_stats();
    assert_eq!(square(&cache, 4), 16);
    assert_eq!(server.command_count("get"), 1);
    assert_eq!(server.command_count("set"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inside_a_tokio_worker_thread() {
    let server = RedisServer::start();
    let cache = cache(&server, "sync:");
    // Called directly on the worker, as a sync fn called from async code would be.
    assert_eq!(square(&cache, 5), 25);
    let spawned = cache.clone();
    let v = tokio::spawn(async move { square(&spawned, 5) })
        .await
        .unwrap();
    assert_eq!(v, 25);
    // The async half keeps working alongside.
    assert_eq!(cache.get::<u64>("square:5").await.unwrap(), Some(25));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_spawn_blocking() {
    let server = RedisServer::start();
    let cache = cache(&server, "sync:");
    let handles: Vec<_> = (0..16u64)
        .map(|n| {
            let cache = cache.clone();
            tokio::task::spawn_blocking(move || square(&cache, n))
        })
        .collect();
    for (n, handle) in handles.into_iter().enumerate() {
        let n = n as u64;
        assert_eq!(handle.await.unwrap(), n * n);
    }
}

#[tokio::test(flavor = "current_thread")]
async fn on_a_current_thread_runtime() {
    let server = RedisServer::start();
    let cache = cache(&server, "sync:");
    // The only thread is the runtime's; a blocking call that waited on the runtime would
    // deadlock here.
    assert_eq!(square(&cache, 6), 36);
    assert_eq!(cache.get::<u64>("square:6").await.unwrap(), Some(36));
    assert_eq!(square(&cache, 6), 36);
    cache.set("async", &1u8).await.unwrap();
    assert_eq!(cache.blocking().get::<u8>("async").unwrap(), Some(1));
}

#[test]
fn many_threads_share_a_small_pool() {
    let server = RedisServer::start();
    let cache = cache(&server, "sync:");
    std::thread::scope(|scope| {
        for t in 0..16u64 {
            let cache = &cache;
            scope.spawn(move || {
                for n in 0..50 {
                    assert_eq!(square(cache, t * 100 + n), (t * 100 + n).pow(2));
                }
            });
        }
    });
    // Connections were reused: far fewer than one per call (800 calls).
    let connections = server.connections_received();
    assert!(connections < 100, "{connections} connections for 800 calls");
}

#[test]
fn one_backend_outlives_the_runtime_that_first_used_it() {
    let server = RedisServer::start();
    let cache = cache(&server, "rt:");
    let first = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    first.block_on(cache.set("k", &1u8)).unwrap();
    drop(first); // the task driving the async connection is gone

    let second = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let value = second.block_on(async {
        // The first call may fail on the dead connection; the next one reconnects.
        for _ in 0..3 {
            if let Ok(value) = cache.get::<u8>("k").await {
                return value;
            }
        }
        None
    });
    assert_eq!(value, Some(1));
}
