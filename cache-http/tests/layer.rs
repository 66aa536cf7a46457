//! The layer over real HTTP, on the in-memory backend: what is stored, under which key,
//! and what every request gets.

mod support;

use std::time::Duration;

use cache_core::Cache;
use cache_http::ResponseCacheExt;
use support::{CHUNK, TestApp};

async fn app() -> TestApp {
    TestApp::start(Cache::memory(), |b| b.query_string(true)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_path_and_sorted_query_has_its_own_entry() {
    let app = app().await;
    let first = app.get("/items?b=2&a=1").await;
    assert_eq!((first.status, first.x_cache()), (200, "miss"));
    let again = app.get("/items?a=1&b=2").await;
    assert_eq!((again.text(), again.x_cache()), (first.text(), "hit"));
    assert_eq!(app.runs.of("items"), 1);
    assert_eq!(app.get("/items?a=2").await.x_cache(), "miss");
    assert_eq!(app.get("/items").await.x_cache(), "miss");
    assert_eq!(app.get("/items2").await.x_cache(), "miss");
    assert_eq!(app.runs.of("items"), 3);
    assert_eq!(
        app.cache.full_key("http:GET/items?a=1&b=2"),
        "cache:http%3AGET/items%3Fa%3D1%26b%3D2"
    );
    assert!(app.cache.has("http:GET/items?a=1&b=2").await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_query_strings_the_query_is_not_part_of_the_key() {
    let app = TestApp::start(Cache::memory(), |b| b).await;
    let first = app.get("/items?a=1").await;
    let second = app.get("/items?a=2").await;
    assert_eq!(second.text(), first.text());
    assert_eq!(second.x_cache(), "hit");
    assert_eq!(app.runs.of("items"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vary_keeps_one_variant_per_request_header_value() {
    let app = app().await;
    let en = [("Accept-Language", "en")];
    let fr = [("Accept-Language", "fr")];
    let first_en = app.send("GET", "/lang", &en).await;
    assert_eq!(first_en.text(), "hello in en run 1");
    let first_fr = app.send("GET", "/lang", &fr).await;
    assert_eq!(first_fr.text(), "hello in fr run 2");
    assert_eq!(first_fr.x_cache(), "miss");
    for _ in 0..2 {
        let en_again = app.send("GET", "/lang", &en).await;
        assert_eq!(
            (en_again.text().as_str(), en_again.x_cache()),
            ("hello in en run 1", "hit")
        );
        let fr_again = app.send("GET", "/lang", &fr).await;
        assert_eq!(
            (fr_again.text().as_str(), fr_again.x_cache()),
            ("hello in fr run 2", "hit")
        );
    }
    let none = app.get("/lang").await;
    assert_eq!(none.text(), "hello in - run 3");
    assert_eq!(none.header("vary"), Some("Accept-Language"));
    assert_eq!(app.runs.of("lang"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_200_no_store_private_set_cookie_and_vary_star_are_not_stored() {
    let app = app().await;
    let cases = [
        "/status/404",
        "/status/500",
        "/status/201",
        "/header/cache-control/no-store",
        "/header/cache-control/private",
        "/header/cache-control/no-cache",
        "/header/cache-control/max-age=0",
        "/header/set-cookie/session=1",
        "/header/vary/*",
    ];
    for (i, path) in cases.iter().enumerate() {
        let before = app.runs.of("status") + app.runs.of("header");
        let one = app.get(path).await;
        let two = app.get(path).await;
        assert_eq!((one.x_cache(), two.x_cache()), ("miss", "miss"), "{path}");
        assert_ne!(
            one.text(),
            two.text(),
            "{path}: each request ran the handler"
        );
        assert_eq!(
            app.runs.of("status") + app.runs.of("header"),
            before + 2,
            "{path} ({i})"
        );
    }
    let ok = app.get("/header/cache-control/public").await;
    assert_eq!(ok.x_cache(), "miss");
    assert_eq!(
        app.get("/header/cache-control/public").await.x_cache(),
        "hit"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_if_widens_what_is_stored() {
    let app = TestApp::start(Cache::memory(), |b| {
        b.store_if(|head| head.status.is_success() || head.status == 404)
    })
    .await;
    app.get("/status/404").await;
    let again = app.get("/status/404").await;
    assert_eq!((again.status, again.x_cache()), (404, "hit"));
    assert_eq!(app.runs.of("status"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shorter_max_age_overrides_the_layers_timeout() {
    let app = TestApp::start(Cache::memory(), |b| b.timeout(Duration::from_secs(60))).await;
    let path = "/header/cache-control/max-age=1";
    assert_eq!(app.get(path).await.x_cache(), "miss");
    let hit = app.get(path).await;
    assert_eq!((hit.x_cache(), hit.header("age")), ("hit", Some("0")));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        app.get(path).await.x_cache(),
        "miss",
        "expired after its max-age"
    );
    assert_eq!(app.runs.of("header"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_response_says_its_age() {
    let app = app().await;
    app.get("/items").await;
    tokio::time::sleep(Duration::from_millis(1050)).await;
    assert_eq!(app.get("/items").await.header("age"), Some("1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_cached_response_has_an_etag_and_if_none_match_gets_a_304() {
    let app = app().await;
    let miss = app.get("/items").await;
    let etag = miss.header("etag").expect("an ETag on the miss").to_owned();
    assert!(etag.starts_with('"') && etag.len() == 34, "{etag}");
    let hit = app.get("/items").await;
    assert_eq!(hit.header("etag"), Some(etag.as_str()));
    let not_modified = app.send("GET", "/items", &[("If-None-Match", &etag)]).await;
    assert_eq!(not_modified.status, 304);
    assert!(not_modified.body.is_empty());
    assert_eq!(not_modified.header("etag"), Some(etag.as_str()));
    assert_eq!(not_modified.x_cache(), "hit");
    assert!(not_modified.header("content-type").is_none());
    let weak = format!("\"other\", W/{etag}");
    assert_eq!(
        app.send("GET", "/items", &[("If-None-Match", &weak)])
            .await
            .status,
        304
    );
    let other = app
        .send("GET", "/items", &[("If-None-Match", "\"other\"")])
        .await;
    assert_eq!((other.status, other.text()), (200, miss.text()));
    // The handler's own ETag is kept.
    let own = app.get("/header/etag/%22v1%22").await;
    assert_eq!(own.header("etag"), Some("\"v1\""));
    assert_eq!(
        app.send(
            "GET",
            "/header/etag/%22v1%22",
            &[("If-None-Match", "\"v1\"")]
        )
        .await
        .status,
        304
    );
    assert_eq!(app.runs.of("items"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_is_answered_from_the_stored_get() {
    let app = app().await;
    let cold = app.send("HEAD", "/items", &[]).await;
    assert_eq!((cold.status, cold.x_cache()), (200, "miss"));
    assert_eq!(app.runs.of("items"), 1);
    assert_eq!(
        app.get("/items").await.x_cache(),
        "miss",
        "a HEAD stores nothing"
    );
    let get = app.get("/items").await;
    let head = app.send("HEAD", "/items", &[]).await;
    assert_eq!((head.status, head.x_cache()), (200, "hit"));
    assert!(head.body.is_empty());
    assert_eq!(
        head.header("content-length"),
        Some(get.body.len().to_string().as_str())
    );
    assert_eq!(head.header("etag"), get.header("etag"));
    assert_eq!(app.runs.of("items"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_requests_for_a_cold_url_run_the_handler_once() {
    let app = app().await;
    let requests = (0..100).map(|_| request_slow(&app, "anyone", false));
    let replies = futures_join(requests).await;
    assert_eq!(app.runs.of("slow"), 1);
    for reply in &replies {
        assert_eq!(
            (reply.status, reply.text().as_str()),
            (200, "slow for anyone run 1")
        );
    }
    let misses = replies.iter().filter(|r| r.x_cache() == "miss").count();
    assert_eq!(misses, 1, "one computed, 99 waited for it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_response_never_reaches_the_requests_that_waited_for_it() {
    let app = app().await;
    let users: Vec<String> = (0..20).map(|i| format!("user{i}")).collect();
    let requests = users.iter().map(|user| request_slow(&app, user, true));
    let replies = futures_join(requests).await;
    for (user, reply) in users.iter().zip(&replies) {
        assert!(
            reply.text().starts_with(&format!("slow for {user} run")),
            "{user}: {}",
            reply.text()
        );
    }
    assert_eq!(
        app.runs.of("slow"),
        20,
        "every request ran the handler for itself"
    );
    // The pass mark sends the next wave to the handler at once, each request for itself.
    let replies = futures_join(users.iter().map(|user| request_slow(&app, user, true))).await;
    for (user, reply) in users.iter().zip(&replies) {
        assert!(
            reply.text().starts_with(&format!("slow for {user} run")),
            "{user}: {}",
            reply.text()
        );
    }
    assert_eq!(app.runs.of("slow"), 40);
}

async fn request_slow(app: &TestApp, user: &str, private: bool) -> support::Reply {
    let mut headers = vec![("X-User", user)];
    if private {
        headers.push(("X-Private", "1"));
    }
    support::request(app.addr, "GET", "/slow", &headers).await
}

/// Runs the futures concurrently, polled together in this task (they borrow the app; the
/// server runs on the runtime's other tasks).
async fn futures_join<F>(futures: impl Iterator<Item = F>) -> Vec<support::Reply>
where
    F: std::future::Future<Output = support::Reply>,
{
    let mut pinned: Vec<_> = futures.map(Box::pin).collect();
    let mut out: Vec<Option<support::Reply>> = vec![None; pinned.len()];
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (slot, future) in out.iter_mut().zip(pinned.iter_mut()) {
            if slot.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(reply) => *slot = Some(reply),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(Option::unwrap).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_is_passed_through_whole_and_not_stored() {
    let app = app().await;
    let big = app.get("/big/2048").await;
    assert_eq!((big.status, big.body.len()), (200, 2 << 20));
    assert_eq!(big.x_cache(), "miss");
    assert_eq!(app.get("/big/2048").await.x_cache(), "miss");
    assert_eq!(app.runs.of("big"), 2);
    // A streaming body over the limit: the part read first, then the rest, in order.
    let stream = app.get("/stream/40").await;
    assert_eq!(stream.body.len(), 40 * CHUNK);
    assert!(stream.body.iter().all(|b| *b == b'x'));
    assert_eq!(app.get("/stream/40").await.x_cache(), "miss");
    // Within the limit, a streaming body is stored.
    assert_eq!(app.get("/stream/4").await.x_cache(), "miss");
    let small = app.get("/stream/4").await;
    assert_eq!((small.x_cache(), small.body.len()), ("hit", 4 * CHUNK));
    assert_eq!(app.runs.of("stream"), 3);
    assert_eq!(app.get("/big/1000").await.x_cache(), "miss");
    assert_eq!(app.get("/big/1000").await.x_cache(), "hit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalidation_by_path_removes_its_queries_only_and_by_prefix_its_subtree() {
    let app = app().await;
    for path in [
        "/items",
        "/items?a=1",
        "/items?b=1",
        "/items2",
        "/user/1",
        "/user/2",
    ] {
        app.get(path).await;
    }
    assert_eq!(app.cache.delete_response("/items").await.unwrap(), 3);
    assert_eq!(app.get("/items?a=1").await.x_cache(), "miss");
    assert_eq!(app.get("/items2").await.x_cache(), "hit");
    assert_eq!(app.cache.delete_responses_under("/user/").await.unwrap(), 2);
    assert_eq!(app.get("/user/1").await.x_cache(), "miss");
    assert!(
        app.cache
            .delete_response("items")
            .await
            .unwrap_err()
            .is_refused()
    );
    assert!(app.cache.delete_response("/items?a=1").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_and_other_methods_pass_through_and_client_no_store_only_reads() {
    let app = app().await;
    let auth = [("Authorization", "Bearer secret")];
    for _ in 0..2 {
        assert_eq!(app.send("GET", "/items", &auth).await.x_cache(), "miss");
    }
    assert_eq!(app.runs.of("items"), 2);
    assert_eq!(app.get("/items").await.x_cache(), "miss");
    assert_eq!(
        app.send("GET", "/items", &auth).await.x_cache(),
        "miss",
        "not served from the cache"
    );
    let no_store = [("Cache-Control", "no-store")];
    assert_eq!(app.send("GET", "/items", &no_store).await.x_cache(), "hit");
    assert_eq!(
        app.send("GET", "/items2", &no_store).await.x_cache(),
        "miss"
    );
    assert_eq!(
        app.get("/items2").await.x_cache(),
        "miss",
        "no-store stored nothing"
    );
    let no_cache = [("Cache-Control", "no-cache")];
    assert_eq!(app.send("GET", "/items", &no_cache).await.x_cache(), "hit");
    for _ in 0..2 {
        assert_eq!(
            app.send("POST", "/not-get", &[("Content-Length", "0")])
                .await
                .x_cache(),
            "miss"
        );
    }
    assert_eq!(app.runs.of("post"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_request_leaves_no_flight_behind() {
    let app = app().await;
    // The first request is dropped while its handler sleeps; the next one computes.
    let first = tokio::time::timeout(Duration::from_millis(50), request_slow(&app, "a", false));
    assert!(first.await.is_err());
    let second = request_slow(&app, "b", false).await;
    assert_eq!(second.status, 200);
    assert!(app.runs.of("slow") >= 1);
    assert_eq!(request_slow(&app, "c", false).await.x_cache(), "hit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_cancelled_while_its_body_is_read_leaves_no_flight_behind() {
    let app = app().await;
    let first = tokio::time::timeout(Duration::from_millis(50), app.get("/slow-body"));
    assert!(
        first.await.is_err(),
        "cancelled between the body's two chunks"
    );
    let second = app.get("/slow-body").await;
    assert_eq!(
        (second.text().as_str(), second.x_cache()),
        ("part part ", "miss")
    );
    let third = app.get("/slow-body").await;
    assert_eq!(
        (third.text().as_str(), third.x_cache()),
        ("part part ", "hit")
    );
    assert_eq!(app.runs.of("slow-body"), 2);
}
