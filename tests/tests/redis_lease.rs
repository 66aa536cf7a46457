//! Leases on a real `redis-server`: the round trips of a leased miss (counted with
//! `INFO commandstats` and, per client command, with `MONITOR`), and how soon callers that
//! wait on another cache's lease get its value.

mod redis_support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cache_core::stampede::Stampede;
use cache_core::{Cache, CallOptions};
use cache_redis::RedisBackend;
use redis_support::{cache, raw};
use tests::RedisServer;
use tests::cluster::RedisCluster;

fn leased() -> CallOptions {
    CallOptions::builder()
        .timeout(Duration::from_secs(60))
        .stampede(Stampede::default().lease(Duration::from_secs(5)))
        .build()
}

/// The commands clients sent while `run` ran, as `MONITOR` shows them (a script's own
/// commands, shown as sent by `lua`, are not round trips and are left out).
fn client_commands(server: &RedisServer, run: impl FnOnce()) -> Vec<String> {
    let mut monitor = Command::new("redis-cli")
        .args(["-p", &server.port().to_string(), "monitor"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("redis-cli starts");
    let mut lines = BufReader::new(monitor.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "OK", "MONITOR is on");
    run();
    // A marker command, so every command before it was shown.
    let _: Option<String> = redis::cmd("GET")
        .arg("monitor:end")
        .query(&mut server.connection())
        .unwrap();
    let mut seen = vec![];
    for line in lines {
        let line = line.unwrap();
        if line.contains("\"monitor:end\"") {
            break;
        }
        if let Some((_, command)) = line.split_once("] ")
            && !line.contains(" lua]")
            && !command.starts_with("\"CLIENT\"")
            && !command.starts_with("\"HELLO\"")
        {
            seen.push(
                command
                    .split(' ')
                    .next()
                    .unwrap()
                    .trim_matches('"')
                    .to_owned(),
            );
        }
    }
    let _ = monitor.kill();
    let _ = monitor.wait();
    seen
}

/// Figures for the README: the commands of one leased miss, and the delay from the end of
/// a slow body holding the lease to the return of each caller in other caches waiting on it.
/// Run with `cargo test -p tests --test redis_lease -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement; prints figures"]
fn measure_leased_miss_round_trips_and_waiter_delay() {
    let server = RedisServer::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let one = cache(&server, "app:");
    runtime.block_on(async {
        let _ = one.get::<String>("warm").await;
    });
    for (key, what) in [("cold", "first after start"), ("miss", "warm")] {
        let commands = client_commands(&server, || {
            runtime.block_on(async {
                one.get_or_set_with_options(key, leased(), || async { "v".to_owned() })
                    .await;
            });
        });
        eprintln!(
            "leased miss ({what}): {} round trips: {commands:?}",
            commands.len()
        );
    }

    const WAITERS: usize = 7;
    const ROUNDS: usize = 10;
    let caches: Vec<_> = (0..=WAITERS).map(|_| cache(&server, "app:")).collect();
    let mut delays = vec![];
    for round in 0..ROUNDS {
        let key = format!("slow{round}");
        let body_end = Arc::new(Mutex::new(None));
        let returns = runtime.block_on(async {
            let holder = {
                let (cache, key, body_end) = (caches[0].clone(), key.clone(), body_end.clone());
                tokio::spawn(async move {
                    cache
                        .get_or_set_with_options(&key, leased(), || async {
                            tokio::time::sleep(Duration::from_millis(300)).await;
                            *body_end.lock().unwrap() = Some(Instant::now());
                            "v".to_owned()
                        })
                        .await
                })
            };
            tokio::time::sleep(Duration::from_millis(50)).await;
            let waiters: Vec<_> = caches[1..]
                .iter()
                .map(|cache| {
                    let (cache, key) = (cache.clone(), key.clone());
                    tokio::spawn(async move {
                        let value = cache
                            .get_or_set_with_options(&key, leased(), || async {
                                "a waiter computed".to_owned()
                            })
                            .await;
                        (value, Instant::now())
                    })
                })
                .collect();
            holder.await.unwrap();
            let mut returns = vec![];
            for waiter in waiters {
                let (value, at) = waiter.await.unwrap();
                assert_eq!(value, "v");
                returns.push(at);
            }
            returns
        });
        let end = body_end.lock().unwrap().expect("the body ran");
        delays.extend(returns.into_iter().map(|at| at.duration_since(end)));
    }
    delays.sort();
    eprintln!(
        "waiter delay after the body's end ({} waiters): median {:?}, max {:?}",
        delays.len(),
        delays[delays.len() / 2],
        delays[delays.len() - 1]
    );
}

fn expect(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(n, c)| ((*n).to_owned(), *c)).collect()
}

/// A leased call on `cache` whose body counts its runs.
fn leased_call(cache: &Cache, key: &str, runs: &AtomicUsize) -> String {
    cache.blocking().get_or_set_with_options(key, leased(), || {
        runs.fetch_add(1, Ordering::SeqCst);
        "v".to_owned()
    })
}

#[test]
fn a_leased_miss_is_a_get_and_two_evalsha_and_a_leased_hit_one_get() {
    let server = RedisServer::start();
    let cache = cache(&server, "app:");
    let runs = AtomicUsize::new(0);
    leased_call(&cache, "warm", &runs); // loads the scripts
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for sync in [true, false] {
        let key = format!("k{sync}");
        server.reset_stats();
        let value = if sync {
            leased_call(&cache, &key, &runs)
        } else {
            runtime.block_on(cache.get_or_set_with_options(&key, leased(), || async {
                runs.fetch_add(1, Ordering::SeqCst);
                "v".to_owned()
            }))
        };
        assert_eq!(value, "v");
        // Three round trips: GET, the look-and-lease script, the store-and-release script.
        // The scripts' own commands: GET and SET NX; SET, GET of the lease and DEL.
        assert_eq!(
            server.calls_since_reset(),
            expect(&[("del", 1), ("evalsha", 2), ("get", 3), ("set", 2)]),
            "sync: {sync}"
        );
        server.reset_stats();
        assert_eq!(leased_call(&cache, &key, &runs), "v");
        assert_eq!(
            server.calls_since_reset(),
            expect(&[("get", 1)]),
            "a hit is one GET"
        );
    }
    assert_eq!(runs.load(Ordering::SeqCst), 3);
    let lease: bool = raw(&server, redis::cmd("EXISTS").arg("app:ktrue:~lease"));
    assert!(!lease, "released");
}

#[test]
fn after_script_flush_a_leased_miss_sends_its_scripts_in_full_and_still_works() {
    let server = RedisServer::start();
    let cache = cache(&server, "app:");
    let runs = AtomicUsize::new(0);
    leased_call(&cache, "warm", &runs);
    let _: () = raw(&server, redis::cmd("SCRIPT").arg("FLUSH"));
    server.reset_stats();
    assert_eq!(leased_call(&cache, "k", &runs), "v");
    let stats = server.command_stats();
    assert_eq!(stats["evalsha"].calls, 2, "{stats:?}");
    assert_eq!(stats["evalsha"].failed_calls, 2, "NOSCRIPT, twice");
    assert_eq!(stats["eval"].calls, 2, "each script sent in full once");
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    let stored: Option<Vec<u8>> = raw(&server, redis::cmd("GET").arg("app:k"));
    assert!(stored.is_some());
    let lease: bool = raw(&server, redis::cmd("EXISTS").arg("app:k:~lease"));
    assert!(!lease, "released");
    // Loaded again: the next miss is by hash.
    server.reset_stats();
    assert_eq!(leased_call(&cache, "k2", &runs), "v");
    assert_eq!(server.calls_since_reset()["evalsha"], 2);
    assert!(!server.calls_since_reset().contains_key("eval"));
}

/// The hash slot of a key without a hash tag.
fn slot(key: &str) -> u16 {
    crc16::State::<crc16::XMODEM>::calculate(key.as_bytes()) % 16384
}

#[test]
fn a_leased_miss_on_a_cluster_is_composed_unless_both_keys_share_a_slot() {
    let cluster = RedisCluster::builder().replicas_per_primary(0).start();
    let backend = RedisBackend::builder()
        .cluster(cluster.seed_list())
        .build()
        .unwrap();
    let cache = redis_support::cache_on(backend, "");
    let runs = AtomicUsize::new(0);
    leased_call(&cache, "warm", &runs);
    // Different slots (the usual case): SET NX and GET, then SET and the release's EVAL.
    let key = "apart";
    assert_ne!(slot(key), slot(&format!("{key}:~lease")));
    cluster.reset_stats();
    assert_eq!(leased_call(&cache, key, &runs), "v");
    assert_eq!(
        cluster.data_commands(),
        expect(&[("del", 1), ("eval", 1), ("get", 3), ("set", 2)]),
        "no CROSSSLOT: composed of single-key commands"
    );
    // One slot for both (found by search; keys never carry hash tags): the scripts run.
    let together = (0..)
        .map(|i| format!("k{i}"))
        .find(|key| slot(key) == slot(&format!("{key}:~lease")))
        .unwrap();
    // Its node loads the scripts on their first use (NOSCRIPT, then EVAL).
    leased_call(&cache, &together, &runs);
    cache.blocking().delete(&together).unwrap();
    cluster.reset_stats();
    assert_eq!(leased_call(&cache, &together, &runs), "v");
    let counts = cluster.data_commands();
    assert_eq!(counts.get("evalsha"), Some(&2), "{counts:?}");
    assert_eq!(counts.get("eval"), None, "{counts:?}");
    assert_eq!(runs.load(Ordering::SeqCst), 4);
    let lease: bool = raw_cluster(&cluster, &format!("{together}:~lease"));
    assert!(!lease, "released");
}

/// `EXISTS key` on the node that serves `key`.
fn raw_cluster(cluster: &RedisCluster, key: &str) -> bool {
    redis::cmd("EXISTS")
        .arg(key)
        .query(&mut cluster.node(cluster.shard_of(key).primary).connection())
        .unwrap()
}

/// A caller waiting on another cache's lease, on a real server, gets the holder's value
/// after the holder's store with exactly one more look, and never computes: the holder's
/// body ends once the waiter has looked six times (its pauses then reach 100 ms). That the
/// look comes at once, woken by the store rather than at the pause's end, is asserted without
/// a clock in `cache-core/tests/lease_waiters.rs` (a paused tokio clock that has not moved
/// when the waiter returns).
#[test]
fn a_waiter_gets_the_holders_value_with_one_look_after_the_store() {
    let server = RedisServer::start();
    let (holder, waiter) = (cache(&server, "app:"), cache(&server, "app:"));
    let runs = AtomicUsize::new(0);
    leased_call(&holder, "warm", &runs);
    let looks = || server.command_count("evalsha");
    let (finish, finished) = std::sync::mpsc::channel::<()>();
    std::thread::scope(|scope| {
        let holder = &holder;
        let holding = scope.spawn(move || {
            holder
                .blocking()
                .get_or_set_with_options("slow", leased(), || {
                    finished.recv().unwrap();
                    "theirs".to_owned()
                })
        });
        while !raw::<bool>(&server, redis::cmd("EXISTS").arg("app:slow:~lease")) {
            std::thread::yield_now();
        }
        let before = looks();
        let waiting = scope.spawn(|| leased_call(&waiter, "slow", &runs));
        // Six busy looks: 5 + 10 + 20 + 40 + 80 ms of pauses; the next one is 100 ms.
        while looks() < before + 6 {
            std::thread::sleep(Duration::from_millis(1));
        }
        let polls = looks() - before;
        finish.send(()).unwrap();
        assert_eq!(holding.join().unwrap(), "theirs");
        assert_eq!(
            waiting.join().unwrap(),
            "theirs",
            "the waiter did not compute"
        );
        assert_eq!(
            looks() - before,
            polls + 2,
            "the holder's store and one look by the woken waiter"
        );
    });
    assert_eq!(runs.load(Ordering::SeqCst), 1, "only the warm-up ran here");
}

#[test]
fn a_leased_miss_on_a_key_of_another_type_computes_under_the_lease_and_overwrites_it() {
    let server = RedisServer::start();
    let cache = cache(&server, "app:");
    let runs = AtomicUsize::new(0);
    let _: () = raw(&server, redis::cmd("RPUSH").arg("app:k").arg("x"));
    assert_eq!(leased_call(&cache, "k", &runs), "v");
    assert_eq!(runs.load(Ordering::SeqCst), 1, "a list reads as a miss");
    assert_eq!(leased_call(&cache, "k", &runs), "v");
    assert_eq!(runs.load(Ordering::SeqCst), 1, "overwritten: now a hit");
    let lease: bool = raw(&server, redis::cmd("EXISTS").arg("app:k:~lease"));
    assert!(!lease, "released");
}
