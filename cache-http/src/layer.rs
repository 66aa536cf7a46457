//! The layer and its builder.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use cache_core::stampede::Stampede;
use cache_core::{Cache, Error, Result};
use http::StatusCode;
use http::response::Parts;
use tower_layer::Layer;

use crate::service::ResponseCache;
use crate::settings::Settings;

/// The default largest body stored: 1 MiB.
pub const DEFAULT_MAX_BODY: usize = 1 << 20;
/// The largest `max_body` allowed: 64 MiB, the most a stored value may decode to.
pub const MAX_BODY_LIMIT: usize = 64 << 20;
/// The default time a resource whose response was not storable skips coalescing: 10 s.
pub const DEFAULT_PASS_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest timeout: 100 years, as for the cache's own timeouts.
const MAX_TIMEOUT: Duration = Duration::from_secs(3_153_600_000);

/// A [`tower`](https://docs.rs/tower) layer that caches whole responses of `GET` (and
/// answers `HEAD` from them) in a [`Cache`]; see the [crate docs](crate) for the rules.
///
/// ```
/// use std::time::Duration;
/// use axum::{Router, routing::get};
/// use cache_http::ResponseCacheLayer;
///
/// let cache = cache_core::Cache::memory();
/// let layer = ResponseCacheLayer::builder(cache)
///     .timeout(Duration::from_secs(60))
///     .query_string(true)
///     .hit_header(true)
///     .build()?;
/// let app: Router = Router::new().route("/expensive", get(|| async { "result" }).layer(layer));
/// # Ok::<(), cache_core::Error>(())
/// ```
#[derive(Clone)]
pub struct ResponseCacheLayer {
    settings: Arc<Settings>,
}

impl fmt::Debug for ResponseCacheLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.settings
            .fmt_fields(f.debug_struct("ResponseCacheLayer"))
    }
}

impl ResponseCacheLayer {
    /// A builder for a layer over `cache`, from the defaults: 300 s, query strings not part
    /// of the key, no `x-cache` header, bodies up to 1 MiB, `200` responses only, a 10 s
    /// pass mark, no lease.
    pub fn builder(cache: Cache) -> ResponseCacheBuilder {
        ResponseCacheBuilder {
            settings: Settings {
                cache,
                timeout: cache_core::DEFAULT_TIMEOUT,
                query_string: false,
                hit_header: false,
                max_body: DEFAULT_MAX_BODY,
                pass_timeout: DEFAULT_PASS_TIMEOUT,
                filter: Arc::new(|head: &Parts| head.status == StatusCode::OK),
                stampede: Stampede::default(),
            },
        }
    }
}

impl<S> Layer<S> for ResponseCacheLayer {
    type Service = ResponseCache<S>;

    fn layer(&self, inner: S) -> ResponseCache<S> {
        ResponseCache::new(inner, self.settings.clone())
    }
}

/// Builds a [`ResponseCacheLayer`]; see [`ResponseCacheLayer::builder`].
#[must_use]
pub struct ResponseCacheBuilder {
    settings: Settings,
}

impl fmt::Debug for ResponseCacheBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.settings
            .fmt_fields(f.debug_struct("ResponseCacheBuilder"))
    }
}

impl ResponseCacheBuilder {
    /// How long a response is stored (Flask's `timeout`), unless its `Cache-Control`
    /// (`s-maxage`, else `max-age`) says less. Zero: until the response's own lifetime, or
    /// for ever. Default: 300 s (the layer's own default, not `CACHE_DEFAULT_TIMEOUT`).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.settings.timeout = timeout;
        self
    }

    /// Whether the query string is part of the key, its parameters sorted by name (Flask's
    /// `query_string=True`). Default: false, so `/p?a=1` and `/p` share one entry.
    pub fn query_string(mut self, on: bool) -> Self {
        self.settings.query_string = on;
        self
    }

    /// Whether responses say `x-cache: hit` or `x-cache: miss` (Flask's
    /// `response_hit_indication`). Default: false.
    pub fn hit_header(mut self, on: bool) -> Self {
        self.settings.hit_header = on;
        self
    }

    /// The largest body stored, in bytes: a longer one is passed through uncached, and a
    /// streaming body is buffered only up to this size. 1 to 64 MiB; default 1 MiB.
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.settings.max_body = bytes;
        self
    }

    /// Which responses to store, besides HTTP's rules (Flask's `response_filter`). Default:
    /// status `200` only.
    ///
    /// ```
    /// use http::StatusCode;
    ///
    /// let layer = cache_http::ResponseCacheLayer::builder(cache_core::Cache::memory())
    ///     .store_if(|head| head.status == StatusCode::OK || head.status == StatusCode::NOT_FOUND)
    ///     .build()?;
    /// # Ok::<(), cache_core::Error>(())
    /// ```
    pub fn store_if(mut self, filter: impl Fn(&Parts) -> bool + Send + Sync + 'static) -> Self {
        self.settings.filter = Arc::new(filter);
        self
    }

    /// How long a resource whose response was not storable (private, a cookie, not `200`,
    /// too large) skips coalescing: its requests go to the service side by side instead of
    /// waiting for one another. 1 ms to the timeout; default 10 s.
    pub fn pass_timeout(mut self, timeout: Duration) -> Self {
        self.settings.pass_timeout = timeout;
        self
    }

    /// Take a lease before computing a response, so that one process of every instance
    /// sharing a Redis runs the service for a cold resource (see
    /// [`cache_core::stampede`]); the other processes poll for the stored response.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.settings.stampede = self.settings.stampede.lease(lease);
        self
    }

    /// The layer, or an [`ErrorKind::Config`](cache_core::ErrorKind::Config) error naming
    /// the setting and its allowed values.
    pub fn build(self) -> Result<ResponseCacheLayer> {
        let settings = self.settings;
        if settings.timeout > MAX_TIMEOUT {
            return Err(Error::config(
                "timeout",
                "must be 0 (no timeout of its own) to 3153600000 seconds (100 years)",
            ));
        }
        if !(1..=MAX_BODY_LIMIT).contains(&settings.max_body) {
            return Err(Error::config(
                "max_body",
                format_args!("must be 1 to {MAX_BODY_LIMIT} bytes (64 MiB)"),
            ));
        }
        if settings.pass_timeout < Duration::from_millis(1) || settings.pass_timeout > MAX_TIMEOUT {
            return Err(Error::config(
                "pass_timeout",
                "must be 1 ms to 3153600000 seconds (100 years)",
            ));
        }
        Ok(ResponseCacheLayer {
            settings: Arc::new(settings),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builder() -> ResponseCacheBuilder {
        ResponseCacheLayer::builder(Cache::memory())
    }

    #[test]
    fn bad_settings_are_named_with_their_allowed_values() {
        let error = builder().max_body(0).build().unwrap_err();
        assert!(error.is_config());
        assert!(error.to_string().contains("max_body"), "{error}");
        assert!(error.to_string().contains("1 to 67108864"), "{error}");
        let error = builder().pass_timeout(Duration::ZERO).build().unwrap_err();
        assert!(error.to_string().contains("pass_timeout"), "{error}");
        let error = builder().timeout(MAX_TIMEOUT * 2).build().unwrap_err();
        assert!(error.to_string().contains("timeout"), "{error}");
        assert!(builder().max_body(MAX_BODY_LIMIT).build().is_ok());
    }

    #[test]
    fn a_shorter_own_lifetime_wins() {
        let layer = builder().timeout(Duration::from_secs(60)).build().unwrap();
        let s = &layer.settings;
        assert_eq!(
            s.lifetime(Some(Duration::from_secs(5))),
            Some(Duration::from_secs(5))
        );
        assert_eq!(s.lifetime(Some(Duration::from_secs(90))), None);
        assert_eq!(s.lifetime(None), None);
        let forever = builder().timeout(Duration::ZERO).build().unwrap();
        let own = Some(Duration::from_secs(90));
        assert_eq!(forever.settings.lifetime(own), own);
        assert_eq!(s.pass_time(), DEFAULT_PASS_TIMEOUT);
        assert_eq!(forever.settings.pass_time(), DEFAULT_PASS_TIMEOUT);
        let short = builder().timeout(Duration::from_secs(2)).build().unwrap();
        assert_eq!(short.settings.pass_time(), Duration::from_secs(2));
    }
}
