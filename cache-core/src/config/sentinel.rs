//! The settings of a Redis Sentinel deployment: where the Sentinels listen and the name
//! they know the master by, checked at start-up like every other setting.

use crate::{Error, Result};

use crate::limits::{check_host, check_port};

/// The port of a Sentinel given without one: 26379, Sentinel's own default.
pub const DEFAULT_SENTINEL_PORT: u16 = 26379;

/// The master name used when none is configured: `mymaster`, as in Flask-Caching and in
/// Redis's example `sentinel.conf`.
pub const DEFAULT_SENTINEL_MASTER: &str = "mymaster";

/// Parses one Sentinel address, `host[:port]`: a host name or IPv4 address, or an IPv6
/// address in brackets when a port follows (`[::1]:26379`); the port defaults to
/// [`DEFAULT_SENTINEL_PORT`]. Both parts are checked as [`check_host`] and [`check_port`]
/// check them; the error names `field`.
///
/// ```
/// use cache_core::config::parse_sentinel_addr;
///
/// assert_eq!(parse_sentinel_addr("s", "10.0.0.5:26380")?, ("10.0.0.5".to_owned(), 26380));
/// assert_eq!(parse_sentinel_addr("s", "sentinel-1")?, ("sentinel-1".to_owned(), 26379));
/// assert_eq!(parse_sentinel_addr("s", "[::1]:5000")?, ("::1".to_owned(), 5000));
/// assert!(parse_sentinel_addr("s", "host:port").is_err());
/// # Ok::<(), cache_core::Error>(())
/// ```
pub fn parse_sentinel_addr(field: &str, addr: &str) -> Result<(String, u16)> {
    let addr = addr.trim();
    let (host, port) = match addr.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((host, "")) => (host, None),
            Some((host, port)) => match port.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return Err(not_an_addr(field)),
            },
            None => return Err(not_an_addr(field)),
        },
        None => match addr.split_once(':') {
            // More than one `:`: an IPv6 address without a port.
            Some((_, rest)) if rest.contains(':') => (addr, None),
            Some((host, port)) => (host, Some(port)),
            None => (addr, None),
        },
    };
    let port = match port {
        Some(port) => port
            .parse::<u16>()
            .map_err(|_| Error::config(field, "a Sentinel's port must be a number, 1 to 65535"))?,
        None => DEFAULT_SENTINEL_PORT,
    };
    Ok((check_host(field, host)?, check_port(field, port)?))
}

fn not_an_addr(field: &str) -> Error {
    Error::config(
        field,
        "expected host:port, such as 10.0.0.5:26379 or [::1]:26379",
    )
}

/// Parses a comma-separated list of Sentinel addresses (`CACHE_REDIS_SENTINELS`), each as
/// [`parse_sentinel_addr`] reads it; at least one, no address twice.
///
/// ```
/// use cache_core::config::parse_sentinels;
///
/// let list = parse_sentinels("CACHE_REDIS_SENTINELS", "s1:26379, s2:26379,s3")?;
/// assert_eq!(list.len(), 3);
/// let err = parse_sentinels("CACHE_REDIS_SENTINELS", "s1,,s2").unwrap_err();
/// assert!(err.to_string().contains("CACHE_REDIS_SENTINELS"));
/// # Ok::<(), cache_core::Error>(())
/// ```
pub fn parse_sentinels(field: &str, list: &str) -> Result<Vec<(String, u16)>> {
    let mut sentinels = Vec::new();
    for addr in list.split(',') {
        if addr.trim().is_empty() {
            return Err(Error::config(
                field,
                "an empty entry; expected host:port,host:port,... (at least one Sentinel)",
            ));
        }
        let addr = parse_sentinel_addr(field, addr)?;
        if sentinels.contains(&addr) {
            return Err(Error::config(
                field,
                format!("{}:{} is listed twice", addr.0, addr.1),
            ));
        }
        sentinels.push(addr);
    }
    Ok(sentinels)
}

/// Checks the name the Sentinels know the master by (`CACHE_REDIS_SENTINEL_MASTER`):
/// 1 to 255 characters, no spaces or control characters (Sentinel announces a switch as
/// space-separated words).
///
/// ```
/// assert!(cache_core::config::check_master_name("master", "mymaster").is_ok());
/// assert!(cache_core::config::check_master_name("master", "my master").is_err());
/// ```
pub fn check_master_name(field: &str, name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty()
        || name.len() > 255
        || name.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(Error::config(
            field,
            "expected the master's name as the Sentinels know it (`sentinel monitor <name> ..`): \
             1 to 255 characters without spaces",
        ));
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_take_an_optional_port() {
        for (addr, host, port) in [
            ("h", "h", 26379),
            ("h:1", "h", 1),
            (" 10.0.0.1:7 ", "10.0.0.1", 7),
            ("::1", "::1", 26379),
            ("[::1]", "::1", 26379),
            ("[fe80::1]:9", "fe80::1", 9),
        ] {
            assert_eq!(
                parse_sentinel_addr("s", addr).unwrap(),
                (host.to_owned(), port),
                "{addr}"
            );
        }
        for bad in [
            "h:0",
            "h:99999",
            "h:x",
            "[::1",
            "[::1]x",
            "bad host!",
            "redis://h:1",
            "",
        ] {
            let err = parse_sentinel_addr("CACHE_REDIS_SENTINELS", bad).unwrap_err();
            assert!(
                err.is_config() && err.to_string().contains("CACHE_REDIS_SENTINELS"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn a_list_needs_entries_without_duplicates() {
        assert_eq!(parse_sentinels("s", "a:1,b:2").unwrap().len(), 2);
        assert!(parse_sentinels("s", "").is_err());
        assert!(parse_sentinels("s", "a:1,").is_err());
        let err = parse_sentinels("s", "a:1,a:1").unwrap_err();
        assert!(err.to_string().contains("twice"), "{err}");
    }

    #[test]
    fn master_names_have_no_spaces() {
        assert_eq!(check_master_name("m", " cache-1 ").unwrap(), "cache-1");
        for bad in ["", "a b", "a\nb", &"x".repeat(256)] {
            assert!(check_master_name("m", bad).is_err(), "{bad:?}");
        }
    }
}
