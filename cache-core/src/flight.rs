//! Single flight inside one process: when many callers miss the same key at once, one runs
//! the function and the others wait for its result.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use event_listener::{Event, EventListener, Listener};

/// How a flight ended, as its followers see it.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    /// The leader stored this sealed value; followers decode it.
    Stored(Bytes),
    /// The leader's result is not cached (an `Err`, a `None`, or the store failed before
    /// sealing); followers run the function themselves.
    NotStored,
    /// The leader was cancelled or panicked; followers elect a new leader.
    Abandoned,
}

#[derive(Default)]
struct Flight {
    outcome: OnceLock<Outcome>,
    done: Event,
}

type InProgress = Arc<Mutex<HashMap<Box<str>, Arc<Flight>>>>;

/// The flights in progress, by key. Leaders hold the map by `Arc`, so a leader may outlive
/// the call that started it (a refresh moved to a background task).
#[derive(Default)]
pub(crate) struct Flights {
    in_progress: InProgress,
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
}

impl Flights {
    /// Joins the flight for `key`, starting one if none is in progress.
    pub(crate) fn join(&self, key: &str) -> Role {
        let mut in_progress = self.in_progress.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(flight) = in_progress.get(key) {
            return Role::Follower(Follower(flight.clone()));
        }
        let flight = Arc::new(Flight::default());
        in_progress.insert(key.into(), flight.clone());
        Role::Leader(Leader {
            in_progress: self.in_progress.clone(),
            key: key.into(),
            flight,
            finished: false,
        })
    }
}

impl Flights {
    /// Leads a new flight for `key`, or `None` if one is in progress (never waits).
    pub(crate) fn try_lead(&self, key: &str) -> Option<Leader> {
        match self.join(key) {
            Role::Leader(leader) => Some(leader),
            Role::Follower(_) => None,
        }
    }
}

/// The caller computing the value. Dropping it unfinished (cancellation, panic) releases the
/// followers with [`Outcome::Abandoned`].
pub(crate) struct Leader {
    in_progress: InProgress,
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
            let mut in_progress = self.in_progress.lock().unwrap_or_else(|e| e.into_inner());
            if in_progress
                .get(&self.key)
                .is_some_and(|f| Arc::ptr_eq(f, &self.flight))
            {
                in_progress.remove(&self.key);
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

    /// Waits, blocking the thread, for the leader's outcome.
    pub(crate) fn wait_blocking(&self) -> Outcome {
        loop {
            match self.outcome_or_listener() {
                Ok(outcome) => return outcome,
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
        let Role::Leader(leader) = flights.join("k") else {
            panic!("first caller must lead")
        };
        let Role::Follower(follower) = flights.join("k") else {
            panic!("second caller must follow")
        };
        std::thread::scope(|s| {
            let waiter = s.spawn(|| follower.wait_blocking());
            leader.finish(Outcome::Stored(Bytes::from_static(b"v")));
            assert!(matches!(waiter.join().unwrap(), Outcome::Stored(v) if v == "v"));
        });
        assert!(
            matches!(flights.join("k"), Role::Leader(_)),
            "a finished flight is gone"
        );
    }

    #[test]
    fn a_dropped_leader_abandons_its_flight() {
        let flights = Flights::default();
        let leader = flights.join("k");
        let Role::Follower(follower) = flights.join("k") else {
            panic!("second caller must follow")
        };
        drop(leader);
        assert!(matches!(follower.wait_blocking(), Outcome::Abandoned));
    }
}
