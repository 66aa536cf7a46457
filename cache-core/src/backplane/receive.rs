//! Receiving: the thread that subscribes, applies the other publishers' changes, detects
//! what pub/sub cannot tell (gaps, silent publishers, a lost subscription) and keeps the
//! serving gate open while this instance's own messages come back in time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::counters::bump;
use super::gate;
use super::message::{Kind, Message, NearKey};
use super::peers::{Order, Peers};
use super::publish::Heartbeat;
use super::shared::Shared;
use crate::bus::{Bus, Subscription};

/// What the backplane tells the near tier (and the lease waiters) about the other
/// instances' changes.
pub(crate) trait Listener: Send + Sync + 'static {
    /// These entries changed in another instance: forget them, marking the change for any
    /// read of them in flight first (the tier's race guard), so its value is not kept. Also
    /// wakes lease waiters on these keys.
    fn changed(&self, keys: &[NearKey]);
    /// Something may have been missed (a gap in a publisher's numbers, a lost
    /// subscription, a silent publisher, an `All` change, contact lost for longer than the
    /// bound): forget every entry, marking the flush for every read in flight first.
    fn flush(&self);
}

/// Starts the receiving thread.
/// `heartbeat` reaches the publishing thread: on every new subscription the receiver asks
/// it for a heartbeat at once (the gate opens when one comes back), and the publishing
/// thread ends only when this thread has ended too.
pub(crate) fn spawn(
    bus: Arc<dyn Bus>,
    shared: Arc<Shared>,
    listener: Arc<dyn Listener>,
    heartbeat: Heartbeat,
) {
    let receiver = Receiver {
        shared,
        listener,
        heartbeat,
        peers: Peers::default(),
        subscribed: false,
        contact_until: None,
        warned_garbage: false,
    };
    let started = std::thread::Builder::new()
        .name("cache-near-receive".to_owned())
        .spawn(move || receiver.run(&*bus));
    if let Err(err) = started {
        tracing::error!(error = %err, "near cache: cannot start the receiving thread; near entries are never served");
    }
}

struct Receiver {
    shared: Arc<Shared>,
    listener: Arc<dyn Listener>,
    heartbeat: Heartbeat,
    peers: Peers,
    /// A subscription is up.
    subscribed: bool,
    /// Until when (clock ticks) the latest own message that came back on this subscription
    /// keeps this instance in contact; `None` before the first one.
    contact_until: Option<u64>,
    warned_garbage: bool,
}

impl Receiver {
    fn run(mut self, bus: &dyn Bus) {
        let timing = self.shared.timing;
        let mut retry = timing.retry_min;
        let mut failures = 0u64;
        while !self.shared.stopped() {
            match bus.subscribe() {
                Ok(subscription) => {
                    if failures > 0 {
                        tracing::info!(failures, "near cache: subscribed again");
                    }
                    (retry, failures) = (timing.retry_min, 0);
                    self.subscribed();
                    self.listen(subscription);
                }
                Err(err) => {
                    bump(&self.shared.counters.subscribe_failed);
                    if failures == 0 {
                        tracing::warn!(error = %err, "near cache: cannot subscribe; retrying");
                    } else {
                        tracing::debug!(error = %err, failures, "near cache: cannot subscribe");
                    }
                    failures += 1;
                    self.sleep(retry);
                    retry = (retry * 2).min(timing.retry_max);
                }
            }
        }
    }

    /// Waits `duration` unless stopped first.
    fn sleep(&self, duration: Duration) {
        let until = Instant::now() + duration;
        while !self.shared.stopped() {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            std::thread::sleep(left.min(self.shared.timing.tick));
        }
    }

    fn listen(&mut self, mut subscription: Box<dyn Subscription>) {
        while !self.shared.stopped() {
            match subscription.next(self.shared.timing.tick) {
                Ok(Some(bytes)) => self.on_bytes(&bytes),
                Ok(None) => {}
                Err(err) => {
                    bump(&self.shared.counters.subscriptions_lost);
                    tracing::warn!(error = %err, "near cache: subscription lost; subscribing again");
                    self.lost();
                    return;
                }
            }
            self.on_tick(gate::now());
        }
    }

    /// A new subscription: what was sent before it may have been missed.
    fn subscribed(&mut self) {
        bump(&self.shared.counters.subscriptions);
        self.subscribed = true;
        self.contact_until = None;
        self.flush();
        self.peers.heard_all(gate::now());
        // The gate opens when one of our own messages comes back on this subscription: ask
        // the publisher for a heartbeat now rather than at its next one.
        self.heartbeat.ask();
    }

    /// The subscription is gone. Fail-safe keeps serving (and flushes when contact comes
    /// back, at the next subscription); otherwise the gate closes now.
    fn lost(&mut self) {
        if !std::mem::replace(&mut self.subscribed, false) {
            return;
        }
        self.contact_until = None;
        if !self.shared.settings.fail_safe {
            self.shared.gate.close();
            self.flush();
        }
    }

    fn flush(&self) {
        self.listener.flush();
        bump(&self.shared.counters.flushes);
    }

    fn on_bytes(&mut self, bytes: &[u8]) {
        let now = gate::now();
        match Message::decode(bytes) {
            Ok(message) if message.publisher == self.shared.id => self.own(&message, now),
            Ok(message) => self.other(message, now),
            Err(malformed) => {
                bump(&self.shared.counters.garbage);
                if std::mem::replace(&mut self.warned_garbage, true) {
                    tracing::debug!(%malformed, "near cache: message ignored");
                } else {
                    tracing::warn!(%malformed, "near cache: message ignored (it may have carried a change, so the near tier is flushed); further ones are only counted");
                }
                self.flush();
            }
        }
    }

    /// One of this instance's messages came back: every message the server handled before
    /// it has been delivered, so the gate may stay open until its sending time plus the
    /// window.
    fn own(&mut self, message: &Message, now: u64) {
        bump(&self.shared.counters.own_received);
        if message.sent_at > now {
            return; // not sent by this process: its clock is not there yet
        }
        if self.contact_until.is_some_and(|until| now >= until) {
            // Contact had lapsed (silence checks were off meanwhile): start afresh.
            tracing::debug!("near cache: contact back after a lapse");
            self.flush();
            self.peers.heard_all(now);
        }
        let until = (message.sent_at.saturating_add(self.shared.timing.window))
            .max(self.contact_until.unwrap_or(0));
        self.contact_until = Some(until);
        self.shared
            .gate
            .open_until(if self.shared.settings.fail_safe {
                u64::MAX
            } else {
                until
            });
    }

    fn other(&mut self, message: Message, now: u64) {
        bump(&self.shared.counters.received);
        let order = self.peers.heard(message.publisher, message.seq, now);
        if order != Order::Next {
            bump(&self.shared.counters.gaps);
            tracing::debug!(?order, publisher = %format_args!("{:016x}", message.publisher), seq = message.seq, "near cache: messages may have been missed");
            self.flush();
            return;
        }
        match message.kind {
            Kind::Heartbeat => {}
            Kind::Keys(keys) => self.listener.changed(&keys),
            Kind::All => self.flush(),
        }
    }

    /// While in contact, forgets (and flushes for) publishers silent for too long.
    fn on_tick(&mut self, now: u64) {
        if self.contact_until.is_none_or(|until| now >= until) {
            return;
        }
        let silent = self.peers.forget_silent(now, self.shared.timing.silence);
        if silent > 0 {
            for _ in 0..silent {
                bump(&self.shared.counters.silent);
            }
            tracing::debug!(
                silent,
                "near cache: publishers silent for too long, forgotten"
            );
            self.flush();
        }
    }
}
