//! Keeps the near caches of every instance coherent over a [`Bus`]: announces this
//! instance's changes and applies the other instances' ones, and says when near entries may
//! be served at all (in sync, no message lost, contact with the backend recent enough).
//!
//! # The protocol
//!
//! Every `Backplane` has a random 64-bit id and numbers its messages 1, 2, 3, ...
//! (`message` has the format). A message is a heartbeat, a list of changed keys, or "all
//! changed". Two threads per backplane:
//!
//! - **Publishing** (`publish`): `announce` puts a change in a bounded queue and returns
//!   (it never blocks; a full queue drops the change and makes the next message skip a
//!   number). The thread coalesces what is queued into one message (at most
//!   [`message::MAX_KEYS`] keys each), and sends a heartbeat when it sent nothing for
//!   `B/4`, `B` being the bound. A failed publish consumes its number too.
//! - **Receiving** (`receive`): subscribes; for another publisher's message, checks that
//!   its number is the last one plus 1 (otherwise, or for a publisher first heard after
//!   its number 1, it flushes); applies `Keys` (`Listener::changed`) and `All` (a flush).
//!   Its own messages are not applied, but each one that comes back proves that the
//!   channel delivers: the serving gate stays open until the message's sending time plus
//!   `B - M`, the margin `M` being `B/4`. A lost subscription flushes, closes the gate and
//!   subscribes again (back-off from 10 ms doubling to `B/2`); so does every new
//!   subscription (flush). A publisher not heard from for `B - M - B/16` is forgotten, with
//!   a flush. Bytes that are not a message of this version are not applied, are counted and
//!   logged once, and flush too: they may have carried a change (an instance of another
//!   version during a rolling upgrade).
//! - **The gate** (`gate`, [`Backplane::in_sync_at`]) is a deadline in an `AtomicU64`
//!   compared with a coarse monotonic clock read (about 12 ns on the build machine): it
//!   closes by itself when time passes, even if the receiving thread is stuck.
//!
//! # Why the bound holds
//!
//! The claim: a change acknowledged to its writer at time `t` is not served from any
//! instance's near tier after `t + B`. The assumption: a message takes less than `M = B/4`
//! from the moment a publishing thread takes it from its queue to the moment the receiving
//! threads have applied it (publish, the server, delivery, the coarse clock's resolution of
//! at most 10 ms included), and the writer calls `announce` as soon as its write returns.
//! Under it, case by case:
//!
//! - **Delivered.** The change is applied within `M` of being taken from the queue, which is
//!   at most one publish after `t`.
//! - **Gate.** An instance serves only while the clock is before `s + B - M`, `s` being the
//!   sending time of its latest own message that came back. The server delivers a channel's
//!   messages to a subscriber in the order it handled them, and the receiving thread
//!   applies them in that order; so when that message came back, every change whose
//!   message the server handled before it was applied, which is every change acknowledged
//!   before `s - M`. A change acknowledged at `t >= s - M` is protected by the gate closing
//!   at `s + B - M <= t + B`. This covers a **stuck receiving thread**, a **paused server**
//!   (`SIGSTOP` for longer than the bound: no own message comes back, the gate closes by
//!   time) and a subscription that dies without an error (own messages stop coming).
//! - **Lost message, failed publish, queue overflow.** The publisher's next message skips a
//!   number, the receiver flushes when it sees it. That next message is taken from the queue
//!   within `B/4` (heartbeats) of the lost one; if it does not arrive in time either, the
//!   silence rule below flushes. Either way the flush comes at most `M + (B - M - B/16) +
//!   B/16 = B` after the message before the lost one was taken from the queue, which was
//!   before `t` (the change was not in it).
//! - **Silent publisher** (it died, its connection is stuck, its messages do not reach this
//!   instance): receivers check every `B/16` while in contact, and flush when a publisher
//!   was not heard from for `B - M - B/16`, so within `B` of `t` by the same sum.
//! - **Lost subscription** (`CLIENT KILL TYPE pubsub`, a reset, a failover, a server
//!   restart): the receiving thread flushes and closes the gate as soon as `next` fails; the
//!   new subscription flushes again (anything read before it may have missed a change) and
//!   the gate reopens only when an own message comes back on it. A server restart is a
//!   lost subscription plus lost messages (gaps).
//! - **Reads racing a change.** A value read from the backend before a change arrived but
//!   inserted after it was applied would outlive the bound: the tier's race guard (`race.rs`,
//!   bumped by the [`Listener`] calls before their removals) takes a snapshot before the
//!   read, inserts, then checks and removes its insert if a change (or
//!   flush) for the key's stripe arrived meanwhile.
//! - **This instance's own writes** are not applied from the channel: the tier updates its
//!   own entry itself and marks the change in its race guard (`Tier::forget`,
//!   `Tier::keep_stored`) before announcing it.
//!
//! # Fail-safe
//!
//! With [`Settings::fail_safe`], losing contact (a lost subscription, own messages not
//! coming back) leaves the gate open: near entries are served until their local timeout,
//! and no bound holds meanwhile (another instance may write while this one is cut off).
//! When contact comes back (a new subscription, or an own message back after a lapse) the
//! tier is flushed once. Gaps, silent publishers and `All` still flush while in contact.
//! The trade-off: during an outage of the backend (no one can write, so nothing goes stale)
//! near entries keep the program fast; during a partition of this instance alone, it serves
//! stale values for up to the local timeout.

mod counters;
mod gate;
mod message;
mod peers;
mod publish;
mod receive;
mod settings;
mod shared;
#[cfg(test)]
mod tests;

use std::sync::Arc;

#[cfg(test)]
use counters::BackplaneCounters;
pub(crate) use message::NearKey;
pub(crate) use publish::Change;
pub(crate) use receive::Listener;
pub(crate) use settings::{MIN_BOUND, Settings};

/// The coarse monotonic clock of the gate, in ticks of 2^-32 s (about 12 ns a read; it lags
/// the precise clock by at most one kernel tick): a near hit reads it once, for the gate
/// and for its entry's expiry.
pub(crate) use gate::{now as coarse_now, ticks as coarse_ticks};

use crate::bus::Bus;
use publish::Outbox;
use shared::Shared;

/// The near key of a full backend key.
#[inline]
pub(crate) fn near_key(full_key: &str) -> NearKey {
    xxhash_rust::xxh3::xxh3_128(full_key.as_bytes())
}

/// How long [`Backplane::start`] waits at most for the gate to open.
const START_WAIT: std::time::Duration = std::time::Duration::from_millis(50);

/// The running backplane of one cache: its threads stop when it is dropped.
#[derive(Debug)]
pub(crate) struct Backplane {
    shared: Arc<Shared>,
    outbox: Outbox,
}

impl Backplane {
    /// Starts announcing and listening on `bus`; changes are reported to `listener`.
    /// `settings.bound` is taken as [`MIN_BOUND`] if below it (the near cache's settings
    /// refuse such a bound with a config error).
    pub(crate) fn start(
        bus: Arc<dyn Bus>,
        settings: Settings,
        listener: Arc<dyn Listener>,
    ) -> Self {
        let shared = Arc::new(Shared::new(settings));
        let outbox = publish::spawn(Arc::clone(&bus), Arc::clone(&shared));
        receive::spawn(bus, Arc::clone(&shared), listener, outbox.heartbeat());
        // A moment for the gate to open (subscribed, and a heartbeat came back: well under a
        // millisecond in process, a round trip or two on Redis), so that the near cache
        // serves from the first calls; a backend that does not answer costs at most this.
        let until = std::time::Instant::now() + START_WAIT.min(shared.timing.heartbeat);
        while !shared.gate.is_open() && std::time::Instant::now() < until {
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
        Self { shared, outbox }
    }

    /// Announces a change this instance made (after its backend write succeeded). Never
    /// blocks and never fails: when the queue is full the change is dropped and the next
    /// message carries a gap, which makes every receiver flush.
    pub(crate) fn announce(&self, change: Change) {
        self.outbox.announce(&self.shared, change);
    }

    /// Whether near entries may be served now (tests; near hits use [`Backplane::in_sync_at`]).
    #[cfg(test)]
    pub(crate) fn in_sync(&self) -> bool {
        self.shared.gate.is_open()
    }

    /// Whether near entries may be served at `now` ([`coarse_now`], read by the caller): one
    /// atomic load, on every near hit.
    #[inline]
    pub(crate) fn in_sync_at(&self, now: u64) -> bool {
        self.shared.gate.is_open_at(now)
    }

    /// Makes the next `n` messages vanish as lost ones would: numbered, never sent (for
    /// the fault tests of other crates, through `Cache::__drop_announcements`).
    pub(crate) fn drop_next(&self, n: u64) {
        self.shared
            .drop_next
            .fetch_add(n, std::sync::atomic::Ordering::SeqCst);
    }

    /// What the backplane counted so far (for tests).
    #[cfg(test)]
    pub(crate) fn counters(&self) -> BackplaneCounters {
        self.shared.counters.snapshot()
    }
}

impl Drop for Backplane {
    /// Stops both threads without waiting for them: the publishing one once it has sent
    /// what was queued (the queue's sender is dropped with `self`), the receiving one at its
    /// next tick (`B/16`) or when its blocking call returns.
    fn drop(&mut self) {
        self.shared.stop();
    }
}
