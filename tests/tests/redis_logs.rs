//! The backend's logs (circuit transitions, reconnections) name no secret.

mod redis_support;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cache_core::backend::{Backend, BlockingBackend};
use cache_redis::{BreakerSettings, RedisBackend};
use tests::RedisServer;

const PASSWORD: &str = "log-Sekr3t-pass";

/// A `MakeWriter` that keeps everything written.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Self;
    fn make_writer(&'a self) -> Self {
        self.clone()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn breaker_transitions_and_reconnections_are_logged_without_the_password() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(captured.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let mut server = RedisServer::builder().requirepass(PASSWORD).start();
    let backend = RedisBackend::builder()
        .url(server.url())
        .breaker(BreakerSettings::new(
            2,
            Duration::from_millis(50),
            Duration::from_millis(200),
        ))
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

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("circuit opened"), "{logs}");
    assert!(logs.contains("circuit closed"), "{logs}");
    assert!(logs.contains("connection to Redis opened"), "{logs}");
    assert!(!logs.contains(PASSWORD), "{logs}");
}
