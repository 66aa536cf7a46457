//! Live counters, kept per cache and per cached function.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Counters updated on every cache operation with relaxed atomics (no locks).
#[derive(Debug, Default)]
pub struct Stats {
    hits: AtomicU64,
    misses: AtomicU64,
    stores: AtomicU64,
    errors: AtomicU64,
    bypasses: AtomicU64,
}

/// A copy of the counters at one moment.
///
/// ```
/// use cache_core::Cache;
///
/// let cache = Cache::memory();
/// cache.blocking().set("a", &1u8)?;
/// let _ = cache.blocking().get::<u8>("a")?;
/// let _ = cache.blocking().get::<u8>("b")?;
/// let stats = cache.stats();
/// assert_eq!((stats.hits, stats.misses, stats.stores), (1, 1, 1));
/// # Ok::<(), cache_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatsSnapshot {
    /// Reads that found a usable value.
    pub hits: u64,
    /// Reads that found nothing, or an unusable value.
    pub misses: u64,
    /// Values written.
    pub stores: u64,
    /// Backend failures and undecodable values (each also counted as a miss or a failed store).
    pub errors: u64,
    /// Calls that skipped the cache (`unless`, no cache installed, key not buildable).
    pub bypasses: u64,
}

impl StatsSnapshot {
    /// Hits divided by reads, or 0 with no reads.
    pub fn hit_ratio(&self) -> f64 {
        let reads = self.hits + self.misses;
        if reads == 0 {
            0.0
        } else {
            self.hits as f64 / reads as f64
        }
    }
}

impl Stats {
    /// Zeroed counters, usable in a `static`.
    pub const fn new() -> Self {
        Self {
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            stores: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            bypasses: AtomicU64::new(0),
        }
    }

    /// Reads the counters.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            hits: self.hits.load(Relaxed),
            misses: self.misses.load(Relaxed),
            stores: self.stores.load(Relaxed),
            errors: self.errors.load(Relaxed),
            bypasses: self.bypasses.load(Relaxed),
        }
    }

    pub(crate) fn hit(&self) {
        self.hits.fetch_add(1, Relaxed);
    }
    pub(crate) fn miss(&self) {
        self.misses.fetch_add(1, Relaxed);
    }
    pub(crate) fn store(&self) {
        self.stores.fetch_add(1, Relaxed);
    }
    pub(crate) fn error(&self) {
        self.errors.fetch_add(1, Relaxed);
    }
    pub(crate) fn bypass(&self) {
        self.bypasses.fetch_add(1, Relaxed);
    }
}

/// Counts one event in both the cache's counters and the function's.
#[derive(Clone, Copy)]
pub(crate) struct Counters<'a> {
    pub(crate) cache: &'a Stats,
    pub(crate) site: Option<&'a Stats>,
}

impl Counters<'_> {
    fn both(&self, f: impl Fn(&Stats)) {
        f(self.cache);
        if let Some(site) = self.site {
            f(site);
        }
    }
    pub(crate) fn hit(&self) {
        self.both(Stats::hit);
    }
    pub(crate) fn miss(&self) {
        self.both(Stats::miss);
    }
    pub(crate) fn store(&self) {
        self.both(Stats::store);
    }
    pub(crate) fn error(&self) {
        self.both(Stats::error);
    }
    pub(crate) fn bypass(&self) {
        self.both(Stats::bypass);
    }
}
