//! What a cached call sends after its read meets an outage: nothing more. A backend whose
//! reads fail (time-out, connection error, or an error answer) records every call, so the
//! tests assert the exact sequence, sync and async, with and without a lease.

use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use cache_core::backend::{Backend, BlockingBackend, Ttl};
use cache_core::{Cache, Error, ErrorKind, Result, memoize};

/// Fails every read with `kind`; records every call as `"op key"`.
#[derive(Debug, Clone)]
struct FailingReads {
    kind: ErrorKind,
    log: Arc<Mutex<Vec<String>>>,
}

impl FailingReads {
    fn record(&self, op: &str, key: &str) {
        self.log.lock().unwrap().push(format!("{op} {key}"));
    }
}

impl BlockingBackend for FailingReads {
    fn get(&self, key: &str) -> Result<Option<Bytes>> {
        self.record("get", key);
        Err(Error::new(self.kind, "the read failed"))
    }
    fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        keys.iter()
            .map(|key| BlockingBackend::get(self, key))
            .collect()
    }
    fn set(&self, key: &str, _value: Bytes, _ttl: Ttl) -> Result<()> {
        self.record("set", key);
        Ok(())
    }
    fn set_many(&self, entries: &[(&str, Bytes)], ttl: Ttl) -> Result<()> {
        for (key, value) in entries {
            BlockingBackend::set(self, key, value.clone(), ttl)?;
        }
        Ok(())
    }
    fn add(&self, key: &str, _value: Bytes, _ttl: Ttl) -> Result<bool> {
        self.record("add", key);
        Ok(true)
    }
    fn delete(&self, key: &str) -> Result<bool> {
        self.record("delete", key);
        Ok(true)
    }
    fn delete_many(&self, keys: &[&str]) -> Result<u64> {
        keys.iter()
            .map(|key| BlockingBackend::delete(self, key).map(u64::from))
            .sum()
    }
    fn exists(&self, key: &str) -> Result<bool> {
        self.record("exists", key);
        Ok(false)
    }
    fn delete_prefix(&self, prefix: &str) -> Result<u64> {
        self.record("delete_prefix", prefix);
        Ok(0)
    }
    fn delete_if_equal(&self, key: &str, _expected: &[u8]) -> Result<bool> {
        self.record("delete_if_equal", key);
        Ok(true)
    }
}

#[async_trait]
impl Backend for FailingReads {
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        BlockingBackend::get(self, key)
    }
    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        BlockingBackend::get_many(self, keys)
    }
    async fn set(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<()> {
        BlockingBackend::set(self, key, value, ttl)
    }
    async fn set_many(&self, entries: &[(&str, Bytes)], ttl: Ttl) -> Result<()> {
        BlockingBackend::set_many(self, entries, ttl)
    }
    async fn add(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<bool> {
        BlockingBackend::add(self, key, value, ttl)
    }
    async fn delete(&self, key: &str) -> Result<bool> {
        BlockingBackend::delete(self, key)
    }
    async fn delete_many(&self, keys: &[&str]) -> Result<u64> {
        BlockingBackend::delete_many(self, keys)
    }
    async fn exists(&self, key: &str) -> Result<bool> {
        BlockingBackend::exists(self, key)
    }
    async fn delete_prefix(&self, prefix: &str) -> Result<u64> {
        BlockingBackend::delete_prefix(self, prefix)
    }
    async fn delete_if_equal(&self, key: &str, expected: &[u8]) -> Result<bool> {
        BlockingBackend::delete_if_equal(self, key, expected)
    }
}

/// A cache whose reads fail with `kind`, and its call log.
struct Failing {
    cache: Cache,
    log: Arc<Mutex<Vec<String>>>,
}

impl Failing {
    fn new(kind: ErrorKind) -> Self {
        let log = Arc::default();
        let backend = FailingReads {
            kind,
            log: Arc::clone(&log),
        };
        let cache = Cache::builder()
            .backend(backend)
            .namespace("t:")
            .build()
            .unwrap();
        Self { cache, log }
    }

    /// The operations logged since the last call, without their keys.
    fn ops(&self) -> Vec<String> {
        std::mem::take(&mut *self.log.lock().unwrap())
            .into_iter()
            .map(|call| call.split(' ').next().unwrap_or_default().to_owned())
            .collect()
    }
}

impl std::ops::Deref for Failing {
    type Target = Cache;
    fn deref(&self) -> &Cache {
        &self.cache
    }
}

static TIMED_OUT: LazyLock<Failing> = LazyLock::new(|| Failing::new(ErrorKind::Timeout));
static UNREACHABLE: LazyLock<Failing> = LazyLock::new(|| Failing::new(ErrorKind::Connection));
static ANSWERED: LazyLock<Failing> = LazyLock::new(|| Failing::new(ErrorKind::Backend));

#[memoize(cache = TIMED_OUT, lease = 5)]
fn leased_sync(n: u32) -> u32 {
    n + 1
}

#[memoize(cache = UNREACHABLE, lease = 5)]
async fn leased_async(n: u32) -> u32 {
    n + 1
}

#[memoize(cache = ANSWERED)]
fn answered(n: u32) -> u32 {
    n + 1
}

#[test]
fn a_sync_call_whose_read_timed_out_sends_nothing_more() {
    assert_eq!(leased_sync(1), 2);
    assert_eq!(TIMED_OUT.ops(), ["get"], "no lease, no store, no release");
    let stats = leased_sync::stats();
    // The failed read (an error and a miss) and the skipped store (an error).
    assert_eq!((stats.misses, stats.errors, stats.stores), (1, 2, 0));
}

#[tokio::test]
async fn an_async_call_whose_read_found_redis_unreachable_sends_nothing_more() {
    assert_eq!(leased_async(1).await, 2);
    assert_eq!(UNREACHABLE.ops(), ["get"], "no lease, no store, no release");
    let direct = UNREACHABLE
        .get_or_set_with("direct", Duration::from_secs(60), || async { 3u32 })
        .await;
    assert_eq!(direct, 3);
    assert_eq!(UNREACHABLE.ops(), ["get"]);
}

#[test]
fn an_error_answer_is_not_an_outage_and_the_result_is_still_stored() {
    assert_eq!(answered(1), 2);
    assert_eq!(ANSWERED.ops(), ["get", "set"]);
}
