//! Callers waiting on another caller's lease, woken as soon as its value may be there
//! instead of only at their next poll.
//!
//! A caller whose leased miss finds the lease busy pauses before it looks again
//! ([`poll_delay`](crate::stampede::poll_delay): 5 ms doubling to 100 ms). It registers in
//! this process's [`Waiters`] under the entry's [`NearKey`] before each look, so a
//! [`Waiters::notify`] that comes while it looks or pauses ends the pause at once. This
//! process notifies when one of its calls stores a value under a lease (or gives its lease
//! up); the backplane notifies for the other processes' stores. Polling stays: a lost
//! notification costs at most the pause.
//!
//! The registry is process-wide, so caches of one process on the same backend wake each
//! other's waiters; keys are full backend keys (namespace included), and a wake-up for the
//! same key of another backend only brings a look forward. An entry lives while a caller
//! waits on its key (a [`Waiter`] guard, also dropped by a cancelled call), so the registry
//! holds at most one entry per waiting key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use event_listener::{Event, EventListener, Listener};

use crate::backplane::NearKey;

/// The lease waiters of this process, by key.
#[derive(Default)]
pub(crate) struct Waiters {
    keys: Mutex<HashMap<NearKey, Entry>>,
}

struct Entry {
    event: Arc<Event>,
    /// The [`Waiter`]s on this key.
    waiters: usize,
}

impl Waiters {
    /// The registry of this process.
    pub(crate) fn global() -> &'static Waiters {
        static WAITERS: OnceLock<Waiters> = OnceLock::new();
        WAITERS.get_or_init(Waiters::default)
    }

    /// Registers a caller waiting on `key`, until the guard is dropped.
    pub(crate) fn register(&'static self, key: NearKey) -> Waiter {
        let mut keys = self.lock();
        let entry = keys.entry(key).or_insert_with(|| Entry {
            event: Arc::new(Event::new()),
            waiters: 0,
        });
        entry.waiters += 1;
        Waiter {
            waiters: self,
            key,
            event: entry.event.clone(),
        }
    }

    /// The values of `keys` may be there now (stored, or their lease given up): wakes every
    /// caller that waits on one of them. Cheap when nobody waits.
    pub(crate) fn notify(&self, keys: &[NearKey]) {
        let keys_waited = self.lock();
        if keys_waited.is_empty() {
            return;
        }
        for key in keys {
            if let Some(entry) = keys_waited.get(key) {
                entry.event.notify(usize::MAX);
            }
        }
    }

    /// True if a caller waits on `key`.
    #[cfg(test)]
    pub(crate) fn waits_on(&self, key: NearKey) -> bool {
        self.lock().contains_key(&key)
    }

    /// How many keys have waiters.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<NearKey, Entry>> {
        // The map stays consistent whatever panicked while it was held.
        self.keys.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One caller registered as waiting on a key; dropping it unregisters it.
pub(crate) struct Waiter {
    waiters: &'static Waiters,
    key: NearKey,
    event: Arc<Event>,
}

impl Waiter {
    /// A pause of `time` that a notification for this key ends early. Take it before the
    /// look whose answer may make the caller pause, so a notification sent meanwhile is
    /// not missed.
    pub(crate) fn pause(&self, time: Duration) -> Pause {
        Pause {
            time,
            wake: self.event.listen(),
        }
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        let mut keys = self.waiters.lock();
        if let Some(entry) = keys.get_mut(&self.key) {
            entry.waiters -= 1;
            if entry.waiters == 0 {
                keys.remove(&self.key);
            }
        }
    }
}

/// A pause before the next look at a busy lease's key, ended early by a notification.
pub(crate) struct Pause {
    time: Duration,
    wake: EventListener,
}

impl Pause {
    /// Waits on this thread; true if a notification ended the pause.
    pub(crate) fn wait_blocking(self) -> bool {
        self.wake.wait_timeout(self.time).is_some()
    }

    /// Waits; true if a notification ended the pause.
    pub(crate) async fn wait(self) -> bool {
        tokio::time::timeout(self.time, self.wake).await.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    fn registry() -> &'static Waiters {
        Box::leak(Box::default())
    }

    #[test]
    fn a_notification_ends_a_pause_taken_before_it() {
        let waiters = registry();
        let waiter = waiters.register(7);
        let pause = waiter.pause(Duration::from_secs(60));
        waiters.notify(&[7]);
        let started = Instant::now();
        assert!(pause.wait_blocking(), "woken, not timed out");
        assert!(started.elapsed() < Duration::from_secs(30));
    }

    #[test]
    fn a_notification_for_another_key_does_not_end_the_pause() {
        let waiters = registry();
        let waiter = waiters.register(7);
        let pause = waiter.pause(Duration::from_millis(1));
        waiters.notify(&[8]);
        assert!(!pause.wait_blocking());
    }

    #[test]
    fn the_last_waiter_dropped_removes_its_key() {
        let waiters = registry();
        let first = waiters.register(7);
        let second = waiters.register(7);
        let other = waiters.register(9);
        assert_eq!(waiters.len(), 2);
        drop(first);
        assert_eq!(waiters.len(), 2, "one caller still waits on 7");
        drop(second);
        drop(other);
        assert_eq!(waiters.len(), 0, "no entry left behind");
    }

    #[tokio::test(start_paused = true)]
    async fn an_async_pause_is_ended_by_a_notification_without_the_clock_moving() {
        let waiters = registry();
        let waiter = waiters.register(7);
        let pause = waiter.pause(Duration::from_millis(100));
        let started = tokio::time::Instant::now();
        let waiting = tokio::spawn(pause.wait());
        tokio::task::yield_now().await;
        waiters.notify(&[7]);
        assert!(waiting.await.unwrap());
        assert_eq!(started.elapsed(), Duration::ZERO, "no pause elapsed");
    }
}
