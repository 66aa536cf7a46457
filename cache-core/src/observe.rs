//! What a cache reports to the ecosystem's facades: counters and histograms through the
//! [`metrics`](https://docs.rs/metrics) crate, and spans through `tracing`.
//!
//! Everything here needs the `metrics` feature. Without it the functions the rest of the
//! crate calls are empty `#[inline]` ones, so nothing is compiled in and nothing changes.
//! With it and no recorder installed, an event costs a recorder look-up and a call on a
//! no-op handle; with a recorder, one increment on a handle registered once per function
//! (install the recorder before the first cached call: a function first called under
//! another recorder, or used with a second cache, registers its handles on every call in
//! the other one, which counts correctly but costs a look-up in the recorder).
//!
//! # Metrics
//!
//! | name | kind | labels | what |
//! |---|---|---|---|
//! | `cache_hits_total` | counter | `cache`, `function` | reads that found a usable value (stale hits included) |
//! | `cache_misses_total` | counter | `cache`, `function` | reads that found nothing usable |
//! | `cache_stale_hits_total` | counter | `cache`, `function` | hits served stale while one caller refreshes (`serve_stale`) |
//! | `cache_early_refreshes_total` | counter | `cache`, `function` | hits recomputed early (`early_refresh`) |
//! | `cache_stores_total` | counter | `cache`, `function` | values written |
//! | `cache_errors_total` | counter | `cache`, `function` | backend failures and undecodable values |
//! | `cache_fail_opens_total` | counter | `cache`, `function` | calls whose read failed, so the function ran without the cache |
//! | `cache_bypasses_total` | counter | `cache`, `function` | calls that skipped the cache (`unless`, no cache installed, no key) |
//! | `cache_lease_waits_total` | counter | `cache`, `function` | calls that waited on another caller's lease |
//! | `cache_lease_takeovers_total` | counter | `cache`, `function` | waiters that computed themselves: the holder's lease expired, or they waited too long |
//! | `cache_deletes_total` | counter | `cache`, `function` | entries removed |
//! | `cache_compute_seconds` | histogram | `cache`, `function` | time the function's body took on a miss |
//! | `cache_value_bytes` | histogram | `cache`, `function` | size of each value stored, envelope included |
//! | `cache_backend_seconds` | histogram | `cache`, `op`, `outcome` | time of each backend operation that does I/O (Redis) |
//!
//! The labels come from a fixed set, never from a key or a value: `cache` is the cache's
//! namespace without its trailing `:` (`cache` by default; `(none)` for a call made with no
//! cache installed), `function` the annotated function's path (`app::square`) or `(direct)`
//! for the [`Cache`](crate::Cache) methods, `op` one of [`OPS`], `outcome` `ok` or `error`.
//! The counters agree with [`Cache::stats`](crate::Cache::stats) (the sum over `function`)
//! and with a function's `stats()` (the sum over `cache`). In-process backends are not
//! timed: their operations take well under a microsecond and a hit stays cheap.
//!
//! ```
//! # #[cfg(feature = "metrics")] {
//! use cache_core::{Cache, memoize};
//! use metrics_util::debugging::{DebugValue, DebuggingRecorder};
//!
//! #[memoize]
//! fn double(n: u64) -> u64 {
//!     n * 2
//! }
//!
//! cache_core::install(Cache::memory()).unwrap();
//! // Any recorder: Prometheus's in a service, a debugging one here.
//! let recorder = DebuggingRecorder::new();
//! let snapshotter = recorder.snapshotter();
//! metrics::with_local_recorder(&recorder, || (double(1), double(1)));
//! let hits = snapshotter.snapshot().into_vec().into_iter().find_map(|(key, _, _, value)| {
//!     let name = key.key().name();
//!     (name == "cache_hits_total").then_some(value)
//! });
//! assert_eq!(hits, Some(DebugValue::Counter(1)));
//! assert_eq!(double::stats().hits, 1);
//! # }
//! ```
//!
//! # Spans
//!
//! Each cached call runs in a `DEBUG` span named `cache.get` (silent under the usual
//! `INFO` filter) with the fields `function`, `outcome` (`hit`, `miss`, `stale`,
//! `early_refresh`, `fail_open` or `bypass`) and `cache.hit`; each backend operation that
//! does I/O runs in a child `DEBUG` span `cache.backend` with the field `op`. No key or
//! value is ever written into a span, unless [`record_keys`] turns keys on.

#[cfg(feature = "metrics")]
mod handles;
#[cfg(feature = "metrics")]
mod observed;
mod span;
pub(crate) mod timer;

use std::time::Duration;

pub use span::record_keys;

/// The values of the `op` label of `cache_backend_seconds`, one per backend operation.
pub const OPS: [&str; 12] = [
    "get",
    "get_many",
    "set",
    "set_many",
    "add",
    "delete",
    "delete_many",
    "exists",
    "delete_prefix",
    "delete_if_equal",
    "acquire_lease",
    "set_releasing",
];

/// Something a cache counts; the order of [`Event::ALL`] is the order of the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    Hit,
    Miss,
    StaleHit,
    EarlyRefresh,
    Store,
    Error,
    FailOpen,
    Bypass,
    LeaseWait,
    TakeOver,
    Delete,
    NearHit,
}

impl Event {
    /// How many kinds of events there are.
    pub(crate) const COUNT: usize = 12;

    /// The metric name of this event's counter.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    const fn metric(self) -> &'static str {
        match self {
            Self::Hit => "cache_hits_total",
            Self::Miss => "cache_misses_total",
            Self::StaleHit => "cache_stale_hits_total",
            Self::EarlyRefresh => "cache_early_refreshes_total",
            Self::Store => "cache_stores_total",
            Self::Error => "cache_errors_total",
            Self::FailOpen => "cache_fail_opens_total",
            Self::Bypass => "cache_bypasses_total",
            Self::LeaseWait => "cache_lease_waits_total",
            Self::TakeOver => "cache_lease_takeovers_total",
            Self::Delete => "cache_deletes_total",
            Self::NearHit => "cache_near_hits_total",
        }
    }
}

/// Whose counters a [`Slot`] holds: a cache's (named by its namespace) or a function's.
#[derive(Debug, Default)]
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
enum Label {
    /// A `Stats` made by hand: counted as a cache with an empty name.
    #[default]
    Unnamed,
    Cache(Box<str>),
    Function(&'static str),
}

/// The part of a `Stats` that reports to the `metrics` recorder: whose counters these are,
/// and the handles registered for them (empty without the feature).
#[derive(Debug, Default)]
pub(crate) struct Slot {
    #[cfg(feature = "metrics")]
    label: Label,
    #[cfg(feature = "metrics")]
    handles: std::sync::OnceLock<handles::Calls>,
}

impl Slot {
    /// A slot for counters nobody named.
    pub(crate) const fn unnamed() -> Self {
        Self {
            #[cfg(feature = "metrics")]
            label: Label::Unnamed,
            #[cfg(feature = "metrics")]
            handles: std::sync::OnceLock::new(),
        }
    }

    /// A slot for the counters of the cache with `namespace` (normalised).
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn cache(namespace: &str) -> Self {
        Self {
            #[cfg(feature = "metrics")]
            label: Label::Cache(cache_label(namespace).into()),
            #[cfg(feature = "metrics")]
            handles: std::sync::OnceLock::new(),
        }
    }

    /// A slot for the counters of the function at `path`.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) const fn function(path: &'static str) -> Self {
        Self {
            #[cfg(feature = "metrics")]
            label: Label::Function(path),
            #[cfg(feature = "metrics")]
            handles: std::sync::OnceLock::new(),
        }
    }
}

/// The `cache` label of a namespace: without its trailing `:`.
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
fn cache_label(namespace: &str) -> &str {
    namespace.strip_suffix(':').unwrap_or(namespace)
}

/// Reports `n` events of a cached call to the `metrics` recorder and the call's span:
/// `site` is the function's slot, if any, and `cache` the cache's.
#[inline]
#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
pub(crate) fn call_event(cache: &Slot, site: Option<&Slot>, event: Event) {
    #[cfg(feature = "metrics")]
    {
        handles::with_calls(site.unwrap_or(cache), Some(cache), |calls| {
            calls.counter(event).increment(1);
        });
        span::note(event);
    }
}

/// Reports `n` events counted on one set of counters only: a cache's (by its methods) or a
/// function's (a call with no cache).
#[inline]
#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
pub(crate) fn event(slot: &Slot, event: Event, n: u64) {
    #[cfg(feature = "metrics")]
    {
        let cache = (!matches!(slot.label, Label::Function(_))).then_some(slot);
        handles::with_calls(slot, cache, |calls| calls.counter(event).increment(n));
        if cache.is_none() {
            span::note(event);
        }
    }
}

/// Records how long a cached call's body took.
#[inline]
#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
pub(crate) fn computed(cache: &Slot, site: Option<&Slot>, time: Duration) {
    #[cfg(feature = "metrics")]
    handles::with_calls(site.unwrap_or(cache), Some(cache), |calls| {
        calls.compute.record(time.as_secs_f64());
    });
}

/// Records the size of a value about to be stored.
#[inline]
#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
pub(crate) fn sealed(cache: &Slot, site: Option<&Slot>, bytes: usize) {
    #[cfg(feature = "metrics")]
    handles::with_calls(site.unwrap_or(cache), Some(cache), |calls| {
        calls.size.record(bytes as f64);
    });
}

/// A backend operation, as an index into [`OPS`].
#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
pub(crate) enum BackendOp {
    Get,
    GetMany,
    Set,
    SetMany,
    Add,
    Delete,
    DeleteMany,
    Exists,
    DeletePrefix,
    DeleteIfEqual,
    AcquireLease,
    SetReleasing,
}

/// How a cache times its backend operations: with the feature on and a backend that does
/// I/O, each one is timed into `cache_backend_seconds` and run in a `cache.backend` span;
/// otherwise nothing (the methods hand their operation back untouched).
#[derive(Default)]
pub(crate) struct Latency {
    #[cfg(feature = "metrics")]
    timing: Option<observed::Timing>,
}

impl Latency {
    /// The latency of the cache with `namespace`, on a backend that does I/O unless
    /// `in_process` (whose operations take well under a microsecond: never timed).
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn new(namespace: &str, in_process: bool) -> Self {
        Self {
            #[cfg(feature = "metrics")]
            timing: (!in_process).then(|| observed::Timing::new(cache_label(namespace))),
        }
    }

    /// Runs `run`, a blocking operation.
    #[inline]
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn blocking<T>(
        &self,
        op: BackendOp,
        run: impl FnOnce() -> crate::Result<T>,
    ) -> crate::Result<T> {
        #[cfg(feature = "metrics")]
        if let Some(timing) = &self.timing {
            return timing.blocking(op, run);
        }
        run()
    }

    /// `run`, an async operation, to await.
    #[inline]
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn run<'s, T: 's>(
        &'s self,
        op: BackendOp,
        run: impl std::future::Future<Output = crate::Result<T>> + 's,
    ) -> impl std::future::Future<Output = crate::Result<T>> + 's {
        #[cfg(feature = "metrics")]
        {
            async move {
                match &self.timing {
                    Some(timing) => timing.run(op, run).await,
                    None => run.await,
                }
            }
        }
        #[cfg(not(feature = "metrics"))]
        run
    }

    /// `read`, the in-place read future of a remote backend.
    #[inline]
    pub(crate) fn read<'s>(
        &'s self,
        read: crate::backend::GetFuture<'s>,
    ) -> crate::backend::GetFuture<'s> {
        #[cfg(feature = "metrics")]
        if let Some(timing) = &self.timing {
            return timing.read(read);
        }
        read
    }
}

pub(crate) use span::call as call_span;
