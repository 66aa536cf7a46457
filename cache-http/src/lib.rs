//! HTTP response caching for [tower] and [axum]: Flask-Caching's `@cache.cached()` on a
//! view, done the way HTTP means it, in the same [`Cache`](cache_core::Cache) (memory or
//! Redis) as the `#[cached]` and `#[memoize]` functions, with their single flight, leases,
//! statistics and fail-open rules.
//!
//! # Quick start
//!
//! ```
//! use std::time::Duration;
//! use axum::{Router, routing::get};
//! use cache_http::{ResponseCacheExt, ResponseCacheLayer};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> cache_core::Result<()> {
//! let cache = cache_core::Cache::memory(); // or cache_redis::from_env()?
//! let layer = ResponseCacheLayer::builder(cache.clone())
//!     .timeout(Duration::from_secs(60)) // Flask's timeout=60
//!     .query_string(true)               // Flask's query_string=True
//!     .hit_header(true)                 // x-cache: hit|miss
//!     .build()?;
//! let app: Router = Router::new()
//!     .route("/expensive", get(|| async { "Heavy computation result" }))
//!     .layer(layer);
//! // Later: forget every stored response of a path.
//! cache.delete_response("/expensive").await?;
//! # let _ = app; Ok(()) }
//! ```
//!
//! # What is stored
//!
//! - Responses to `GET`, keyed by the path, the query string with its parameters sorted
//!   by name (with [`query_string`](ResponseCacheBuilder::query_string)), and the request
//!   headers the response names in `Vary` (see the key scheme below). `HEAD` is answered
//!   from the stored `GET` response (no body, the same headers); a `HEAD` that finds
//!   nothing goes to the service and is not stored. Other methods pass through.
//! - Only `200` responses by default ([`store_if`](ResponseCacheBuilder::store_if) changes
//!   that), and never one with `Cache-Control: no-store`, `private` or `no-cache`, one that
//!   sets a cookie, `Vary: *`, or `max-age=0`. A shorter `s-maxage` or `max-age` than the
//!   layer's [`timeout`](ResponseCacheBuilder::timeout) wins. (`Expires` is not read.)
//! - Bodies up to [`max_body`](ResponseCacheBuilder::max_body) (1 MiB): a longer one, or
//!   one with trailers, is sent through as it comes, uncached; a streaming body is buffered
//!   only up to the limit, then what was read is sent and the rest streams. A response
//!   the layer may store is read to its end before it is sent, so send endless streams
//!   (server-sent events) with `Cache-Control: no-store` or `no-cache` (axum's `Sse`
//!   says `no-cache`).
//!
//! # Requests
//!
//! - `Authorization`: passed through, neither read from nor stored (RFC 9111 section 3.5
//!   lets a shared cache store such a response only when it says `public`; the layer
//!   never does, so one user's answer never reaches another).
//! - `Cache-Control: no-store` from the client: answered from the cache if a response is
//!   stored, otherwise passed through and not stored (section 5.2.1.5).
//! - `Cache-Control: no-cache` or `max-age=0` from the client: ignored, as reverse
//!   proxies do by default (honouring them lets any client defeat the cache).
//! - `If-None-Match` matching the stored `ETag` (weak comparison, or `*`): `304 Not
//!   Modified`, no body. Every stored response has an `ETag` (the service's own, or a
//!   strong one from the body's 128-bit XXH3 hash).
//! - Every answer from the cache says its `Age`, and with
//!   [`hit_header`](ResponseCacheBuilder::hit_header) `x-cache: hit` or `x-cache: miss`.
//!
//! # Single flight, and what waiters get
//!
//! Requests that miss the same entry at once run the service once: the layer's compute
//! step is the direct API's
//! [`get_or_set_with_options`](cache_core::Cache::get_or_set_with_options), with its
//! in-process single flight and, with [`lease`](ResponseCacheBuilder::lease), its
//! cross-process lease. A response that must not be stored is never handed to another
//! request: the computing request stores a short "pass" mark instead (Varnish's
//! hit-for-pass, [`pass_timeout`](ResponseCacheBuilder::pass_timeout), 10 s), and the
//! waiters, and every request for that resource until the mark ends, go to the service
//! side by side, each with its own answer. When the service fails (its `Err`), nothing is
//! stored and the waiters take over one at a time.
//!
//! # Fail-open
//!
//! A backend error, time-out or undecodable entry is a miss: the service's own response is
//! sent, the failure is logged and counted in [`Cache::stats`](cache_core::Cache::stats),
//! and a request pays at most one time-out (the cache's rules for cached calls).
//!
//! # Keys and invalidation
//!
//! Responses are direct keys of the cache's namespace starting with `http:GET` (escaped by
//! the cache: `cache:http%3AGET/expensive%3Fa%3D1` for `GET /expensive?a=1`), so
//! `cache.clear()` removes them with the rest and a key you `set` yourself only meets them
//! if it starts with `http:GET` too. [`ResponseCacheExt`] removes them by path and by
//! prefix. The full scheme, `Vary` included:
//!
//! | request | key after the namespace (before escaping) |
//! |---|---|
//! | `GET /expensive` | `http:GET/expensive?` |
//! | `GET /items?b=2&a=1`, `query_string(true)` | `http:GET/items?a=1&b=2` |
//! | the same without `query_string` | `http:GET/items?` |
//! | a variant of a response with `Vary: Accept-Language` (not the first one stored) | `http:GET/items?a=1&b=2#` and the 128-bit XXH3 of the request's `Accept-Language` in hex |
//!
//! Paths and queries longer than 2 KiB are passed through uncached.
//!
//! # Features
//!
//! None: the crate depends on `http`, `http-body`, `tower-layer` and `tower-service` (not
//! on `tower` or `axum`), `bytes`, `serde`, `tokio` (to spawn a background write) and
//! `cache-core`.
//!
//! # Minimum supported Rust version
//!
//! Rust 1.88 (edition 2024).
//!
//! [tower]: https://docs.rs/tower
//! [axum]: https://docs.rs/axum

mod body;
mod conditional;
mod entry;
mod invalidate;
mod key;
mod layer;
mod rules;
mod service;
mod settings;

pub use body::ResponseBody;
pub use invalidate::ResponseCacheExt;
pub use layer::{
    DEFAULT_MAX_BODY, DEFAULT_PASS_TIMEOUT, MAX_BODY_LIMIT, ResponseCacheBuilder,
    ResponseCacheLayer,
};
pub use service::{ResponseCache, ResponseFuture};
