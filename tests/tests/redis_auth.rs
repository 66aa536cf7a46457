//! Passwords, ACL users, URLs and configuration; secrets never show in `Debug`, errors or
//! logs.

mod redis_support;

use std::time::Duration;

use cache_core::backend::{Backend, BlockingBackend};
use cache_core::config::{CacheType, Config};
use cache_redis::{BreakerSettings, RedisBackend};
use tests::RedisServer;

const PASSWORD: &str = "hunter2-Sekr3t";

fn config(vars: &[(&str, String)]) -> Config {
    Config::from_vars(|name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    })
    .unwrap()
}

#[tokio::test]
async fn requirepass_works_through_the_url() {
    let server = RedisServer::builder().requirepass(PASSWORD).start();
    let backend = RedisBackend::open(&server.url()).unwrap();
    Backend::set(&backend, "k", "v".into(), None).await.unwrap();
    assert_eq!(
        BlockingBackend::get(&backend, "k").unwrap().as_deref(),
        Some(&b"v"[..])
    );
    assert!(!format!("{backend:?}").contains(PASSWORD));
}

#[tokio::test]
async fn an_acl_user_works_and_another_db_is_separate() {
    let server = RedisServer::builder().acl_user("app", PASSWORD).start();
    let url = server.url_for_user("app", PASSWORD).replace("/0", "/3");
    let backend = RedisBackend::open(&url).unwrap();
    Backend::set(&backend, "k", "v".into(), None).await.unwrap();
    BlockingBackend::set(&backend, "b", "v".into(), None).unwrap();
    assert_eq!(server.dbsize(), 0, "db 0 is untouched");
    let mut conn = server.connection();
    let _: () = redis::cmd("SELECT").arg(3).query(&mut conn).unwrap();
    let n: u64 = redis::cmd("DBSIZE").query(&mut conn).unwrap();
    assert_eq!(n, 2);
    let shown = format!("{backend:?}");
    assert!(
        shown.contains("app") && !shown.contains(PASSWORD),
        "{shown}"
    );
}

#[tokio::test]
async fn a_wrong_password_is_a_clear_error_without_the_password() {
    let server = RedisServer::builder().requirepass("right-one").start();
    let wrong = format!("redis://:{PASSWORD}@127.0.0.1:{}/0", server.port());
    let backend = RedisBackend::builder()
        .url(&wrong)
        .breaker(BreakerSettings::disabled())
        .build()
        .unwrap();
    let async_err = Backend::get(&backend, "k").await.unwrap_err();
    let blocking_err = BlockingBackend::get(&backend, "k").unwrap_err();
    for err in [&async_err, &blocking_err] {
        let shown = format!("{err} | {err:?} | {:?}", std::error::Error::source(err));
        assert!(!shown.contains(PASSWORD), "{shown}");
        assert!(
            shown.contains("credentials") || shown.contains("WRONGPASS"),
            "not a clear error: {shown}"
        );
        assert!(!err.is_timeout(), "{shown}");
    }
    // An ACL user with a wrong password too.
    let server = RedisServer::builder().acl_user("app", "right-one").start();
    let backend = RedisBackend::open(&server.url_for_user("app", PASSWORD)).unwrap();
    let err = Backend::get(&backend, "k").await.unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(
        !shown.contains(PASSWORD) && shown.contains("credentials"),
        "{shown}"
    );
}

#[test]
fn malformed_urls_are_config_errors_naming_the_variable_and_hiding_the_password() {
    for url in [
        format!("redis://:{PASSWORD}@localhost:6379/not-a-db"),
        format!("http://user:{PASSWORD}@localhost"),
        format!("redis//user:{PASSWORD}@localhost"),
        format!("redis://user:{PASSWORD}@[::1"),
    ] {
        let config = config(&[("CACHE_REDIS_URL", url.clone())]);
        let err = cache_redis::from_config(&config).unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(err.is_config(), "{url}: {shown}");
        assert!(shown.contains("CACHE_REDIS_URL"), "{shown}");
        assert!(!shown.contains(PASSWORD), "{shown}");
    }
}

#[tokio::test]
async fn from_config_builds_every_cache_type() {
    let server = RedisServer::builder().requirepass(PASSWORD).start();
    // CACHE_REDIS_URL.
    let by_url = config(&[
        ("CACHE_REDIS_URL", server.url()),
        ("CACHE_KEY_PREFIX", "viaurl:".into()),
        ("CACHE_DEFAULT_TIMEOUT", "30".into()),
    ]);
    assert_eq!(by_url.cache_type, CacheType::Redis);
    let cache = cache_redis::from_config(&by_url).unwrap();
    cache.set("k", &1u8).await.unwrap();
    let ttl: i64 = redis::cmd("TTL")
        .arg("viaurl:k")
        .query(&mut server.connection())
        .unwrap();
    assert!((1..=30).contains(&ttl), "{ttl}");
    assert!(!format!("{cache:?}").contains(PASSWORD));

    // Flask-style parts.
    let by_parts = config(&[
        ("CACHE_REDIS_HOST", "127.0.0.1".into()),
        ("CACHE_REDIS_PORT", server.port().to_string()),
        ("CACHE_REDIS_DB", "0".into()),
        ("CACHE_REDIS_PASSWORD", PASSWORD.into()),
        ("CACHE_KEY_PREFIX", "viaparts:".into()),
    ]);
    let cache = cache_redis::from_config(&by_parts).unwrap();
    cache.blocking().set("k", &2u8).unwrap();
    assert_eq!(server.dbsize(), 2);

    // Memory and null caches go through Config::build.
    let memory =
        cache_redis::from_config(&config(&[("CACHE_TYPE", "SimpleCache".into())])).unwrap();
    assert!(format!("{memory:?}").contains("MemoryBackend"));
    let null = cache_redis::from_config(&config(&[("CACHE_TYPE", "NullCache".into())])).unwrap();
    null.blocking().set("k", &1u8).unwrap();
    assert_eq!(
        null.blocking().get::<u8>("k").unwrap(),
        None,
        "the null cache stores nothing"
    );
}

#[test]
fn building_never_connects_so_a_service_starts_while_redis_is_down() {
    let mut server = RedisServer::start();
    let url = server.url();
    server.kill();
    let backend = RedisBackend::builder()
        .url(&url)
        .connect_timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let err = BlockingBackend::get(&backend, "k").unwrap_err();
    assert!(err.is_connection(), "{err:?}");
    server.restart();
    assert_eq!(BlockingBackend::get(&backend, "k").unwrap(), None);
}

#[tokio::test]
async fn a_unix_socket_url_works_with_a_password() {
    let server = RedisServer::builder()
        .unix_socket()
        .requirepass(PASSWORD)
        .start();
    let url = server.unix_url().unwrap();
    let backend = RedisBackend::open(&url).unwrap();
    assert!(!format!("{backend:?}").contains(PASSWORD));
    Backend::set(&backend, "k", "v".into(), None).await.unwrap();
    BlockingBackend::set(&backend, "b", "v".into(), None).unwrap();
    assert_eq!(server.dbsize(), 2);
}

/// Issue 9: an ACL user without `SCAN` got "Redis refused the credentials (check the user
/// name and password)" from `clear()`, though its credentials were right.
#[tokio::test]
async fn noperm_for_an_acl_user_without_scan_is_a_permission_error_not_bad_credentials() {
    let server = RedisServer::start();
    let _: () = redis_support::raw(
        &server,
        redis::cmd("ACL")
            .arg("SETUSER")
            .arg("noscan")
            .arg("on")
            .arg(format!(">{PASSWORD}"))
            .arg("~*")
            .arg("&*")
            .arg("+@all")
            .arg("-scan"),
    );
    let backend = RedisBackend::builder()
        .url(server.url_for_user("noscan", PASSWORD))
        .breaker(BreakerSettings::disabled())
        .build()
        .unwrap();
    let cache = redis_support::cache_on(backend, "perm:");
    // The credentials are right: reads and writes work.
    cache.set("k", &1u8).await.unwrap();
    assert_eq!(cache.blocking().get::<u8>("k").unwrap(), Some(1));

    let async_err = cache.clear().await.unwrap_err();
    let blocking_err = cache.blocking().clear().unwrap_err();
    for err in [&async_err, &blocking_err] {
        let shown = format!("{err:#}");
        assert!(err.is_permission(), "{:?}: {shown}", err.kind());
        assert!(!err.is_authentication() && !err.is_connection(), "{shown}");
        assert!(!shown.contains("credentials"), "{shown}");
        assert!(shown.contains("ACL user"), "{shown}");
        let source = std::error::Error::source(err)
            .expect("the redis error")
            .to_string();
        assert!(
            source.contains("scan"),
            "the cause names the command: {source}"
        );
        assert!(!shown.contains(PASSWORD), "{shown}");
    }
}

#[tokio::test]
async fn wrong_and_missing_passwords_are_authentication_errors() {
    let server = RedisServer::builder().requirepass("right-one").start();
    let port = server.port();
    for url in [
        // WRONGPASS, during the handshake.
        format!("redis://:{PASSWORD}@127.0.0.1:{port}/0"),
        // NOAUTH: no password where one is required.
        format!("redis://127.0.0.1:{port}/0"),
    ] {
        let backend = RedisBackend::builder()
            .url(&url)
            .breaker(BreakerSettings::disabled())
            .build()
            .unwrap();
        let async_err = Backend::get(&backend, "k").await.unwrap_err();
        let blocking_err = BlockingBackend::get(&backend, "k").unwrap_err();
        for err in [&async_err, &blocking_err] {
            let shown = format!("{err:#}");
            assert!(err.is_authentication(), "{:?}: {shown}", err.kind());
            assert_eq!(
                err.to_string(),
                "Redis refused the credentials (check the user name and password)"
            );
            assert!(!shown.contains(PASSWORD), "{shown}");
        }
    }
}
