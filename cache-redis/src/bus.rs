//! The near cache's change channel on Redis: the [`Bus`] of `RedisBackend::bus`.
//!
//! **The channel** is `<namespace>~near:<db>`, such as `cache:~near:0` ([`channel`]): the
//! cache's namespace (already escaped, so it holds no `{` or `}`, and any that a caller
//! passes are written `%7B`/`%7D`) and the data nodes' database, because Redis pub/sub
//! channels are shared by every database of a server. It holds nothing else: no host, no
//! user, no password.
//!
//! - **One server and Sentinel.** [`Bus::publish`] is one `PUBLISH` on a blocking
//!   connection of the backend's pool (to the master of the moment on Sentinel), so it is
//!   bounded by the backend's time-outs and goes through its circuit breaker.
//!   [`Bus::subscribe`] opens a connection of its own (same target, credentials and TLS as
//!   the pool's, always RESP3: see [`Server::dedicated_blocking`]) and returns once the
//!   server confirmed `SUBSCRIBE`.
//! - **Cluster.** Sharded pub/sub: `SPUBLISH` is routed like a key to the primary of the
//!   channel's slot (`MOVED` followed), and `SSUBSCRIBE` goes to that primary (after a
//!   `MOVED` answer, once more to the primary it names).
//!
//! A subscription is lost (its `next` returns `Err`, see [`subscription`]) when its
//! connection closes or resets, when the server unsubscribes it (a cluster slot that moved
//! away), and when its node no longer serves the channel: on Sentinel once the backend
//! follows the master elsewhere, on a cluster once the slot map names another primary
//! (checked when `next` starts and when its wait ends, so within one `next` time-out of
//! the backend noticing). A paused server loses nothing by itself: `next` waits out its
//! time-out and returns `Ok(None)`.
//!
//! [`Server::dedicated_blocking`]: crate::server::Server::dedicated_blocking

mod subscription;

use std::fmt;

use cache_core::Result;
use cache_core::bus::{Bus, Subscription};

use crate::server::Request;
use crate::topology::Topology;
use subscription::RedisSubscription;

/// What a bus needs of its backend: a cheap clone that shares where commands go (the
/// backend itself, whose `Debug` shows its target without a password).
pub(crate) trait Deployment: fmt::Debug + Clone + Send + Sync + 'static {
    /// Where commands go.
    fn topology(&self) -> &Topology;
}

/// The channel of `namespace` in database `db`: `<namespace>~near:<db>`, braces escaped.
pub(crate) fn channel(namespace: &str, db: i64) -> String {
    let mut channel = String::with_capacity(namespace.len() + 12);
    for c in namespace.chars() {
        match c {
            '{' => channel.push_str("%7B"),
            '}' => channel.push_str("%7D"),
            c => channel.push(c),
        }
    }
    channel.push_str("~near:");
    channel.push_str(&db.to_string());
    channel
}

/// The change channel of one namespace on a backend. See the module docs.
pub(crate) struct RedisBus<D> {
    backend: D,
    channel: String,
    /// Sharded pub/sub (`SPUBLISH`, `SSUBSCRIBE`): on a cluster.
    sharded: bool,
}

impl<D: Deployment> fmt::Debug for RedisBus<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBus")
            .field("channel", &self.channel)
            .field("sharded", &self.sharded)
            .field("backend", &self.backend)
            .finish()
    }
}

impl<D: Deployment> RedisBus<D> {
    /// The bus of `namespace` on `backend`.
    pub(crate) fn new(backend: D, namespace: &str) -> Self {
        let topology = backend.topology();
        let channel = channel(namespace, topology.db());
        let sharded = topology.is_cluster();
        Self {
            backend,
            channel,
            sharded,
        }
    }

    fn command(&self, unsharded: &str, sharded: &str) -> redis::Cmd {
        let mut cmd = redis::cmd(if self.sharded { sharded } else { unsharded });
        cmd.arg(self.channel.as_bytes());
        cmd
    }
}

impl<D: Deployment> Bus for RedisBus<D> {
    fn publish(&self, message: &[u8]) -> Result<()> {
        let mut cmd = self.command("PUBLISH", "SPUBLISH");
        cmd.arg(message);
        self.backend
            .topology()
            .query_blocking(Request::Cmd(&cmd))
            .map(drop)
    }

    fn subscribe(&self) -> Result<Box<dyn Subscription>> {
        let topology = self.backend.topology();
        let cmd = self.command("SUBSCRIBE", "SSUBSCRIBE").get_packed_command();
        let mut redirected = false;
        loop {
            let home = topology.home_blocking(self.channel.as_bytes())?;
            match subscription::open(topology.server_of(&home), &cmd, self.channel.as_bytes()) {
                Ok(conn) => {
                    tracing::debug!(target: "cache_redis", channel = %self.channel, "subscribed to the near cache's channel");
                    return Ok(Box::new(RedisSubscription::new(
                        conn,
                        self.backend.clone(),
                        home,
                        self.channel.as_bytes(),
                    )));
                }
                Err(error) => {
                    // Once more after a `MOVED`, to the primary it names, and only once.
                    let again = topology.after_error(&home, &error);
                    if !again || redirected {
                        return Err(error);
                    }
                    redirected = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_channel_is_the_namespace_and_the_database_with_no_brace() {
        assert_eq!(channel("cache:", 0), "cache:~near:0");
        assert_eq!(channel("a%3Ab:", 12), "a%3Ab:~near:12");
        assert_eq!(channel("", 3), "~near:3");
        assert_eq!(channel("x{tag}:", 0), "x%7Btag%7D:~near:0");
    }
}
