//! Blocking connections that keep to their time-outs.
//!
//! The `redis` crate reads each reply of a pipeline, and of the connection handshake (itself
//! a pipeline), with the whole socket time-out, so on a hung server a pipeline of `n`
//! commands costs `n` time-outs. Here:
//!
//! - [`Connector`] opens connections whose handshake skips the two optional
//!   `CLIENT SETINFO` commands and splits the connect time-out between its remaining steps
//!   (`AUTH`, `SELECT`), so connecting takes at most the connect time-out;
//! - [`query_pipeline`] reads a pipeline's replies against one deadline, so a pipeline
//!   takes at most one response time-out.

use std::time::{Duration, Instant};

use redis::{Client, Connection, ConnectionLike, Pipeline, RedisResult, Value};

use cache_core::Result;

use crate::error::from_redis;

/// Opens blocking connections (for the pool and the breaker's probe) within the connect
/// time-out, handshake included. See the module docs.
#[derive(Clone)]
pub(crate) struct Connector {
    client: Client,
    /// The time-out of each step: the connect time-out over the handshake's steps.
    step: Duration,
    response: Duration,
}

impl Connector {
    /// A connector for `client`'s server.
    pub(crate) fn new(client: &Client, connect: Duration, response: Duration) -> Self {
        let info = client.get_connection_info();
        let settings = info.redis_settings().clone().set_skip_set_lib_name();
        let steps =
            u32::from(settings.password().is_some() || settings.protocol().supports_resp3())
                + u32::from(settings.db() != 0);
        // The same target (TLS parameters included); the unchanged client if that fails.
        let client = Client::open(info.clone().set_redis_settings(settings))
            .unwrap_or_else(|_| client.clone());
        Self {
            client,
            step: connect / steps.max(1),
            response,
        }
    }

    /// A connection with socket read and write time-outs, opened within `limit` too if
    /// given.
    #[cold]
    pub(crate) fn connect(&self, limit: Option<Duration>) -> RedisResult<Connection> {
        let step = limit.map_or(self.step, |limit| limit.min(self.step));
        let conn = self.client.get_connection_with_timeout(step)?;
        conn.set_read_timeout(Some(self.response))?;
        conn.set_write_timeout(Some(self.response))?;
        tracing::debug!(target: "cache_redis", "blocking connection to Redis opened");
        Ok(conn)
    }

    /// The breaker's probe: a fresh connection and a `PING`, each within its time-out.
    pub(crate) fn ping(&self) -> Result<()> {
        let mut conn = self.connect(None).map_err(from_redis)?;
        redis::cmd("PING")
            .query::<()>(&mut conn)
            .map_err(from_redis)
    }
}

/// Sends `pipe` on `conn` and reads its replies within `timeout` in all. The connection's
/// read time-out is left at what remained: the caller sets it back.
pub(crate) fn query_pipeline(
    conn: &mut Connection,
    pipe: &Pipeline,
    timeout: Duration,
) -> RedisResult<Value> {
    let mut deadlined = Deadlined { conn, timeout };
    pipe.query::<Value>(&mut deadlined)
}

/// A connection whose pipelines share one deadline: `Pipeline::query` runs its own
/// bookkeeping (ignored commands, errors) on top of [`ConnectionLike::req_packed_commands`].
struct Deadlined<'a> {
    conn: &'a mut Connection,
    timeout: Duration,
}

impl Deadlined<'_> {
    fn read_all(&mut self, offset: usize, count: usize) -> RedisResult<Vec<Value>> {
        let deadline = Instant::now() + self.timeout;
        let mut replies = Vec::with_capacity(count);
        let mut index = 0;
        while index < offset + count {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(std::io::Error::from(std::io::ErrorKind::TimedOut).into());
            }
            self.conn.set_read_timeout(Some(left))?;
            match self.conn.recv_response()? {
                // RESP3 may put push data between replies: not a reply.
                Value::Push { .. } => continue,
                reply if index >= offset => replies.push(reply),
                _ => {}
            }
            index += 1;
        }
        Ok(replies)
    }
}

impl ConnectionLike for Deadlined<'_> {
    fn req_packed_command(&mut self, cmd: &[u8]) -> RedisResult<Value> {
        self.conn.req_packed_command(cmd)
    }

    fn req_packed_commands(
        &mut self,
        cmd: &[u8],
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        self.conn.send_packed_command(cmd)?;
        self.read_all(offset, count)
    }

    fn get_db(&self) -> i64 {
        self.conn.get_db()
    }

    fn check_connection(&mut self) -> bool {
        self.conn.check_connection()
    }

    fn is_open(&self) -> bool {
        self.conn.is_open()
    }
}
