//! The bounded pool of blocking connections of one server.
//!
//! At most `max` connections are open at once, idle or in use (those being opened
//! included), and at most `idle` of them are kept between calls. A caller that finds every
//! connection in use waits for one to come back, for a bounded time, and then gets nothing
//! (the backend turns that into a time-out error, which a cached call treats as a miss).
//!
//! Taking and returning a connection costs one uncontended lock each; the condition
//! variable is only signalled when a caller waits.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use redis::{Connection, RedisResult};

/// The blocking connections of one server. See the module docs.
pub(crate) struct Pool {
    state: Mutex<State>,
    returned: Condvar,
    max: usize,
    idle: usize,
}

struct State {
    idle: Vec<Connection>,
    /// Connections open or being opened: idle ones and those held by a [`Slot`].
    open: usize,
    /// Callers waiting for a connection to come back.
    waiting: usize,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("max_connections", &self.max)
            .field("idle", &self.idle)
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// A pool of at most `max` connections, keeping at most `idle` (capped at `max`) idle.
    pub(crate) fn new(max: usize, idle: usize) -> Self {
        let idle = idle.min(max);
        Self {
            state: Mutex::new(State {
                idle: Vec::with_capacity(idle),
                open: 0,
                waiting: 0,
            }),
            returned: Condvar::new(),
            max,
            idle,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// An idle connection, or the right to open one; `None` when all `max` stay in use for
    /// `wait`.
    pub(crate) fn checkout(&self, wait: Duration) -> Option<Slot<'_>> {
        let mut state = self.lock();
        let mut since = None;
        loop {
            let waited = since;
            if let Some(conn) = state.idle.pop() {
                return Some(Slot {
                    pool: self,
                    conn: Some(conn),
                    waited,
                });
            }
            if state.open < self.max {
                state.open += 1;
                return Some(Slot {
                    pool: self,
                    conn: None,
                    waited,
                });
            }
            let started = *since.get_or_insert_with(Instant::now);
            let left = wait
                .checked_sub(started.elapsed())
                .filter(|left| !left.is_zero())?;
            state.waiting += 1;
            state = self
                .returned
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            state.waiting -= 1;
        }
    }
}

impl Pool {
    /// Closes every idle connection (they are likely dead: Redis became unreachable).
    pub(crate) fn close_idle(&self) {
        let idle = {
            let mut state = self.lock();
            let idle = std::mem::take(&mut state.idle);
            state.open -= idle.len();
            idle
        };
        drop(idle);
    }
}

/// A place in the pool, held for one exchange: a connection, or the right to open one.
/// Dropping it returns the connection (kept idle, or closed when enough are idle and nobody
/// waits) or frees the place, whatever happened meanwhile (an error, a panic).
pub(crate) struct Slot<'a> {
    pool: &'a Pool,
    conn: Option<Connection>,
    waited: Option<Instant>,
}

impl Slot<'_> {
    /// When the caller began to wait for this slot, if it had to (all were in use).
    pub(crate) fn waited_since(&self) -> Option<Instant> {
        self.waited
    }

    /// The slot's connection, opened with `open` if it has none yet.
    pub(crate) fn connection(
        &mut self,
        open: impl FnOnce() -> RedisResult<Connection>,
    ) -> RedisResult<&mut Connection> {
        match &mut self.conn {
            Some(conn) => Ok(conn),
            empty => Ok(empty.insert(open()?)),
        }
    }

    /// Closes the connection instead of returning it (it can no longer be trusted).
    pub(crate) fn discard(&mut self) {
        self.conn = None;
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let conn = self.conn.take();
        let mut state = self.pool.lock();
        // With callers waiting, the connection goes to one of them rather than being closed
        // and opened again.
        let keep = state.idle.len() < self.pool.idle || state.waiting > 0;
        let closing = match conn {
            Some(conn) if keep => {
                state.idle.push(conn);
                None
            }
            other => {
                state.open -= 1;
                other
            }
        };
        let wake = state.waiting > 0;
        drop(state);
        drop(closing);
        if wake {
            self.pool.returned.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    // Slots that never open a connection exercise the bookkeeping without a server.

    #[test]
    fn at_most_max_places_are_handed_out() {
        let pool = Pool::new(2, 8);
        let a = pool.checkout(Duration::ZERO).unwrap();
        let _b = pool.checkout(Duration::ZERO).unwrap();
        assert!(a.waited_since().is_none());
        assert!(pool.checkout(Duration::from_millis(10)).is_none());
        drop(a);
        assert!(pool.checkout(Duration::ZERO).is_some());
    }

    #[test]
    fn closing_the_idle_connections_frees_their_places() {
        let pool = Pool::new(1, 1);
        pool.close_idle();
        assert_eq!(pool.lock().open, 0);
        assert!(pool.checkout(Duration::ZERO).is_some());
    }

    #[test]
    fn a_failed_open_frees_its_place() {
        let pool = Pool::new(1, 1);
        let mut slot = pool.checkout(Duration::ZERO).unwrap();
        let refused = slot
            .connection(|| Err(std::io::Error::from(std::io::ErrorKind::ConnectionRefused).into()));
        assert!(refused.is_err());
        drop(slot);
        assert!(pool.checkout(Duration::ZERO).is_some());
    }

    #[test]
    fn a_waiting_caller_gets_the_place_given_back() {
        let pool = Arc::new(Pool::new(1, 1));
        let held = pool.checkout(Duration::ZERO).unwrap();
        let waiter = {
            let pool = pool.clone();
            std::thread::spawn(move || {
                let slot = pool.checkout(Duration::from_secs(10)).unwrap();
                slot.waited_since().is_some()
            })
        };
        while pool.lock().waiting == 0 {
            std::thread::yield_now();
        }
        drop(held);
        assert!(waiter.join().unwrap());
        assert_eq!(pool.lock().open, 0);
    }
}
