//! The direct API's cached calls: [`Cache::get_or_set_with`] and its kin, async and on
//! [`BlockingCache`], running the same call path as `#[cached]` and `#[memoize]`.
//!
//! Storing rules, as the attributes': `try_get_or_set_with` stores `Ok` only,
//! `optionally_get_or_set_with` `Some` only, and `get_or_set_with` reads them from the value
//! itself (an `Err` never stored, a `None` only with [`CallOptions::cache_none`]).

use std::future::Future;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::cache::{BlockingCache, Cache};
use crate::codec::DefaultCodec;
use crate::drive::{Inline, run_async, run_blocking};
use crate::engine::{Plan, Planner};
use crate::observe;
use crate::options::Options as CallOptions;
use crate::policy::{Inspect, OkOnly, Policy, SomeOnly};

/// The `function` field of a direct cached call's span.
const DIRECT: &str = "(direct)";

impl Cache {
    /// The value under `key`, or else the result of `compute`, stored for `timeout` (zero:
    /// never expires). Concurrent callers that miss the same key in this process wait for
    /// one computation.
    ///
    /// The attributes' storing rules apply to whatever `compute` returns: an `Err` is
    /// returned and never stored (the next call computes again), a `None` is not stored
    /// (unless [`CallOptions::cache_none`] is set), any other value is. For closures that
    /// return a `Result` whose error type is not serializable, use
    /// [`Cache::try_get_or_set_with`]; for `Option`, [`Cache::optionally_get_or_set_with`].
    /// When the computing caller's result is not stored, the callers waiting on it take over
    /// one at a time (never all at once).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> cache_core::Result<()> {
    /// let cache = cache_core::Cache::memory();
    /// let html = cache
    ///     .get_or_set_with("dashboard_data", Duration::from_secs(120), || async {
    ///         "<ul><li>expensive</li></ul>".to_owned()
    ///     })
    ///     .await;
    /// assert_eq!(html, "<ul><li>expensive</li></ul>");
    ///
    /// let failed: Result<u32, String> = cache
    ///     .get_or_set_with("answer", Duration::from_secs(60), || async { Err("db down".into()) })
    ///     .await;
    /// assert!(failed.is_err());
    /// assert!(!cache.has("answer").await?); // an `Err` is never stored
    /// # Ok(()) }
    /// ```
    pub async fn get_or_set_with<T, F, Fut>(&self, key: &str, timeout: Duration, compute: F) -> T
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        self.get_or_set_with_options(key, CallOptions::timeout(timeout), compute)
            .await
    }

    /// [`Cache::get_or_set_with`] with every switch of [`CallOptions`]: timeout, `unless`
    /// (run `compute` without the cache), `forced_update` (recompute and store),
    /// `cache_none` (store `None` too), and stampede protection across processes (leases,
    /// early refresh, serve-stale, jitter).
    ///
    /// ```
    /// use std::time::Duration;
    /// use cache_core::{CallOptions, stampede::Stampede};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let cache = cache_core::Cache::memory();
    /// let options = CallOptions::builder()
    ///     .timeout(Duration::from_secs(60))
    ///     .stampede(Stampede::default().lease(Duration::from_secs(5)).serve_stale(Duration::from_secs(30)))
    ///     .build();
    /// let report = cache.get_or_set_with_options("report", options, || async { 42u64 }).await;
    /// assert_eq!(report, 42);
    ///
    /// let none = CallOptions::builder().cache_none(true).build();
    /// let user: Option<u64> = cache.get_or_set_with_options("user_7", none, || async { None }).await;
    /// assert_eq!(user, None);
    /// assert!(cache.has("user_7").await.unwrap()); // stored, because of `cache_none`
    /// # }
    /// ```
    pub async fn get_or_set_with_options<T, F, Fut>(
        &self,
        key: &str,
        options: CallOptions,
        compute: F,
    ) -> T
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        self.call_direct(key, options, Inspect, compute()).await
    }

    /// The `Ok` value under `key`, or else the result of `compute`, whose `Ok` is stored for
    /// `timeout` and whose `Err` is returned and never stored, as `#[memoize]` does for a
    /// `Result` function. `E` needs no trait at all. While one caller computes, the others
    /// in this process wait for it; if it fails they take over one at a time (the attributes
    /// share the error instead when `E: Clone`, see the README's "No thundering herd").
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> cache_core::Result<()> {
    /// let cache = cache_core::Cache::memory();
    /// let failed = cache
    ///     .try_get_or_set_with("user_1", Duration::from_secs(60), || async {
    ///         Err::<String, _>(std::io::Error::other("db down"))
    ///     })
    ///     .await;
    /// assert!(failed.is_err());
    /// let name = cache
    ///     .try_get_or_set_with("user_1", Duration::from_secs(60), || async {
    ///         Ok::<_, std::io::Error>("Ada".to_owned())
    ///     })
    ///     .await;
    /// assert_eq!(name.unwrap(), "Ada");
    /// assert_eq!(cache.get::<String>("user_1").await?.as_deref(), Some("Ada"));
    /// # Ok(()) }
    /// ```
    pub async fn try_get_or_set_with<T, E, F, Fut>(
        &self,
        key: &str,
        timeout: Duration,
        compute: F,
    ) -> std::result::Result<T, E>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = std::result::Result<T, E>>,
    {
        let options = CallOptions::timeout(timeout);
        self.call_direct(key, options, OkOnly, compute()).await
    }

    /// The value under `key`, or else the result of `compute`, stored for `timeout` when it
    /// is `Some`, as `#[memoize]` does for an `Option` function. To store `None` too, give
    /// [`CallOptions::cache_none`] to [`Cache::get_or_set_with_options`].
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> cache_core::Result<()> {
    /// let cache = cache_core::Cache::memory();
    /// let missing = cache
    ///     .optionally_get_or_set_with("user_2", Duration::from_secs(60), || async { None::<u64> })
    ///     .await;
    /// assert_eq!(missing, None);
    /// assert!(!cache.has("user_2").await?); // `None` is not stored
    /// # Ok(()) }
    /// ```
    pub async fn optionally_get_or_set_with<T, F, Fut>(
        &self,
        key: &str,
        timeout: Duration,
        compute: F,
    ) -> Option<T>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        let options = CallOptions::timeout(timeout);
        self.call_direct(key, options, SomeOnly, compute()).await
    }

    async fn call_direct<R, P: Policy<R>, F: Future<Output = R>>(
        &self,
        key: &str,
        options: CallOptions,
        policy: P,
        body: F,
    ) -> R {
        let plan = Direct { cache: self, key };
        let call = run_async::<R, P, DefaultCodec, _>(plan, options, policy, body, Inline);
        observe::call_span(DIRECT, None).instrument(call).await
    }
}

impl BlockingCache<'_> {
    /// See [`Cache::get_or_set_with`]: the same storing rules.
    ///
    /// Called inside a tokio runtime while an async caller computes the same key, it does not
    /// wait for that caller (blocking the thread could stop it, on a current-thread runtime
    /// for good): it computes the value itself.
    pub fn get_or_set_with<T, F>(&self, key: &str, timeout: Duration, compute: F) -> T
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> T,
    {
        self.get_or_set_with_options(key, CallOptions::timeout(timeout), compute)
    }

    /// See [`Cache::get_or_set_with_options`].
    pub fn get_or_set_with_options<T, F>(&self, key: &str, options: CallOptions, compute: F) -> T
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> T,
    {
        self.call_direct(key, options, Inspect, compute)
    }

    /// See [`Cache::try_get_or_set_with`]: `Ok` stored, `Err` returned and never stored.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let cache = cache_core::Cache::memory();
    /// let blocking = cache.blocking();
    /// let failed = blocking.try_get_or_set_with("k", Duration::from_secs(60), || Err::<u8, _>("down"));
    /// assert_eq!(failed, Err("down"));
    /// let ok = blocking.try_get_or_set_with("k", Duration::from_secs(60), || Ok::<u8, &str>(7));
    /// assert_eq!(ok, Ok(7));
    /// assert_eq!(blocking.get::<u8>("k")?, Some(7));
    /// # Ok::<(), cache_core::Error>(())
    /// ```
    pub fn try_get_or_set_with<T, E, F>(
        &self,
        key: &str,
        timeout: Duration,
        compute: F,
    ) -> std::result::Result<T, E>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> std::result::Result<T, E>,
    {
        self.call_direct(key, CallOptions::timeout(timeout), OkOnly, compute)
    }

    /// See [`Cache::optionally_get_or_set_with`]: `Some` stored, `None` not.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let cache = cache_core::Cache::memory();
    /// let none = cache.blocking().optionally_get_or_set_with("k", Duration::from_secs(60), || None::<u8>);
    /// assert_eq!(none, None);
    /// assert!(!cache.blocking().has("k")?);
    /// # Ok::<(), cache_core::Error>(())
    /// ```
    pub fn optionally_get_or_set_with<T, F>(
        &self,
        key: &str,
        timeout: Duration,
        compute: F,
    ) -> Option<T>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Option<T>,
    {
        self.call_direct(key, CallOptions::timeout(timeout), SomeOnly, compute)
    }

    fn call_direct<R, P: Policy<R>>(
        &self,
        key: &str,
        options: CallOptions,
        policy: P,
        compute: impl FnOnce() -> R,
    ) -> R {
        observe::call_span(DIRECT, None).in_scope(|| {
            match Plan::direct(self.cache, key, &options) {
                Some(plan) => run_blocking::<R, P, DefaultCodec, _>(plan, policy, compute),
                None => compute(),
            }
        })
    }
}

/// The plan of a direct call.
struct Direct<'a> {
    cache: &'a Cache,
    key: &'a str,
}

impl Planner for Direct<'_> {
    fn plan<'o>(self, options: &'o CallOptions) -> Option<Plan<'o>>
    where
        Self: 'o,
    {
        Plan::direct(self.cache, self.key, options)
    }
}
