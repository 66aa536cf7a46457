//! The tutorial app as a real process, against a throwaway redis-server.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::App;
use tests::RedisServer;

const BIN: &str = env!("CARGO_BIN_EXE_tutorial");

fn on_redis(server: &RedisServer) -> App {
    App::start(BIN, &[("CACHE_REDIS_URL", &server.url())])
}

#[test]
fn the_second_square_is_a_hit_that_does_not_run_the_body() {
    let server = RedisServer::start();
    let app = on_redis(&server);
    assert_eq!(app.get("/square/5"), (200, "Square of 5 is 25".to_owned()));
    assert_eq!(app.get("/square/5"), (200, "Square of 5 is 25".to_owned()));
    assert_eq!(app.stat("square_runs"), 1);
    assert_eq!(app.stat("square_hits"), 1);
    let mut redis = server.connection();
    let ttl: i64 = redis::cmd("TTL")
        .arg("cache:memoize:examples.tutorial.square:5")
        .query(&mut redis)
        .unwrap();
    assert!((1..=60).contains(&ttl), "stored for 60 s, ttl {ttl}");
}

#[test]
fn deleting_the_homepage_entry_makes_the_next_home_fresh() {
    let server = RedisServer::start();
    let app = on_redis(&server);
    let (_, first) = app.get("/");
    assert!(first.starts_with("Home generated at "), "{first}");
    assert_eq!(app.get("/").1, first, "cached");
    assert_eq!(
        app.get("/delete-homepage-cache"),
        (200, "Homepage cache deleted!".to_owned())
    );
    assert_ne!(app.get("/").1, first, "fresh after the delete");
    assert_eq!(app.stat("home_runs"), 2);
}

#[test]
fn clearing_the_cache_makes_everything_fresh_and_spares_foreign_keys() {
    let server = RedisServer::start();
    let mut redis = server.connection();
    let _: () = redis::cmd("SET")
        .arg("not-ours")
        .arg("1")
        .query(&mut redis)
        .unwrap();
    let app = on_redis(&server);
    app.get("/square/3");
    let (_, home) = app.get("/");
    assert_eq!(
        app.get("/clear-cache"),
        (200, "All cache cleared!".to_owned())
    );
    app.get("/square/3");
    assert_ne!(app.get("/").1, home);
    assert_eq!(app.stat("square_runs"), 2);
    let kept: Option<String> = redis::cmd("GET").arg("not-ours").query(&mut redis).unwrap();
    assert_eq!(kept.as_deref(), Some("1"));
}

#[test]
fn a_second_instance_sees_the_first_ones_entries() {
    let server = RedisServer::start();
    let first = on_redis(&server);
    let second = on_redis(&server);
    assert_eq!(first.get("/square/7").1, "Square of 7 is 49");
    assert_eq!(second.get("/square/7").1, "Square of 7 is 49");
    assert_eq!(
        second.stat("square_runs"),
        0,
        "a hit computed by the other instance"
    );
    assert_eq!(first.get("/").1, second.get("/").1);
    second.get("/delete-homepage-cache");
    let (_, home) = second.get("/");
    assert_eq!(
        first.get("/").1,
        home,
        "the deletion is seen by the other instance"
    );
}

#[test]
fn with_a_local_timeout_repeated_squares_cost_no_redis_command_and_a_clear_elsewhere_is_seen_within_the_bound()
 {
    let server = RedisServer::start();
    let env = [
        ("CACHE_REDIS_URL", server.url()),
        ("CACHE_LOCAL_TIMEOUT", "60".to_owned()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let first = App::start(BIN, &env);
    let second = App::start(BIN, &env);
    assert_eq!(first.get("/square/5").1, "Square of 5 is 25");
    // Until its change channel is in sync the near cache is not served: wait for the first
    // near hit.
    let deadline = Instant::now() + Duration::from_secs(10);
    while first.stat("square_near_hits") == 0 {
        assert!(
            Instant::now() < deadline,
            "the near cache serves within 10 s"
        );
        first.get("/square/5");
        std::thread::sleep(Duration::from_millis(20));
    }
    server.reset_stats();
    for _ in 0..20 {
        assert_eq!(first.get("/square/5").1, "Square of 5 is 25");
    }
    let commands: Vec<String> = server
        .command_stats()
        .into_keys()
        .filter(|name| !matches!(name.as_str(), "publish" | "info" | "config|resetstat"))
        .collect();
    assert!(
        commands.is_empty(),
        "20 near hits sent no command but the heartbeats: {commands:?}"
    );
    assert_eq!(first.stat("square_runs"), 1);
    assert_eq!(
        second.get("/clear-cache"),
        (200, "All cache cleared!".to_owned())
    );
    // The staleness bound (1 s by default) has passed: the first instance recomputes.
    std::thread::sleep(Duration::from_millis(1_000));
    assert_eq!(first.get("/square/5").1, "Square of 5 is 25");
    assert_eq!(
        first.stat("square_runs"),
        2,
        "the other instance's clear reached this one's near cache"
    );
}

#[test]
fn bad_path_input_gets_a_clear_400() {
    let app = App::start(BIN, &[]);
    let (status, body) = app.get("/square/abc");
    assert_eq!(status, 400);
    assert!(body.contains("not a whole number"), "{body}");
    let (status, body) = app.get("/square/99999999999999999999");
    assert_eq!(status, 400);
    assert!(body.contains("too large"), "{body}");
    let (status, body) = app.get("/square/-3037000500");
    assert_eq!(
        (status, body.as_str()),
        (200, "Square of -3037000500 is 9223372037000250000")
    );
}

#[test]
fn without_configuration_it_caches_in_memory() {
    let app = App::start(BIN, &[]);
    app.get("/square/4");
    app.get("/square/4");
    assert_eq!(app.stat("square_runs"), 1);
}

#[test]
fn an_unreachable_redis_still_serves() {
    let nobody = RedisServer::start();
    let url = nobody.url();
    drop(nobody);
    let app = App::start(BIN, &[("CACHE_REDIS_URL", &url)]);
    assert_eq!(app.get("/square/6"), (200, "Square of 6 is 36".to_owned()));
    assert_eq!(app.get("/square/6"), (200, "Square of 6 is 36".to_owned()));
    assert_eq!(app.stat("square_runs"), 2, "no cache, but no outage");
    assert!(app.stat("cache_errors") >= 1);
}

#[test]
fn a_port_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let output = Command::new(BIN)
        .env_clear()
        .env("PORT", &port)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("already in use"), "{stderr}");
}

/// Issue 9: `CACHE_REDIS_URL=unix:///path.sock?pass=secret` was printed at INFO, password
/// and all. Every URL form's password is now `***` in the start-up log, and a URL that is
/// refused is reported without it.
#[test]
fn the_startup_log_masks_the_password_of_every_url_form() {
    const SECRET: &str = "Sekr3t-tutorial-5b2d";
    for (url, shown) in [
        (
            format!("unix:///run/redis.sock?pass={SECRET}"),
            "redis-cli -s /run/redis.sock -a ***",
        ),
        (
            format!("redis+unix:///run/redis.sock?db=2&user=app&pass={SECRET}"),
            "redis-cli -s /run/redis.sock -n 2 --user app -a ***",
        ),
        (
            format!("redis://app:{SECRET}@127.0.0.1:6379/0"),
            "redis-cli -u redis://app:***@127.0.0.1:6379/0",
        ),
        (
            format!("redis://:{SECRET}@127.0.0.1:6379/0?protocol=resp3"),
            "redis-cli -u redis://:***@127.0.0.1:6379/0?protocol=resp3",
        ),
    ] {
        let log = support::startup_log(BIN, &[("CACHE_REDIS_URL", &url)]);
        assert!(log.contains("cache: Redis at "), "{log}");
        assert!(log.contains(shown), "{shown} not in {log}");
        assert!(!log.contains(SECRET), "{log}");
    }
    let with_parts = support::startup_log(
        BIN,
        &[
            ("CACHE_REDIS_HOST", "127.0.0.1"),
            ("CACHE_REDIS_PASSWORD", SECRET),
        ],
    );
    assert!(
        with_parts.contains("redis://:***@127.0.0.1:6379/0"),
        "{with_parts}"
    );
    assert!(!with_parts.contains(SECRET), "{with_parts}");
    let refused = support::startup_log(
        BIN,
        &[(
            "CACHE_REDIS_URL",
            &format!("unix:///run/redis.sock?password={SECRET}"),
        )],
    );
    assert!(
        refused.contains("error: invalid CACHE_REDIS_URL: query parameter `password`"),
        "{refused}"
    );
    assert!(!refused.contains(SECRET), "{refused}");
}
