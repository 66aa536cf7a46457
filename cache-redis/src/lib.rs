//! The Redis backend of [`cache_core`]: the same `#[memoize]` functions and `Cache` API,
//! with entries shared by every process that points at the same Redis.
//!
//! ```no_run
//! use cache_core::{Cache, memoize};
//!
//! #[memoize(timeout = 60)]
//! fn square(num: u64) -> String {
//!     format!("Square of {num} is {}", num * num)
//! }
//!
//! # fn main() -> cache_core::Result<()> {
//! // CACHE_REDIS_URL=redis://localhost:6379/0 (or CACHE_TYPE=SimpleCache for memory)
//! cache_core::install(cache_redis::from_env()?)?;
//! assert_eq!(square(4), "Square of 4 is 16");
//! # Ok(()) }
//! ```
//!
//! # Configuration
//!
//! [`from_env`] reads the variables of [`cache_core::config::Config`] (Flask-Caching's
//! names) and builds whichever cache `CACHE_TYPE` asks for; with Redis, the server is
//! `CACHE_REDIS_URL` (`redis://`, `rediss://`, `unix://`) or `CACHE_REDIS_HOST`, `_PORT`,
//! `_DB` and `_PASSWORD`. Every value is checked when the cache is built (the allowed values
//! are in [`Config`]'s table and [`RedisBackendBuilder::url`]); a bad one is an
//! [`ErrorKind::Config`](cache_core::ErrorKind::Config) error naming the variable, and no
//! error, `Debug` output or log line shows a password, whichever URL form holds it. A Redis
//! Cluster is `CACHE_TYPE=RedisClusterCache` (or `redis-cluster`) with the seed nodes in
//! `CACHE_REDIS_CLUSTER="host1:port1,host2:port2"` (or `CACHE_REDIS_CLUSTER` alone); see
//! [`RedisBackendBuilder::cluster`]. For
//! time-outs, pool size and the circuit breaker, build a [`RedisBackend`] with
//! [`RedisBackend::builder`].
//!
//! With `CACHE_TYPE=RedisSentinelCache` (or `redis-sentinel`, the default when
//! `CACHE_REDIS_SENTINELS` is set), the Sentinels of `CACHE_REDIS_SENTINELS` name the
//! master `CACHE_REDIS_SENTINEL_MASTER`, and the backend follows it across failovers; in
//! code, [`RedisBackendBuilder::sentinel`].
//!
//! | setting | default |
//! |---|---|
//! | connect time-out | [`DEFAULT_CONNECT_TIMEOUT`] (250 ms) |
//! | response time-out | [`DEFAULT_RESPONSE_TIMEOUT`] (200 ms) |
//! | blocking connections open at once | [`DEFAULT_MAX_CONNECTIONS`] (16) |
//! | idle blocking connections kept | [`DEFAULT_POOL_SIZE`] (16) |
//! | circuit breaker | opens after 3 consecutive failures; a background probe every 200 ms closes it ([`BreakerSettings`]) |
//!
//! # Features
//!
//! | Name | Description | Default? |
//! |---|---|---|
//! | `tls` | `rediss://` URLs with rustls; public roots, or a private CA through `RedisBackendBuilder::tls_root_cert` | no |
//!
//! MSRV: Rust 1.88.

mod backend;
mod blocking;
mod breaker;
mod bus;
mod cluster;
mod error;
mod migration;
mod ops;
mod pool;
mod seeds;
mod server;
mod slots;
mod split;
mod target;
mod topology;

use cache_core::config::{CacheType, Config};
use cache_core::{Cache, Result};

pub use backend::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_CONNECTIONS, DEFAULT_POOL_SIZE, DEFAULT_RESPONSE_TIMEOUT,
    RedisBackend, RedisBackendBuilder,
};
pub use breaker::BreakerSettings;

/// A cache configured from the environment: memory, null or Redis, as `CACHE_TYPE` (or the
/// presence of `CACHE_REDIS_URL`/`CACHE_REDIS_HOST`) says. See [`from_config`].
pub fn from_env() -> Result<Cache> {
    from_config(&Config::from_env()?)
}

/// A cache for `config`, whatever its type: memory and null caches as
/// [`Config::build`] makes them, Redis here, with the namespace (`CACHE_KEY_PREFIX`) and
/// default timeout (`CACHE_DEFAULT_TIMEOUT`) of the configuration.
///
/// It does not connect: a service starts while Redis is down.
///
/// ```
/// use cache_core::config::Config;
///
/// let env = [("CACHE_REDIS_URL", "redis://:hunter2@localhost:6379/2"), ("CACHE_KEY_PREFIX", "app:")];
/// let config = Config::from_vars(|name| env.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string()))?;
/// let cache = cache_redis::from_config(&config)?;
/// assert_eq!(cache.namespace(), "app:");
/// assert!(!format!("{cache:?}").contains("hunter2"));
///
/// let bad = Config::from_vars(|name| (name == "CACHE_REDIS_URL").then(|| "redis://:hunter2@host/x".to_owned()))?;
/// let err = cache_redis::from_config(&bad).unwrap_err();
/// assert!(err.is_config() && err.to_string().contains("CACHE_REDIS_URL"));
/// assert!(!err.to_string().contains("hunter2"));
/// # Ok::<(), cache_core::Error>(())
/// ```
pub fn from_config(config: &Config) -> Result<Cache> {
    match config.cache_type {
        CacheType::Redis | CacheType::RedisCluster | CacheType::RedisSentinel => {
            let builder = Cache::builder()
                .backend(backend_for(config)?)
                .namespace(config.key_prefix.clone())
                .default_timeout(config.default_timeout);
            // `CACHE_LOCAL_TIMEOUT`: a near cache in front of Redis.
            match config.near_cache() {
                Some(near) => builder.near_cache(near).build(),
                None => builder.build(),
            }
        }
        _ => config.build(),
    }
}

/// The Redis backend a configuration describes: one server, a cluster, or the master of a
/// Sentinel set-up (the Sentinels of `CACHE_REDIS_SENTINELS`, default `127.0.0.1:26379` as
/// in Flask-Caching, the master `CACHE_REDIS_SENTINEL_MASTER`, `CACHE_REDIS_SENTINEL_PASSWORD`
/// for the Sentinels; `CACHE_REDIS_PASSWORD` and `CACHE_REDIS_DB` are the data nodes').
fn backend_for(config: &Config) -> Result<RedisBackend> {
    let redis = &config.redis;
    let mut builder = RedisBackend::builder().env_names();
    if config.cache_type == CacheType::RedisSentinel {
        builder = backend::sentinel::from_settings(builder, redis);
    }
    if config.cache_type == CacheType::RedisCluster {
        let Some(seeds) = &redis.cluster else {
            return Err(cache_core::Error::config(
                "CACHE_REDIS_CLUSTER",
                "RedisClusterCache needs the seed nodes, as in \"host1:port1,host2:port2\"",
            ));
        };
        builder = builder.cluster(seeds.expose());
    }
    if let Some(url) = &redis.url {
        builder = builder.url(url.expose());
    }
    if let Some(host) = &redis.host {
        builder = builder.host(host.clone());
    }
    if let Some(port) = redis.port {
        builder = builder.port(port);
    }
    if let Some(db) = redis.db {
        builder = builder.db(db);
    }
    if let Some(password) = &redis.password {
        builder = builder.password(password.expose());
    }
    builder.build()
}
