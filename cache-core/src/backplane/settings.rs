//! The backplane's settings and the times derived from its bound.

use std::time::Duration;

use super::gate::ticks;

/// The smallest bound: its margin (a quarter) must cover one-way delivery and the clock's
/// resolution (up to 10 ms).
pub(crate) const MIN_BOUND: Duration = Duration::from_millis(100);

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

impl Default for Settings {
    fn default() -> Self {
        Self {
            bound: Duration::from_secs(1),
            fail_safe: false,
        }
    }
}

/// The protocol's times, all derived from the bound `B` (see the argument in
/// `backplane.rs`): the margin `M = B/4` is what one-way delivery (a publisher's thread to
/// Redis to a receiver's thread) and the clock's resolution may take.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    /// `B/4`: a publisher that sent nothing for this long sends a heartbeat.
    pub(crate) heartbeat: Duration,
    /// `B/16`: the longest a thread waits before it looks at the time (and the stop flag).
    pub(crate) tick: Duration,
    /// `B - M`, in clock ticks: the gate stays open this long after the sending time of
    /// this instance's latest message that came back.
    pub(crate) window: u64,
    /// `B - M - tick`, in clock ticks: a publisher not heard from for this long is taken
    /// for lost.
    pub(crate) silence: u64,
    /// The first wait before subscribing again after a failure; doubles on each failure.
    pub(crate) retry_min: Duration,
    /// `B/2`: the longest wait before subscribing again.
    pub(crate) retry_max: Duration,
}

impl Timing {
    /// The times for `bound` (taken as [`MIN_BOUND`] if below it; the near cache's settings
    /// refuses such a bound first).
    pub(crate) fn new(bound: Duration) -> Self {
        let bound = bound.max(MIN_BOUND);
        let tick = bound / 16;
        let margin = bound / 4;
        let window = bound - margin;
        Self {
            heartbeat: bound / 4,
            tick,
            window: ticks(window),
            silence: ticks(window - tick),
            retry_min: tick.min(Duration::from_millis(10)),
            retry_max: bound / 2,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeats_and_silence_fit_in_the_bound() {
        let timing = Timing::new(Duration::from_secs(1));
        assert_eq!(timing.heartbeat, Duration::from_millis(250));
        assert_eq!(timing.window, ticks(Duration::from_millis(750)));
        assert!(timing.silence > ticks(2 * timing.heartbeat));
        assert!(timing.silence + ticks(timing.tick) <= timing.window);
    }
}
