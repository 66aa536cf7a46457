//! Configuration from the environment, with Flask-Caching's variable names.

use std::fmt;
use std::time::Duration;

use crate::backend::memory::MemoryBackend;
use crate::backend::null::NullBackend;
use crate::cache::{DEFAULT_NAMESPACE, DEFAULT_TIMEOUT};
use crate::{Cache, Error, Result};

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
}

impl CacheType {
    fn parse(value: &str) -> Result<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "simplecache" | "simple" | "memory" | "memorycache" => Ok(Self::Memory),
            "rediscache" | "redis" => Ok(Self::Redis),
            "nullcache" | "null" | "none" => Ok(Self::Null),
            _ => Err(Error::config(
                "CACHE_TYPE",
                format!(
                    "unknown cache type {value:?}; expected SimpleCache (or memory), \
                     RedisCache (or redis), or NullCache (or null)"
                ),
            )),
        }
    }
}

/// A string that never shows in `Debug` or `Display` (passwords, URLs holding them).
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

/// `url` with any password replaced by `***`, safe for logs and errors.
///
/// ```
/// use cache_core::config::redact_url;
///
/// assert_eq!(redact_url("redis://app:hunter2@db:6379/0"), "redis://app:***@db:6379/0");
/// assert_eq!(redact_url("redis://:hunter2@db"), "redis://:***@db");
/// assert_eq!(redact_url("redis://db:6379"), "redis://db:6379");
/// ```
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    let userinfo = &rest[..at];
    match userinfo.find(':') {
        Some(colon) => format!(
            "{}{}:***{}",
            &url[..scheme_end],
            &userinfo[..colon],
            &rest[at..]
        ),
        None => url.to_owned(),
    }
}

/// The Redis settings of a configuration; the Redis backend reads them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisSettings {
    /// `CACHE_REDIS_URL`: `redis://`, `rediss://` or `unix://`.
    pub url: Option<Secret>,
    /// `CACHE_REDIS_HOST`.
    pub host: Option<String>,
    /// `CACHE_REDIS_PORT`.
    pub port: Option<u16>,
    /// `CACHE_REDIS_DB`.
    pub db: Option<i64>,
    /// `CACHE_REDIS_PASSWORD`.
    pub password: Option<Secret>,
}

/// A cache configuration, usually read with [`Config::from_env`].
///
/// | variable | meaning | default |
/// |---|---|---|
/// | `CACHE_TYPE` | `SimpleCache`/`memory`, `RedisCache`/`redis`, `NullCache`/`null` | `redis` if a Redis URL or host is set, else `memory` |
/// | `CACHE_DEFAULT_TIMEOUT` | seconds; `0` never expires | `300` |
/// | `CACHE_KEY_PREFIX` | namespace before every key | `cache:` |
/// | `CACHE_THRESHOLD` | most entries kept in memory | `10000` |
/// | `CACHE_REDIS_URL` | `redis://[user[:password]@]host[:port][/db]` | |
/// | `CACHE_REDIS_HOST`, `_PORT`, `_DB`, `_PASSWORD` | the URL's parts, Flask style | `localhost`, `6379`, `0` |
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
            redis: RedisSettings::default(),
        }
    }
}

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
            host: var("CACHE_REDIS_HOST"),
            port: var("CACHE_REDIS_PORT")
                .map(|v| parse_number("CACHE_REDIS_PORT", &v, "a port number (1-65535)"))
                .transpose()?,
            db: var("CACHE_REDIS_DB")
                .map(|v| parse_number("CACHE_REDIS_DB", &v, "a database number"))
                .transpose()?,
            password: var("CACHE_REDIS_PASSWORD").map(Secret::new),
        };
        config.cache_type = match var("CACHE_TYPE") {
            Some(value) => CacheType::parse(&value)?,
            None if config.redis.url.is_some() || config.redis.host.is_some() => CacheType::Redis,
            None => CacheType::Memory,
        };
        if let Some(v) = var("CACHE_DEFAULT_TIMEOUT") {
            let secs =
                parse_number::<u64>("CACHE_DEFAULT_TIMEOUT", &v, "a whole number of seconds")?;
            config.default_timeout = Duration::from_secs(secs);
        }
        if let Some(prefix) = lookup("CACHE_KEY_PREFIX") {
            config.key_prefix = prefix;
        }
        config.threshold = var("CACHE_THRESHOLD")
            .map(|v| parse_number("CACHE_THRESHOLD", &v, "a whole number of entries"))
            .transpose()?;
        if config.threshold == Some(0) {
            return Err(Error::config("CACHE_THRESHOLD", "must be at least 1"));
        }
        Ok(config)
    }

    /// Builds a memory or null cache. A Redis configuration is an error here: the Redis
    /// backend lives in the `cache-redis` crate, whose `from_config` handles every type.
    pub fn build(&self) -> Result<Cache> {
        let builder = Cache::builder()
            .namespace(self.key_prefix.clone())
            .default_timeout(self.default_timeout);
        match self.cache_type {
            CacheType::Memory => {
                let mut memory = MemoryBackend::builder();
                if let Some(threshold) = self.threshold {
                    memory = memory.max_entries(threshold);
                }
                builder.backend(memory.build()?).build()
            }
            CacheType::Null => builder.backend(NullBackend).build(),
            CacheType::Redis => Err(Error::config(
                "CACHE_TYPE",
                "RedisCache needs the cache-redis crate: build the cache with \
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
    fn an_empty_prefix_is_kept() {
        assert_eq!(config(&[("CACHE_KEY_PREFIX", "")]).unwrap().key_prefix, "");
    }
}
