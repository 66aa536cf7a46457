//! [`RedisSentinelBuilder`]: a [`RedisBackend`] on the master of a Redis Sentinel set-up,
//! and the backend of a `CACHE_TYPE=RedisSentinelCache` configuration.

use std::fmt;
use std::time::Duration;

use cache_core::config::{
    Config, DEFAULT_SENTINEL_MASTER, Secret, check_db, check_master_name, parse_sentinel_addr,
};
use cache_core::{Error, Result};
use redis::{ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo};

use crate::backend::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_CONNECTIONS, DEFAULT_POOL_SIZE, DEFAULT_RESPONSE_TIMEOUT,
    RedisBackend, check_limits,
};
use crate::breaker::BreakerSettings;
use crate::server::{PoolLimits, Timeouts};
use crate::topology::Topology;
use crate::topology::sentinel::{Sentinel, Settings};

impl RedisBackend {
    /// Starts a builder for a backend on the master of a Redis Sentinel set-up; see
    /// [`RedisSentinelBuilder`].
    pub fn sentinel_builder() -> RedisSentinelBuilder {
        RedisSentinelBuilder::default()
    }
}

/// The setting each part came from, named in errors.
#[derive(Debug, Clone, Copy)]
struct Names {
    sentinel: &'static str,
    master: &'static str,
    db: &'static str,
}

impl Names {
    const SETTERS: Self = Self {
        sentinel: "sentinel",
        master: "master_name",
        db: "db",
    };
    const ENV: Self = Self {
        sentinel: "CACHE_REDIS_SENTINELS",
        master: "CACHE_REDIS_SENTINEL_MASTER",
        db: "CACHE_REDIS_DB",
    };
}

/// Builds a [`RedisBackend`] that finds the master through Redis Sentinel and follows it
/// across failovers; see [`RedisBackend::sentinel_builder`].
///
/// Every call goes to the master, so a read right after a write never misses (no replica
/// reads). The backend behaves as the single-server one does, command for command (a hit
/// is one `GET` on the master; `clear()` scans the master, whose deletions reach the
/// replicas), with the same time-outs, bounded blocking pool and circuit breaker, for the
/// master of the moment. On top of that:
///
/// - **Lazy.** Building never connects. The first call asks the Sentinels, one after the
///   other, for the master (`SENTINEL GET-MASTER-ADDR-BY-NAME`, each within the connect
///   and response time-outs) and checks that the node answers `ROLE` as a master; that
///   call waits for it at most the connect time-out.
/// - **Failover.** A background thread subscribes to `+switch-master` on one Sentinel at a
///   time and switches as soon as the Sentinels announce a new master; it moves to the
///   next Sentinel when its own dies or stops answering `PING`. A call that meets a
///   connection error, a time-out or a `READONLY` answer also starts a resolution in the
///   background (one at a time, at most one per 100 ms). Callers never wait for a
///   switch: until it happens they fail open (a miss for a cached call), through the old
///   master's circuit breaker.
/// - **Threads.** Besides the breaker's prober, one watcher thread per backend while it is
///   in use, and a short-lived one per resolution; they hold only weak references, so
///   dropping the backend ends them (the watcher within 0.5 s).
///
/// The Sentinels take the [`sentinel_password`](Self::sentinel_password) (their own
/// `requirepass`); the master takes [`password`](Self::password),
/// [`username`](Self::username) and [`db`](Self::db). Neither password appears in
/// `Debug` output, errors or logs.
///
/// ```
/// use std::time::Duration;
/// use cache_redis::RedisBackend;
///
/// let backend = RedisBackend::sentinel_builder()
///     .sentinel("10.0.0.1:26379")
///     .sentinel("10.0.0.2:26379")
///     .sentinel("10.0.0.3") // port 26379
///     .master_name("mymaster")
///     .sentinel_password("sentinel-secret")
///     .password("data-secret")
///     .db(2)
///     .response_timeout(Duration::from_millis(100))
///     .build()?; // does not connect
/// let shown = format!("{backend:?}");
/// assert!(!shown.contains("secret"), "{shown}");
///
/// let err = RedisBackend::sentinel_builder().build().unwrap_err();
/// assert!(err.is_config() && err.to_string().starts_with("invalid sentinel: "));
/// # Ok::<(), cache_core::Error>(())
/// ```
#[must_use]
#[derive(Clone)]
pub struct RedisSentinelBuilder {
    sentinels: Vec<String>,
    master_name: Option<String>,
    sentinel_password: Option<Secret>,
    db: Option<i64>,
    username: Option<String>,
    password: Option<Secret>,
    connect_timeout: Duration,
    response_timeout: Duration,
    max_connections: usize,
    pool_size: usize,
    breaker: BreakerSettings,
    names: Names,
}

impl Default for RedisSentinelBuilder {
    fn default() -> Self {
        Self {
            sentinels: Vec::new(),
            master_name: None,
            sentinel_password: None,
            db: None,
            username: None,
            password: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            pool_size: DEFAULT_POOL_SIZE,
            breaker: BreakerSettings::default(),
            names: Names::SETTERS,
        }
    }
}

impl fmt::Debug for RedisSentinelBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSentinelBuilder")
            .field("sentinels", &self.sentinels)
            .field("master_name", &self.master_name)
            .field("sentinel_password", &self.sentinel_password)
            .field("db", &self.db)
            .field("username", &self.username)
            .field("password", &self.password)
            .field("connect_timeout", &self.connect_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("max_connections", &self.max_connections)
            .field("pool_size", &self.pool_size)
            .field("breaker", &self.breaker)
            .finish_non_exhaustive()
    }
}

impl RedisSentinelBuilder {
    /// Adds a Sentinel, `host[:port]` (port 26379 by default; IPv6 as `[::1]:26379`). Give
    /// several: they are asked in this order, and the watcher moves from one to the next.
    pub fn sentinel(mut self, addr: impl Into<String>) -> Self {
        self.sentinels.push(addr.into());
        self
    }

    /// The name the Sentinels know the master by (`sentinel monitor <name> ...`; default
    /// `mymaster`).
    pub fn master_name(mut self, name: impl Into<String>) -> Self {
        self.master_name = Some(name.into());
        self
    }

    /// The Sentinels' own password (their `requirepass`; default none).
    pub fn sentinel_password(mut self, password: impl AsRef<str>) -> Self {
        self.sentinel_password = Some(Secret::new(password.as_ref()));
        self
    }

    /// The database on the master: 0 (the default) to
    /// [`MAX_REDIS_DB`](cache_core::config::MAX_REDIS_DB).
    pub fn db(mut self, db: i64) -> Self {
        self.db = Some(db);
        self
    }

    /// The ACL user name on the data nodes (default: none).
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }

    /// The data nodes' password (default: none).
    pub fn password(mut self, password: impl AsRef<str>) -> Self {
        self.password = Some(Secret::new(password.as_ref()));
        self
    }

    /// How long opening a connection may take, to a Sentinel or a data node (default
    /// 250 ms); also the longest a call waits for the first resolution of the master.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long a Sentinel or the master may take to answer (default 200 ms).
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// The most blocking connections to the master open at once; see
    /// [`RedisBackendBuilder::max_connections`](crate::RedisBackendBuilder::max_connections).
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max;
        self
    }

    /// The most idle blocking connections kept; see
    /// [`RedisBackendBuilder::pool_size`](crate::RedisBackendBuilder::pool_size).
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size;
        self
    }

    /// The circuit breaker of each master (default [`BreakerSettings::default`]).
    pub fn breaker(mut self, settings: BreakerSettings) -> Self {
        self.breaker = settings;
        self
    }

    /// Checks the settings and builds the backend. It does not connect.
    ///
    /// No Sentinel, a malformed Sentinel address, a master name with spaces, an
    /// out-of-range `db`, a zero time-out or a zero `max_connections` is an
    /// [`ErrorKind::Config`](cache_core::ErrorKind::Config) error naming the setter (or,
    /// from [`from_config`](crate::from_config), the variable) and the allowed values.
    pub fn build(self) -> Result<RedisBackend> {
        check_limits(
            self.connect_timeout,
            self.response_timeout,
            self.max_connections,
        )?;
        let names = self.names;
        if self.sentinels.is_empty() {
            return Err(Error::config(
                names.sentinel,
                "no Sentinel given; expected at least one host:port",
            ));
        }
        let master_name = check_master_name(
            names.master,
            self.master_name
                .as_deref()
                .unwrap_or(DEFAULT_SENTINEL_MASTER),
        )?;
        let mut sentinel_auth = RedisConnectionInfo::default();
        if let Some(password) = &self.sentinel_password {
            sentinel_auth = sentinel_auth.set_password(password.expose());
        }
        let mut addrs = Vec::with_capacity(self.sentinels.len());
        let mut sentinels = Vec::with_capacity(self.sentinels.len());
        for sentinel in &self.sentinels {
            let (host, port) = parse_sentinel_addr(names.sentinel, sentinel)?;
            addrs.push(if host.contains(':') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            });
            let info = ConnectionAddr::Tcp(host, port)
                .into_connection_info()
                .map_err(|e| {
                    Error::config(names.sentinel, "the Redis client refused it").with_source(e)
                })?;
            sentinels.push(info.set_redis_settings(sentinel_auth.clone()));
        }
        let db = check_db(names.db, self.db.unwrap_or(0))?;
        let mut node = RedisConnectionInfo::default().set_db(db);
        if let Some(username) = &self.username {
            node = node.set_username(username);
        }
        if let Some(password) = &self.password {
            node = node.set_password(password.expose());
        }
        let target = self.describe(&master_name, &addrs, db);
        let settings = Settings {
            master_name,
            sentinels,
            node,
            timeouts: Timeouts {
                connect: self.connect_timeout,
                response: self.response_timeout,
            },
            pool: PoolLimits {
                max_connections: self.max_connections,
                idle: self.pool_size,
            },
            breaker: self.breaker,
        };
        Ok(RedisBackend::from_topology(
            Topology::Sentinel(Sentinel::new(settings)),
            target,
        ))
    }

    /// The deployment for `Debug` and logs, every password as `***`.
    fn describe(&self, master_name: &str, addrs: &[String], db: i64) -> String {
        let mut target = format!("Sentinel master `{master_name}` via {}", addrs.join(","));
        if self.sentinel_password.is_some() {
            target.push_str(" (Sentinel password ***)");
        }
        target.push_str(&format!(", db {db}"));
        if let Some(username) = &self.username {
            target.push_str(&format!(", user {username}"));
        }
        if self.password.is_some() {
            target.push_str(", password ***");
        }
        target
    }
}

/// The backend of a `CACHE_TYPE=RedisSentinelCache` configuration: the Sentinels of
/// `CACHE_REDIS_SENTINELS` (default `127.0.0.1:26379`, as Flask-Caching), the master
/// `CACHE_REDIS_SENTINEL_MASTER` (default `mymaster`), `CACHE_REDIS_SENTINEL_PASSWORD`
/// for the Sentinels and `CACHE_REDIS_PASSWORD`, `CACHE_REDIS_DB` for the data nodes.
pub(crate) fn backend_for(config: &Config) -> Result<RedisBackend> {
    let redis = &config.redis;
    let stray = [
        ("CACHE_REDIS_URL", redis.url.is_some()),
        ("CACHE_REDIS_HOST", redis.host.is_some()),
        ("CACHE_REDIS_PORT", redis.port.is_some()),
    ];
    if let Some((name, _)) = stray.iter().find(|(_, set)| *set) {
        return Err(Error::config(
            name,
            "does not apply to RedisSentinelCache: the Sentinels name the master; list them \
             in CACHE_REDIS_SENTINELS",
        ));
    }
    let mut builder = RedisBackend::sentinel_builder();
    builder.names = Names::ENV;
    if redis.sentinels.is_empty() {
        builder = builder.sentinel(format!(
            "127.0.0.1:{}",
            cache_core::config::DEFAULT_SENTINEL_PORT
        ));
    }
    for (host, port) in &redis.sentinels {
        builder = builder.sentinel(if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        });
    }
    if let Some(name) = &redis.sentinel_master {
        builder = builder.master_name(name.clone());
    }
    if let Some(password) = &redis.sentinel_password {
        builder = builder.sentinel_password(password.expose());
    }
    if let Some(db) = redis.db {
        builder = builder.db(db);
    }
    if let Some(password) = &redis.password {
        builder = builder.password(password.expose());
    }
    builder.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_settings_name_their_setter() {
        for (builder, says) in [
            (
                RedisBackend::sentinel_builder(),
                "invalid sentinel: no Sentinel",
            ),
            (
                RedisBackend::sentinel_builder().sentinel("h:0"),
                "invalid sentinel: ",
            ),
            (
                RedisBackend::sentinel_builder()
                    .sentinel("h")
                    .master_name("a b"),
                "invalid master_name: ",
            ),
            (
                RedisBackend::sentinel_builder().sentinel("h").db(5000),
                "invalid db: ",
            ),
            (
                RedisBackend::sentinel_builder()
                    .sentinel("h")
                    .max_connections(0),
                "max_connections",
            ),
        ] {
            let err = builder.build().unwrap_err();
            assert!(err.is_config() && err.to_string().contains(says), "{err}");
        }
    }

    #[test]
    fn the_description_masks_both_passwords() {
        let builder = RedisBackend::sentinel_builder()
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
