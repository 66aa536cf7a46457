//! The advanced-techniques tutorial app: view caching (whole HTTP responses, through
//! [`cache_http::ResponseCacheLayer`]), function caching, fragment caching, direct
//! `set`/`get` shared by every instance, and the expiry strategies.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Html;
use axum::routing::get;
use axum::{Json, Router};
use cache_core::{Cache, memoize};
use cache_http::{ResponseCacheExt, ResponseCacheLayer};
use minijinja::Environment;
use serde::{Deserialize, Serialize};

/// How many times each expensive body ran in this process.
pub static EXPENSIVE_RUNS: AtomicU64 = AtomicU64::new(0);
/// See [`EXPENSIVE_RUNS`].
pub static DATABASE_FETCHES: AtomicU64 = AtomicU64::new(0);
/// See [`EXPENSIVE_RUNS`].
pub static FRAGMENT_RENDERS: AtomicU64 = AtomicU64::new(0);

/// The `/expensive` answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Message {
    /// The text.
    pub message: String,
}

/// The `/expensive` view. It carries no attribute: the route's [`view_cache`] layer stores
/// its whole response (Flask's `@cache.cached(timeout=60, query_string=True)` on the view).
pub async fn expensive() -> Json<Message> {
    EXPENSIVE_RUNS.fetch_add(1, Ordering::Relaxed);
    Json(Message {
        message: "Heavy computation result".to_owned(),
    })
}

/// View-level caching, the HTTP way: whole responses (status, headers, body) for 60 s,
/// keyed by the path and the sorted query string, with an `ETag`, `Age` and
/// `x-cache: hit|miss`, in the same cache (and Redis) as the functions below.
pub fn view_cache(cache: Cache) -> ResponseCacheLayer {
    ResponseCacheLayer::builder(cache)
        .timeout(Duration::from_secs(60))
        .query_string(true)
        .hit_header(true)
        .build()
        .expect("the view cache's settings are valid")
}

/// Forgets every stored response of `/expensive` (all its query strings), in every instance.
async fn forget_expensive(State(cache): State<Cache>) -> Result<String, (StatusCode, String)> {
    let removed = cache
        .delete_response("/expensive")
        .await
        .map_err(unavailable)?;
    Ok(format!("/expensive forgotten ({removed} responses)"))
}

/// A user row.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct User {
    /// The id.
    pub user_id: u64,
    /// The name.
    pub name: String,
}

/// Function-level caching: one entry per user for 120 s.
#[memoize(timeout = 120)]
pub async fn get_user_details(user_id: u64) -> User {
    println!("Fetching from database...");
    DATABASE_FETCHES.fetch_add(1, Ordering::Relaxed);
    User {
        user_id,
        name: format!("User {user_id}"),
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// The dashboard page: the `{% call cache(..) %}` block is the fragment cached for 120 s
/// under `dashboard_data` (like Flask-Caching's `{% cache 120 "dashboard_data" %}`); the
/// rest of the page renders on every request.
const DASHBOARD: &str = "<h1>Dashboard</h1>
<p>Rendered at {{ now }}</p>
{% call cache('dashboard_data', 120) %}<p>Dynamic Data: {{ get_random_number() }}</p>{% endcall %}
";

/// The templates, with the fragment cache registered.
fn templates(cache: Cache) -> Environment<'static> {
    let mut env = Environment::new();
    cache_core::fragment::register(&mut env, cache);
    env.add_function("get_random_number", || {
        FRAGMENT_RENDERS.fetch_add(1, Ordering::Relaxed);
        unix_now().to_bits() % 1000
    });
    env.add_template("dashboard", DASHBOARD)
        .expect("the dashboard template parses");
    env
}

/// Template fragment caching. MiniJinja renders synchronously and the fragment is read
/// through the cache's blocking half, so rendering runs on the blocking pool.
async fn dashboard(env: Arc<Environment<'static>>) -> Result<Html<String>, (StatusCode, String)> {
    let now = format!("{:.6}", unix_now());
    let render = move || {
        env.get_template("dashboard")?
            .render(minijinja::context! { now })
    };
    match tokio::task::spawn_blocking(render).await {
        Ok(Ok(page)) => Ok(Html(page)),
        Ok(Err(error)) => Err((
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("template error: {error}"),
        )),
        Err(error) => Err((
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("render task failed: {error}"),
        )),
    }
}

async fn user_profile(Path(raw): Path<String>) -> Result<Json<User>, (StatusCode, String)> {
    let user_id = raw.parse().map_err(|_| {
        (
            StatusCode::BAD_REQUEST,
            format!("{raw:?} is not a user id: try /user/1"),
        )
    })?;
    Ok(Json(get_user_details(user_id).await))
}

async fn forget_user(Path(user_id): Path<u64>) -> Result<String, (StatusCode, String)> {
    get_user_details::invalidate(user_id)
        .await
        .map_err(unavailable)?;
    Ok(format!("User {user_id} forgotten"))
}

#[derive(Debug, Deserialize)]
struct SetParams {
    value: String,
    timeout: Option<u64>,
}

/// The tutorial's `set_cache(key, value, timeout=300)`, over HTTP.
async fn set_cache(
    State(cache): State<Cache>,
    Path(key): Path<String>,
    Query(params): Query<SetParams>,
) -> Result<String, (StatusCode, String)> {
    let timeout = Duration::from_secs(params.timeout.unwrap_or(300));
    cache
        .set_with_timeout(&key, &params.value, timeout)
        .await
        .map_err(unavailable)?;
    Ok(format!("{key} set for {}s", timeout.as_secs()))
}

/// The tutorial's `get_cache(key)`.
async fn get_cache(
    State(cache): State<Cache>,
    Path(key): Path<String>,
) -> Result<String, (StatusCode, String)> {
    match cache.get::<String>(&key).await.map_err(unavailable)? {
        Some(value) => Ok(value),
        None => Err((StatusCode::NOT_FOUND, format!("{key} is not cached"))),
    }
}

/// Manual invalidation: `cache.delete("user_123")`.
async fn delete_cache(
    State(cache): State<Cache>,
    Path(key): Path<String>,
) -> Result<String, (StatusCode, String)> {
    let existed = cache.delete(&key).await.map_err(unavailable)?;
    Ok(format!(
        "{key} {}",
        if existed { "deleted" } else { "was not cached" }
    ))
}

async fn stats(State(cache): State<Cache>) -> Json<HashMap<&'static str, u64>> {
    let all = cache.stats();
    Json(HashMap::from([
        ("expensive_runs", EXPENSIVE_RUNS.load(Ordering::Relaxed)),
        ("database_fetches", DATABASE_FETCHES.load(Ordering::Relaxed)),
        ("fragment_renders", FRAGMENT_RENDERS.load(Ordering::Relaxed)),
        ("cache_hits", all.hits),
        ("cache_misses", all.misses),
        ("cache_errors", all.errors),
    ]))
}

fn unavailable(error: cache_core::Error) -> (StatusCode, String) {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        format!("the cache is unavailable: {error}"),
    )
}

/// The app: `/expensive` (and `/expensive/forget`), `/user/{id}`, `/user/{id}/forget`,
/// `/dashboard`, `/cache/{key}` (`?value=..&timeout=..` sets, else gets),
/// `/cache/{key}/delete`, `/stats`.
pub fn router(cache: Cache) -> Router {
    let env = Arc::new(templates(cache.clone()));
    Router::new()
        .route(
            "/expensive",
            get(expensive).layer(view_cache(cache.clone())),
        )
        .route("/expensive/forget", get(forget_expensive))
        .route("/user/{id}", get(user_profile))
        .route("/user/{id}/forget", get(forget_user))
        .route("/dashboard", get(move || dashboard(env.clone())))
        .route(
            "/cache/{key}",
            get(get_cache).post(set_cache).put(set_cache),
        )
        .route(
            "/cache/{key}/delete",
            get(delete_cache).delete(delete_cache),
        )
        .route("/stats", get(stats))
        .with_state(cache)
}
