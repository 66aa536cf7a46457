//! The settings every service of one layer shares, and what they imply.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use cache_core::Cache;
use cache_core::stampede::Stampede;
use http::response::Parts;

/// Which responses the user wants stored (HTTP's own rules apply on top).
pub(crate) type Filter = Arc<dyn Fn(&Parts) -> bool + Send + Sync>;

/// The settings every service of one layer shares.
pub(crate) struct Settings {
    pub(crate) cache: Cache,
    pub(crate) timeout: Duration,
    pub(crate) query_string: bool,
    pub(crate) hit_header: bool,
    pub(crate) max_body: usize,
    pub(crate) pass_timeout: Duration,
    pub(crate) filter: Filter,
    pub(crate) stampede: Stampede,
}

impl Settings {
    /// How long a pass mark lasts: the pass timeout, or the timeout when that is shorter.
    pub(crate) fn pass_time(&self) -> Duration {
        self.lifetime(Some(self.pass_timeout))
            .unwrap_or(self.timeout)
    }

    /// The entry's lifetime: the response's own when shorter than the timeout.
    pub(crate) fn lifetime(&self, own: Option<Duration>) -> Option<Duration> {
        let timeout = (!self.timeout.is_zero()).then_some(self.timeout);
        match (own, timeout) {
            (Some(own), Some(timeout)) if own < timeout => Some(own),
            (Some(own), None) => Some(own),
            _ => None,
        }
    }
}

impl Settings {
    /// Writes the settings (the filter aside) into `f`.
    pub(crate) fn fmt_fields(&self, mut f: fmt::DebugStruct<'_, '_>) -> fmt::Result {
        f.field("cache", &self.cache)
            .field("timeout", &self.timeout)
            .field("query_string", &self.query_string)
            .field("hit_header", &self.hit_header)
            .field("max_body", &self.max_body)
            .field("pass_timeout", &self.pass_timeout)
            .field("stampede", &self.stampede)
            .finish_non_exhaustive()
    }
}
