//! The beginners' tutorial app: a cached home page, a memoized slow square, and routes that
//! clear the cache or delete one entry.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use cache_core::{Cache, StatsSnapshot, cached, memoize};
use serde::Serialize;

/// How many times the body of [`square()`] ran in this process.
pub static SQUARE_RUNS: AtomicU64 = AtomicU64::new(0);
/// How many times the body of [`home()`] ran in this process.
pub static HOME_RUNS: AtomicU64 = AtomicU64::new(0);

/// The simulated heavy work of `/square`: 2 s, or `SQUARE_DELAY_MS`.
fn square_delay() -> Duration {
    std::env::var("SQUARE_DELAY_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map_or(Duration::from_secs(2), Duration::from_millis)
}

/// The whole home page, cached for 30 s under the key `homepage`.
#[cached(key_prefix = "homepage", timeout = 30)]
pub async fn home() -> String {
    HOME_RUNS.fetch_add(1, Ordering::Relaxed);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!("Home generated at {:.6}", now.as_secs_f64())
}

/// A slow square, one cache entry per number, for 60 s.
#[memoize(timeout = 60)]
pub async fn square(num: i64) -> String {
    SQUARE_RUNS.fetch_add(1, Ordering::Relaxed);
    tokio::time::sleep(square_delay()).await;
    let square = i128::from(num) * i128::from(num);
    format!("Square of {num} is {square}")
}

async fn square_route(Path(raw): Path<String>) -> Result<String, (StatusCode, String)> {
    let num: i64 = raw.parse().map_err(|_| {
        let problem = if !raw.is_empty()
            && raw
                .trim_start_matches('-')
                .bytes()
                .all(|b| b.is_ascii_digit())
        {
            format!(
                "{raw} is too large: use a whole number between {} and {}",
                i64::MIN,
                i64::MAX
            )
        } else {
            format!("{raw:?} is not a whole number: try /square/5")
        };
        (StatusCode::BAD_REQUEST, problem)
    })?;
    Ok(square(num).await)
}

async fn clear_cache(State(cache): State<Cache>) -> Result<&'static str, (StatusCode, String)> {
    cache.clear().await.map_err(unavailable)?;
    Ok("All cache cleared!")
}

async fn delete_homepage_cache(
    State(cache): State<Cache>,
) -> Result<&'static str, (StatusCode, String)> {
    cache.delete("homepage").await.map_err(unavailable)?;
    Ok("Homepage cache deleted!")
}

fn unavailable(error: cache_core::Error) -> (StatusCode, String) {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        format!("the cache is unavailable: {error}"),
    )
}

/// What `/stats` shows: how often the bodies ran, and the cache's counters.
#[derive(Debug, Serialize)]
pub struct Stats {
    /// Runs of the `square` body.
    pub square_runs: u64,
    /// Runs of the `home` body.
    pub home_runs: u64,
    /// Hits of `square`.
    pub square_hits: u64,
    /// Hits of `square` served from process memory (with `CACHE_LOCAL_TIMEOUT`).
    pub square_near_hits: u64,
    /// Counters of the whole cache.
    pub cache_hits: u64,
    /// See above.
    pub cache_misses: u64,
    /// See above.
    pub cache_errors: u64,
}

async fn stats(State(cache): State<Cache>) -> Json<Stats> {
    let all: StatsSnapshot = cache.stats();
    Json(Stats {
        square_runs: SQUARE_RUNS.load(Ordering::Relaxed),
        home_runs: HOME_RUNS.load(Ordering::Relaxed),
        square_hits: square::stats().hits,
        square_near_hits: square::stats().near_hits,
        cache_hits: all.hits,
        cache_misses: all.misses,
        cache_errors: all.errors,
    })
}

/// The app: `/`, `/square/{num}`, `/clear-cache`, `/delete-homepage-cache`, and `/stats`.
pub fn router(cache: Cache) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/square/{num}", get(square_route))
        .route("/clear-cache", get(clear_cache))
        .route("/delete-homepage-cache", get(delete_homepage_cache))
        .route("/stats", get(stats))
        .with_state(cache)
}
