//! The circuit breaker and the cost of a failing Redis, on real `redis-server` processes
//! that the tests pause (`SIGSTOP`), kill and restart.
//!
//! Calls, commands and connections are counted; the few time figures asked for (how soon
//! hits resume, what one miss costs on a hung Redis) are asserted with generous bounds and
//! printed (`cargo test -p tests --test redis_breaker -- --nocapture`).

mod redis_support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, OnceLock};
use std::time::{Duration, Instant};

use cache_core::stampede::Stampede;
use cache_core::{Cache, CallOptions, memoize};
use cache_redis::{BreakerSettings, RedisBackend};
use redis_support::cache_on;
use tests::Late;
use tests::RedisServer;

const TTL: Duration = Duration::from_secs(60);
const CONNECT: Duration = Duration::from_millis(250);
const RESPONSE: Duration = Duration::from_millis(200);
const BODY: Duration = Duration::from_millis(10);

static SYNC: Late = Late(OnceLock::new());
static ASYNC: Late = Late(OnceLock::new());
static SPIN: Late = Late(OnceLock::new());

#[memoize(cache = SYNC, timeout = 60)]
fn slow_sync(n: u32) -> u32 {
    std::thread::sleep(BODY);
    n
}

#[memoize(cache = ASYNC, timeout = 60)]
async fn slow_async(n: u32) -> u32 {
    tokio::time::sleep(BODY).await;
    n
}

/// A body that never yields: only the cache can.
#[memoize(cache = SPIN, timeout = 60)]
async fn spin(n: u32) -> u32 {
    n
}

/// A backend with the default breaker and the default time-outs, written out.
fn backend(server: &RedisServer) -> RedisBackend {
    backend_with(server, BreakerSettings::default())
}

fn backend_with(server: &RedisServer, breaker: BreakerSettings) -> RedisBackend {
    RedisBackend::builder()
        .url(server.url())
        .connect_timeout(CONNECT)
        .response_timeout(RESPONSE)
        .breaker(breaker)
        .build()
        .unwrap()
}

/// Calls the async cache until its breaker opens (each call a miss on a dead Redis).
async fn open_the_breaker(cache: &Cache, backend: &RedisBackend) {
    for i in 0..20u32 {
        if backend.is_circuit_open() {
            return;
        }
        let _ = cache.get::<u32>(&format!("opening{i}")).await;
    }
    assert!(backend.is_circuit_open(), "the breaker opens");
}

/// Polls `cache` for `key` every 10 ms until it is a hit; the time that took, or `None`
/// after `limit`.
async fn first_hit(cache: &Cache, key: &str, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if let Ok(Some(_)) = cache.get::<u32>(key).await {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

/// Writes `key` of `cache` straight into Redis, as another process would.
fn store_raw(server: &RedisServer, cache: &Cache, key: &str) {
    let writer = cache_on(backend(server), cache.namespace());
    writer.blocking().set(key, &7u32).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breaker_recovers_after_a_probe_call_is_cancelled() {
    let mut server = RedisServer::start();
    let backend = backend(&server);
    let cache = cache_on(backend.clone(), "app:");
    cache.set("k", &1u32).await.unwrap();
    server.pause();
    open_the_breaker(&cache, &backend).await;
    // Past the old breaker's first back-off (1 s), where one call became the probe.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let call = cache.get_or_set_with("other", TTL, || async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        2u32
    });
    assert!(
        tokio::time::timeout(Duration::from_millis(50), call)
            .await
            .is_err(),
        "the call is cancelled"
    );
    server.resume();
    let took = first_hit(&cache, "k", Duration::from_secs(6)).await;
    eprintln!("after a cancelled call: first hit {took:?} after SIGCONT");
    let took = took.expect("hits come back after the cancelled call");
    assert!(took < Duration::from_millis(1500), "took {took:?}");
}

/// One cancelled call: `call` dropped after `after` (zero: polled once).
async fn cancel_after(after: Duration, call: impl Future<Output = u32>) {
    let _ = tokio::time::timeout(after, call).await;
}

/// Every await point of a miss, cancelled: the connect, the `GET`, the lease's `SET NX`, the
/// body, the store and the lease's release, on a running, a paused and a dead Redis, with the
/// breaker closed and open. After each, hits come back within a second and a half.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_call_at_each_await_point_leaves_the_cache_working() {
    let mut server = RedisServer::start();
    let options = CallOptions::builder()
        .timeout(TTL)
        .stampede(Stampede::default().lease(Duration::from_secs(1)))
        .build();
    let delays = [0, 1, 3, 10, 30, 60, 120, 210, 260, 400].map(Duration::from_millis);
    let runs = Arc::new(AtomicUsize::new(0));
    let call = |cache: &Cache, key: String| {
        let cache = cache.clone();
        let runs = runs.clone();
        async move {
            cache
                .get_or_set_with_options(&key, options, || async move {
                    runs.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    3u32
                })
                .await
        }
    };
    for (round, after) in delays.into_iter().enumerate() {
        // A running Redis and a fresh backend: the connect, the GET, the lease, the body,
        // the SET and the release are each in flight at one of the delays.
        let backend = backend(&server);
        let cache = cache_on(backend.clone(), "app:");
        cancel_after(after, call(&cache, format!("running{round}"))).await;
        store_raw(&server, &cache, "k");
        assert!(
            first_hit(&cache, "k", Duration::from_millis(1500))
                .await
                .is_some(),
            "running Redis, cancelled after {after:?}: hits"
        );

        // A paused Redis, breaker closed: the GET (or the connect) hangs when cancelled.
        server.pause();
        cancel_after(after, call(&cache, format!("paused{round}"))).await;
        server.resume();
        let took = first_hit(&cache, "k", Duration::from_millis(1500)).await;
        assert!(took.is_some(), "paused Redis, cancelled after {after:?}");

        // The breaker open on a paused Redis: the fail-fast path, cancelled; in three
        // rounds past the old breaker's back-off (1 s), where the call would have probed.
        server.pause();
        open_the_breaker(&cache, &backend).await;
        if round % 4 == 0 {
            tokio::time::sleep(Duration::from_millis(1100)).await;
        }
        cancel_after(after, call(&cache, format!("open{round}"))).await;
        server.resume();
        let took = first_hit(&cache, "k", Duration::from_millis(1500)).await;
        assert!(took.is_some(), "open breaker, cancelled after {after:?}");
    }
    // A dead Redis, breaker open, restarted: the fail-fast path and the prober's refused
    // connections, with calls cancelled all along.
    let backend = backend(&server);
    let cache = cache_on(backend.clone(), "app:");
    server.kill();
    open_the_breaker(&cache, &backend).await;
    for (round, after) in delays.into_iter().enumerate() {
        cancel_after(after, call(&cache, format!("dead{round}"))).await;
    }
    server.restart();
    store_raw(&server, &cache, "k");
    let took = first_hit(&cache, "k", Duration::from_millis(1500)).await;
    assert!(took.is_some(), "dead then restarted Redis");
    assert!(runs.load(Ordering::Relaxed) > 0, "some bodies ran");
}

/// Kills Redis for `outage` while callers keep calling, restarts it, and returns how long
/// after the restart the first hit came.
async fn recovery_after(outage: Duration) -> Option<Duration> {
    let mut server = RedisServer::start();
    let backend = backend(&server);
    let cache = cache_on(backend.clone(), "app:");
    cache.set("warm", &0u32).await.unwrap();
    server.kill();
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = {
        let (cache, stop) = (cache.clone(), stop.clone());
        tokio::spawn(async move {
            let mut i = 0u32;
            while !stop.load(Ordering::Relaxed) {
                cache
                    .get_or_set_with(&format!("t{}", i % 10), TTL, || async move { i })
                    .await;
                i = i.wrapping_add(1);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    tokio::time::sleep(outage).await;
    assert!(backend.is_circuit_open(), "the outage opened the breaker");
    server.restart();
    let restarted = Instant::now();
    store_raw(&server, &cache, "k");
    let took = first_hit(&cache, "k", Duration::from_secs(12))
        .await
        .map(|_| restarted.elapsed());
    stop.store(true, Ordering::Relaxed);
    traffic.await.unwrap();
    eprintln!("outage {outage:?}: first hit {took:?} after the restart");
    took
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hits_resume_within_a_second_of_redis_restarting() {
    // Lengths between the old breaker's probes (at 1, 3, 7, 15 s of an outage).
    for outage in [Duration::from_millis(1200), Duration::from_secs(4)] {
        let took = recovery_after(outage).await;
        let took = took.unwrap_or_else(|| panic!("no hit 12 s after a {outage:?} outage"));
        assert!(
            took < Duration::from_millis(1500),
            "after a {outage:?} outage the first hit came {took:?} after the restart"
        );
    }
}

/// Misses of a memoized function with a 10 ms body on a paused Redis, with a breaker that
/// never opens (so every call meets the time-outs), sync or async: how long each took.
/// Afterwards no `SET` reached Redis, and each miss opened at most one connection (for its
/// read; none for a store).
fn assert_one_timeout(label: &str, took: &[Duration], server: &mut RedisServer) {
    server.resume();
    let sets = server.command_count("set");
    let connections = server.connections_received();
    eprintln!(
        "{label}: misses on a paused Redis took {took:?}; sets {sets}, connections {connections}"
    );
    for took in took {
        // One time-out (the longer, 250 ms) plus the 10 ms body, with room for a busy machine.
        assert!(
            *took < Duration::from_millis(450),
            "{label}: a miss took {took:?}"
        );
    }
    assert_eq!(sets, 0, "{label}: a store was sent to the paused Redis");
    // The two inspections above opened one connection each.
    assert!(
        connections <= took.len() as u64 + 2,
        "{label}: {connections} connections for {} misses",
        took.len()
    );
}

#[test]
fn a_miss_on_a_paused_redis_pays_one_timeout_sync() {
    let mut server = RedisServer::start();
    let cache = cache_on(backend_with(&server, BreakerSettings::disabled()), "app:");
    cache.blocking().set("warm", &0u32).unwrap();
    let _ = SYNC.0.set(cache);
    server.reset_stats();
    server.pause();
    let took: Vec<_> = (0..3u32)
        .map(|i| {
            let started = Instant::now();
            assert_eq!(slow_sync(i), i);
            started.elapsed()
        })
        .collect();
    assert_one_timeout("sync", &took, &mut server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_miss_on_a_paused_redis_pays_one_timeout_async() {
    let mut server = RedisServer::start();
    let cache = cache_on(backend_with(&server, BreakerSettings::disabled()), "app:");
    cache.set("warm", &0u32).await.unwrap();
    let _ = ASYNC.0.set(cache);
    server.reset_stats();
    server.pause();
    let mut took = Vec::new();
    for i in 0..3u32 {
        let started = Instant::now();
        assert_eq!(slow_async(i).await, i);
        took.push(started.elapsed());
    }
    assert_one_timeout("async", &took, &mut server);
}

#[tokio::test(flavor = "current_thread")]
async fn fail_fast_calls_yield_to_the_scheduler() {
    let mut server = RedisServer::start();
    let backend = backend(&server);
    let cache = cache_on(backend.clone(), "app:");
    cache.set("warm", &0u32).await.unwrap();
    let _ = SPIN.0.set(cache.clone());
    server.kill();
    open_the_breaker(&cache, &backend).await;
    let other_ran = Arc::new(AtomicBool::new(false));
    let flag = other_ran.clone();
    tokio::spawn(async move { flag.store(true, Ordering::Relaxed) });
    // A loop of memoized calls whose bodies never yield: only the fail-fast read can.
    let mut calls = 0u32;
    while calls < 5_000 && !other_ran.load(Ordering::Relaxed) {
        assert_eq!(spin(calls).await, calls);
        calls += 1;
    }
    eprintln!("the other task ran after {calls} fail-fast calls");
    assert!(
        other_ran.load(Ordering::Relaxed),
        "5000 fail-fast calls in a row never let another task run"
    );
    assert!(backend.is_circuit_open());
}

#[test]
fn five_hundred_sync_callers_open_a_bounded_number_of_connections() {
    // Redis refuses connections beyond `maxclients` (one more than the pool's bound, for
    // this test's own inspections): a call that needed one more would fail and be counted
    // as an error.
    let limit = cache_redis::DEFAULT_MAX_CONNECTIONS + 1;
    let server = RedisServer::builder()
        .arg("--maxclients")
        .arg(limit.to_string())
        .start();
    let cache = cache_on(backend(&server), "app:");
    server.reset_stats();
    let barrier = Arc::new(Barrier::new(500));
    let threads: Vec<_> = (0..500u64)
        .map(|i| {
            let (cache, barrier) = (cache.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let v: u64 = cache
                    .blocking()
                    .get_or_set_with(&format!("k{i}"), TTL, || i * 2);
                assert_eq!(v, i * 2);
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("no caller panicked");
    }
    // This inspection's own connection is one of them.
    let received = server.connections_received() - 1;
    let stats = cache.stats();
    eprintln!(
        "500 sync callers: {received} connections opened in all, at most {limit} at once allowed; \
         {} hits, {} stores, {} errors",
        stats.hits, stats.stores, stats.errors
    );
    assert_eq!(
        stats.errors, 0,
        "a call found no connection within the bound"
    );
    assert_eq!(stats.stores, 500);
}

#[test]
fn a_sync_set_many_on_a_paused_redis_pays_one_timeout() {
    let mut server = RedisServer::start();
    let cache = cache_on(backend_with(&server, BreakerSettings::disabled()), "app:");
    cache.blocking().set("warm", &0u32).unwrap();
    server.pause();
    let entries: Vec<(String, u32)> = (0..5).map(|i| (format!("many{i}"), i)).collect();
    let entries: Vec<(&str, u32)> = entries.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let started = Instant::now();
    let err = cache.blocking().set_many(&entries).unwrap_err();
    let took = started.elapsed();
    server.resume();
    eprintln!("a 5-entry set_many on a paused Redis failed after {took:?}");
    assert!(err.is_timeout(), "{err:?}");
    // One response time-out (200 ms) for the whole pipeline, with room for a busy machine.
    assert!(took < Duration::from_millis(450), "took {took:?}");
}

#[test]
fn sync_hits_resume_within_a_second_of_redis_restarting_with_a_full_pool() {
    let mut server = RedisServer::start();
    let backend = backend(&server);
    let cache = cache_on(backend.clone(), "app:");
    // Sixteen callers at once leave the pool full of idle connections.
    let barrier = Arc::new(Barrier::new(16));
    let warmers: Vec<_> = (0..16u32)
        .map(|i| {
            let (cache, barrier) = (cache.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                cache.blocking().set(&format!("w{i}"), &i).unwrap();
            })
        })
        .collect();
    for warmer in warmers {
        warmer.join().unwrap();
    }
    server.kill();
    for i in 0..20u32 {
        if backend.is_circuit_open() {
            break;
        }
        let _ = cache.blocking().get::<u32>(&format!("opening{i}"));
    }
    assert!(backend.is_circuit_open());
    std::thread::sleep(Duration::from_millis(500));
    server.restart();
    let restarted = Instant::now();
    store_raw(&server, &cache, "k");
    let mut failures = 0;
    let took = loop {
        match cache.blocking().get::<u32>("k") {
            Ok(Some(_)) => break Some(restarted.elapsed()),
            Ok(None) => {}
            Err(_) => failures += 1,
        }
        if restarted.elapsed() > Duration::from_secs(6) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    eprintln!("sync, full pool: first hit {took:?} after the restart, {failures} failed reads");
    let took = took.expect("sync hits come back");
    assert!(took < Duration::from_millis(1500), "took {took:?}");
}

#[test]
fn sync_callers_beyond_max_connections_on_a_paused_redis_pay_one_timeout() {
    let mut server = RedisServer::start();
    let backend = RedisBackend::builder()
        .url(server.url())
        .connect_timeout(CONNECT)
        .response_timeout(RESPONSE)
        .max_connections(4)
        .build()
        .unwrap();
    let cache = cache_on(backend, "app:");
    cache.blocking().set("warm", &0u32).unwrap();
    server.reset_stats();
    server.pause();
    let barrier = Arc::new(Barrier::new(40));
    let callers: Vec<_> = (0..40u32)
        .map(|i| {
            let (cache, barrier) = (cache.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let started = Instant::now();
                let v = cache.blocking().get_or_set_with(&format!("c{i}"), TTL, || {
                    std::thread::sleep(BODY);
                    i
                });
                assert_eq!(v, i);
                started.elapsed()
            })
        })
        .collect();
    let took: Vec<_> = callers.into_iter().map(|c| c.join().unwrap()).collect();
    server.resume();
    let slowest = took.iter().max().unwrap();
    let (gets, connections) = (server.command_count("get"), server.connections_received());
    eprintln!(
        "40 sync callers, 4 connections, paused Redis: slowest {slowest:?}, {gets} GETs, {connections} connections"
    );
    // The first four reads take the four connections. A caller waiting for one checks the
    // breaker again once it has it: those that get one after the circuit opened (3 time-outs)
    // fail fast; only a slot freed by one of the first time-outs, before the circuit opened,
    // lets a waiter send its read, within the same one time-out. So at most 4 + 4 GETs (4
    // to 6 measured, depending on scheduling), and no caller pays a second time-out.
    assert!(gets <= 8, "{gets} GETs reached Redis");
    assert!(
        *slowest < Duration::from_millis(450),
        "slowest call {slowest:?}"
    );
}
