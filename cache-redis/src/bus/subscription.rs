//! One subscription to the near cache's channel: confirming it, and reading what its
//! dedicated RESP3 connection receives.
//!
//! What arrives is sorted without I/O by [`read`]: a message on the channel (`message`,
//! or `smessage` on a cluster), a confirmation (`subscribe`, `ssubscribe`), the server
//! unsubscribing the connection (`unsubscribe`, `sunsubscribe`: on a cluster, the slot
//! moved to another node), an error answer, or something else to skip. The connection's
//! reads wait at most what the caller's time-out leaves; a read time-out is `Ok(None)`,
//! any other read failure loses the subscription.

use std::time::{Duration, Instant};

use cache_core::bus::Subscription;
use cache_core::{Error, ErrorKind, Result};
use redis::{Connection, PushKind, Value};

use super::Deployment;
use crate::error::from_redis;
use crate::server::Server;
use crate::topology::Home;

/// The shortest read time-out set on the connection (zero is not one).
const SHORTEST_WAIT: Duration = Duration::from_millis(1);

/// What one value received on a subscription's connection is.
#[derive(Debug, PartialEq)]
pub(crate) enum Event {
    /// A message published on the channel.
    Message(Vec<u8>),
    /// The server confirmed the subscription to the channel.
    Confirmed,
    /// The server unsubscribed the connection from the channel.
    Unsubscribed,
    /// An error answer.
    Failed(redis::RedisError),
    /// Anything else (another channel's push, a reply to nothing we wait for).
    Other,
}

/// Sorts one value received on a subscription to `channel`.
pub(crate) fn read(value: Value, channel: &[u8]) -> Event {
    let Value::Push { kind, data } = value else {
        return match value.extract_error() {
            Err(error) => Event::Failed(error),
            Ok(_) => Event::Other,
        };
    };
    let mut data = data.into_iter();
    let on_channel = matches!(data.next(), Some(Value::BulkString(name)) if name == channel);
    if !on_channel {
        return Event::Other;
    }
    match kind {
        PushKind::Message | PushKind::SMessage => match data.next() {
            Some(Value::BulkString(message)) => Event::Message(message),
            _ => Event::Other,
        },
        PushKind::Subscribe | PushKind::SSubscribe => Event::Confirmed,
        PushKind::Unsubscribe | PushKind::SUnsubscribe => Event::Unsubscribed,
        _ => Event::Other,
    }
}

/// A dedicated connection to `server` subscribed to `channel` with `cmd` (a packed
/// `SUBSCRIBE` or `SSUBSCRIBE`), once the server confirmed it: within the connect time-out
/// to connect and one response time-out for the confirmation.
pub(crate) fn open(server: &Server, cmd: &[u8], channel: &[u8]) -> Result<Connection> {
    let mut conn = server.dedicated_blocking()?;
    conn.send_packed_command(cmd).map_err(from_redis)?;
    // The connection's read time-out is the response time-out: each read waits at most
    // that, and a fresh connection receives nothing before the confirmation but its answer.
    match read(conn.recv_response().map_err(from_redis)?, channel) {
        Event::Confirmed => Ok(conn),
        Event::Failed(error) => Err(from_redis(error)),
        other => Err(Error::new(
            ErrorKind::Backend,
            format!("Redis answered a subscription with {other:?} instead of confirming it"),
        )),
    }
}

/// A confirmed subscription: its connection, and the node it is on, for telling when that
/// node no longer serves the channel. See the module docs.
pub(crate) struct RedisSubscription<D> {
    conn: Connection,
    backend: D,
    home: Home,
    channel: Box<[u8]>,
    /// Lost once: never read again.
    lost: bool,
}

impl<D: Deployment> RedisSubscription<D> {
    pub(crate) fn new(conn: Connection, backend: D, home: Home, channel: &[u8]) -> Self {
        Self {
            conn,
            backend,
            home,
            channel: channel.into(),
            lost: false,
        }
    }

    /// `Err` once the node no longer serves the channel (the subscription is then lost).
    fn check_home(&mut self) -> Result<()> {
        if self.backend.topology().is_home(&self.home) {
            return Ok(());
        }
        Err(self.lose(Error::new(
            ErrorKind::Connection,
            "the node of the near cache's channel no longer serves it (a failover or a moved \
             slot): subscribe again",
        )))
    }

    #[cold]
    fn lose(&mut self, error: Error) -> Error {
        self.lost = true;
        tracing::debug!(target: "cache_redis", error = %format_args!("{error:#}"), "subscription to the near cache's channel lost");
        error
    }

    fn lost_error() -> Error {
        Error::new(
            ErrorKind::Connection,
            "this subscription to the near cache's channel was lost before: subscribe again",
        )
    }
}

impl<D: Deployment> Subscription for RedisSubscription<D> {
    fn next(&mut self, timeout: Duration) -> Result<Option<Vec<u8>>> {
        if self.lost {
            return Err(Self::lost_error());
        }
        self.check_home()?;
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if let Err(error) = self.conn.set_read_timeout(Some(left.max(SHORTEST_WAIT))) {
                return Err(self.lose(from_redis(error)));
            }
            let value = match self.conn.recv_response() {
                Ok(value) => value,
                Err(error) if error.is_timeout() => {
                    self.check_home()?;
                    return Ok(None);
                }
                Err(error) => return Err(self.lose(from_redis(error))),
            };
            match read(value, &self.channel) {
                Event::Message(message) => return Ok(Some(message)),
                Event::Unsubscribed => {
                    return Err(self.lose(Error::new(
                        ErrorKind::Connection,
                        "Redis unsubscribed the near cache's channel (its slot moved): \
                         subscribe again",
                    )));
                }
                Event::Failed(error) => return Err(self.lose(from_redis(error))),
                Event::Confirmed | Event::Other => {
                    if Instant::now() >= deadline {
                        self.check_home()?;
                        return Ok(None);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(kind: PushKind, data: Vec<Value>) -> Value {
        Value::Push { kind, data }
    }

    fn bulk(bytes: &[u8]) -> Value {
        Value::BulkString(bytes.to_vec())
    }

    #[test]
    fn messages_on_the_channel_are_messages_and_others_are_skipped() {
        let on = |kind, name: &[u8]| read(push(kind, vec![bulk(name), bulk(b"hi")]), b"ch");
        assert_eq!(on(PushKind::Message, b"ch"), Event::Message(b"hi".to_vec()));
        assert_eq!(
            on(PushKind::SMessage, b"ch"),
            Event::Message(b"hi".to_vec())
        );
        assert_eq!(on(PushKind::Message, b"other"), Event::Other);
        assert_eq!(on(PushKind::Invalidate, b"ch"), Event::Other);
        assert_eq!(
            read(Value::SimpleString("PONG".into()), b"ch"),
            Event::Other
        );
    }

    #[test]
    fn confirmations_and_unsubscriptions_of_the_channel_are_told_apart() {
        let on = |kind| read(push(kind, vec![bulk(b"ch"), Value::Int(1)]), b"ch");
        assert_eq!(on(PushKind::Subscribe), Event::Confirmed);
        assert_eq!(on(PushKind::SSubscribe), Event::Confirmed);
        assert_eq!(on(PushKind::Unsubscribe), Event::Unsubscribed);
        assert_eq!(on(PushKind::SUnsubscribe), Event::Unsubscribed);
    }

    #[test]
    fn an_error_answer_is_a_failure_that_keeps_its_redirect() {
        let moved = redis::parse_redis_value(b"-MOVED 12182 127.0.0.1:7002\r\n").unwrap();
        let Event::Failed(error) = read(moved, b"ch") else {
            panic!("not a failure");
        };
        assert_eq!(error.redirect_node(), Some(("127.0.0.1:7002", 12182)));
    }
}
