//! Run with: cargo bench -p cache-core --bench gate_clock
//!
//! The near cache's serving gate is read on every near hit: a deadline in an `AtomicU64`
//! compared with a clock read, so that it closes by itself when time passes. This compares
//! the clock it uses (`coarsetime`, `CLOCK_MONOTONIC_COARSE`) with `std::time::Instant` and
//! with the bare atomic load, in one run.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};

fn gate(c: &mut Criterion) {
    let deadline = AtomicU64::new(u64::MAX);
    let epoch = Instant::now();
    let mut group = c.benchmark_group("gate");
    group.bench_function("coarsetime_deadline", |b| {
        b.iter(|| {
            coarsetime::Instant::now_without_cache_update().as_ticks()
                < black_box(&deadline).load(Ordering::Acquire)
        })
    });
    group.bench_function("std_instant_deadline", |b| {
        b.iter(|| {
            (black_box(epoch).elapsed().as_nanos() as u64)
                < black_box(&deadline).load(Ordering::Acquire)
        })
    });
    group.bench_function("atomic_load_only", |b| {
        b.iter(|| black_box(&deadline).load(Ordering::Acquire) > 0)
    });
    group.finish();
}

criterion_group!(benches, gate);
criterion_main!(benches);
