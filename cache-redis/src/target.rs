//! The server a backend connects to: the URL or Flask-style parts, checked at build time,
//! and the description with every credential masked that `Debug` and logs show.

use cache_core::config::{MAX_REDIS_DB, check_db, check_host, check_port};
use cache_core::{Error, Result};
use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo};

/// The setting each part of the target came from, named in errors: the builder's setters,
/// or the environment variables when the backend comes from a `Config`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Names {
    pub(crate) url: &'static str,
    pub(crate) host: &'static str,
    pub(crate) port: &'static str,
    pub(crate) db: &'static str,
    /// The seed nodes of a Redis Cluster.
    pub(crate) cluster: &'static str,
    /// The Sentinels of a Sentinel set-up.
    pub(crate) sentinel: &'static str,
    /// The master's name in a Sentinel set-up.
    pub(crate) master: &'static str,
}

impl Names {
    /// The setters of `RedisBackendBuilder`.
    pub(crate) const SETTERS: Self = Self {
        url: "url",
        host: "host",
        port: "port",
        db: "db",
        cluster: "cluster",
        sentinel: "sentinel",
        master: "master_name",
    };

    /// Flask-Caching's variables.
    pub(crate) const ENV: Self = Self {
        url: "CACHE_REDIS_URL",
        host: "CACHE_REDIS_HOST",
        port: "CACHE_REDIS_PORT",
        db: "CACHE_REDIS_DB",
        cluster: "CACHE_REDIS_CLUSTER",
        sentinel: "CACHE_REDIS_SENTINELS",
        master: "CACHE_REDIS_SENTINEL_MASTER",
    };
}

const URL_FORMS: &str = "expected redis://[[user]:password@]host[:port][/db][?protocol=P], \
                         rediss://... (TLS) or unix:///path/to/socket[?db=N&user=U&pass=P]";

/// Parses and checks a Redis URL. Errors name `field` and the problem, never the URL or
/// any part of it that could be a secret.
///
/// Beyond what the `redis` crate checks, this refuses what it would silently ignore or
/// accept only to fail on every call: query parameters it does not read (`?password=`,
/// `?db=` on a TCP URL, ...), a `protocol` other than 2, resp2, 3 or resp3, a database
/// outside `0..=MAX_REDIS_DB`, port 0, and a host that is not a host name or IP address.
pub(crate) fn parse_url(url: &str, field: &str) -> Result<ConnectionInfo> {
    let Some(scheme_end) = url.find("://") else {
        return Err(Error::config(field, format!("not a URL; {URL_FORMS}")));
    };
    let scheme = url[..scheme_end].to_ascii_lowercase();
    let unix = match scheme.as_str() {
        "redis" | "valkey" => false,
        "unix" | "redis+unix" | "valkey+unix" => true,
        "rediss" | "valkeys" if cfg!(feature = "tls") => false,
        "rediss" | "valkeys" => {
            return Err(Error::config(
                field,
                "rediss:// (TLS) needs the `tls` feature of cache-redis",
            ));
        }
        // Text before `://` that is no scheme may be part of a password: not repeated.
        _ if !is_scheme(&scheme) => {
            return Err(Error::config(field, format!("no URL scheme; {URL_FORMS}")));
        }
        _ => {
            return Err(Error::config(
                field,
                format!("unsupported scheme {scheme:?}; {URL_FORMS}"),
            ));
        }
    };
    let Some(parsed) = redis::parse_redis_url(url) else {
        return Err(Error::config(field, format!("malformed URL; {URL_FORMS}")));
    };
    for (name, value) in parsed.query_pairs() {
        check_query_parameter(field, unix, &name, &value)?;
    }
    let info = url.into_connection_info().map_err(|e| {
        // The description (before " - ") is static text; the detail may echo the input.
        let text = e.to_string();
        let problem = text.split(" - ").next().unwrap_or("malformed URL");
        Error::config(field, format!("{problem}; {URL_FORMS}"))
    })?;
    check_db(field, info.redis_settings().db())?;
    if let ConnectionAddr::Tcp(host, port) | ConnectionAddr::TcpTls { host, port, .. } = info.addr()
    {
        check_host(field, host)?;
        check_port(field, *port)?;
    }
    Ok(info)
}

fn is_scheme(text: &str) -> bool {
    text.starts_with(|c: char| c.is_ascii_alphabetic())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// One `name=value` of the query. Only names from fixed lists are ever repeated in an
/// error, and values never, since either may be a secret.
fn check_query_parameter(field: &str, unix: bool, name: &str, value: &str) -> Result<()> {
    let problem = match (name, unix) {
        ("protocol", _) if matches!(value, "2" | "resp2" | "3" | "resp3") => return Ok(()),
        ("protocol", _) => "query parameter `protocol` must be 2, resp2, 3 or resp3".to_owned(),
        ("db", true) => {
            let db = value.parse::<i64>().map_err(|_| {
                Error::config(
                    field,
                    format!("query parameter `db` must be a number, 0 to {MAX_REDIS_DB}"),
                )
            })?;
            return check_db(field, db).map(drop);
        }
        ("user" | "pass", true) => return Ok(()),
        ("password", true) => {
            "query parameter `password` is not read by the redis client; write `pass=`".to_owned()
        }
        ("db", false) => "`db` is not a query parameter of redis:// URLs; put the database \
                          in the path, as in redis://host:6379/2"
            .to_owned(),
        ("user" | "username" | "pass" | "password", false) => {
            "credentials in the query of a redis:// URL are ignored; write them as \
             redis://user:password@host"
                .to_owned()
        }
        (_, true) => "unsupported query parameter; unix:// URLs take db, user, pass and \
                      protocol"
            .to_owned(),
        (_, false) => {
            "unsupported query parameter; redis:// and rediss:// URLs take only protocol".to_owned()
        }
    };
    Err(Error::config(field, problem))
}

/// The target from Flask-style parts: `host` (default `localhost`) and `port` (default
/// 6379), each checked.
pub(crate) fn from_parts(
    host: Option<&str>,
    port: Option<u16>,
    names: &Names,
) -> Result<ConnectionInfo> {
    let host = match host {
        Some(host) => check_host(names.host, host)?,
        None => "localhost".to_owned(),
    };
    let port = check_port(names.port, port.unwrap_or(6379))?;
    (host, port)
        .into_connection_info()
        .map_err(|e| Error::config(names.host, "the Redis client refused it").with_source(e))
}

/// The connection target as a URL with the password masked, for `Debug` and logs: the
/// form the `redis` crate parses back, with `***` for the password.
pub(crate) fn describe(info: &ConnectionInfo) -> String {
    let settings = info.redis_settings();
    let (user, password) = (settings.username(), settings.password().is_some());
    let db = settings.db();
    match info.addr() {
        ConnectionAddr::Unix(path) => {
            let mut target = format!("unix://{}?db={db}", path.display());
            if let Some(user) = user {
                target.push_str("&user=");
                target.push_str(user);
            }
            if password {
                target.push_str("&pass=***");
            }
            target
        }
        ConnectionAddr::Tcp(host, port) => {
            let host = bracketed(host);
            format!("redis://{}{host}:{port}/{db}", user_info(user, password))
        }
        ConnectionAddr::TcpTls {
            host,
            port,
            insecure,
            ..
        } => {
            let host = bracketed(host);
            let fragment = if *insecure { "#insecure" } else { "" };
            format!(
                "rediss://{}{host}:{port}/{db}{fragment}",
                user_info(user, password)
            )
        }
        // `ConnectionAddr` is non-exhaustive.
        addr => format!("redis://{}{addr}/{db}", user_info(user, password)),
    }
}

fn user_info(user: Option<&str>, password: bool) -> String {
    match (user, password) {
        (Some(user), true) => format!("{user}:***@"),
        (None, true) => ":***@".to_owned(),
        (Some(user), false) => format!("{user}@"),
        (None, false) => String::new(),
    }
}

/// An IPv6 address in brackets, as a URL writes it.
fn bracketed(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_db_user_and_password() {
        let info = parse_url("redis://app:p%40ss@db.example:6380/3", "url").unwrap();
        let settings = info.redis_settings();
        assert_eq!(settings.db(), 3);
        assert_eq!(settings.username(), Some("app"));
        assert_eq!(settings.password(), Some("p@ss"));
        assert_eq!(describe(&info), "redis://app:***@db.example:6380/3");
        let unix = parse_url("unix:///run/redis.sock?db=2&user=app&pass=pw", "url").unwrap();
        assert_eq!(unix.redis_settings().db(), 2);
        assert_eq!(unix.redis_settings().password(), Some("pw"));
        assert_eq!(
            describe(&unix),
            "unix:///run/redis.sock?db=2&user=app&pass=***"
        );
        let v6 = parse_url("redis://[::1]:7000/1?protocol=resp3", "url").unwrap();
        assert_eq!(describe(&v6), "redis://[::1]:7000/1");
    }

    #[test]
    fn bad_urls_are_config_errors_naming_the_field_without_the_password() {
        for url in [
            "http://user:hunter2@host",
            "redis://:hunter2@host/notanumber",
            "redis//:hunter2@host",
            "redis://:hunter2@[::1",
            "redis//:hunter2@host/?x=y://",
            "hunter2@host://x",
            "",
        ] {
            let err = parse_url(url, "CACHE_REDIS_URL").unwrap_err();
            assert!(err.is_config(), "{url}: {err}");
            let shown = format!("{err:#} {err:?}");
            assert!(shown.contains("CACHE_REDIS_URL"), "{shown}");
            assert!(!shown.contains("hunter2"), "{shown}");
        }
    }

    /// A bad `?protocol=` names the parameter and the allowed values, not only the value.
    #[test]
    fn a_bad_protocol_names_the_parameter_and_the_allowed_values() {
        let err = parse_url("redis://localhost/?protocol=9", "CACHE_REDIS_URL").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid CACHE_REDIS_URL: query parameter `protocol` must be 2, resp2, 3 or resp3"
        );
        for good in ["2", "resp2", "3", "resp3"] {
            assert!(parse_url(&format!("redis://h/?protocol={good}"), "u").is_ok());
        }
    }

    #[test]
    fn query_parameters_the_client_would_ignore_are_refused_without_their_values() {
        for (url, says) in [
            ("unix:///s.sock?password=hunter2", "write `pass=`"),
            ("redis://h/?pass=hunter2", "redis://user:password@host"),
            ("redis://h/?db=2", "in the path"),
            ("redis://h/?hunter2", "take only protocol"),
            (
                "unix:///s.sock?hunter2=x",
                "take db, user, pass and protocol",
            ),
            ("unix:///s.sock?db=hunter2", "`db` must be a number"),
        ] {
            let err = parse_url(url, "url").unwrap_err();
            let shown = format!("{err:#} {err:?}");
            assert!(err.is_config() && shown.contains(says), "{url}: {shown}");
            assert!(!shown.contains("hunter2"), "{shown}");
        }
    }

    #[test]
    fn a_url_s_db_port_and_host_are_checked() {
        for (url, says) in [
            ("redis://h/99999", "0 to 1023"),
            ("redis://h/-1", "0 to 1023"),
            ("unix:///s.sock?db=1024", "0 to 1023"),
            ("redis://h:0/0", "1 to 65535"),
            ("redis://bad!host/0", "not a host name"),
            ("redis://bad%20host/0", "not a host name"),
            ("redis://0.0.0.0/0", "wildcard"),
        ] {
            let err = parse_url(url, "CACHE_REDIS_URL").unwrap_err();
            let shown = err.to_string();
            assert!(
                shown.contains("CACHE_REDIS_URL") && shown.contains(says),
                "{url}: {shown}"
            );
        }
    }

    #[test]
    fn parts_are_checked_naming_their_setting() {
        let err = from_parts(Some("bad host name!"), None, &Names::SETTERS).unwrap_err();
        assert!(err.to_string().starts_with("invalid host: "), "{err}");
        let err = from_parts(None, Some(0), &Names::ENV).unwrap_err();
        assert!(
            err.to_string().starts_with("invalid CACHE_REDIS_PORT: "),
            "{err}"
        );
        let info = from_parts(Some("[::1]"), Some(7000), &Names::SETTERS).unwrap();
        assert_eq!(describe(&info), "redis://[::1]:7000/0");
    }

    #[cfg(not(feature = "tls"))]
    #[test]
    fn tls_urls_need_the_feature() {
        let err = parse_url("rediss://host", "url").unwrap_err();
        assert!(err.to_string().contains("`tls` feature"), "{err}");
    }
}
