//! The in-process backend, and the default when no Redis is configured.

mod bus;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use moka::Expiry;
use moka::ops::compute::Op;
use moka::sync::Cache as MokaCache;

use super::{BlockingBackend, Capabilities, Ttl};
use crate::{Error, Result};

#[doc(hidden)]
pub use bus::MemoryBus;

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
/// The bound holds at insert, like Flask-Caching's `SimpleCache` threshold: moka applies
/// inserts and evictions in batches later, so a `set` that may have taken the store past
/// its bound runs that pending maintenance before it returns. Once a `set` returns, the
/// store holds at most its bound, plus one entry for each `set` still running on another
/// thread at that moment. Which entries stay is moka's choice: when the store is full, a
/// new key that has been seen less often than the entry it would replace may be the one
/// dropped (TinyLFU admission). Reads never run this maintenance, so hits cost the same.
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
    bound: Arc<Bound>,
    /// The near cache's change channels, one per namespace, shared by every clone.
    buses: Arc<Mutex<HashMap<String, Arc<MemoryBus>>>>,
}

/// The store's bound, and the weight inserted since moka last applied its pending writes
/// (which `weighted_size` does not count yet).
struct Bound {
    capacity: u64,
    by_bytes: bool,
    unapplied: AtomicU64,
}

impl Bound {
    /// What an entry counts against the bound: 1, or its bytes and overhead.
    fn weight(&self, key: &str, value: &Bytes) -> u64 {
        if self.by_bytes {
            entry_bytes(key, value).into()
        } else {
            1
        }
    }

    /// Called after every insert of `weight`: applies moka's pending writes and evictions
    /// when the store may be over its bound.
    fn after_insert(&self, entries: &MokaCache<String, Entry>, weight: u64) {
        let unapplied = self.unapplied.fetch_add(weight, Ordering::Relaxed) + weight;
        if entries.weighted_size().saturating_add(unapplied) > self.capacity {
            // Reset first: an insert racing with the maintenance below is then counted
            // twice (applied and unapplied), which at worst runs the maintenance once more.
            self.unapplied.store(0, Ordering::Relaxed);
            entries.run_pending_tasks();
        }
    }
}

/// The weight of an entry when the bound is in bytes.
fn entry_bytes(key: &str, value: &Bytes) -> u32 {
    let size = key.len().saturating_add(value.len());
    u32::try_from(size)
        .unwrap_or(u32::MAX)
        .saturating_add(ENTRY_OVERHEAD)
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
        let (entries, capacity, by_bytes) = match (self.max_entries, self.max_bytes) {
            (Some(_), Some(_)) => {
                return Err(Error::config(
                    "memory bound",
                    "give max_entries or max_bytes, not both",
                ));
            }
            (Some(0), None) => return Err(Error::config("max_entries", "must be at least 1")),
            (None, Some(0)) => return Err(Error::config("max_bytes", "must be at least 1")),
            (None, Some(bytes)) => (
                builder
                    .max_capacity(bytes)
                    .weigher(|key: &String, entry: &Entry| entry_bytes(key, &entry.value))
                    .build(),
                bytes,
                true,
            ),
            (entries, None) => {
                let entries = entries.unwrap_or(DEFAULT_MAX_ENTRIES);
                (builder.max_capacity(entries).build(), entries, false)
            }
        };
        let bound = Arc::new(Bound {
            capacity,
            by_bytes,
            unapplied: AtomicU64::new(0),
        });
        Ok(MemoryBackend {
            entries,
            bound,
            buses: Arc::default(),
        })
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

    /// The change channel of `namespace` for the near cache (`Backend::bus`): every cache
    /// built on this backend (or a clone of it) with that namespace shares it. Not public
    /// API: tests reach its fault injection through it.
    #[doc(hidden)]
    pub fn bus_for(&self, namespace: &str) -> Arc<MemoryBus> {
        let mut buses = self.buses.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(buses.entry(namespace.to_owned()).or_default())
    }

    fn shared_bus(&self, namespace: &str) -> Option<Arc<dyn crate::bus::Bus>> {
        Some(self.bus_for(namespace))
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
        let weight = self.bound.weight(key, &value);
        self.entries.insert(key.to_owned(), Entry { value, ttl });
        self.bound.after_insert(&self.entries, weight);
        Ok(())
    }

    fn set_many(&self, entries: &[(&str, Bytes)], ttl: Ttl) -> Result<()> {
        for (key, value) in entries {
            BlockingBackend::set(self, key, value.clone(), ttl)?;
        }
        Ok(())
    }

    fn add(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<bool> {
        let weight = self.bound.weight(key, &value);
        let entry = self
            .entries
            .entry_by_ref(key)
            .or_insert_with(|| Entry { value, ttl });
        if entry.is_fresh() {
            self.bound.after_insert(&self.entries, weight);
        }
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

super::async_via_blocking!(MemoryBackend, bus = MemoryBackend::shared_bus);

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

    /// How many of `keys` a reader finds, `after` the last set.
    fn present(backend: &MemoryBackend, keys: &[String], after: Duration) -> usize {
        std::thread::sleep(after);
        keys.iter()
            .filter(|key| BlockingBackend::get(backend, key).unwrap().is_some())
            .count()
    }

    fn set_all(backend: &MemoryBackend, count: usize) -> Vec<String> {
        let keys: Vec<String> = (0..count).map(|i| format!("key{i}")).collect();
        for key in &keys {
            BlockingBackend::set(backend, key, Bytes::from_static(b"value"), None).unwrap();
        }
        keys
    }

    #[test]
    fn threshold_of_two_holds_after_four_sets() {
        let config = crate::config::Config::from_vars(|name| {
            (name == "CACHE_THRESHOLD").then(|| "2".to_owned())
        })
        .unwrap();
        let cache = config.build().unwrap();
        for i in 0..4 {
            cache.blocking().set(&format!("key{i}"), &i).unwrap();
        }
        std::thread::sleep(Duration::from_millis(100));
        let found = (0..4)
            .filter(|i| {
                cache
                    .blocking()
                    .get::<i32>(&format!("key{i}"))
                    .unwrap()
                    .is_some()
            })
            .count();
        assert!(
            found <= 2,
            "{found} of 4 entries present with a threshold of 2"
        );
        let backend = MemoryBackend::builder().max_entries(2).build().unwrap();
        let keys = set_all(&backend, 4);
        let found = present(&backend, &keys, Duration::ZERO);
        assert!(
            found <= 2,
            "{found} of 4 entries present at once with max_entries(2)"
        );
    }

    #[test]
    fn max_entries_of_ten_holds_after_a_hundred_sets() {
        let backend = MemoryBackend::builder().max_entries(10).build().unwrap();
        let keys = set_all(&backend, 100);
        let found = present(&backend, &keys, Duration::ZERO);
        assert!(found <= 10, "{found} of 100 entries present at once");
        let found = present(&backend, &keys, Duration::from_millis(100));
        assert!(found <= 10, "{found} of 100 entries present after 100 ms");
    }

    #[test]
    fn max_bytes_holds_at_insert() {
        let backend = MemoryBackend::builder().max_bytes(1_000).build().unwrap();
        // Each entry weighs 4 + 5 + 64 bytes: 13 fit in 1,000.
        let keys = set_all(&backend, 100);
        let found = present(&backend, &keys, Duration::ZERO);
        assert!(found <= 13, "{found} of 100 entries present");
    }

    #[test]
    fn concurrent_sets_overshoot_by_at_most_one_per_setter() {
        let backend = MemoryBackend::builder().max_entries(10).build().unwrap();
        std::thread::scope(|s| {
            for t in 0..4 {
                let backend = &backend;
                s.spawn(move || {
                    for i in 0..250 {
                        let key = format!("t{t}:{i}");
                        BlockingBackend::set(backend, &key, Bytes::new(), None).unwrap();
                    }
                });
            }
        });
        let found = backend.entries.iter().count();
        assert!(found <= 10, "{found} entries after all sets returned");
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
    fn clones_share_one_bus_per_namespace() {
        use crate::backend::Backend;
        let backend = MemoryBackend::new();
        let clone = backend.clone();
        let a = Backend::bus(&backend, "ns").unwrap();
        let b = Backend::bus(&clone, "ns").unwrap();
        let mut subscription = b.subscribe().unwrap();
        a.publish(b"m").unwrap();
        assert_eq!(
            subscription.next(Duration::ZERO).unwrap().as_deref(),
            Some(&b"m"[..])
        );
        let other = Backend::bus(&backend, "other").unwrap();
        other.publish(b"elsewhere").unwrap();
        assert_eq!(subscription.next(Duration::ZERO).unwrap(), None);
        assert!(Backend::bus(&MemoryBackend::new(), "ns").is_some());
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
