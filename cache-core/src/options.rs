//! The per-call switches of a cached call.

use std::time::Duration;

use crate::stampede::Stampede;

/// Per-call switches, written by the expansion or given to
/// [`Cache::get_or_set_with_options`](crate::Cache::get_or_set_with_options) and its kin.
///
/// `#[non_exhaustive]`: build one with [`CallOptions::builder`](Options::builder), or start
/// from [`CallOptions::timeout`](Options::timeout) or `CallOptions::default()` and set
/// fields, so adding a switch never breaks your code.
///
/// ```
/// use std::time::Duration;
/// use cache_core::{CallOptions, stampede::Stampede};
///
/// let options = CallOptions::builder()
///     .timeout(Duration::from_secs(60))
///     .stampede(Stampede::default().lease(Duration::from_secs(5)))
///     .cache_none(true)
///     .build();
/// assert_eq!(options.timeout, Some(Duration::from_secs(60)));
/// ```
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct Options {
    /// The entry's timeout; `None` for the cache's default. Zero: never expires.
    pub timeout: Option<Duration>,
    /// Skip the cache entirely for this call: the function runs, nothing is read or
    /// stored, and a bypass is counted.
    pub unless: bool,
    /// Run the function and store its result without reading the cache.
    pub forced_update: bool,
    /// Store `None` results of `Option` functions.
    pub cache_none: bool,
    /// Leases, early refresh, serve-stale and jitter.
    pub stampede: Stampede,
    /// The `local = ..` of an annotated function: how long its result may be served from
    /// this process's near cache ([`NearCache`](crate::NearCache)); `None` for the near
    /// cache's own local timeout, zero to keep it out. Not public API: the direct API keeps
    /// nothing in the near cache (its values need no `Clone`), so no call of it reads this.
    #[doc(hidden)]
    pub local: Option<Duration>,
}

impl Options {
    /// Options with only a timeout set.
    pub fn timeout(timeout: Duration) -> Self {
        Self {
            timeout: Some(timeout),
            ..Self::default()
        }
    }

    /// A builder, from the defaults (the cache's timeout, every switch off).
    pub fn builder() -> OptionsBuilder {
        OptionsBuilder(Self::default())
    }
}

/// Builds [`CallOptions`](Options); see [`CallOptions::builder`](Options::builder).
#[derive(Debug, Clone, Copy)]
#[must_use]
pub struct OptionsBuilder(Options);

impl OptionsBuilder {
    /// See [`CallOptions::timeout`](Options::timeout) (the field).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.0.timeout = Some(timeout);
        self
    }

    /// See [`CallOptions::unless`](Options::unless).
    pub fn unless(mut self, unless: bool) -> Self {
        self.0.unless = unless;
        self
    }

    /// See [`CallOptions::forced_update`](Options::forced_update).
    pub fn forced_update(mut self, forced_update: bool) -> Self {
        self.0.forced_update = forced_update;
        self
    }

    /// See [`CallOptions::cache_none`](Options::cache_none).
    pub fn cache_none(mut self, cache_none: bool) -> Self {
        self.0.cache_none = cache_none;
        self
    }

    /// See [`CallOptions::stampede`](Options::stampede).
    pub fn stampede(mut self, stampede: Stampede) -> Self {
        self.0.stampede = stampede;
        self
    }

    /// The options.
    pub fn build(self) -> Options {
        self.0
    }
}
