//! Turns `redis` errors into cache-core's typed errors, without secrets.

use cache_core::{Error, ErrorKind};
use redis::RedisError;

/// Maps a `redis` error to an [`ErrorKind`] and a message saying what failed; the `redis`
/// error itself is the [`source`](std::error::Error::source), not repeated in the message:
///
/// - time-outs (connect or response) are [`ErrorKind::Timeout`];
/// - other I/O failures (refused, reset, closed) are [`ErrorKind::Connection`];
/// - a rejected password or user name (`WRONGPASS`, `NOAUTH`, a failed `AUTH`) is
///   [`ErrorKind::Authentication`];
/// - a command or key an ACL rule denies this user (`NOPERM`) is
///   [`ErrorKind::Permission`];
/// - a setting the `redis` client itself refuses is [`ErrorKind::Config`];
/// - every other error is [`ErrorKind::Backend`]: an error answer from Redis, or a reply
///   the client could not use.
///
/// Only time-outs and connection errors mean an outage (the circuit breaker counts them).
/// `redis` never puts the URL or the password in its errors, and neither does this.
pub(crate) fn from_redis(error: RedisError) -> Error {
    let (kind, message) = classify(&error);
    let message = match (kind, error.code()) {
        // The code alone (`READONLY`, `ERR`, ...), so that a log of the message says which
        // answer it was; the full text is the source.
        (ErrorKind::Backend, Some(code)) => format!("{message} ({code})"),
        _ => message.to_owned(),
    };
    Error::new(kind, message).with_source(error)
}

fn classify(error: &RedisError) -> (ErrorKind, &'static str) {
    use redis::ErrorKind as Redis;
    if error.is_timeout() {
        (ErrorKind::Timeout, "Redis did not answer in time")
    } else if error.is_io_error() || error.is_connection_dropped() || error.is_connection_refusal()
    {
        (ErrorKind::Connection, "cannot reach Redis")
    } else if error.kind() == Redis::AuthenticationFailed
        || matches!(error.code(), Some("WRONGPASS" | "NOAUTH"))
    {
        (
            ErrorKind::Authentication,
            "Redis refused the credentials (check the user name and password)",
        )
    } else if error.code() == Some("NOPERM") {
        (
            ErrorKind::Permission,
            "Redis denied this ACL user a command or key the cache needs (GET, MGET, SET, \
             EXISTS, UNLINK, EVAL, SCAN on the cache's keys; PUBLISH and SUBSCRIBE, or SPUBLISH \
             and SSUBSCRIBE on a cluster, on its near-cache channel)",
        )
    } else {
        match error.kind() {
            Redis::InvalidClientConfig => (
                ErrorKind::Config,
                "the Redis client refused its configuration",
            ),
            Redis::Server(_) | Redis::Extension => {
                (ErrorKind::Backend, "Redis answered with an error")
            }
            _ => (
                ErrorKind::Backend,
                "the Redis client could not complete the command",
            ),
        }
    }
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

/// True for `NOSCRIPT`: the server does not know a script sent by its hash.
pub(crate) fn is_no_script(error: &Error) -> bool {
    std::error::Error::source(error)
        .and_then(|source| source.downcast_ref::<RedisError>())
        .is_some_and(|error| error.code() == Some("NOSCRIPT"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    fn server(code: &str, detail: &str) -> RedisError {
        redis::parse_redis_value(format!("-{code} {detail}\r\n").as_bytes())
            .and_then(|value| value.extract_error())
            .unwrap_err()
    }

    #[test]
    fn answers_get_their_own_kinds() {
        for (error, kind) in [
            (
                server("WRONGPASS", "invalid username-password pair"),
                ErrorKind::Authentication,
            ),
            (
                server("NOAUTH", "Authentication required."),
                ErrorKind::Authentication,
            ),
            (
                server("NOPERM", "no permissions to run the 'scan' command"),
                ErrorKind::Permission,
            ),
            (
                server("READONLY", "You can't write against a read only replica."),
                ErrorKind::Backend,
            ),
            (
                server("ERR", "DB index is out of range"),
                ErrorKind::Backend,
            ),
            (
                RedisError::from((redis::ErrorKind::InvalidClientConfig, "bad")),
                ErrorKind::Config,
            ),
            (
                RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
                ErrorKind::Connection,
            ),
            (
                RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut)),
                ErrorKind::Timeout,
            ),
        ] {
            let text = error.to_string();
            let err = from_redis(error);
            assert_eq!(err.kind(), kind, "{text}");
            assert!(!err.to_string().contains(&text), "{err} repeats {text}");
            assert_eq!(err.source().unwrap().to_string(), text);
        }
        let readonly = from_redis(server(
            "READONLY",
            "You can't write against a read only replica.",
        ));
        assert_eq!(
            readonly.to_string(),
            "Redis answered with an error (READONLY)"
        );
    }

    #[test]
    fn a_client_side_config_error_is_not_an_answer_from_redis() {
        let err = from_redis(RedisError::from((
            redis::ErrorKind::InvalidClientConfig,
            "Invalid protocol version",
        )));
        assert!(err.is_config(), "{err}");
        assert!(!err.to_string().contains("answered"), "{err}");
    }
}
