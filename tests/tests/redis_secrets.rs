//! Issue 9: a password in any URL form the `redis` crate parses (`unix://..?pass=` was
//! printed in the builder's `Debug` and the tutorial's log) never shows in `Debug`,
//! `Display`, `{:#}`, an error's `source()` chain, or the logs, against a real server.

mod redis_support;

use std::sync::LazyLock;
use std::time::Duration;

use cache_core::backend::{Backend, BlockingBackend};
use cache_core::config::Config;
use cache_core::{Cache, memoize};
use cache_redis::{BreakerSettings, RedisBackend};
use tests::RedisServer;

/// The password the server accepts, as a distinctive string.
const SECRET: &str = "Sekr3t-right-7f3a";
/// A password the server refuses, as a distinctive string.
const WRONG: &str = "Sekr3t-wrong-9c1e";

/// `text` without any of the two secrets (or a tell-tale part of them).
fn assert_clean(what: &str, text: &str) {
    for secret in [SECRET, WRONG, "Sekr3t"] {
        assert!(!text.contains(secret), "{what} shows a secret: {text}");
    }
}

/// Everything an error shows: `Display`, `{:#}`, `Debug`, and each `source()` in turn.
fn everything_shown(error: &cache_core::Error) -> String {
    let mut shown = format!("{error} | {error:#} | {error:?}");
    let mut next = std::error::Error::source(error);
    while let Some(cause) = next {
        shown.push_str(&format!(" | {cause} | {cause:?}"));
        next = cause.source();
    }
    shown
}

fn server() -> RedisServer {
    RedisServer::builder()
        .unix_socket()
        .requirepass(SECRET)
        .acl_user("app", SECRET)
        .start()
}

/// Every URL form that carries a password, for `server`, with `password` in it.
fn url_forms(server: &RedisServer, password: &str) -> Vec<String> {
    let port = server.port();
    let socket = server
        .unix_url()
        .expect("a unix socket")
        .split_once('?')
        .expect("a query")
        .0
        .to_owned();
    let socket_path = socket.trim_start_matches("unix://");
    vec![
        format!("redis://app:{password}@127.0.0.1:{port}/0"),
        format!("redis://:{password}@127.0.0.1:{port}/0"),
        format!("redis://:{password}@127.0.0.1:{port}/0?protocol=resp3"),
        format!("valkey://app:{password}@127.0.0.1:{port}/0"),
        format!("unix://{socket_path}?pass={password}"),
        format!("unix://{socket_path}?db=0&user=app&pass={password}"),
        format!("redis+unix://{socket_path}?pass={password}&protocol=2"),
        format!("valkey+unix://{socket_path}?user=app&pass={password}"),
    ]
}

fn backend(url: &str) -> RedisBackend {
    RedisBackend::builder()
        .url(url)
        .connect_timeout(Duration::from_secs(2))
        .breaker(BreakerSettings::disabled())
        .build()
        .unwrap_or_else(|e| panic!("{}: {e:#}", cache_core::config::redact_url(url)))
}

#[tokio::test]
async fn every_url_form_works_and_hides_its_password_in_debug() {
    let server = server();
    for url in url_forms(&server, SECRET) {
        let shown_url = cache_core::config::redact_url(&url);
        assert_clean("redact_url", &shown_url);
        let builder = RedisBackend::builder().url(&url);
        assert_clean("builder Debug", &format!("{builder:?}"));
        let backend = backend(&url);
        assert_clean("backend Debug", &format!("{backend:?}"));
        // The password was used: the server requires it.
        Backend::set(&backend, "k", "v".into(), None)
            .await
            .unwrap_or_else(|e| panic!("{shown_url}: {e:#}"));
        BlockingBackend::set(&backend, "b", "v".into(), None)
            .unwrap_or_else(|e| panic!("{shown_url}: {e:#}"));
        let cache = redis_support::cache_on(backend, "c:");
        assert_clean("cache Debug", &format!("{cache:?}"));
    }
}

#[tokio::test]
async fn a_refused_password_in_every_url_form_stays_out_of_errors_and_logs() {
    let server = server();
    let (logs, _guard) = tests::logs::capture();
    for url in url_forms(&server, WRONG) {
        let backend = backend(&url);
        let async_err = Backend::get(&backend, "k").await.unwrap_err();
        let blocking_err = BlockingBackend::get(&backend, "k").unwrap_err();
        for err in [&async_err, &blocking_err] {
            assert!(err.is_authentication(), "{err:#}");
            assert_clean("error", &everything_shown(err));
            tracing::warn!(error = %err, chain = format!("{err:#}"), ?err, "call failed");
        }
        // Through the config path too, which names the variables.
        let config =
            Config::from_vars(|name| (name == "CACHE_REDIS_URL").then(|| url.clone())).unwrap();
        assert_clean("config Debug", &format!("{config:?}"));
        let cache = cache_redis::from_config(&config).unwrap();
        assert_clean("cache Debug", &format!("{cache:?}"));
        let err = cache.get::<String>("k").await.unwrap_err();
        assert_clean("cache error", &everything_shown(&err));
    }
    // A memoized function on a refused password logs the failure and still answers.
    assert_eq!(square(7).await, 49);
    let text = logs.text();
    assert!(text.contains("cache read failed"), "{text}");
    assert_clean("logs", &text);
}

static REFUSED: LazyLock<Cache> = LazyLock::new(|| {
    let url = format!("redis://app:{WRONG}@127.0.0.1:{}/0", REFUSED_SERVER.port());
    redis_support::cache_on(backend(&url), "memo:")
});
static REFUSED_SERVER: LazyLock<RedisServer> = LazyLock::new(server);

#[memoize(cache = REFUSED)]
async fn square(n: u64) -> u64 {
    n * n
}

#[test]
fn malformed_urls_hide_their_password_in_every_form() {
    for url in [
        format!("unix:///run/redis.sock?password={SECRET}"),
        format!("unix:///run/redis.sock?{SECRET}"),
        format!("unix:///run/redis.sock?db={SECRET}"),
        format!("unix:///run/redis.sock?pass={SECRET}&protocol=9"),
        format!("redis://:{SECRET}@localhost/?pass={SECRET}"),
        format!("redis://:{SECRET}@localhost/99999"),
        format!("redis://:{SECRET}@localhost:0/0"),
        format!("redis://:{SECRET}@bad!host/0"),
        format!("redis://app:{SECRET}@[::1/0"),
        format!("redis://:pre/{SECRET}@localhost/0"),
        format!("redis://:pre#{SECRET}@localhost/0"),
        format!("redis//:{SECRET}@localhost/0"),
        format!("{SECRET}://localhost"),
        format!("http://app:{SECRET}@localhost"),
    ] {
        let builder = RedisBackend::builder().url(&url);
        assert_clean("builder Debug", &format!("{builder:?}"));
        let err = builder.build().unwrap_err();
        assert!(err.is_config(), "{err:#}");
        assert!(err.to_string().starts_with("invalid url: "), "{err}");
        assert_clean("build error", &everything_shown(&err));
        let config =
            Config::from_vars(|name| (name == "CACHE_REDIS_URL").then(|| url.clone())).unwrap();
        let err = cache_redis::from_config(&config).unwrap_err();
        assert!(
            err.to_string().starts_with("invalid CACHE_REDIS_URL: "),
            "{err}"
        );
        assert_clean("from_config error", &everything_shown(&err));
    }
}

#[test]
fn a_password_given_apart_from_the_url_stays_hidden() {
    let builder = RedisBackend::builder()
        .host("127.0.0.1")
        .username("app")
        .password(SECRET);
    assert_clean("builder Debug", &format!("{builder:?}"));
    let backend = builder.build().unwrap();
    let shown = format!("{backend:?}");
    assert!(
        shown.contains("redis://app:***@127.0.0.1:6379/0"),
        "{shown}"
    );
    let config = Config::from_vars(|name| match name {
        "CACHE_REDIS_HOST" => Some("127.0.0.1".to_owned()),
        "CACHE_REDIS_PASSWORD" => Some(SECRET.to_owned()),
        _ => None,
    })
    .unwrap();
    assert_clean("config Debug", &format!("{config:?}"));
    assert_clean(
        "cache Debug",
        &format!("{:?}", cache_redis::from_config(&config).unwrap()),
    );
}
