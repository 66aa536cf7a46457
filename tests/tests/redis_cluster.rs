//! The Redis backend on a real local Redis Cluster (`tests::cluster`): the single-server
//! guarantees (one `GET` per hit, scoped clear, fail-open, secrets) summed over the
//! primaries, keys spread over every primary, `ASK` and `MOVED` during and after a slot
//! migration, multi-key operations while a slot migrates. Failovers under load are in
//! `redis_cluster_failover.rs`.
//!
//! Clusters run one at a time, so that a failover never competes with another cluster for
//! the machine's cores.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use cache_core::config::Config;
use cache_core::{Cache, memoize};
use cache_redis::RedisBackend;
use tests::Late;
use tests::cluster::RedisCluster;

static ONE_CLUSTER_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_CLUSTER_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

static BEHAVIOUR: Late = Late(OnceLock::new());
static PAUSED: Late = Late(OnceLock::new());
static RUNS: AtomicUsize = AtomicUsize::new(0);

#[memoize(cache = BEHAVIOUR, timeout = 60)]
fn square(num: u64) -> u64 {
    RUNS.fetch_add(1, Ordering::SeqCst);
    num * num
}

#[memoize(cache = BEHAVIOUR, timeout = 60)]
async fn cube(num: u64) -> u64 {
    RUNS.fetch_add(1, Ordering::SeqCst);
    num * num * num
}

#[memoize(cache = BEHAVIOUR, timeout = 60, lease = 5)]
async fn leased(num: u64) -> u64 {
    RUNS.fetch_add(1, Ordering::SeqCst);
    num + 1
}

fn backend(cluster: &RedisCluster) -> RedisBackend {
    let mut builder = RedisBackend::builder().cluster(cluster.seed_list());
    if let Some(password) = cluster.password() {
        builder = builder.password(password);
    }
    builder.build().expect("a valid cluster")
}

fn cache_on(backend: RedisBackend, namespace: &str) -> Cache {
    Cache::builder()
        .backend(backend)
        .namespace(namespace)
        .default_timeout(Duration::from_secs(60))
        .build()
        .expect("a valid cache")
}

fn expect(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(n, c)| ((*n).to_owned(), *c)).collect()
}

fn raw<T: redis::FromRedisValue>(cluster: &RedisCluster, port: u16, cmd: &mut redis::Cmd) -> T {
    cmd.query(&mut cluster.node(port).connection())
        .expect("raw command succeeds")
}

/// A key under `prefix` held by each primary, by primary.
fn key_per_primary(cluster: &RedisCluster, prefix: &str) -> BTreeMap<u16, String> {
    let mut found = BTreeMap::new();
    let primaries = cluster.shards().len();
    for i in 0.. {
        let key = format!("{prefix}{i}");
        found.entry(cluster.shard_of(&key).primary).or_insert(key);
        if found.len() == primaries {
            return found;
        }
    }
    unreachable!()
}

#[test]
fn a_cluster_keeps_the_single_server_guarantees() {
    let _one = one_at_a_time();
    let cluster = RedisCluster::builder().replicas_per_primary(0).start();
    let cache = cache_on(backend(&cluster), "app:");
    BEHAVIOUR.0.set(cache.clone()).unwrap();
    let primaries: BTreeSet<u16> = cluster.shards().iter().map(|s| s.primary).collect();
    assert_eq!(primaries.len(), 3);

    // The first call reads the slot map; building did not connect.
    assert_eq!(square(2), 4);
    RUNS.store(0, Ordering::SeqCst);

    // A hit is one GET, a miss one GET and one SET, summed over the primaries; sync and async.
    cluster.reset_stats();
    assert_eq!(square(3), 9);
    assert_eq!(cluster.data_commands(), expect(&[("get", 1), ("set", 1)]));
    cluster.reset_stats();
    assert_eq!(square(3), 9);
    assert_eq!(cluster.data_commands(), expect(&[("get", 1)]));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        assert_eq!(cube(3).await, 27);
        cluster.reset_stats();
        assert_eq!(cube(3).await, 27);
        assert_eq!(cluster.data_commands(), expect(&[("get", 1)]));
        cluster.reset_stats();
        assert_eq!(cube(4).await, 64);
        assert_eq!(cluster.data_commands(), expect(&[("get", 1), ("set", 1)]));
    });
    assert_eq!(RUNS.load(Ordering::SeqCst), 3);

    // Keys of one function spread over every primary.
    for n in 0..60 {
        square(n);
    }
    let namespace = cache.namespace().to_owned();
    let holders: BTreeSet<u16> = (0..60)
        .map(|n| {
            cluster
                .shard_of(&format!("{namespace}{}", square::key(n).unwrap()))
                .primary
        })
        .collect();
    assert_eq!(
        holders, primaries,
        "the keys of `square` are on every primary"
    );
    for primary in &primaries {
        assert!(
            cluster.node(*primary).dbsize() > 0,
            "primary {primary} holds entries"
        );
    }

    // A lease's commands go to the lease key's node: SET NX, GET, the value's SET and EVAL.
    runtime.block_on(async {
        cluster.reset_stats();
        assert_eq!(leased(1).await, 2);
        let counts = cluster.data_commands();
        assert_eq!(counts.get("eval"), Some(&1), "{counts:?}");
        assert_eq!(counts.get("set"), Some(&2), "{counts:?}");
        cluster.reset_stats();
        assert_eq!(leased(1).await, 2);
        assert_eq!(cluster.data_commands(), expect(&[("get", 1)]));
    });

    // Multi-key operations across slots: no CROSSSLOT, one pipeline per node.
    let keys: Vec<String> = (0..20).map(|i| format!("multi{i}")).collect();
    let entries: Vec<(&str, u64)> = keys.iter().map(|k| (k.as_str(), 7)).collect();
    let names: Vec<&str> = keys.iter().map(String::as_str).collect();
    let blocking = cache.blocking();
    blocking.set_many(&entries).unwrap();
    let mut with_missing = names.clone();
    with_missing.insert(3, "absent");
    let got: Vec<Option<u64>> = blocking.get_many(&with_missing).unwrap();
    assert_eq!(got.len(), 21);
    assert_eq!(got[3], None);
    assert!(got.iter().enumerate().all(|(i, v)| i == 3 || *v == Some(7)));
    runtime.block_on(async {
        let got: Vec<Option<u64>> = cache.get_many(&names).await.unwrap();
        assert!(got.iter().all(|v| *v == Some(7)));
        assert_eq!(cache.delete_many(&names[..10]).await.unwrap(), 10);
    });
    assert_eq!(blocking.delete_many(&names).unwrap(), 10);

    // `clear()` and `invalidate_all()` remove only this namespace's keys, on every primary.
    let foreign = key_per_primary(&cluster, "other:app:");
    for (port, key) in &foreign {
        let _: () = raw(&cluster, *port, redis::cmd("SET").arg(key).arg("theirs"));
    }
    let before: u64 = primaries.iter().map(|p| cluster.node(*p).dbsize()).sum();
    assert!(before > 60);
    square::invalidate_all().unwrap();
    let after: u64 = primaries.iter().map(|p| cluster.node(*p).dbsize()).sum();
    assert_eq!(before - after, 60, "the 60 entries of `square`, no other");
    let removed = runtime.block_on(cache.clear()).unwrap();
    assert!(removed >= 3, "{removed}");
    for (port, key) in &foreign {
        let kept: Option<String> = raw(&cluster, *port, redis::cmd("GET").arg(key));
        assert_eq!(kept.as_deref(), Some("theirs"), "the foreign key on {port}");
        assert_eq!(
            cluster.node(*port).dbsize(),
            1,
            "only the foreign key is left on {port}"
        );
    }
}

/// Moves `slot` from its primary to `to`, the way `redis-cli --cluster reshard` does,
/// stopping after the keys moved (the slot is still the source's, which answers `ASK`).
fn start_migration(cluster: &RedisCluster, slot: u16, from: u16, to: u16, keys: &[String]) {
    let id = |port: u16| -> String { raw(cluster, port, redis::cmd("CLUSTER").arg("MYID")) };
    let (from_id, to_id) = (id(from), id(to));
    let _: () = raw(
        cluster,
        to,
        redis::cmd("CLUSTER")
            .arg("SETSLOT")
            .arg(slot)
            .arg("IMPORTING")
            .arg(&from_id),
    );
    let _: () = raw(
        cluster,
        from,
        redis::cmd("CLUSTER")
            .arg("SETSLOT")
            .arg(slot)
            .arg("MIGRATING")
            .arg(&to_id),
    );
    migrate(cluster, from, to, keys);
}

fn finish_migration(cluster: &RedisCluster, slot: u16, to: u16) {
    let to_id: String = raw(cluster, to, redis::cmd("CLUSTER").arg("MYID"));
    for shard in cluster.shards() {
        let _: () = raw(
            cluster,
            shard.primary,
            redis::cmd("CLUSTER")
                .arg("SETSLOT")
                .arg(slot)
                .arg("NODE")
                .arg(&to_id),
        );
    }
}

#[test]
fn ask_and_moved_during_and_after_a_slot_migration_are_followed() {
    let _one = one_at_a_time();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(migration());
}

async fn migration() {
    let cluster = RedisCluster::builder().replicas_per_primary(0).start();
    let backend = backend(&cluster);
    let cache = cache_on(backend.clone(), "mig:");

    // Calls cancelled at every await point (reading the map, a request, a multi-key split,
    // a clear) leave nothing behind: the next calls work and no circuit opened.
    let names: Vec<String> = (0..8).map(|i| format!("c{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    for micros in (0..3000).step_by(50) {
        let limit = Duration::from_micros(micros);
        let _ = tokio::time::timeout(limit, cache.get::<u32>("k")).await;
        let _ = tokio::time::timeout(limit, cache.get_many::<u32>(&names)).await;
        let _ = tokio::time::timeout(limit, cache.clear()).await;
    }
    assert!(!backend.is_circuit_open());
    assert_eq!(cache.get::<u32>("k").await.unwrap(), None);
    assert_eq!(cache.clear().await.unwrap(), 0);
    let blocking_cache = cache.clone();
    cache.set("k", &1u32).await.unwrap();
    let key = cache.full_key("k");
    let slot = cluster.slot_of(&key);
    let from = cluster.shard_of(&key).primary;
    let to = cluster
        .shards()
        .iter()
        .map(|s| s.primary)
        .find(|p| *p != from)
        .unwrap();

    // The key moved, the slot not yet: the source answers ASK, the target serves it after
    // ASKING.
    start_migration(&cluster, slot, from, to, std::slice::from_ref(&key));
    cluster.reset_stats();
    assert_eq!(cache.get::<u32>("k").await.unwrap(), Some(1));
    // Redis counts no command it redirected, so the source's ASK is not in its stats.
    assert_eq!(cluster.node(to).command_count("asking"), 1);
    assert_eq!(cluster.node(to).command_count("get"), 1);
    let got = tokio::task::spawn_blocking(move || blocking_cache.blocking().get::<u32>("k"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, Some(1), "the blocking half follows ASK too");

    // The slot moved: the source answers MOVED once, and the map then points at the target.
    finish_migration(&cluster, slot, to);
    cluster.reset_stats();
    assert_eq!(cache.get::<u32>("k").await.unwrap(), Some(1));
    assert_eq!(
        cluster.node(to).command_count("asking"),
        0,
        "MOVED, not ASK"
    );
    assert_eq!(cluster.node(to).command_count("get"), 1);
    cluster.reset_stats();
    assert_eq!(cache.get::<u32>("k").await.unwrap(), Some(1));
    assert_eq!(cache.blocking().get::<u32>("k").unwrap(), Some(1));
    assert_eq!(
        cluster.node(to).command_count("get"),
        2,
        "straight to the new owner"
    );
}

#[memoize(cache = PAUSED, timeout = 60)]
fn paused_square(num: u64) -> u64 {
    num * num
}

#[test]
fn a_paused_cluster_costs_misses_not_errors() {
    let _one = one_at_a_time();
    let mut cluster = RedisCluster::builder().replicas_per_primary(0).start();
    let cache = cache_on(backend(&cluster), "paused:");
    PAUSED.0.set(cache.clone()).unwrap();
    assert_eq!(paused_square(3), 9);
    let ports: Vec<u16> = cluster.shards().iter().map(|s| s.primary).collect();
    for port in &ports {
        cluster.node_mut(*port).pause();
    }
    let mut slowest = Duration::ZERO;
    for n in 0..20 {
        let started = Instant::now();
        assert_eq!(paused_square(n), n * n);
        slowest = slowest.max(started.elapsed());
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let value =
        runtime.block_on(cache.get_or_set_with("k", Duration::from_secs(5), || async { 5u8 }));
    assert_eq!(value, 5);
    assert!(
        runtime.block_on(cache.get::<u8>("k")).is_err(),
        "the direct API says why"
    );
    for port in &ports {
        cluster.node_mut(*port).resume();
    }
    eprintln!("slowest memoized call on a paused cluster: {slowest:?}");
    assert!(slowest < Duration::from_secs(2), "{slowest:?}");
    // Once the nodes answer again, calls are hits again.
    let deadline = Instant::now() + Duration::from_secs(10);
    while cache.blocking().get::<u64>("x").is_err() {
        assert!(Instant::now() < deadline, "the cache did not recover");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_cluster_with_a_password_works_and_never_shows_it() {
    let _one = one_at_a_time();
    let cluster = RedisCluster::builder()
        .replicas_per_primary(0)
        .requirepass("s3cret-pw")
        .start();
    let by_setter = cache_on(backend(&cluster), "sec:");
    by_setter.blocking().set("k", &1u8).unwrap();
    assert_eq!(by_setter.blocking().get::<u8>("k").unwrap(), Some(1));
    assert!(!format!("{by_setter:?}").contains("s3cret-pw"));

    let urls = cluster.seed_urls().join(",");
    let env = [
        ("CACHE_TYPE", "RedisClusterCache".to_owned()),
        ("CACHE_REDIS_CLUSTER", urls),
        ("CACHE_KEY_PREFIX", "sec:".to_owned()),
    ];
    let config =
        Config::from_vars(|name| env.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone()))
            .unwrap();
    assert!(!format!("{config:?}").contains("s3cret-pw"));
    let from_env = cache_redis::from_config(&config).unwrap();
    assert!(!format!("{from_env:?}").contains("s3cret-pw"));
    assert_eq!(from_env.blocking().get::<u8>("k").unwrap(), Some(1));

    let wrong = RedisBackend::builder()
        .cluster(cluster.seed_list())
        .password("not-the-s3cret-pw")
        .build()
        .unwrap();
    let wrong = cache_on(wrong, "sec:");
    let err = wrong.blocking().get::<u8>("k").unwrap_err();
    let shown = format!("{err:#} {err:?}");
    assert!(err.is_authentication(), "{shown}");
    assert!(!shown.contains("s3cret-pw"), "{shown}");
}

/// The hash slot of a key without braces (the cache's keys have none).
fn slot_of(key: &str) -> u16 {
    crc16::State::<crc16::XMODEM>::calculate(key.as_bytes()) % tests::cluster::SLOTS
}

/// Moves `keys` (all of one slot, being migrated) from `from` to `to`.
fn migrate(cluster: &RedisCluster, from: u16, to: u16, keys: &[String]) {
    let _: () = raw(
        cluster,
        from,
        redis::cmd("MIGRATE")
            .arg("127.0.0.1")
            .arg(to)
            .arg("")
            .arg(0)
            .arg(5000)
            .arg("KEYS")
            .arg(keys),
    );
}

#[test]
fn get_many_set_many_and_delete_many_during_a_slot_migration_give_no_error_and_no_wrong_answer() {
    let _one = one_at_a_time();
    let cluster = RedisCluster::builder().replicas_per_primary(0).start();
    let cache = cache_on(backend(&cluster), "mk:");
    let blocking = cache.blocking();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Three names in the slot that moves, and ten elsewhere.
    let first_slot = slot_of(&cache.full_key("n0"));
    let (moving, others): (Vec<String>, Vec<String>) = (0..)
        .map(|i| format!("n{i}"))
        .scan(0, |together, name| {
            let here = slot_of(&cache.full_key(&name)) == first_slot;
            *together += usize::from(here);
            (*together <= 3).then_some(name)
        })
        .partition(|name| slot_of(&cache.full_key(name)) == first_slot);
    let others: Vec<String> = others.into_iter().take(10).collect();
    assert_eq!(moving.len(), 3);
    let all: Vec<&str> = moving.iter().chain(&others).map(String::as_str).collect();
    let full: Vec<String> = moving.iter().map(|name| cache.full_key(name)).collect();
    let from = cluster.shard_of(&full[0]).primary;
    let to = cluster
        .shards()
        .iter()
        .map(|s| s.primary)
        .find(|p| *p != from)
        .unwrap();
    let entries = |round: u64| -> Vec<(&str, u64)> {
        all.iter()
            .enumerate()
            .map(|(i, name)| (*name, round * 100 + i as u64))
            .collect()
    };
    // Every value read back is the last written (or gone once deleted), sync and async,
    // for all the names and for the moving slot's names alone (one MGET of one slot).
    let check = |expected: &[Option<u64>], what: &str| {
        let got: Vec<Option<u64>> = blocking.get_many(&all).expect(what);
        assert_eq!(got, expected, "{what}, blocking");
        let got: Vec<Option<u64>> = runtime.block_on(cache.get_many(&all)).expect(what);
        assert_eq!(got, expected, "{what}, async");
        let moving: Vec<&str> = all[..3].to_vec();
        let got: Vec<Option<u64>> = blocking.get_many(&moving).expect(what);
        assert_eq!(got, expected[..3], "{what}, one slot");
    };
    let values =
        |round: u64| -> Vec<Option<u64>> { entries(round).iter().map(|(_, v)| Some(*v)).collect() };
    blocking.set_many(&entries(1)).unwrap();
    check(&values(1), "before the migration");

    // One key moved, two not: the source answers MGET and UNLINK of the slot with
    // TRYAGAIN, and a SET of the moved key with ASK.
    start_migration(&cluster, first_slot, from, to, &full[..1]);
    cluster.reset_stats();
    check(&values(1), "one key moved");
    assert!(
        cluster.node(to).command_count("asking") >= 3,
        "the moved key was read on the target"
    );
    blocking.set_many(&entries(2)).unwrap();
    runtime.block_on(cache.set_many(&entries(3))).unwrap();
    check(&values(3), "written while one key moved");
    let in_slot = |port: u16| -> u64 {
        raw(
            &cluster,
            port,
            redis::cmd("CLUSTER").arg("COUNTKEYSINSLOT").arg(first_slot),
        )
    };
    assert_eq!(
        (in_slot(from), in_slot(to)),
        (2, 1),
        "the moved key was written on the target, the others on the source"
    );

    // Two moved: a delete of one moved and one not, and of a key elsewhere.
    migrate(&cluster, from, to, &full[1..2]);
    assert_eq!(blocking.delete_many(&[all[1], all[2], all[3]]).unwrap(), 3);
    let mut expected = values(3);
    for gone in &mut expected[1..4] {
        *gone = None;
    }
    check(&expected, "deleted while two keys moved");
    runtime.block_on(cache.set_many(&entries(4))).unwrap();
    check(&values(4), "written again while two keys moved");

    // Every key moved: the source answers ASK for the slot's commands; the target has
    // them all, or not (a miss): a multi-key command there would be refused with
    // TRYAGAIN, so each goes on its own.
    migrate(&cluster, from, to, &full[2..]);
    assert_eq!(runtime.block_on(cache.delete_many(&all[..1])).unwrap(), 1);
    let mut expected = values(4);
    expected[0] = None;
    check(&expected, "every key moved, one deleted");

    // The slot moved: MOVED, then the new owner straight away.
    finish_migration(&cluster, first_slot, to);
    check(&expected, "after the migration");
    blocking.set_many(&entries(5)).unwrap();
    check(&values(5), "written after the migration");
    assert_eq!(runtime.block_on(cache.delete_many(&all)).unwrap(), 13);
    assert_eq!(cache.stats().errors, 0, "{:?}", cache.stats());
}

#[test]
fn a_hung_primary_opens_only_its_own_circuit_and_the_other_primaries_keep_hitting() {
    let _one = one_at_a_time();
    let mut cluster = RedisCluster::builder().replicas_per_primary(0).start();
    let backend = backend(&cluster);
    let cache = cache_on(backend.clone(), "node:");
    let blocking = cache.blocking();
    // A name per primary, each stored.
    let mut names: BTreeMap<u16, String> = BTreeMap::new();
    for i in 0.. {
        let name = format!("n{i}");
        names
            .entry(cluster.shard_of(&cache.full_key(&name)).primary)
            .or_insert(name);
        if names.len() == 3 {
            break;
        }
    }
    for name in names.values() {
        blocking.set(name, &1u32).unwrap();
    }
    let (&hung, hung_name) = names.iter().next().unwrap();
    let others: Vec<(u16, &String)> = names.iter().skip(1).map(|(p, n)| (*p, n)).collect();
    cluster.node_mut(hung).pause();
    cluster.reset_stats();

    let runs = AtomicUsize::new(0);
    let compute = || {
        runs.fetch_add(1, Ordering::SeqCst);
        2u32
    };
    let mut slowest_on_hung = Duration::ZERO;
    let mut fast_on_hung = 0;
    for _ in 0..10 {
        let started = Instant::now();
        assert_eq!(
            blocking.get_or_set_with(hung_name, Duration::from_secs(60), compute),
            2
        );
        let took = started.elapsed();
        slowest_on_hung = slowest_on_hung.max(took);
        fast_on_hung += usize::from(took < Duration::from_millis(50));
        for (_, name) in &others {
            assert_eq!(
                blocking.get_or_set_with(name, Duration::from_secs(60), compute),
                1,
                "a hit on a primary that answers"
            );
        }
    }
    assert_eq!(
        runs.load(Ordering::SeqCst),
        10,
        "only the hung node's calls ran the body"
    );
    for (port, _) in &others {
        assert_eq!(
            cluster.node(*port).command_count("get"),
            10,
            "one GET per hit on {port}"
        );
    }
    assert!(backend.is_circuit_open(), "the hung node's circuit opened");
    eprintln!(
        "one hung primary: slowest call for its key {slowest_on_hung:?}, {fast_on_hung} of 10 \
         failed fast (open circuit); the 2 other primaries served 20 of 20 hits"
    );
    assert!(
        slowest_on_hung < Duration::from_millis(900),
        "{slowest_on_hung:?}"
    );
    assert!(
        fast_on_hung >= 5,
        "its circuit opened after a few time-outs"
    );

    cluster.node_mut(hung).resume();
    let deadline = Instant::now() + Duration::from_secs(5);
    while blocking.get::<u32>(hung_name).ok().flatten() != Some(1) {
        assert!(
            Instant::now() < deadline,
            "the resumed node's key did not hit again"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!backend.is_circuit_open());
}
