//! Run with: cargo bench -p tests --bench redis_hit
//!
//! A `#[memoize]` hit on Redis against a raw `redis` GET of the same key on the same kind of
//! connection, on a throwaway local redis-server:
//! - `seq_multi_thread` / `seq_current_thread`: one async call at a time, on each tokio
//!   runtime flavour (the raw side is a `MultiplexedConnection`; `backend_get` is the
//!   backend's own `get`, without the attribute, to split the overhead);
//! - `concurrent_64`: 64 tasks at once on the multi-thread runtime (time per call);
//! - `sync`: a sync `#[memoize] fn` against a raw `redis::Connection`.
//!
//! Criterion measures each side for seconds, one after the other, so on a shared machine a
//! change in load between them shows up as a difference; `redis_ab` runs the same scenarios
//! in alternating rounds and is the one to read for the ratios.

use std::future::Future;
use std::hint::black_box;
use std::sync::{LazyLock, OnceLock};
use std::time::{Duration, Instant};

use cache_core::{Cache, memoize};
use criterion::{Criterion, criterion_group, criterion_main};
use tests::RedisServer;

static URL: OnceLock<String> = OnceLock::new();
static BACKEND: LazyLock<cache_redis::RedisBackend> = LazyLock::new(|| {
    cache_redis::RedisBackend::open(URL.get().expect("server started")).expect("valid URL")
});
static CACHE: LazyLock<Cache> = LazyLock::new(|| {
    Cache::builder()
        .backend(BACKEND.clone())
        .build()
        .expect("valid cache")
});

fn value(n: u64) -> String {
    format!("{n:0>100}")
}

#[memoize(cache = CACHE, timeout = 0)]
async fn hundred(n: u64) -> String {
    value(n)
}

#[memoize(cache = CACHE, timeout = 0)]
fn hundred_sync(n: u64) -> String {
    value(n)
}

fn runtime(multi: bool) -> tokio::runtime::Runtime {
    let mut builder = if multi {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    builder.enable_all().build().unwrap()
}

fn sequential(c: &mut Criterion, multi: bool) {
    let rt = runtime(multi);
    let key = hundred::key(7).unwrap();
    let full = format!("{}{key}", CACHE.namespace());
    let client = redis::Client::open(URL.get().unwrap().as_str()).unwrap();
    let mut raw = rt
        .block_on(client.get_multiplexed_async_connection())
        .unwrap();
    rt.block_on(async {
        assert_eq!(hundred(7).await.len(), 100);
        let bytes: Vec<u8> = redis::cmd("GET")
            .arg(&full)
            .query_async(&mut raw)
            .await
            .unwrap();
        assert!(!bytes.is_empty(), "the raw GET reads the same entry");
    });
    let name = if multi {
        "seq_multi_thread"
    } else {
        "seq_current_thread"
    };
    let mut group = c.benchmark_group(name);
    group.bench_function("memoize", |b| {
        b.to_async(&rt).iter(|| hundred(black_box(7)))
    });
    group.bench_function("backend_get", |b| {
        b.to_async(&rt)
            .iter(|| cache_core::backend::Backend::get(&*BACKEND, black_box(full.as_str())))
    });
    group.bench_function("raw_get", |b| {
        b.to_async(&rt).iter(|| {
            let mut raw = raw.clone();
            let full = full.clone();
            async move {
                let bytes: Vec<u8> = redis::cmd("GET")
                    .arg(&full)
                    .query_async(&mut raw)
                    .await
                    .unwrap();
                bytes
            }
        })
    });
    group.finish();
}

/// Tasks in the `concurrent_64` group.
const TASKS: u64 = 64;

/// Time per call of [`TASKS`] tasks at once, each running `task(calls)`, one task's whole
/// loop of calls; `iters` calls in all.
async fn spawn_tasks<Fut>(iters: u64, task: impl Fn(u64) -> Fut) -> Duration
where
    Fut: Future<Output = ()> + Send + 'static,
{
    let per_task = iters.div_ceil(TASKS);
    let start = Instant::now();
    let tasks: Vec<_> = (0..TASKS).map(|_| tokio::spawn(task(per_task))).collect();
    for task in tasks {
        task.await.unwrap();
    }
    start
        .elapsed()
        .mul_f64(iters as f64 / (per_task * TASKS) as f64)
}

fn concurrent(c: &mut Criterion) {
    let rt = runtime(true);
    let full = format!("{}{}", CACHE.namespace(), hundred::key(7).unwrap());
    let client = redis::Client::open(URL.get().unwrap().as_str()).unwrap();
    let raw = rt
        .block_on(client.get_multiplexed_async_connection())
        .unwrap();
    rt.block_on(hundred(7));
    let (full, raw) = (&full, &raw);
    let mut group = c.benchmark_group("concurrent_64");
    group.bench_function("memoize", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            spawn_tasks(iters, |calls| async move {
                for _ in 0..calls {
                    black_box(hundred(7).await);
                }
            })
        })
    });
    group.bench_function("backend_get", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            spawn_tasks(iters, |calls| {
                let full = full.clone();
                async move {
                    for _ in 0..calls {
                        let got = cache_core::backend::Backend::get(&*BACKEND, &full).await;
                        black_box(got.unwrap());
                    }
                }
            })
        })
    });
    group.bench_function("raw_get", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            spawn_tasks(iters, |calls| {
                let (mut raw, full) = (raw.clone(), full.clone());
                async move {
                    for _ in 0..calls {
                        let bytes: Vec<u8> = redis::cmd("GET")
                            .arg(&full)
                            .query_async(&mut raw)
                            .await
                            .unwrap();
                        black_box(bytes);
                    }
                }
            })
        })
    });
    group.finish();
}

fn sync(c: &mut Criterion) {
    let full = format!("{}{}", CACHE.namespace(), hundred_sync::key(7).unwrap());
    let mut raw = redis::Client::open(URL.get().unwrap().as_str())
        .unwrap()
        .get_connection()
        .unwrap();
    assert_eq!(hundred_sync(7).len(), 100);
    let mut group = c.benchmark_group("sync");
    group.bench_function("memoize", |b| b.iter(|| hundred_sync(black_box(7))));
    group.bench_function("raw_get", |b| {
        b.iter(|| {
            let bytes: Vec<u8> = redis::cmd("GET").arg(&full).query(&mut raw).unwrap();
            bytes
        })
    });
    group.finish();
}

fn redis_hit(c: &mut Criterion) {
    let server = RedisServer::start();
    URL.set(server.url()).unwrap();
    sequential(c, true);
    sequential(c, false);
    concurrent(c);
    sync(c);
    drop(server);
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4));
    targets = redis_hit
}
criterion_main!(benches);
