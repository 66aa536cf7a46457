//! The `tracing` span of each cached call (`cache.get`), and its outcome.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether call spans record the key (off: keys can hold personal data).
static RECORD_KEYS: AtomicBool = AtomicBool::new(false);

/// Turns on (or off) a `cache.key` field, the full key, in each `cache.get` span (needs
/// the `metrics` feature; off by default, because keys can hold personal data).
///
/// ```
/// cache_core::observe::record_keys(true); // while debugging, never in production logs
/// # cache_core::observe::record_keys(false);
/// ```
pub fn record_keys(on: bool) {
    RECORD_KEYS.store(on, Ordering::Relaxed);
}

#[cfg(feature = "metrics")]
pub(crate) use on::*;

#[cfg(feature = "metrics")]
mod on {
    use super::*;
    use crate::observe::Event;
    use tracing::field::Empty;
    use tracing::{Instrument, Level, Span};

    /// The name of a cached call's span.
    const CALL: &str = "cache.get";

    /// The span of one cached call.
    pub(crate) struct CallSpan(Span);

    /// Opens the span of a cached call of `function` (`key` recorded when turned on).
    #[inline]
    pub(crate) fn call(function: &'static str, key: Option<&str>) -> CallSpan {
        let span = tracing::debug_span!(
            target: "cache_core",
            "cache.get",
            function,
            outcome = Empty,
            cache.hit = Empty,
            cache.key = Empty
        );
        if let Some(key) = key
            && !span.is_disabled()
            && RECORD_KEYS.load(Ordering::Relaxed)
        {
            span.record("cache.key", key);
        }
        CallSpan(span)
    }

    impl CallSpan {
        /// Runs a sync call in the span.
        #[inline]
        pub(crate) fn in_scope<R>(self, run: impl FnOnce() -> R) -> R {
            self.0.in_scope(run)
        }

        /// An async call, run in the span.
        #[inline]
        pub(crate) fn instrument<F: Future>(self, call: F) -> impl Future<Output = F::Output> {
            call.instrument(self.0)
        }
    }

    /// Writes what `event` says about the call into the current `cache.get` span.
    #[inline]
    pub(crate) fn note(event: Event) {
        let (outcome, hit) = match event {
            Event::Hit => ("hit", true),
            Event::Miss => ("miss", false),
            Event::StaleHit => ("stale", true),
            Event::EarlyRefresh => ("early_refresh", false),
            Event::FailOpen => ("fail_open", false),
            Event::Bypass => ("bypass", false),
            _ => return,
        };
        if !tracing::enabled!(target: "cache_core", Level::DEBUG) {
            return;
        }
        let span = Span::current();
        if span.metadata().is_some_and(|meta| meta.name() == CALL) {
            span.record("outcome", outcome);
            span.record("cache.hit", hit);
        }
    }
}

/// The span of one cached call (nothing without the feature).
#[cfg(not(feature = "metrics"))]
pub(crate) struct CallSpan;

/// Opens the span of a cached call (nothing without the feature).
#[cfg(not(feature = "metrics"))]
#[inline]
pub(crate) fn call(_function: &'static str, _key: Option<&str>) -> CallSpan {
    CallSpan
}

#[cfg(not(feature = "metrics"))]
impl CallSpan {
    /// Runs a sync call.
    #[inline]
    pub(crate) fn in_scope<R>(self, run: impl FnOnce() -> R) -> R {
        run()
    }

    /// An async call, as it is.
    #[inline]
    pub(crate) fn instrument<F: Future>(self, call: F) -> F {
        call
    }
}
