//! The commands each operation sends and how their replies are read, shared by the async and
//! the blocking halves (only the I/O differs between them).
//!
//! | operation | commands |
//! |---|---|
//! | `get` | `GET key` |
//! | `get_many` | `MGET k1 k2 ...` |
//! | `set` | `SET key value PX ms` (no `PX` without a time-to-live) |
//! | `set_many` | one pipeline of `SET key value PX ms` |
//! | `add` | `SET key value NX PX ms` |
//! | `delete`, `delete_many` | `UNLINK k1 k2 ...` |
//! | `exists` | `EXISTS key` |
//! | `delete_if_equal` | `EVAL` of a three-line compare-and-delete script |
//! | `acquire_lease` | `EVALSHA` of [`ACQUIRE_LEASE`] (`EVAL` after `NOSCRIPT`) |
//! | `set_releasing` | `EVALSHA` of [`SET_RELEASING`] (`EVAL` after `NOSCRIPT`) |
//! | `delete_prefix` | `SCAN cursor MATCH <escaped prefix>* COUNT 500`, then `UNLINK` per batch |

use std::sync::LazyLock;
use std::time::Duration;

use bytes::Bytes;
use cache_core::backend::{Acquired, Ttl};
use cache_core::{Error, ErrorKind, Result};
use redis::{Cmd, Pipeline, Script, Value};

/// Keys examined per `SCAN` call.
pub(crate) const SCAN_COUNT: usize = 500;

/// Room for `PX <ms>`: two arguments, at most 22 bytes.
const TTL_ARGS: (usize, usize) = (2, 22);

/// A command named `name` with room for `args` more arguments of `data` bytes in all, so
/// building it allocates each buffer once instead of growing it.
#[inline]
fn command(name: &'static str, args: usize, data: usize) -> Cmd {
    let mut cmd = Cmd::with_capacity(1 + args, name.len() + data);
    cmd.arg(name);
    cmd
}

#[inline]
pub(crate) fn get(key: &str) -> Cmd {
    let mut cmd = command("GET", 1, key.len());
    cmd.arg(key);
    cmd
}

pub(crate) fn get_many(keys: &[&str]) -> Cmd {
    let mut cmd = command("MGET", keys.len(), keys.iter().map(|key| key.len()).sum());
    cmd.arg(keys);
    cmd
}

pub(crate) fn set(key: &str, value: &[u8], ttl: Ttl) -> Cmd {
    let mut cmd = command("SET", 2 + TTL_ARGS.0, key.len() + value.len() + TTL_ARGS.1);
    cmd.arg(key).arg(value);
    with_ttl(&mut cmd, ttl);
    cmd
}

pub(crate) fn set_many(entries: &[(&str, Bytes)], ttl: Ttl) -> Pipeline {
    let mut pipe = redis::pipe();
    for (key, value) in entries {
        pipe.add_command(set(key, value, ttl)).ignore();
    }
    pipe
}

pub(crate) fn add(key: &str, value: &[u8], ttl: Ttl) -> Cmd {
    let mut cmd = command(
        "SET",
        3 + TTL_ARGS.0,
        key.len() + value.len() + 2 + TTL_ARGS.1,
    );
    cmd.arg(key).arg(value).arg("NX");
    with_ttl(&mut cmd, ttl);
    cmd
}

pub(crate) fn unlink<K: redis::ToRedisArgs>(keys: &[K]) -> Cmd {
    let mut cmd = redis::cmd("UNLINK");
    cmd.arg(keys);
    cmd
}

pub(crate) fn exists(key: &str) -> Cmd {
    let mut cmd = command("EXISTS", 1, key.len());
    cmd.arg(key);
    cmd
}

/// Deletes `KEYS[1]` only if it holds `ARGV[1]`, atomically: releases a stampede lease
/// without removing one another caller took since.
const DELETE_IF_EQUAL: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
                               return redis.call('DEL', KEYS[1]) else return 0 end";

pub(crate) fn delete_if_equal(key: &str, expected: &[u8]) -> Cmd {
    // Plain EVAL: Redis caches the compiled script by its hash, and leases are released
    // once per computation, not per hit.
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(DELETE_IF_EQUAL).arg(1).arg(key).arg(expected);
    cmd
}

/// A leased miss's second look and lease in one: the value under `KEYS[1]` if it holds a
/// string; else `1` if the lease `KEYS[2]` was taken with token `ARGV[1]` for `ARGV[2]` ms,
/// `0` if another caller holds it. (`pcall`: a key of another type is a miss, as for `GET`.)
const ACQUIRE_LEASE: &str = "\
local value = redis.pcall('GET', KEYS[1])
if type(value) == 'string' then return value end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0";

/// A leased miss's store and release in one: `SET KEYS[1] ARGV[1]` (with `PX ARGV[2]` unless
/// it is empty), then the lease `KEYS[2]` deleted if it holds `ARGV[3]`, even when the store
/// failed (`pcall`); the reply is the store's.
const SET_RELEASING: &str = "\
local stored
if ARGV[2] == '' then stored = redis.pcall('SET', KEYS[1], ARGV[1])
else stored = redis.pcall('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) end
if redis.call('GET', KEYS[2]) == ARGV[3] then redis.call('DEL', KEYS[2]) end
return stored";

/// A script sent by its hash (`EVALSHA`), and in full (`EVAL`, which also loads it) when
/// the server does not know it (`NOSCRIPT`: restarted, failed over, `SCRIPT FLUSH`).
struct Lua {
    source: &'static str,
    script: LazyLock<Script>,
}

impl Lua {
    const fn new(source: &'static str, script: fn() -> Script) -> Self {
        Self {
            source,
            script: LazyLock::new(script),
        }
    }

    /// `EVALSHA hash 2 keys... args...`, or `EVAL source 2 keys... args...` when
    /// `in_full`.
    fn command(&self, in_full: bool, keys: [&str; 2], args: &[&[u8]]) -> Cmd {
        let (name, body) = if in_full {
            ("EVAL", self.source)
        } else {
            ("EVALSHA", self.script.get_hash())
        };
        let data = body.len()
            + 1
            + keys.iter().map(|key| key.len()).sum::<usize>()
            + args.iter().map(|arg| arg.len()).sum::<usize>();
        let mut cmd = command(name, 4 + args.len(), data);
        cmd.arg(body).arg(2).arg(keys[0]).arg(keys[1]);
        for arg in args {
            cmd.arg(*arg);
        }
        cmd
    }
}

static ACQUIRE: Lua = Lua::new(ACQUIRE_LEASE, || Script::new(ACQUIRE_LEASE));
static STORE_RELEASING: Lua = Lua::new(SET_RELEASING, || Script::new(SET_RELEASING));

/// [`ACQUIRE_LEASE`] for `key` and `lease_key`, by hash or in full.
pub(crate) fn acquire_lease(
    in_full: bool,
    key: &str,
    lease_key: &str,
    token: &[u8],
    time: Duration,
) -> Cmd {
    let ms = millis(time).to_string();
    ACQUIRE.command(in_full, [key, lease_key], &[token, ms.as_bytes()])
}

/// [`SET_RELEASING`] for `key` and `lease_key`, by hash or in full.
pub(crate) fn set_releasing(
    in_full: bool,
    key: &str,
    value: &[u8],
    ttl: Ttl,
    lease_key: &str,
    token: &[u8],
) -> Cmd {
    let ms = ttl.map(|ttl| millis(ttl).to_string()).unwrap_or_default();
    STORE_RELEASING.command(in_full, [key, lease_key], &[value, ms.as_bytes(), token])
}

/// The reply to [`ACQUIRE_LEASE`].
pub(crate) fn acquire_reply(value: Value) -> Result<Acquired> {
    match value {
        Value::Int(1) => Ok(Acquired::Taken),
        Value::Int(0) => Ok(Acquired::Busy),
        Value::BulkString(bytes) => Ok(Acquired::Value(Bytes::from(bytes))),
        other => Err(unexpected("the lease script", &other)),
    }
}

pub(crate) fn flush_database() -> Cmd {
    let mut cmd = redis::cmd("FLUSHDB");
    cmd.arg("ASYNC");
    cmd
}

fn with_ttl(cmd: &mut Cmd, ttl: Ttl) {
    if let Some(ttl) = ttl {
        cmd.arg("PX").arg(millis(ttl));
    }
}

/// `ttl` in whole milliseconds for `PX`: Redis rejects `PX 0`, so a positive ttl below a
/// millisecond becomes one millisecond.
fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

fn unexpected(what: &str, value: &Value) -> Error {
    Error::new(
        ErrorKind::Backend,
        format!("unexpected Redis reply to {what}: {value:?}"),
    )
}

/// A `GET` reply: bytes, or nothing. Any non-string reply is a miss.
#[inline]
pub(crate) fn value_reply(value: Value) -> Option<Bytes> {
    match value {
        Value::BulkString(bytes) => Some(Bytes::from(bytes)),
        Value::SimpleString(s) => Some(Bytes::from(s.into_bytes())),
        _ => None,
    }
}

pub(crate) fn get_many_reply(value: Value, expected: usize) -> Result<Vec<Option<Bytes>>> {
    match value {
        Value::Array(items) if items.len() == expected => {
            Ok(items.into_iter().map(value_reply).collect())
        }
        other => Err(unexpected("MGET", &other)),
    }
}

/// `SET ... NX`: `OK` if stored, nil if the key held a value.
pub(crate) fn add_reply(value: &Value) -> Result<bool> {
    match value {
        Value::Okay | Value::SimpleString(_) => Ok(true),
        Value::Nil => Ok(false),
        other => Err(unexpected("SET NX", other)),
    }
}

pub(crate) fn count_reply(what: &str, value: &Value) -> Result<u64> {
    match value {
        Value::Int(n) => Ok(u64::try_from(*n).unwrap_or(0)),
        other => Err(unexpected(what, other)),
    }
}

/// `delete_prefix` without I/O: it hands out the next command and reads its reply, so the
/// async and blocking halves only differ in how they send.
///
/// It alternates `SCAN` and, for each non-empty batch, `UNLINK`, until the cursor is back at
/// zero. The prefix is glob-escaped, so it matches only keys that start with it literally.
#[derive(Debug)]
pub(crate) struct PrefixDeletion {
    pattern: String,
    cursor: u64,
    started: bool,
    batch: Vec<Vec<u8>>,
    deleted: u64,
}

impl PrefixDeletion {
    pub(crate) fn new(prefix: &str) -> Self {
        let mut pattern = cache_core::key::escape_glob(prefix);
        pattern.push('*');
        Self {
            pattern,
            cursor: 0,
            started: false,
            batch: Vec::new(),
            deleted: 0,
        }
    }

    /// The next command to send, or `None` when done.
    pub(crate) fn next_command(&mut self) -> Option<Cmd> {
        if !self.batch.is_empty() {
            return Some(unlink(&self.batch));
        }
        if self.started && self.cursor == 0 {
            return None;
        }
        self.started = true;
        let mut cmd = redis::cmd("SCAN");
        cmd.arg(self.cursor)
            .arg("MATCH")
            .arg(&self.pattern)
            .arg("COUNT")
            .arg(SCAN_COUNT);
        Some(cmd)
    }

    /// Reads the reply to the command [`next_command`](Self::next_command) gave.
    pub(crate) fn on_reply(&mut self, reply: Value) -> Result<()> {
        if !self.batch.is_empty() {
            self.deleted += count_reply("UNLINK", &reply)?;
            self.batch.clear();
            return Ok(());
        }
        let Value::Array(mut parts) = reply else {
            return Err(unexpected("SCAN", &reply));
        };
        let (Some(Value::Array(keys)), Some(cursor)) = (parts.pop(), parts.pop()) else {
            return Err(unexpected("SCAN", &Value::Array(parts)));
        };
        self.cursor = match &cursor {
            Value::BulkString(bytes) => std::str::from_utf8(bytes)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| unexpected("SCAN", &cursor))?,
            other => return Err(unexpected("SCAN", other)),
        };
        self.batch = keys
            .into_iter()
            .filter_map(|key| match key {
                Value::BulkString(key) => Some(key),
                _ => None,
            })
            .collect();
        Ok(())
    }

    /// How many keys were removed.
    pub(crate) fn deleted(&self) -> u64 {
        self.deleted
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn args(cmd: &Cmd) -> Vec<String> {
        cmd.args_iter()
            .map(|arg| match arg {
                redis::Arg::Simple(bytes) => String::from_utf8_lossy(bytes).into_owned(),
                _ => "<cursor>".to_owned(),
            })
            .collect()
    }

    #[test]
    fn set_has_px_only_with_a_ttl() {
        assert_eq!(args(&set("k", b"v", None)), ["SET", "k", "v"]);
        assert_eq!(
            args(&set("k", b"v", Some(Duration::from_secs(2)))),
            ["SET", "k", "v", "PX", "2000"]
        );
        assert_eq!(
            args(&set("k", b"v", Some(Duration::from_micros(10)))),
            ["SET", "k", "v", "PX", "1"]
        );
        assert_eq!(
            args(&add("k", b"v", Some(Duration::from_millis(5)))),
            ["SET", "k", "v", "NX", "PX", "5"]
        );
    }

    #[test]
    fn the_lease_scripts_go_by_hash_and_in_full_with_two_keys() {
        let by_hash = acquire_lease(false, "k", "k:~lease", b"tok", Duration::from_secs(5));
        let hash = Script::new(ACQUIRE_LEASE).get_hash().to_owned();
        assert_eq!(
            args(&by_hash),
            ["EVALSHA", &hash, "2", "k", "k:~lease", "tok", "5000"]
        );
        let in_full = acquire_lease(true, "k", "k:~lease", b"tok", Duration::from_secs(5));
        assert_eq!(args(&in_full)[..2], ["EVAL", ACQUIRE_LEASE]);
        assert_eq!(
            args(&set_releasing(false, "k", b"v", None, "k:~lease", b"tok"))[2..],
            ["2", "k", "k:~lease", "v", "", "tok"],
            "no time-to-live: an empty PX argument"
        );
        assert_eq!(
            args(&set_releasing(
                false,
                "k",
                b"v",
                Some(Duration::from_micros(3)),
                "k:~lease",
                b"tok"
            ))[6],
            "1"
        );
    }

    #[test]
    fn the_look_and_lease_reply_is_a_value_taken_or_busy() {
        assert_eq!(
            acquire_reply(Value::BulkString(b"v".to_vec())).unwrap(),
            Acquired::Value(Bytes::from_static(b"v"))
        );
        assert_eq!(acquire_reply(Value::Int(1)).unwrap(), Acquired::Taken);
        assert_eq!(acquire_reply(Value::Int(0)).unwrap(), Acquired::Busy);
        assert!(acquire_reply(Value::Nil).is_err());
    }

    #[test]
    fn prefix_deletion_escapes_globs_and_alternates_scan_and_unlink() {
        let mut job = PrefixDeletion::new("ns*[x]?\\:");
        let scan = job.next_command().unwrap();
        assert_eq!(
            args(&scan),
            ["SCAN", "0", "MATCH", r"ns\*\[x\]\?\\:*", "COUNT", "500"]
        );
        job.on_reply(Value::Array(vec![
            Value::BulkString(b"17".to_vec()),
            Value::Array(vec![Value::BulkString(b"a".to_vec())]),
        ]))
        .unwrap();
        assert_eq!(args(&job.next_command().unwrap()), ["UNLINK", "a"]);
        job.on_reply(Value::Int(1)).unwrap();
        assert_eq!(args(&job.next_command().unwrap())[..2], ["SCAN", "17"]);
        job.on_reply(Value::Array(vec![
            Value::BulkString(b"0".to_vec()),
            Value::Array(vec![]),
        ]))
        .unwrap();
        assert!(job.next_command().is_none());
        assert_eq!(job.deleted(), 1);
    }
}
