//! Behaviour written once and run on each deployment the harness starts: one server, a
//! Redis Cluster (3 primaries) and a Sentinel set-up (a master, a replica, 3 Sentinels),
//! through `tests::deployment::Deployment`. Hostile values are misses whose fresh value
//! replaces them, and a leased call cancelled at each await point leaves nothing behind
//! (no lease, no open circuit, hits right after), and stale and early values are refreshed
//! by one caller. The per-deployment essentials (one `GET`
//! per hit, scoped clear, fail-open, secrets) are in `redis_cluster.rs` and
//! `redis_sentinel.rs`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cache_core::stampede::Stampede;
use cache_core::{Cache, CallOptions};
use tests::RedisServer;
use tests::cluster::RedisCluster;
use tests::deployment::Deployment;
use tests::sentinel::RedisSentinels;

static ONE_SET_UP_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_SET_UP_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

const TTL: Duration = Duration::from_secs(60);

fn cache_on(deployment: &impl Deployment, namespace: &str) -> Cache {
    Cache::builder()
        .backend(deployment.backend())
        .namespace(namespace)
        .default_timeout(TTL)
        .build()
        .expect("a valid cache")
}

fn cluster() -> RedisCluster {
    RedisCluster::builder().replicas_per_primary(0).start()
}

/// A value that is no envelope at all, and one that claims 20 million elements: each is a
/// miss counted as an error, the function's value is returned and replaces it (one `GET`,
/// one `SET`), and the next call is a hit (one `GET`).
fn hostile_values_are_misses_whose_fresh_value_replaces_them(deployment: &impl Deployment) {
    let what = deployment.name();
    let cache = cache_on(deployment, "hostile:");
    let blocking = cache.blocking();
    let runs = AtomicUsize::new(0);
    let compute = || {
        runs.fetch_add(1, Ordering::SeqCst);
        vec!["a".to_owned(), "b".to_owned()]
    };
    // A real value first, for its envelope trailer.
    assert_eq!(blocking.get_or_set_with("k", TTL, compute).len(), 2);
    let key = cache.full_key("k");
    let stored: Vec<u8> = redis::cmd("GET")
        .arg(&key)
        .query(&mut deployment.node_of(&key).connection())
        .unwrap();
    let mut huge = vec![0xFC]; // bincode: a u32 length follows
    huge.extend_from_slice(&20_000_000u32.to_le_bytes());
    huge.extend_from_slice(tests::envelope_trailer(&stored));
    for (round, hostile) in [b"\xFF\xFEnot an envelope".to_vec(), huge]
        .into_iter()
        .enumerate()
    {
        let () = redis::cmd("SET")
            .arg(&key)
            .arg(hostile)
            .query(&mut deployment.node_of(&key).connection())
            .unwrap();
        let errors = cache.stats().errors;
        deployment.reset_stats();
        assert_eq!(
            blocking.get_or_set_with("k", TTL, compute),
            ["a", "b"],
            "{what}, round {round}: the real value"
        );
        assert_eq!(
            runs.load(Ordering::SeqCst),
            2 + round,
            "{what}: the body ran"
        );
        assert_eq!(
            cache.stats().errors,
            errors + 1,
            "{what}: counted as an error"
        );
        assert_eq!(
            (
                deployment.data_command_count("get"),
                deployment.data_command_count("set")
            ),
            (1, 1),
            "{what}, round {round}: one GET, and the fresh value's SET"
        );
        deployment.reset_stats();
        assert_eq!(blocking.get_or_set_with("k", TTL, compute).len(), 2);
        assert_eq!(
            runs.load(Ordering::SeqCst),
            2 + round,
            "{what}: a hit again"
        );
        assert_eq!(deployment.data_command_count("get"), 1);
    }
}

/// A leased miss cancelled at each await point (the first connect or map read, the `GET`,
/// the lease's `SET NX`, the body, the `SET`, the release): afterwards no lease key is
/// left (the guard released it, well before its 5 s expiry), no circuit is open, and the
/// next call is a hit.
async fn a_leased_call_cancelled_at_each_await_leaves_nothing_behind(deployment: &impl Deployment) {
    let what = deployment.name();
    let backend = deployment.backend();
    let cache = Cache::builder()
        .backend(backend.clone())
        .namespace("cancel:")
        .default_timeout(TTL)
        .build()
        .unwrap();
    let options = CallOptions::builder()
        .timeout(TTL)
        .stampede(Stampede::default().lease(Duration::from_secs(5)))
        .build();
    let runs = Arc::new(AtomicUsize::new(0));
    let call = |key: String| {
        let (cache, runs) = (cache.clone(), runs.clone());
        async move {
            cache
                .get_or_set_with_options(&key, options, || async move {
                    runs.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    3u32
                })
                .await
        }
    };
    let delays = [0, 1, 2, 3, 5, 8, 12, 18, 25, 40].map(Duration::from_millis);
    for (round, after) in delays.into_iter().enumerate() {
        let key = format!("k{round}");
        let _ = tokio::time::timeout(after, call(key.clone())).await;
        let lease = format!("{}:~lease", cache.full_key(&key));
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let held: u64 = redis::cmd("EXISTS")
                .arg(&lease)
                .query(&mut deployment.node_of(&lease).connection())
                .unwrap();
            if held == 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: the lease of a call cancelled after {after:?} is still held"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(call(key.clone()).await, 3, "{what}: after {after:?}");
        assert_eq!(
            cache.get::<u32>(&key).await.unwrap(),
            Some(3),
            "{what}: stored after {after:?}"
        );
    }
    assert!(!backend.is_circuit_open(), "{what}: no circuit opened");
    assert!(runs.load(Ordering::Relaxed) >= delays.len());
}

/// Serve-stale and early refresh on a shared backend. Past its timeout, a value is refreshed
/// by the caller that wins the refresh lease (a sync caller computes in line and returns the
/// fresh value); the lease, on its own key's node, is released at once, and the next call is
/// a hit again (one `GET`, no `SET`). A value due for early refresh is recomputed by the hit
/// that finds it due, and stored.
fn stale_and_early_values_are_refreshed_by_one_caller(deployment: &impl Deployment) {
    let what = deployment.name();
    let cache = cache_on(deployment, "stale:");
    let blocking = cache.blocking();
    let runs = AtomicUsize::new(0);
    let compute = || runs.fetch_add(1, Ordering::SeqCst) as u64;
    let stale = CallOptions::builder()
        .timeout(Duration::from_secs(1))
        .stampede(Stampede::default().serve_stale(Duration::from_secs(60)))
        .build();
    assert_eq!(blocking.get_or_set_with_options("k", stale, compute), 0);
    std::thread::sleep(Duration::from_millis(1_100));
    deployment.reset_stats();
    assert_eq!(
        blocking.get_or_set_with_options("k", stale, compute),
        1,
        "{what}: the refreshing caller returns the fresh value"
    );
    let lease = format!("{}:~lease", cache.full_key("k"));
    let held: u64 = redis::cmd("EXISTS")
        .arg(&lease)
        .query(&mut deployment.node_of(&lease).connection())
        .unwrap();
    assert_eq!(held, 0, "{what}: the refresh lease is released");
    deployment.reset_stats();
    assert_eq!(blocking.get_or_set_with_options("k", stale, compute), 1);
    assert_eq!(runs.load(Ordering::SeqCst), 2, "{what}: one refresh");
    assert_eq!(
        (
            deployment.data_command_count("get"),
            deployment.data_command_count("set")
        ),
        (1, 0),
        "{what}: a hit again"
    );

    // A beta this large makes every hit due (delta * beta dwarfs the timeout); the body
    // takes a few milliseconds, since the envelope records its time in milliseconds.
    let early = CallOptions::builder()
        .timeout(TTL)
        .stampede(Stampede::default().early_refresh(1e9))
        .build();
    let slow = || {
        std::thread::sleep(Duration::from_millis(5));
        compute()
    };
    assert_eq!(blocking.get_or_set_with_options("e", early, slow), 2);
    deployment.reset_stats();
    assert_eq!(
        blocking.get_or_set_with_options("e", early, slow),
        3,
        "{what}: recomputed early"
    );
    assert_eq!(
        deployment.data_command_count("set"),
        1,
        "{what}: and stored"
    );
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn hostile_values_on_one_server() {
    hostile_values_are_misses_whose_fresh_value_replaces_them(&RedisServer::start());
}

#[test]
fn hostile_values_on_a_cluster() {
    let _one = one_at_a_time();
    hostile_values_are_misses_whose_fresh_value_replaces_them(&cluster());
}

#[test]
fn hostile_values_on_sentinel() {
    let _one = one_at_a_time();
    hostile_values_are_misses_whose_fresh_value_replaces_them(&RedisSentinels::start());
}

#[test]
fn cancellation_at_each_await_on_one_server() {
    let server = RedisServer::start();
    runtime().block_on(a_leased_call_cancelled_at_each_await_leaves_nothing_behind(
        &server,
    ));
}

#[test]
fn cancellation_at_each_await_on_a_cluster() {
    let _one = one_at_a_time();
    let cluster = cluster();
    runtime().block_on(a_leased_call_cancelled_at_each_await_leaves_nothing_behind(
        &cluster,
    ));
}

#[test]
fn cancellation_at_each_await_on_sentinel() {
    let _one = one_at_a_time();
    let set_up = RedisSentinels::start();
    runtime().block_on(a_leased_call_cancelled_at_each_await_leaves_nothing_behind(
        &set_up,
    ));
}

#[test]
fn stale_and_early_refresh_on_one_server() {
    stale_and_early_values_are_refreshed_by_one_caller(&RedisServer::start());
}

#[test]
fn stale_and_early_refresh_on_a_cluster() {
    let _one = one_at_a_time();
    stale_and_early_values_are_refreshed_by_one_caller(&cluster());
}

#[test]
fn stale_and_early_refresh_on_sentinel() {
    let _one = one_at_a_time();
    stale_and_early_values_are_refreshed_by_one_caller(&RedisSentinels::start());
}
