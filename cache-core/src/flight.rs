//! Single flight inside one process: when many callers miss the same key at once, one runs
//! the function and the others wait for its result.

use std::any::Any;
use std::collections::HashMap;
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use event_listener::{Event, EventListener, Listener};

/// A leader's unstored result, shared with its followers (an `Err` whose type is `Clone`;
/// see `call::Policy::share`).
pub(crate) type SharedResult = Arc<dyn Any + Send + Sync>;

/// How a flight ended, as its followers see it.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    /// The leader stored this sealed value; followers decode it.
    Stored(Bytes),
    /// The leader's result is not cached (an `Err`, a `None`, or the store failed before
    /// sealing). With the result shared, followers return it; without, they take over one
    /// at a time (the first to rejoin leads, the others follow it).
    NotStored(Option<SharedResult>),
    /// The leader was cancelled or panicked; followers elect a new leader.
    Abandoned,
}

#[derive(Default)]
struct Flight {
    outcome: OnceLock<Outcome>,
    done: Event,
    /// The leader is a sync caller, running on its own thread: a blocking follower may wait
    /// for it anywhere. An async leader may need the very thread a blocking follower would
    /// block (a current-thread runtime), so such a follower does not wait inside a runtime.
    blocking_leader: bool,
}

/// How long a flight that stored its value is remembered: longer than any read can take
/// (reads are bounded by the backend's time-outs), so a caller whose read began before the
/// store never computes again.
const REMEMBERED: Duration = Duration::from_secs(5);

#[derive(Default)]
struct State {
    in_progress: HashMap<Box<str>, Arc<Flight>>,
    /// The store number and time of recent flights that stored their value, by key;
    /// purged every [`REMEMBERED`].
    stored: HashMap<Box<str>, (u64, Instant)>,
    last_purge: Option<Instant>,
}

#[derive(Default)]
struct Inner {
    state: Mutex<State>,
    /// Counts flights that stored their value: a caller notes it before its read, so a
    /// later store is recognised without reading a clock on the hit path.
    stores: AtomicU64,
}

type Shared = Arc<Inner>;

/// The number of stores so far, noted by a caller before it reads (see [`Flights::join`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mark(NonZeroU64);

/// The flights in progress, by key. Leaders hold the map by `Arc`, so a leader may outlive
/// the call that started it (a refresh moved to a background task).
#[derive(Default)]
pub(crate) struct Flights {
    state: Shared,
}

impl std::fmt::Debug for Flights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Flights")
    }
}

/// What a caller that missed should do.
pub(crate) enum Role {
    /// Compute the value, then call [`Leader::finish`].
    Leader(Leader),
    /// Wait for the leader.
    Follower(Follower),
    /// A flight stored the value after this caller's read began: read again.
    Reread,
}

impl Flights {
    /// Notes the stores so far; take it before reading a key.
    #[inline]
    pub(crate) fn mark(&self) -> Mark {
        // Counted from 1, so an `Option<Mark>` takes no more room than a `Mark`.
        Mark(NonZeroU64::MIN.saturating_add(self.state.stores.load(Ordering::Acquire)))
    }

    /// Joins the flight for `key`, starting one if none is in progress, for a caller that
    /// took `mark` before its read of the key (`blocking`: a sync caller).
    pub(crate) fn join(&self, key: &str, mark: Mark, blocking: bool) -> Role {
        self.enter(key, Some(mark), blocking)
    }

    /// Leads a new flight for `key`, or `None` if one is in progress (never waits).
    pub(crate) fn try_lead(&self, key: &str, blocking: bool) -> Option<Leader> {
        match self.enter(key, None, blocking) {
            Role::Leader(leader) => Some(leader),
            Role::Follower(_) | Role::Reread => None,
        }
    }

    fn enter(&self, key: &str, mark: Option<Mark>, blocking: bool) -> Role {
        let mut state = self.state.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(flight) = state.in_progress.get(key) {
            return Role::Follower(Follower(flight.clone()));
        }
        if let (Some(Mark(before_read)), Some((store, _))) = (mark, state.stored.get(key))
            && *store >= before_read.get()
        {
            return Role::Reread;
        }
        let flight = Arc::new(Flight {
            blocking_leader: blocking,
            ..Flight::default()
        });
        state.in_progress.insert(key.into(), flight.clone());
        Role::Leader(Leader {
            state: self.state.clone(),
            key: key.into(),
            flight,
            finished: false,
        })
    }
}

/// The caller computing the value. Dropping it unfinished (cancellation, panic) releases the
/// followers with [`Outcome::Abandoned`].
pub(crate) struct Leader {
    state: Shared,
    key: Box<str>,
    flight: Arc<Flight>,
    finished: bool,
}

impl Leader {
    /// Publishes the outcome to every follower and ends the flight.
    pub(crate) fn finish(mut self, outcome: Outcome) {
        self.end(outcome);
    }

    fn end(&mut self, outcome: Outcome) {
        self.finished = true;
        {
            let mut state = self.state.state.lock().unwrap_or_else(|e| e.into_inner());
            if state
                .in_progress
                .get(&self.key)
                .is_some_and(|f| Arc::ptr_eq(f, &self.flight))
            {
                state.in_progress.remove(&self.key);
            }
            if matches!(outcome, Outcome::Stored(_)) {
                let store = self.state.stores.fetch_add(1, Ordering::AcqRel) + 1;
                state.remember_stored(&self.key, store);
            }
        }
        let _ = self.flight.outcome.set(outcome);
        self.flight.done.notify(usize::MAX);
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        if !self.finished {
            self.end(Outcome::Abandoned);
        }
    }
}

impl State {
    fn remember_stored(&mut self, key: &str, store: u64) {
        let now = Instant::now();
        if self
            .last_purge
            .is_none_or(|at| now.duration_since(at) >= REMEMBERED)
        {
            self.stored
                .retain(|_, (_, at)| now.duration_since(*at) < REMEMBERED);
            self.last_purge = Some(now);
        }
        self.stored.insert(key.into(), (store, now));
    }
}

/// A caller waiting for a leader.
pub(crate) struct Follower(Arc<Flight>);

impl Follower {
    /// The outcome if the flight ended, or a listener registered before a second look (so
    /// an end between the look and the registration is not missed).
    fn outcome_or_listener(&self) -> Result<Outcome, EventListener> {
        if let Some(outcome) = self.0.outcome.get() {
            return Ok(outcome.clone());
        }
        let listener = self.0.done.listen();
        match self.0.outcome.get() {
            Some(outcome) => Ok(outcome.clone()),
            None => Err(listener),
        }
    }

    /// Waits, blocking the thread, for the leader's outcome; `None`, at once, when blocking
    /// could stop the leader: its leader is async and this thread is inside a tokio runtime
    /// (on a current-thread runtime the leader's task needs this very thread). The caller
    /// then computes without waiting.
    pub(crate) fn wait_blocking(&self) -> Option<Outcome> {
        if !self.0.blocking_leader && tokio::runtime::Handle::try_current().is_ok() {
            return None;
        }
        loop {
            match self.outcome_or_listener() {
                Ok(outcome) => return Some(outcome),
                Err(listener) => listener.wait(),
            }
        }
    }

    /// Waits, yielding to the async runtime, for the leader's outcome.
    pub(crate) async fn wait(&self) -> Outcome {
        loop {
            match self.outcome_or_listener() {
                Ok(outcome) => return outcome,
                Err(listener) => listener.await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_second_caller_follows_until_the_leader_finishes() {
        let flights = Flights::default();
        let read_before_the_store = flights.mark();
        let Role::Leader(leader) = flights.join("k", flights.mark(), true) else {
            panic!("first caller must lead")
        };
        let Role::Follower(follower) = flights.join("k", flights.mark(), true) else {
            panic!("second caller must follow")
        };
        std::thread::scope(|s| {
            let waiter = s.spawn(|| follower.wait_blocking());
            leader.finish(Outcome::Stored(Bytes::from_static(b"v")));
            assert!(matches!(waiter.join().unwrap(), Some(Outcome::Stored(v)) if v == "v"));
        });
        assert!(
            matches!(flights.join("k", read_before_the_store, true), Role::Reread),
            "a caller whose read began before the store reads again instead of computing"
        );
        assert!(
            matches!(flights.join("k", flights.mark(), true), Role::Leader(_)),
            "a finished flight is gone"
        );
    }

    #[test]
    fn a_dropped_leader_abandons_its_flight() {
        let flights = Flights::default();
        let leader = flights.join("k", flights.mark(), true);
        let Role::Follower(follower) = flights.join("k", flights.mark(), true) else {
            panic!("second caller must follow")
        };
        drop(leader);
        assert!(matches!(follower.wait_blocking(), Some(Outcome::Abandoned)));
    }
}
