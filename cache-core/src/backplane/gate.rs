//! The serving gate: a deadline on a coarse monotonic clock, compared with a clock read on
//! every near hit, so that it closes by itself when time passes even if the thread that
//! keeps it open is stuck.
//!
//! The clock is `coarsetime`'s (`CLOCK_MONOTONIC_COARSE` on Linux): about 12 ns a read on
//! the 2-core build machine against about 50 ns for `std::time::Instant::now`. It lags the
//! precise clock by at most one kernel tick (1 to 10 ms), which the backplane's margin
//! covers. All backplane times are in its ticks (2^-32 s).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Now, in clock ticks. Does not touch `coarsetime`'s shared "recent" cell, so concurrent
/// hits write nothing.
#[inline]
pub(crate) fn now() -> u64 {
    coarsetime::Instant::now_without_cache_update().as_ticks()
}

/// `duration` in clock ticks.
pub(crate) fn ticks(duration: Duration) -> u64 {
    coarsetime::Duration::from(duration).as_ticks()
}

/// Open while the clock is before its deadline.
#[derive(Debug)]
pub(crate) struct Gate {
    deadline: AtomicU64,
}

impl Gate {
    /// A closed gate.
    pub(crate) const fn closed() -> Self {
        Self {
            deadline: AtomicU64::new(0),
        }
    }

    /// Whether the deadline is still ahead. The `Acquire` pairs with the `Release` of
    /// [`Gate::open_until`]: a caller that sees the gate open also sees every change applied
    /// before it was opened.
    #[inline]
    pub(crate) fn is_open(&self) -> bool {
        self.is_open_at(now())
    }

    /// [`Gate::is_open`] at `now` (in ticks), for a caller that read the clock already.
    #[inline]
    pub(crate) fn is_open_at(&self, now: u64) -> bool {
        now < self.deadline.load(Ordering::Acquire)
    }

    /// Open until `deadline` (in ticks); `u64::MAX` never closes by itself.
    pub(crate) fn open_until(&self, deadline: u64) {
        self.deadline.store(deadline, Ordering::Release);
    }

    /// Closed now.
    pub(crate) fn close(&self) {
        self.deadline.store(0, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closes_by_itself_when_its_deadline_passes() {
        let gate = Gate::closed();
        assert!(!gate.is_open());
        gate.open_until(now() + ticks(Duration::from_millis(30)));
        assert!(gate.is_open());
        std::thread::sleep(Duration::from_millis(60));
        assert!(!gate.is_open(), "no one touched it: time alone closed it");
        gate.open_until(u64::MAX);
        assert!(gate.is_open());
        gate.close();
        assert!(!gate.is_open());
    }
}
