//! Multi-key requests during a slot migration, without I/O: the commands of a per-node
//! pipeline that a node turned away, resent key by key, and their replies put back.
//!
//! While a slot moves (`CLUSTER SETSLOT .. MIGRATING` on the source, `IMPORTING` on the
//! target, then `MIGRATE` key by key), the source answers a command of that slot with
//!
//! - `ASK <slot> <target>` when none of its keys is still there: every key is sent to the
//!   target, each after `ASKING` (one key per command, because the target refuses a
//!   multi-key command with `TRYAGAIN` unless it holds every key, and a cache miss is a key
//!   it does not hold);
//! - `TRYAGAIN` when only some are (a multi-key command): every key is sent to the source on
//!   its own, and a key the source then answers with `ASK` is sent to the target after
//!   `ASKING`.
//!
//! So a turned-away command costs at most two more rounds, and a key is sent at most twice.
//! The per-key replies then make the reply of the command they replace: the values in key
//! order for `MGET`, the sum of the counts for `UNLINK`, `DEL`, `EXISTS` and `TOUCH`, the one
//! reply for a single-key command (a `SET` of `set_many`). An error among them stays an
//! error, which the merge of the whole request reports as before. The cluster topology
//! (`crate::cluster`) does the I/O.

use redis::{Cmd, Pipeline, RedisError, ServerErrorKind, Value};

use crate::slots::Addr;
use crate::split::{Keys, keys};

/// Where a per-key command goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum To {
    /// The node of the plan's part at this index (the slot's owner in the map), as is.
    Part(usize),
    /// The node an `ASK` named, after `ASKING`.
    Asked(Addr),
}

/// Why a node turned a command away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Turn {
    /// `ASK`: none of its keys is on the source any more; this node has them.
    Ask(Addr),
    /// `TRYAGAIN`: some of its keys are.
    TryAgain,
}

impl Turn {
    /// Why `error` turned a command away, if it is an `ASK` or a `TRYAGAIN`.
    pub(crate) fn of(error: &RedisError) -> Option<Self> {
        match error.kind() {
            redis::ErrorKind::Server(ServerErrorKind::Ask) => {
                Some(Self::Ask(Addr::parse(error.redirect_node()?.0)?))
            }
            redis::ErrorKind::Server(ServerErrorKind::TryAgain) => Some(Self::TryAgain),
            _ => None,
        }
    }

    fn of_reply(reply: &Value) -> Option<Self> {
        match reply {
            Value::ServerError(error) => Self::of(&RedisError::from(error.clone())),
            _ => None,
        }
    }
}

/// The turned-away commands of one multi-key request, and where their keys stand.
#[derive(Debug)]
pub(crate) struct Migration {
    commands: Vec<Turned>,
    /// For each pipeline the last [`next`](Self::next) gave, the (command, key) of each of
    /// its commands, in order.
    in_flight: Vec<Vec<KeyAt>>,
}

/// A key of a turned-away command: the command's index, the key's index in it.
type KeyAt = (usize, usize);

/// One command a node turned away: where its reply goes, and its keys' commands.
#[derive(Debug)]
struct Turned {
    part: usize,
    index: usize,
    combine: Combine,
    keys: Vec<Key>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Combine {
    /// A single-key command: its one reply.
    Only,
    /// `MGET`: the values in key order.
    Values,
    /// A count per key, summed.
    Sum,
}

#[derive(Debug)]
struct Key {
    cmd: Cmd,
    state: State,
}

#[derive(Debug)]
enum State {
    Pending(To),
    /// Sent; `asked` once it went to an `ASK`'s target.
    Sent {
        asked: bool,
    },
    Done(Value),
}

impl Migration {
    /// The commands of `pipelines` (the parts of a multi-key plan, in order, with no
    /// ignored command, so that reply `i` is command `i`'s) whose replies (one array per
    /// part) are `ASK` or `TRYAGAIN`; `None` if there is none.
    pub(crate) fn find(pipelines: &[&Pipeline], replies: &[Value]) -> Option<Self> {
        let mut commands = Vec::new();
        for (part, (pipe, reply)) in pipelines.iter().zip(replies).enumerate() {
            let Value::Array(items) = reply else {
                continue;
            };
            for ((index, item), cmd) in items.iter().enumerate().zip(pipe.cmd_iter()) {
                if let Some(turned) =
                    Turn::of_reply(item).and_then(|turn| Turned::new(part, index, cmd, turn))
                {
                    commands.push(turned);
                }
            }
        }
        (!commands.is_empty()).then_some(Self {
            commands,
            in_flight: Vec::new(),
        })
    }

    /// A multi-key command of one slot that a node turned away for `turn`, as the one
    /// command of part 0's pipeline: [`patch`](Self::patch) then fills a
    /// `[Value::Array(vec![_])]`.
    pub(crate) fn of_command(cmd: &Cmd, turn: Turn) -> Option<Self> {
        if !matches!(keys(cmd), Keys::Many(..)) {
            return None;
        }
        Some(Self {
            commands: vec![Turned::new(0, 0, cmd, turn)?],
            in_flight: Vec::new(),
        })
    }

    /// The next pipelines to send, one per node; empty once every key has its reply.
    pub(crate) fn next(&mut self) -> Vec<(To, Pipeline)> {
        let mut sends: Vec<(To, Pipeline, Vec<KeyAt>)> = Vec::new();
        for (at, command) in self.commands.iter_mut().enumerate() {
            for (key_at, key) in command.keys.iter_mut().enumerate() {
                let State::Pending(to) = &key.state else {
                    continue;
                };
                let to = to.clone();
                let send = match sends.iter().position(|(t, _, _)| *t == to) {
                    Some(send) => send,
                    None => {
                        let mut pipe = redis::pipe();
                        pipe.ignore_errors();
                        sends.push((to.clone(), pipe, Vec::new()));
                        sends.len() - 1
                    }
                };
                let (_, pipe, members) = &mut sends[send];
                let asked = matches!(to, To::Asked(_));
                if asked {
                    pipe.cmd("ASKING").ignore();
                }
                pipe.add_command(key.cmd.clone());
                members.push((at, key_at));
                key.state = State::Sent { asked };
            }
        }
        self.in_flight = sends
            .iter()
            .map(|(_, _, members)| members.clone())
            .collect();
        sends.into_iter().map(|(to, pipe, _)| (to, pipe)).collect()
    }

    /// Reads the replies of the pipelines [`next`](Self::next) gave, in order: a key its
    /// owner answered with `ASK` goes to the named node next, every other reply is final.
    pub(crate) fn on_replies(&mut self, replies: Vec<Value>) {
        let in_flight = std::mem::take(&mut self.in_flight);
        for (reply, members) in replies.into_iter().zip(in_flight) {
            let items = match reply {
                Value::Array(items) => items,
                other => vec![other],
            };
            for (item, (at, key_at)) in items.into_iter().zip(members) {
                let key = &mut self.commands[at].keys[key_at];
                key.state = match (&key.state, Turn::of_reply(&item)) {
                    (State::Sent { asked: false }, Some(Turn::Ask(addr))) => {
                        State::Pending(To::Asked(addr))
                    }
                    _ => State::Done(item),
                };
            }
        }
        // A key whose reply is missing (a short reply) is final as it stands.
        for command in &mut self.commands {
            for key in &mut command.keys {
                if let State::Sent { .. } = key.state {
                    key.state = State::Done(no_reply());
                }
            }
        }
    }

    /// Puts the reply each turned-away command now has into `replies` (one array per
    /// part), in place of its `ASK` or `TRYAGAIN`.
    pub(crate) fn patch(self, replies: &mut [Value]) {
        for command in self.commands {
            let Some(Value::Array(items)) = replies.get_mut(command.part) else {
                continue;
            };
            if let Some(item) = items.get_mut(command.index) {
                *item = command.reply();
            }
        }
    }
}

impl Turned {
    /// `cmd` (the command at `index` of part `part`), turned away for `turn`.
    fn new(part: usize, index: usize, cmd: &Cmd, turn: Turn) -> Option<Self> {
        let to = match turn {
            Turn::Ask(addr) => To::Asked(addr),
            Turn::TryAgain => To::Part(part),
        };
        let (combine, cmds) = match keys(cmd) {
            // A single key cannot be split: `TRYAGAIN` is final for it.
            Keys::One(_) if matches!(to, To::Asked(_)) => (Combine::Only, vec![cmd.clone()]),
            Keys::Many(name, keys) => {
                let mget = name.eq_ignore_ascii_case(b"MGET");
                let name: &[u8] = if mget { b"GET" } else { name };
                let per_key = keys.iter().map(|key| {
                    let mut cmd = Cmd::new();
                    cmd.arg(name).arg(*key);
                    cmd
                });
                let combine = if mget { Combine::Values } else { Combine::Sum };
                (combine, per_key.collect())
            }
            _ => return None,
        };
        let keys = cmds
            .into_iter()
            .map(|cmd| Key {
                cmd,
                state: State::Pending(to.clone()),
            })
            .collect();
        Some(Self {
            part,
            index,
            combine,
            keys,
        })
    }

    /// The reply of the whole command from its keys' replies (the first error, if any).
    fn reply(self) -> Value {
        let mut values = Vec::with_capacity(self.keys.len());
        for key in self.keys {
            match key.state {
                State::Done(Value::ServerError(error)) => return Value::ServerError(error),
                State::Done(value) => values.push(value),
                _ => return no_reply(),
            }
        }
        match self.combine {
            Combine::Only => values.pop().unwrap_or_else(no_reply),
            Combine::Values => Value::Array(values),
            Combine::Sum => {
                let mut total = 0;
                for value in values {
                    match value {
                        Value::Int(n) => total += n,
                        _ => return no_reply(),
                    }
                }
                Value::Int(total)
            }
        }
    }
}

/// An error reply for a key whose reply never came.
fn no_reply() -> Value {
    redis::parse_redis_value(
        b"-ERR a Redis Cluster node answered with fewer replies than commands\r\n",
    )
    .unwrap_or(Value::Nil)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Value {
        redis::parse_redis_value(text.as_bytes()).unwrap()
    }

    fn ask(port: u16) -> Value {
        parse(&format!("-ASK 42 127.0.0.1:{port}\r\n"))
    }

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    fn args(pipe: &Pipeline) -> Vec<Vec<String>> {
        pipe.cmd_iter()
            .map(|cmd| {
                cmd.args_iter()
                    .map(|arg| match arg {
                        redis::Arg::Simple(bytes) => String::from_utf8_lossy(bytes).into_owned(),
                        _ => String::new(),
                    })
                    .collect()
            })
            .collect()
    }

    fn target(port: u16) -> To {
        To::Asked(Addr {
            host: "127.0.0.1".into(),
            port,
        })
    }

    #[test]
    fn an_mget_turned_away_with_ask_goes_key_by_key_to_the_target_after_asking() {
        let mut first = redis::pipe();
        first.cmd("MGET").arg("a").arg("b");
        first.cmd("MGET").arg("c").arg("d");
        let mut replies = vec![Value::Array(vec![
            Value::Array(vec![bulk("1"), Value::Nil]),
            ask(7001),
        ])];
        let mut migration = Migration::find(&[&first], &replies).expect("one turned away");
        let sends = migration.next();
        assert_eq!(sends.len(), 1);
        assert_eq!(sends[0].0, target(7001));
        assert_eq!(
            args(&sends[0].1),
            [
                vec!["ASKING"],
                vec!["GET", "c"],
                vec!["ASKING"],
                vec!["GET", "d"]
            ]
        );
        // The `ASKING` replies are ignored by the pipeline itself.
        migration.on_replies(vec![Value::Array(vec![Value::Nil, bulk("4")])]);
        assert!(migration.next().is_empty(), "every key has its reply");
        migration.patch(&mut replies);
        assert_eq!(
            replies,
            [Value::Array(vec![
                Value::Array(vec![bulk("1"), Value::Nil]),
                Value::Array(vec![Value::Nil, bulk("4")]),
            ])]
        );
    }

    #[test]
    fn an_unlink_refused_with_tryagain_goes_key_by_key_to_the_source_then_to_asks() {
        let mut first = redis::pipe();
        first.cmd("UNLINK").arg("a").arg("b").arg("c");
        let second = redis::pipe();
        let mut replies = vec![
            Value::Array(vec![parse(
                "-TRYAGAIN Multiple keys request during rehashing of slot\r\n",
            )]),
            Value::Array(vec![]),
        ];
        let mut migration = Migration::find(&[&first, &second], &replies).unwrap();
        let sends = migration.next();
        assert_eq!(sends.len(), 1);
        assert_eq!(sends[0].0, To::Part(0));
        assert_eq!(
            args(&sends[0].1),
            [
                vec!["UNLINK", "a"],
                vec!["UNLINK", "b"],
                vec!["UNLINK", "c"]
            ]
        );
        migration.on_replies(vec![Value::Array(vec![
            Value::Int(1),
            ask(7002),
            ask(7002),
        ])]);
        let sends = migration.next();
        assert_eq!(sends.len(), 1);
        assert_eq!(sends[0].0, target(7002));
        assert_eq!(
            args(&sends[0].1),
            [
                vec!["ASKING"],
                vec!["UNLINK", "b"],
                vec!["ASKING"],
                vec!["UNLINK", "c"]
            ]
        );
        // An ASK from the target itself is final: a key is redirected once.
        migration.on_replies(vec![Value::Array(vec![Value::Int(1), ask(7003)])]);
        assert!(migration.next().is_empty());
        migration.patch(&mut replies);
        assert_eq!(replies[0], Value::Array(vec![ask(7003)]));
    }

    #[test]
    fn a_set_turned_away_with_ask_is_resent_after_asking_and_other_errors_stay() {
        let mut pipe = redis::pipe();
        pipe.cmd("SET").arg("a").arg("1");
        pipe.cmd("SET").arg("b").arg("2");
        pipe.cmd("SET").arg("c").arg("3");
        let oom = parse("-OOM command not allowed\r\n");
        let mut replies = vec![Value::Array(vec![Value::Okay, ask(7001), oom.clone()])];
        let mut migration = Migration::find(&[&pipe], &replies).unwrap();
        let sends = migration.next();
        assert_eq!(args(&sends[0].1), [vec!["ASKING"], vec!["SET", "b", "2"]]);
        migration.on_replies(vec![Value::Array(vec![Value::Okay])]);
        migration.patch(&mut replies);
        assert_eq!(
            replies[0],
            Value::Array(vec![Value::Okay, Value::Okay, oom])
        );
    }

    #[test]
    fn replies_without_ask_or_tryagain_need_no_migration() {
        let mut pipe = redis::pipe();
        pipe.cmd("MGET").arg("a").arg("b");
        let moved = parse("-MOVED 42 127.0.0.1:7001\r\n");
        assert!(Migration::find(&[&pipe], &[Value::Array(vec![moved])]).is_none());
        let tryagain = parse("-TRYAGAIN\r\n");
        let mut single = redis::pipe();
        single.cmd("SET").arg("a").arg("1");
        assert!(
            Migration::find(&[&single], &[Value::Array(vec![tryagain])]).is_none(),
            "a single key cannot be split"
        );
    }
}
