//! Redis Cluster's key space without I/O: the hash slot of a key, and the slot map read from
//! `CLUSTER SLOTS`.
//!
//! A key's slot is CRC16/XMODEM of the key modulo 16384. Redis hashes only the part between
//! the first `{` and the next `}` when that part is not empty (a hash tag); this library's
//! keys never hold `{` or `}` (see `cache_core::key`), so the whole key is hashed, and keys of
//! one function spread over every primary. The tag rule is still applied, so a key written by
//! someone else lands where Redis puts it.

use redis::Value;

/// The number of hash slots of every Redis Cluster.
pub(crate) const SLOTS: u16 = 16_384;

/// The hash slot of `key`, as Redis computes it (`CLUSTER KEYSLOT`).
pub(crate) fn slot(key: &[u8]) -> u16 {
    let hashed = match key.iter().position(|&b| b == b'{') {
        Some(open) => match key[open + 1..].iter().position(|&b| b == b'}') {
            Some(len) if len > 0 => &key[open + 1..open + 1 + len],
            _ => key,
        },
        None => key,
    };
    crc16::State::<crc16::XMODEM>::calculate(hashed) % SLOTS
}

/// A node address as Redis names it in `CLUSTER SLOTS` and redirects: host and port.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Addr {
    pub(crate) host: String,
    pub(crate) port: u16,
}

impl Addr {
    /// Parses `host:port` (the host may be an IPv6 address, bracketed or not).
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let (host, port) = text.rsplit_once(':')?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        Some(Self {
            host: host.to_owned(),
            port: port.parse().ok().filter(|port| *port != 0)?,
        })
    }
}

impl std::fmt::Display for Addr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Which primary serves each slot: the answer of one node to `CLUSTER SLOTS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    /// The primaries, each once, in order of first appearance.
    pub(crate) primaries: Vec<Addr>,
    /// Every replica named, for refreshing the map when the primaries are gone.
    pub(crate) replicas: Vec<Addr>,
    /// The index in `primaries` of each slot's owner, or `None` for a slot nobody serves.
    pub(crate) owners: Box<[Option<u16>]>,
}

impl Layout {
    /// Reads a `CLUSTER SLOTS` reply from the node at `asked` (whose host stands in for an
    /// empty or unknown one). `None` if the reply is not one.
    pub(crate) fn parse(reply: &Value, asked: &Addr) -> Option<Self> {
        let Value::Array(ranges) = reply else {
            return None;
        };
        let mut layout = Self {
            primaries: Vec::new(),
            replicas: Vec::new(),
            owners: vec![None; usize::from(SLOTS)].into_boxed_slice(),
        };
        for range in ranges {
            let Value::Array(fields) = range else {
                return None;
            };
            let [start, end, primary, replicas @ ..] = fields.as_slice() else {
                return None;
            };
            let (start, end) = (int(start)?, int(end)?);
            if start > end || end >= SLOTS {
                return None;
            }
            let primary = node(primary, asked)?;
            let index = match layout.primaries.iter().position(|p| *p == primary) {
                Some(index) => index,
                None => {
                    layout.primaries.push(primary);
                    layout.primaries.len() - 1
                }
            };
            let index = u16::try_from(index).ok()?;
            for owner in &mut layout.owners[usize::from(start)..=usize::from(end)] {
                *owner = Some(index);
            }
            for replica in replicas {
                let replica = node(replica, asked)?;
                if !layout.replicas.contains(&replica) {
                    layout.replicas.push(replica);
                }
            }
        }
        Some(layout)
    }

    /// True if every slot has an owner.
    pub(crate) fn is_complete(&self) -> bool {
        self.owners.iter().all(Option::is_some)
    }
}

fn int(value: &Value) -> Option<u16> {
    match value {
        Value::Int(n) => u16::try_from(*n).ok(),
        _ => None,
    }
}

/// `[host, port, id, ...]`; an empty host (or `?`) is the host of the node asked.
fn node(value: &Value, asked: &Addr) -> Option<Addr> {
    let Value::Array(fields) = value else {
        return None;
    };
    let host = match fields.first()? {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok()?,
        Value::SimpleString(text) => text.clone(),
        _ => return None,
    };
    let host = if host.is_empty() || host == "?" {
        asked.host.clone()
    } else {
        host
    };
    let port = match fields.get(1)? {
        Value::Int(port) => u16::try_from(*port).ok().filter(|port| *port != 0)?,
        _ => return None,
    };
    Some(Addr { host, port })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis() {
        // Values from `CLUSTER KEYSLOT` on Redis 7.
        assert_eq!(slot(b"foo"), 12182);
        assert_eq!(slot(b"bar"), 5061);
        assert_eq!(slot(b"123456789"), 12739);
        assert_eq!(slot(b""), 0);
        // Hash tags: only the first non-empty `{...}` counts.
        assert_eq!(slot(b"{foo}.bar"), slot(b"foo"));
        assert_eq!(slot(b"x{foo}y{bar}"), slot(b"foo"));
        assert_eq!(slot(b"{}foo"), slot(b"{}foo"));
        assert_ne!(slot(b"{}foo"), slot(b"foo"));
        assert_eq!(slot(b"foo{"), slot(b"foo{"));
    }

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    fn node_value(host: &str, port: i64) -> Value {
        Value::Array(vec![bulk(host), Value::Int(port), bulk("id")])
    }

    #[test]
    fn cluster_slots_replies_parse() {
        let asked = Addr::parse("10.0.0.9:7000").unwrap();
        let reply = Value::Array(vec![
            Value::Array(vec![
                Value::Int(0),
                Value::Int(8000),
                node_value("127.0.0.1", 7000),
                node_value("127.0.0.1", 7003),
            ]),
            Value::Array(vec![
                Value::Int(8001),
                Value::Int(16383),
                node_value("", 7001),
            ]),
        ]);
        let layout = Layout::parse(&reply, &asked).unwrap();
        assert!(layout.is_complete());
        assert_eq!(
            layout.primaries,
            [
                Addr::parse("127.0.0.1:7000").unwrap(),
                Addr::parse("10.0.0.9:7001").unwrap()
            ]
        );
        assert_eq!(layout.replicas, [Addr::parse("127.0.0.1:7003").unwrap()]);
        assert_eq!(layout.owners[8000], Some(0));
        assert_eq!(layout.owners[8001], Some(1));
        let partial = Value::Array(vec![Value::Array(vec![
            Value::Int(0),
            Value::Int(1),
            node_value("h", 1),
        ])]);
        assert!(!Layout::parse(&partial, &asked).unwrap().is_complete());
        assert!(Layout::parse(&Value::Nil, &asked).is_none());
        let out_of_range = Value::Array(vec![Value::Array(vec![
            Value::Int(0),
            Value::Int(16384),
            node_value("h", 1),
        ])]);
        assert!(Layout::parse(&out_of_range, &asked).is_none());
    }

    #[test]
    fn addresses_parse_and_print() {
        let v6 = Addr::parse("[::1]:7000").unwrap();
        assert_eq!(v6.host, "::1");
        assert_eq!(v6.to_string(), "[::1]:7000");
        assert_eq!(Addr::parse("::1:7000").unwrap(), v6);
        assert!(Addr::parse("host").is_none());
        assert!(Addr::parse("host:0").is_none());
    }
}
