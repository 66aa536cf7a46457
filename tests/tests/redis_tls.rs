//! `rediss://` against a TLS-only port of a real `redis-server`, with a CA the test makes
//! (`openssl`). Needs cache-redis's `tls` feature, which this package enables.

mod redis_support;

use std::time::Duration;

use cache_core::Cache;
use cache_core::backend::{Backend, BlockingBackend};
use cache_redis::{BreakerSettings, RedisBackend};
use tests::RedisServer;

fn tls_server() -> RedisServer {
    match RedisServer::builder()
        .tls()
        .requirepass("tls-pass")
        .try_start()
    {
        Ok(server) => server,
        Err(e) if e.is_tls_unsupported() => {
            panic!("this redis-server was built without TLS support, so TLS is untested: {e}")
        }
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test]
async fn rediss_with_a_private_ca_works_for_both_halves() {
    let server = tls_server();
    assert!(server.url().starts_with("rediss://"));
    let backend = RedisBackend::builder()
        .url(server.url())
        .tls_root_cert(server.tls_ca_cert().unwrap())
        .build()
        .unwrap();
    let cache = Cache::builder()
        .backend(backend)
        .namespace("tls:")
        .build()
        .unwrap();
    let v = cache
        .get_or_set_with("k", Duration::from_secs(60), || async { 5u32 })
        .await;
    assert_eq!(v, 5);
    assert_eq!(cache.get::<u32>("k").await.unwrap(), Some(5));
    cache.blocking().set("b", &6u32).unwrap();
    assert_eq!(cache.blocking().get::<u32>("b").unwrap(), Some(6));
    // The entries are really on that server (read through its plain admin port).
    assert_eq!(server.dbsize(), 2);
    assert!(!format!("{cache:?}").contains("tls-pass"));
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused() {
    let server = tls_server();
    // No private CA: the public roots do not trust the test CA.
    let backend = RedisBackend::builder()
        .url(server.url())
        .breaker(BreakerSettings::disabled())
        .build()
        .unwrap();
    let err = Backend::get(&backend, "k").await.unwrap_err();
    assert!(!err.to_string().contains("tls-pass"), "{err}");
    assert!(BlockingBackend::get(&backend, "k").is_err());
    assert_eq!(server.dbsize(), 0);
}

#[tokio::test]
async fn plain_redis_to_the_tls_port_fails() {
    let server = tls_server();
    let plain = server.url().replacen("rediss://", "redis://", 1);
    let backend = RedisBackend::builder()
        .url(plain)
        .breaker(BreakerSettings::disabled())
        .build()
        .unwrap();
    assert!(Backend::get(&backend, "k").await.is_err());
}
