//! The memory backend's change channel: one in-process channel per namespace, shared by
//! every cache built on the same [`MemoryBackend`](super::MemoryBackend), with fault
//! injection for tests.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::bus::{Bus, Subscription};
use crate::{Error, ErrorKind, Result};

/// The most messages waiting for one subscriber; one more cuts its subscription (what
/// Redis does to a subscriber past its output buffer limit).
const INBOX: usize = 4096;

/// The most messages held while delivery is paused; one more cuts every subscription.
const HELD: usize = 4096;

/// The longest a publish waits while publishes are stalled (then it fails, like a
/// time-out).
const STALL_LIMIT: Duration = Duration::from_secs(10);

/// An in-process channel: what every subscriber receives, in publishing order.
///
/// Not public API: the fault injection methods are for tests.
///
/// ```
/// use cache_core::backend::memory::MemoryBackend;
/// use cache_core::bus::Bus;
/// use std::time::Duration;
///
/// let backend = MemoryBackend::new();
/// let bus = backend.bus_for("cache");
/// let mut subscription = bus.subscribe()?;
/// bus.publish(b"hello")?;
/// assert_eq!(subscription.next(Duration::ZERO)?.as_deref(), Some(&b"hello"[..]));
/// bus.cut_subscriptions();
/// assert!(subscription.next(Duration::ZERO).is_err());
/// # Ok::<(), cache_core::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct MemoryBus {
    state: Mutex<State>,
    unstalled: Condvar,
}

#[derive(Debug, Default)]
struct State {
    inboxes: Vec<Arc<Inbox>>,
    held: VecDeque<Vec<u8>>,
    drop_next: u64,
    fail_next: u64,
    paused: bool,
    stalled: bool,
    down: bool,
}

#[derive(Debug, Default)]
struct Inbox {
    state: Mutex<InboxState>,
    ready: Condvar,
}

#[derive(Debug, Default)]
struct InboxState {
    messages: VecDeque<Vec<u8>>,
    cut: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn down() -> Error {
    Error::new(
        ErrorKind::Connection,
        "the in-process change channel is down (fault injected)",
    )
}

impl Inbox {
    /// Queues `message`; false if this subscription is gone (cut, dropped or overflowing).
    fn deliver(&self, message: &[u8]) -> bool {
        let mut state = lock(&self.state);
        if state.cut {
            return false;
        }
        if state.messages.len() >= INBOX {
            state.cut = true;
            state.messages.clear();
            self.ready.notify_all();
            return false;
        }
        state.messages.push_back(message.to_vec());
        self.ready.notify_all();
        true
    }

    fn cut(&self) {
        let mut state = lock(&self.state);
        state.cut = true;
        state.messages.clear();
        self.ready.notify_all();
    }
}

impl State {
    fn deliver(&mut self, message: &[u8]) {
        self.inboxes.retain(|inbox| inbox.deliver(message));
    }

    fn cut_all(&mut self) {
        for inbox in self.inboxes.drain(..) {
            inbox.cut();
        }
    }
}

impl MemoryBus {
    /// The next `n` published messages reach no subscriber (their publish succeeds: lost in
    /// transit, as pub/sub may lose them).
    pub fn drop_next(&self, n: u64) {
        lock(&self.state).drop_next += n;
    }

    /// The next `n` publishes fail.
    pub fn fail_next_publishes(&self, n: u64) {
        lock(&self.state).fail_next += n;
    }

    /// Every current subscription is lost: its `next` returns `Err` (what `CLIENT KILL TYPE
    /// pubsub` does to a Redis subscriber).
    pub fn cut_subscriptions(&self) {
        lock(&self.state).cut_all();
    }

    /// Holds every published message (publishes succeed) until [`MemoryBus::resume`]; more
    /// than 4,096 held cut every subscription.
    pub fn pause(&self) {
        lock(&self.state).paused = true;
    }

    /// Delivers the held messages, in order, and delivers again as they are published.
    pub fn resume(&self) {
        let mut state = lock(&self.state);
        state.paused = false;
        while let Some(message) = state.held.pop_front() {
            state.deliver(&message);
        }
    }

    /// While `stalled`, a publish blocks (for at most 10 s, then fails), like one sent to a
    /// server that stopped answering.
    pub fn stall_publishes(&self, stalled: bool) {
        lock(&self.state).stalled = stalled;
        self.unstalled.notify_all();
    }

    /// While `down`, publish and subscribe fail; going down cuts every subscription.
    pub fn set_down(&self, down: bool) {
        let mut state = lock(&self.state);
        state.down = down;
        if down {
            state.cut_all();
        }
    }

    /// How many subscriptions are up.
    pub fn subscribers(&self) -> usize {
        let mut state = lock(&self.state);
        state.inboxes.retain(|inbox| !lock(&inbox.state).cut);
        state.inboxes.len()
    }
}

impl Bus for MemoryBus {
    fn publish(&self, message: &[u8]) -> Result<()> {
        let mut state = lock(&self.state);
        let until = Instant::now() + STALL_LIMIT;
        while state.stalled {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    "publish stalled (fault injected)",
                ));
            }
            state = self
                .unstalled
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        if state.down {
            return Err(down());
        }
        if state.fail_next > 0 {
            state.fail_next -= 1;
            return Err(Error::new(
                ErrorKind::Connection,
                "publish failed (fault injected)",
            ));
        }
        if state.drop_next > 0 {
            state.drop_next -= 1;
        } else if state.paused {
            if state.held.len() >= HELD {
                state.held.clear();
                state.cut_all();
            } else {
                state.held.push_back(message.to_vec());
            }
        } else {
            state.deliver(message);
        }
        Ok(())
    }

    fn subscribe(&self) -> Result<Box<dyn Subscription>> {
        let mut state = lock(&self.state);
        if state.down {
            return Err(down());
        }
        let inbox = Arc::new(Inbox::default());
        state.inboxes.push(Arc::clone(&inbox));
        Ok(Box::new(MemorySubscription { inbox }))
    }
}

/// A subscription to a [`MemoryBus`]; dropping it unsubscribes.
struct MemorySubscription {
    inbox: Arc<Inbox>,
}

impl Subscription for MemorySubscription {
    fn next(&mut self, timeout: Duration) -> Result<Option<Vec<u8>>> {
        let state = lock(&self.inbox.state);
        let (mut state, _) = self
            .inbox
            .ready
            .wait_timeout_while(state, timeout, |state| {
                state.messages.is_empty() && !state.cut
            })
            .unwrap_or_else(PoisonError::into_inner);
        if state.cut {
            return Err(Error::new(
                ErrorKind::Connection,
                "subscription lost (cut, or too many messages waiting)",
            ));
        }
        Ok(state.messages.pop_front())
    }
}

impl Drop for MemorySubscription {
    fn drop(&mut self) {
        self.inbox.cut();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Duration = Duration::ZERO;

    #[test]
    fn every_subscriber_receives_every_message_in_order() {
        let bus = MemoryBus::default();
        let mut a = bus.subscribe().unwrap();
        let mut b = bus.subscribe().unwrap();
        for m in [b"1", b"2"] {
            bus.publish(m).unwrap();
        }
        for sub in [&mut a, &mut b] {
            assert_eq!(sub.next(NOW).unwrap().unwrap(), b"1");
            assert_eq!(sub.next(NOW).unwrap().unwrap(), b"2");
            assert_eq!(sub.next(NOW).unwrap(), None);
        }
    }

    #[test]
    fn dropped_messages_reach_no_one() {
        let bus = MemoryBus::default();
        let mut sub = bus.subscribe().unwrap();
        bus.drop_next(1);
        bus.publish(b"lost").unwrap();
        bus.publish(b"kept").unwrap();
        assert_eq!(sub.next(NOW).unwrap().unwrap(), b"kept");
    }

    #[test]
    fn paused_messages_arrive_on_resume() {
        let bus = MemoryBus::default();
        let mut sub = bus.subscribe().unwrap();
        bus.pause();
        bus.publish(b"held").unwrap();
        assert_eq!(sub.next(Duration::from_millis(10)).unwrap(), None);
        bus.resume();
        assert_eq!(sub.next(NOW).unwrap().unwrap(), b"held");
    }

    #[test]
    fn down_fails_everything_and_cuts_subscribers() {
        let bus = MemoryBus::default();
        let mut sub = bus.subscribe().unwrap();
        bus.set_down(true);
        assert!(sub.next(NOW).is_err());
        assert!(bus.publish(b"x").is_err());
        assert!(bus.subscribe().is_err());
        bus.set_down(false);
        assert!(bus.subscribe().is_ok());
        bus.fail_next_publishes(1);
        assert!(bus.publish(b"x").is_err());
        assert!(bus.publish(b"x").is_ok());
    }

    #[test]
    fn a_subscriber_too_far_behind_is_cut_and_dropped_ones_unsubscribe() {
        let bus = MemoryBus::default();
        let mut slow = bus.subscribe().unwrap();
        drop(bus.subscribe().unwrap());
        for _ in 0..=INBOX {
            bus.publish(b"m").unwrap();
        }
        assert!(slow.next(NOW).is_err());
        assert_eq!(bus.subscribers(), 0);
    }

    #[test]
    fn a_stalled_publish_waits_until_released() {
        let bus = Arc::new(MemoryBus::default());
        let mut sub = bus.subscribe().unwrap();
        bus.stall_publishes(true);
        let publisher = {
            let bus = Arc::clone(&bus);
            std::thread::spawn(move || bus.publish(b"late"))
        };
        assert_eq!(sub.next(Duration::from_millis(20)).unwrap(), None);
        bus.stall_publishes(false);
        publisher.join().unwrap().unwrap();
        assert_eq!(sub.next(Duration::from_secs(5)).unwrap().unwrap(), b"late");
    }
}
