//! The allowed range of each setting, checked at start-up so that a bad value is a typed
//! error naming its variable (or builder setter), not a failure on every later call.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::ops::RangeInclusive;
use std::time::Duration;

use crate::{Error, Result};

/// The longest timeout accepted (`CACHE_DEFAULT_TIMEOUT`, `CacheBuilder::default_timeout`):
/// 100 years of 365 days, 3,153,600,000 s.
///
/// Every layer can represent it: Redis takes `SET .. PX` values up to
/// `i64::MAX` ms minus the current time (about 292 million years), `Instant` and
/// `SystemTime` arithmetic, and moka's nanosecond clock (`u64` nanoseconds, about 584
/// years), so a store with this timeout succeeds everywhere. Beyond it, use `0` (never
/// expire).
pub const MAX_TIMEOUT: Duration = Duration::from_secs(MAX_TIMEOUT_SECS);
const MAX_TIMEOUT_SECS: u64 = 100 * 365 * 24 * 60 * 60;

/// The highest Redis database number accepted (`CACHE_REDIS_DB`, `db`): 1023.
///
/// Redis has 16 databases (0 to 15) unless its `databases` setting says more; servers that
/// raise it use tens or hundreds (managed services cap it at 64 or 100, Redis Cluster has
/// only database 0), since each database costs memory at server start-up. 1023 admits all
/// of those while refusing typos such as a port number (6379) or a negative number. A
/// number the server does not have is still refused by the server (`SELECT`), as an
/// [`ErrorKind::Backend`](crate::ErrorKind::Backend) error on the first call.
pub const MAX_REDIS_DB: i64 = 1023;

/// The allowed database numbers, `0..=MAX_REDIS_DB`.
pub const REDIS_DBS: RangeInclusive<i64> = 0..=MAX_REDIS_DB;

/// Checks a timeout against [`MAX_TIMEOUT`]; `field` names the setting in the error.
///
/// ```
/// use std::time::Duration;
/// use cache_core::config::{MAX_TIMEOUT, check_timeout};
///
/// assert!(check_timeout("default_timeout", MAX_TIMEOUT).is_ok());
/// let err = check_timeout("default_timeout", Duration::MAX).unwrap_err();
/// assert!(err.is_config() && err.to_string().contains("default_timeout"));
/// ```
pub fn check_timeout(field: &str, timeout: Duration) -> Result<Duration> {
    if timeout > MAX_TIMEOUT {
        return Err(Error::config(
            field,
            format!(
                "{} s is too long; expected 0 (never expire) to {MAX_TIMEOUT_SECS} s (100 years)",
                timeout.as_secs()
            ),
        ));
    }
    Ok(timeout)
}

/// Checks a Redis database number against [`REDIS_DBS`].
///
/// ```
/// assert!(cache_core::config::check_db("db", 15).is_ok());
/// assert!(cache_core::config::check_db("db", -1).unwrap_err().to_string().contains("0 to 1023"));
/// ```
pub fn check_db(field: &str, db: i64) -> Result<i64> {
    if !REDIS_DBS.contains(&db) {
        return Err(Error::config(
            field,
            format!(
                "database {db} is out of range; expected 0 to {MAX_REDIS_DB} (Redis has \
                 0 to 15 unless its `databases` setting says more)"
            ),
        ));
    }
    Ok(db)
}

/// Checks a TCP port: 1 to 65535.
///
/// ```
/// assert!(cache_core::config::check_port("port", 6379).is_ok());
/// assert!(cache_core::config::check_port("port", 0).is_err());
/// ```
pub fn check_port(field: &str, port: u16) -> Result<u16> {
    if port == 0 {
        return Err(Error::config(
            field,
            "port 0 is not a port to connect to; expected 1 to 65535",
        ));
    }
    Ok(port)
}

/// Checks a host and returns it as the `redis` crate connects to it: a host name, an IPv4
/// address, or an IPv6 address with or without brackets (returned without them).
///
/// A host name is dot-separated labels of 1 to 63 letters, digits and hyphens, not starting
/// or ending with a hyphen, 253 characters at most (RFC 1123), with one leniency: `_` is
/// allowed in a label, because container platforms resolve service names such as
/// `redis_cache` although the RFC does not allow them. Wildcard addresses (`0.0.0.0`, `::`)
/// are refused: they are for listening, not connecting. The error never repeats the value,
/// which might be a URL holding a password.
///
/// ```
/// use cache_core::config::check_host;
///
/// assert_eq!(check_host("host", "cache.internal")?, "cache.internal");
/// assert_eq!(check_host("host", "[::1]")?, "::1");
/// assert!(check_host("host", "bad host name!").is_err());
/// assert!(check_host("host", "redis://:pw@cache").is_err());
/// # Ok::<(), cache_core::Error>(())
/// ```
pub fn check_host(field: &str, host: &str) -> Result<String> {
    let host = host.trim();
    let unbracketed = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
    if let Ok(v6) = unbracketed.unwrap_or(host).parse::<Ipv6Addr>() {
        return not_wildcard(field, v6.is_unspecified(), v6.to_string());
    }
    if let Ok(v4) = host.parse::<Ipv4Addr>() {
        return not_wildcard(field, v4.is_unspecified(), v4.to_string());
    }
    if unbracketed.is_none() && is_host_name(host) {
        return Ok(host.to_owned());
    }
    let hint = if host.contains("://") || host.contains('@') {
        " (a URL goes in CACHE_REDIS_URL / `url`, not here)"
    } else {
        ""
    };
    Err(Error::config(
        field,
        format!(
            "not a host name or IP address{hint}; expected a name such as cache.internal \
             (letters, digits, '-' and '_' in dot-separated labels of 1 to 63 characters), \
             an IPv4 address, or an IPv6 address such as ::1 or [::1]"
        ),
    ))
}

fn not_wildcard(field: &str, wildcard: bool, host: String) -> Result<String> {
    if wildcard {
        return Err(Error::config(
            field,
            "0.0.0.0 and :: are wildcard addresses, for listening only; give the server's \
             address, such as 127.0.0.1",
        ));
    }
    Ok(host)
}

fn is_host_name(host: &str) -> bool {
    let name = host.strip_suffix('.').unwrap_or(host);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_and_addresses_follow_rfc_1123() {
        for good in [
            "localhost",
            "cache.internal",
            "cache.internal.",
            "redis_cache",
            "a-b.c-d",
            "10.0.0.7",
            "::1",
            "[fe80::1]",
            "x",
        ] {
            assert!(check_host("h", good).is_ok(), "{good}");
        }
        let long_label = "a".repeat(64);
        let long_name = ["abc"; 64].join(".");
        for bad in [
            "bad host name!",
            "",
            "-lead",
            "trail-",
            "a..b",
            long_label.as_str(),
            long_name.as_str(),
            "[::1",
            "[cache]",
            "cache:6379",
            "redis://cache",
            "0.0.0.0",
            "::",
            "caché",
        ] {
            assert!(check_host("h", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn host_errors_never_repeat_the_value() {
        let err = check_host("CACHE_REDIS_HOST", "redis://:Sekr3t@cache").unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(shown.contains("CACHE_REDIS_HOST") && shown.contains("CACHE_REDIS_URL"));
        assert!(!shown.contains("Sekr3t"), "{shown}");
    }

    #[test]
    fn bounds_are_inclusive() {
        assert!(check_timeout("t", MAX_TIMEOUT).is_ok());
        assert!(check_timeout("t", MAX_TIMEOUT + Duration::from_secs(1)).is_err());
        assert!(check_db("d", 0).is_ok() && check_db("d", MAX_REDIS_DB).is_ok());
        assert!(check_db("d", MAX_REDIS_DB + 1).is_err() && check_db("d", -1).is_err());
        assert!(check_port("p", 1).is_ok() && check_port("p", u16::MAX).is_ok());
    }
}
