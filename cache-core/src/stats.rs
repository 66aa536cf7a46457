//! Live counters, kept per cache and per cached function.
//!
//! Every hit updates two counters (the cache's and the function's) from whichever thread
//! runs it. One shared atomic per counter would make the worker threads of a busy service
//! take turns owning its cache line on every call, so each counter is striped: a thread adds
//! to one of 8 cache-line-sized stripes, chosen once per thread, and a snapshot
//! sums them (as `LongAdder` does in Java).

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use crate::observe::{self, Event, Slot};

/// Stripes per set of counters: threads beyond this share stripes, which stays correct and
/// only brings some contention back.
const STRIPES: usize = 8;

/// Counters updated on every cache operation with relaxed atomics (no locks).
///
/// With the `metrics` feature, every count also goes to the `metrics` recorder (see
/// [`crate::observe`]).
#[derive(Debug, Default)]
pub struct Stats {
    stripes: [Stripe; STRIPES],
    observe: Slot,
}

/// One thread group's counters, one per [`Event`], alone on their cache lines (128 bytes:
/// the adjacent-line prefetcher of x86 CPUs pulls lines in pairs).
#[derive(Debug, Default)]
#[repr(align(128))]
struct Stripe {
    counts: [AtomicU64; Event::COUNT],
}

impl Stripe {
    const fn new() -> Self {
        Self {
            counts: [const { AtomicU64::new(0) }; Event::COUNT],
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
/// of entries they removed to `deletes`, and any of them failing is an error. The
/// `metrics` counters of the same names (feature `metrics`) count the same events.
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
    /// Reads that found a usable value (stale hits included).
    pub hits: u64,
    /// Reads that found nothing, or an unusable value.
    pub misses: u64,
    /// Hits served stale while one caller refreshes the value (`serve_stale`).
    pub stale_hits: u64,
    /// Hits recomputed early (`early_refresh`; also counted as hits).
    pub early_refreshes: u64,
    /// Values written.
    pub stores: u64,
    /// Backend failures and undecodable values (each also counted as a miss or a failed store).
    pub errors: u64,
    /// Cached calls whose read failed, so the function ran without the cache (each also
    /// counted as an error and a miss).
    pub fail_opens: u64,
    /// Calls that skipped the cache (`unless`, no cache installed, key not buildable).
    pub bypasses: u64,
    /// Cached calls that found another caller's lease and waited for its value (`lease`).
    pub lease_waits: u64,
    /// Lease waiters that computed the value themselves: the holder's lease expired and they
    /// took it, or they waited twice the lease.
    pub lease_takeovers: u64,
    /// Entries removed (`delete`, `delete_many`, `clear`, `delete_prefix`, `invalidate`).
    pub deletes: u64,
    /// Hits served from the near cache (see [`NearCache`](crate::NearCache)), without
    /// touching the backend; also counted in `hits`.
    pub near_hits: u64,
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
        Self::with_slot(Slot::unnamed())
    }

    const fn with_slot(observe: Slot) -> Self {
        Self {
            stripes: [const { Stripe::new() }; STRIPES],
            observe,
        }
    }

    /// The counters of the cache with `namespace` (normalised), its `cache` metrics label.
    pub(crate) fn cache(namespace: &str) -> Self {
        Self::with_slot(Slot::cache(namespace))
    }

    /// The counters of the annotated function at `path`, its `function` metrics label.
    pub(crate) const fn function(path: &'static str) -> Self {
        Self::with_slot(Slot::function(path))
    }

    /// Reads the counters (the sum of every stripe).
    pub fn snapshot(&self) -> StatsSnapshot {
        let sum = |event: Event| {
            self.stripes
                .iter()
                .map(|stripe| stripe.counts[event as usize].load(Relaxed))
                .sum()
        };
        StatsSnapshot {
            hits: sum(Event::Hit),
            misses: sum(Event::Miss),
            stale_hits: sum(Event::StaleHit),
            early_refreshes: sum(Event::EarlyRefresh),
            stores: sum(Event::Store),
            errors: sum(Event::Error),
            fail_opens: sum(Event::FailOpen),
            bypasses: sum(Event::Bypass),
            lease_waits: sum(Event::LeaseWait),
            lease_takeovers: sum(Event::TakeOver),
            deletes: sum(Event::Delete),
            near_hits: sum(Event::NearHit),
        }
    }

    #[inline]
    fn count(&self, stripe: usize, event: Event, n: u64) {
        self.stripes[stripe].counts[event as usize].fetch_add(n, Relaxed);
    }

    /// Counts `n` events on these counters alone (a cache's methods, or a function called
    /// with no cache).
    #[inline]
    fn alone(&self, event: Event, n: u64) {
        self.count(stripe_index(), event, n);
        observe::event(&self.observe, event, n);
    }

    pub(crate) fn bypass(&self) {
        self.alone(Event::Bypass, 1);
    }
    pub(crate) fn deleted(&self, removed: u64) {
        self.alone(Event::Delete, removed);
    }
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
        self.cache.count(stripe, event, 1);
        if let Some(site) = self.site {
            site.count(stripe, event, 1);
        }
        observe::call_event(&self.cache.observe, self.site.map(|s| &s.observe), event);
    }
    #[inline]
    pub(crate) fn hit(&self) {
        self.both(Event::Hit);
    }
    /// A hit served from the near cache: a hit and a near hit.
    #[inline]
    pub(crate) fn near_hit(&self) {
        self.both(Event::Hit);
        self.both(Event::NearHit);
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
    /// A hit on a stale value (counted as a hit too, by the read).
    pub(crate) fn stale_hit(&self) {
        self.both(Event::StaleHit);
    }
    /// A hit that will be recomputed early (counted as a hit too, by the read).
    pub(crate) fn early_refresh(&self) {
        self.both(Event::EarlyRefresh);
    }
    /// A read that failed, so the function runs without the cache.
    pub(crate) fn fail_open(&self) {
        self.both(Event::FailOpen);
    }
    /// Attempt `attempt` (from 0) to take a lease found it held: the first one starts a
    /// lease wait.
    pub(crate) fn lease_busy(&self, attempt: u32) {
        if attempt == 0 {
            self.both(Event::LeaseWait);
        }
    }
    /// Attempt `attempt` (from 0) took the lease: after waiting, that is a take-over.
    pub(crate) fn took_lease(&self, attempt: u32) {
        if attempt > 0 {
            self.both(Event::TakeOver);
        }
    }
    /// A lease waiter gave up waiting and computes the value itself.
    pub(crate) fn lease_takeover(&self) {
        self.both(Event::TakeOver);
    }
    /// The function's body took `time` (a histogram only).
    #[inline]
    pub(crate) fn computed(&self, time: Duration) {
        observe::computed(&self.cache.observe, self.site.map(|s| &s.observe), time);
    }
    /// A value of `bytes` bytes is about to be stored (a histogram only).
    #[inline]
    pub(crate) fn sealed(&self, bytes: usize) {
        observe::sealed(&self.cache.observe, self.site.map(|s| &s.observe), bytes);
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
            ..StatsSnapshot::default()
        };
        assert_eq!(stats.snapshot(), expected);
        assert_eq!(site.snapshot(), expected);
    }
}
