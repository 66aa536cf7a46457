//! Run with: cargo bench -p tests --bench redis_ab
//!
//! The Redis hit goals as interleaved A/B rounds: each round runs a `#[memoize]` hit and a
//! raw `redis` GET of the same key back to back (alternating which goes first), so a change
//! in machine load during the run hits both sides alike. On a shared machine, where load moves
//! wall-clock figures by 10 to 20 % within a minute, the median of the per-round ratios is
//! steadier than two criterion groups measured a few seconds apart (see `redis_hit` for
//! those, with confidence intervals).
//!
//! Scenarios, against a throwaway local redis-server:
//! - `seq_multi_thread` / `seq_current_thread`: one async call at a time, on each tokio
//!   runtime flavour, against a raw `MultiplexedConnection` (latency: goal at most 1.05x);
//! - `concurrent_64`: 64 tasks at once on the multi-thread runtime, each raw task with its own
//!   clone of one multiplexed connection (throughput: goal at least 0.95x);
//! - `near_vs_redis_get`: a near hit (the same Redis with a near cache in front) against a
//!   raw GET of the same value, on the multi-thread runtime (goal: at least 100x faster, a
//!   ratio at most 0.01);
//! - `sync`: a sync `#[memoize] fn` against a raw `redis::Connection` (goal at most 1.10x);
//! - `large_100B_*`, `large_10KB_*`, `large_1MB_*`: one async call at a time of a `String`
//!   of that size (`*` is `multi_thread` or `current_thread`), against a raw GET of the
//!   same stored bytes (goal at most 1.10x at every size, on both runtimes);
//! - `large_1MB_bytes_*`: the same for a 1 MB `bytes::Bytes` value, which needs no UTF-8
//!   check (a `String` hit checks its bytes, which a raw GET into a `Vec<u8>` does not).
//!
//! Prints, per scenario, the median time per call of each side, the median ratio
//! memoize / raw of time per call (below 1.0 is faster than raw) with the lowest and highest
//! round's, the median CPU time per call of the client's threads on each side (the server is
//! another process; what the client does beyond a raw GET, with less of the machine's load in
//! it than wall time), and the median minor page faults per call of each side (the process's
//! `minflt` in `/proc/self/stat`), which shows a value's memory being mapped afresh on every
//! call.
//!
//! `cargo bench -p tests --bench redis_ab -- concurrent` runs only the scenarios whose name
//! contains `concurrent`; `REDIS_AB_ROUNDS=75` runs 75 rounds instead of 25.

use std::future::Future;
use std::hint::black_box;
use std::sync::{LazyLock, OnceLock};
use std::time::{Duration, Instant};

use cache_core::{Cache, NearCache, memoize};
use tests::RedisServer;

/// Rounds per scenario unless `REDIS_AB_ROUNDS` says otherwise; each gives one ratio.
const ROUNDS: usize = 25;
/// Calls per side per round, one at a time.
const SEQUENTIAL_CALLS: u64 = 1_500;
/// Tasks in the concurrent scenario, and calls per task per round.
const TASKS: u64 = 64;
const CALLS_PER_TASK: u64 = 200;

static URL: OnceLock<String> = OnceLock::new();
static CACHE: LazyLock<Cache> = LazyLock::new(|| {
    let url = URL.get().expect("server started");
    let backend = cache_redis::RedisBackend::open(url).expect("valid URL");
    Cache::builder()
        .backend(backend)
        .build()
        .expect("valid cache")
});

#[memoize(cache = CACHE, timeout = 0)]
async fn hundred(n: u64) -> String {
    format!("{n:0>100}")
}

/// The same Redis with a near cache in front.
static NEAR: LazyLock<Cache> = LazyLock::new(|| {
    let url = URL.get().expect("server started");
    let backend = cache_redis::RedisBackend::open(url).expect("valid URL");
    Cache::builder()
        .backend(backend)
        .near_cache(NearCache::new(Duration::from_secs(600)))
        .build()
        .expect("valid cache")
});

#[memoize(cache = NEAR, timeout = 0)]
async fn hundred_near(n: u64) -> String {
    format!("{n:0>100}")
}

/// A near task: `calls` near hits, one after another.
async fn near_task(calls: u64) {
    for _ in 0..calls {
        black_box(hundred_near(black_box(7)).await);
    }
}

#[memoize(cache = CACHE, timeout = 0)]
fn hundred_sync(n: u64) -> String {
    format!("{n:0>100}")
}

/// The stored sizes of the large-value scenarios, with their calls per side per round.
const SIZES: [(&str, usize, u64); 3] = [
    ("100B", 100, 1_500),
    ("10KB", 10_000, 1_000),
    ("1MB", 1_000_000, 100),
];

#[memoize(cache = CACHE, timeout = 0)]
async fn sized(len: usize) -> String {
    "x".repeat(len)
}

#[memoize(cache = CACHE, timeout = 0)]
async fn sized_bytes(len: usize) -> bytes::Bytes {
    bytes::Bytes::from(vec![b'x'; len])
}

/// One side of a scenario: runs `calls` calls and returns how long they took.
type Side<'a> = Box<dyn FnMut(u64) -> Duration + 'a>;

/// A side that runs `task(calls)` as one future on `rt`.
fn sequential<'a, F, Fut>(rt: &'a tokio::runtime::Runtime, task: F) -> Side<'a>
where
    F: Fn(u64) -> Fut + 'a,
    Fut: Future<Output = ()>,
{
    Box::new(move |calls| {
        let start = Instant::now();
        rt.block_on(task(calls));
        start.elapsed()
    })
}

/// A side that spawns [`TASKS`] tasks of `task(calls / TASKS)` on `rt` and waits for all.
fn concurrent<'a, F, Fut>(rt: &'a tokio::runtime::Runtime, task: F) -> Side<'a>
where
    F: Fn(u64) -> Fut + 'a,
    Fut: Future<Output = ()> + Send + 'static,
{
    Box::new(move |calls| {
        let start = Instant::now();
        rt.block_on(async {
            let tasks: Vec<_> = (0..TASKS)
                .map(|_| tokio::spawn(task(calls / TASKS)))
                .collect();
            for task in tasks {
                task.await.expect("task finished");
            }
        });
        start.elapsed()
    })
}

/// A `#[memoize]` task: `calls` hits, one after another.
async fn memoize_task(calls: u64) {
    for _ in 0..calls {
        black_box(hundred(black_box(7)).await);
    }
}

/// A `#[memoize]` task of the large-value scenarios: `calls` hits of a `len`-byte string.
fn sized_task(len: usize) -> impl Fn(u64) -> std::pin::Pin<Box<dyn Future<Output = ()>>> {
    move |calls| {
        Box::pin(async move {
            for _ in 0..calls {
                black_box(sized(black_box(len)).await);
            }
        })
    }
}

/// [`sized_task`] for a `bytes::Bytes` value.
fn sized_bytes_task(len: usize) -> impl Fn(u64) -> std::pin::Pin<Box<dyn Future<Output = ()>>> {
    move |calls| {
        Box::pin(async move {
            for _ in 0..calls {
                black_box(sized_bytes(black_box(len)).await);
            }
        })
    }
}

/// A raw task on its own clone of `conn`: `calls` GETs of `key`, one after another.
fn raw_task(
    conn: &redis::aio::MultiplexedConnection,
    key: &str,
) -> impl Fn(u64) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> {
    let (conn, key) = (conn.clone(), key.to_owned());
    move |calls| {
        let (mut conn, key) = (conn.clone(), key.clone());
        Box::pin(async move {
            for _ in 0..calls {
                let bytes: Vec<u8> = redis::cmd("GET")
                    .arg(&key)
                    .query_async(&mut conn)
                    .await
                    .expect("GET");
                black_box(bytes);
            }
        })
    }
}

/// What to run: the scenario name filter and the number of rounds.
struct Run {
    filter: Option<String>,
    rounds: usize,
}

impl Run {
    fn from_env() -> Self {
        // `cargo bench` passes `--bench`; the first other argument filters scenarios.
        let filter = std::env::args().skip(1).find(|arg| !arg.starts_with('-'));
        let rounds = std::env::var("REDIS_AB_ROUNDS")
            .ok()
            .map(|rounds| rounds.parse().expect("REDIS_AB_ROUNDS: a whole number"))
            .unwrap_or(ROUNDS);
        Self { filter, rounds }
    }

    fn wants(&self, name: &str) -> bool {
        self.filter
            .as_ref()
            .is_none_or(|filter| name.contains(filter.as_str()))
    }
}

/// Runs the scenario's rounds and prints its medians.
fn scenario(run: &Run, name: &str, calls: u64, mut memoize: Side<'_>, mut raw: Side<'_>) {
    if !run.wants(name) {
        return;
    }
    // Warm-up: connections open, code and caches warm.
    memoize(calls / 4);
    raw(calls / 4);
    let (mut ours, mut theirs, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let (mut our_cpu, mut their_cpu) = (Vec::new(), Vec::new());
    let (mut our_faults, mut their_faults) = (Vec::new(), Vec::new());
    let per_call = |duration: Duration| duration.as_secs_f64() / calls as f64;
    for round in 0..run.rounds {
        let (a, b) = if round % 2 == 0 {
            let a = counted(&mut memoize, calls);
            (a, counted(&mut raw, calls))
        } else {
            let b = counted(&mut raw, calls);
            (counted(&mut memoize, calls), b)
        };
        ours.push(per_call(a.elapsed));
        theirs.push(per_call(b.elapsed));
        ratios.push(a.elapsed.as_secs_f64() / b.elapsed.as_secs_f64());
        our_cpu.push(per_call(a.cpu));
        their_cpu.push(per_call(b.cpu));
        our_faults.push(a.minor_faults as f64 / calls as f64);
        their_faults.push(b.minor_faults as f64 / calls as f64);
    }
    println!(
        "{name:<26} memoize {:>8.2} µs   raw {:>8.2} µs   ratio {:.3} (rounds {:.3} to {:.3})   \
         client CPU {:.2} vs {:.2} µs   faults/call {:.1} vs {:.1}",
        median(&mut ours) * 1e6,
        median(&mut theirs) * 1e6,
        median(&mut ratios),
        ratios.first().expect("rounds"),
        ratios.last().expect("rounds"),
        median(&mut our_cpu) * 1e6,
        median(&mut their_cpu) * 1e6,
        median(&mut our_faults),
        median(&mut their_faults),
    );
}

/// What one side's calls of a round took.
struct Measured {
    elapsed: Duration,
    /// CPU time of this process's threads (the client; the server is another process).
    cpu: Duration,
    minor_faults: u64,
}

/// Runs `side` for `calls` calls and measures them.
fn counted(side: &mut Side<'_>, calls: u64) -> Measured {
    let (faults, cpu) = (minor_faults(), cpu_time());
    let elapsed = side(calls);
    Measured {
        elapsed,
        cpu: cpu_time().saturating_sub(cpu),
        minor_faults: minor_faults() - faults,
    }
}

/// The process's minor page faults so far (`minflt`, the 10th field of `/proc/self/stat`).
fn minor_faults() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let after_name = &stat[stat.rfind(')').expect("a command name") + 2..];
    after_name
        .split(' ')
        .nth(7)
        .and_then(|field| field.parse().ok())
        .expect("minflt")
}

/// The CPU time of this process's threads so far, in nanoseconds: the first field of each
/// `/proc/self/task/<tid>/schedstat` (threads that ended meanwhile are not counted, and a
/// round starts none).
fn cpu_time() -> Duration {
    let tasks = std::fs::read_dir("/proc/self/task").expect("/proc/self/task");
    let nanos = tasks
        .filter_map(|task| {
            let schedstat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
            schedstat.split(' ').next()?.parse::<u64>().ok()
        })
        .sum();
    Duration::from_nanos(nanos)
}

fn runtime(multi_thread: bool) -> tokio::runtime::Runtime {
    let mut builder = if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    builder.enable_all().build().expect("runtime")
}

/// The median; sorts `values`.
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let server = RedisServer::start();
    URL.set(server.url()).expect("set once");
    let key = format!("{}{}", CACHE.namespace(), hundred::key(7).expect("a key"));
    let sync_key = format!(
        "{}{}",
        CACHE.namespace(),
        hundred_sync::key(7).expect("a key")
    );
    let client = redis::Client::open(server.url()).expect("valid URL");
    let run = Run::from_env();
    println!(
        "{} interleaved rounds per scenario; medians of time per call",
        run.rounds
    );

    // A runtime per scenario, as a service has one: the cache's connection is opened on it
    // (the previous scenario's runtime is gone, so the warm-up reconnects) like the raw one.
    for (name, multi_thread) in [("seq_multi_thread", true), ("seq_current_thread", false)] {
        let rt = runtime(multi_thread);
        let conn = rt
            .block_on(client.get_multiplexed_async_connection())
            .expect("connection");
        scenario(
            &run,
            name,
            SEQUENTIAL_CALLS,
            sequential(&rt, memoize_task),
            sequential(&rt, raw_task(&conn, &key)),
        );
    }

    // A near hit against a Redis hit's round trip: the raw GET of the same value.
    let rt = runtime(true);
    let conn = rt
        .block_on(client.get_multiplexed_async_connection())
        .expect("connection");
    rt.block_on(async {
        let started = Instant::now();
        // Near hits start once the near cache's channel is in sync.
        while hundred_near::stats().near_hits == 0 {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "near hits within 10 s"
            );
            hundred_near(7).await;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    let near_key = format!(
        "{}{}",
        NEAR.namespace(),
        hundred_near::key(7).expect("a key")
    );
    scenario(
        &run,
        "near_vs_redis_get",
        SEQUENTIAL_CALLS,
        sequential(&rt, near_task),
        sequential(&rt, raw_task(&conn, &near_key)),
    );
    drop(rt);

    let rt = runtime(true);
    let conn = rt
        .block_on(client.get_multiplexed_async_connection())
        .expect("connection");
    scenario(
        &run,
        "concurrent_64",
        TASKS * CALLS_PER_TASK,
        concurrent(&rt, memoize_task),
        concurrent(&rt, raw_task(&conn, &key)),
    );
    drop(rt);

    // Large values: one runtime per flavour, like the sequential scenarios above.
    for (flavour, multi_thread) in [("multi_thread", true), ("current_thread", false)] {
        let rt = runtime(multi_thread);
        let conn = rt
            .block_on(client.get_multiplexed_async_connection())
            .expect("connection");
        for (size, len, calls) in SIZES {
            let key = format!("{}{}", CACHE.namespace(), sized::key(len).expect("a key"));
            scenario(
                &run,
                &format!("large_{size}_{flavour}"),
                calls,
                sequential(&rt, sized_task(len)),
                sequential(&rt, raw_task(&conn, &key)),
            );
        }
        let (size, len, calls) = SIZES[2];
        let key = format!(
            "{}{}",
            CACHE.namespace(),
            sized_bytes::key(len).expect("a key")
        );
        scenario(
            &run,
            &format!("large_{size}_bytes_{flavour}"),
            calls,
            sequential(&rt, sized_bytes_task(len)),
            sequential(&rt, raw_task(&conn, &key)),
        );
    }

    let mut sync_conn = client.get_connection().expect("connection");
    scenario(
        &run,
        "sync",
        SEQUENTIAL_CALLS,
        Box::new(|calls| {
            let start = Instant::now();
            for _ in 0..calls {
                black_box(hundred_sync(black_box(7)));
            }
            start.elapsed()
        }),
        Box::new(|calls| {
            let start = Instant::now();
            for _ in 0..calls {
                let bytes: Vec<u8> = redis::cmd("GET")
                    .arg(&sync_key)
                    .query(&mut sync_conn)
                    .expect("GET");
                black_box(bytes);
            }
            start.elapsed()
        }),
    );
}
