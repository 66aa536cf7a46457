//! The key scheme on a real `redis-server`: each test reproduces one defect of the old
//! scheme (issue 9, section 1) and shows, by the keys Redis holds and the bodies that run,
//! that it is gone.

mod redis_support;

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use cache_core::{cached, memoize};
use serde::Serialize;
use tests::Late;
use tests::RedisServer;

/// Every key on `server`, sorted.
fn keys(server: &RedisServer) -> Vec<String> {
    let mut keys: Vec<String> = redis_support::raw(server, redis::cmd("KEYS").arg("*"));
    keys.sort();
    keys
}

static USERS: Late = Late(OnceLock::new());
static USER_RUNS: AtomicUsize = AtomicUsize::new(0);

#[memoize(cache = USERS, key_prefix = "user")]
fn user_field(field: &str, id: u32) -> String {
    USER_RUNS.fetch_add(1, Ordering::SeqCst);
    format!("field {field} of user {id}")
}

#[memoize(cache = USERS, key_prefix = "user:profile")]
fn user_profile(id: u32) -> String {
    USER_RUNS.fetch_add(1, Ordering::SeqCst);
    format!("profile of user {id}")
}

/// Before: both were `cache:memoize:user:profile:1`, and `user_profile(1)` answered
/// "field profile of user 1".
#[test]
fn user_field_and_user_profile_no_longer_share_a_key() {
    let server = RedisServer::start();
    let _ = USERS.0.set(redis_support::cache(&server, "cache:"));
    assert_eq!(user_field("profile", 1), "field profile of user 1");
    assert_eq!(user_profile(1), "profile of user 1");
    assert_eq!(user_profile(1), "profile of user 1");
    assert_eq!(USER_RUNS.load(Ordering::SeqCst), 2, "each body once");
    assert_eq!(
        keys(&server),
        [
            "cache:memoize:user%3Aprofile:1",
            "cache:memoize:user:profile:1"
        ]
    );
}

static ORDERS: Late = Late(OnceLock::new());
static ORDER_RUNS: AtomicUsize = AtomicUsize::new(0);

#[memoize(cache = ORDERS, key_prefix = "order")]
fn order(id: u32) -> u32 {
    ORDER_RUNS.fetch_add(1, Ordering::SeqCst);
    id
}

#[memoize(cache = ORDERS, key_prefix = "order:lines")]
fn order_lines(id: u32) -> u32 {
    ORDER_RUNS.fetch_add(1, Ordering::SeqCst);
    id * 10
}

/// Before: `order::invalidate_all()` deleted the prefix `cache:memoize:order:`, which
/// held all of `order_lines`' entries (`cache:memoize:order:lines:..`): 20 removed, not 10.
#[test]
fn invalidate_all_of_order_keeps_order_lines() {
    let server = RedisServer::start();
    let _ = ORDERS.0.set(redis_support::cache(&server, "cache:"));
    for id in 0..10 {
        assert_eq!(order(id), id);
        assert_eq!(order_lines(id), id * 10);
    }
    assert_eq!(server.dbsize(), 20);
    assert_eq!(order::invalidate_all().unwrap(), 10);
    assert_eq!(server.dbsize(), 10);
    for id in 0..10 {
        assert_eq!(order_lines(id), id * 10);
    }
    assert_eq!(
        ORDER_RUNS.load(Ordering::SeqCst),
        20,
        "order_lines still hits"
    );
    assert!(
        keys(&server)
            .iter()
            .all(|k| k.starts_with("cache:memoize:order%3Alines:"))
    );
}

static PAGES: Late = Late(OnceLock::new());

#[cached(cache = PAGES, key_prefix = "homepage")]
fn home() -> String {
    "<h1>home</h1>".to_owned()
}

/// Before: `home::invalidate_all()` was a `SCAN MATCH cache:homepage:*` and deleted every
/// key under it, including the ones below, set by hand and by another program.
#[test]
fn cached_invalidate_all_keeps_keys_set_by_hand_under_its_prefix() {
    let server = RedisServer::start();
    let _ = PAGES.0.set(redis_support::cache(&server, "cache:"));
    assert_eq!(home(), "<h1>home</h1>");
    PAGES.blocking().set("homepage:v2", &"mine").unwrap();
    PAGES.blocking().set("homepage_v3", &"mine").unwrap();
    let _: () = redis_support::raw(
        &server,
        redis::cmd("SET").arg("cache:homepage:raw").arg("x"),
    );
    assert_eq!(server.dbsize(), 4);

    server.reset_stats();
    assert_eq!(home::invalidate_all().unwrap(), 1);
    assert_eq!(server.command_count("scan"), 0, "no prefix deletion");
    assert_eq!(server.command_count("unlink"), 2, "the key and its lease");
    assert_eq!(
        keys(&server),
        [
            "cache:homepage%3Av2",
            "cache:homepage:raw",
            "cache:homepage_v3"
        ]
    );
    // `cache.delete("homepage")` still forgets the function's entry, as the tutorial does.
    assert_eq!(home(), "<h1>home</h1>");
    assert!(PAGES.blocking().delete("homepage").unwrap());
}

/// Before: `clear()` of namespace `a` was a prefix deletion of `a*` and removed all of
/// `ab`'s keys, and `a` + `bk0` and `ab` + `k0` were the same key `abk0`.
#[tokio::test]
async fn clear_of_namespace_a_keeps_namespace_ab() {
    let server = RedisServer::start();
    let a = redis_support::cache(&server, "a");
    let ab = redis_support::cache(&server, "ab");
    a.set("bk0", &1u8).await.unwrap();
    ab.set("k0", &2u8).await.unwrap();
    assert_eq!(keys(&server), ["a:bk0", "ab:k0"]);
    assert_eq!(a.get::<u8>("bk0").await.unwrap(), Some(1));
    assert_eq!(a.clear().await.unwrap(), 1);
    assert_eq!(ab.get::<u8>("k0").await.unwrap(), Some(2));
    assert_eq!(keys(&server), ["ab:k0"]);
}

static REPORTS: Late = Late(OnceLock::new());

#[derive(Serialize)]
struct Filter {
    table: &'static str,
    id: u32,
}

#[memoize(cache = REPORTS)]
fn report(filter: Filter, page: u32) -> String {
    format!("{} {} {page}", filter.table, filter.id)
}

/// Before: `cache:memoize:redis_keys.report:{table=users,id=1}:2`, a Redis Cluster hash tag
/// that put every page of one filter in one slot.
#[test]
fn struct_arguments_carry_no_hash_tag() {
    let server = RedisServer::start();
    let _ = REPORTS.0.set(redis_support::cache(&server, "{app}:"));
    for page in 0..3 {
        report(
            Filter {
                table: "users",
                id: 1,
            },
            page,
        );
    }
    let keys = keys(&server);
    assert_eq!(keys.len(), 3);
    assert_eq!(
        keys[0],
        "%7Bapp%7D:memoize:redis_keys.report:(table=users,id=1):0"
    );
    assert!(keys.iter().all(|k| !k.contains(['{', '}'])), "{keys:?}");
}
