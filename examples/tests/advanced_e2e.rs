//! The advanced-techniques app as real processes sharing a throwaway redis-server.

mod support;

use support::App;
use tests::RedisServer;

const BIN: &str = env!("CARGO_BIN_EXE_advanced");

fn pair(server: &RedisServer) -> (App, App) {
    let url = server.url();
    (
        App::start(BIN, &[("CACHE_REDIS_URL", &url)]),
        App::start(BIN, &[("CACHE_REDIS_URL", &url)]),
    )
}

#[test]
fn view_level_caching_runs_the_view_once() {
    let server = RedisServer::start();
    let app = App::start(BIN, &[("CACHE_REDIS_URL", &server.url())]);
    let expected = (200, r#"{"message":"Heavy computation result"}"#.to_owned());
    assert_eq!(app.get("/expensive"), expected);
    assert_eq!(app.get("/expensive"), expected);
    assert_eq!(app.stat("expensive_runs"), 1);
}

/// The header `name` (lower case) of a response head.
fn header<'h>(head: &'h str, name: &str) -> Option<&'h str> {
    head.split("\r\n")
        .filter_map(|line| line.split_once(':'))
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.trim())
}

/// Issue 13: `/expensive` is served through the response cache layer: whole responses,
/// keyed by the path and the sorted query string, `x-cache`, `ETag` and `304`, shared by
/// two instances, forgotten by path.
#[test]
fn the_expensive_view_is_cached_as_a_whole_response_shared_by_instances() {
    let server = RedisServer::start();
    let (first, second) = pair(&server);
    let body = r#"{"message":"Heavy computation result"}"#;
    let (status, head, miss) = first.get_with("/expensive?b=2&a=1", &[]);
    assert_eq!((status, miss.as_str()), (200, body));
    assert_eq!(header(&head, "x-cache"), Some("miss"));
    assert_eq!(header(&head, "content-type"), Some("application/json"));
    let etag = header(&head, "etag").expect("an ETag").to_owned();

    let (_, head, hit) = second.get_with("/expensive?a=1&b=2", &[]);
    assert_eq!(
        (hit.as_str(), header(&head, "x-cache")),
        (body, Some("hit"))
    );
    assert_eq!(header(&head, "content-type"), Some("application/json"));
    assert!(header(&head, "age").is_some());
    let (status, _, empty) =
        second.get_with("/expensive?a=1&b=2", &[&format!("If-None-Match: {etag}")]);
    assert_eq!((status, empty.as_str()), (304, ""));
    assert_eq!(
        first.stat("expensive_runs") + second.stat("expensive_runs"),
        1
    );

    let mut redis = server.connection();
    let ttl: i64 = redis::cmd("TTL")
        .arg("cache:http%3AGET/expensive%3Fa%3D1%26b%3D2")
        .query(&mut redis)
        .unwrap();
    assert!((1..=60).contains(&ttl), "stored for 60 s: {ttl}");

    assert_eq!(second.get("/expensive?a=2").1, body);
    assert_eq!(
        second.get("/expensive/forget"),
        (200, "/expensive forgotten (2 responses)".to_owned())
    );
    let (_, head, _) = first.get_with("/expensive?a=1&b=2", &[]);
    assert_eq!(header(&head, "x-cache"), Some("miss"));
}

#[test]
fn function_level_caching_is_shared_and_invalidated_across_instances() {
    let server = RedisServer::start();
    let (first, second) = pair(&server);
    let user = (200, r#"{"user_id":7,"name":"User 7"}"#.to_owned());
    assert_eq!(first.get("/user/7"), user);
    assert_eq!(second.get("/user/7"), user);
    assert_eq!(
        first.stat("database_fetches") + second.stat("database_fetches"),
        1
    );
    assert_eq!(second.get("/user/7/forget").0, 200);
    first.get("/user/7");
    assert_eq!(
        first.stat("database_fetches"),
        2,
        "the other instance's invalidation is seen"
    );
    assert_eq!(first.get("/user/x").0, 400);
}

#[test]
fn the_fragment_is_cached_while_the_page_renders_fresh() {
    let server = RedisServer::start();
    let app = App::start(BIN, &[("CACHE_REDIS_URL", &server.url())]);
    let (_, one) = app.get("/dashboard");
    std::thread::sleep(std::time::Duration::from_millis(5));
    let (_, two) = app.get("/dashboard");
    let fragment = |page: &str| {
        page.lines()
            .find(|l| l.contains("Dynamic Data"))
            .unwrap()
            .to_owned()
    };
    let rendered = |page: &str| {
        page.lines()
            .find(|l| l.contains("Rendered at"))
            .unwrap()
            .to_owned()
    };
    assert_eq!(fragment(&one), fragment(&two));
    assert_ne!(rendered(&one), rendered(&two));
    assert_eq!(app.stat("fragment_renders"), 1);
    let mut redis = server.connection();
    let ttl: i64 = redis::cmd("TTL")
        .arg("cache:dashboard_data")
        .query(&mut redis)
        .unwrap();
    assert!((1..=120).contains(&ttl));
}

#[test]
fn direct_set_and_get_are_shared_and_manual_invalidation_is_seen() {
    let server = RedisServer::start();
    let (first, second) = pair(&server);
    assert_eq!(
        first
            .request("POST", "/cache/user_123?value=Ada&timeout=300")
            .0,
        200
    );
    assert_eq!(second.get("/cache/user_123"), (200, "Ada".to_owned()));
    let mut redis = server.connection();
    let ttl: i64 = redis::cmd("TTL")
        .arg("cache:user_123")
        .query(&mut redis)
        .unwrap();
    assert!((290..=300).contains(&ttl), "time-based expiry: {ttl}");
    assert_eq!(
        second.get("/cache/user_123/delete"),
        (200, "user_123 deleted".to_owned())
    );
    assert_eq!(first.get("/cache/user_123").0, 404);
}

#[test]
fn lru_eviction_keeps_a_small_redis_within_maxmemory() {
    let server = RedisServer::builder()
        .maxmemory("2mb", "allkeys-lru")
        .start();
    let app = App::start(BIN, &[("CACHE_REDIS_URL", &server.url())]);
    let value = "x".repeat(20_000);
    for i in 0..300 {
        let (status, body) =
            app.request("POST", &format!("/cache/item_{i}?value={value}&timeout=0"));
        assert_eq!(status, 200, "{body}");
    }
    assert!(
        server.dbsize() < 300,
        "older entries were evicted: {} left",
        server.dbsize()
    );
    assert_eq!(
        app.get("/cache/item_299").1.len(),
        value.len(),
        "the newest entry is kept"
    );
    assert_eq!(app.stat("cache_errors"), 0);
}

#[test]
fn flask_style_host_and_port_settings_work() {
    let server = RedisServer::start();
    let port = server.port().to_string();
    let env = [
        ("CACHE_TYPE", "RedisCache"),
        ("CACHE_REDIS_HOST", "127.0.0.1"),
        ("CACHE_REDIS_PORT", port.as_str()),
        ("CACHE_REDIS_DB", "0"),
    ];
    let app = App::start(BIN, &env);
    app.get("/user/1");
    assert_eq!(server.dbsize(), 1);
}

/// Issue 9: the advanced app logs its cache the same way as the tutorial; a password in a
/// Unix socket URL's query is `***` at INFO.
#[test]
fn the_startup_log_masks_a_unix_socket_password() {
    const SECRET: &str = "Sekr3t-advanced-e41c";
    let url = format!("unix:///run/redis.sock?db=1&pass={SECRET}");
    let log = support::startup_log(BIN, &[("CACHE_REDIS_URL", &url)]);
    assert!(
        log.contains("cache: Redis at unix:///run/redis.sock?db=1&pass=***"),
        "{log}"
    );
    assert!(!log.contains(SECRET), "{log}");
}

/// Issue 13: with Redis gone, `/expensive` still answers, from the view itself.
#[test]
fn the_expensive_view_fails_open_when_redis_is_down() {
    let mut server = RedisServer::start();
    let app = App::start(BIN, &[("CACHE_REDIS_URL", &server.url())]);
    server.kill();
    let body = r#"{"message":"Heavy computation result"}"#;
    for _ in 0..3 {
        let (status, head, answer) = app.get_with("/expensive", &[]);
        assert_eq!((status, answer.as_str()), (200, body));
        assert_eq!(header(&head, "x-cache"), Some("miss"));
    }
    assert_eq!(app.stat("expensive_runs"), 3);
    assert!(app.stat("cache_errors") >= 3);
}
