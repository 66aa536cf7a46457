//! Publishing: a bounded queue of this instance's changes and the thread that numbers them,
//! coalesces them into messages and sends a heartbeat when it has nothing else to send.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError};
use std::time::{Duration, Instant};

use super::counters::bump;
use super::gate;
use super::message::{Kind, MAX_KEYS, Message, NearKey};
use super::shared::Shared;
use crate::bus::Bus;

/// How many changes wait to be published at most; more are dropped (and the next message
/// skips a number, so every receiver flushes).
pub(crate) const QUEUE: usize = 1024;

/// How many queued changes one round coalesces at most.
const BATCH: usize = 256;

/// A change this instance made and announces, after the backend write succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// These entries were written or deleted.
    Keys(Vec<NearKey>),
    /// Entries that no near key names were removed (`clear`, `delete_prefix`,
    /// `invalidate_all`): every instance flushes its whole near tier.
    All,
}

/// The sending end of the queue, held by the `Backplane`; dropping it stops the thread
/// once it has published what was queued.
#[derive(Debug)]
pub(crate) struct Outbox {
    queue: SyncSender<Change>,
}

impl Outbox {
    /// Queues `change` without blocking; when the queue is full, drops it and marks the
    /// next message to skip a number.
    pub(crate) fn announce(&self, shared: &Shared, change: Change) {
        match self.queue.try_send(change) {
            Ok(()) => {}
            Err(TrySendError::Disconnected(_)) => {
                if !shared.publisher_gone.swap(true, Ordering::Relaxed) {
                    tracing::error!(
                        "near cache: the publishing thread is gone; this instance's changes are no longer announced (other instances forget it after the bound, but do not see its later changes)"
                    );
                }
            }
            Err(TrySendError::Full(_)) => {
                shared.overflowed.store(true, Ordering::Release);
                bump(&shared.counters.dropped);
                tracing::debug!("near cache: publishing queue full, change dropped");
            }
        }
    }
}

/// A request for a heartbeat now (from the receiving thread, after it subscribed): an
/// empty change in the queue, which the publishing thread sends as a heartbeat.
#[derive(Debug)]
pub(crate) struct Heartbeat(SyncSender<Change>);

impl Heartbeat {
    /// Asks for a heartbeat; a full queue sends a message soon anyway.
    pub(crate) fn ask(&self) {
        let _ = self.0.try_send(Change::Keys(Vec::new()));
    }
}

impl Outbox {
    /// A [`Heartbeat`] handle for the receiving thread.
    pub(crate) fn heartbeat(&self) -> Heartbeat {
        Heartbeat(self.queue.clone())
    }
}

/// Starts the publishing thread.
pub(crate) fn spawn(bus: Arc<dyn Bus>, shared: Arc<Shared>) -> Outbox {
    let (queue, changes) = std::sync::mpsc::sync_channel(QUEUE);
    let started = std::thread::Builder::new()
        .name("cache-near-publish".to_owned())
        .spawn(move || Publisher::new(bus, shared).run(&changes));
    if let Err(err) = started {
        tracing::error!(error = %err, "near cache: cannot start the publishing thread");
    }
    Outbox { queue }
}

struct Publisher {
    bus: Arc<dyn Bus>,
    shared: Arc<Shared>,
    next_seq: u64,
    last_sent: Option<Instant>,
    failing: bool,
}

/// What one round publishes.
enum Batch {
    Heartbeat,
    Keys(Vec<NearKey>),
    All,
}

impl Batch {
    fn add(&mut self, change: Change) {
        match (&mut *self, change) {
            (Batch::All, _) => {}
            (_, Change::All) => *self = Batch::All,
            (Batch::Keys(keys), Change::Keys(more)) => keys.extend(more),
            (Batch::Heartbeat, Change::Keys(keys)) => *self = Batch::Keys(keys),
        }
    }

    fn len(&self) -> usize {
        match self {
            Batch::Heartbeat | Batch::All => 1,
            Batch::Keys(keys) => keys.len(),
        }
    }

    /// The messages' kinds: keys split into messages of at most [`MAX_KEYS`].
    fn into_kinds(self) -> Vec<Kind> {
        match self {
            Batch::Heartbeat => vec![Kind::Heartbeat],
            Batch::All => vec![Kind::All],
            Batch::Keys(mut keys) => {
                keys.sort_unstable();
                keys.dedup();
                if keys.is_empty() {
                    return vec![Kind::Heartbeat];
                }
                keys.chunks(MAX_KEYS)
                    .map(|chunk| Kind::Keys(chunk.to_vec()))
                    .collect()
            }
        }
    }
}

impl Publisher {
    fn new(bus: Arc<dyn Bus>, shared: Arc<Shared>) -> Self {
        Self {
            bus,
            shared,
            next_seq: 1,
            last_sent: None,
            failing: false,
        }
    }

    fn run(mut self, changes: &Receiver<Change>) {
        loop {
            let wait = self.last_sent.map_or(Duration::ZERO, |sent| {
                (sent + self.shared.timing.heartbeat).saturating_duration_since(Instant::now())
            });
            let mut batch = match changes.recv_timeout(wait) {
                Ok(change) => {
                    let mut batch = Batch::Heartbeat;
                    batch.add(change);
                    batch
                }
                Err(RecvTimeoutError::Timeout) => Batch::Heartbeat,
                Err(RecvTimeoutError::Disconnected) => return,
            };
            let mut open = true;
            let mut taken = 1;
            while taken < BATCH && batch.len() < MAX_KEYS {
                match changes.try_recv() {
                    Ok(change) => batch.add(change),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        open = false;
                        break;
                    }
                }
                taken += 1;
            }
            for kind in batch.into_kinds() {
                self.publish(kind);
            }
            if !open {
                return;
            }
        }
    }

    /// Numbers and sends one message. A failed publish consumes its number too: receivers
    /// see the gap at the next message.
    fn publish(&mut self, kind: Kind) {
        let skip = u64::from(self.shared.overflowed.swap(false, Ordering::AcqRel));
        let seq = self.next_seq + skip;
        self.next_seq = seq + 1;
        let message = Message {
            publisher: self.shared.id,
            seq,
            sent_at: gate::now(),
            kind,
        };
        let dropping = self
            .shared
            .drop_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if dropping {
            bump(&self.shared.counters.dropped);
            self.last_sent = Some(Instant::now());
            return;
        }
        let result = self.bus.publish(&message.encode());
        self.last_sent = Some(Instant::now());
        match result {
            Ok(()) => {
                bump(&self.shared.counters.sent);
                if std::mem::take(&mut self.failing) {
                    tracing::info!("near cache: publishing works again");
                }
            }
            Err(err) => {
                bump(&self.shared.counters.publish_failed);
                if std::mem::replace(&mut self.failing, true) {
                    tracing::debug!(error = %err, "near cache: publish failed again");
                } else {
                    tracing::warn!(error = %err, "near cache: publish failed; other instances flush when they see the gap or the silence");
                }
            }
        }
    }
}
