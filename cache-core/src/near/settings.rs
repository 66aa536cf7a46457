//! The near cache's settings, checked once at [`CacheBuilder::build`](crate::CacheBuilder::build).

use std::time::Duration;

use crate::limits::MAX_TIMEOUT;
use crate::{Error, Result};

/// How many entries a near cache keeps by default.
pub(crate) const DEFAULT_MAX_ENTRIES: u64 = 10_000;
/// The default staleness bound: 1 s.
pub(crate) const DEFAULT_STALENESS_BOUND: Duration = Duration::from_secs(1);
/// The shortest staleness bound: 100 ms (the backplane's heartbeats and margin are fractions of it).
pub(crate) const MIN_STALENESS_BOUND: Duration = crate::backplane::MIN_BOUND;
/// The longest staleness bound: 1 hour.
pub(crate) const MAX_STALENESS_BOUND: Duration = Duration::from_secs(3_600);
/// The most entries a near cache may keep.
pub(crate) const MAX_ENTRIES: u64 = 1 << 32;

/// A near cache in front of the backend: the typed results of annotated functions kept in
/// this process, served without a key string, without decoding and without a round trip.
/// Give it to [`CacheBuilder::near_cache`](crate::CacheBuilder::near_cache), or set
/// `CACHE_LOCAL_TIMEOUT` (see [`Config`](crate::config::Config)).
///
/// Every annotated function of the cache uses it for its local timeout (how long a value
/// may be served from process memory), unless it gives its own with `local = ..`
/// (`local = 0` opts it out). A near hit returns a clone of the value: return an `Arc<T>`
/// from functions whose values are expensive to clone. Only functions whose return type is
/// `Clone + Send + Sync + 'static` use it.
///
/// Writes through this cache (`set`, `delete`, `clear`, a function's store or
/// `invalidate`, ...) update this instance's near cache at once and are announced to the
/// other instances, which forget the entry; an instance that may have missed an
/// announcement stops serving from its near cache within the staleness bound.
///
/// ```
/// use std::time::Duration;
/// use cache_core::{Cache, NearCache};
///
/// let cache = Cache::builder()
///     .near_cache(NearCache::new(Duration::from_secs(30)).max_entries(50_000))
///     .build()?;
/// # drop(cache);
/// let err = Cache::builder()
///     .near_cache(NearCache::new(Duration::ZERO))
///     .build()
///     .unwrap_err();
/// assert!(err.to_string().contains("near_cache.local_timeout"));
/// # Ok::<(), cache_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct NearCache {
    local_timeout: Duration,
    max_entries: Option<u64>,
    max_bytes: Option<u64>,
    staleness_bound: Duration,
    fail_safe: bool,
}

impl NearCache {
    /// A near cache whose entries are served for at most `local_timeout` (1 ms to
    /// [`MAX_TIMEOUT`](crate::config::MAX_TIMEOUT), 100 years), bounded to 10,000 entries.
    pub fn new(local_timeout: Duration) -> Self {
        Self {
            local_timeout,
            max_entries: None,
            max_bytes: None,
            staleness_bound: DEFAULT_STALENESS_BOUND,
            fail_safe: false,
        }
    }

    /// Keeps at most `n` entries (1 to 2^32; default 10,000). Give this or
    /// [`max_bytes`](Self::max_bytes), not both.
    pub fn max_entries(mut self, n: u64) -> Self {
        self.max_entries = Some(n);
        self
    }

    /// Keeps at most about `n` bytes, each entry weighed by its value's encoded size plus
    /// 96 bytes of its own (at least 1,024). Give this or
    /// [`max_entries`](Self::max_entries), not both.
    pub fn max_bytes(mut self, n: u64) -> Self {
        self.max_bytes = Some(n);
        self
    }

    /// No instance serves a value from its near cache more than this long after a change
    /// was acknowledged to its writer (100 ms to 1 hour; default 1 s).
    pub fn staleness_bound(mut self, bound: Duration) -> Self {
        self.staleness_bound = bound;
        self
    }

    /// While out of contact with the backend, keep serving near entries for their whole
    /// local timeout instead of stopping after the staleness bound (default off): the
    /// application stays fast during an outage, at the price of serving values that other
    /// instances may have changed meanwhile.
    pub fn fail_safe(mut self, fail_safe: bool) -> Self {
        self.fail_safe = fail_safe;
        self
    }

    /// The settings checked: an error naming the setting and its allowed range.
    pub(crate) fn check(&self) -> Result<Checked> {
        if self.local_timeout < Duration::from_millis(1) || self.local_timeout > MAX_TIMEOUT {
            return Err(Error::config(
                "near_cache.local_timeout (CACHE_LOCAL_TIMEOUT)",
                format!(
                    "must be 1 ms to {} s, got {:?} (leave the near cache out to turn it off)",
                    MAX_TIMEOUT.as_secs(),
                    self.local_timeout
                ),
            ));
        }
        let bound = match (self.max_entries, self.max_bytes) {
            (Some(_), Some(_)) => {
                return Err(Error::config(
                    "near_cache.max_entries",
                    "give max_entries or max_bytes, not both",
                ));
            }
            (Some(n), None) if !(1..=MAX_ENTRIES).contains(&n) => {
                return Err(Error::config(
                    "near_cache.max_entries",
                    format!("must be 1 to {MAX_ENTRIES}, got {n}"),
                ));
            }
            (None, Some(n)) if n < 1_024 => {
                return Err(Error::config(
                    "near_cache.max_bytes",
                    format!("must be at least 1024, got {n}"),
                ));
            }
            (Some(n), None) => Bound::Entries(n as usize),
            (None, Some(n)) => Bound::Bytes(n),
            (None, None) => Bound::Entries(DEFAULT_MAX_ENTRIES as usize),
        };
        if !(MIN_STALENESS_BOUND..=MAX_STALENESS_BOUND).contains(&self.staleness_bound) {
            return Err(Error::config(
                "near_cache.staleness_bound",
                format!(
                    "must be {} ms to 1 hour, got {:?}",
                    MIN_STALENESS_BOUND.as_millis(),
                    self.staleness_bound
                ),
            ));
        }
        Ok(Checked {
            local_timeout: self.local_timeout,
            bound,
            staleness_bound: self.staleness_bound,
            fail_safe: self.fail_safe,
        })
    }
}

/// What bounds a near cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bound {
    /// At most this many entries.
    Entries(usize),
    /// At most about this many bytes.
    Bytes(u64),
}

/// [`NearCache`] checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Checked {
    pub(crate) local_timeout: Duration,
    pub(crate) bound: Bound,
    pub(crate) staleness_bound: Duration,
    pub(crate) fail_safe: bool,
}
