//! Keeping secrets out of `Debug`, logs and errors: [`Secret`] and [`redact_url`].

use std::fmt;

/// A string that never shows in `Debug` output (passwords, URLs holding them); it has no
/// `Display`.
///
/// ```
/// use cache_core::config::Secret;
///
/// let password = Secret::new("hunter2");
/// assert_eq!(format!("{password:?}"), "Secret(***)");
/// assert_eq!(password.expose(), "hunter2");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Schemes shown as they are; any other text before `://` becomes `***`.
const KNOWN_SCHEMES: [&str; 10] = [
    "redis://",
    "rediss://",
    "valkey://",
    "valkeys://",
    "unix://",
    "redis+unix://",
    "valkey+unix://",
    "http://",
    "https://",
    "tcp://",
];
/// Query parameters whose names are shown; any other parameter becomes `***` whole (its
/// name may be the secret itself, as in `?hunter2`).
const SHOWN_NAMES: [&str; 5] = ["db", "protocol", "user", "pass", "password"];

/// `url` with every credential replaced by `***`, safe for logs and errors.
///
/// It covers every form the `redis` crate reads a password from, and malformed URLs too
/// (redaction runs before, and whether or not, the URL parses):
///
/// - the password of the user info, `redis://user:pass@host`, `redis://:pass@host`,
///   `rediss://`, `valkey://` and `valkeys://` alike: everything between the first `:` and
///   the **last** `@` goes, so an unencoded `@`, `/`, `?` or `#` in the password hides more,
///   never less (user info that is not a plain `user` or `user:...` goes whole);
/// - the query of `unix://`, `redis+unix://` and `valkey+unix://` URLs: `user`, a
///   numeric `db` and a valid `protocol` are kept, the values of `pass`, `password` and of
///   a `db` or `protocol` that is no number or version become `***`, and any other
///   parameter becomes `***` whole;
/// - a fragment other than `#insecure`, and a scheme that is not one of the `redis`
///   crate's (or `http`, `https`, `tcp`).
///
/// User names, hosts, ports, socket paths and database numbers are not secrets and stay.
///
/// ```
/// use cache_core::config::redact_url;
///
/// assert_eq!(redact_url("redis://app:hunter2@db:6379/0"), "redis://app:***@db:6379/0");
/// assert_eq!(redact_url("redis://:hunter2@db"), "redis://:***@db");
/// assert_eq!(redact_url("redis://:hun/ter@2@db"), "redis://:***@db");
/// assert_eq!(
///     redact_url("unix:///run/redis.sock?db=2&user=app&pass=hunter2"),
///     "unix:///run/redis.sock?db=2&user=app&pass=***"
/// );
/// assert_eq!(redact_url("unix:///run/redis.sock?hunter2"), "unix:///run/redis.sock?***");
/// assert_eq!(redact_url("redis://db:6379"), "redis://db:6379");
/// ```
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(i) => url.split_at(i + 3),
        None => ("", url),
    };
    let mut out = String::with_capacity(url.len());
    if KNOWN_SCHEMES.contains(&scheme.to_ascii_lowercase().as_str()) {
        out.push_str(scheme);
    } else if !scheme.is_empty() {
        // Text before `://` that is not a known scheme may be part of a secret.
        out.push_str("***://");
    }
    let rest = match rest.rfind('@') {
        Some(at) => {
            redact_user_info(&rest[..at], &mut out);
            &rest[at + 1..]
        }
        None => rest,
    };
    let (rest, fragment) = match rest.split_once('#') {
        Some((rest, fragment)) => (rest, Some(fragment)),
        None => (rest, None),
    };
    let (address, query) = match rest.split_once('?') {
        Some((address, query)) => (address, Some(query)),
        None => (rest, None),
    };
    out.push_str(address);
    if let Some(query) = query {
        out.push('?');
        redact_query(query, &mut out);
    }
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(if fragment == "insecure" {
            fragment
        } else {
            "***"
        });
    }
    out
}

/// `user:***@`, `user@`, or `***@` when the user info is not plain.
fn redact_user_info(user_info: &str, out: &mut String) {
    let plain = |user: &str| !user.contains(['/', '?', '#']);
    match user_info.split_once(':') {
        Some((user, _)) if plain(user) => {
            out.push_str(user);
            out.push_str(":***@");
        }
        None if plain(user_info) => {
            out.push_str(user_info);
            out.push('@');
        }
        _ => out.push_str("***@"),
    }
}

/// A user name, a database number, or a protocol version; anything else in `db` or
/// `protocol` (a password pasted in the wrong place) is masked too.
fn value_is_shown(name: &str, value: &str) -> bool {
    match name {
        "user" => true,
        "db" => {
            let digits = value.strip_prefix('-').unwrap_or(value);
            (1..=19).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
        }
        "protocol" => matches!(value, "2" | "3" | "resp2" | "resp3"),
        _ => false,
    }
}

fn redact_query(query: &str, out: &mut String) {
    for (i, pair) in query.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if !SHOWN_NAMES.contains(&name) {
            out.push_str("***");
        } else if value_is_shown(name, value) {
            out.push_str(pair);
        } else {
            out.push_str(name);
            out.push_str(if value.is_empty() { "=" } else { "=***" });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "Sekr3t-xyzzy";

    #[test]
    fn every_credential_form_loses_its_secret() {
        for url in [
            "redis://user:{S}@host:6379/0",
            "redis://:{S}@host",
            "redis://user:{S}@[::1]:6379/2",
            "rediss://user:{S}@host/0#insecure",
            "valkey://:{S}@host",
            "valkeys://u:{S}@host",
            "unix:///run/redis.sock?pass={S}",
            "unix:///run/redis.sock?db=1&user=app&pass={S}",
            "unix:///run/redis.sock?password={S}",
            "redis+unix:///run/redis.sock?pass={S}&protocol=3",
            "valkey+unix:///run/redis.sock?pass={S}",
            "unix:///run/redis.sock?{S}",
            "unix:///run/redis.sock?token={S}",
            "unix:///run/redis.sock?p%61ss={S}",
            "unix:///run/redis.sock?db={S}&protocol={S}",
            "redis://:{S}@host/0?pass={S}",
            // Malformed: unencoded separators in the password, no scheme, odd fragments.
            "redis://:pre/{S}@host",
            "redis://u:pre?{S}@host",
            "redis://u:pre#{S}@host",
            "redis://u:{S}@x@host",
            "redis:/:{S}@host",
            ":{S}@host:6379",
            "redis://host/#{S}",
            "unix:///run/redis.sock?pass={S}@x",
            "{S}://host",
        ] {
            let url = url.replace("{S}", SECRET);
            let shown = redact_url(&url);
            assert!(!shown.contains(SECRET), "{url} -> {shown}");
            assert!(!shown.contains("Sekr3t"), "{url} -> {shown}");
        }
    }

    #[test]
    fn what_is_not_secret_stays() {
        for (url, shown) in [
            ("redis://host:6379/0", "redis://host:6379/0"),
            ("redis://app@host/1", "redis://app@host/1"),
            (
                "rediss://app:pw@host/0#insecure",
                "rediss://app:***@host/0#insecure",
            ),
            (
                "unix:///run/redis.sock?db=3&user=app&protocol=resp3&pass=pw",
                "unix:///run/redis.sock?db=3&user=app&protocol=resp3&pass=***",
            ),
            (
                "unix:///run/redis.sock?pass=",
                "unix:///run/redis.sock?pass=",
            ),
            ("unix:///run/redis.sock", "unix:///run/redis.sock"),
            ("localhost:6379", "localhost:6379"),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
        }
    }
}
