//! What the backplane's handle and its two threads share.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::counters::Counters;
use super::gate::Gate;
use super::settings::{Settings, Timing};

/// One backplane's state. The threads hold it (not the `Backplane`, and never a `Cache`).
pub(crate) struct Shared {
    /// This publisher's random id.
    pub(crate) id: u64,
    pub(crate) settings: Settings,
    pub(crate) timing: Timing,
    pub(crate) gate: Gate,
    pub(crate) counters: Counters,
    /// A change was dropped because the queue was full: the next message skips a number.
    pub(crate) overflowed: AtomicBool,
    /// How many of the next messages to number but not send (fault tests).
    pub(crate) drop_next: AtomicU64,
    /// The publishing thread is gone (it could not start, or panicked): logged once.
    pub(crate) publisher_gone: AtomicBool,
    /// Set when the `Backplane` is dropped; the receiving thread checks it at every tick
    /// (the publishing thread stops when the queue's sender is dropped).
    stop: AtomicBool,
}

impl Shared {
    pub(crate) fn new(settings: Settings) -> Self {
        Self {
            id: fastrand::u64(..),
            settings,
            timing: Timing::new(settings.bound),
            gate: Gate::closed(),
            counters: Counters::default(),
            overflowed: AtomicBool::new(false),
            drop_next: AtomicU64::new(0),
            publisher_gone: AtomicBool::new(false),
            stop: AtomicBool::new(false),
        }
    }

    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::Release);
    }

    pub(crate) fn stopped(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backplane")
            .field("id", &format_args!("{:016x}", self.id))
            .field("settings", &self.settings)
            .field("in_sync", &self.gate.is_open())
            .field("counters", &self.counters.snapshot())
            .finish()
    }
}
