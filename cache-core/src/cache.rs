//! The [`Cache`] handle and its builder.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::backend::memory::MemoryBackend;
use crate::backend::{Backend, BlockingBackend, Capabilities, Store, Ttl};
use crate::backplane::{Change, near_key};
use crate::codec::DefaultCodec;
use crate::envelope::{self, Meta};
use crate::flight::Flights;
use crate::gateway::{
    Add, Delete, DeleteMany, DeletePrefix, Exists, Gateway, GetMany, Op, Set, SetMany,
};
use crate::key;
use crate::near::{NearCache, Tier};
use crate::observe::Latency;

use crate::stats::{Counters, Stats, StatsSnapshot};
use crate::{Error, ErrorKind, Result};

/// The timeout used when none is given: 300 seconds, as in Flask-Caching.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
/// The namespace used when none is given.
pub const DEFAULT_NAMESPACE: &str = "cache:";

/// A handle on one cache: a backend, a namespace, a default timeout and live statistics.
///
/// Cloning is cheap (an `Arc`), and every clone shares the same entries and counters. Every
/// key given to a method is prefixed with the namespace before it reaches the backend, and
/// the same happens to the keys of `#[cached]` and `#[memoize]` functions. A key given to a
/// method is escaped like a string argument ([`escape_str`](crate::key::escape_str): `:`
/// becomes `%3A`, and so on), exactly as `#[cached]`'s `key_prefix` is, so
/// `cache.delete("homepage")` removes the entry of `#[cached(key_prefix = "homepage")]`,
/// while a key such as `"memoize:app.square:4"` can never equal or fall under the key of a
/// `#[memoize]` function. The [`key`](crate::key) module writes the scheme out.
///
/// Methods are async; [`Cache::blocking`] gives the same methods for sync code, with no
/// runtime needed.
///
/// ```
/// use std::time::Duration;
/// use cache_core::Cache;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> cache_core::Result<()> {
/// let cache = Cache::memory();
/// cache.set("user_123", &"Ada").await?;
/// cache.set_with_timeout("session", &42u64, Duration::from_secs(5)).await?;
/// assert_eq!(cache.get::<String>("user_123").await?.as_deref(), Some("Ada"));
/// assert!(cache.delete("user_123").await?);
/// assert_eq!(cache.get::<String>("user_123").await?, None);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Cache {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) capabilities: Capabilities,
    pub(crate) namespace: Box<str>,
    pub(crate) default_ttl: Ttl,
    pub(crate) stats: Stats,
    /// How backend operations are timed (with the `metrics` feature).
    pub(crate) latency: Latency,
    pub(crate) flights: Flights,
    /// The near cache, if one is configured (and the backend allows it).
    pub(crate) near: Option<Tier>,
}

impl fmt::Debug for Cache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("backend", &self.inner.store)
            .field("namespace", &self.inner.namespace)
            .field("default_ttl", &self.inner.default_ttl)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Cache`]; see [`Cache::builder`].
#[must_use]
pub struct CacheBuilder {
    store: Option<Arc<dyn Store>>,
    namespace: String,
    default_timeout: Duration,
    near: Option<NearCache>,
}

impl fmt::Debug for CacheBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheBuilder")
            .field("store", &self.store)
            .field("namespace", &self.namespace)
            .field("default_timeout", &self.default_timeout)
            .field("near", &self.near)
            .finish()
    }
}

impl CacheBuilder {
    /// The backend (default: a [`MemoryBackend`] of 10,000 entries).
    pub fn backend(mut self, backend: impl Backend + BlockingBackend) -> Self {
        self.store = Some(Arc::new(backend));
        self
    }

    /// A backend already behind an `Arc`, to share one backend between several caches.
    pub fn shared_backend(mut self, backend: Arc<dyn Store>) -> Self {
        self.store = Some(backend);
        self
    }

    /// The namespace put before every key (default `"cache:"`; `CACHE_KEY_PREFIX`).
    ///
    /// It is one key segment, normalised by [`key::namespace`](crate::key::namespace): one
    /// trailing `:` is dropped, the rest escaped, and `:` put back, so `"myapp"` and
    /// `"myapp:"` are the same namespace, and `"a"` and `"ab"` never share or cover each
    /// other's keys. An empty namespace means none (then [`Cache::clear`] is refused on a
    /// shared backend). `"memoize"` and `"cached"` are refused by [`CacheBuilder::build`]: with
    /// them, the keys of a cache without a namespace could equal this cache's.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// The timeout of entries stored without one (default 300 s; zero means never expire;
    /// at most [`MAX_TIMEOUT`](crate::config::MAX_TIMEOUT), 100 years, checked by
    /// [`build`](Self::build)).
    pub fn default_timeout(mut self, timeout: Duration) -> Self {
        self.default_timeout = timeout;
        self
    }

    /// A near cache in front of the backend (default none; `CACHE_LOCAL_TIMEOUT`): see
    /// [`NearCache`]. Its settings are checked by [`build`](Self::build). On a backend
    /// shared between processes that offers no change channel, the near cache stays off
    /// (with a warning), since it could not learn of other instances' changes.
    pub fn near_cache(mut self, near: NearCache) -> Self {
        self.near = Some(near);
        self
    }

    /// Builds the cache; an error of kind [`ErrorKind::Config`] for a reserved namespace, a
    /// `default_timeout` over [`MAX_TIMEOUT`](crate::config::MAX_TIMEOUT), or a near cache
    /// setting out of its range.
    ///
    /// ```
    /// let err = cache_core::Cache::builder().namespace("memoize:").build().unwrap_err();
    /// assert!(err.is_config());
    /// ```
    pub fn build(self) -> Result<Cache> {
        crate::limits::check_timeout("default_timeout", self.default_timeout)?;
        let namespace = key::namespace(&self.namespace);
        if RESERVED_NAMESPACES.contains(&namespace.as_str()) {
            return Err(Error::config(
                "namespace (CACHE_KEY_PREFIX)",
                format!(
                    "{:?} is reserved for the keys of annotated functions; use any other \
                     name, such as \"app\"",
                    self.namespace
                ),
            ));
        }
        let near = self.near.as_ref().map(NearCache::check).transpose()?;
        let store = self.store.unwrap_or_else(|| Arc::new(MemoryBackend::new()));
        let capabilities = Backend::capabilities(&*store);
        let near = near.and_then(|near| {
            let bus = Backend::bus(&*store, &namespace);
            Tier::start(&near, bus, &namespace, !capabilities.shared)
        });
        Ok(Cache {
            inner: Arc::new(Inner {
                store,
                capabilities,
                stats: Stats::cache(&namespace),
                latency: Latency::new(&namespace, capabilities.in_process),
                namespace: namespace.into(),
                default_ttl: ttl_of(self.default_timeout),
                flights: Flights::default(),
                near,
            }),
        })
    }
}

/// The normalised namespaces that would read as the start of a function's key.
const RESERVED_NAMESPACES: [&str; 2] = ["memoize:", "cached:"];

/// Converts a timeout to a time-to-live: zero means no expiry, and a per-call timeout over
/// [`MAX_TIMEOUT`](crate::config::MAX_TIMEOUT) (100 years, the longest every backend stores)
/// counts as that, so `timeout = Duration::MAX` never makes every store fail.
pub(crate) fn ttl_of(timeout: Duration) -> Ttl {
    (!timeout.is_zero()).then_some(timeout.min(crate::limits::MAX_TIMEOUT))
}

impl Cache {
    /// Starts a builder.
    ///
    /// ```
    /// use std::time::Duration;
    /// use cache_core::{Cache, backend::memory::MemoryBackend};
    ///
    /// let cache = Cache::builder()
    ///     .backend(MemoryBackend::builder().max_entries(1_000).build()?)
    ///     .namespace("myapp:")
    ///     .default_timeout(Duration::from_secs(60))
    ///     .build()?;
    /// assert_eq!(cache.namespace(), "myapp:");
    /// # Ok::<(), cache_core::Error>(())
    /// ```
    pub fn builder() -> CacheBuilder {
        CacheBuilder {
            store: None,
            namespace: DEFAULT_NAMESPACE.to_owned(),
            default_timeout: DEFAULT_TIMEOUT,
            near: None,
        }
    }

    /// An in-memory cache with the defaults (10,000 entries, 300 s, namespace `"cache:"`).
    pub fn memory() -> Self {
        Self::builder()
            .build()
            .expect("the default cache configuration is valid")
    }

    /// The namespace put before every key, normalised: `"myapp"` and `"myapp:"` both give
    /// `"myapp:"`, `"a:b"` gives `"a%3Ab:"`, and the empty namespace stays empty.
    ///
    /// ```
    /// let cache = cache_core::Cache::builder().namespace("myapp").build()?;
    /// assert_eq!(cache.namespace(), "myapp:");
    /// assert_eq!(cache_core::Cache::memory().namespace(), "cache:");
    /// # Ok::<(), cache_core::Error>(())
    /// ```
    pub fn namespace(&self) -> &str {
        &self.inner.namespace
    }

    /// The counters of this cache, all functions included.
    pub fn stats(&self) -> StatsSnapshot {
        self.inner.stats.snapshot()
    }

    /// The same operations for sync code.
    ///
    /// ```
    /// let cache = cache_core::Cache::memory();
    /// cache.blocking().set("answer", &42u32)?;
    /// assert_eq!(cache.blocking().get::<u32>("answer")?, Some(42));
    /// # Ok::<(), cache_core::Error>(())
    /// ```
    pub fn blocking(&self) -> BlockingCache<'_> {
        BlockingCache { cache: self }
    }

    /// The key as the backend sees it: the namespace, then `key` escaped with
    /// [`escape_str`](crate::key::escape_str).
    ///
    /// ```
    /// let cache = cache_core::Cache::memory();
    /// assert_eq!(cache.full_key("user_123"), "cache:user_123");
    /// assert_eq!(cache.full_key("user:1"), "cache:user%3A1");
    /// ```
    pub fn full_key(&self, key: &str) -> String {
        let mut full = String::with_capacity(self.inner.namespace.len() + key.len() + 2);
        full.push_str(&self.inner.namespace);
        key::escape_str(key, &mut full);
        full
    }

    /// The namespace, then a key built by the key scheme (a function's key), as is.
    pub(crate) fn namespaced(&self, built: &str) -> String {
        let mut full = String::with_capacity(self.inner.namespace.len() + built.len());
        full.push_str(&self.inner.namespace);
        full.push_str(built);
        full
    }

    /// The namespace, then `prefix` escaped with [`escape_prefix`](crate::key::escape_prefix).
    fn full_prefix(&self, prefix: &str) -> String {
        let mut full = self.inner.namespace.to_string();
        key::escape_prefix(prefix, &mut full);
        full
    }

    /// The path of this cache's operations, counted in `counters`.
    pub(crate) fn gateway_for<'a>(&'a self, counters: Counters<'a>) -> Gateway<'a> {
        Gateway::new(
            &*self.inner.store,
            self.inner.capabilities.in_process,
            counters,
            &self.inner.latency,
        )
    }

    /// The path of this cache's own operations (counted in its counters only).
    pub(crate) fn gateway(&self) -> Gateway<'_> {
        self.gateway_for(self.counters())
    }

    pub(crate) fn counters(&self) -> Counters<'_> {
        Counters {
            cache: &self.inner.stats,
            site: None,
        }
    }

    /// Fault injection for the near cache's tests across processes: this instance's next
    /// `n` change messages (heartbeats included) are numbered but never sent, as lost
    /// messages would be. Not public API.
    #[doc(hidden)]
    pub fn __drop_announcements(&self, n: u64) {
        if let Some(tier) = self.near() {
            tier.drop_announcements(n);
        }
    }

    /// The near cache, if any.
    #[inline]
    pub(crate) fn near(&self) -> Option<&Tier> {
        self.inner.near.as_ref()
    }

    /// After a write of the full keys `keys`, whatever its outcome: forgets them in this
    /// instance's near cache, and announces the change to the others when `changed`.
    pub(crate) fn near_wrote<'k>(&self, keys: impl IntoIterator<Item = &'k str>, changed: bool) {
        if let Some(tier) = self.near() {
            let keys: Vec<_> = keys.into_iter().map(near_key).collect();
            tier.forget(&keys);
            if changed {
                tier.announce(Change::Keys(keys));
            }
        }
    }

    /// After a write that no near key names (a prefix deletion): forgets every near entry
    /// here, and announces it to the others when `changed`.
    pub(crate) fn near_wrote_all(&self, changed: bool) {
        if let Some(tier) = self.near() {
            tier.forget_all();
            if changed {
                tier.announce(Change::All);
            }
        }
    }

    fn store_ttl(&self, timeout: Option<Duration>) -> Ttl {
        timeout.map_or(self.inner.default_ttl, ttl_of)
    }

    /// The value under `key`, or `None`. A value of another type, or one that does not
    /// decode, is `None` (and counted as an error).
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        let full = self.full_key(key);
        let bytes = self.gateway().read(&full).await?;
        Ok(self.decode_read(key, bytes))
    }

    /// Stores `value` under `key` for the default timeout.
    pub async fn set<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<()> {
        self.set_inner(key, value, None).await
    }

    /// Stores `value` under `key` for `timeout` (zero: never expires).
    pub async fn set_with_timeout<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        timeout: Duration,
    ) -> Result<()> {
        self.set_inner(key, value, Some(timeout)).await
    }

    async fn set_inner<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        timeout: Option<Duration>,
    ) -> Result<()> {
        let full = self.full_key(key);
        let set = Set {
            key: &full,
            value: seal(value)?,
            ttl: self.store_ttl(timeout),
        };
        let result = self.gateway().perform(set).await;
        self.near_wrote([full.as_str()], result.is_ok());
        result
    }

    /// Stores `value` only if `key` holds nothing (atomic); true if stored.
    pub async fn add<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<bool> {
        let full = self.full_key(key);
        let add = Add {
            key: &full,
            value: seal(value)?,
            ttl: self.inner.default_ttl,
        };
        let result = self.gateway().perform(add).await;
        self.near_wrote([full.as_str()], matches!(result, Ok(true)));
        result
    }

    /// Removes `key`; true if it existed.
    pub async fn delete(&self, key: &str) -> Result<bool> {
        self.delete_built(&self.full_key(key)).await
    }

    /// Removes several keys; returns how many existed.
    pub async fn delete_many(&self, keys: &[&str]) -> Result<u64> {
        let full = self.full_keys(keys);
        let keys = &as_strs(&full);
        let result = self.gateway().perform(DeleteMany { keys }).await;
        self.near_wrote(keys.iter().copied(), result.is_ok());
        result
    }

    /// The values under several keys, in order (one round trip on Redis).
    pub async fn get_many<T: DeserializeOwned>(&self, keys: &[&str]) -> Result<Vec<Option<T>>> {
        let full = self.full_keys(keys);
        let many = GetMany {
            keys: &as_strs(&full),
        };
        let values = self.gateway().perform(many).await?;
        Ok(self.decode_many(keys, values))
    }

    /// Stores several values for the default timeout (one round trip on Redis).
    pub async fn set_many<T: Serialize>(&self, entries: &[(&str, T)]) -> Result<()> {
        let (keys, sealed) = self.seal_many(entries)?;
        let many = SetMany {
            entries: &pair(&keys, sealed),
            ttl: self.inner.default_ttl,
        };
        let result = self.gateway().perform(many).await.map(drop);
        self.near_wrote(keys.iter().map(String::as_str), result.is_ok());
        result
    }

    /// True if `key` holds a value.
    pub async fn has(&self, key: &str) -> Result<bool> {
        let key = &self.full_key(key);
        self.gateway().perform(Exists { key }).await
    }

    /// Removes every entry in this cache's namespace, and nothing else; returns how many.
    ///
    /// On a shared backend (Redis) with an empty namespace this is refused, because it
    /// would mean deleting every key in the database.
    pub async fn clear(&self) -> Result<u64> {
        self.check_clear()?;
        self.delete_built_prefix(&self.inner.namespace).await
    }

    /// Removes every key of this namespace whose escaped form starts with `prefix` escaped
    /// character by character ([`escape_prefix`](crate::key::escape_prefix)); returns how
    /// many.
    ///
    /// That is every key given to [`Cache::set`] and its kin that starts with `prefix`, and
    /// every `#[cached(key_prefix = ..)]` entry whose prefix does. A `prefix` with a `:` (say
    /// `"user:"`) matches keys that hold that `:` (`"user:1"`), never a function's keys. A
    /// prefix without one that begins `memoize` or `cached` (such as `"m"`) also matches the
    /// keys of `#[memoize]` and `#[cached]` functions, which start with `memoize:` and
    /// `cached:`; use their `invalidate_all()` to forget those. `delete_prefix("")` is
    /// [`Cache::clear`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> cache_core::Result<()> {
    /// let cache = cache_core::Cache::memory();
    /// cache.set("user:1", &1u8).await?;
    /// cache.set("user:2", &2u8).await?;
    /// cache.set("users", &3u8).await?;
    /// assert_eq!(cache.delete_prefix("user:").await?, 2);
    /// assert!(cache.has("users").await?);
    /// # Ok(()) }
    /// ```
    pub async fn delete_prefix(&self, prefix: &str) -> Result<u64> {
        let full = self.full_prefix(prefix);
        self.check_prefix(&full)?;
        self.delete_built_prefix(&full).await
    }

    /// Removes the key `full` (namespace included) as it is; true if it existed.
    pub(crate) async fn delete_built(&self, full: &str) -> Result<bool> {
        let result = self.gateway().perform(Delete { key: full }).await;
        self.near_wrote([full], result.is_ok());
        result
    }

    /// Removes every key that starts with `full` (namespace included, never empty).
    pub(crate) async fn delete_built_prefix(&self, full: &str) -> Result<u64> {
        let result = self.gateway().perform(DeletePrefix { prefix: full }).await;
        self.near_wrote_all(result.is_ok());
        result
    }

    fn full_keys(&self, keys: &[&str]) -> Vec<String> {
        keys.iter().map(|key| self.full_key(key)).collect()
    }

    fn check_clear(&self) -> Result<()> {
        if self.inner.namespace.is_empty() && self.inner.capabilities.shared {
            return Err(Error::new(
                ErrorKind::Refused,
                "clear() needs a namespace: with an empty namespace it would delete every key \
                 in the shared database; set one (CACHE_KEY_PREFIX) or flush the database \
                 explicitly through the backend",
            ));
        }
        Ok(())
    }

    fn check_prefix(&self, full_prefix: &str) -> Result<()> {
        if full_prefix.is_empty() {
            self.check_clear()?;
        }
        Ok(())
    }

    fn decode_read<T: DeserializeOwned>(&self, key: &str, bytes: Option<Bytes>) -> Option<T> {
        crate::counted::decode_counted::<DefaultCodec, T>(self.counters(), key, bytes)
    }

    fn decode_many<T: DeserializeOwned>(
        &self,
        keys: &[&str],
        values: Vec<Option<Bytes>>,
    ) -> Vec<Option<T>> {
        keys.iter()
            .zip(values)
            .map(|(key, bytes)| self.decode_read(key, bytes))
            .collect()
    }

    fn seal_many<T: Serialize>(&self, entries: &[(&str, T)]) -> Result<(Vec<String>, Vec<Bytes>)> {
        let keys = entries.iter().map(|(key, _)| self.full_key(key)).collect();
        let sealed = entries
            .iter()
            .map(|(_, value)| seal(value))
            .collect::<Result<_>>()?;
        Ok((keys, sealed))
    }
}

fn seal<T: Serialize + ?Sized>(value: &T) -> Result<Bytes> {
    envelope::seal_untyped::<DefaultCodec, T>(value, Meta::default())
}

fn as_strs(keys: &[String]) -> Vec<&str> {
    keys.iter().map(String::as_str).collect()
}

fn pair(keys: &[String], values: Vec<Bytes>) -> Vec<(&str, Bytes)> {
    keys.iter().map(String::as_str).zip(values).collect()
}

/// The operations of [`Cache`] for sync code; see [`Cache::blocking`].
///
/// Safe to call with no async runtime, from inside a runtime's worker thread, and from
/// `spawn_blocking`: the backend's blocking half never waits on a runtime.
#[derive(Debug, Clone, Copy)]
pub struct BlockingCache<'a> {
    pub(crate) cache: &'a Cache,
}

impl BlockingCache<'_> {
    fn perform<O: Op>(&self, op: O) -> Result<O::Output> {
        self.cache.gateway().perform_blocking(op)
    }

    /// See [`Cache::get`].
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        let bytes = self
            .cache
            .gateway()
            .read_blocking(&self.cache.full_key(key))?;
        Ok(self.cache.decode_read(key, bytes))
    }

    /// See [`Cache::set`].
    pub fn set<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<()> {
        self.set_inner(key, value, None)
    }

    /// See [`Cache::set_with_timeout`].
    pub fn set_with_timeout<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        timeout: Duration,
    ) -> Result<()> {
        self.set_inner(key, value, Some(timeout))
    }

    fn set_inner<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        timeout: Option<Duration>,
    ) -> Result<()> {
        let full = self.cache.full_key(key);
        let result = self.perform(Set {
            key: &full,
            value: seal(value)?,
            ttl: self.cache.store_ttl(timeout),
        });
        self.cache.near_wrote([full.as_str()], result.is_ok());
        result
    }

    /// See [`Cache::add`].
    pub fn add<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<bool> {
        let full = self.cache.full_key(key);
        let result = self.perform(Add {
            key: &full,
            value: seal(value)?,
            ttl: self.cache.inner.default_ttl,
        });
        self.cache
            .near_wrote([full.as_str()], matches!(result, Ok(true)));
        result
    }

    /// See [`Cache::delete`].
    pub fn delete(&self, key: &str) -> Result<bool> {
        self.delete_built(&self.cache.full_key(key))
    }

    /// See [`Cache::delete_many`].
    pub fn delete_many(&self, keys: &[&str]) -> Result<u64> {
        let full = self.cache.full_keys(keys);
        let result = self.perform(DeleteMany {
            keys: &as_strs(&full),
        });
        self.cache
            .near_wrote(full.iter().map(String::as_str), result.is_ok());
        result
    }

    /// See [`Cache::get_many`].
    pub fn get_many<T: DeserializeOwned>(&self, keys: &[&str]) -> Result<Vec<Option<T>>> {
        let full = self.cache.full_keys(keys);
        let values = self.perform(GetMany {
            keys: &as_strs(&full),
        })?;
        Ok(self.cache.decode_many(keys, values))
    }

    /// See [`Cache::set_many`].
    pub fn set_many<T: Serialize>(&self, entries: &[(&str, T)]) -> Result<()> {
        let (keys, sealed) = self.cache.seal_many(entries)?;
        let result = self
            .perform(SetMany {
                entries: &pair(&keys, sealed),
                ttl: self.cache.inner.default_ttl,
            })
            .map(drop);
        self.cache
            .near_wrote(keys.iter().map(String::as_str), result.is_ok());
        result
    }

    /// See [`Cache::has`].
    pub fn has(&self, key: &str) -> Result<bool> {
        self.perform(Exists {
            key: &self.cache.full_key(key),
        })
    }

    /// See [`Cache::clear`].
    pub fn clear(&self) -> Result<u64> {
        self.cache.check_clear()?;
        self.delete_built_prefix(&self.cache.inner.namespace)
    }

    /// See [`Cache::delete_prefix`].
    pub fn delete_prefix(&self, prefix: &str) -> Result<u64> {
        let full = self.cache.full_prefix(prefix);
        self.cache.check_prefix(&full)?;
        self.delete_built_prefix(&full)
    }

    /// See [`Cache::delete_built`].
    pub(crate) fn delete_built(&self, full: &str) -> Result<bool> {
        let result = self.perform(Delete { key: full });
        self.cache.near_wrote([full], result.is_ok());
        result
    }

    /// See [`Cache::delete_built_prefix`].
    pub(crate) fn delete_built_prefix(&self, full: &str) -> Result<u64> {
        let result = self.perform(DeletePrefix { prefix: full });
        self.cache.near_wrote_all(result.is_ok());
        result
    }
}
