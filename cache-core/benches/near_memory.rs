//! Run with: cargo bench -p cache-core --bench near_memory
//!
//! Memory per entry of a 100-byte `String`, 100,000 entries: the near cache (100,000 calls
//! of a `#[memoize(local = ..)]` function whose values go nowhere else: the backend is the
//! null one), against a typed `moka` cache and a typed `quick_cache` one keyed by `u128`
//! (the candidates for the near tier's map). Counted with dhat's heap statistics (a
//! counting global allocator), in a binary of its own so that no timing benchmark runs
//! under it. Each figure includes the map's own tables, sized for twice the entries.

use std::hint::black_box;
use std::sync::LazyLock;
use std::time::Duration;

use cache_core::backend::null::NullBackend;
use cache_core::{Cache, NearCache, memoize};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const ENTRIES: u128 = 100_000;

fn value(n: u128) -> String {
    format!("{n:0>100}")
}

/// Built on the first call, inside the measurement.
static NEAR: LazyLock<Cache> = LazyLock::new(|| {
    Cache::builder()
        .backend(NullBackend)
        .near_cache(NearCache::new(Duration::from_secs(600)).max_entries(ENTRIES as u64 * 2))
        .build()
        .expect("valid cache")
});

#[memoize(cache = NEAR, timeout = 600, local = 600)]
fn hundred(n: u64) -> String {
    value(u128::from(n))
}

/// Bytes still allocated after `fill` built a cache of [`ENTRIES`] entries, per entry.
fn per_entry<C>(fill: impl FnOnce() -> C) -> f64 {
    let profiler = dhat::Profiler::builder().testing().build();
    let before = dhat::HeapStats::get().curr_bytes;
    let cache = fill();
    let after = dhat::HeapStats::get().curr_bytes;
    black_box(&cache);
    drop(cache);
    drop(profiler);
    (after - before) as f64 / ENTRIES as f64
}

fn main() {
    let moka = per_entry(|| {
        let cache = moka::sync::Cache::<u128, String>::builder()
            .max_capacity(ENTRIES as u64 * 2)
            .build();
        for n in 0..ENTRIES {
            cache.insert(n, value(n));
        }
        cache.run_pending_tasks();
        cache
    });
    let quick = per_entry(|| {
        let cache = quick_cache::sync::Cache::<u128, String>::new(ENTRIES as usize * 2);
        for n in 0..ENTRIES {
            cache.insert(n, value(n));
        }
        cache
    });
    let near = per_entry(|| {
        for n in 0..ENTRIES as u64 {
            black_box(hundred(n));
        }
        // The values are kept near at once; they are served once the near cache's change
        // channel is in sync (a heartbeat came back, a few milliseconds after start-up).
        let started = std::time::Instant::now();
        while hundred::stats().near_hits == 0 {
            assert!(started.elapsed().as_secs() < 5, "the values are kept near");
            std::thread::sleep(std::time::Duration::from_millis(1));
            black_box(hundred(0));
        }
    });
    println!("memory per 100-byte String entry, {ENTRIES} entries:");
    println!("  near cache               {near:>7.0} B");
    println!("  moka::sync typed         {moka:>7.0} B");
    println!("  quick_cache::sync typed  {quick:>7.0} B");
}
