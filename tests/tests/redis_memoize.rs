//! `#[memoize]` functions on a real `redis-server`: one `GET` per hit, forgetting one
//! function leaves its prefix sibling alone, and a dead Redis only costs cache misses.

mod redis_support;

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use cache_core::memoize;
use tests::Late;
use tests::RedisServer;

static SYNC: Late = Late(OnceLock::new());
static ASYNC: Late = Late(OnceLock::new());
static RUNS: AtomicUsize = AtomicUsize::new(0);
static ASYNC_RUNS: AtomicUsize = AtomicUsize::new(0);

#[memoize(cache = SYNC, timeout = 60)]
fn square(num: u64) -> u64 {
    RUNS.fetch_add(1, Ordering::SeqCst);
    num * num
}

#[memoize(cache = SYNC, timeout = 60)]
fn square_root(num: u64) -> u64 {
    RUNS.fetch_add(1, Ordering::SeqCst);
    num.isqrt()
}

#[memoize(cache = ASYNC, timeout = 60)]
async fn slow_double(num: u64) -> u64 {
    ASYNC_RUNS.fetch_add(1, Ordering::SeqCst);
    tokio::task::yield_now().await;
    num * 2
}

#[test]
fn memoized_sync_functions_hit_with_one_get_and_forget_exactly_their_own_keys() {
    let server = RedisServer::start();
    let _ = SYNC.0.set(redis_support::cache(&server, "memo:"));
    for n in 0..20 {
        assert_eq!(square(n), n * n);
        assert_eq!(square_root(n), n.isqrt());
    }
    assert_eq!(RUNS.load(Ordering::SeqCst), 40);
    let key = square::key(7).unwrap();
    assert!(
        key.starts_with("memoize:") && key.contains(".square:"),
        "{key}"
    );

    server.reset_stats();
    for n in 0..20 {
        assert_eq!(square(n), n * n);
    }
    assert_eq!(server.command_count("get"), 20, "one GET per hit");
    assert_eq!(server.command_count("set"), 0);
    assert_eq!(RUNS.load(Ordering::SeqCst), 40);

    // `square` is a prefix of `square_root`; forgetting it must not touch the other.
    assert_eq!(square::invalidate_all().unwrap(), 20);
    assert_eq!(server.dbsize(), 20);
    for n in 0..20 {
        assert_eq!(square_root(n), n.isqrt());
    }
    assert_eq!(RUNS.load(Ordering::SeqCst), 40, "square_root still hits");
    assert_eq!(square(3), 9);
    assert_eq!(RUNS.load(Ordering::SeqCst), 41, "square recomputes");
    assert!(square::invalidate(3).unwrap());
    assert!(!square::invalidate(3).unwrap());
}

#[tokio::test]
async fn a_memoized_async_function_survives_redis_dying() {
    let mut server = RedisServer::start();
    let _ = ASYNC.0.set(redis_support::cache(&server, "memo:"));
    assert_eq!(slow_double(4).await, 8);
    server.reset_stats();
    assert_eq!(slow_double(4).await, 8);
    assert_eq!(server.command_count("get"), 1);
    assert_eq!(ASYNC_RUNS.load(Ordering::SeqCst), 1);

    server.kill();
    for _ in 0..3 {
        assert_eq!(slow_double(4).await, 8, "a miss, not an error");
    }
    assert_eq!(ASYNC_RUNS.load(Ordering::SeqCst), 4);

    server.restart();
    let mut stored = false;
    for _ in 0..100 {
        assert_eq!(slow_double(5).await, 10);
        // The entry's full key is the namespace and the function's key, as is.
        let full = format!("{}{}", ASYNC.namespace(), slow_double::key(5).unwrap());
        if redis_support::raw::<bool>(&server, redis::cmd("EXISTS").arg(full)) {
            stored = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(stored, "entries are stored again after the restart");
    let _ = slow_double::invalidate_all().await.unwrap();
}
