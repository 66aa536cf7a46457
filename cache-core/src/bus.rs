//! The change channel a shared backend offers to the near cache: a blocking publish and a
//! blocking subscription to one channel, scoped to the cache's namespace and database.
//!
//! **Not for custom backends** (`#[doc(hidden)]` on [`crate::backend::Backend::bus`]): the
//! near cache's coherence protocol (numbered messages, heartbeats, gap detection) lives in
//! `cache-core` and needs only these two operations of the transport.

use std::fmt;
use std::time::Duration;

use crate::Result;

/// One change channel. Both operations block and are called only from the near cache's
/// own threads, never from a caller's path.
pub trait Bus: Send + Sync + fmt::Debug + 'static {
    /// Sends `message` to every current subscriber of the channel, this process's own
    /// subscription included. Bounded by the backend's I/O time-out.
    fn publish(&self, message: &[u8]) -> Result<()>;

    /// Subscribes to the channel; returns once the server has confirmed the subscription.
    /// Bounded by the backend's I/O time-out.
    fn subscribe(&self) -> Result<Box<dyn Subscription>>;
}

/// A confirmed subscription to a [`Bus`]'s channel.
pub trait Subscription: Send + 'static {
    /// Waits at most `timeout` for the next message: `Ok(Some(message))`, `Ok(None)` when
    /// none arrived in time, `Err` when the subscription is lost (connection closed or
    /// reset, server gone, unsubscribed by the server, for example after a slot moved). A
    /// lost subscription is never used again: the caller flushes what it may have missed and
    /// subscribes anew.
    fn next(&mut self, timeout: Duration) -> Result<Option<Vec<u8>>>;
}
