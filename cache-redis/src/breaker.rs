//! The circuit breaker shared by the async and the blocking halves.
//!
//! It counts consecutive failures to reach Redis (connection errors and time-outs; an error
//! *answer* such as `WRONGTYPE` proves the server is up and counts as a success). After
//! [`BreakerSettings::threshold`] of them in a row the circuit *opens*: calls fail at once
//! with a connection error, without touching the network.
//!
//! Callers never probe. While the circuit is open, a background thread (at most one per
//! server) opens a fresh connection and sends `PING` every
//! [`BreakerSettings::probe_interval`], and closes the circuit as soon as Redis answers. So
//! a caller never pays a time-out to find out whether Redis is back, a cancelled call cannot
//! leave a probe in flight, and hits resume within about one interval of Redis accepting
//! connections again, however long the outage was.
//!
//! The prober is a plain [`std::thread`], so it works for sync callers and without a tokio
//! runtime. It holds only a [`Weak`] reference to the breaker, so dropping the backend ends
//! it, and "a prober is running" is owned by a guard whose `Drop` clears it, so a prober that
//! ends or panics never leaves the breaker without one: the next fail-fast call starts
//! another. If no thread can be spawned, a later fail-fast call tries again (at most once
//! per interval).
//!
//! The closed state, the one every healthy call sees, costs one relaxed atomic load before the
//! call and one after.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use cache_core::{Error, ErrorKind, Result};

/// When the circuit breaker opens and how often it checks whether Redis is back.
///
/// ```
/// use std::time::Duration;
/// use cache_redis::BreakerSettings;
///
/// let defaults = BreakerSettings::default();
/// assert_eq!(defaults.threshold, 3);
/// assert_eq!(defaults.probe_interval, Duration::from_millis(200));
///
/// let eager = BreakerSettings::new(1, Duration::from_millis(50));
/// assert_eq!(eager.threshold, 1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct BreakerSettings {
    /// Consecutive failures that open the circuit (default 3). Zero disables the breaker.
    pub threshold: u32,
    /// While the circuit is open, the pause between two background probes (a fresh
    /// connection and a `PING`, each bounded by the backend's time-outs); default 200 ms.
    pub probe_interval: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            threshold: 3,
            probe_interval: Duration::from_millis(200),
        }
    }
}

impl BreakerSettings {
    /// Settings with the given threshold and probe interval.
    pub fn new(threshold: u32, probe_interval: Duration) -> Self {
        Self {
            threshold,
            probe_interval,
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

/// How the prober checks the server: a fresh connection and a `PING`.
pub(crate) type Probe = Box<dyn Fn() -> Result<()> + Send + Sync>;

/// The breaker of one server. Lock-free; the prober thread shares its state.
pub(crate) struct Breaker {
    shared: Arc<Shared>,
}

struct Shared {
    settings: BreakerSettings,
    /// Consecutive failures; at or above the threshold the circuit is open.
    failures: AtomicU32,
    /// A prober thread is running (owned by its [`Running`] guard).
    probing: AtomicBool,
    /// After a failed spawn, no new attempt before this time (nanoseconds since `epoch`).
    respawn_at: AtomicU64,
    epoch: Instant,
    probe: Probe,
}

impl std::fmt::Debug for Breaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Breaker")
            .field("settings", &self.shared.settings)
            .field("open", &self.is_open_now())
            .finish_non_exhaustive()
    }
}

impl Breaker {
    /// A closed breaker whose prober checks the server with `probe`.
    pub(crate) fn new(settings: BreakerSettings, probe: Probe) -> Self {
        Self {
            shared: Arc::new(Shared {
                settings,
                failures: AtomicU32::new(0),
                probing: AtomicBool::new(false),
                respawn_at: AtomicU64::new(0),
                epoch: Instant::now(),
                probe,
            }),
        }
    }

    /// True while calls fail fast.
    pub(crate) fn is_open_now(&self) -> bool {
        self.shared.is_open_now()
    }

    /// Lets a call through, or fails it fast (with a connection error) while the circuit is
    /// open.
    #[inline]
    pub(crate) fn admit(&self) -> Result<()> {
        if self.shared.is_open_now() {
            return Err(self.fail_fast());
        }
        Ok(())
    }

    #[cold]
    fn fail_fast(&self) -> Error {
        // Normally the prober runs already; this restarts one that ended or never started.
        start_prober(&self.shared);
        Error::new(
            ErrorKind::Connection,
            "Redis circuit breaker is open after repeated failures; failing fast until a \
             background probe reaches Redis",
        )
    }

    /// Records the outcome of an admitted call: an outage counts towards opening, anything
    /// else (an answer, even an error answer) closes the circuit.
    #[inline]
    pub(crate) fn record<T>(&self, result: &Result<T>) {
        if matches!(result, Err(e) if is_outage(e)) {
            self.fail();
        } else if self.shared.failures.load(Ordering::Relaxed) != 0 {
            self.shared.close();
        }
    }

    #[cold]
    fn fail(&self) {
        let shared = &self.shared;
        let previous = shared
            .failures
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |f| {
                Some(f.saturating_add(1))
            })
            .unwrap_or_else(|f| f);
        let threshold = shared.settings.threshold;
        if threshold != 0 && previous.saturating_add(1) == threshold {
            tracing::warn!(
                target: "cache_redis",
                failures = threshold,
                probe_interval_ms = shared.settings.probe_interval.as_millis() as u64,
                "circuit opened: Redis calls fail fast until a background probe reaches Redis"
            );
            start_prober(shared);
        }
    }
}

impl Shared {
    fn is_open_now(&self) -> bool {
        let threshold = self.settings.threshold;
        threshold != 0 && self.failures.load(Ordering::Relaxed) >= threshold
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    #[cold]
    fn close(&self) {
        let was = self.failures.swap(0, Ordering::AcqRel);
        let threshold = self.settings.threshold;
        if threshold != 0 && was >= threshold {
            tracing::info!(target: "cache_redis", "circuit closed: Redis answers again");
        }
    }
}

/// Owns "a prober is running": dropped when the prober thread returns or panics (or with
/// the thread's closure when it could not be spawned), it clears the mark.
struct Running(Weak<Shared>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(shared) = self.0.upgrade() {
            shared.probing.store(false, Ordering::Release);
        }
    }
}

/// Starts the prober thread unless one runs (or a spawn failed less than an interval ago).
#[cold]
fn start_prober(shared: &Arc<Shared>) {
    if shared.probing.load(Ordering::Relaxed)
        || shared.now() < shared.respawn_at.load(Ordering::Relaxed)
        || shared
            .probing
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
    {
        return;
    }
    let running = Running(Arc::downgrade(shared));
    // The prober logs where the call that started it would (a scoped subscriber included).
    let dispatch = tracing::dispatcher::get_default(Clone::clone);
    let spawned = std::thread::Builder::new()
        .name("cache-redis-probe".to_owned())
        .spawn(move || {
            tracing::dispatcher::with_default(&dispatch, || probe_until_closed(&running));
        });
    if let Err(error) = spawned {
        // The closure, and the guard in it, are gone: the mark is clear again.
        let interval = u64::try_from(shared.settings.probe_interval.as_nanos()).unwrap_or(0);
        shared
            .respawn_at
            .store(shared.now().saturating_add(interval), Ordering::Relaxed);
        tracing::warn!(target: "cache_redis", %error, "cannot start the circuit breaker's prober; a later call retries");
    }
}

/// The prober's loop: every interval, while the breaker lives and its circuit is open, one
/// probe; the first that reaches Redis closes the circuit.
fn probe_until_closed(running: &Running) {
    loop {
        let Some(interval) = running.0.upgrade().map(|s| s.settings.probe_interval) else {
            return;
        };
        std::thread::sleep(interval);
        let Some(shared) = running.0.upgrade() else {
            return;
        };
        if !shared.is_open_now() {
            return;
        }
        match (shared.probe)() {
            Err(error) if is_outage(&error) => {
                tracing::debug!(target: "cache_redis", error = %format_args!("{error:#}"), "probe failed: Redis still unreachable");
            }
            _ => {
                shared.close();
                return;
            }
        }
    }
}

/// Errors that mean Redis is unreachable, as opposed to an answer that is an error.
fn is_outage(error: &Error) -> bool {
    matches!(error.kind(), ErrorKind::Connection | ErrorKind::Timeout)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    fn down() -> Result<()> {
        Err(Error::new(ErrorKind::Connection, "down"))
    }

    /// A fake server for the prober: up or down, counting probes.
    #[derive(Default)]
    struct Fake {
        up: AtomicBool,
        probes: AtomicUsize,
    }

    impl Fake {
        fn breaker(self: &Arc<Self>, interval_ms: u64) -> Breaker {
            let fake = self.clone();
            let probe: Probe = Box::new(move || {
                fake.probes.fetch_add(1, Ordering::SeqCst);
                if fake.up.load(Ordering::SeqCst) {
                    Ok(())
                } else {
                    down()
                }
            });
            Breaker::new(
                BreakerSettings::new(3, Duration::from_millis(interval_ms)),
                probe,
            )
        }
    }

    fn open(breaker: &Breaker) {
        for _ in 0..3 {
            breaker.admit().unwrap();
            breaker.record(&down());
        }
        assert!(breaker.is_open_now());
    }

    /// Waits up to five seconds for `done`.
    fn eventually(done: impl Fn() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if done() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        false
    }

    #[test]
    fn opens_after_the_threshold_and_fails_fast_without_probing_in_the_caller() {
        let fake = Arc::new(Fake::default());
        let breaker = fake.breaker(60_000);
        open(&breaker);
        for _ in 0..1000 {
            let err = breaker.admit().unwrap_err();
            assert!(err.is_connection());
        }
        assert_eq!(fake.probes.load(Ordering::SeqCst), 0, "callers never probe");
        assert!(
            breaker.shared.probing.load(Ordering::SeqCst),
            "a prober waits"
        );
    }

    #[test]
    fn an_error_answer_is_not_an_outage() {
        let breaker = Arc::new(Fake::default()).breaker(60_000);
        for _ in 0..10 {
            breaker.admit().unwrap();
            breaker.record::<()>(&Err(Error::new(ErrorKind::Backend, "WRONGTYPE")));
        }
        assert!(breaker.admit().is_ok());
    }

    #[test]
    fn a_success_resets_the_count() {
        let breaker = Arc::new(Fake::default()).breaker(60_000);
        for _ in 0..2 {
            breaker.record(&down());
        }
        breaker.record(&Ok(()));
        for _ in 0..2 {
            breaker.record(&down());
        }
        assert!(breaker.admit().is_ok());
    }

    #[test]
    fn the_prober_closes_the_circuit_once_the_server_answers() {
        let fake = Arc::new(Fake::default());
        let breaker = fake.breaker(2);
        open(&breaker);
        assert!(eventually(|| fake.probes.load(Ordering::SeqCst) >= 3));
        assert!(breaker.is_open_now(), "failed probes keep it open");
        fake.up.store(true, Ordering::SeqCst);
        assert!(eventually(|| !breaker.is_open_now()), "a probe closed it");
        assert!(eventually(|| !breaker
            .shared
            .probing
            .load(Ordering::SeqCst)));
        let probes = fake.probes.load(Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(
            fake.probes.load(Ordering::SeqCst),
            probes,
            "the prober ended"
        );
        breaker.admit().unwrap();
        // It opens again, and a new prober closes it again.
        fake.up.store(false, Ordering::SeqCst);
        open(&breaker);
        fake.up.store(true, Ordering::SeqCst);
        assert!(eventually(|| !breaker.is_open_now()));
    }

    #[test]
    fn at_most_one_prober_runs() {
        let in_flight = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let probes = Arc::new(AtomicUsize::new(0));
        let (inside, peak, count) = (in_flight.clone(), most.clone(), probes.clone());
        let probe: Probe = Box::new(move || {
            let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(1));
            inside.fetch_sub(1, Ordering::SeqCst);
            count.fetch_add(1, Ordering::SeqCst);
            down()
        });
        let breaker = Arc::new(Breaker::new(
            BreakerSettings::new(3, Duration::from_millis(1)),
            probe,
        ));
        open(&breaker);
        let callers: Vec<_> = (0..4)
            .map(|_| {
                let (breaker, probes) = (breaker.clone(), probes.clone());
                std::thread::spawn(move || {
                    // Fail-fast calls (each one tries to start a prober) while 20 probes run.
                    let deadline = Instant::now() + Duration::from_secs(5);
                    while probes.load(Ordering::SeqCst) < 20 && Instant::now() < deadline {
                        assert!(breaker.admit().is_err());
                        breaker.record(&down());
                    }
                })
            })
            .collect();
        for caller in callers {
            caller.join().unwrap();
        }
        assert!(probes.load(Ordering::SeqCst) >= 20);
        assert_eq!(most.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_panicking_prober_is_replaced_by_the_next_fail_fast_call() {
        let attempts = Arc::new(AtomicUsize::new(0));
        let counted = attempts.clone();
        let probe: Probe = Box::new(move || {
            if counted.fetch_add(1, Ordering::SeqCst) == 0 {
                panic!("the first probe panics");
            }
            Ok(())
        });
        let breaker = Breaker::new(BreakerSettings::new(3, Duration::from_millis(1)), probe);
        open(&breaker);
        assert!(eventually(|| attempts.load(Ordering::SeqCst) == 1));
        assert!(eventually(|| !breaker
            .shared
            .probing
            .load(Ordering::SeqCst)));
        assert!(breaker.is_open_now());
        assert!(
            breaker.admit().is_err(),
            "fails fast and starts a new prober"
        );
        assert!(eventually(|| !breaker.is_open_now()));
    }

    #[test]
    fn dropping_the_breaker_ends_its_prober() {
        let fake = Arc::new(Fake::default());
        let breaker = fake.breaker(1);
        open(&breaker);
        assert!(eventually(|| fake.probes.load(Ordering::SeqCst) >= 2));
        drop(breaker);
        // The probe closure (holding a clone of `fake`) is dropped with the breaker's state,
        // once the thread lets go of it.
        assert!(eventually(|| Arc::strong_count(&fake) == 1));
        let probes = fake.probes.load(Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(fake.probes.load(Ordering::SeqCst), probes);
    }

    #[test]
    fn a_zero_threshold_never_opens() {
        let breaker = Breaker::new(BreakerSettings::disabled(), Box::new(down));
        for _ in 0..100 {
            breaker.record(&down());
        }
        assert!(breaker.admit().is_ok());
        assert!(!breaker.shared.probing.load(Ordering::SeqCst));
    }
}
