//! Issue 9: settings that were accepted and then failed on every call are refused at
//! start-up; the bounds themselves work against a real server.

mod redis_support;

use std::time::Duration;

use cache_core::Cache;
use cache_core::config::{Config, MAX_REDIS_DB, MAX_TIMEOUT};
use tests::RedisServer;

fn config(vars: &[(&str, String)]) -> cache_core::Result<Config> {
    Config::from_vars(|name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    })
}

/// `CACHE_DEFAULT_TIMEOUT=18446744073709551615` built a cache whose every store failed
/// ("value is not an integer or out of range" from `SET .. PX`).
#[tokio::test]
async fn a_default_timeout_redis_cannot_take_is_refused_and_the_largest_allowed_one_stores() {
    let server = RedisServer::start();
    let too_long = config(&[
        ("CACHE_REDIS_URL", server.url()),
        ("CACHE_DEFAULT_TIMEOUT", u64::MAX.to_string()),
    ])
    .unwrap_err();
    assert!(too_long.is_config(), "{too_long}");
    assert!(
        too_long
            .to_string()
            .starts_with("invalid CACHE_DEFAULT_TIMEOUT: "),
        "{too_long}"
    );
    let builder_err = Cache::builder()
        .backend(redis_support::backend(&server))
        .default_timeout(Duration::from_secs(u64::MAX))
        .build()
        .unwrap_err();
    assert!(
        builder_err
            .to_string()
            .starts_with("invalid default_timeout: "),
        "{builder_err}"
    );

    let longest = config(&[
        ("CACHE_REDIS_URL", server.url()),
        ("CACHE_DEFAULT_TIMEOUT", MAX_TIMEOUT.as_secs().to_string()),
        ("CACHE_KEY_PREFIX", "long:".to_owned()),
    ])
    .unwrap();
    let cache = cache_redis::from_config(&longest).unwrap();
    cache.set("k", &1u8).await.unwrap();
    cache.blocking().set("b", &2u8).unwrap();
    assert_eq!(cache.get::<u8>("k").await.unwrap(), Some(1));
    let ttl: i64 = redis_support::raw(&server, redis::cmd("TTL").arg("long:k"));
    assert!(ttl > 3_153_599_000, "stored for 100 years, ttl {ttl}");

    // The memory backend takes it too.
    let memory = Cache::builder()
        .default_timeout(MAX_TIMEOUT)
        .build()
        .unwrap();
    memory.set("k", &1u8).await.unwrap();
    assert_eq!(memory.get::<u8>("k").await.unwrap(), Some(1));
}

/// `CACHE_REDIS_DB=-1`, `99999`, `CACHE_REDIS_PORT=0` and `CACHE_REDIS_HOST="bad host
/// name!"` were accepted, and every call failed.
#[test]
fn out_of_range_db_port_and_host_are_refused_before_any_call() {
    for (name, value, allowed) in [
        ("CACHE_REDIS_DB", "-1", "expected 0 to 1023"),
        ("CACHE_REDIS_DB", "99999", "expected 0 to 1023"),
        ("CACHE_REDIS_PORT", "0", "expected 1 to 65535"),
        (
            "CACHE_REDIS_HOST",
            "bad host name!",
            "not a host name or IP address",
        ),
    ] {
        let err = config(&[(name, value.to_owned())]).unwrap_err();
        let shown = err.to_string();
        assert!(err.is_config(), "{shown}");
        assert!(
            shown.starts_with(&format!("invalid {name}: ")) && shown.contains(allowed),
            "{name}={value}: {shown}"
        );
    }
    for (url, allowed) in [
        ("redis://127.0.0.1:6379/99999", "expected 0 to 1023"),
        ("redis://127.0.0.1:0/0", "expected 1 to 65535"),
        ("redis://bad!host/0", "not a host name or IP address"),
        (
            "redis://127.0.0.1/?protocol=9",
            "query parameter `protocol` must be 2, resp2, 3 or resp3",
        ),
    ] {
        let config = config(&[("CACHE_REDIS_URL", url.to_owned())]).unwrap();
        let err = cache_redis::from_config(&config).unwrap_err();
        assert_eq!(
            err.to_string().split_once(": ").map(|(field, _)| field),
            Some("invalid CACHE_REDIS_URL"),
            "{err}"
        );
        assert!(err.to_string().contains(allowed), "{url}: {err}");
    }
}

/// The highest database accepted is still one the server may lack (16 by default): that
/// is the server's answer on the first call, an error answer rather than an outage.
#[tokio::test]
async fn a_database_the_server_lacks_is_a_backend_error_on_the_first_call() {
    let server = RedisServer::start();
    let config = config(&[
        ("CACHE_REDIS_HOST", "127.0.0.1".to_owned()),
        ("CACHE_REDIS_PORT", server.port().to_string()),
        ("CACHE_REDIS_DB", MAX_REDIS_DB.to_string()),
    ])
    .unwrap();
    let cache = cache_redis::from_config(&config).unwrap();
    let err = cache.get::<u8>("k").await.unwrap_err();
    assert_eq!(err.kind(), cache_core::ErrorKind::Backend, "{err:#}");
    assert!(
        format!("{err:#}").contains("DB index is out of range"),
        "{err:#}"
    );
}

/// A per-call timeout Redis cannot take (`#[memoize(timeout = Duration::MAX)]`,
/// `set_with_timeout(.., Duration::MAX)`) made every store fail; it now counts as the longest
/// timeout every backend stores, 100 years.
#[tokio::test]
async fn a_per_call_timeout_over_a_hundred_years_stores_for_a_hundred_years() {
    let server = RedisServer::start();
    let cache = Cache::builder()
        .backend(redis_support::backend(&server))
        .namespace("percall")
        .build()
        .unwrap();
    cache
        .set_with_timeout("k", &1u8, Duration::MAX)
        .await
        .unwrap();
    cache
        .blocking()
        .set_with_timeout("b", &2u8, Duration::MAX)
        .unwrap();
    assert_eq!(cache.get::<u8>("k").await.unwrap(), Some(1));
    assert_eq!(cache.blocking().get::<u8>("b").unwrap(), Some(2));
    for key in ["percall:k", "percall:b"] {
        let ttl: i64 = redis_support::raw(&server, redis::cmd("TTL").arg(key));
        assert!(
            (3_153_599_000..=MAX_TIMEOUT.as_secs() as i64).contains(&ttl),
            "{key}: ttl {ttl}"
        );
    }
}
