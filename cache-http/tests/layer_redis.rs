//! The layer on a real `redis-server` started by the harness: instances sharing entries,
//! the commands a hit and a miss cost, leases across instances, and fail-open.

mod support;

use std::time::Duration;

use cache_core::Cache;
use cache_http::ResponseCacheExt;
use cache_redis::RedisBackend;
use support::TestApp;
use tests::RedisServer;

fn redis_cache(server: &RedisServer) -> Cache {
    let backend = RedisBackend::builder().url(server.url()).build().unwrap();
    Cache::builder().backend(backend).build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_entries_and_invalidations() {
    let server = RedisServer::start();
    let one = TestApp::start(redis_cache(&server), |b| b.query_string(true)).await;
    let two = TestApp::start(redis_cache(&server), |b| b.query_string(true)).await;
    let first = one.get("/items?b=2&a=1").await;
    assert_eq!(first.x_cache(), "miss");
    let shared = two.get("/items?a=1&b=2").await;
    assert_eq!((shared.x_cache(), shared.text()), ("hit", first.text()));
    assert_eq!(shared.header("etag"), first.header("etag"));
    assert_eq!(one.runs.of("items") + two.runs.of("items"), 1);

    server.reset_stats();
    assert_eq!(two.get("/items?a=1&b=2").await.x_cache(), "hit");
    assert_eq!(server.command_count("get"), 1, "a hit is one GET");
    assert_eq!(server.command_count("set"), 0);

    assert_eq!(two.cache.delete_response("/items").await.unwrap(), 1);
    assert_eq!(
        one.get("/items?a=1&b=2").await.x_cache(),
        "miss",
        "seen by the other instance"
    );
    assert_eq!(server.dbsize(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vary_variants_are_shared_across_instances() {
    let server = RedisServer::start();
    let one = TestApp::start(redis_cache(&server), |b| b).await;
    let two = TestApp::start(redis_cache(&server), |b| b).await;
    let en = [("Accept-Language", "en")];
    let fr = [("Accept-Language", "fr")];
    one.send("GET", "/lang", &en).await;
    one.send("GET", "/lang", &fr).await;
    assert_eq!(two.send("GET", "/lang", &en).await.x_cache(), "hit");
    let fr_hit = two.send("GET", "/lang", &fr).await;
    assert_eq!(
        (fr_hit.x_cache(), fr_hit.text().as_str()),
        ("hit", "hello in fr run 2")
    );
    assert_eq!(
        server.dbsize(),
        2,
        "the variant index with the first variant, and one variant"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_runs_the_handler_once_across_instances() {
    let server = RedisServer::start();
    let lease = |b: cache_http::ResponseCacheBuilder| b.lease(Duration::from_secs(5));
    let one = TestApp::start(redis_cache(&server), lease).await;
    let two = TestApp::start(redis_cache(&server), lease).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..40 {
        let addr = if i % 2 == 0 { one.addr } else { two.addr };
        tasks.spawn(async move { support::request(addr, "GET", "/slow", &[]).await });
    }
    let replies = tasks.join_all().await;
    assert_eq!(one.runs.of("slow") + two.runs.of("slow"), 1);
    assert!(
        replies
            .iter()
            .all(|r| r.status == 200 && r.text() == "slow for - run 1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shorter_max_age_is_the_entrys_time_to_live_in_redis() {
    let server = RedisServer::start();
    let app = TestApp::start(redis_cache(&server), |b| b.timeout(Duration::from_secs(60))).await;
    assert_eq!(
        app.get("/header/cache-control/max-age=2").await.x_cache(),
        "miss"
    );
    let key = app
        .cache
        .full_key("http:GET/header/cache-control/max-age=2?");
    let mut redis = server.connection();
    let mut ttl: i64 = 60_000;
    for _ in 0..100 {
        ttl = redis::cmd("PTTL").arg(&key).query(&mut redis).unwrap();
        if ttl <= 2_000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!((1..=2_000).contains(&ttl), "{key}: {ttl} ms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_layer_fails_open_when_redis_is_down() {
    let mut server = RedisServer::start();
    let app = TestApp::start(redis_cache(&server), |b| b).await;
    assert_eq!(app.get("/items").await.x_cache(), "miss");
    assert_eq!(app.get("/items").await.x_cache(), "hit");

    server.kill();
    for i in 2..=5 {
        let reply = app.get("/items").await;
        assert_eq!(
            (reply.status, reply.text()),
            (200, format!("items  run {i}"))
        );
        assert_eq!(reply.x_cache(), "miss");
    }
    let head = app.send("HEAD", "/items", &[]).await;
    assert_eq!(head.status, 200);
    assert!(app.cache.stats().errors >= 4);

    server.restart();
    let mut hit = false;
    for _ in 0..100 {
        app.get("/items").await;
        if app.get("/items").await.x_cache() == "hit" {
            hit = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(hit, "hits resume once Redis is back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_redis_costs_a_request_one_time_out_and_serves_the_handlers_answer() {
    let mut server = RedisServer::start();
    let app = TestApp::start(redis_cache(&server), |b| b).await;
    app.get("/items").await;
    server.pause();
    let started = std::time::Instant::now();
    let reply = app.get("/items").await;
    let took = started.elapsed();
    server.resume();
    assert_eq!((reply.status, reply.text().as_str()), (200, "items  run 2"));
    // The response time-out is 200 ms; two would be 400 ms.
    assert!(took < Duration::from_millis(390), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_cancelled_while_it_reads_redis_leaves_no_flight_behind() {
    let mut server = RedisServer::start();
    let app = TestApp::start(redis_cache(&server), |b| b).await;
    server.pause();
    let cancelled = tokio::time::timeout(Duration::from_millis(50), app.get("/items"));
    assert!(
        cancelled.await.is_err(),
        "cancelled while its GET waits on a paused Redis"
    );
    server.resume();
    let mut replies = Vec::new();
    for _ in 0..40 {
        replies.push(app.get("/items").await);
        if replies.last().unwrap().x_cache() == "hit" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let last = replies.last().unwrap();
    assert_eq!(last.x_cache(), "hit", "caching resumes: {replies:?}");
    assert!(replies.iter().all(|r| r.status == 200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_key_holds_a_hash_tag_or_leaves_the_namespace() {
    let server = RedisServer::start();
    let mut redis = server.connection();
    let _: () = redis::cmd("SET")
        .arg("foreign")
        .arg("kept")
        .query(&mut redis)
        .unwrap();
    let app = TestApp::start(redis_cache(&server), |b| b.query_string(true)).await;
    for path in ["/items?x={tag}&y=%7B", "/user/1?{a}", "/items?a=*&b=[x]"] {
        assert_eq!(app.get(path).await.status, 200, "{path}");
    }
    app.send("GET", "/lang", &[("Accept-Language", "{en}")])
        .await;
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut redis).unwrap();
    assert_eq!(keys.len(), 5, "{keys:?}");
    for key in keys.iter().filter(|k| *k != "foreign") {
        assert!(key.starts_with("cache:http%3AGET/"), "{key}");
        assert!(!key.contains(['{', '}', '*', '[', ']']), "{key}");
    }
    assert_eq!(app.cache.clear().await.unwrap(), 4);
    let kept: String = redis::cmd("GET").arg("foreign").query(&mut redis).unwrap();
    assert_eq!(kept, "kept");
}
