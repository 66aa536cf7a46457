//! `clear()` and prefix deletion on a shared Redis database: `SCAN MATCH` with escaped
//! globs and `UNLINK` in batches, never `KEYS` or `FLUSHDB`, and never a foreign key.

mod redis_support;

use cache_core::backend::Backend;
use redis_support::{backend, cache, raw};
use tests::RedisServer;

/// Writes `n` keys named `{prefix}{i}` with a raw pipeline.
fn fill(server: &RedisServer, prefix: &str, n: usize) {
    let mut pipe = redis::pipe();
    for i in 0..n {
        pipe.cmd("SET")
            .arg(format!("{prefix}{i}"))
            .arg("x")
            .ignore();
    }
    let _: () = pipe.query(&mut server.connection()).unwrap();
}

#[tokio::test]
async fn clear_keeps_ten_thousand_foreign_keys() {
    let server = RedisServer::start();
    fill(&server, "", 5_000); // no namespace at all
    fill(&server, "other:", 5_000); // another application's namespace
    fill(&server, "app", 10); // shares the namespace's letters but not its colon
    let cache = cache(&server, "app:");
    for i in 0..1_200 {
        cache.set(&format!("k{i}"), &i).await.unwrap();
    }
    assert_eq!(server.dbsize(), 10_010 + 1_200);

    server.reset_stats();
    assert_eq!(cache.clear().await.unwrap(), 1_200);
    assert_eq!(server.dbsize(), 10_010);
    let stats = server.command_stats();
    assert!(
        stats.contains_key("scan") && stats.contains_key("unlink"),
        "{stats:?}"
    );
    for forbidden in ["keys", "flushdb", "flushall", "del"] {
        assert!(
            !stats.contains_key(forbidden),
            "{forbidden} used: {stats:?}"
        );
    }
    // 11,210 keys in SCAN batches of COUNT 500: a few dozen round trips, not one per key.
    assert!(stats["scan"].calls < 60, "{stats:?}");
    assert!(stats["unlink"].calls <= stats["scan"].calls, "{stats:?}");
}

#[test]
fn blocking_clear_keeps_foreign_keys() {
    let server = RedisServer::start();
    fill(&server, "", 2_000);
    let cache = cache(&server, "app:");
    for i in 0..700 {
        cache.blocking().set(&format!("k{i}"), &i).unwrap();
    }
    assert_eq!(cache.blocking().clear().unwrap(), 700);
    assert_eq!(server.dbsize(), 2_000);
}

#[tokio::test]
async fn glob_characters_in_the_namespace_match_only_themselves() {
    let server = RedisServer::start();
    let namespace = r"we*ird?[ns]\:";
    // Keys that an unescaped pattern `we*ird?[ns]\:*` would match.
    for foreign in [
        "weXXird!n:1",
        "weird?s:2",
        r"weird?[ns]\:3",
        "we*ird?n:4",
        r"we*ird?s\:5",
        r"weXird?[ns]\:6",
    ] {
        let _: () = raw(&server, redis::cmd("SET").arg(foreign).arg("x"));
    }
    let cache = cache(&server, namespace);
    cache.set("mine", &1u8).await.unwrap();
    cache.set("mine2", &2u8).await.unwrap();
    assert_eq!(cache.clear().await.unwrap(), 2);
    assert_eq!(server.dbsize(), 6);
}

#[tokio::test]
async fn forgetting_a_function_keeps_its_prefix_sibling() {
    let server = RedisServer::start();
    let cache = cache(&server, "cache:");
    for n in 0..50u64 {
        cache
            .set(&format!("memoize:app.square:{n}"), &(n * n))
            .await
            .unwrap();
        cache
            .set(&format!("memoize:app.square_root:{n}"), &n)
            .await
            .unwrap();
    }
    fill(&server, "memoize:app.square:", 100); // outside the namespace
    assert_eq!(
        cache.delete_prefix("memoize:app.square:").await.unwrap(),
        50
    );
    for n in 0..50u64 {
        assert_eq!(
            cache
                .get::<u64>(&format!("memoize:app.square_root:{n}"))
                .await
                .unwrap(),
            Some(n)
        );
        assert_eq!(
            cache
                .get::<u64>(&format!("memoize:app.square:{n}"))
                .await
                .unwrap(),
            None
        );
    }
    assert_eq!(server.dbsize(), 150);
    assert_eq!(
        cache
            .blocking()
            .delete_prefix("memoize:app.square_root:")
            .unwrap(),
        50
    );
    assert_eq!(server.dbsize(), 100);
}

#[tokio::test]
async fn an_empty_namespace_refuses_clear_but_flush_database_is_explicit() {
    let server = RedisServer::start();
    fill(&server, "foreign:", 10);
    let backend = backend(&server);
    let cache = redis_support::cache_on(backend.clone(), "");
    cache.set("k", &1u8).await.unwrap();
    let err = cache.clear().await.unwrap_err();
    assert!(err.is_refused(), "{err}");
    assert!(cache.blocking().clear().unwrap_err().is_refused());
    assert_eq!(server.dbsize(), 11);

    backend.flush_database().await.unwrap();
    assert_eq!(server.dbsize(), 0);
    fill(&server, "foreign:", 3);
    backend.flush_database_blocking().unwrap();
    assert_eq!(server.dbsize(), 0);
}

#[tokio::test]
async fn delete_prefix_on_the_backend_deletes_only_literal_prefix_matches() {
    let server = RedisServer::start();
    fill(&server, "a:", 3);
    fill(&server, "ab:", 3);
    let backend = backend(&server);
    assert_eq!(Backend::delete_prefix(&backend, "a:").await.unwrap(), 3);
    assert_eq!(server.dbsize(), 3);
}
