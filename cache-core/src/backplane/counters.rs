//! What the backplane counts, for tests and diagnostics.

use std::sync::atomic::{AtomicU64, Ordering};

/// The backplane's counters, read by [`Counters::snapshot`] (see [`BackplaneCounters`] for
/// what each counts).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) sent: AtomicU64,
    pub(crate) publish_failed: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) received: AtomicU64,
    pub(crate) own_received: AtomicU64,
    pub(crate) garbage: AtomicU64,
    pub(crate) gaps: AtomicU64,
    pub(crate) silent: AtomicU64,
    pub(crate) flushes: AtomicU64,
    pub(crate) subscriptions: AtomicU64,
    pub(crate) subscriptions_lost: AtomicU64,
    pub(crate) subscribe_failed: AtomicU64,
}

/// The counters at one moment (each counted since the backplane started).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BackplaneCounters {
    /// Messages published.
    pub sent: u64,
    /// Publishes that failed (each consumed its sequence number).
    pub publish_failed: u64,
    /// Changes dropped because the publishing queue was full.
    pub dropped: u64,
    /// Messages received from other publishers.
    pub received: u64,
    /// This instance's own messages received back.
    pub own_received: u64,
    /// Received bytes that were not a message of this version.
    pub garbage: u64,
    /// Gaps seen in other publishers' sequence numbers (first sight after number 1 included).
    pub gaps: u64,
    /// Publishers forgotten after a silence longer than the bound allows.
    pub silent: u64,
    /// Flushes of the near tier, for any reason.
    pub flushes: u64,
    /// Subscriptions confirmed.
    pub subscriptions: u64,
    /// Subscriptions lost.
    pub subscriptions_lost: u64,
    /// Attempts to subscribe that failed.
    pub subscribe_failed: u64,
}

/// Adds one to `counter`.
pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    pub(crate) fn snapshot(&self) -> BackplaneCounters {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        BackplaneCounters {
            sent: read(&self.sent),
            publish_failed: read(&self.publish_failed),
            dropped: read(&self.dropped),
            received: read(&self.received),
            own_received: read(&self.own_received),
            garbage: read(&self.garbage),
            gaps: read(&self.gaps),
            silent: read(&self.silent),
            flushes: read(&self.flushes),
            subscriptions: read(&self.subscriptions),
            subscriptions_lost: read(&self.subscriptions_lost),
            subscribe_failed: read(&self.subscribe_failed),
        }
    }
}
