//! Which Redis commands each operation sends, counted with `INFO commandstats` on a real
//! `redis-server`: a hit is one `GET`, a miss `GET` + `SET`, and so on.

mod redis_support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use cache_core::backend::{Backend, BlockingBackend};
use redis_support::{backend, cache, raw};
use tests::RedisServer;

/// The commands counted since the last reset, without the reset itself, in name order.
fn counts(server: &RedisServer) -> Vec<(String, u64)> {
    server.calls_since_reset().into_iter().collect()
}

fn expect(pairs: &[(&str, u64)]) -> Vec<(String, u64)> {
    pairs.iter().map(|(n, c)| ((*n).to_owned(), *c)).collect()
}

#[tokio::test]
async fn a_hit_is_one_get_and_a_miss_is_get_then_set() {
    let server = RedisServer::start();
    let cache = cache(&server, "app:");
    let computed = AtomicUsize::new(0);
    let compute = || async {
        computed.fetch_add(1, Ordering::SeqCst);
        "value".to_owned()
    };
    // Warm the connection so the counts below hold no connection set-up.
    let _ = cache.get::<String>("warm").await.unwrap();

    server.reset_stats();
    let v = cache
        .get_or_set_with("k", Duration::from_secs(60), compute)
        .await;
    assert_eq!(v, "value");
    assert_eq!(counts(&server), expect(&[("get", 1), ("set", 1)]));

    server.reset_stats();
    let v = cache
        .get_or_set_with("k", Duration::from_secs(60), compute)
        .await;
    assert_eq!(v, "value");
    assert_eq!(counts(&server), expect(&[("get", 1)]));
    assert_eq!(computed.load(Ordering::SeqCst), 1);
}

#[test]
fn a_blocking_hit_is_one_get_and_a_miss_is_get_then_set() {
    let server = RedisServer::start();
    let cache = cache(&server, "app:");
    let blocking = cache.blocking();
    let _ = blocking.get::<String>("warm").unwrap();

    server.reset_stats();
    let v: u64 = blocking.get_or_set_with("k", Duration::from_secs(60), || 42);
    assert_eq!(v, 42);
    assert_eq!(counts(&server), expect(&[("get", 1), ("set", 1)]));

    server.reset_stats();
    let v: u64 = blocking.get_or_set_with("k", Duration::from_secs(60), || unreachable!());
    assert_eq!(v, 42);
    assert_eq!(counts(&server), expect(&[("get", 1)]));
}

#[tokio::test]
async fn set_uses_px_only_with_a_ttl() {
    let server = RedisServer::start();
    let backend = backend(&server);
    Backend::set(
        &backend,
        "with",
        Bytes::from_static(b"v"),
        Some(Duration::from_secs(30)),
    )
    .await
    .unwrap();
    Backend::set(&backend, "without", Bytes::from_static(b"v"), None)
        .await
        .unwrap();
    let with: i64 = raw(&server, redis::cmd("PTTL").arg("with"));
    let without: i64 = raw(&server, redis::cmd("PTTL").arg("without"));
    assert!((29_000..=30_000).contains(&with), "{with}");
    assert_eq!(without, -1, "no expiry without a ttl");
}

#[tokio::test]
async fn every_operation_sends_its_one_command() {
    let server = RedisServer::start();
    let backend = backend(&server);
    let ttl = Some(Duration::from_secs(60));
    let v = || Bytes::from_static(b"v");
    let _ = Backend::get(&backend, "warm").await.unwrap();

    server.reset_stats();
    Backend::set_many(&backend, &[("a", v()), ("b", v()), ("c", v())], ttl)
        .await
        .unwrap();
    assert_eq!(counts(&server), expect(&[("set", 3)]));

    server.reset_stats();
    let got = Backend::get_many(&backend, &["a", "nope", "c"])
        .await
        .unwrap();
    assert_eq!(got, vec![Some(v()), None, Some(v())]);
    assert_eq!(counts(&server), expect(&[("mget", 1)]));

    server.reset_stats();
    assert!(!Backend::add(&backend, "a", v(), ttl).await.unwrap());
    assert!(Backend::add(&backend, "d", v(), ttl).await.unwrap());
    assert_eq!(counts(&server), expect(&[("set", 2)]));

    server.reset_stats();
    assert!(Backend::exists(&backend, "d").await.unwrap());
    assert!(Backend::delete(&backend, "d").await.unwrap());
    assert_eq!(
        Backend::delete_many(&backend, &["a", "b", "zz"])
            .await
            .unwrap(),
        2
    );
    assert_eq!(counts(&server), expect(&[("exists", 1), ("unlink", 2)]));

    server.reset_stats();
    assert!(
        !Backend::delete_if_equal(&backend, "c", b"other")
            .await
            .unwrap()
    );
    assert!(Backend::delete_if_equal(&backend, "c", b"v").await.unwrap());
    assert_eq!(Backend::get(&backend, "c").await.unwrap(), None);

    // Empty batches send nothing.
    server.reset_stats();
    assert!(Backend::get_many(&backend, &[]).await.unwrap().is_empty());
    Backend::set_many(&backend, &[], ttl).await.unwrap();
    assert_eq!(Backend::delete_many(&backend, &[]).await.unwrap(), 0);
    assert_eq!(counts(&server), expect(&[]));
}

#[test]
fn the_blocking_half_sends_the_same_commands() {
    let server = RedisServer::start();
    let backend = backend(&server);
    let ttl = Some(Duration::from_secs(60));
    let v = || Bytes::from_static(b"v");
    let _ = BlockingBackend::get(&backend, "warm").unwrap();

    server.reset_stats();
    BlockingBackend::set_many(&backend, &[("a", v()), ("b", v())], ttl).unwrap();
    assert_eq!(
        BlockingBackend::get_many(&backend, &["a", "b"]).unwrap(),
        vec![Some(v()), Some(v())]
    );
    assert!(BlockingBackend::add(&backend, "c", v(), None).unwrap());
    assert!(BlockingBackend::exists(&backend, "c").unwrap());
    assert!(BlockingBackend::delete(&backend, "c").unwrap());
    assert!(BlockingBackend::delete_if_equal(&backend, "a", b"v").unwrap());
    // The script's own GET and DEL are counted too.
    assert_eq!(
        counts(&server),
        expect(&[
            ("del", 1),
            ("eval", 1),
            ("exists", 1),
            ("get", 1),
            ("mget", 1),
            ("set", 3),
            ("unlink", 1)
        ])
    );
}

#[tokio::test]
async fn garbage_bytes_under_a_cache_key_are_a_miss_and_get_overwritten() {
    let server = RedisServer::start();
    let cache = cache(&server, "app:");
    let _: () = raw(
        &server,
        redis::cmd("SET").arg("app:k").arg(&b"\xff\x00garbage"[..]),
    );
    assert_eq!(cache.get::<String>("k").await.unwrap(), None);
    let v = cache
        .get_or_set_with("k", Duration::from_secs(60), || async {
            "fresh".to_owned()
        })
        .await;
    assert_eq!(v, "fresh");
    assert_eq!(
        cache.get::<String>("k").await.unwrap().as_deref(),
        Some("fresh")
    );
    assert_eq!(
        cache.blocking().get::<String>("k").unwrap().as_deref(),
        Some("fresh")
    );
}

#[tokio::test]
async fn a_key_of_another_redis_type_is_a_miss_and_gets_overwritten() {
    let server = RedisServer::start();
    let cache = cache(&server, "app:");
    let _: () = raw(&server, redis::cmd("HSET").arg("app:h").arg("f").arg("v"));
    let _: () = raw(&server, redis::cmd("RPUSH").arg("app:l").arg("v"));
    assert_eq!(cache.get::<String>("h").await.unwrap(), None);
    assert_eq!(cache.blocking().get::<String>("l").unwrap(), None);
    let v = cache
        .get_or_set_with("h", Duration::from_secs(60), || async { 7u32 })
        .await;
    assert_eq!(v, 7);
    let v: u32 = cache
        .blocking()
        .get_or_set_with("l", Duration::from_secs(60), || 8);
    assert_eq!(v, 8);
    assert_eq!(cache.get::<u32>("h").await.unwrap(), Some(7));
    assert_eq!(cache.get::<u32>("l").await.unwrap(), Some(8));
    let kind: String = raw(&server, redis::cmd("TYPE").arg("app:h"));
    assert_eq!(kind, "string");
}
