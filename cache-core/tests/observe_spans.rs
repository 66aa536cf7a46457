//! The `tracing` spans of one cached miss: a `cache.get` span with the function, the
//! outcome and `cache.hit`, and one child `cache.backend` span per backend operation, with
//! no key anywhere.
#![cfg(feature = "metrics")]

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use cache_core::backend::memory::MemoryBackend;
use cache_core::backend::{Backend, BlockingBackend, Capabilities, Ttl};
use cache_core::{Cache, memoize};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::{Layer, registry::LookupSpan};

/// One span as the subscriber saw it: its name, its parent's name and its fields.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    name: &'static str,
    parent: Option<&'static str>,
    fields: BTreeMap<String, String>,
}

/// Records every span, in the order they were opened.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<(Id, Seen)>>>);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let parent = ctx
            .span(id)
            .and_then(|span| span.parent())
            .map(|p| p.name());
        let mut fields = BTreeMap::new();
        attrs.record(&mut Fields(&mut fields));
        let name = attrs.metadata().name();
        self.0.lock().unwrap().push((
            id.clone(),
            Seen {
                name,
                parent,
                fields,
            },
        ));
    }
    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        let mut spans = self.0.lock().unwrap();
        if let Some((_, seen)) = spans.iter_mut().find(|(seen_id, _)| seen_id == id) {
            values.record(&mut Fields(&mut seen.fields));
        }
    }
}

impl Capture {
    fn spans(&self) -> Vec<Seen> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(_, seen)| seen.clone())
            .collect()
    }
}

/// The in-memory backend presented as one that does I/O, so its operations are timed and
/// traced like Redis's.
#[derive(Debug, Default)]
struct Remote(MemoryBackend);

#[async_trait]
impl Backend for Remote {
    fn capabilities(&self) -> Capabilities {
        Capabilities::REMOTE
    }
    async fn get(&self, key: &str) -> cache_core::Result<Option<Bytes>> {
        BlockingBackend::get(&self.0, key)
    }
    async fn get_many(&self, keys: &[&str]) -> cache_core::Result<Vec<Option<Bytes>>> {
        BlockingBackend::get_many(&self.0, keys)
    }
    async fn set(&self, key: &str, value: Bytes, ttl: Ttl) -> cache_core::Result<()> {
        BlockingBackend::set(&self.0, key, value, ttl)
    }
    async fn set_many(&self, entries: &[(&str, Bytes)], ttl: Ttl) -> cache_core::Result<()> {
        BlockingBackend::set_many(&self.0, entries, ttl)
    }
    async fn add(&self, key: &str, value: Bytes, ttl: Ttl) -> cache_core::Result<bool> {
        BlockingBackend::add(&self.0, key, value, ttl)
    }
    async fn delete(&self, key: &str) -> cache_core::Result<bool> {
        BlockingBackend::delete(&self.0, key)
    }
    async fn delete_many(&self, keys: &[&str]) -> cache_core::Result<u64> {
        BlockingBackend::delete_many(&self.0, keys)
    }
    async fn exists(&self, key: &str) -> cache_core::Result<bool> {
        BlockingBackend::exists(&self.0, key)
    }
    async fn delete_prefix(&self, prefix: &str) -> cache_core::Result<u64> {
        BlockingBackend::delete_prefix(&self.0, prefix)
    }
}

impl BlockingBackend for Remote {
    fn get(&self, key: &str) -> cache_core::Result<Option<Bytes>> {
        BlockingBackend::get(&self.0, key)
    }
    fn get_many(&self, keys: &[&str]) -> cache_core::Result<Vec<Option<Bytes>>> {
        BlockingBackend::get_many(&self.0, keys)
    }
    fn set(&self, key: &str, value: Bytes, ttl: Ttl) -> cache_core::Result<()> {
        BlockingBackend::set(&self.0, key, value, ttl)
    }
    fn set_many(&self, entries: &[(&str, Bytes)], ttl: Ttl) -> cache_core::Result<()> {
        BlockingBackend::set_many(&self.0, entries, ttl)
    }
    fn add(&self, key: &str, value: Bytes, ttl: Ttl) -> cache_core::Result<bool> {
        BlockingBackend::add(&self.0, key, value, ttl)
    }
    fn delete(&self, key: &str) -> cache_core::Result<bool> {
        BlockingBackend::delete(&self.0, key)
    }
    fn delete_many(&self, keys: &[&str]) -> cache_core::Result<u64> {
        BlockingBackend::delete_many(&self.0, keys)
    }
    fn exists(&self, key: &str) -> cache_core::Result<bool> {
        BlockingBackend::exists(&self.0, key)
    }
    fn delete_prefix(&self, prefix: &str) -> cache_core::Result<u64> {
        BlockingBackend::delete_prefix(&self.0, prefix)
    }
}

static REMOTE: LazyLock<Cache> =
    LazyLock::new(|| Cache::builder().backend(Remote::default()).build().unwrap());

#[memoize(cache = REMOTE)]
fn user_name(id: u64) -> String {
    format!("user {id}")
}

#[memoize(cache = REMOTE)]
async fn user_email(id: u64) -> String {
    format!("user{id}@example.com")
}

fn span(name: &'static str, parent: Option<&'static str>, fields: &[(&str, &str)]) -> Seen {
    let fields = fields
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Seen {
        name,
        parent,
        fields,
    }
}

/// A miss: the call's span, then a read and a write inside it.
fn miss_tree(function: &str) -> Vec<Seen> {
    let call = [
        ("function", function),
        ("outcome", "miss"),
        ("cache.hit", "false"),
    ];
    vec![
        span("cache.get", None, &call),
        span("cache.backend", Some("cache.get"), &[("op", "get")]),
        span("cache.backend", Some("cache.get"), &[("op", "set")]),
    ]
}

fn assert_no_key(spans: &[Seen]) {
    for seen in spans {
        for value in seen.fields.values() {
            assert!(!value.contains("memoize:"), "a key in {seen:?}");
        }
    }
}

/// Held by each test: [`cache_core::observe::record_keys`] is process-wide.
static KEYS_SWITCH: Mutex<()> = Mutex::new(());

#[test]
fn a_sync_miss_opens_a_call_span_with_one_child_per_backend_operation() {
    let _switch = KEYS_SWITCH.lock().unwrap();
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    let name = tracing::subscriber::with_default(subscriber, || user_name(7));
    assert_eq!(name, "user 7");
    let spans = capture.spans();
    assert_eq!(spans, miss_tree("observe_spans::user_name"));
    assert_no_key(&spans);
}

#[test]
fn an_async_miss_opens_a_call_span_with_one_child_per_backend_operation() {
    let _switch = KEYS_SWITCH.lock().unwrap();
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let email = tracing::subscriber::with_default(subscriber, || {
        runtime.block_on(async { user_email(7).await })
    });
    assert_eq!(email, "user7@example.com");
    let spans = capture.spans();
    assert_eq!(spans, miss_tree("observe_spans::user_email"));
    assert_no_key(&spans);
}

#[memoize(cache = REMOTE)]
fn user_phone(id: u64) -> String {
    format!("+1 555 {id:04}")
}

#[test]
fn the_key_is_in_the_call_span_only_once_turned_on() {
    let _switch = KEYS_SWITCH.lock().unwrap();
    cache_core::observe::record_keys(true);
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    tracing::subscriber::with_default(subscriber, || user_phone(1));
    cache_core::observe::record_keys(false);
    let key = format!("{}{}", REMOTE.namespace(), user_phone::key(1).unwrap());
    let call = &capture.spans()[0];
    assert_eq!(call.name, "cache.get");
    assert_eq!(call.fields.get("cache.key"), Some(&key));
}
