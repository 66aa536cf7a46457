//! Run with: cargo bench -p cache-core --bench near_memory
//!
//! Memory per entry of a 100-byte `String` keyed by `u128`, 100,000 entries: a typed `moka`
//! cache against a typed `quick_cache` one (the candidates for the near tier). Counted with
//! dhat's heap statistics (a counting global allocator), in a binary of its own so that no
//! timing benchmark runs under it.

use std::hint::black_box;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const ENTRIES: u128 = 100_000;

fn value(n: u128) -> String {
    format!("{n:0>100}")
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
    println!("memory per 100-byte String entry, {ENTRIES} entries:");
    println!("  moka::sync typed         {moka:>7.0} B");
    println!("  quick_cache::sync typed  {quick:>7.0} B");
}
