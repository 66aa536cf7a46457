//! The circuit breaker shared by the async and the blocking halves.
//!
//! It counts consecutive failures to reach Redis (connection errors and time-outs; an error
//! *answer* such as `WRONGTYPE` proves the server is up and counts as a success). After
//! [`BreakerSettings::threshold`] of them in a row the circuit *opens*: calls fail at once
//! with a connection error, without touching the network, for a back-off that starts at
//! [`BreakerSettings::base_backoff`] and doubles after every failed probe up to
//! [`BreakerSettings::max_backoff`]. When the back-off has passed, exactly one call goes
//! through as a probe; its success closes the circuit, its failure opens it again.
//!
//! The closed state, the one every healthy call sees, costs one relaxed atomic load before the
//! call and one after.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cache_core::{Error, ErrorKind, Result};

/// When the circuit breaker opens and how long it stays open.
///
/// ```
/// use std::time::Duration;
/// use cache_redis::BreakerSettings;
///
/// let defaults = BreakerSettings::default();
/// assert_eq!(defaults.threshold, 3);
/// assert_eq!(defaults.base_backoff, Duration::from_secs(1));
/// assert_eq!(defaults.max_backoff, Duration::from_secs(10));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct BreakerSettings {
    /// Consecutive failures that open the circuit (default 3). Zero disables the breaker.
    pub threshold: u32,
    /// How long the circuit stays open the first time (default 1 s).
    pub base_backoff: Duration,
    /// The longest it stays open after repeated failed probes (default 10 s).
    pub max_backoff: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            threshold: 3,
            base_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(10),
        }
    }
}

impl BreakerSettings {
    /// Settings with the given threshold and back-offs.
    pub fn new(threshold: u32, base_backoff: Duration, max_backoff: Duration) -> Self {
        Self {
            threshold,
            base_backoff,
            max_backoff: max_backoff.max(base_backoff),
        }
    }

    /// A breaker that never opens.
    pub fn disabled() -> Self {
        Self {
            threshold: 0,
            ..Self::default()
        }
    }
}

/// What [`Breaker::admit`] decided for one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// The circuit is closed: a normal call.
    Closed,
    /// The circuit was open and this call is the one probe.
    Probe,
}

/// The breaker's state. Lock-free on the closed path; the mutex only guards transitions.
#[derive(Debug)]
pub(crate) struct Breaker {
    settings: BreakerSettings,
    /// Consecutive failures; at or above the threshold the circuit is open.
    failures: AtomicU32,
    /// When the open circuit lets a probe through, in nanoseconds since `epoch`.
    retry_at: AtomicU64,
    /// A probe is in flight.
    probing: AtomicBool,
    /// The current back-off; doubled by each failed probe.
    backoff: Mutex<Duration>,
    epoch: Instant,
}

impl Breaker {
    pub(crate) fn new(settings: BreakerSettings) -> Self {
        Self {
            settings,
            failures: AtomicU32::new(0),
            retry_at: AtomicU64::new(0),
            probing: AtomicBool::new(false),
            backoff: Mutex::new(settings.base_backoff),
            epoch: Instant::now(),
        }
    }

    fn is_open(&self, failures: u32) -> bool {
        self.settings.threshold != 0 && failures >= self.settings.threshold
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// True while calls fail fast.
    pub(crate) fn is_open_now(&self) -> bool {
        self.is_open(self.failures.load(Ordering::Relaxed))
    }

    /// Lets a call through, or fails it fast while the circuit is open.
    #[inline]
    pub(crate) fn admit(&self) -> Result<Admission> {
        let failures = self.failures.load(Ordering::Relaxed);
        if !self.is_open(failures) {
            return Ok(Admission::Closed);
        }
        self.admit_open()
    }

    #[cold]
    fn admit_open(&self) -> Result<Admission> {
        let due = self.now() >= self.retry_at.load(Ordering::Acquire);
        if due
            && self
                .probing
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            tracing::debug!(target: "cache_redis", "circuit half-open: probing Redis");
            return Ok(Admission::Probe);
        }
        Err(Error::new(
            ErrorKind::Connection,
            "Redis circuit breaker is open after repeated failures; failing fast until the \
             next probe",
        ))
    }

    /// Records the outcome of an admitted call.
    #[inline]
    pub(crate) fn record<T>(&self, admission: Admission, result: &Result<T>) {
        let failed = matches!(result, Err(e) if is_outage(e));
        match (failed, admission) {
            (false, Admission::Closed) => {
                if self.failures.load(Ordering::Relaxed) != 0 {
                    self.close();
                }
            }
            (false, Admission::Probe) => self.close(),
            (true, Admission::Closed) => self.fail(),
            (true, Admission::Probe) => self.probe_failed(),
        }
    }

    #[cold]
    fn close(&self) {
        let was = self.failures.swap(0, Ordering::AcqRel);
        self.probing.store(false, Ordering::Release);
        *self.backoff.lock().unwrap_or_else(|e| e.into_inner()) = self.settings.base_backoff;
        if self.is_open(was) {
            tracing::info!(target: "cache_redis", "circuit closed: Redis answers again");
        }
    }

    #[cold]
    fn fail(&self) {
        let failures = self
            .failures
            .fetch_add(1, Ordering::AcqRel)
            .saturating_add(1);
        if self.settings.threshold != 0 && failures == self.settings.threshold {
            let backoff = *self.backoff.lock().unwrap_or_else(|e| e.into_inner());
            self.open_for(backoff);
            tracing::warn!(
                target: "cache_redis",
                failures,
                backoff_ms = backoff.as_millis() as u64,
                "circuit opened: Redis calls fail fast"
            );
        }
    }

    #[cold]
    fn probe_failed(&self) {
        let backoff = {
            let mut backoff = self.backoff.lock().unwrap_or_else(|e| e.into_inner());
            *backoff = (*backoff * 2).min(self.settings.max_backoff);
            *backoff
        };
        self.open_for(backoff);
        self.probing.store(false, Ordering::Release);
        tracing::warn!(
            target: "cache_redis",
            backoff_ms = backoff.as_millis() as u64,
            "circuit re-opened: the probe failed"
        );
    }

    fn open_for(&self, backoff: Duration) {
        let until = self
            .now()
            .saturating_add(u64::try_from(backoff.as_nanos()).unwrap_or(u64::MAX));
        self.retry_at.store(until, Ordering::Release);
    }
}

/// Errors that mean Redis is unreachable, as opposed to an answer that is an error.
fn is_outage(error: &Error) -> bool {
    matches!(error.kind(), ErrorKind::Connection | ErrorKind::Timeout)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn down() -> Result<()> {
        Err(Error::new(ErrorKind::Connection, "down"))
    }

    fn settings(backoff_ms: u64) -> BreakerSettings {
        BreakerSettings::new(
            3,
            Duration::from_millis(backoff_ms),
            Duration::from_millis(backoff_ms * 4),
        )
    }

    #[test]
    fn opens_after_the_threshold_and_fails_fast() {
        let breaker = Breaker::new(settings(60_000));
        for _ in 0..3 {
            let admission = breaker.admit().unwrap();
            breaker.record(admission, &down());
        }
        let err = breaker.admit().unwrap_err();
        assert!(err.is_connection());
        assert!(breaker.is_open_now());
    }

    #[test]
    fn an_error_answer_is_not_an_outage() {
        let breaker = Breaker::new(settings(60_000));
        for _ in 0..10 {
            let admission = breaker.admit().unwrap();
            breaker.record::<()>(admission, &Err(Error::new(ErrorKind::Backend, "WRONGTYPE")));
        }
        assert_eq!(breaker.admit().unwrap(), Admission::Closed);
    }

    #[test]
    fn a_success_resets_the_count() {
        let breaker = Breaker::new(settings(60_000));
        for _ in 0..2 {
            breaker.record(Admission::Closed, &down());
        }
        breaker.record(Admission::Closed, &Ok(()));
        for _ in 0..2 {
            breaker.record(Admission::Closed, &down());
        }
        assert_eq!(breaker.admit().unwrap(), Admission::Closed);
    }

    #[test]
    fn one_probe_after_the_backoff_then_closes_on_success() {
        let breaker = Breaker::new(settings(1));
        for _ in 0..3 {
            breaker.record(Admission::Closed, &down());
        }
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(breaker.admit().unwrap(), Admission::Probe);
        assert!(breaker.admit().is_err(), "only one probe at a time");
        breaker.record(Admission::Probe, &Ok(()));
        assert_eq!(breaker.admit().unwrap(), Admission::Closed);
    }

    #[test]
    fn a_failed_probe_doubles_the_backoff_up_to_the_cap() {
        let breaker = Breaker::new(settings(1));
        for _ in 0..3 {
            breaker.record(Admission::Closed, &down());
        }
        for expected in [2, 4, 4] {
            std::thread::sleep(Duration::from_millis(10));
            assert_eq!(breaker.admit().unwrap(), Admission::Probe);
            breaker.record(Admission::Probe, &down());
            assert_eq!(
                *breaker.backoff.lock().unwrap(),
                Duration::from_millis(expected)
            );
        }
    }

    #[test]
    fn a_zero_threshold_never_opens() {
        let breaker = Breaker::new(BreakerSettings::disabled());
        for _ in 0..100 {
            breaker.record(Admission::Closed, &down());
        }
        assert_eq!(breaker.admit().unwrap(), Admission::Closed);
    }
}
