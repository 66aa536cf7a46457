//! Keeps the near caches of every instance coherent over a [`Bus`]: announces this
//! instance's changes and applies the other instances' ones, and says when near entries may
//! be served at all (in sync, no message lost, contact with the backend recent enough).
//!
//! SKELETON written by the lead so that the near tier, the lease notifications and the
//! backplane can be built in parallel; the signatures below are the contract between them.
//! The backplane's owner fills in the bodies (and may add private items and submodules).

use std::sync::Arc;
use std::time::Duration;

use crate::bus::Bus;

/// The near-cache key of an entry: `xxh3_128` of its full backend key (namespace
/// included, after the long-argument hashing of [`crate::key::KeyBuilder::finish`]), so
/// every instance and every path (a near hit that never builds the key string, a `delete`
/// given the key string, a lease waiter) computes the same one.
pub(crate) type NearKey = u128;

/// The near key of a full backend key.
#[inline]
pub(crate) fn near_key(full_key: &str) -> NearKey {
    xxhash_rust::xxh3::xxh3_128(full_key.as_bytes())
}

/// A change this instance made and announces, after the backend write succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// These entries were written or deleted.
    Keys(Vec<NearKey>),
    /// Entries that no near key names were removed (`clear`, `delete_prefix`,
    /// `invalidate_all`): every instance flushes its whole near tier.
    All,
}

/// What the backplane tells the near tier (and the lease waiters) about the other
/// instances' changes.
pub(crate) trait Listener: Send + Sync + 'static {
    /// These entries changed in another instance (or in this one, for `woken`): forget
    /// them. Also wakes lease waiters on these keys.
    fn changed(&self, keys: &[NearKey]);
    /// Something may have been missed (a gap in a publisher's numbers, a lost
    /// subscription, a silent publisher, an `All` change, contact lost for longer than the
    /// bound): forget every entry.
    fn flush(&self);
}

/// How the backplane runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Settings {
    /// The staleness bound: no instance serves a value from its near tier more than this
    /// long after a change was acknowledged to its writer. Default 1 s.
    pub(crate) bound: Duration,
    /// Fail-safe: while out of contact with the backend, keep serving near entries for their
    /// whole local timeout (instead of stopping once the bound has passed).
    pub(crate) fail_safe: bool,
}

/// The running backplane of one cache: its threads stop when it is dropped.
#[derive(Debug)]
pub(crate) struct Backplane {
    _bus: Arc<dyn Bus>,
}

impl Backplane {
    /// Starts announcing and listening on `bus`; changes are reported to `listener`.
    pub(crate) fn start(
        bus: Arc<dyn Bus>,
        settings: Settings,
        listener: Arc<dyn Listener>,
    ) -> Self {
        let _ = (settings, listener);
        Self { _bus: bus }
    }

    /// Announces a change this instance made (after its backend write succeeded). Never
    /// blocks and never fails: when the queue is full the change is dropped and the next
    /// message carries a gap, which makes every receiver flush.
    pub(crate) fn announce(&self, change: Change) {
        let _ = change;
    }

    /// Whether near entries may be served now. A single atomic load: called on every near
    /// hit.
    #[inline]
    pub(crate) fn in_sync(&self) -> bool {
        false
    }

    /// A snapshot to take before a backend read whose result will be kept in the near tier;
    /// [`Backplane::still_valid`] says whether a change (or a flush) for `key` arrived since,
    /// in which case the value read must not be kept (the invalidate-while-reading race).
    #[inline]
    pub(crate) fn snapshot(&self, key: NearKey) -> u64 {
        let _ = key;
        0
    }

    /// See [`Backplane::snapshot`].
    #[inline]
    pub(crate) fn still_valid(&self, key: NearKey, snapshot: u64) -> bool {
        let _ = (key, snapshot);
        false
    }
}
