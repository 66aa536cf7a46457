//! Commands whose keys span several hash slots, without I/O: which keys a command the
//! backend sends has ([`keys`]), how they group by slot ([`by_slot`], [`multi_key`]), and how
//! the replies of the per-node pipelines make the reply of the original command ([`Merge`]).
//! The cluster topology (`crate::cluster`) decides which node gets what.

use std::collections::BTreeMap;

use cache_core::{Error, ErrorKind, Result};
use redis::{Arg, Cmd, RedisError, Value};

use crate::error::from_redis;
use crate::slots::slot;

/// How the replies of a plan's parts make the reply of the call.
pub(crate) enum Merge {
    /// The one part's reply.
    Only,
    /// The first reply of the one part's pipeline.
    First,
    /// The last part's reply (a command sent to every primary).
    Last,
    /// `MGET` replies put back in key order: for each part, for each of its commands, the
    /// positions of its keys.
    Mget {
        len: usize,
        positions: Vec<Vec<Vec<usize>>>,
    },
    /// The sum of every count (`UNLINK`, `EXISTS`).
    Sum,
    /// Nothing but errors (the pipeline of `set_many`).
    Ignored,
}

impl Merge {
    pub(crate) fn finish(self, replies: Vec<Value>) -> Result<Value> {
        match self {
            Self::Only | Self::Last => replies.into_iter().last().ok_or_else(no_reply),
            Self::First => checked(replies.into_iter().next().ok_or_else(no_reply)?)?
                .into_iter()
                .next()
                .ok_or_else(no_reply),
            Self::Mget { len, positions } => {
                let mut values = vec![Value::Nil; len];
                for (reply, positions) in replies.into_iter().zip(positions) {
                    for (reply, positions) in checked(reply)?.into_iter().zip(positions) {
                        let Value::Array(items) = reply else {
                            return Err(no_reply());
                        };
                        for (item, at) in items.into_iter().zip(positions) {
                            values[at] = item;
                        }
                    }
                }
                Ok(Value::Array(values))
            }
            Self::Sum => {
                let mut total = 0;
                for reply in replies {
                    for count in checked(reply)? {
                        match count {
                            Value::Int(n) => total += n,
                            _ => return Err(no_reply()),
                        }
                    }
                }
                Ok(Value::Int(total))
            }
            Self::Ignored => {
                for reply in replies {
                    checked(reply)?;
                }
                Ok(Value::Array(Vec::new()))
            }
        }
    }
}

/// The replies of a pipeline sent with `ignore_errors`, or the first error among them.
pub(crate) fn checked(reply: Value) -> Result<Vec<Value>> {
    let items = match reply {
        Value::Array(items) => items,
        other => vec![other],
    };
    if let Some(error) = items.iter().find_map(|item| match item {
        Value::ServerError(error) => Some(error.clone()),
        _ => None,
    }) {
        return Err(from_redis(RedisError::from(error)));
    }
    Ok(items)
}

fn no_reply() -> Error {
    Error::new(
        ErrorKind::Backend,
        "a Redis Cluster node answered with fewer replies than commands",
    )
}

/// The keys of a command the backend sends.
pub(crate) enum Keys<'c> {
    /// No key (`FLUSHDB`): every primary.
    None,
    One(&'c [u8]),
    /// A multi-key command: its name and keys.
    Many(&'c [u8], Vec<&'c [u8]>),
}

/// Commands without keys, sent to every primary.
const KEYLESS: [&[u8]; 4] = [b"FLUSHDB", b"FLUSHALL", b"PING", b"DBSIZE"];
/// Commands whose arguments are all keys.
const MULTI_KEY: [&[u8]; 5] = [b"MGET", b"UNLINK", b"DEL", b"EXISTS", b"TOUCH"];

#[inline]
pub(crate) fn keys(cmd: &Cmd) -> Keys<'_> {
    let mut args = cmd.args_iter().map(|arg| match arg {
        Arg::Simple(bytes) => bytes,
        _ => &[][..],
    });
    let count = args.len();
    let Some(name) = args.next() else {
        return Keys::None;
    };
    let is = |names: &[&[u8]]| names.iter().any(|n| name.eq_ignore_ascii_case(n));
    if is(&[b"EVAL", b"EVALSHA"]) {
        // EVAL script numkeys key ...: the lease scripts take one key.
        return args.nth(2).map_or(Keys::None, Keys::One);
    }
    if is(&KEYLESS) {
        return Keys::None;
    }
    if count > 2 && is(&MULTI_KEY) {
        return Keys::Many(name, args.collect());
    }
    args.next().map_or(Keys::None, Keys::One)
}

/// The slot of all of `keys`, if they share one.
pub(crate) fn one_slot(keys: &[&[u8]]) -> Option<u16> {
    let (first, rest) = keys.split_first()?;
    let first = slot(first);
    rest.iter().all(|key| slot(key) == first).then_some(first)
}

/// The positions of `keys` by slot.
pub(crate) fn by_slot(keys: &[&[u8]]) -> BTreeMap<u16, Vec<usize>> {
    let mut slots: BTreeMap<u16, Vec<usize>> = BTreeMap::new();
    for (at, key) in keys.iter().enumerate() {
        slots.entry(slot(key)).or_default().push(at);
    }
    slots
}

/// `name` with the keys at `members`.
pub(crate) fn multi_key(name: &[u8], keys: &[&[u8]], members: &[usize]) -> Cmd {
    let mut cmd = Cmd::new();
    cmd.arg(name);
    for &at in members {
        cmd.arg(keys[at]);
    }
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(args: &[&str]) -> Cmd {
        let mut cmd = Cmd::new();
        for arg in args {
            cmd.arg(*arg);
        }
        cmd
    }

    #[test]
    fn the_keys_of_each_command_are_found() {
        assert!(matches!(keys(&cmd(&["GET", "k"])), Keys::One(b"k")));
        assert!(matches!(
            keys(&cmd(&["SET", "k", "v", "PX", "5"])),
            Keys::One(b"k")
        ));
        assert!(matches!(
            keys(&cmd(&["EVAL", "script", "1", "lease", "token"])),
            Keys::One(b"lease")
        ));
        assert!(matches!(keys(&cmd(&["UNLINK", "a"])), Keys::One(b"a")));
        match keys(&cmd(&["MGET", "a", "b"])) {
            Keys::Many(name, keys) => {
                assert_eq!(name, b"MGET");
                assert_eq!(keys, [&b"a"[..], b"b"]);
            }
            _ => panic!("MGET has several keys"),
        }
        assert!(matches!(keys(&cmd(&["FLUSHDB", "ASYNC"])), Keys::None));
    }

    #[test]
    fn mget_replies_are_put_back_in_key_order() {
        let merge = Merge::Mget {
            len: 3,
            positions: vec![vec![vec![0, 2]], vec![vec![1]]],
        };
        let bulk = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let value = merge
            .finish(vec![
                Value::Array(vec![Value::Array(vec![bulk("a"), Value::Nil])]),
                Value::Array(vec![Value::Array(vec![bulk("b")])]),
            ])
            .unwrap();
        assert_eq!(value, Value::Array(vec![bulk("a"), bulk("b"), Value::Nil]));
        let sum = Merge::Sum
            .finish(vec![
                Value::Array(vec![Value::Int(1), Value::Int(2)]),
                Value::Array(vec![Value::Int(3)]),
            ])
            .unwrap();
        assert_eq!(sum, Value::Int(6));
    }

    #[test]
    fn an_error_among_pipeline_replies_is_the_error() {
        let moved = redis::parse_redis_value(b"-MOVED 3999 127.0.0.1:6381\r\n").unwrap();
        let err = Merge::Ignored
            .finish(vec![Value::Array(vec![Value::Okay, moved])])
            .unwrap_err();
        let source = std::error::Error::source(&err)
            .and_then(|s| s.downcast_ref::<RedisError>())
            .unwrap();
        assert_eq!(source.redirect_node(), Some(("127.0.0.1:6381", 3999)));
    }

    #[test]
    fn keys_of_several_slots_are_grouped_by_slot() {
        let keys: Vec<&[u8]> = vec![b"a", b"b", b"{a}x", b"c"];
        let slots = by_slot(&keys);
        assert_eq!(slots[&slot(b"a")], [0, 2]);
        assert_eq!(slots.len(), 3);
        assert_eq!(one_slot(&[b"{t}1", b"{t}2"]), Some(slot(b"t")));
        assert_eq!(one_slot(&keys), None);
    }
}
