//! The builder's Sentinel half: a [`RedisBackend`] on the master of a Redis Sentinel
//! set-up, what [`RedisBackendBuilder::build`] makes when
//! [`sentinel`](RedisBackendBuilder::sentinel)s are given, and the builder of a
//! `CACHE_TYPE=RedisSentinelCache` configuration.

use cache_core::config::{
    DEFAULT_SENTINEL_MASTER, RedisSettings, check_db, check_master_name, parse_sentinel_addr,
};
use cache_core::{Error, Result};
use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisConnectionInfo};

use super::{RedisBackend, RedisBackendBuilder};
use crate::seeds;
use crate::server::{PoolLimits, Timeouts};
use crate::topology::Topology;
use crate::topology::sentinel::{Sentinel, Settings};

/// The backend for a builder with Sentinels: checks the Sentinel settings (the shared ones
/// were checked by the caller) and builds the lazy Sentinel topology.
pub(crate) fn build(builder: RedisBackendBuilder) -> Result<RedisBackend> {
    let names = builder.names;
    for (set, name) in [
        (builder.url.is_some(), names.url),
        (builder.host.is_some(), names.host),
        (builder.port.is_some(), names.port),
    ] {
        if set {
            return Err(Error::config(
                name,
                format!(
                    "does not apply to a Sentinel set-up: the Sentinels name the master; list \
                     them with {}",
                    names.sentinel
                ),
            ));
        }
    }
    if builder.sentinels.is_empty() {
        return Err(Error::config(
            names.sentinel,
            "no Sentinel given; expected at least one host:port",
        ));
    }
    let master_name = check_master_name(
        names.master,
        builder
            .master_name
            .as_deref()
            .unwrap_or(DEFAULT_SENTINEL_MASTER),
    )?;
    let mut sentinel_auth = RedisConnectionInfo::default();
    if let Some(username) = &builder.sentinel_username {
        sentinel_auth = sentinel_auth.set_username(username);
    }
    if let Some(password) = &builder.sentinel_password {
        sentinel_auth = sentinel_auth.set_password(password.expose());
    }
    let mut addrs = Vec::with_capacity(builder.sentinels.len());
    let mut sentinels = Vec::with_capacity(builder.sentinels.len());
    for sentinel in &builder.sentinels {
        let info = sentinel_info(names.sentinel, sentinel, &sentinel_auth)?;
        addrs.extend(seeds::addr_of(&info).map(|addr| addr.to_string()));
        sentinels.push(client(&builder, info)?);
    }
    check_tls_root(&builder, &sentinels)?;
    let db = check_db(names.db, builder.db.unwrap_or(0))?;
    let mut node = RedisConnectionInfo::default().set_db(db);
    if let Some(username) = &builder.username {
        node = node.set_username(username);
    }
    if let Some(password) = &builder.password {
        node = node.set_password(password.expose());
    }
    let target = describe(&builder, &master_name, &addrs, db);
    let timeouts = Timeouts {
        connect: builder.connect_timeout,
        response: builder.response_timeout,
    };
    let pool = PoolLimits {
        max_connections: builder.max_connections,
        idle: builder.pool_size,
    };
    let (breaker, node_tls) = (builder.breaker, builder.data_node_tls);
    let settings = Settings {
        master_name,
        sentinels,
        node,
        node_tls,
        client: Box::new(move |info| client(&builder, info)),
        timeouts,
        pool,
        breaker,
    };
    Ok(RedisBackend::from_topology(
        Topology::Sentinel(Sentinel::new(settings)),
        target,
    ))
}

/// A client for `info`: a TLS one trusting the builder's root certificate for a TLS target,
/// a plain one otherwise (Sentinels and data nodes may differ).
fn client(builder: &RedisBackendBuilder, info: ConnectionInfo) -> Result<redis::Client> {
    if matches!(info.addr(), ConnectionAddr::TcpTls { .. }) {
        return builder.client(info);
    }
    redis::Client::open(info).map_err(|e| {
        Error::config(builder.names.sentinel, "the Redis client refused it").with_source(e)
    })
}

/// Refuses a TLS root certificate that nothing would use: no `rediss://` Sentinel and no
/// [`data_node_tls`](RedisBackendBuilder::data_node_tls).
#[cfg(feature = "tls")]
fn check_tls_root(builder: &RedisBackendBuilder, sentinels: &[redis::Client]) -> Result<()> {
    let any_tls = builder.data_node_tls
        || sentinels.iter().any(|sentinel| {
            matches!(
                sentinel.get_connection_info().addr(),
                ConnectionAddr::TcpTls { .. }
            )
        });
    if builder.tls_root_cert.is_some() && !any_tls {
        return Err(Error::config(
            "tls_root_cert",
            "no Sentinel is a rediss:// URL and data_node_tls is off, so nothing uses TLS",
        ));
    }
    Ok(())
}

/// Refuses TLS to the data nodes, which needs the `tls` feature.
#[cfg(not(feature = "tls"))]
fn check_tls_root(builder: &RedisBackendBuilder, _: &[redis::Client]) -> Result<()> {
    if builder.data_node_tls {
        return Err(Error::config(
            "data_node_tls",
            "TLS needs cache-redis's `tls` feature",
        ));
    }
    Ok(())
}

/// A Sentinel given as `host[:port]` (with the Sentinels' credentials `auth`), or as a
/// `redis://` or `rediss://` URL (with its own user and password if it names any, else
/// `auth`). Errors name `field` and never repeat the text.
fn sentinel_info(field: &str, text: &str, auth: &RedisConnectionInfo) -> Result<ConnectionInfo> {
    if !text.contains("://") {
        let (host, port) = parse_sentinel_addr(field, text)?;
        return ConnectionAddr::Tcp(host, port)
            .into_connection_info()
            .map(|info| info.set_redis_settings(auth.clone()))
            .map_err(|e| Error::config(field, "the Redis client refused it").with_source(e));
    }
    let info = crate::target::parse_url(text, field)?;
    if !matches!(
        info.addr(),
        ConnectionAddr::Tcp(..) | ConnectionAddr::TcpTls { .. }
    ) {
        return Err(Error::config(
            field,
            "a Sentinel is reached over TCP: host:port, redis://host:port or rediss://host:port",
        ));
    }
    let own = info.redis_settings();
    if own.db() != 0 {
        return Err(Error::config(
            field,
            "a Sentinel has no database: leave the path of its URL empty",
        ));
    }
    if own.username().is_some() || own.password().is_some() {
        return Ok(info);
    }
    Ok(info.set_redis_settings(auth.clone()))
}

/// The deployment for `Debug` and logs, every password as `***`.
fn describe(builder: &RedisBackendBuilder, master_name: &str, addrs: &[String], db: i64) -> String {
    let mut target = format!("Sentinel master `{master_name}` via {}", addrs.join(","));
    match (
        &builder.sentinel_username,
        builder.sentinel_password.is_some(),
    ) {
        (Some(user), true) => target.push_str(&format!(" (Sentinel user {user}, password ***)")),
        (Some(user), false) => target.push_str(&format!(" (Sentinel user {user})")),
        (None, true) => target.push_str(" (Sentinel password ***)"),
        (None, false) => {}
    }
    target.push_str(&format!(", db {db}"));
    if builder.data_node_tls {
        target.push_str(", TLS to the data nodes");
    }
    if let Some(username) = &builder.username {
        target.push_str(&format!(", user {username}"));
    }
    if builder.password.is_some() {
        target.push_str(", password ***");
    }
    target
}

/// `builder` with the Sentinel settings of a `CACHE_TYPE=RedisSentinelCache`
/// configuration: the Sentinels (default `127.0.0.1:26379`, as Flask-Caching), the master's
/// name and the Sentinels' password.
pub(crate) fn from_settings(
    mut builder: RedisBackendBuilder,
    redis: &RedisSettings,
) -> RedisBackendBuilder {
    if redis.sentinels.is_empty() {
        builder = builder.sentinel(format!(
            "127.0.0.1:{}",
            cache_core::config::DEFAULT_SENTINEL_PORT
        ));
    }
    for (host, port) in &redis.sentinels {
        builder = builder.sentinel(addr(host, *port));
    }
    if let Some(name) = &redis.sentinel_master {
        builder = builder.master_name(name.clone());
    }
    if let Some(password) = &redis.sentinel_password {
        builder = builder.sentinel_password(password.expose());
    }
    builder
}

/// `host:port`, with an IPv6 host in brackets.
fn addr(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_settings_name_their_setter() {
        for (builder, says) in [
            (
                RedisBackend::builder().master_name("cache"),
                "invalid sentinel: no Sentinel",
            ),
            (
                RedisBackend::builder()
                    .sentinel("h")
                    .url("redis://h:6379/0"),
                "invalid url: does not apply to a Sentinel set-up",
            ),
            (
                RedisBackend::builder().sentinel("h").port(6380),
                "invalid port: does not apply to a Sentinel set-up",
            ),
            (
                RedisBackend::builder().sentinel("h:0"),
                "invalid sentinel: ",
            ),
            (
                RedisBackend::builder().sentinel("h").master_name("a b"),
                "invalid master_name: ",
            ),
            (
                RedisBackend::builder().sentinel("h").db(5000),
                "invalid db: ",
            ),
            (
                RedisBackend::builder().sentinel("h").max_connections(0),
                "max_connections",
            ),
        ] {
            let err = builder.build().unwrap_err();
            assert!(err.is_config() && err.to_string().contains(says), "{err}");
        }
    }

    #[test]
    fn a_server_address_with_sentinels_names_its_variable() {
        let config = cache_core::config::Config::from_vars(|name| match name {
            "CACHE_TYPE" => Some("RedisSentinelCache".to_owned()),
            "CACHE_REDIS_HOST" => Some("cache.internal".to_owned()),
            _ => None,
        })
        .unwrap();
        let err = crate::backend_for(&config).unwrap_err();
        assert!(
            err.is_config()
                && err
                    .to_string()
                    .starts_with("invalid CACHE_REDIS_HOST: does not apply to a Sentinel set-up")
                && err.to_string().contains("CACHE_REDIS_SENTINELS"),
            "{err}"
        );
    }

    #[test]
    fn sentinel_urls_keep_their_own_credentials_and_refuse_a_database_or_a_socket() {
        let auth = RedisConnectionInfo::default().set_password("shared");
        let own = sentinel_info("sentinel", "redis://cache:hunter2@h:5000", &auth).unwrap();
        assert_eq!(own.redis_settings().username(), Some("cache"));
        assert_eq!(own.redis_settings().password(), Some("hunter2"));
        let plain = sentinel_info("sentinel", "redis://h:5000", &auth).unwrap();
        assert_eq!(plain.redis_settings().password(), Some("shared"));
        for (text, says) in [
            ("redis://:hunter2@h:5000/3", "no database"),
            ("unix:///tmp/sentinel.sock", "over TCP"),
        ] {
            let err = sentinel_info("sentinel", text, &auth).unwrap_err();
            let shown = format!("{err:#} {err:?}");
            assert!(err.is_config() && shown.contains(says), "{shown}");
            assert!(!shown.contains("hunter2"), "{shown}");
        }
    }

    #[cfg(feature = "tls")]
    #[test]
    fn a_tls_root_certificate_that_nothing_uses_is_refused() {
        let err = RedisBackend::builder()
            .sentinel("h:5000")
            .tls_root_cert(b"-----BEGIN CERTIFICATE-----".to_vec())
            .build()
            .unwrap_err();
        assert!(
            err.is_config() && err.to_string().starts_with("invalid tls_root_cert: "),
            "{err}"
        );
    }

    #[test]
    fn the_description_masks_both_passwords() {
        let builder = RedisBackend::builder()
            .sentinel("[::1]:5000")
            .sentinel("s2")
            .sentinel_password("hunter2")
            .username("app")
            .password("hunter3");
        assert!(!format!("{builder:?}").contains("hunter"));
        let backend = builder.build().unwrap();
        let shown = format!("{backend:?}");
        assert!(!shown.contains("hunter"), "{shown}");
        assert!(
            shown.contains(
                "Sentinel master `mymaster` via [::1]:5000,s2:26379 (Sentinel password ***), \
                 db 0, user app, password ***"
            ),
            "{shown}"
        );
    }
}
