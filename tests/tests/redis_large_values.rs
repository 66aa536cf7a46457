//! Large values through a real `redis-server`: a 1 MB `String`, `bytes::Bytes`, newtype of
//! a `String` or `Option<String>` hit is one `GET` and the value as stored (decoded in the reply's own
//! buffer, see `cache_core::codec::Codec::decode_owned`), sync and async; a large stored
//! string that is not UTF-8 is a miss, and the body runs.

mod redis_support;

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use cache_core::memoize;
use serde::{Deserialize, Serialize};
use tests::{Late, RedisServer};

const MB: usize = 1_000_000;

// One cache (and server) per test, as the tests run at once.
static PAGES: Late = Late(OnceLock::new());
static VALUES: Late = Late(OnceLock::new());
static SYNC: Late = Late(OnceLock::new());
static BROKEN: Late = Late(OnceLock::new());
static PAGE_RUNS: AtomicUsize = AtomicUsize::new(0);
static TEXT_RUNS: AtomicUsize = AtomicUsize::new(0);
static BROKEN_RUNS: AtomicUsize = AtomicUsize::new(0);

/// A rendered page, as a web handler returns it.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Html(String);

#[memoize(cache = PAGES, timeout = 60)]
async fn page(len: usize) -> String {
    PAGE_RUNS.fetch_add(1, Ordering::SeqCst);
    "p".repeat(len)
}

#[memoize(cache = VALUES, timeout = 60)]
async fn blob(len: usize) -> bytes::Bytes {
    bytes::Bytes::from(vec![0xAB; len])
}

#[memoize(cache = VALUES, timeout = 60)]
async fn html(len: usize) -> Html {
    Html("<".repeat(len))
}

#[memoize(cache = VALUES, timeout = 60)]
async fn maybe(len: usize) -> Option<String> {
    Some("?".repeat(len))
}

#[memoize(cache = SYNC, timeout = 60)]
fn text(len: usize) -> String {
    TEXT_RUNS.fetch_add(1, Ordering::SeqCst);
    "é".repeat(len / 2)
}

#[memoize(cache = BROKEN, timeout = 60)]
async fn broken_page(len: usize) -> String {
    BROKEN_RUNS.fetch_add(1, Ordering::SeqCst);
    "b".repeat(len)
}

#[tokio::test(flavor = "current_thread")]
async fn a_one_megabyte_string_hit_is_one_get_and_the_stored_string() {
    let server = RedisServer::start();
    let _ = PAGES.0.set(redis_support::cache(&server, "large:"));
    assert_eq!(page(MB).await.len(), MB);
    let runs = PAGE_RUNS.load(Ordering::SeqCst);
    server.reset_stats();
    for _ in 0..3 {
        let hit = page(MB).await;
        assert_eq!(hit.len(), MB);
        assert!(hit.bytes().all(|b| b == b'p'));
    }
    assert_eq!(server.command_count("get"), 3, "one GET per hit");
    assert_eq!(server.command_count("set"), 0);
    assert_eq!(PAGE_RUNS.load(Ordering::SeqCst), runs, "no body run");
}

#[tokio::test(flavor = "current_thread")]
async fn one_megabyte_bytes_newtype_and_option_hits_are_the_stored_values() {
    let server = RedisServer::start();
    let _ = VALUES.0.set(redis_support::cache(&server, "large:"));
    for len in [0, 100, MB] {
        let stored = (blob(len).await, html(len).await, maybe(len).await);
        server.reset_stats();
        assert_eq!((blob(len).await, html(len).await, maybe(len).await), stored);
        assert_eq!(server.command_count("get"), 3);
        assert_eq!(server.command_count("set"), 0, "all were hits");
    }
}

#[test]
fn a_one_megabyte_sync_string_hit_is_one_get_and_the_stored_string() {
    let server = RedisServer::start();
    let _ = SYNC.0.set(redis_support::cache(&server, "large-sync:"));
    let fresh = text(MB);
    let runs = TEXT_RUNS.load(Ordering::SeqCst);
    server.reset_stats();
    assert_eq!(text(MB), fresh);
    assert_eq!(text(MB), fresh);
    assert_eq!(server.command_count("get"), 2);
    assert_eq!(TEXT_RUNS.load(Ordering::SeqCst), runs, "no body run");
}

#[tokio::test(flavor = "current_thread")]
async fn a_large_stored_string_that_is_not_utf8_is_a_miss_and_the_body_runs() {
    let server = RedisServer::start();
    let _ = BROKEN.0.set(redis_support::cache(&server, "large:"));
    let len = MB + 1;
    assert_eq!(broken_page(len).await.len(), len);
    let key = format!("{}{}", BROKEN.namespace(), broken_page::key(len).unwrap());
    let mut stored: Vec<u8> = redis_support::raw(&server, redis::cmd("GET").arg(&key));
    // The string's bytes start the stored value (its length and the envelope follow them).
    assert_eq!(stored[0], b'b');
    stored[0] = 0xFF; // never valid in UTF-8; length and envelope stay as written
    let () = redis_support::raw(&server, redis::cmd("SET").arg(&key).arg(&stored));

    let runs = BROKEN_RUNS.load(Ordering::SeqCst);
    let before = broken_page::stats();
    assert_eq!(broken_page(len).await, "b".repeat(len), "the real result");
    let after = broken_page::stats();
    assert_eq!(BROKEN_RUNS.load(Ordering::SeqCst), runs + 1, "the body ran");
    assert_eq!(after.errors - before.errors, 1, "counted as an error");
    assert_eq!(after.misses - before.misses, 1, "and as a miss");
    let fixed: Vec<u8> = redis_support::raw(&server, redis::cmd("GET").arg(&key));
    assert_eq!(fixed[0], b'b', "the fresh value replaced it");
}
