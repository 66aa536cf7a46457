//! The tier alone: bounds, expiry, flushes, the gate and the race guard.

use std::sync::Arc;
use std::time::Duration;

use super::{Fill, NearCache, NearValue, Tier};
use crate::backplane::{Listener, near_key};

fn tier(settings: NearCache) -> Tier {
    let checked = settings.check().expect("valid settings");
    // Without a change channel: alone, its gate always open.
    Tier::start(&checked, None, "cache:", true).expect("an in-process tier")
}

fn value(s: &str) -> NearValue {
    Arc::new(s.to_owned())
}

fn text(tier: &Tier, key: u128) -> Option<String> {
    tier.get(key)
        .map(|v| v.downcast_ref::<String>().unwrap().clone())
}

const FILL: Fill = Fill {
    weight: 100,
    limit: None,
};

#[test]
fn a_kept_value_is_served_until_its_local_timeout() {
    let tier = tier(NearCache::new(Duration::from_millis(50)));
    let plan = tier.plan(1, tier.local());
    tier.keep(&plan, value("a"), FILL);
    assert_eq!(text(&tier, 1).as_deref(), Some("a"));
    std::thread::sleep(Duration::from_millis(80));
    assert_eq!(text(&tier, 1), None, "expired");
    assert_eq!(tier.len(), 0, "an expired entry is removed when met");
}

#[test]
fn the_backend_entrys_remaining_life_caps_the_local_timeout() {
    let tier = tier(NearCache::new(Duration::from_secs(60)));
    let plan = tier.plan(1, tier.local());
    let fill = Fill {
        weight: 10,
        limit: Some(Duration::from_millis(30)),
    };
    tier.keep(&plan, value("a"), fill);
    assert!(text(&tier, 1).is_some());
    std::thread::sleep(Duration::from_millis(60));
    assert_eq!(text(&tier, 1), None, "never past the entry's own expiry");
    let gone = Fill {
        weight: 10,
        limit: Some(Duration::ZERO),
    };
    tier.keep(&tier.plan(2, tier.local()), value("b"), gone);
    assert_eq!(tier.len(), 0, "an entry with no life left is not kept");
}

#[test]
fn the_entry_bound_holds() {
    let tier = tier(NearCache::new(Duration::from_secs(60)).max_entries(100));
    for key in 0..1_000u128 {
        let key = near_key(&key.to_string());
        tier.keep(&tier.plan(key, tier.local()), value("v"), FILL);
    }
    assert!(tier.len() <= 100, "{} entries", tier.len());
    assert!(tier.len() >= 50, "{} entries", tier.len());
}

#[test]
fn the_byte_bound_holds() {
    // 100 bytes of value plus 96 of the entry's own: at most 50 entries in 10,000 bytes.
    let tier = tier(NearCache::new(Duration::from_secs(60)).max_bytes(10_000));
    for key in 0..1_000u128 {
        let key = near_key(&key.to_string());
        tier.keep(&tier.plan(key, tier.local()), value("v"), FILL);
    }
    assert!(tier.len() <= 10_000 / 196, "{} entries", tier.len());
    assert!(tier.len() >= 10, "{} entries", tier.len());
}

#[test]
fn changes_and_flushes_forget_entries() {
    let tier = tier(NearCache::new(Duration::from_secs(60)));
    for key in 1..=3 {
        tier.keep(&tier.plan(key, tier.local()), value("v"), FILL);
    }
    tier.shared.changed(&[1]);
    assert_eq!((text(&tier, 1), tier.len()), (None, 2));
    tier.forget(&[2]);
    assert_eq!((text(&tier, 2), tier.len()), (None, 1));
    tier.shared.flush();
    assert_eq!(tier.len(), 0);
}

#[test]
fn a_closed_gate_serves_nothing() {
    let tier = tier(NearCache::new(Duration::from_secs(60)));
    tier.keep(&tier.plan(1, tier.local()), value("a"), FILL);
    tier.close_gate(true);
    assert_eq!(text(&tier, 1), None);
    tier.close_gate(false);
    assert_eq!(text(&tier, 1).as_deref(), Some("a"));
}

#[test]
fn a_value_read_while_its_key_changed_is_not_kept() {
    let tier = tier(NearCache::new(Duration::from_secs(60)));
    // The snapshot is taken before the backend read; the change arrives during it.
    let plan = tier.plan(7, tier.local());
    tier.shared.changed(&[7]);
    tier.keep(&plan, value("old"), FILL);
    assert_eq!(text(&tier, 7), None);
    // A flush during the read counts too.
    let plan = tier.plan(7, tier.local());
    tier.shared.flush();
    tier.keep(&plan, value("old"), FILL);
    assert_eq!(text(&tier, 7), None);
    // This instance's own store, kept during the read, counts too; so does its removal of
    // entries no near key names.
    let plan = tier.plan(7, tier.local());
    tier.keep_stored(&tier.plan(7, tier.local()), value("new"), FILL);
    tier.keep(&plan, value("old"), FILL);
    assert_eq!(
        text(&tier, 7).as_deref(),
        Some("new"),
        "the old read is not kept"
    );
    let plan = tier.plan(7, tier.local());
    tier.forget_all();
    tier.keep(&plan, value("old"), FILL);
    assert_eq!(text(&tier, 7), None);
    // A change of another stripe's key does not matter.
    let plan = tier.plan(7, tier.local());
    tier.shared.changed(&[8]);
    tier.keep(&plan, value("new"), FILL);
    assert_eq!(text(&tier, 7).as_deref(), Some("new"));
}

#[test]
fn a_shared_backend_without_a_change_channel_gets_no_tier() {
    let checked = NearCache::new(Duration::from_secs(1)).check().unwrap();
    assert!(Tier::start(&checked, None, "cache:", false).is_none());
}

#[test]
fn bad_settings_name_the_setting_and_the_range() {
    let error = |near: NearCache| near.check().unwrap_err().to_string();
    let second = Duration::from_secs(1);
    assert!(error(NearCache::new(Duration::ZERO)).contains("near_cache.local_timeout"));
    assert!(error(NearCache::new(second).max_entries(0)).contains("near_cache.max_entries"));
    assert!(error(NearCache::new(second).max_entries(1).max_bytes(1 << 20)).contains("not both"));
    assert!(error(NearCache::new(second).max_bytes(10)).contains("at least 1024"));
    let bound = error(NearCache::new(second).staleness_bound(Duration::from_millis(1)));
    assert!(bound.contains("near_cache.staleness_bound") && bound.contains("100 ms to 1 hour"));
    assert!(NearCache::new(second).check().unwrap().fail_safe.eq(&false));
}

/// Calls of annotated functions through a near cache over a backend that logs its
/// operations.
#[cfg(feature = "macros")]
mod calls {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, LazyLock, Mutex};
    use std::time::Duration;

    use bytes::Bytes;

    use crate::backend::memory::MemoryBackend;
    use crate::backend::{BlockingBackend, Capabilities, Ttl, async_via_blocking};
    use crate::{Cache, NearCache, Result, cached, memoize};

    /// The memory backend, logging every operation's name.
    #[derive(Debug, Default)]
    struct Counting {
        memory: MemoryBackend,
        log: Mutex<Vec<&'static str>>,
    }

    impl Counting {
        const CAPABILITIES: Capabilities = Capabilities::IN_PROCESS;

        fn note(&self, op: &'static str) {
            self.log.lock().unwrap().push(op);
        }
    }

    impl BlockingBackend for Counting {
        fn get(&self, key: &str) -> Result<Option<Bytes>> {
            self.note("get");
            self.memory.get(key)
        }
        fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
            self.note("get_many");
            self.memory.get_many(keys)
        }
        fn set(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<()> {
            self.note("set");
            self.memory.set(key, value, ttl)
        }
        fn set_many(&self, entries: &[(&str, Bytes)], ttl: Ttl) -> Result<()> {
            self.note("set_many");
            self.memory.set_many(entries, ttl)
        }
        fn add(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<bool> {
            self.note("add");
            self.memory.add(key, value, ttl)
        }
        fn delete(&self, key: &str) -> Result<bool> {
            self.note("delete");
            self.memory.delete(key)
        }
        fn delete_many(&self, keys: &[&str]) -> Result<u64> {
            self.note("delete_many");
            self.memory.delete_many(keys)
        }
        fn exists(&self, key: &str) -> Result<bool> {
            self.note("exists");
            self.memory.exists(key)
        }
        fn delete_prefix(&self, prefix: &str) -> Result<u64> {
            self.note("delete_prefix");
            self.memory.delete_prefix(prefix)
        }
    }

    async_via_blocking!(Counting);

    /// A cache with a near cache (local timeout 60 s) over a [`Counting`] backend.
    struct Near {
        cache: Cache,
        backend: Arc<Counting>,
    }

    impl Near {
        fn new() -> Self {
            let backend = Arc::new(Counting::default());
            let cache = Cache::builder()
                .shared_backend(backend.clone())
                .near_cache(NearCache::new(Duration::from_secs(60)))
                .build()
                .unwrap();
            Self { cache, backend }
        }

        /// The backend operations since the last call.
        fn ops(&self) -> Vec<&'static str> {
            std::mem::take(&mut *self.backend.log.lock().unwrap())
        }
    }

    impl std::ops::Deref for Near {
        type Target = Cache;
        fn deref(&self) -> &Cache {
            &self.cache
        }
    }

    static HIT: LazyLock<Near> = LazyLock::new(Near::new);
    static HIT_RUNS: AtomicUsize = AtomicUsize::new(0);

    #[memoize(cache = HIT, local = 30, crate = "crate")]
    fn greeting(name: String) -> String {
        HIT_RUNS.fetch_add(1, Ordering::SeqCst);
        format!("Hello, {name}")
    }

    #[test]
    fn a_near_hit_costs_no_backend_operation() {
        assert_eq!(greeting("Ada".into()), "Hello, Ada");
        assert_eq!(HIT.ops(), ["get", "set"]);
        for _ in 0..3 {
            assert_eq!(greeting("Ada".into()), "Hello, Ada");
        }
        assert_eq!(HIT.ops(), Vec::<&str>::new());
        assert_eq!(HIT_RUNS.load(Ordering::SeqCst), 1);
        let stats = greeting::stats();
        assert_eq!((stats.hits, stats.near_hits, stats.misses), (3, 3, 1));
        assert_eq!(HIT.stats().near_hits, 3);
        // Another argument is another entry.
        assert_eq!(greeting("Bob".into()), "Hello, Bob");
        assert_eq!(HIT.ops(), ["get", "set"]);
    }

    static ASYNC: LazyLock<Near> = LazyLock::new(Near::new);

    #[memoize(cache = ASYNC, crate = "crate")]
    async fn double(n: u64) -> u64 {
        tokio::task::yield_now().await;
        n * 2
    }

    #[tokio::test]
    async fn an_async_function_without_local_uses_the_caches_local_timeout() {
        assert_eq!(double(4).await, 8);
        assert_eq!(ASYNC.ops(), ["get", "set"]);
        assert_eq!(double(4).await, 8);
        assert_eq!(ASYNC.ops(), Vec::<&str>::new());
        assert_eq!(double::stats().near_hits, 1);
    }

    static OUT: LazyLock<Near> = LazyLock::new(Near::new);

    #[memoize(cache = OUT, local = 0, crate = "crate")]
    fn opted_out(n: u64) -> u64 {
        n + 1
    }

    #[test]
    fn local_zero_keeps_a_function_out_of_the_near_cache() {
        opted_out(1);
        opted_out(1);
        assert_eq!(OUT.ops(), ["get", "set", "get"]);
        assert_eq!(opted_out::stats().near_hits, 0);
    }

    static WRITES: LazyLock<Near> = LazyLock::new(Near::new);

    #[cached(cache = WRITES, key_prefix = "homepage", crate = "crate")]
    fn home() -> String {
        "rendered".to_owned()
    }

    #[test]
    fn writes_through_the_cache_replace_or_remove_the_near_entry() {
        assert_eq!(home(), "rendered");
        assert_eq!(home(), "rendered");
        assert_eq!(WRITES.ops(), ["get", "set"]);
        // `set` writes the function's key: the near entry goes, the next call reads it.
        WRITES.blocking().set("homepage", "edited").unwrap();
        assert_eq!(home(), "edited");
        assert_eq!(home(), "edited");
        assert_eq!(WRITES.ops(), ["set", "get"]);
        // `delete`, and the function's own `invalidate`, remove it.
        assert!(WRITES.blocking().delete("homepage").unwrap());
        assert_eq!(home(), "rendered");
        assert_eq!(WRITES.ops(), ["delete", "get", "set"]);
        assert!(home::invalidate().unwrap());
        assert_eq!(home(), "rendered");
        assert_eq!(WRITES.ops(), ["delete", "get", "set"]);
        // `clear` flushes the whole near cache.
        assert_eq!(home(), "rendered");
        WRITES.blocking().clear().unwrap();
        assert_eq!(home(), "rendered");
        assert_eq!(WRITES.ops(), ["delete_prefix", "get", "set"]);
        // So do `set_many` and `delete_many` for their keys.
        WRITES.blocking().set_many(&[("homepage", "many")]).unwrap();
        assert_eq!(home(), "many");
        WRITES.blocking().delete_many(&["homepage"]).unwrap();
        assert_eq!(home(), "rendered");
        assert_eq!(
            WRITES.ops(),
            ["set_many", "get", "delete_many", "get", "set"]
        );
        assert_eq!(home(), "rendered");
        assert_eq!(WRITES.ops(), Vec::<&str>::new());
    }

    static RACE: LazyLock<Near> = LazyLock::new(Near::new);

    #[memoize(cache = RACE, crate = "crate")]
    fn raced(n: u64) -> u64 {
        // A change arrives while the value is computed (here, this instance's own
        // `clear`): the value is stored and returned, but not kept near.
        RACE.blocking().clear().unwrap();
        n
    }

    #[test]
    fn a_value_computed_while_a_change_arrived_is_not_kept() {
        assert_eq!(raced(1), 1);
        assert_eq!(RACE.ops(), ["get", "delete_prefix", "set"]);
        assert_eq!(raced(1), 1);
        assert_eq!(RACE.ops(), ["get"], "a backend hit, kept this time");
        assert_eq!(raced(1), 1);
        assert_eq!(RACE.ops(), Vec::<&str>::new());
    }

    static GATE: LazyLock<Near> = LazyLock::new(Near::new);

    #[memoize(cache = GATE, crate = "crate")]
    fn gated(n: u64) -> u64 {
        n
    }

    #[test]
    fn nothing_is_served_near_while_the_gate_is_closed() {
        gated(1);
        gated(1);
        assert_eq!(GATE.ops(), ["get", "set"]);
        GATE.near().unwrap().close_gate(true);
        gated(1);
        gated(1);
        assert_eq!(GATE.ops(), ["get", "get"]);
        GATE.near().unwrap().close_gate(false);
        gated(1);
        assert_eq!(GATE.ops(), Vec::<&str>::new());
    }

    static FORCED: LazyLock<Near> = LazyLock::new(Near::new);
    static FORCED_RUNS: AtomicUsize = AtomicUsize::new(0);

    #[memoize(cache = FORCED, forced_update = refresh, ignore = [refresh], crate = "crate")]
    fn counter(refresh: bool) -> usize {
        FORCED_RUNS.fetch_add(1, Ordering::SeqCst)
    }

    #[test]
    fn a_forced_update_replaces_the_near_entry() {
        assert_eq!(counter(false), 0);
        assert_eq!(counter(false), 0);
        assert_eq!(counter(true), 1);
        assert_eq!(counter(false), 1, "the recomputed value, served near");
        assert_eq!(FORCED.ops(), ["get", "set", "set"]);
    }

    static PLAIN: LazyLock<Cache> = LazyLock::new(Cache::memory);

    #[memoize(cache = PLAIN, local = 30, crate = "crate")]
    fn plain(n: u64) -> u64 {
        n
    }

    #[test]
    fn a_cache_without_a_near_cache_ignores_local() {
        plain(1);
        plain(1);
        let stats = plain::stats();
        assert_eq!((stats.hits, stats.near_hits), (1, 0));
    }
}
