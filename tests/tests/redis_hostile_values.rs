//! Hostile values written straight into a real `redis-server` under `#[memoize]` functions'
//! keys: each is a miss (counted as an error), the body runs and its fresh value overwrites
//! the hostile one, and decoding never allocates what the bytes claim (the allocation itself
//! is measured in `cache-core/tests/decode_memory.rs`).

mod redis_support;

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use cache_core::memoize;
use tests::Late;
use tests::RedisServer;

static SYNC: Late = Late(OnceLock::new());
static ASYNC: Late = Late(OnceLock::new());
static NAME_RUNS: AtomicUsize = AtomicUsize::new(0);
static UNIT_RUNS: AtomicUsize = AtomicUsize::new(0);

#[memoize(cache = SYNC, timeout = 60)]
fn names(count: usize) -> Vec<String> {
    NAME_RUNS.fetch_add(1, Ordering::SeqCst);
    (0..count).map(|i| format!("name {i}")).collect()
}

#[memoize(cache = ASYNC, timeout = 60)]
async fn units(count: usize) -> Vec<()> {
    UNIT_RUNS.fetch_add(1, Ordering::SeqCst);
    vec![(); count]
}

/// `payload` in the envelope of the value stored under `key`, so it is read as the
/// function's own type.
fn enveloped(server: &RedisServer, key: &str, payload: &[u8]) -> Vec<u8> {
    let stored: Vec<u8> = redis_support::raw(server, redis::cmd("GET").arg(key));
    [payload, tests::envelope_trailer(&stored)].concat()
}

fn set_raw(server: &RedisServer, key: &str, bytes: &[u8]) {
    let () = redis_support::raw(server, redis::cmd("SET").arg(key).arg(bytes));
}

#[test]
fn a_twenty_megabyte_vec_of_empty_strings_under_a_memoized_key_is_a_miss_and_the_body_runs() {
    let server = RedisServer::start();
    let _ = SYNC.0.set(redis_support::cache(&server, "hostile:"));
    assert_eq!(names(2), ["name 0", "name 1"]);
    let key = format!("{}{}", SYNC.namespace(), names::key(2).unwrap());

    // 20 million empty strings: 20 MB stored, 480 MB if decoded.
    let mut payload = vec![0xFC]; // bincode: a u32 length follows
    payload.extend_from_slice(&20_000_000u32.to_le_bytes());
    payload.resize(payload.len() + 20_000_000, 0);
    set_raw(&server, &key, &enveloped(&server, &key, &payload));

    let before = names::stats();
    server.reset_stats();
    assert_eq!(names(2), ["name 0", "name 1"], "the real result");
    let after = names::stats();
    assert_eq!(NAME_RUNS.load(Ordering::SeqCst), 2, "the body ran again");
    assert_eq!(
        after.errors - before.errors,
        1,
        "the value counted as an error"
    );
    assert_eq!(after.misses - before.misses, 1, "and as a miss");
    assert_eq!(after.hits, before.hits);
    assert_eq!(server.command_count("get"), 1);
    assert_eq!(
        server.command_count("set"),
        1,
        "the fresh value replaced it"
    );

    assert_eq!(names(2), ["name 0", "name 1"]);
    assert_eq!(NAME_RUNS.load(Ordering::SeqCst), 2, "a hit again");
}

#[tokio::test]
async fn sixteen_bytes_under_a_vec_of_units_key_never_decode_as_two_to_the_forty_units() {
    let server = RedisServer::start();
    let _ = ASYNC.0.set(redis_support::cache(&server, "units:"));
    assert_eq!(units(3).await.len(), 3);
    let key = format!("{}{}", ASYNC.namespace(), units::key(3).unwrap());

    let mut payload = vec![0xFD]; // bincode: a u64 length follows
    payload.extend_from_slice(&(1u64 << 40).to_le_bytes());
    payload.resize(16, 0); // 16 bytes of payload in all
    set_raw(&server, &key, &enveloped(&server, &key, &payload));

    let before = units::stats();
    assert_eq!(units(3).await.len(), 3, "the real result, not 2^40 units");
    let after = units::stats();
    assert_eq!(UNIT_RUNS.load(Ordering::SeqCst), 2, "the body ran again");
    assert_eq!(after.errors - before.errors, 1);
    assert_eq!(after.hits, before.hits);
}
