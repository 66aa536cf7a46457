//! Run with: cargo bench -p tests --bench redis_cluster_ab
//!
//! `#[memoize]` hits on a Redis Cluster against raw GETs of the same keys, in interleaved
//! A/B rounds like `redis_ab` (alternating which side goes first, median of the per-round
//! ratios), on a throwaway local cluster of 3 primaries (`tests::cluster`).
//!
//! 64 tasks at once on the multi-thread runtime, each with its own key (the keys spread over
//! the three primaries). The raw side is the floor of any cluster client: each task sends
//! `GET` on a clone of one multiplexed connection to the primary that holds its key, found
//! before the run, so it pays no routing at all. Goal: memoize at least 0.95x the raw
//! throughput (a time ratio of at most 1.053).
//!
//! `REDIS_AB_ROUNDS=75` runs 75 rounds instead of 25.

use std::hint::black_box;
use std::sync::{LazyLock, OnceLock};
use std::time::{Duration, Instant};

use cache_core::{Cache, memoize};
use tests::cluster::RedisCluster;

const ROUNDS: usize = 25;
const TASKS: u64 = 64;
const CALLS_PER_TASK: u64 = 200;

static SEEDS: OnceLock<String> = OnceLock::new();
static CACHE: LazyLock<Cache> = LazyLock::new(|| {
    let seeds = SEEDS.get().expect("cluster started");
    let backend = cache_redis::RedisBackend::builder()
        .cluster(seeds)
        .build()
        .expect("valid seeds");
    Cache::builder()
        .backend(backend)
        .build()
        .expect("valid cache")
});

#[memoize(cache = CACHE, timeout = 0)]
async fn hundred(n: u64) -> String {
    format!("{n:0>100}")
}

/// Runs one side: 64 tasks of `CALLS_PER_TASK` calls each; the time they took.
fn side(
    rt: &tokio::runtime::Runtime,
    raw: Option<&[redis::aio::MultiplexedConnection]>,
    keys: &[String],
) -> Duration {
    let start = Instant::now();
    rt.block_on(async {
        let tasks: Vec<_> = (0..TASKS)
            .map(|task| {
                let conn = raw.map(|conns| conns[task as usize].clone());
                let key = keys[task as usize].clone();
                tokio::spawn(async move {
                    match conn {
                        None => {
                            for _ in 0..CALLS_PER_TASK {
                                black_box(hundred(black_box(task)).await);
                            }
                        }
                        Some(mut conn) => {
                            for _ in 0..CALLS_PER_TASK {
                                let bytes: Vec<u8> = redis::cmd("GET")
                                    .arg(&key)
                                    .query_async(&mut conn)
                                    .await
                                    .expect("GET");
                                black_box(bytes);
                            }
                        }
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("task finished");
        }
    });
    start.elapsed()
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let cluster = RedisCluster::builder().replicas_per_primary(0).start();
    SEEDS.set(cluster.seed_list()).expect("set once");
    let rounds = std::env::var("REDIS_AB_ROUNDS")
        .ok()
        .map(|rounds| rounds.parse().expect("REDIS_AB_ROUNDS: a whole number"))
        .unwrap_or(ROUNDS);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let keys: Vec<String> = (0..TASKS)
        .map(|n| format!("{}{}", CACHE.namespace(), hundred::key(n).expect("a key")))
        .collect();
    let conns: Vec<redis::aio::MultiplexedConnection> = rt.block_on(async {
        let mut by_node = std::collections::BTreeMap::new();
        let mut conns = Vec::new();
        for key in &keys {
            let port = cluster.shard_of(key).primary;
            if let std::collections::btree_map::Entry::Vacant(entry) = by_node.entry(port) {
                let client =
                    redis::Client::open(format!("redis://127.0.0.1:{port}/0")).expect("valid URL");
                let conn = client
                    .get_multiplexed_async_connection()
                    .await
                    .expect("connection");
                entry.insert(conn);
            }
            conns.push(by_node[&port].clone());
        }
        conns
    });
    // Warm-up: every value stored, connections open.
    side(&rt, None, &keys);
    side(&rt, Some(&conns), &keys);
    let calls = (TASKS * CALLS_PER_TASK) as f64;
    let (mut ours, mut theirs, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let (a, b) = if round % 2 == 0 {
            let a = side(&rt, None, &keys);
            (a, side(&rt, Some(&conns), &keys))
        } else {
            let b = side(&rt, Some(&conns), &keys);
            (side(&rt, None, &keys), b)
        };
        ours.push(a.as_secs_f64() / calls);
        theirs.push(b.as_secs_f64() / calls);
        ratios.push(a.as_secs_f64() / b.as_secs_f64());
    }
    let ratio = median(&mut ratios);
    println!(
        "{rounds} interleaved rounds; cluster_concurrent_64 memoize {:.2} µs   raw {:.2} µs   \
         ratio {ratio:.3}: {:.2}x the raw throughput",
        median(&mut ours) * 1e6,
        median(&mut theirs) * 1e6,
        1.0 / ratio,
    );
}
