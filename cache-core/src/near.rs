//! The near cache: typed values of annotated functions kept in this process, in front of
//! the backend, so that a hot key costs neither a key string, nor decoding, nor a round
//! trip (see [`NearCache`] for the user's side).
//!
//! A [`Tier`] holds `Arc<dyn Any>` values under their [`NearKey`] (the `xxh3_128` of the
//! full backend key, computed on the stack by [`KeyBuilder::near`](crate::key::KeyBuilder::near)),
//! each with its own expiry, in a bounded `quick_cache` map (chosen by measurement, see
//! `docs/design.md`). It serves only while its gate says so: the [`Backplane`] of a backend
//! with a change channel, or, for an in-process backend without one, always (this instance
//! is then the only writer, and its own writes update the tier).
//!
//! The invalidate-while-reading race: a value read (or computed) is kept only if no change
//! for its key arrived since just before the read. Every change (this instance's own, and
//! those of other instances that the backplane passes on as a [`Listener`]) bumps the race
//! guard ([`RaceGuard`]: striped counters and a flush epoch) before its entry is removed
//! (or, for a store this instance keeps, right after it is replaced); a keep
//! checks the guard after inserting, and removes what it inserted when a change slipped in
//! between.

mod settings;
#[cfg(test)]
mod tests;

use std::any::Any;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::Duration;

pub use settings::NearCache;
pub(crate) use settings::{Bound, Checked};

use crate::backplane::{Backplane, Change, Listener, NearKey, Settings, coarse_now, coarse_ticks};
use crate::bus::Bus;
use crate::race::RaceGuard;
use crate::waiters::Waiters;

/// A value in the near cache: the result of an annotated function, typed.
pub(crate) type NearValue = Arc<dyn Any + Send + Sync>;

/// One entry: the value, when it stops being served, and its weight for a byte bound.
#[derive(Clone)]
struct Entry {
    value: NearValue,
    /// In ticks of the coarse clock ([`coarse_now`]).
    expires: u64,
    weight: u32,
}

/// Weighs entries for the bound: one each, or their encoded size plus the entry's own.
#[derive(Clone)]
struct Weigh(Bound);

/// What an entry costs besides its value's encoded bytes (key, expiry, `Arc`, map slot).
const ENTRY_OVERHEAD: u64 = 96;

impl quick_cache::Weighter<NearKey, Entry> for Weigh {
    fn weight(&self, _key: &NearKey, entry: &Entry) -> u64 {
        match self.0 {
            Bound::Entries(_) => 1,
            Bound::Bytes(_) => u64::from(entry.weight) + ENTRY_OVERHEAD,
        }
    }
}

/// Near keys are already uniform 128-bit hashes: the map uses their low 64 bits as they
/// are instead of hashing them again.
#[derive(Clone, Default)]
struct KeyHash;

impl BuildHasher for KeyHash {
    type Hasher = KeyHasher;
    fn build_hasher(&self) -> KeyHasher {
        KeyHasher(0)
    }
}

/// See [`KeyHash`].
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u128(&mut self, n: u128) {
        self.0 ^= n as u64;
    }
}

type Entries = quick_cache::sync::Cache<NearKey, Entry, Weigh, KeyHash>;

/// The entries and their race guard, shared with the backplane as its [`Listener`].
struct Shared {
    entries: Entries,
    guard: RaceGuard,
}

impl Listener for Shared {
    fn changed(&self, keys: &[NearKey]) {
        self.guard.changing(keys);
        for key in keys {
            self.entries.remove(key);
        }
        // Another instance stored (or deleted) these entries: a caller of this process
        // waiting on one of their leases looks again now instead of at its next poll.
        Waiters::global().notify(keys);
    }

    fn flush(&self) {
        self.guard.flushing();
        self.entries.clear();
    }
}

/// Whether the tier may serve, and how changes reach the other instances.
enum Gate {
    /// A backend with a change channel.
    Backplane(Backplane),
    /// An in-process backend without one: this instance is the only writer.
    Alone,
}

/// The near cache of one [`Cache`](crate::Cache).
pub(crate) struct Tier {
    shared: Arc<Shared>,
    gate: Gate,
    /// The local timeout of functions that give none.
    local: Duration,
    /// Tests close the gate by hand.
    #[cfg(test)]
    closed: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tier")
            .field("local", &self.local)
            .field("entries", &self.shared.entries.len())
            .finish_non_exhaustive()
    }
}

/// A near miss of a call that may keep its value: the key, the snapshot taken before the
/// backend read, and the call's local timeout.
#[derive(Debug)]
pub(crate) struct NearPlan {
    pub(crate) key: NearKey,
    /// The race guard's snapshot for the key.
    snapshot: u64,
    local: Duration,
}

/// What a value to keep costs and how long the backend entry it came from stays fresh.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fill {
    /// The encoded size of the value.
    pub(crate) weight: usize,
    /// At most this long from now (what remains of the entry's timeout, or of its fresh
    /// period with early refresh or serve-stale); `None` when unknown or unbounded.
    pub(crate) limit: Option<Duration>,
}

impl Fill {
    /// The same fill, living at most `limit` too (when given).
    pub(crate) fn capped(self, limit: Option<Duration>) -> Self {
        let limit = match (self.limit, limit) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Self { limit, ..self }
    }
}

impl Tier {
    /// The tier of a cache built with `settings`: behind the backplane of `bus`, the
    /// backend's change channel for `namespace`, or alone on an in-process backend without
    /// one; `None` (with a warning) on a shared backend without one, which could not learn
    /// of other instances' changes.
    pub(crate) fn start(
        settings: &Checked,
        bus: Option<Arc<dyn Bus>>,
        namespace: &str,
        in_process: bool,
    ) -> Option<Self> {
        let (items, weight) = match settings.bound {
            Bound::Entries(n) => (n, n as u64),
            Bound::Bytes(bytes) => ((bytes / 256).max(16) as usize, bytes),
        };
        let options = quick_cache::OptionsBuilder::new()
            .estimated_items_capacity(items)
            .weight_capacity(weight)
            .build()
            .expect("valid near cache options");
        let shared = Arc::new(Shared {
            entries: Entries::with_options(
                options,
                Weigh(settings.bound),
                KeyHash,
                Default::default(),
            ),
            guard: RaceGuard::new(),
        });
        let gate = match bus {
            Some(bus) => {
                let backplane = Settings {
                    bound: settings.staleness_bound,
                    fail_safe: settings.fail_safe,
                };
                Gate::Backplane(Backplane::start(bus, backplane, shared.clone()))
            }
            None if in_process => Gate::Alone,
            None => {
                tracing::warn!(
                    namespace,
                    "the backend offers no change channel, so a near cache could not learn \
                     of other instances' changes: the near cache stays off"
                );
                return None;
            }
        };
        Some(Self {
            shared,
            gate,
            local: settings.local_timeout,
            #[cfg(test)]
            closed: Default::default(),
        })
    }

    /// The local timeout of functions that give none.
    #[inline]
    pub(crate) fn local(&self) -> Duration {
        self.local
    }

    #[inline]
    fn serving_at(&self, now: u64) -> bool {
        #[cfg(test)]
        if self.closed.load(std::sync::atomic::Ordering::SeqCst) {
            return false;
        }
        match &self.gate {
            Gate::Backplane(backplane) => backplane.in_sync_at(now),
            Gate::Alone => true,
        }
    }

    /// The value under `key`, if the tier may serve and holds one that has not expired.
    /// One read of the coarse clock serves the gate and the expiry: an entry lives up to
    /// one kernel tick (1 to 10 ms) longer than its local timeout.
    #[inline]
    pub(crate) fn get(&self, key: NearKey) -> Option<NearValue> {
        let now = coarse_now();
        if !self.serving_at(now) {
            return None;
        }
        let entry = self.shared.entries.get(&key)?;
        if now >= entry.expires {
            self.shared.entries.remove(&key);
            return None;
        }
        Some(entry.value)
    }

    /// The plan of a near miss on `key` for a call with local timeout `local`: its
    /// snapshot is taken now, before the backend read.
    pub(crate) fn plan(&self, key: NearKey, local: Duration) -> NearPlan {
        NearPlan {
            key,
            snapshot: self.shared.guard.snapshot(key),
            local,
        }
    }

    /// Keeps `value`, read or computed by the call of `plan`, unless a change for its key
    /// arrived since the plan's snapshot. Its expiry is the call's local timeout, or what
    /// `fill` says remains of the backend entry, whichever comes first.
    pub(crate) fn keep(&self, plan: &NearPlan, value: NearValue, fill: Fill) {
        let life = fill.limit.map_or(plan.local, |limit| limit.min(plan.local));
        if life.is_zero() || !self.shared.guard.still_valid(plan.key, plan.snapshot) {
            return;
        }
        let entry = Entry {
            value,
            expires: coarse_now().saturating_add(coarse_ticks(life)),
            weight: u32::try_from(fill.weight).unwrap_or(u32::MAX),
        };
        self.shared.entries.insert(plan.key, entry);
        // A change that came between the check and the insert bumped the guard before
        // removing the entry: either that removal or this check undoes the insert.
        if !self.shared.guard.still_valid(plan.key, plan.snapshot) {
            self.shared.entries.remove(&plan.key);
        }
    }

    /// Keeps `value`, the result the call of `plan` just stored (see [`Tier::keep`]), then
    /// marks the change in the race guard, so a read of the old value by another call of
    /// this instance, racing with the store, is not kept.
    pub(crate) fn keep_stored(&self, plan: &NearPlan, value: NearValue, fill: Fill) {
        self.keep(plan, value, fill);
        self.shared.guard.changing(&[plan.key]);
    }

    /// This instance changed (or tried to change) the backend entries of `keys`: forgets
    /// them here. Call after the backend write, whatever its outcome.
    pub(crate) fn forget(&self, keys: &[NearKey]) {
        self.shared.changed(keys);
    }

    /// This instance removed entries no near key names: forgets every entry here.
    pub(crate) fn forget_all(&self) {
        self.shared.flush();
    }

    /// Tells the other instances about a change this instance made, after its backend
    /// write succeeded (and after [`Tier::forget`], [`Tier::forget_all`] or
    /// [`Tier::keep_stored`] marked it here).
    pub(crate) fn announce(&self, change: Change) {
        if let Gate::Backplane(backplane) = &self.gate {
            backplane.announce(change);
        }
    }

    /// See [`Cache::__drop_announcements`](crate::Cache::__drop_announcements).
    pub(crate) fn drop_announcements(&self, n: u64) {
        if let Gate::Backplane(backplane) = &self.gate {
            backplane.drop_next(n);
        }
    }

    /// How many entries the tier holds.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shared.entries.len()
    }

    /// Closes (or opens) the gate by hand, as a backplane out of sync would.
    #[cfg(test)]
    pub(crate) fn close_gate(&self, closed: bool) {
        self.closed
            .store(closed, std::sync::atomic::Ordering::SeqCst);
    }
}
