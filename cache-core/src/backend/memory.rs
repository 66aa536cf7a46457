//! The in-process backend, and the default when no Redis is configured.

use std::time::{Duration, Instant};

use bytes::Bytes;
use moka::Expiry;
use moka::ops::compute::Op;
use moka::sync::Cache as MokaCache;

use super::{BlockingBackend, Capabilities, Ttl};
use crate::{Error, Result};

/// The default bound when none is configured: 10,000 entries.
pub const DEFAULT_MAX_ENTRIES: u64 = 10_000;

/// Bytes of bookkeeping charged to every entry when the bound is in bytes.
const ENTRY_OVERHEAD: u32 = 64;

#[derive(Clone)]
struct Entry {
    value: Bytes,
    ttl: Ttl,
}

struct EntryTtl;

impl Expiry<String, Entry> for EntryTtl {
    fn expire_after_create(&self, _key: &String, entry: &Entry, _now: Instant) -> Option<Duration> {
        entry.ttl
    }

    fn expire_after_update(
        &self,
        _key: &String,
        entry: &Entry,
        _now: Instant,
        _remaining: Option<Duration>,
    ) -> Option<Duration> {
        entry.ttl
    }
}

/// A bounded in-memory store with a time-to-live per entry, built on
/// [moka](https://docs.rs/moka) (TinyLFU admission, LRU eviction).
///
/// Bound it by entries (the default, [`DEFAULT_MAX_ENTRIES`]) or by bytes; it never grows
/// without limit. It is shared by every clone of the [`Cache`](crate::Cache) that holds it,
/// but not across processes.
///
/// ```
/// use cache_core::backend::memory::MemoryBackend;
///
/// let by_entries = MemoryBackend::builder().max_entries(500).build()?;
/// let by_bytes = MemoryBackend::builder().max_bytes(64 * 1024 * 1024).build()?;
/// # let _ = (by_entries, by_bytes);
/// # Ok::<(), cache_core::Error>(())
/// ```
#[derive(Clone)]
pub struct MemoryBackend {
    entries: MokaCache<String, Entry>,
}

impl std::fmt::Debug for MemoryBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBackend")
            .field("entries", &self.entries.entry_count())
            .finish()
    }
}

/// Builds a [`MemoryBackend`]; see [`MemoryBackend::builder`].
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct MemoryBackendBuilder {
    max_entries: Option<u64>,
    max_bytes: Option<u64>,
}

impl MemoryBackendBuilder {
    /// Keeps at most `n` entries (like Flask-Caching's `CACHE_THRESHOLD`).
    pub fn max_entries(mut self, n: u64) -> Self {
        self.max_entries = Some(n);
        self
    }

    /// Keeps at most about `n` bytes of keys and values (an overhead per entry included).
    pub fn max_bytes(mut self, n: u64) -> Self {
        self.max_bytes = Some(n);
        self
    }

    /// Builds the backend; fails if both bounds or a zero bound were given.
    pub fn build(self) -> Result<MemoryBackend> {
        let builder = MokaCache::builder().expire_after(EntryTtl);
        let entries = match (self.max_entries, self.max_bytes) {
            (Some(_), Some(_)) => {
                return Err(Error::config(
                    "memory bound",
                    "give max_entries or max_bytes, not both",
                ));
            }
            (Some(0), None) => return Err(Error::config("max_entries", "must be at least 1")),
            (None, Some(0)) => return Err(Error::config("max_bytes", "must be at least 1")),
            (None, Some(bytes)) => builder
                .max_capacity(bytes)
                .weigher(|key: &String, entry: &Entry| {
                    let size = key.len().saturating_add(entry.value.len());
                    u32::try_from(size)
                        .unwrap_or(u32::MAX)
                        .saturating_add(ENTRY_OVERHEAD)
                })
                .build(),
            (entries, None) => builder
                .max_capacity(entries.unwrap_or(DEFAULT_MAX_ENTRIES))
                .build(),
        };
        Ok(MemoryBackend { entries })
    }
}

impl MemoryBackend {
    pub(crate) const CAPABILITIES: Capabilities = Capabilities::IN_PROCESS;

    /// A backend bounded to [`DEFAULT_MAX_ENTRIES`] entries.
    pub fn new() -> Self {
        Self::builder()
            .build()
            .expect("the default memory bounds are valid")
    }

    /// Starts a builder.
    pub fn builder() -> MemoryBackendBuilder {
        MemoryBackendBuilder::default()
    }

    /// How many entries are stored (approximate until pending maintenance runs).
    pub fn entry_count(&self) -> u64 {
        self.entries.run_pending_tasks();
        self.entries.entry_count()
    }
}

impl Default for MemoryBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl BlockingBackend for MemoryBackend {
    fn get(&self, key: &str) -> Result<Option<Bytes>> {
        Ok(self.entries.get(key).map(|entry| entry.value))
    }

    fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        keys.iter()
            .map(|key| BlockingBackend::get(self, key))
            .collect()
    }

    fn set(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<()> {
        self.entries.insert(key.to_owned(), Entry { value, ttl });
        Ok(())
    }

    fn set_many(&self, entries: &[(&str, Bytes)], ttl: Ttl) -> Result<()> {
        for (key, value) in entries {
            BlockingBackend::set(self, key, value.clone(), ttl)?;
        }
        Ok(())
    }

    fn add(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<bool> {
        let entry = self
            .entries
            .entry_by_ref(key)
            .or_insert_with(|| Entry { value, ttl });
        Ok(entry.is_fresh())
    }

    fn delete(&self, key: &str) -> Result<bool> {
        Ok(self.entries.remove(key).is_some())
    }

    fn delete_many(&self, keys: &[&str]) -> Result<u64> {
        Ok(keys
            .iter()
            .filter(|key| self.entries.remove(**key).is_some())
            .count() as u64)
    }

    fn exists(&self, key: &str) -> Result<bool> {
        Ok(self.entries.contains_key(key))
    }

    fn delete_prefix(&self, prefix: &str) -> Result<u64> {
        let matching: Vec<_> = self
            .entries
            .iter()
            .filter(|(key, _)| key.starts_with(prefix))
            .map(|(key, _)| key)
            .collect();
        Ok(matching
            .iter()
            .filter(|key| self.entries.remove(key.as_str()).is_some())
            .count() as u64)
    }

    fn delete_if_equal(&self, key: &str, expected: &[u8]) -> Result<bool> {
        let mut removed = false;
        self.entries
            .entry_by_ref(key)
            .and_compute_with(|entry| match entry {
                Some(entry) if entry.value().value == expected => {
                    removed = true;
                    Op::Remove
                }
                _ => Op::Nop,
            });
        Ok(removed)
    }
}

super::async_via_blocking!(MemoryBackend);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_is_set_if_absent() {
        let backend = MemoryBackend::new();
        assert!(BlockingBackend::add(&backend, "k", Bytes::from_static(b"1"), None).unwrap());
        assert!(!BlockingBackend::add(&backend, "k", Bytes::from_static(b"2"), None).unwrap());
        assert_eq!(BlockingBackend::get(&backend, "k").unwrap().unwrap(), "1");
    }

    #[test]
    fn entries_expire_after_their_ttl() {
        let backend = MemoryBackend::new();
        let ttl = Some(Duration::from_millis(30));
        BlockingBackend::set(&backend, "short", Bytes::from_static(b"x"), ttl).unwrap();
        BlockingBackend::set(&backend, "long", Bytes::from_static(b"y"), None).unwrap();
        std::thread::sleep(Duration::from_millis(80));
        assert!(BlockingBackend::get(&backend, "short").unwrap().is_none());
        assert!(BlockingBackend::get(&backend, "long").unwrap().is_some());
    }

    #[test]
    fn delete_prefix_removes_only_matching_keys() {
        let backend = MemoryBackend::new();
        for key in ["ns:a", "ns:b", "other:a", "ns"] {
            BlockingBackend::set(&backend, key, Bytes::new(), None).unwrap();
        }
        assert_eq!(BlockingBackend::delete_prefix(&backend, "ns:").unwrap(), 2);
        assert!(BlockingBackend::exists(&backend, "other:a").unwrap());
        assert!(BlockingBackend::exists(&backend, "ns").unwrap());
    }

    #[test]
    fn stays_within_its_entry_bound() {
        let backend = MemoryBackend::builder().max_entries(100).build().unwrap();
        for i in 0..1_000 {
            BlockingBackend::set(&backend, &i.to_string(), Bytes::new(), None).unwrap();
        }
        assert!(backend.entry_count() <= 100);
    }

    #[test]
    fn delete_if_equal_compares_first() {
        let backend = MemoryBackend::new();
        BlockingBackend::set(&backend, "lease", Bytes::from_static(b"mine"), None).unwrap();
        assert!(!BlockingBackend::delete_if_equal(&backend, "lease", b"theirs").unwrap());
        assert!(BlockingBackend::delete_if_equal(&backend, "lease", b"mine").unwrap());
        assert!(!BlockingBackend::exists(&backend, "lease").unwrap());
    }

    #[test]
    fn rejects_conflicting_bounds() {
        let err = MemoryBackend::builder()
            .max_entries(1)
            .max_bytes(1)
            .build()
            .unwrap_err();
        assert!(err.is_config());
    }
}
