//! A Redis Cluster primary lost under load, on a real local cluster (3 primaries, 3
//! replicas, node time-out 2 s): killed (`kill -9`) or hung (`SIGSTOP`), while 32 async
//! callers and 32 sync callers, each with its own key on that primary, call a memoized
//! function with a known answer. Nothing is restarted. Asserted: 0 wrong answers, 0 errors
//! surfaced to the callers, no call after the outage longer than two time-outs (each
//! caller pays at most one), and hits back on the promoted replica soon after the cluster
//! promoted it.
//!
//! `cargo test -p tests --test redis_cluster_failover -- --nocapture` prints the figures.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use cache_core::{Cache, memoize};
use cache_redis::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_RESPONSE_TIMEOUT, RedisBackend};
use tests::Late;
use tests::cluster::RedisCluster;

static ONE_CLUSTER_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_CLUSTER_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// Callers of each kind.
const CALLERS: usize = 32;

static KILLED: Late = Late(OnceLock::new());
static HUNG: Late = Late(OnceLock::new());

/// Body runs per function and argument (the arguments stay far below the size).
static RUNS: [[AtomicU64; 4096]; 4] = [const { [const { AtomicU64::new(0) }; 4096] }; 4];

fn runs_of(function: usize, n: u64) -> &'static AtomicU64 {
    &RUNS[function][usize::try_from(n).unwrap() % 4096]
}

/// The known answer for `n`, counting a body run of `function`.
fn body(function: usize, n: u64) -> Result<u64, String> {
    runs_of(function, n).fetch_add(1, Ordering::Relaxed);
    Ok(n * 1000 + 7)
}

#[memoize(cache = KILLED, timeout = 600)]
async fn killed_async(n: u64) -> Result<u64, String> {
    body(0, n)
}

#[memoize(cache = KILLED, timeout = 600)]
fn killed_sync(n: u64) -> Result<u64, String> {
    body(1, n)
}

#[memoize(cache = HUNG, timeout = 600)]
async fn hung_async(n: u64) -> Result<u64, String> {
    body(2, n)
}

#[memoize(cache = HUNG, timeout = 600)]
fn hung_sync(n: u64) -> Result<u64, String> {
    body(3, n)
}

type Answer = Pin<Box<dyn Future<Output = Result<u64, String>> + Send>>;

/// The memoized functions of one test: an async and a sync one, their keys and runs.
struct Functions {
    cache: &'static Late,
    call_async: fn(u64) -> Answer,
    call_sync: fn(u64) -> Result<u64, String>,
    key_async: fn(u64) -> String,
    key_sync: fn(u64) -> String,
    /// The `RUNS` rows of the async and the sync function.
    runs: (usize, usize),
}

#[derive(Debug, Clone, Copy)]
enum Outage {
    Kill,
    Pause,
}

/// When the primary went down (nanoseconds since `epoch`), and when the callers stop.
struct Clock {
    epoch: Instant,
    down_at: AtomicU64,
    stop: AtomicBool,
}

impl Clock {
    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// What the callers of one kind saw.
#[derive(Default)]
struct Tally {
    calls: AtomicU64,
    wrong: AtomicU64,
    errors: AtomicU64,
    /// The longest call that started after the outage, in nanoseconds.
    longest_after: AtomicU64,
    /// The first hit (no body run) that started after the outage, in nanoseconds from it.
    first_hit_after: AtomicU64,
}

impl Tally {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            first_hit_after: AtomicU64::new(u64::MAX),
            ..Self::default()
        })
    }

    /// One call for `n` from `started` to `ended`, during which the body ran if the runs
    /// went past `runs_before`.
    fn record(
        &self,
        clock: &Clock,
        n: u64,
        answer: Result<u64, String>,
        (started, ended): (u64, u64),
        hit: bool,
    ) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        match answer {
            Ok(value) if value == n * 1000 + 7 => {}
            Ok(_) => {
                self.wrong.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        let down = clock.down_at.load(Ordering::Relaxed);
        if started > down {
            self.longest_after
                .fetch_max(ended - started, Ordering::Relaxed);
            if hit {
                self.first_hit_after
                    .fetch_min(ended - down, Ordering::Relaxed);
            }
        }
    }

    fn hits_resumed(&self) -> bool {
        self.first_hit_after.load(Ordering::Relaxed) != u64::MAX
    }

    fn longest(&self) -> Duration {
        Duration::from_nanos(self.longest_after.load(Ordering::Relaxed))
    }

    fn resumed(&self) -> Duration {
        Duration::from_nanos(self.first_hit_after.load(Ordering::Relaxed))
    }
}

fn cache_on(cluster: &RedisCluster, namespace: &str) -> Cache {
    let backend = RedisBackend::builder()
        .cluster(cluster.seed_list())
        .build()
        .expect("a valid cluster");
    Cache::builder()
        .backend(backend)
        .namespace(namespace)
        .default_timeout(Duration::from_secs(60))
        .build()
        .expect("a valid cache")
}

/// `CALLERS` arguments whose keys (`key_of`) the primary on `port` holds.
fn keys_on(cluster: &RedisCluster, port: u16, key_of: impl Fn(u64) -> String) -> Vec<u64> {
    (0..)
        .filter(|n| cluster.shard_of(&key_of(*n)).primary == port)
        .take(CALLERS)
        .collect()
}

/// The test body: warm the keys, start the callers, take the primary down, wait for the
/// failover and for hits of both kinds on the promoted node, stop, and check the figures.
fn failover_under_load(functions: &Functions, outage: Outage) {
    let _one = one_at_a_time();
    let mut cluster = RedisCluster::start();
    let cache = cache_on(&cluster, "fo:");
    let _ = functions.cache.0.set(cache.clone());
    let namespace = cache.namespace().to_owned();
    let (key_async, key_sync) = (functions.key_async, functions.key_sync);
    let full_async = |n: u64| format!("{namespace}{}", key_async(n));
    let full_sync = |n: u64| format!("{namespace}{}", key_sync(n));
    let victim = cluster.shard_of(&full_async(0)).primary;
    let async_keys = keys_on(&cluster, victim, full_async);
    let sync_keys = keys_on(&cluster, victim, full_sync);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // Warm: every key stored, and acknowledged by the replica before the outage.
    runtime.block_on(async {
        for n in &async_keys {
            assert_eq!((functions.call_async)(*n).await, Ok(n * 1000 + 7));
        }
    });
    for n in &sync_keys {
        assert_eq!((functions.call_sync)(*n), Ok(n * 1000 + 7));
    }
    cluster.node(victim).wait_for_replicas(1);

    let clock = Arc::new(Clock {
        epoch: Instant::now(),
        down_at: AtomicU64::new(u64::MAX),
        stop: AtomicBool::new(false),
    });
    let (async_tally, sync_tally) = (Tally::new(), Tally::new());
    let tasks: Vec<_> = async_keys
        .iter()
        .map(|&n| {
            let (clock, tally) = (clock.clone(), async_tally.clone());
            let (call, runs) = (functions.call_async, functions.runs.0);
            runtime.spawn(async move {
                while !clock.stop.load(Ordering::Relaxed) {
                    let before = runs_of(runs, n).load(Ordering::Relaxed);
                    let started = clock.now();
                    let answer = call(n).await;
                    let ended = clock.now();
                    let hit = runs_of(runs, n).load(Ordering::Relaxed) == before;
                    tally.record(&clock, n, answer, (started, ended), hit);
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            })
        })
        .collect();
    let threads: Vec<_> = sync_keys
        .iter()
        .map(|&n| {
            let (clock, tally) = (clock.clone(), sync_tally.clone());
            let (call, runs) = (functions.call_sync, functions.runs.1);
            std::thread::spawn(move || {
                while !clock.stop.load(Ordering::Relaxed) {
                    let before = runs_of(runs, n).load(Ordering::Relaxed);
                    let started = clock.now();
                    let answer = call(n);
                    let ended = clock.now();
                    let hit = runs_of(runs, n).load(Ordering::Relaxed) == before;
                    tally.record(&clock, n, answer, (started, ended), hit);
                    std::thread::sleep(Duration::from_millis(2));
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    for (kind, tally) in [("async", &async_tally), ("sync", &sync_tally)] {
        let calls = tally.calls.load(Ordering::Relaxed);
        assert!(
            calls > CALLERS as u64,
            "the {kind} callers run ({calls} calls)"
        );
    }

    let down = match outage {
        Outage::Kill => cluster.kill_primary_of(&full_async(async_keys[0])),
        Outage::Pause => cluster.pause_primary_of(&full_async(async_keys[0])),
    };
    clock.down_at.store(clock.now(), Ordering::Relaxed);
    assert_eq!(down, victim);
    let failover = cluster.wait_for_failover();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(async_tally.hits_resumed() && sync_tally.hits_resumed()) {
        assert!(Instant::now() < deadline, "hits did not resume");
        std::thread::sleep(Duration::from_millis(20));
    }
    // A little more load on the promoted node.
    std::thread::sleep(Duration::from_millis(300));
    clock.stop.store(true, Ordering::Relaxed);
    runtime.block_on(async {
        for task in tasks {
            task.await.expect("no async caller panicked");
        }
    });
    for thread in threads {
        thread.join().expect("no sync caller panicked");
    }
    let promoted = cluster.shard_of(&full_async(async_keys[0])).primary;
    assert_ne!(promoted, victim);
    assert!(cluster.node(promoted).command_count("get") > 0);
    if let Outage::Pause = outage {
        cluster.node_mut(victim).resume();
    }

    // Each caller pays at most one time-out: no call as long as two.
    let one_time_out = DEFAULT_CONNECT_TIMEOUT + DEFAULT_RESPONSE_TIMEOUT;
    for (kind, tally) in [("async", &async_tally), ("sync", &sync_tally)] {
        eprintln!(
            "cluster failover under load ({outage:?}, {kind}): {CALLERS} callers, {} calls, {} \
             wrong, {} errors, longest call after the outage {:?}, failover {:.2} s, hits \
             resumed {:.2} s after the outage",
            tally.calls.load(Ordering::Relaxed),
            tally.wrong.load(Ordering::Relaxed),
            tally.errors.load(Ordering::Relaxed),
            tally.longest(),
            failover.as_secs_f64(),
            tally.resumed().as_secs_f64(),
        );
        assert_eq!(
            tally.wrong.load(Ordering::Relaxed),
            0,
            "{kind}: wrong answers"
        );
        assert_eq!(
            tally.errors.load(Ordering::Relaxed),
            0,
            "{kind}: errors surfaced to callers"
        );
        assert!(
            tally.longest() < 2 * one_time_out,
            "{kind}: longest call {:?}",
            tally.longest()
        );
        assert!(
            tally.resumed() < failover + Duration::from_secs(3),
            "{kind}: hits resumed {:?} after the outage, the failover took {failover:?}",
            tally.resumed()
        );
    }
}

#[test]
fn a_primary_killed_under_load_fails_over_without_a_wrong_answer_or_an_error() {
    failover_under_load(
        &Functions {
            cache: &KILLED,
            call_async: |n| Box::pin(killed_async(n)),
            call_sync: killed_sync,
            key_async: |n| killed_async::key(n).unwrap(),
            key_sync: |n| killed_sync::key(n).unwrap(),
            runs: (0, 1),
        },
        Outage::Kill,
    );
}

#[test]
fn a_hung_primary_under_load_fails_over_without_a_wrong_answer_or_an_error() {
    failover_under_load(
        &Functions {
            cache: &HUNG,
            call_async: |n| Box::pin(hung_async(n)),
            call_sync: hung_sync,
            key_async: |n| hung_async::key(n).unwrap(),
            key_sync: |n| hung_sync::key(n).unwrap(),
            runs: (2, 3),
        },
        Outage::Pause,
    );
}
