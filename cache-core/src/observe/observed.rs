//! The latency histograms of one cache's I/O backend (`cache_backend_seconds`), and the span
//! of each backend operation (`cache.backend`): what the [`Gateway`](crate::gateway) times
//! every operation with when the `metrics` feature is on.

use std::future::Future;
use std::sync::OnceLock;
use std::time::Instant;

use metrics::{Histogram, Key, KeyName, Label, Metadata, Unit};
use tracing::{Instrument, Span};

use super::handles::recorder_id;
use super::timer::{Records, Timer};
use super::{BackendOp, OPS};
use crate::Result;
use crate::backend::GetFuture;

static METADATA: Metadata<'static> =
    Metadata::new("cache_core", metrics::Level::INFO, Some(module_path!()));

/// The latency histograms of one cache, registered on first use.
pub(crate) struct Timing {
    cache: Box<str>,
    histograms: OnceLock<Histograms>,
}

/// The latency histograms of one cache: per operation, for successes and failures.
struct Histograms {
    recorder: usize,
    ok: [Histogram; OPS.len()],
    error: [Histogram; OPS.len()],
}

impl Histograms {
    fn register(recorder: usize, cache: &str) -> Self {
        metrics::with_recorder(|r| {
            r.describe_histogram(
                KeyName::from_const_str("cache_backend_seconds"),
                Some(Unit::Seconds),
                metrics::SharedString::const_str("Time of each backend operation that does I/O."),
            );
            let histogram = |op: &'static str, outcome: &'static str| {
                let labels = vec![
                    Label::new("cache", cache.to_owned()),
                    Label::from_static_parts("op", op),
                    Label::from_static_parts("outcome", outcome),
                ];
                r.register_histogram(&Key::from_parts("cache_backend_seconds", labels), &METADATA)
            };
            Self {
                recorder,
                ok: OPS.map(|op| histogram(op, "ok")),
                error: OPS.map(|op| histogram(op, "error")),
            }
        })
    }
}

impl Timing {
    pub(crate) fn new(cache: &str) -> Self {
        Self {
            cache: cache.into(),
            histograms: OnceLock::new(),
        }
    }

    /// Records one operation's time.
    fn record(&self, op: BackendOp, started: Instant, ok: bool) {
        let seconds = started.elapsed().as_secs_f64();
        let recorder = recorder_id();
        let registered = self
            .histograms
            .get_or_init(|| Histograms::register(recorder, &self.cache));
        let pick = |histograms: &Histograms| {
            let set = if ok {
                &histograms.ok
            } else {
                &histograms.error
            };
            set[op as usize].record(seconds);
        };
        if registered.recorder == recorder {
            pick(registered);
        } else {
            pick(&Histograms::register(recorder, &self.cache));
        }
    }

    /// Runs `run`, a blocking operation, timed and in its span.
    pub(crate) fn blocking<T>(&self, op: BackendOp, run: impl FnOnce() -> Result<T>) -> Result<T> {
        let _span = span(op).entered();
        let started = Instant::now();
        let result = run();
        self.record(op, started, result.is_ok());
        result
    }

    /// Awaits `run`, an async operation, timed and in its span.
    pub(crate) async fn run<T>(
        &self,
        op: BackendOp,
        run: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let started = Instant::now();
        let result = run.instrument(span(op)).await;
        self.record(op, started, result.is_ok());
        result
    }

    /// `read`, timed and in its span by the timer its [`GetFuture`] carries (so the read
    /// stays in place).
    pub(crate) fn read<'s>(&'s self, read: GetFuture<'s>) -> GetFuture<'s> {
        read.timed(Timer::start(self, span(BackendOp::Get)))
    }
}

impl Records for Timing {
    fn read_ended(&self, started: Instant, ok: bool) {
        self.record(BackendOp::Get, started, ok);
    }
}

/// The span of one backend operation.
fn span(op: BackendOp) -> Span {
    tracing::debug_span!(target: "cache_core", "cache.backend", op = OPS[op as usize])
}
