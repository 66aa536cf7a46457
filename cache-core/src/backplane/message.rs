//! The backplane's wire format: one small binary message per publish.
//!
//! ```text
//! byte  0       version (1)
//! byte  1       kind: 0 heartbeat, 1 keys, 2 all
//! bytes 2..10   the publisher's random id (u64, little-endian)
//! bytes 10..18  the publisher's sequence number (u64 LE, consecutive from 1)
//! bytes 18..26  when the publisher sent it, on its own clock (u64 LE; only the publisher
//!               reads it back, to time its own messages' round trip)
//! keys only:    a count (u16 LE, 1 to MAX_KEYS), then that many near keys (u128 LE)
//! ```
//!
//! Input is untrusted: anything else (another version, a truncated message, a wrong
//! length, an unknown kind, sequence number 0) is [`Malformed`].

use std::fmt;

/// The near-cache key of an entry; see `backplane::NearKey`.
pub(crate) type NearKey = u128;

/// The version this code writes and reads.
pub(crate) const VERSION: u8 = 1;

/// The most keys one message carries (8 KiB of keys); more are split over several messages.
pub(crate) const MAX_KEYS: usize = 512;

const HEADER: usize = 26;
const KEY: usize = 16;

/// What a message says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Nothing changed; the publisher is alive (and, for itself, the channel works).
    Heartbeat,
    /// These entries changed (1 to [`MAX_KEYS`] keys).
    Keys(Vec<NearKey>),
    /// Entries that no key names changed: forget every entry.
    All,
}

/// One message on the channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Message {
    pub(crate) publisher: u64,
    pub(crate) seq: u64,
    pub(crate) sent_at: u64,
    pub(crate) kind: Kind,
}

/// Why bytes read from the channel are not a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Malformed {
    /// Another version of the format (a newer or older instance, or not ours at all).
    Version(u8),
    /// Shorter or longer than its header and kind say.
    Length(usize),
    /// An unknown kind byte, or a key count of 0 or above [`MAX_KEYS`].
    Kind(u8),
    /// Sequence number 0 (numbers start at 1).
    Sequence,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Version(v) => write!(f, "message version {v}, this instance reads {VERSION}"),
            Self::Length(n) => write!(f, "a message of {n} bytes does not match its header"),
            Self::Kind(k) => write!(f, "unknown message kind or key count ({k})"),
            Self::Sequence => f.write_str("sequence number 0"),
        }
    }
}

impl Message {
    /// The bytes to publish.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let keys = match &self.kind {
            Kind::Keys(keys) => keys.as_slice(),
            Kind::Heartbeat | Kind::All => &[],
        };
        debug_assert!(keys.len() <= MAX_KEYS);
        let mut out = Vec::with_capacity(HEADER + 2 + keys.len() * KEY);
        out.push(VERSION);
        out.push(match self.kind {
            Kind::Heartbeat => 0,
            Kind::Keys(_) => 1,
            Kind::All => 2,
        });
        out.extend_from_slice(&self.publisher.to_le_bytes());
        out.extend_from_slice(&self.seq.to_le_bytes());
        out.extend_from_slice(&self.sent_at.to_le_bytes());
        if let Kind::Keys(keys) = &self.kind {
            let count = u16::try_from(keys.len()).expect("at most MAX_KEYS keys");
            out.extend_from_slice(&count.to_le_bytes());
            for key in keys {
                out.extend_from_slice(&key.to_le_bytes());
            }
        }
        out
    }

    /// Reads a message, refusing anything that is not exactly one.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, Malformed> {
        let (&version, rest) = bytes.split_first().ok_or(Malformed::Length(0))?;
        if version != VERSION {
            return Err(Malformed::Version(version));
        }
        if bytes.len() < HEADER {
            return Err(Malformed::Length(bytes.len()));
        }
        let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        let (publisher, seq, sent_at) = (word(2), word(10), word(18));
        if seq == 0 {
            return Err(Malformed::Sequence);
        }
        let body = &bytes[HEADER..];
        let kind = match rest[0] {
            0 | 2 if !body.is_empty() => return Err(Malformed::Length(bytes.len())),
            0 => Kind::Heartbeat,
            2 => Kind::All,
            1 => Kind::Keys(decode_keys(body, bytes.len())?),
            other => return Err(Malformed::Kind(other)),
        };
        Ok(Self {
            publisher,
            seq,
            sent_at,
            kind,
        })
    }
}

fn decode_keys(body: &[u8], total: usize) -> Result<Vec<NearKey>, Malformed> {
    let count = match body {
        [a, b, ..] => usize::from(u16::from_le_bytes([*a, *b])),
        _ => return Err(Malformed::Length(total)),
    };
    if count == 0 || count > MAX_KEYS {
        return Err(Malformed::Kind(1));
    }
    let keys = &body[2..];
    if keys.len() != count * KEY {
        return Err(Malformed::Length(total));
    }
    Ok(keys
        .chunks_exact(KEY)
        .map(|key| u128::from_le_bytes(key.try_into().expect("16 bytes")))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn message(kind: Kind) -> Message {
        Message {
            publisher: 0x0123_4567_89ab_cdef,
            seq: 42,
            sent_at: 7,
            kind,
        }
    }

    #[test]
    fn every_kind_round_trips() {
        for kind in [
            Kind::Heartbeat,
            Kind::All,
            Kind::Keys(vec![1, u128::MAX, 3]),
        ] {
            let m = message(kind);
            assert_eq!(Message::decode(&m.encode()), Ok(m));
        }
    }

    #[test]
    fn the_layout_is_the_documented_one() {
        let bytes = message(Kind::Keys(vec![5])).encode();
        assert_eq!(bytes.len(), 26 + 2 + 16);
        assert_eq!(&bytes[..2], &[1, 1]);
        assert_eq!(&bytes[10..18], &42u64.to_le_bytes());
        assert_eq!(&bytes[26..28], &1u16.to_le_bytes());
    }

    #[test]
    fn other_versions_truncated_and_padded_messages_are_malformed() {
        let good = message(Kind::Keys(vec![1, 2])).encode();
        let mut other_version = good.clone();
        other_version[0] = 2;
        assert_eq!(Message::decode(&other_version), Err(Malformed::Version(2)));
        for len in 0..good.len() {
            assert!(
                Message::decode(&good[..len]).is_err(),
                "{len} bytes decoded"
            );
        }
        let mut padded = good.clone();
        padded.push(0);
        assert!(Message::decode(&padded).is_err());
        let mut heartbeat = message(Kind::Heartbeat).encode();
        heartbeat.push(0);
        assert!(Message::decode(&heartbeat).is_err());
        let mut unknown = message(Kind::All).encode();
        unknown[1] = 9;
        assert_eq!(Message::decode(&unknown), Err(Malformed::Kind(9)));
        let mut zero = message(Kind::All);
        zero.seq = 0;
        assert_eq!(Message::decode(&zero.encode()), Err(Malformed::Sequence));
    }

    #[test]
    fn a_key_count_above_the_bound_is_malformed() {
        let mut bytes = message(Kind::Keys(vec![1])).encode();
        bytes[26..28].copy_from_slice(&u16::MAX.to_le_bytes());
        bytes.resize(26 + 2 + usize::from(u16::MAX) * 16, 0);
        assert_eq!(Message::decode(&bytes), Err(Malformed::Kind(1)));
    }

    proptest! {
        #[test]
        fn decoding_any_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Message::decode(&bytes);
        }

        #[test]
        fn keys_round_trip(keys in proptest::collection::vec(any::<u128>(), 1..=MAX_KEYS), seq in 1u64..) {
            let m = Message { publisher: 1, seq, sent_at: 2, kind: Kind::Keys(keys) };
            prop_assert_eq!(Message::decode(&m.encode()), Ok(m));
        }
    }
}
