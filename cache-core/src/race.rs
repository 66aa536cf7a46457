//! The race guard: a value read from the backend before a change (or a flush) for its key
//! arrived must not be kept, whether the change is this instance's own or one the backplane
//! received from another instance.
//!
//! 256 striped counters, chosen by the key's low bits, each bumped before a change to one
//! of its keys is applied, plus a flush epoch bumped before every flush. A snapshot is the
//! sum of the key's stripe and the epoch: both only grow, so the sum changes exactly when
//! either does. A change to another key of the same stripe also invalidates a snapshot (a
//! spurious miss, never a stale value).
//!
//! The protocol is Dekker's: a keep inserts, then checks (`still_valid`, which issues a
//! `SeqCst` fence before its loads) and removes what it inserted if the check fails; a change
//! bumps (a `SeqCst` read-modify-write and fence), then removes. Either the check sees the
//! bump, or the removal sees the insert.

use std::sync::atomic::{AtomicU64, Ordering, fence};

/// A near key (`backplane::NearKey`): the 128-bit hash of a full backend key.
type NearKey = u128;

const STRIPES: usize = 256;

/// The counters.
#[derive(Debug)]
pub(crate) struct RaceGuard {
    stripes: Box<[AtomicU64; STRIPES]>,
    epoch: AtomicU64,
}

impl Default for RaceGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl RaceGuard {
    pub(crate) fn new() -> Self {
        Self {
            stripes: Box::new([const { AtomicU64::new(0) }; STRIPES]),
            epoch: AtomicU64::new(0),
        }
    }

    fn stripe(&self, key: NearKey) -> &AtomicU64 {
        &self.stripes[(key as usize) % STRIPES]
    }

    /// Taken before the backend read.
    pub(crate) fn snapshot(&self, key: NearKey) -> u64 {
        let epoch = self.epoch.load(Ordering::SeqCst);
        epoch.wrapping_add(self.stripe(key).load(Ordering::SeqCst))
    }

    /// True if no change to `key`'s stripe and no flush happened since `snapshot`.
    pub(crate) fn still_valid(&self, key: NearKey, snapshot: u64) -> bool {
        fence(Ordering::SeqCst);
        self.snapshot(key) == snapshot
    }

    /// Called before `keys` are removed from the near tier.
    pub(crate) fn changing(&self, keys: &[NearKey]) {
        for &key in keys {
            self.stripe(key).fetch_add(1, Ordering::SeqCst);
        }
        fence(Ordering::SeqCst);
    }

    /// Called before the near tier is flushed.
    pub(crate) fn flushing(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_to_the_key_invalidates_its_snapshot() {
        let guard = RaceGuard::new();
        let snap = guard.snapshot(7);
        assert!(guard.still_valid(7, snap));
        guard.changing(&[7]);
        assert!(!guard.still_valid(7, snap));
        assert!(guard.still_valid(7, guard.snapshot(7)));
    }

    #[test]
    fn a_change_to_another_stripe_does_not() {
        let guard = RaceGuard::new();
        let snap = guard.snapshot(7);
        guard.changing(&[8, 9]);
        assert!(guard.still_valid(7, snap));
    }

    #[test]
    fn a_flush_invalidates_every_snapshot() {
        let guard = RaceGuard::new();
        let snaps: Vec<_> = (0..1000u128).map(|k| (k, guard.snapshot(k))).collect();
        guard.flushing();
        assert!(snaps.iter().all(|&(k, s)| !guard.still_valid(k, s)));
    }
}
