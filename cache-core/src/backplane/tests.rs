//! The backplane on the memory backend's in-process bus, with a listener that records what
//! it is told. Bounds are short (200 ms); every wait has a deadline and the assertions are
//! on counts and states, never on exact times.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::message::{Kind, Message};
use super::publish::QUEUE;
use super::*;
use crate::backend::memory::MemoryBus;
use crate::bus::Bus;

const BOUND: Duration = Duration::from_millis(200);

/// Records the listener's calls; `changed` can be made to block (a stuck receiving thread).
#[derive(Default)]
struct Recorder {
    changed: Mutex<Vec<NearKey>>,
    flushes: AtomicU64,
    blocked: Mutex<bool>,
    unblocked: Condvar,
}

impl Listener for Recorder {
    fn changed(&self, keys: &[NearKey]) {
        let mut blocked = self.blocked.lock().unwrap();
        while *blocked {
            blocked = self.unblocked.wait(blocked).unwrap();
        }
        self.changed.lock().unwrap().extend_from_slice(keys);
    }

    fn flush(&self) {
        self.flushes.fetch_add(1, Ordering::SeqCst);
    }
}

impl Recorder {
    fn has(&self, key: NearKey) -> bool {
        self.changed.lock().unwrap().contains(&key)
    }

    fn flushes(&self) -> u64 {
        self.flushes.load(Ordering::SeqCst)
    }

    fn block(&self, blocked: bool) {
        *self.blocked.lock().unwrap() = blocked;
        self.unblocked.notify_all();
    }
}

fn bus() -> Arc<MemoryBus> {
    Arc::new(MemoryBus::default())
}

fn start(bus: &Arc<MemoryBus>, fail_safe: bool) -> (Backplane, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    let settings = Settings {
        bound: BOUND,
        fail_safe,
    };
    let backplane = Backplane::start(bus.clone(), settings, recorder.clone());
    (backplane, recorder)
}

/// Waits (at most 10 s) until `done`.
fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn synced(backplane: &Backplane) {
    wait_until("in sync", || backplane.in_sync());
}

/// Both in sync and each heard from the other (a publisher's first message heard after its
/// number 1 flushes instead of being applied).
fn acquainted(a: &Backplane, b: &Backplane) {
    synced(a);
    synced(b);
    wait_until("both heard each other", || {
        a.counters().received > 0 && b.counters().received > 0
    });
}

/// A publisher driven by hand, on the same bus.
struct Peer {
    bus: Arc<MemoryBus>,
    id: u64,
    seq: u64,
}

impl Peer {
    fn new(bus: &Arc<MemoryBus>) -> Self {
        Self {
            bus: bus.clone(),
            id: 0xfeed,
            seq: 0,
        }
    }

    fn send(&mut self, kind: Kind) {
        self.seq += 1;
        let message = Message {
            publisher: self.id,
            seq: self.seq,
            sent_at: 0,
            kind,
        };
        self.bus.publish(&message.encode()).unwrap();
    }
}

#[test]
fn two_backplanes_exchange_changes() {
    let bus = bus();
    let (a, ra) = start(&bus, false);
    let (b, rb) = start(&bus, false);
    acquainted(&a, &b);
    a.announce(Change::Keys(vec![1, 2]));
    b.announce(Change::Keys(vec![3]));
    wait_until("b applied a's change", || rb.has(1) && rb.has(2));
    wait_until("a applied b's change", || ra.has(3));
    let flushes = rb.flushes();
    a.announce(Change::All);
    wait_until("b flushed for a's All", || rb.flushes() > flushes);
}

#[test]
fn own_messages_are_not_applied_but_keep_the_gate_open() {
    let bus = bus();
    let (a, ra) = start(&bus, false);
    synced(&a);
    let before = a.counters().own_received;
    a.announce(Change::Keys(vec![5]));
    // Messages come back in order: two more mean the change's message came back.
    wait_until("own messages back", || {
        a.counters().own_received >= before + 2
    });
    assert!(!ra.has(5), "an own change was applied");
    synced(&a);
}

#[test]
fn a_peers_messages_in_order_are_applied_and_a_skipped_number_flushes() {
    let bus = bus();
    let (b, rb) = start(&bus, false);
    synced(&b);
    let mut peer = Peer::new(&bus);
    peer.send(Kind::Keys(vec![1]));
    peer.send(Kind::Heartbeat);
    peer.send(Kind::Keys(vec![2]));
    wait_until("applied", || rb.has(2));
    assert!(rb.has(1));
    let (flushes, gaps) = (rb.flushes(), b.counters().gaps);
    peer.seq += 1; // a message lost on the way
    peer.send(Kind::Keys(vec![3]));
    wait_until("flushed at the gap", || b.counters().gaps > gaps);
    assert!(rb.flushes() > flushes);
    assert!(
        !rb.has(3),
        "the flush replaces the keys of the message after a gap"
    );
    peer.send(Kind::Keys(vec![4]));
    wait_until("applied after the gap", || rb.has(4));
}

#[test]
fn a_publisher_first_heard_after_its_number_one_flushes() {
    let bus = bus();
    let (b, rb) = start(&bus, false);
    synced(&b);
    let flushes = rb.flushes();
    let mut peer = Peer::new(&bus);
    peer.seq = 10;
    peer.send(Kind::Keys(vec![1]));
    wait_until("flushed", || b.counters().gaps == 1);
    assert!(rb.flushes() > flushes);
}

#[test]
fn a_message_dropped_by_the_bus_makes_the_receiver_flush_at_the_next_one() {
    let bus = bus();
    let (a, _ra) = start(&bus, false);
    let (b, rb) = start(&bus, false);
    acquainted(&a, &b);
    // The dropped message is a's change unless b's heartbeat went out in between (then the
    // change arrives and the round is tried again).
    for key in 100..110 {
        let gaps = b.counters().gaps;
        bus.drop_next(1);
        a.announce(Change::Keys(vec![key]));
        a.announce(Change::Keys(vec![key + 1000]));
        wait_until("a's next message", || {
            rb.has(key + 1000) || b.counters().gaps > gaps
        });
        if b.counters().gaps > gaps {
            assert!(!rb.has(key), "the dropped change arrived");
            return;
        }
    }
    panic!("no drop ever hit a's message");
}

#[test]
fn a_failed_publish_consumes_its_number() {
    let bus = bus();
    let (a, _ra) = start(&bus, false);
    let (b, _rb) = start(&bus, false);
    acquainted(&a, &b);
    let (gaps_a, gaps_b) = (a.counters().gaps, b.counters().gaps);
    bus.fail_next_publishes(1);
    a.announce(Change::Keys(vec![1]));
    wait_until("a publish failed", || {
        a.counters().publish_failed + b.counters().publish_failed == 1
    });
    // Whichever instance's publish failed, the other sees the gap at its next message.
    if a.counters().publish_failed == 1 {
        wait_until("b saw a's gap", || b.counters().gaps > gaps_b);
    } else {
        wait_until("a saw b's gap", || a.counters().gaps > gaps_a);
    }
}

/// Reads `raw` until a message of `publisher`.
fn next_from(raw: &mut Box<dyn crate::bus::Subscription>, publisher: u64) -> Message {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < deadline, "no message from {publisher:x}");
        if let Some(bytes) = raw.next(BOUND).unwrap() {
            let message = Message::decode(&bytes).unwrap();
            if message.publisher == publisher {
                return message;
            }
        }
    }
}

#[test]
fn queue_overflow_drops_the_change_and_skips_a_number() {
    let bus = bus();
    let (a, _ra) = start(&bus, false);
    let (b, _rb) = start(&bus, false);
    acquainted(&a, &b);
    let mut raw = bus.subscribe().unwrap();
    let id = a.shared.id;
    let mut last = next_from(&mut raw, id).seq;
    bus.stall_publishes(true);
    for key in 0..(QUEUE as u128 + 600) {
        a.announce(Change::Keys(vec![key]));
    }
    assert!(a.counters().dropped > 0, "{:?}", a.counters());
    let gaps = b.counters().gaps;
    bus.stall_publishes(false);
    wait_until("b saw the gap", || b.counters().gaps > gaps);
    loop {
        let seq = next_from(&mut raw, id).seq;
        if seq == last + 2 {
            break;
        }
        assert_eq!(seq, last + 1, "more than one number skipped");
        last = seq;
    }
}

#[test]
fn a_cut_subscription_flushes_closes_the_gate_and_resubscribes() {
    let bus = bus();
    let (b, rb) = start(&bus, false);
    synced(&b);
    let (before, flushes) = (b.counters(), rb.flushes());
    bus.cut_subscriptions();
    wait_until("subscribed again", || {
        b.counters().subscriptions > before.subscriptions
    });
    let after = b.counters();
    assert_eq!(after.subscriptions_lost, before.subscriptions_lost + 1);
    assert!(
        rb.flushes() >= flushes + 2,
        "a flush at the loss and one at the new subscription"
    );
    synced(&b);

    // Cut and unable to subscribe: the gate stays closed.
    bus.set_down(true);
    wait_until("gate closed", || !b.in_sync());
    std::thread::sleep(2 * BOUND);
    assert!(!b.in_sync());
    assert!(b.counters().subscribe_failed > 0);
    bus.set_down(false);
    synced(&b);
}

#[test]
fn a_silent_publisher_is_forgotten_with_a_flush() {
    let bus = bus();
    let (b, rb) = start(&bus, false);
    synced(&b);
    let mut peer = Peer::new(&bus);
    peer.send(Kind::Keys(vec![1]));
    wait_until("applied", || rb.has(1));
    let flushes = rb.flushes();
    wait_until("forgotten", || b.counters().silent == 1);
    assert!(rb.flushes() > flushes);
}

#[test]
fn a_dropped_instance_is_forgotten_by_the_others() {
    let bus = bus();
    let (a, _ra) = start(&bus, false);
    let (b, _rb) = start(&bus, false);
    acquainted(&a, &b);
    wait_until("b heard a", || b.counters().received > 0);
    drop(a);
    wait_until("b forgot a", || b.counters().silent == 1);
}

#[test]
fn the_gate_closes_by_time_alone_while_the_receiving_thread_is_stuck() {
    let bus = bus();
    let (b, rb) = start(&bus, false);
    synced(&b);
    rb.block(true);
    let mut peer = Peer::new(&bus);
    peer.send(Kind::Keys(vec![1]));
    wait_until("gate closed", || !b.in_sync());
    assert!(!rb.has(1), "the thread was stuck all along");
    rb.block(false);
    wait_until("applied", || rb.has(1));
    synced(&b);
}

#[test]
fn no_own_message_back_within_the_bound_closes_the_gate() {
    let bus = bus();
    let (b, rb) = start(&bus, false);
    synced(&b);
    bus.pause();
    wait_until("gate closed", || !b.in_sync());
    let flushes = rb.flushes();
    bus.resume();
    synced(&b);
    assert!(rb.flushes() > flushes, "contact back after a lapse flushes");
}

#[test]
fn fail_safe_keeps_the_gate_open_and_flushes_once_contact_is_back() {
    let bus = bus();
    let (b, rb) = start(&bus, true);
    synced(&b);
    let flushes = rb.flushes();
    bus.set_down(true);
    wait_until("subscription lost", || b.counters().subscriptions_lost == 1);
    std::thread::sleep(2 * BOUND);
    assert!(b.in_sync(), "fail-safe closed the gate");
    assert_eq!(
        rb.flushes(),
        flushes,
        "fail-safe flushed while out of contact"
    );
    bus.set_down(false);
    wait_until("flushed on reconnection", || rb.flushes() > flushes);
    assert!(b.in_sync());

    let flushes = rb.flushes();
    bus.pause();
    std::thread::sleep(2 * BOUND);
    assert!(b.in_sync(), "fail-safe closed the gate on a paused channel");
    assert_eq!(rb.flushes(), flushes);
    bus.resume();
    wait_until("flushed when own messages came back", || {
        rb.flushes() > flushes
    });
}

#[test]
fn garbage_is_not_applied_and_is_counted_and_flushes() {
    let bus = bus();
    let (b, rb) = start(&bus, false);
    synced(&b);
    let flushes = rb.flushes();
    let good = Message {
        publisher: 7,
        seq: 1,
        sent_at: 0,
        kind: Kind::Keys(vec![1]),
    }
    .encode();
    let mut other_version = good.clone();
    other_version[0] = 9;
    for bytes in [
        &b"garbage"[..],
        &good[..good.len() - 1],
        &other_version,
        &[],
    ] {
        bus.publish(bytes).unwrap();
    }
    wait_until("counted", || b.counters().garbage == 4);
    assert!(!rb.has(1));
    assert!(rb.flushes() >= flushes + 4);
    assert_eq!(b.counters().received, 0);
    let mut peer = Peer::new(&bus);
    peer.send(Kind::Keys(vec![2]));
    wait_until("a good message still applied", || rb.has(2));
    synced(&b);
}

#[test]
fn threads_stop_when_the_backplane_is_dropped() {
    let bus = bus();
    let (b, rb) = start(&bus, false);
    synced(&b);
    assert_eq!(bus.subscribers(), 1);
    drop(b);
    wait_until("both threads gone", || {
        Arc::strong_count(&rb) == 1 && Arc::strong_count(&bus) == 1
    });
    assert_eq!(bus.subscribers(), 0);
}

/// A near tier over a shared store, for the bound test: entries are `(key, version)`.
/// While `stuck`, the receiving thread hangs in it.
#[derive(Default)]
struct Tier {
    entries: Mutex<std::collections::HashMap<NearKey, u64>>,
    /// Bumped before each removal, as the real tier's: a read racing a change is not kept.
    guard: crate::race::RaceGuard,
    stuck: std::sync::atomic::AtomicBool,
}

impl Listener for Tier {
    fn changed(&self, keys: &[NearKey]) {
        while self.stuck.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(1));
        }
        self.guard.changing(keys);
        let mut entries = self.entries.lock().unwrap();
        for key in keys {
            entries.remove(key);
        }
    }

    fn flush(&self) {
        self.guard.flushing();
        self.entries.lock().unwrap().clear();
    }
}

/// The shared store: each key's version and when each version's write was acknowledged.
#[derive(Default)]
struct Store {
    versions: Mutex<std::collections::HashMap<NearKey, u64>>,
    acked: Mutex<std::collections::HashMap<(NearKey, u64), Instant>>,
}

#[test]
fn no_value_is_served_after_the_bound_under_faults() {
    const BOUND: Duration = Duration::from_millis(500);
    // Each key is written again only every 1.3 s or so: a lost change stays unrepaired
    // for longer than the bound unless the protocol notices.
    const KEYS: u128 = 64;
    let bus = bus();
    let settings = Settings {
        bound: BOUND,
        fail_safe: false,
    };
    let writer = Backplane::start(bus.clone(), settings, Arc::new(Tier::default()));
    let tier = Arc::new(Tier::default());
    let reader = Backplane::start(bus.clone(), settings, tier.clone());
    acquainted(&writer, &reader);
    let store = Store::default();
    for key in 0..KEYS {
        store.versions.lock().unwrap().insert(key, 1);
    }
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (served, violations) = (AtomicU64::new(0), AtomicU64::new(0));
    // The longest a value was served after a newer one was acknowledged, in µs.
    let worst = AtomicU64::new(0);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut round = 0u128;
            while !stop.load(Ordering::Relaxed) {
                let key = round % KEYS;
                round += 1;
                let version = {
                    let mut versions = store.versions.lock().unwrap();
                    let version = versions.entry(key).or_default();
                    *version += 1;
                    *version
                };
                store
                    .acked
                    .lock()
                    .unwrap()
                    .insert((key, version), Instant::now());
                writer.announce(Change::Keys(vec![key]));
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        s.spawn(|| {
            let mut round = 0u128;
            while !stop.load(Ordering::Relaxed) {
                let key = round % KEYS;
                round += 1;
                let near = reader
                    .in_sync()
                    .then(|| tier.entries.lock().unwrap().get(&key).copied())
                    .flatten();
                if let Some(version) = near {
                    served.fetch_add(1, Ordering::Relaxed);
                    let now = Instant::now();
                    let newer = store
                        .acked
                        .lock()
                        .unwrap()
                        .get(&(key, version + 1))
                        .copied();
                    if let Some(acked) = newer {
                        let stale = now.saturating_duration_since(acked);
                        worst.fetch_max(stale.as_micros() as u64, Ordering::Relaxed);
                        if stale > BOUND {
                            violations.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                } else {
                    let snapshot = tier.guard.snapshot(key);
                    let version = store.versions.lock().unwrap().get(&key).copied();
                    if let Some(version) = version {
                        tier.entries.lock().unwrap().insert(key, version);
                        if !tier.guard.still_valid(key, snapshot) {
                            tier.entries.lock().unwrap().remove(&key);
                        }
                    }
                }
                std::thread::sleep(Duration::from_micros(200));
            }
        });
        // The reader fills its tier first.
        std::thread::sleep(2 * BOUND);
        let faults: [&dyn Fn(); 8] = [
            &|| bus.drop_next(3),
            &|| bus.fail_next_publishes(2),
            &|| bus.cut_subscriptions(),
            &|| {
                bus.pause();
                std::thread::sleep(2 * BOUND);
                bus.resume();
            },
            &|| {
                bus.stall_publishes(true);
                std::thread::sleep(BOUND);
                bus.stall_publishes(false);
            },
            &|| {
                bus.set_down(true);
                std::thread::sleep(BOUND + BOUND / 2);
                bus.set_down(false);
            },
            &|| bus.drop_next(5),
            &|| {
                tier.stuck.store(true, Ordering::Relaxed);
                std::thread::sleep(2 * BOUND);
                tier.stuck.store(false, Ordering::Relaxed);
            },
        ];
        for fault in faults {
            fault();
            std::thread::sleep(BOUND);
        }
        stop.store(true, Ordering::Relaxed);
    });
    let counters = reader.counters();
    let worst = Duration::from_micros(worst.load(Ordering::Relaxed));
    eprintln!("longest stale serve {worst:?} (bound {BOUND:?}); {counters:?}");
    assert_eq!(violations.load(Ordering::Relaxed), 0, "{counters:?}");
    assert!(served.load(Ordering::Relaxed) > 100, "the near tier served");
    assert!(
        counters.gaps > 0 && counters.subscriptions_lost > 0,
        "{counters:?}"
    );
}
