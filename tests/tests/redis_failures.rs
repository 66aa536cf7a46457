//! Redis killed, restarted and paused under a running cache, and the circuit breaker.
//!
//! Nothing here asserts tight timings: calls are counted (commands and connections the
//! server saw), and the only time bound is a generous "well under two seconds" per call.

mod redis_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cache_core::Cache;
use cache_core::backend::{Backend, BlockingBackend};
use cache_redis::{BreakerSettings, RedisBackend};
use redis_support::{cache, cache_on};
use tests::RedisServer;

const TTL: Duration = Duration::from_secs(60);

/// A backend whose breaker opens after 3 failures and probes every `probe_interval`.
fn with_breaker(server: &RedisServer, probe_interval: Duration) -> RedisBackend {
    RedisBackend::builder()
        .url(server.url())
        .breaker(BreakerSettings::new(3, probe_interval))
        .build()
        .unwrap()
}

/// Retries `f` until it returns true, for up to ten seconds.
async fn eventually(mut f: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_call_returns_the_right_value_while_redis_is_killed() {
    let mut server = RedisServer::start();
    let cache = cache_on(with_breaker(&server, Duration::from_millis(200)), "app:");
    let calls = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for t in 0..8u64 {
        let cache = cache.clone();
        let calls = calls.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..300u64 {
                let n = (t * 7 + i) % 25;
                let v = cache
                    .get_or_set_with(&format!("k{n}"), TTL, || async move { n * n })
                    .await;
                assert_eq!(v, n * n);
                calls.fetch_add(1, Ordering::Relaxed);
                if i % 50 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        }));
    }
    // Kill the server once calls are flowing.
    while calls.load(Ordering::Relaxed) < 200 {
        tokio::task::yield_now().await;
    }
    server.kill();
    for task in tasks {
        task.await.expect("no call panicked");
    }
    assert_eq!(calls.load(Ordering::Relaxed), 8 * 300);
}

#[test]
fn every_blocking_call_returns_the_right_value_while_redis_is_killed() {
    let mut server = RedisServer::start();
    let cache = cache_on(with_breaker(&server, Duration::from_millis(200)), "app:");
    let calls = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let cache = cache.clone();
            let calls = calls.clone();
            std::thread::spawn(move || {
                for i in 0..300u64 {
                    let n = (t * 7 + i) % 25;
                    let v: u64 = cache
                        .blocking()
                        .get_or_set_with(&format!("k{n}"), TTL, || n + 1);
                    assert_eq!(v, n + 1);
                    calls.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    while calls.load(Ordering::Relaxed) < 100 {
        std::thread::yield_now();
    }
    server.kill();
    for thread in threads {
        thread.join().expect("no call panicked");
    }
}

#[tokio::test]
async fn hits_resume_after_a_restart_without_rebuilding_the_cache() {
    let mut server = RedisServer::start();
    let cache = cache_on(with_breaker(&server, Duration::from_millis(50)), "app:");
    cache.set("k", &1u32).await.unwrap();
    cache.blocking().set("b", &2u32).unwrap();

    server.restart(); // same port, empty database
    assert!(
        eventually(async || cache.set("k", &3u32).await.is_ok()).await,
        "writes resume"
    );
    assert!(
        eventually(async || cache.blocking().set("b", &4u32).is_ok()).await,
        "blocking writes resume"
    );
    server.reset_stats();
    assert_eq!(cache.get::<u32>("k").await.unwrap(), Some(3));
    assert_eq!(cache.blocking().get::<u32>("b").unwrap(), Some(4));
    assert_eq!(server.command_count("get"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_to_a_paused_redis_return_within_the_timeouts() {
    let mut server = RedisServer::start();
    // No breaker: every call must hit the time-outs, not fail fast.
    let cache = cache(&server, "app:");
    cache.set("warm", &0u8).await.unwrap();
    cache.blocking().set("warm", &0u8).unwrap();
    server.pause();
    for i in 0..3u64 {
        let started = Instant::now();
        let v = cache
            .get_or_set_with(&format!("a{i}"), TTL, || async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                i
            })
            .await;
        assert_eq!(v, i);
        let took = started.elapsed();
        assert!(took < Duration::from_secs(2), "async call took {took:?}");

        let started = Instant::now();
        let err = cache.get::<u64>("warm").await.unwrap_err();
        assert!(err.is_timeout() || err.is_connection(), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(2));

        let blocking_cache = cache.clone();
        let started = Instant::now();
        let v = tokio::task::spawn_blocking(move || {
            blocking_cache
                .blocking()
                .get_or_set_with(&format!("b{i}"), TTL, || i + 10)
        })
        .await
        .unwrap();
        assert_eq!(v, i + 10);
        let took = started.elapsed();
        assert!(took < Duration::from_secs(2), "blocking call took {took:?}");
    }
    server.resume();
    assert!(
        eventually(async || cache.get::<u8>("warm").await.ok().flatten() == Some(0)).await,
        "hits resume after SIGCONT"
    );
}

#[tokio::test]
async fn an_open_breaker_fails_fast_without_touching_the_network() {
    let mut server = RedisServer::start();
    // A probe interval far longer than the twenty calls below take, even on a loaded
    // machine, so the prober's first connection comes after the count below.
    let backend = with_breaker(&server, Duration::from_secs(2));
    Backend::set(&backend, "k", "v".into(), None).await.unwrap();
    server.reset_stats();
    server.pause();

    let mut errors = Vec::new();
    for _ in 0..10 {
        errors.push(Backend::get(&backend, "k").await.unwrap_err());
    }
    for _ in 0..10 {
        errors.push(BlockingBackend::get(&backend, "k").unwrap_err());
    }
    assert!(backend.is_circuit_open());
    // Three calls reached the network and timed out; the other seventeen failed fast.
    let fast: Vec<_> = errors
        .iter()
        .filter(|e| e.to_string().contains("circuit breaker is open"))
        .collect();
    assert_eq!(fast.len(), 17, "{errors:#?}");
    assert!(fast.iter().all(|e| e.is_connection()));

    server.resume();
    // The first call sent one GET; the next two opened connections that timed out in the
    // handshake. Nothing else reached the server: no GET and no connection from the
    // seventeen fast failures (the one connection more is this inspection's own).
    let connections = server.connections_received();
    assert!(
        connections <= 3,
        "{connections} connections: the breaker let calls through"
    );
    assert!(server.command_count("get") <= 1);

    // The background prober's next probe succeeds and closes the circuit.
    assert!(
        eventually(async || Backend::get(&backend, "k").await.is_ok()).await,
        "the breaker closes once Redis answers"
    );
    assert!(!backend.is_circuit_open());
    assert_eq!(
        BlockingBackend::get(&backend, "k").unwrap().as_deref(),
        Some(&b"v"[..])
    );
}

#[tokio::test]
async fn the_breaker_opens_on_a_killed_redis_and_recovers_after_a_restart() {
    let mut server = RedisServer::start();
    let backend = with_breaker(&server, Duration::from_millis(100));
    let cache: Cache = cache_on(backend.clone(), "app:");
    cache.set("k", &1u8).await.unwrap();
    server.kill();
    for _ in 0..5 {
        let v = cache.get_or_set_with("k", TTL, || async { 9u8 }).await;
        assert_eq!(v, 9);
    }
    assert!(backend.is_circuit_open());
    server.restart();
    assert!(
        eventually(async || cache.set("k", &2u8).await.is_ok()).await,
        "the prober closes the breaker"
    );
    assert_eq!(cache.get::<u8>("k").await.unwrap(), Some(2));
}
