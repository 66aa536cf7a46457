//! The backend's logs (circuit transitions, reconnections) name no secret.

mod redis_support;

use std::time::Duration;

use cache_core::backend::{Backend, BlockingBackend};
use cache_redis::{BreakerSettings, RedisBackend};
use tests::Late;
use tests::RedisServer;

const PASSWORD: &str = "log-Sekr3t-pass";

#[tokio::test(flavor = "current_thread")]
async fn breaker_transitions_and_reconnections_are_logged_without_the_password() {
    let (captured, _guard) = tests::logs::capture();

    let mut server = RedisServer::builder().requirepass(PASSWORD).start();
    let backend = RedisBackend::builder()
        .url(server.url())
        .breaker(BreakerSettings::new(2, Duration::from_millis(50)))
        .build()
        .unwrap();
    tracing::info!(?backend, "built");
    Backend::set(&backend, "k", "v".into(), None).await.unwrap();
    BlockingBackend::set(&backend, "b", "v".into(), None).unwrap();
    server.kill();
    for _ in 0..4 {
        let err = Backend::get(&backend, "k").await.unwrap_err();
        tracing::warn!(error = %err, ?err, "call failed");
    }
    server.restart();
    let mut back = false;
    for _ in 0..200 {
        if Backend::get(&backend, "k").await.is_ok() {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(back);

    let logs = captured.text();
    assert!(logs.contains("circuit opened"), "{logs}");
    assert!(logs.contains("circuit closed"), "{logs}");
    assert!(logs.contains("connection to Redis opened"), "{logs}");
    assert!(!logs.contains(PASSWORD), "{logs}");
}

static LOGGED: Late = Late(std::sync::OnceLock::new());

#[cache_core::memoize(cache = LOGGED, timeout = 60)]
fn logged(n: u32) -> u32 {
    n + 1
}

/// Since messages no longer repeat their cause, a cached call's warning prints the whole
/// chain (`{error:#}`): what failed and why, still without the password.
#[test]
fn a_failed_read_is_logged_with_its_cause_and_without_the_password() {
    let (captured, _guard) = tests::logs::capture();
    let mut server = RedisServer::builder().requirepass(PASSWORD).start();
    let cache = cache_core::Cache::builder()
        .backend(RedisBackend::open(&server.url()).unwrap())
        .namespace("logs")
        .build()
        .unwrap();
    let _ = LOGGED.0.set(cache);
    server.kill();
    assert_eq!(logged(1), 2, "fail-open: the real result");

    let logs = captured.text();
    let line = logs
        .lines()
        .find(|line| line.contains("cache read failed"))
        .unwrap_or_else(|| panic!("no warning for the failed read: {logs}"));
    assert!(line.contains("cannot reach Redis: "), "{line}");
    assert!(line.to_lowercase().contains("refused"), "{line}");
    assert!(!logs.contains(PASSWORD), "{logs}");
}
