//! Run with: cargo bench -p cache-core --bench near_hit
//!
//! A near hit (`#[memoize(local = ..)]` on a `fn(u64) -> String` of 100 bytes) side by side
//! in one run with: the `cached` crate's in-memory `#[cached]` hit, a plain typed `moka`
//! get and a typed `quick_cache` get (the candidates for the near tier's map, keyed by
//! `u128` as the tier is), and today's in-memory `#[memoize]` hit (key string, lookup,
//! decoding). The Redis hit to compare with is `redis_ab`'s (tests/benches).

use std::hint::black_box;
use std::sync::LazyLock;
use std::time::Duration;

use cache_core::{Cache, NearCache, memoize};
use criterion::{Criterion, criterion_group, criterion_main};

fn value(n: u64) -> String {
    format!("{n:0>100}")
}

static NEAR: LazyLock<Cache> = LazyLock::new(|| {
    Cache::builder()
        .near_cache(NearCache::new(Duration::from_secs(600)))
        .build()
        .expect("valid cache")
});
static MEMORY: LazyLock<Cache> = LazyLock::new(Cache::memory);

#[memoize(cache = NEAR, timeout = 600, local = 600)]
fn hundred_near(n: u64) -> String {
    value(n)
}

#[memoize(cache = MEMORY, timeout = 600)]
fn hundred(n: u64) -> String {
    value(n)
}

#[cached::proc_macro::cached(ttl_secs = 600)]
fn hundred_cached_crate(n: u64) -> String {
    value(n)
}

static MOKA: LazyLock<moka::sync::Cache<u128, String>> =
    LazyLock::new(|| moka::sync::Cache::builder().max_capacity(10_000).build());
static QUICK: LazyLock<quick_cache::sync::Cache<u128, String>> =
    LazyLock::new(|| quick_cache::sync::Cache::new(10_000));

fn near_hit(c: &mut Criterion) {
    assert_eq!(hundred_near(7), value(7));
    // The near cache serves once its change channel is in sync (a heartbeat came back, a
    // few milliseconds after start-up).
    let started = std::time::Instant::now();
    while hundred_near::stats().near_hits == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "near hits within 5 s"
        );
        std::thread::sleep(Duration::from_millis(1));
        assert_eq!(hundred_near(7), value(7));
    }
    assert_eq!(hundred(7), value(7));
    assert_eq!(hundred_cached_crate(7), value(7));
    let key = xxhash_rust::xxh3::xxh3_128(b"cache:memoize:near_hit.hundred:7");
    MOKA.insert(key, value(7));
    QUICK.insert(key, value(7));

    let mut group = c.benchmark_group("near_hit");
    group.bench_function("near", |b| b.iter(|| hundred_near(black_box(7))));
    group.bench_function("cached_crate", |b| {
        b.iter(|| hundred_cached_crate(black_box(7)))
    });
    group.bench_function("moka_typed_get", |b| b.iter(|| MOKA.get(&black_box(key))));
    group.bench_function("quick_cache_typed_get", |b| {
        b.iter(|| QUICK.get(&black_box(key)))
    });
    group.bench_function("memoize_memory", |b| b.iter(|| hundred(black_box(7))));
    group.finish();
}

criterion_group!(benches, near_hit);
criterion_main!(benches);
