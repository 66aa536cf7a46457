//! `/metrics` of the tutorial app as a real process on a throwaway redis-server, and its log
//! read through a pipe.

mod support;

use support::App;
use tests::RedisServer;

const BIN: &str = env!("CARGO_BIN_EXE_tutorial");

/// The value of the sample `series` (name and labels, as rendered) in a Prometheus page.
fn sample(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|value| value.trim().parse().expect("a number"))
}

#[test]
fn the_metrics_page_shows_squares_hit_and_miss_and_the_redis_latency() {
    let server = RedisServer::start();
    let app = App::start(BIN, &[("CACHE_REDIS_URL", &server.url())]);
    assert_eq!(app.get("/square/5"), (200, "Square of 5 is 25".to_owned()));
    assert_eq!(app.get("/square/5"), (200, "Square of 5 is 25".to_owned()));
    assert_eq!(app.stat("square_runs"), 1, "the body ran once");
    let (status, page) = app.get("/metrics");
    assert_eq!(status, 200);
    let square = r#"cache="cache",function="examples::tutorial::square""#;
    assert_eq!(
        sample(&page, &format!("cache_hits_total{{{square}}}")),
        Some(1.0),
        "{page}"
    );
    assert_eq!(
        sample(&page, &format!("cache_misses_total{{{square}}}")),
        Some(1.0)
    );
    assert_eq!(
        sample(&page, &format!("cache_stores_total{{{square}}}")),
        Some(1.0)
    );
    assert_eq!(
        sample(&page, &format!("cache_compute_seconds_count{{{square}}}")),
        Some(1.0)
    );
    let compute = sample(&page, &format!("cache_compute_seconds_sum{{{square}}}")).unwrap();
    assert!(
        compute >= 0.2,
        "the body sleeps 200 ms (SQUARE_DELAY_MS): {compute}"
    );
    // Two reads of Redis (the miss and the hit), both successful, and one write.
    let reads = r#"cache_backend_seconds_count{cache="cache",op="get",outcome="ok"}"#;
    assert_eq!(sample(&page, reads), Some(2.0), "{page}");
    let writes = r#"cache_backend_seconds_count{cache="cache",op="set",outcome="ok"}"#;
    assert_eq!(sample(&page, writes), Some(1.0));
    assert!(
        page.contains(r#"cache_backend_seconds_bucket{cache="cache",op="get",outcome="ok",le="#)
    );
    assert!(!page.contains("memoize:"), "no key in a label");
}

#[test]
fn a_piped_log_holds_no_colour_escape_codes() {
    let log = support::startup_log(BIN, &[]);
    assert!(log.contains("listening on"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "escape codes in a piped log: {log:?}"
    );
}
