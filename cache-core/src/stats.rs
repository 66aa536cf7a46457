//! Live counters, kept per cache and per cached function.
//!
//! Every hit updates two counters (the cache's and the function's) from whichever thread
//! runs it. One shared atomic per counter would make the worker threads of a busy service
//! take turns owning its cache line on every call, so each counter is striped: a thread adds
//! to one of 8 cache-line-sized stripes, chosen once per thread, and a snapshot
//! sums them (as `LongAdder` does in Java).

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

/// Stripes per set of counters: threads beyond this share stripes, which stays correct and
/// only brings some contention back.
const STRIPES: usize = 8;

/// Counters updated on every cache operation with relaxed atomics (no locks).
#[derive(Debug, Default)]
pub struct Stats {
    stripes: [Stripe; STRIPES],
}

/// One thread group's counters, alone on its cache lines (128 bytes: the adjacent-line
/// prefetcher of x86 CPUs pulls lines in pairs).
#[derive(Debug, Default)]
#[repr(align(128))]
struct Stripe {
    hits: AtomicU64,
    misses: AtomicU64,
    stores: AtomicU64,
    errors: AtomicU64,
    bypasses: AtomicU64,
    deletes: AtomicU64,
}

impl Stripe {
    fn counter(&self, event: Event) -> &AtomicU64 {
        match event {
            Event::Hit => &self.hits,
            Event::Miss => &self.misses,
            Event::Store => &self.stores,
            Event::Error => &self.errors,
            Event::Bypass => &self.bypasses,
        }
    }

    const fn new() -> Self {
        Self {
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            stores: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            bypasses: AtomicU64::new(0),
            deletes: AtomicU64::new(0),
        }
    }
}

/// The stripe of the current thread: threads take stripes in turn as they first count.
#[inline]
fn stripe_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    INDEX.with(|index| {
        if index.get() == usize::MAX {
            index.set(NEXT.fetch_add(1, Relaxed) % STRIPES);
        }
        index.get()
    })
}

/// A copy of the counters at one moment.
///
/// Every operation counts, through the attributes or the [`Cache`](crate::Cache) methods:
/// a read (`get`, `get_many`, `has`, a cached call's lookup) is a hit or a miss, a write
/// (`set`, `set_many`, a successful `add`, a cached call's store) a store, `delete`,
/// `delete_many`, `clear`, `delete_prefix` and the `invalidate` companions add the number
/// of entries they removed to `deletes`, and any of them failing is an error.
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
    /// Entries removed (`delete`, `delete_many`, `clear`, `delete_prefix`, `invalidate`).
    pub deletes: u64,
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
            stripes: [const { Stripe::new() }; STRIPES],
        }
    }

    /// Reads the counters (the sum of every stripe).
    pub fn snapshot(&self) -> StatsSnapshot {
        let sum = |counter: fn(&Stripe) -> &AtomicU64| {
            self.stripes
                .iter()
                .map(|stripe| counter(stripe).load(Relaxed))
                .sum()
        };
        StatsSnapshot {
            hits: sum(|s| &s.hits),
            misses: sum(|s| &s.misses),
            stores: sum(|s| &s.stores),
            errors: sum(|s| &s.errors),
            bypasses: sum(|s| &s.bypasses),
            deletes: sum(|s| &s.deletes),
        }
    }

    #[inline]
    fn count(&self, stripe: usize, event: Event) {
        self.stripes[stripe].counter(event).fetch_add(1, Relaxed);
    }

    pub(crate) fn bypass(&self) {
        self.count(stripe_index(), Event::Bypass);
    }
    pub(crate) fn deleted(&self, removed: u64) {
        self.stripes[stripe_index()]
            .deletes
            .fetch_add(removed, Relaxed);
    }
}

/// What a counter counts.
#[derive(Clone, Copy)]
enum Event {
    Hit,
    Miss,
    Store,
    Error,
    Bypass,
}

/// Counts one event in both the cache's counters and the function's.
#[derive(Clone, Copy)]
pub(crate) struct Counters<'a> {
    pub(crate) cache: &'a Stats,
    pub(crate) site: Option<&'a Stats>,
}

impl Counters<'_> {
    #[inline]
    fn both(&self, event: Event) {
        let stripe = stripe_index();
        self.cache.count(stripe, event);
        if let Some(site) = self.site {
            site.count(stripe, event);
        }
    }
    #[inline]
    pub(crate) fn hit(&self) {
        self.both(Event::Hit);
    }
    pub(crate) fn miss(&self) {
        self.both(Event::Miss);
    }
    pub(crate) fn store(&self) {
        self.both(Event::Store);
    }
    pub(crate) fn error(&self) {
        self.both(Event::Error);
    }
    pub(crate) fn bypass(&self) {
        self.both(Event::Bypass);
    }
    pub(crate) fn deleted(&self, removed: u64) {
        self.cache.deleted(removed);
        if let Some(site) = self.site {
            site.deleted(removed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_from_more_threads_than_stripes_add_up() {
        let stats = Stats::new();
        let site = Stats::new();
        let counters = Counters {
            cache: &stats,
            site: Some(&site),
        };
        std::thread::scope(|scope| {
            for _ in 0..3 * STRIPES {
                scope.spawn(|| {
                    for _ in 0..1000 {
                        counters.hit();
                    }
                    counters.miss();
                    counters.store();
                });
            }
        });
        let threads = 3 * STRIPES as u64;
        let expected = StatsSnapshot {
            hits: 1000 * threads,
            misses: threads,
            stores: threads,
            errors: 0,
            bypasses: 0,
            deletes: 0,
        };
        assert_eq!(stats.snapshot(), expected);
        assert_eq!(site.snapshot(), expected);
    }
}
