//! Run with: cargo bench -p cache-core --bench memory_hit
//!
//! An in-memory `#[memoize]` hit of `fn(u64) -> String` (a 100-byte value), against the same
//! work written by hand (build the key, get the bytes from the same store, decode) and
//! against the `cached` crate's in-memory `#[cached]` hit and a plain typed `moka` get (no
//! key building, no decoding: the floor of an in-process cache).

use std::fmt::Write as _;
use std::hint::black_box;
use std::sync::{Arc, LazyLock};

use cache_core::backend::BlockingBackend;
use cache_core::backend::memory::MemoryBackend;
use cache_core::codec::Bincode;
use cache_core::{Cache, envelope, memoize};
use criterion::{Criterion, criterion_group, criterion_main};

static STORE: LazyLock<Arc<MemoryBackend>> = LazyLock::new(|| Arc::new(MemoryBackend::new()));
static MOKA: LazyLock<moka::sync::Cache<u64, String>> =
    LazyLock::new(|| moka::sync::Cache::builder().max_capacity(10_000).build());
static CACHE: LazyLock<Cache> = LazyLock::new(|| {
    Cache::builder()
        .shared_backend(STORE.clone())
        .build()
        .expect("valid cache")
});

fn value(n: u64) -> String {
    format!("{n:0>100}")
}

#[memoize(cache = CACHE, timeout = 600)]
fn hundred(n: u64) -> String {
    value(n)
}

#[cached::proc_macro::cached(ttl_secs = 600)]
fn hundred_cached_crate(n: u64) -> String {
    value(n)
}

/// The hand-written hit: the same key, the same store, the same decoding.
fn hundred_by_hand(n: u64) -> Option<String> {
    let mut key = String::with_capacity(48);
    key.push_str(CACHE.namespace());
    key.push_str("memoize:memory_hit.hundred:");
    write!(key, "{n}").ok()?;
    let bytes = BlockingBackend::get(&**STORE, &key).ok()??;
    envelope::open::<Bincode, String>(&bytes)
        .ok()
        .map(|(v, _)| v)
}

fn memory_hit(c: &mut Criterion) {
    assert_eq!(hundred(7).len(), 100);
    assert_eq!(
        hundred_by_hand(7).as_deref(),
        Some(value(7).as_str()),
        "same key and store"
    );
    assert_eq!(hundred_cached_crate(7), value(7));

    let mut group = c.benchmark_group("memory_hit");
    group.bench_function("memoize", |b| b.iter(|| hundred(black_box(7))));
    group.bench_function("by_hand", |b| b.iter(|| hundred_by_hand(black_box(7))));
    group.bench_function("cached_crate", |b| {
        b.iter(|| hundred_cached_crate(black_box(7)))
    });
    MOKA.insert(7, value(7));
    group.bench_function("moka_typed_get", |b| b.iter(|| MOKA.get(&black_box(7))));
    group.finish();
}

criterion_group!(benches, memory_hit);
criterion_main!(benches);
