//! Helpers shared by the `redis_*` integration tests.

#![allow(dead_code)] // Each test file uses a different subset.

use std::time::Duration;

use cache_core::Cache;
use cache_redis::{BreakerSettings, RedisBackend};
use tests::RedisServer;

/// A backend on `server` with the default time-outs and a breaker that never opens (so
/// tests that are not about the breaker are not affected by it).
pub fn backend(server: &RedisServer) -> RedisBackend {
    RedisBackend::builder()
        .url(server.url())
        .breaker(BreakerSettings::disabled())
        .build()
        .expect("a valid test URL")
}

/// A cache on `server` in namespace `ns`.
pub fn cache(server: &RedisServer, ns: &str) -> Cache {
    cache_on(backend(server), ns)
}

/// A cache on `backend` in namespace `ns`.
pub fn cache_on(backend: RedisBackend, ns: &str) -> Cache {
    Cache::builder()
        .backend(backend)
        .namespace(ns)
        .default_timeout(Duration::from_secs(60))
        .build()
        .expect("a valid cache")
}

/// Runs `f` as a Redis command on a raw connection.
pub fn raw<T: redis::FromRedisValue>(server: &RedisServer, cmd: &mut redis::Cmd) -> T {
    cmd.query(&mut server.connection())
        .expect("raw command succeeds")
}
