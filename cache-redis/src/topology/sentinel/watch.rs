//! Listening for `+switch-master`, so a failover is followed as soon as the Sentinels
//! announce it rather than at the next error.
//!
//! [`run`] is the body of a background thread: it subscribes to `+switch-master` on one
//! Sentinel (a plain blocking connection with the Sentinels' password), and hands every
//! announcement for this master to its [`Listener`]. The subscription reads with a
//! [`POLL`] time-out; after each quiet interval the thread checks that the backend still
//! exists (it holds only a [`Weak`] reference, so dropping the backend ends it within one
//! interval) and sends `PING`, so a Sentinel that died or hangs is noticed within about two
//! intervals. Then it moves to the next Sentinel, and tells the listener that it
//! resubscribed, since an announcement may have been missed meanwhile. When no Sentinel
//! can be reached it pauses one interval per round.

use std::sync::{Arc, Weak};
use std::time::Duration;

use redis::{Client, Msg, RedisResult, Value};

use crate::blocking::Connector;

use super::settings::{Addr, Settings, sentinel_addr};

/// How long the subscription waits for a message before checking the backend and the
/// Sentinel.
pub(crate) const POLL: Duration = Duration::from_millis(500);

/// The channel Sentinels announce a new master on.
const CHANNEL: &str = "+switch-master";

/// What the watcher reports to.
pub(crate) trait Listener: Send + Sync + Sized {
    /// The Sentinels announced that the master is now at `to`.
    fn switched(self: &Arc<Self>, to: Addr);
    /// The watcher subscribed again after losing its Sentinel: a switch may have been
    /// announced meanwhile.
    fn resubscribed(self: &Arc<Self>);
}

/// Watches until `listener` is dropped. See the module docs.
pub(crate) fn run<L: Listener>(listener: &Weak<L>, settings: &Settings) {
    let mut subscriptions = 0u64;
    let mut failures_in_a_row = 0;
    for sentinel in settings.sentinels.iter().cycle() {
        if listener.strong_count() == 0 {
            return;
        }
        let before = subscriptions;
        match listen(listener, settings, sentinel, &mut subscriptions) {
            Ok(()) => return,
            Err(error) => {
                if subscriptions != before {
                    // It was subscribed: a Sentinel that failed later, not one in a row.
                    failures_in_a_row = 0;
                }
                tracing::debug!(
                    target: "cache_redis",
                    sentinel = %sentinel_addr(sentinel),
                    %error,
                    "lost the +switch-master subscription; trying the next Sentinel"
                );
                failures_in_a_row += 1;
                if failures_in_a_row >= settings.sentinels.len() {
                    failures_in_a_row = 0;
                    std::thread::sleep(POLL);
                }
            }
        }
    }
}

/// Subscribes on `sentinel` (counting it in `subscriptions`) and passes announcements on
/// until the listener is gone (`Ok`) or the Sentinel fails (`Err`).
fn listen<L: Listener>(
    listener: &Weak<L>,
    settings: &Settings,
    sentinel: &Client,
    subscriptions: &mut u64,
) -> RedisResult<()> {
    let connector = Connector::new(
        sentinel,
        settings.timeouts.connect,
        settings.timeouts.response,
    );
    let mut conn = connector.connect(None)?;
    let mut pubsub = conn.as_pubsub();
    pubsub.subscribe(CHANNEL)?;
    tracing::debug!(target: "cache_redis", sentinel = %sentinel_addr(sentinel), "listening for +switch-master");
    *subscriptions += 1;
    if *subscriptions > 1 {
        match listener.upgrade() {
            Some(listener) => listener.resubscribed(),
            None => return Ok(()),
        }
    }
    pubsub.set_read_timeout(Some(POLL))?;
    loop {
        match pubsub.get_message() {
            Ok(message) => {
                let Some(to) = announced(&message, &settings.master_name) else {
                    continue;
                };
                match listener.upgrade() {
                    Some(listener) => listener.switched(to),
                    None => return Ok(()),
                }
            }
            Err(error) if error.is_timeout() => {
                if listener.strong_count() == 0 {
                    return Ok(());
                }
                pubsub.ping::<Value>()?;
            }
            Err(error) => return Err(error),
        }
    }
}

/// The new address in a `+switch-master` message for `master_name`:
/// `<name> <old ip> <old port> <new ip> <new port>`.
fn announced(message: &Msg, master_name: &str) -> Option<Addr> {
    let payload: String = message.get_payload().ok()?;
    parse(&payload, master_name)
}

fn parse(payload: &str, master_name: &str) -> Option<Addr> {
    let words: Vec<&str> = payload.split_whitespace().collect();
    match words.as_slice() {
        [name, _, _, host, port] if *name == master_name => {
            Some(((*host).to_owned(), port.parse().ok()?))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcements_for_other_masters_are_ignored() {
        assert_eq!(
            parse("mymaster 127.0.0.1 6379 127.0.0.1 6380", "mymaster"),
            Some(("127.0.0.1".to_owned(), 6380))
        );
        assert_eq!(
            parse("other 127.0.0.1 6379 127.0.0.1 6380", "mymaster"),
            None
        );
        assert_eq!(parse("mymaster 127.0.0.1 6379", "mymaster"), None);
        assert_eq!(parse("mymaster a 1 b port", "mymaster"), None);
        assert_eq!(
            parse("m ::1 1 ::2 7000", "m"),
            Some(("::2".to_owned(), 7000))
        );
    }
}
