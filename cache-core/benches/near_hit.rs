//! Run with: cargo bench -p cache-core --bench near_hit
//!
//! The near tier's candidates, side by side in one run: a typed get of a 100-byte `String`
//! keyed by `u128` from `moka::sync` and from `quick_cache::sync`.

use std::hint::black_box;
use std::sync::LazyLock;

use criterion::{Criterion, criterion_group, criterion_main};

fn value(n: u128) -> String {
    format!("{n:0>100}")
}

static MOKA: LazyLock<moka::sync::Cache<u128, String>> =
    LazyLock::new(|| moka::sync::Cache::builder().max_capacity(10_000).build());
static QUICK: LazyLock<quick_cache::sync::Cache<u128, String>> =
    LazyLock::new(|| quick_cache::sync::Cache::new(10_000));

fn near_hit(c: &mut Criterion) {
    let key = xxhash_rust::xxh3::xxh3_128(b"cache:memoize:near_hit.hundred:7");
    MOKA.insert(key, value(7));
    QUICK.insert(key, value(7));
    let mut group = c.benchmark_group("near_hit");
    group.bench_function("moka_typed_get", |b| b.iter(|| MOKA.get(&black_box(key))));
    group.bench_function("quick_cache_typed_get", |b| {
        b.iter(|| QUICK.get(&black_box(key)))
    });
    group.finish();
}

criterion_group!(benches, near_hit);
criterion_main!(benches);
