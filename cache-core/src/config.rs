//! Configuration from the environment, with Flask-Caching's variable names.

mod redact;
mod sentinel;

use std::time::Duration;

use crate::backend::memory::MemoryBackend;
use crate::backend::null::NullBackend;
use crate::cache::{DEFAULT_NAMESPACE, DEFAULT_TIMEOUT};
use crate::{Cache, Error, NearCache, Result};

pub use crate::limits::{
    MAX_REDIS_DB, MAX_TIMEOUT, REDIS_DBS, check_db, check_host, check_port, check_timeout,
};
pub use redact::{Secret, redact_url};
pub use sentinel::{
    DEFAULT_SENTINEL_MASTER, DEFAULT_SENTINEL_PORT, check_master_name, parse_sentinel_addr,
    parse_sentinels,
};

/// Which backend a configuration asks for (`CACHE_TYPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CacheType {
    /// In process memory: `SimpleCache`, `memory` (the default without Redis settings).
    Memory,
    /// Redis: `RedisCache`, `redis` (the default when `CACHE_REDIS_URL` or `_HOST` is set).
    Redis,
    /// No caching: `NullCache`, `null`.
    Null,
    /// Redis behind Sentinels, following failovers: `RedisSentinelCache`, `redis-sentinel`
    /// (the default when `CACHE_REDIS_SENTINELS` is set).
    RedisSentinel,
    /// Redis Cluster: `RedisClusterCache`, `redis-cluster` (the default when
    /// `CACHE_REDIS_CLUSTER` is set).
    RedisCluster,
}

impl CacheType {
    fn parse(value: &str) -> Result<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "simplecache" | "simple" | "memory" | "memorycache" => Ok(Self::Memory),
            "rediscache" | "redis" => Ok(Self::Redis),
            "nullcache" | "null" | "none" => Ok(Self::Null),
            "redissentinelcache" | "redis-sentinel" | "redissentinel" | "sentinel" => {
                Ok(Self::RedisSentinel)
            }
            "redisclustercache" | "redis-cluster" | "rediscluster" => Ok(Self::RedisCluster),
            _ => Err(Error::config(
                "CACHE_TYPE",
                format!(
                    "unknown cache type {value:?}; expected SimpleCache (or memory), \
                     RedisCache (or redis), RedisClusterCache (or redis-cluster), \
                     RedisSentinelCache (or redis-sentinel), or NullCache (or null)"
                ),
            )),
        }
    }
}

/// The Redis settings of a configuration; the Redis backend reads them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisSettings {
    /// `CACHE_REDIS_URL`: `redis://`, `rediss://` or `unix://` (checked by the Redis
    /// backend, which parses it).
    pub url: Option<Secret>,
    /// `CACHE_REDIS_HOST`: a host name or IP address (see [`check_host`]).
    pub host: Option<String>,
    /// `CACHE_REDIS_PORT`: 1 to 65535.
    pub port: Option<u16>,
    /// `CACHE_REDIS_DB`: 0 to [`MAX_REDIS_DB`].
    pub db: Option<i64>,
    /// `CACHE_REDIS_PASSWORD`.
    pub password: Option<Secret>,
    /// `CACHE_REDIS_SENTINELS`: the Sentinels, `host:port` each (see [`parse_sentinels`]);
    /// empty when unset.
    pub sentinels: Vec<(String, u16)>,
    /// `CACHE_REDIS_SENTINEL_MASTER`: the master's name (see [`check_master_name`]).
    pub sentinel_master: Option<String>,
    /// `CACHE_REDIS_SENTINEL_PASSWORD`: the Sentinels' own password.
    pub sentinel_password: Option<Secret>,
    /// `CACHE_REDIS_CLUSTER`: the seed nodes of a Redis Cluster, `host:port` or `redis://`
    /// URLs separated by commas (checked by the Redis backend, which parses them).
    pub cluster: Option<Secret>,
}

/// A cache configuration, usually read with [`Config::from_env`].
///
/// | variable | allowed values | default |
/// |---|---|---|
/// | `CACHE_TYPE` | `SimpleCache`/`memory`, `RedisCache`/`redis`, `RedisClusterCache`/`redis-cluster`, `RedisSentinelCache`/`redis-sentinel`, `NullCache`/`null` (any case) | `redis-cluster` if `CACHE_REDIS_CLUSTER` is set, else `redis-sentinel` if `CACHE_REDIS_SENTINELS` is set, else `redis` if a Redis URL or host is set, else `memory` |
/// | `CACHE_DEFAULT_TIMEOUT` | whole seconds, `0` (never expire) to 3153600000 (100 years, [`MAX_TIMEOUT`]) | `300` |
/// | `CACHE_KEY_PREFIX` | any text: the namespace before every key | `cache:` |
/// | `CACHE_THRESHOLD` | most entries kept in memory, 1 to 2^64-1 | `10000` |
/// | `CACHE_LOCAL_TIMEOUT` | whole seconds an annotated function's result may be served from process memory (the near cache, [`NearCache`]), `0` (off) to 3153600000 | `0` (off) |
/// | `CACHE_REDIS_URL` | `redis://[[user]:password@]host[:port][/db][?protocol=P]`, `rediss://..[#insecure]` (TLS), `unix:///path.sock[?db=N&user=U&pass=P&protocol=P]`; `P` is `2`, `resp2`, `3` or `resp3` | |
/// | `CACHE_REDIS_HOST` | a host name (RFC 1123, `_` allowed), an IPv4 address, or an IPv6 address (`::1` or `[::1]`) | `localhost` |
/// | `CACHE_REDIS_PORT` | 1 to 65535 | `6379` |
/// | `CACHE_REDIS_DB` | 0 to 1023 ([`MAX_REDIS_DB`]) | `0` |
/// | `CACHE_REDIS_PASSWORD` | any text (for a Sentinel set-up: the data nodes' password) | none |
/// | `CACHE_REDIS_SENTINELS` | `host[:port],host[:port],..` ([`parse_sentinels`]; IPv6 as `[::1]:26379`); the port defaults to 26379 | `127.0.0.1:26379` |
/// | `CACHE_REDIS_SENTINEL_MASTER` | the master's name as the Sentinels know it, without spaces | `mymaster` |
/// | `CACHE_REDIS_SENTINEL_PASSWORD` | any text: the Sentinels' `requirepass` | none |
/// | `CACHE_REDIS_CLUSTER` | Redis Cluster seed nodes, comma-separated: `host:port` or `redis://`/`rediss://` URLs (no database but 0) | |
///
/// Every value is checked here (the URL by the Redis backend, which parses it): a bad one
/// is an [`ErrorKind::Config`](crate::ErrorKind::Config) error naming the variable and the
/// allowed values, at start-up rather than on every call. Passwords and URLs are kept as
/// [`Secret`]s and never printed.
///
/// ```
/// use cache_core::config::{CacheType, Config};
///
/// let env = [("CACHE_DEFAULT_TIMEOUT", "60"), ("CACHE_KEY_PREFIX", "myapp:")];
/// let config = Config::from_vars(|name| env.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string()))?;
/// assert_eq!(config.cache_type, CacheType::Memory);
/// assert_eq!(config.default_timeout.as_secs(), 60);
///
/// let bad = Config::from_vars(|name| (name == "CACHE_DEFAULT_TIMEOUT").then(|| "soon".to_owned()));
/// assert!(bad.unwrap_err().to_string().contains("CACHE_DEFAULT_TIMEOUT"));
/// # Ok::<(), cache_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// The backend.
    pub cache_type: CacheType,
    /// The timeout of entries stored without one.
    pub default_timeout: Duration,
    /// The namespace.
    pub key_prefix: String,
    /// The memory backend's entry bound.
    pub threshold: Option<u64>,
    /// `CACHE_LOCAL_TIMEOUT`: the near cache's local timeout; `None` (or `0`) for no near
    /// cache.
    pub local_timeout: Option<Duration>,
    /// Redis settings, used when `cache_type` is [`CacheType::Redis`].
    pub redis: RedisSettings,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            cache_type: CacheType::Memory,
            default_timeout: DEFAULT_TIMEOUT,
            key_prefix: DEFAULT_NAMESPACE.to_owned(),
            threshold: None,
            local_timeout: None,
            redis: RedisSettings::default(),
        }
    }
}

const TIMEOUT: &str = "CACHE_DEFAULT_TIMEOUT";
const LOCAL_TIMEOUT: &str = "CACHE_LOCAL_TIMEOUT";
const PORT: &str = "CACHE_REDIS_PORT";
const DB: &str = "CACHE_REDIS_DB";
const SENTINELS: &str = "CACHE_REDIS_SENTINELS";
const SENTINEL_MASTER: &str = "CACHE_REDIS_SENTINEL_MASTER";

fn parse_number<T: std::str::FromStr>(name: &str, value: &str, what: &str) -> Result<T> {
    value
        .trim()
        .parse()
        .map_err(|_| Error::config(name, format!("expected {what}, got {value:?}")))
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Reads variables through `lookup` (for tests, or another source of settings).
    pub fn from_vars(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let var = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let mut config = Config::default();
        config.redis = RedisSettings {
            url: var("CACHE_REDIS_URL").map(Secret::new),
            host: var("CACHE_REDIS_HOST")
                .map(|v| check_host("CACHE_REDIS_HOST", &v))
                .transpose()?,
            port: var("CACHE_REDIS_PORT")
                .map(|v| {
                    let port = parse_number(PORT, &v, "a port number, 1 to 65535")?;
                    check_port(PORT, port)
                })
                .transpose()?,
            db: var("CACHE_REDIS_DB")
                .map(|v| {
                    let what = format!("a database number, 0 to {MAX_REDIS_DB}");
                    check_db(DB, parse_number(DB, &v, &what)?)
                })
                .transpose()?,
            password: var("CACHE_REDIS_PASSWORD").map(Secret::new),
            sentinels: var(SENTINELS)
                .map(|v| parse_sentinels(SENTINELS, &v))
                .transpose()?
                .unwrap_or_default(),
            sentinel_master: var(SENTINEL_MASTER)
                .map(|v| check_master_name(SENTINEL_MASTER, &v))
                .transpose()?,
            sentinel_password: var("CACHE_REDIS_SENTINEL_PASSWORD").map(Secret::new),
            cluster: var("CACHE_REDIS_CLUSTER").map(Secret::new),
        };
        config.cache_type = match var("CACHE_TYPE") {
            Some(value) => CacheType::parse(&value)?,
            None if config.redis.cluster.is_some() => CacheType::RedisCluster,
            None if !config.redis.sentinels.is_empty() => CacheType::RedisSentinel,
            None if config.redis.url.is_some() || config.redis.host.is_some() => CacheType::Redis,
            None => CacheType::Memory,
        };
        if let Some(v) = var(TIMEOUT) {
            let what = format!(
                "a whole number of seconds, 0 (never expire) to {}",
                MAX_TIMEOUT.as_secs()
            );
            let secs = parse_number::<u64>(TIMEOUT, &v, &what)?;
            config.default_timeout = check_timeout(TIMEOUT, Duration::from_secs(secs))?;
        }
        if let Some(v) = var(LOCAL_TIMEOUT) {
            let what = format!(
                "a whole number of seconds, 0 (no near cache) to {}",
                MAX_TIMEOUT.as_secs()
            );
            let secs = parse_number::<u64>(LOCAL_TIMEOUT, &v, &what)?;
            let local = check_timeout(LOCAL_TIMEOUT, Duration::from_secs(secs))?;
            config.local_timeout = (!local.is_zero()).then_some(local);
        }
        if let Some(prefix) = lookup("CACHE_KEY_PREFIX") {
            config.key_prefix = prefix;
        }
        config.threshold = var("CACHE_THRESHOLD")
            .map(|v| {
                parse_number(
                    "CACHE_THRESHOLD",
                    &v,
                    "a whole number of entries, at least 1",
                )
            })
            .transpose()?;
        if config.threshold == Some(0) {
            return Err(Error::config("CACHE_THRESHOLD", "must be at least 1"));
        }
        Ok(config)
    }

    /// The near cache `CACHE_LOCAL_TIMEOUT` asks for, if any.
    pub fn near_cache(&self) -> Option<NearCache> {
        self.local_timeout.map(NearCache::new)
    }

    /// Builds a memory or null cache. A Redis configuration is an error here: the Redis
    /// backend lives in the `cache-redis` crate, whose `from_config` handles every type.
    pub fn build(&self) -> Result<Cache> {
        let mut builder = Cache::builder()
            .namespace(self.key_prefix.clone())
            .default_timeout(self.default_timeout);
        if let Some(near) = self.near_cache() {
            builder = builder.near_cache(near);
        }
        match self.cache_type {
            CacheType::Memory => {
                let mut memory = MemoryBackend::builder();
                if let Some(threshold) = self.threshold {
                    memory = memory.max_entries(threshold);
                }
                builder.backend(memory.build()?).build()
            }
            CacheType::Null => builder.backend(NullBackend).build(),
            CacheType::Redis | CacheType::RedisCluster => Err(Error::config(
                "CACHE_TYPE",
                "RedisCache needs the cache-redis crate: build the cache with \
                 cache_redis::from_env() or cache_redis::from_config(..)",
            )),
            CacheType::RedisSentinel => Err(Error::config(
                "CACHE_TYPE",
                "RedisSentinelCache needs the cache-redis crate: build the cache with \
                 cache_redis::from_env() or cache_redis::from_config(..)",
            )),
        }
    }
}

impl Cache {
    /// A memory or null cache configured from the environment; see [`Config`].
    pub fn from_env() -> Result<Self> {
        Config::from_env()?.build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config> {
        Config::from_vars(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn the_type_follows_flask_names_and_redis_settings() {
        assert_eq!(config(&[]).unwrap().cache_type, CacheType::Memory);
        assert_eq!(
            config(&[("CACHE_TYPE", "RedisCache")]).unwrap().cache_type,
            CacheType::Redis
        );
        assert_eq!(
            config(&[("CACHE_TYPE", "NullCache")]).unwrap().cache_type,
            CacheType::Null
        );
        assert_eq!(
            config(&[("CACHE_TYPE", "SimpleCache")]).unwrap().cache_type,
            CacheType::Memory
        );
        let by_url = config(&[("CACHE_REDIS_URL", "redis://localhost")]).unwrap();
        assert_eq!(by_url.cache_type, CacheType::Redis);
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (name, value) in [
            ("CACHE_TYPE", "Memcached"),
            ("CACHE_DEFAULT_TIMEOUT", "-1"),
            ("CACHE_THRESHOLD", "0"),
            ("CACHE_REDIS_PORT", "99999"),
            ("CACHE_REDIS_DB", "zero"),
        ] {
            let err = config(&[(name, value)]).unwrap_err();
            assert!(err.is_config());
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    /// Out-of-range values are refused when the cache is built, not on every later call.
    #[test]
    fn out_of_range_timeout_db_port_and_host_are_refused_at_start_up() {
        for (name, value, allowed) in [
            (
                "CACHE_DEFAULT_TIMEOUT",
                "18446744073709551615",
                "0 (never expire) to 3153600000",
            ),
            (
                "CACHE_DEFAULT_TIMEOUT",
                "3153600001",
                "0 (never expire) to 3153600000",
            ),
            ("CACHE_REDIS_DB", "-1", "0 to 1023"),
            ("CACHE_REDIS_DB", "99999", "0 to 1023"),
            ("CACHE_REDIS_PORT", "0", "1 to 65535"),
            ("CACHE_REDIS_PORT", "65536", "1 to 65535"),
            ("CACHE_REDIS_HOST", "bad host name!", "IPv4 address"),
        ] {
            let err = config(&[(name, value)]).unwrap_err();
            let shown = err.to_string();
            assert!(err.is_config(), "{name}={value}: {shown}");
            assert!(
                shown.contains(name) && shown.contains(allowed),
                "{name}={value}: {shown}"
            );
        }
    }

    #[test]
    fn the_bounds_themselves_are_accepted() {
        let config = config(&[
            ("CACHE_DEFAULT_TIMEOUT", "3153600000"),
            ("CACHE_REDIS_DB", "1023"),
            ("CACHE_REDIS_PORT", "65535"),
            ("CACHE_REDIS_HOST", "[::1]"),
        ])
        .unwrap();
        assert_eq!(config.default_timeout, MAX_TIMEOUT);
        assert_eq!(config.redis.db, Some(MAX_REDIS_DB));
        assert_eq!(config.redis.port, Some(65535));
        assert_eq!(config.redis.host.as_deref(), Some("::1"));
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let config = config(&[
            ("CACHE_REDIS_URL", "redis://u:hunter2@h/0"),
            ("CACHE_REDIS_PASSWORD", "hunter2"),
        ])
        .unwrap();
        assert!(!format!("{config:?}").contains("hunter2"));
    }

    #[test]
    fn sentinel_settings_are_read_and_checked() {
        let sentinel = config(&[
            ("CACHE_REDIS_SENTINELS", "s1:26379,s2"),
            ("CACHE_REDIS_SENTINEL_MASTER", "cache"),
            ("CACHE_REDIS_SENTINEL_PASSWORD", "hunter2"),
        ])
        .unwrap();
        assert_eq!(sentinel.cache_type, CacheType::RedisSentinel);
        assert_eq!(
            sentinel.redis.sentinels,
            [("s1".to_owned(), 26379), ("s2".to_owned(), 26379)]
        );
        assert_eq!(sentinel.redis.sentinel_master.as_deref(), Some("cache"));
        assert!(!format!("{sentinel:?}").contains("hunter2"));
        for name in ["RedisSentinelCache", "redis-sentinel"] {
            let typed = config(&[("CACHE_TYPE", name)]).unwrap();
            assert_eq!(typed.cache_type, CacheType::RedisSentinel);
        }
        for (name, value) in [
            ("CACHE_REDIS_SENTINELS", "s1:0"),
            ("CACHE_REDIS_SENTINELS", "s1,,s2"),
            ("CACHE_REDIS_SENTINEL_MASTER", "my master"),
        ] {
            let err = config(&[(name, value)]).unwrap_err();
            assert!(err.is_config() && err.to_string().contains(name), "{err}");
        }
        let err = config(&[("CACHE_TYPE", "Memcached")]).unwrap_err();
        assert!(err.to_string().contains("RedisSentinelCache"), "{err}");
    }

    #[test]
    fn a_cluster_is_named_by_its_type_or_by_its_seeds() {
        for name in ["RedisClusterCache", "redis-cluster", "rediscluster"] {
            let config = config(&[("CACHE_TYPE", name)]).unwrap();
            assert_eq!(config.cache_type, CacheType::RedisCluster, "{name}");
        }
        let seeds = config(&[("CACHE_REDIS_CLUSTER", "a:7000,b:7001")]).unwrap();
        assert_eq!(seeds.cache_type, CacheType::RedisCluster);
        assert_eq!(
            seeds.redis.cluster.as_ref().map(Secret::expose),
            Some("a:7000,b:7001")
        );
        let err = config(&[("CACHE_TYPE", "cluster")]).unwrap_err();
        assert!(err.to_string().contains("RedisClusterCache"), "{err}");
        let secret = config(&[("CACHE_REDIS_CLUSTER", "redis://:hunter2@a:7000")]).unwrap();
        assert!(!format!("{secret:?}").contains("hunter2"));
    }

    #[test]
    fn an_empty_prefix_is_kept() {
        assert_eq!(config(&[("CACHE_KEY_PREFIX", "")]).unwrap().key_prefix, "");
    }

    #[test]
    fn the_local_timeout_turns_the_near_cache_on() {
        assert_eq!(config(&[]).unwrap().near_cache(), None);
        assert_eq!(
            config(&[("CACHE_LOCAL_TIMEOUT", "0")])
                .unwrap()
                .near_cache(),
            None
        );
        let on = config(&[("CACHE_LOCAL_TIMEOUT", "30")]).unwrap();
        assert_eq!(on.local_timeout, Some(Duration::from_secs(30)));
        assert_eq!(
            on.near_cache(),
            Some(NearCache::new(Duration::from_secs(30)))
        );
        assert!(on.build().unwrap().near().is_some());
        for bad in ["soon", "-1", "1.5", "99999999999"] {
            let error = config(&[("CACHE_LOCAL_TIMEOUT", bad)])
                .unwrap_err()
                .to_string();
            assert!(error.contains("CACHE_LOCAL_TIMEOUT"), "{error}");
        }
    }
}
