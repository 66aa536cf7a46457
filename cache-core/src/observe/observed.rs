//! A store decorator that times each backend operation (`cache_backend_seconds`) and runs it
//! in a `cache.backend` span: what a [`Cache`](crate::Cache) puts around a backend that does
//! I/O when the `metrics` feature is on, so the call path needs no timing code of its own.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use metrics::{Histogram, Key, KeyName, Label, Metadata, Unit};
use tracing::{Instrument, Span};

use super::OPS;
use super::handles::recorder_id;
use super::timer::{Records, Timer};
use crate::Result;
use crate::backend::{Backend, BlockingBackend, Capabilities, GetFuture, Store, Ttl};

static METADATA: Metadata<'static> =
    Metadata::new("cache_core", metrics::Level::INFO, Some(module_path!()));

/// A backend operation, as an index into [`OPS`].
#[derive(Debug, Clone, Copy)]
enum Op {
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
}

/// `inner`, timed and traced.
pub(crate) struct Observed {
    inner: Arc<dyn Store>,
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

impl Observed {
    pub(crate) fn new(inner: Arc<dyn Store>, cache: &str) -> Self {
        Self {
            inner,
            cache: cache.into(),
            histograms: OnceLock::new(),
        }
    }

    /// Records one operation's time.
    fn record(&self, op: Op, started: Instant, ok: bool) {
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

    fn timed<T>(&self, op: Op, run: impl FnOnce(&dyn BlockingBackend) -> Result<T>) -> Result<T> {
        let _span = span(op).entered();
        let started = Instant::now();
        let result = run(self.inner.blocking());
        self.record(op, started, result.is_ok());
        result
    }

    async fn timed_async<T>(&self, op: Op, run: impl Future<Output = Result<T>>) -> Result<T> {
        let started = Instant::now();
        let result = run.instrument(span(op)).await;
        self.record(op, started, result.is_ok());
        result
    }
}

/// The span of one backend operation.
fn span(op: Op) -> Span {
    tracing::debug_span!(target: "cache_core", "cache.backend", op = OPS[op as usize])
}

impl fmt::Debug for Observed {
    /// The backend's own `Debug`: the decorator is an implementation detail.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.inner, f)
    }
}

impl Records for Observed {
    fn read_ended(&self, started: Instant, ok: bool) {
        self.record(Op::Get, started, ok);
    }
}

#[async_trait]
impl Backend for Observed {
    fn capabilities(&self) -> Capabilities {
        Backend::capabilities(&*self.inner)
    }
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        self.timed_async(Op::Get, Backend::get(&*self.inner, key))
            .await
    }
    fn get_inline<'a>(&'a self, key: &'a str) -> GetFuture<'a> {
        Backend::get_inline(&*self.inner, key).timed(Timer::start(self, span(Op::Get)))
    }
    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        self.timed_async(Op::GetMany, Backend::get_many(&*self.inner, keys))
            .await
    }
    async fn set(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<()> {
        self.timed_async(Op::Set, Backend::set(&*self.inner, key, value, ttl))
            .await
    }
    async fn set_many(&self, entries: &[(&str, Bytes)], ttl: Ttl) -> Result<()> {
        let run = Backend::set_many(&*self.inner, entries, ttl);
        self.timed_async(Op::SetMany, run).await
    }
    async fn add(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<bool> {
        self.timed_async(Op::Add, Backend::add(&*self.inner, key, value, ttl))
            .await
    }
    async fn delete(&self, key: &str) -> Result<bool> {
        self.timed_async(Op::Delete, Backend::delete(&*self.inner, key))
            .await
    }
    async fn delete_many(&self, keys: &[&str]) -> Result<u64> {
        let run = Backend::delete_many(&*self.inner, keys);
        self.timed_async(Op::DeleteMany, run).await
    }
    async fn exists(&self, key: &str) -> Result<bool> {
        self.timed_async(Op::Exists, Backend::exists(&*self.inner, key))
            .await
    }
    async fn delete_prefix(&self, prefix: &str) -> Result<u64> {
        let run = Backend::delete_prefix(&*self.inner, prefix);
        self.timed_async(Op::DeletePrefix, run).await
    }
    async fn delete_if_equal(&self, key: &str, expected: &[u8]) -> Result<bool> {
        let run = Backend::delete_if_equal(&*self.inner, key, expected);
        self.timed_async(Op::DeleteIfEqual, run).await
    }
}

impl BlockingBackend for Observed {
    fn get(&self, key: &str) -> Result<Option<Bytes>> {
        self.timed(Op::Get, |store| store.get(key))
    }
    fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        self.timed(Op::GetMany, |store| store.get_many(keys))
    }
    fn set(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<()> {
        self.timed(Op::Set, |store| store.set(key, value, ttl))
    }
    fn set_many(&self, entries: &[(&str, Bytes)], ttl: Ttl) -> Result<()> {
        self.timed(Op::SetMany, |store| store.set_many(entries, ttl))
    }
    fn add(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<bool> {
        self.timed(Op::Add, |store| store.add(key, value, ttl))
    }
    fn delete(&self, key: &str) -> Result<bool> {
        self.timed(Op::Delete, |store| store.delete(key))
    }
    fn delete_many(&self, keys: &[&str]) -> Result<u64> {
        self.timed(Op::DeleteMany, |store| store.delete_many(keys))
    }
    fn exists(&self, key: &str) -> Result<bool> {
        self.timed(Op::Exists, |store| store.exists(key))
    }
    fn delete_prefix(&self, prefix: &str) -> Result<u64> {
        self.timed(Op::DeletePrefix, |store| store.delete_prefix(prefix))
    }
    fn delete_if_equal(&self, key: &str, expected: &[u8]) -> Result<bool> {
        self.timed(Op::DeleteIfEqual, |store| {
            store.delete_if_equal(key, expected)
        })
    }
}
