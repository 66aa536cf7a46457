//! Turns `redis` errors into cache-core's typed errors, without secrets.

use cache_core::{Error, ErrorKind};
use redis::RedisError;

/// Maps a `redis` error to an [`ErrorKind`]:
///
/// - time-outs (connect or response) are [`ErrorKind::Timeout`];
/// - other I/O failures (refused, reset, closed) are [`ErrorKind::Connection`];
/// - a rejected password or user is [`ErrorKind::Backend`] with a message saying so;
/// - every other error answer is [`ErrorKind::Backend`].
///
/// `redis` never puts the URL or the password in its errors, and neither does this.
pub(crate) fn from_redis(error: RedisError) -> Error {
    let kind = kind_of(&error);
    let message = match kind {
        ErrorKind::Timeout => "Redis did not answer in time",
        ErrorKind::Connection => "cannot reach Redis",
        _ if is_auth(&error) => "Redis refused the credentials (check the user name and password)",
        _ => "Redis answered with an error",
    };
    Error::new(kind, format!("{message}: {error}")).with_source(error)
}

fn kind_of(error: &RedisError) -> ErrorKind {
    if error.is_timeout() {
        ErrorKind::Timeout
    } else if error.is_io_error() || error.is_connection_dropped() || error.is_connection_refusal()
    {
        ErrorKind::Connection
    } else if error.kind() == redis::ErrorKind::InvalidClientConfig {
        ErrorKind::Config
    } else {
        ErrorKind::Backend
    }
}

fn is_auth(error: &RedisError) -> bool {
    error.kind() == redis::ErrorKind::AuthenticationFailed
        || matches!(error.code(), Some("WRONGPASS" | "NOAUTH" | "NOPERM"))
}

/// True if the connection that produced `error` can no longer be trusted (broken, or a
/// response may still be in flight after a time-out) and must be replaced.
pub(crate) fn breaks_connection(error: &RedisError) -> bool {
    error.is_timeout()
        || error.is_io_error()
        || error.is_connection_dropped()
        || error.is_unrecoverable_error()
}

/// True for `WRONGTYPE`: the key holds a list, hash, ... rather than a cache value.
pub(crate) fn is_wrong_type(error: &RedisError) -> bool {
    error.code() == Some("WRONGTYPE")
}
