//! The receiving side's view of the other publishers: the number each must send next and
//! when it was last heard from. No I/O and no clock of its own: times are passed in.

use std::collections::HashMap;

/// The most publishers tracked at once (instances of one cache). Messages from more are not
/// tracked, so each of them flushes.
const MAX_PEERS: usize = 4096;

/// Where a received number stands in its publisher's sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    /// The next one (or the very first, number 1): nothing was missed.
    Next,
    /// Numbers were skipped: messages were lost, a publish failed, or the publisher's queue
    /// overflowed.
    Gap,
    /// The first message heard from this publisher, after number 1: what came before it
    /// since this instance subscribed may have been lost.
    FirstAfterStart,
    /// Not after the last one (a replay, or a publisher id reused): resynchronised to it.
    Backwards,
    /// Too many publishers to track this one.
    Untracked,
}

#[derive(Debug, Clone, Copy)]
struct Peer {
    expected: u64,
    heard: u64,
}

/// Every publisher heard from (this instance excluded).
#[derive(Debug, Default)]
pub(crate) struct Peers {
    peers: HashMap<u64, Peer>,
}

impl Peers {
    /// Records message `seq` of `publisher`, heard at `now`.
    pub(crate) fn heard(&mut self, publisher: u64, seq: u64, now: u64) -> Order {
        let next = seq.saturating_add(1);
        if let Some(peer) = self.peers.get_mut(&publisher) {
            let order = match seq.cmp(&peer.expected) {
                std::cmp::Ordering::Equal => Order::Next,
                std::cmp::Ordering::Greater => Order::Gap,
                std::cmp::Ordering::Less => Order::Backwards,
            };
            *peer = Peer {
                expected: next,
                heard: now,
            };
            return order;
        }
        if self.peers.len() >= MAX_PEERS {
            return Order::Untracked;
        }
        self.peers.insert(
            publisher,
            Peer {
                expected: next,
                heard: now,
            },
        );
        if seq == 1 {
            Order::Next
        } else {
            Order::FirstAfterStart
        }
    }

    /// Forgets the publishers not heard from since `now - silence`; returns how many.
    pub(crate) fn forget_silent(&mut self, now: u64, silence: u64) -> usize {
        let before = self.peers.len();
        self.peers
            .retain(|_, peer| now.saturating_sub(peer.heard) <= silence);
        before - self.peers.len()
    }

    /// Counts every publisher as heard from at `now` (after a flush, which covers whatever
    /// they sent before it), keeping their numbers.
    pub(crate) fn heard_all(&mut self, now: u64) {
        for peer in self.peers.values_mut() {
            peer.heard = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_numbers_are_in_order_and_a_skip_is_a_gap() {
        let mut peers = Peers::default();
        assert_eq!(peers.heard(9, 1, 0), Order::Next);
        assert_eq!(peers.heard(9, 2, 0), Order::Next);
        assert_eq!(peers.heard(9, 4, 0), Order::Gap);
        assert_eq!(peers.heard(9, 5, 0), Order::Next);
        assert_eq!(peers.heard(9, 5, 0), Order::Backwards);
        assert_eq!(peers.heard(9, 6, 0), Order::Next);
    }

    #[test]
    fn a_publisher_first_heard_after_number_one_may_have_lost_messages() {
        let mut peers = Peers::default();
        assert_eq!(peers.heard(1, 7, 0), Order::FirstAfterStart);
        assert_eq!(peers.heard(1, 8, 0), Order::Next);
    }

    #[test]
    fn silent_publishers_are_forgotten_and_then_first_heard_again() {
        let mut peers = Peers::default();
        peers.heard(1, 1, 0);
        peers.heard(2, 1, 50);
        assert_eq!(peers.forget_silent(100, 60), 1);
        assert_eq!(peers.heard(1, 2, 100), Order::FirstAfterStart);
        assert_eq!(peers.heard(2, 2, 100), Order::Next);
        peers.heard_all(1000);
        assert_eq!(peers.forget_silent(1050, 60), 0);
    }

    #[test]
    fn publishers_beyond_the_bound_are_not_tracked() {
        let mut peers = Peers::default();
        for id in 0..MAX_PEERS as u64 {
            peers.heard(id, 1, 0);
        }
        assert_eq!(peers.heard(u64::MAX, 1, 0), Order::Untracked);
        assert_eq!(peers.heard(u64::MAX, 2, 0), Order::Untracked);
    }
}
