//! The cluster harness itself: it forms, keys spread over the primaries, a killed primary
//! fails over to its replica, and dropping it leaves no process behind.
//!
//! The tests take a lock so that two clusters never fail over side by side on a small
//! machine.

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tests::cluster::{RedisCluster, SLOTS};

static ONE_CLUSTER_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Keys of a few names, as a cache would write them.
const KEYS: [&str; 8] = [
    "cache:memoize:app.square:1",
    "cache:memoize:app.square:2",
    "cache:memoize:app.square:3",
    "cache:memoize:app.user:42",
    "cache:cached:app.page:/",
    "cache:cached:app.page:/about",
    "session:alice",
    "session:bob",
];

/// Asserts that every process is gone and every port closed once `cluster` is dropped.
fn assert_cleaned_up_after_drop(cluster: RedisCluster) {
    let pids: Vec<u32> = cluster.nodes().iter().filter_map(|n| n.pid()).collect();
    let ports: Vec<u16> = cluster.nodes().iter().map(|n| n.port()).collect();
    assert!(!pids.is_empty());
    drop(cluster);
    for pid in pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "pid {pid} still runs"
        );
    }
    for port in ports {
        assert!(
            TcpStream::connect(("127.0.0.1", port)).is_err(),
            "port {port} still answers"
        );
    }
}

#[test]
fn a_cluster_forms_spreads_keys_fails_over_and_cleans_up() {
    let _one = ONE_CLUSTER_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    let mut cluster = RedisCluster::start();
    eprintln!("cluster formed: {:.2} s", started.elapsed().as_secs_f64());

    // 3 primaries with 1 replica each, serving every slot exactly once.
    assert_eq!(cluster.nodes().len(), 6);
    assert_eq!(cluster.seeds().len(), 6);
    assert_eq!(cluster.seed_list().split(',').count(), 6);
    assert!(cluster.seeds()[0].starts_with("127.0.0.1:"));
    let shards = cluster.shards();
    assert_eq!(shards.len(), 3);
    assert!(shards.iter().all(|shard| shard.replicas.len() == 1));
    let mut next = 0;
    let mut ranges: Vec<_> = shards.iter().flat_map(|s| s.slots.clone()).collect();
    ranges.sort_by_key(|range| *range.start());
    for range in ranges {
        assert_eq!(*range.start(), next, "slots are covered once, in order");
        next = range.end() + 1;
    }
    assert_eq!(next, SLOTS);

    // Keys of a few names land on every primary; each is written on its own primary, which
    // counts it, and another primary redirects it.
    let owners: BTreeMap<&str, u16> = KEYS
        .iter()
        .map(|key| (*key, cluster.shard_of(key).primary))
        .collect();
    let primaries: BTreeSet<u16> = shards.iter().map(|shard| shard.primary).collect();
    assert_eq!(owners.values().copied().collect::<BTreeSet<_>>(), primaries);
    cluster.reset_stats();
    for (key, owner) in &owners {
        assert_eq!(cluster.primary_of(key).port(), *owner);
        let mut conn = cluster.node(*owner).connection();
        let _: () = redis::cmd("SET")
            .arg(key)
            .arg(*key)
            .query(&mut conn)
            .unwrap();
    }
    assert_eq!(cluster.command_count("set"), KEYS.len() as u64);
    let per_node = cluster.command_counts("set");
    for primary in &primaries {
        let held = owners.values().filter(|owner| *owner == primary).count();
        assert_eq!(per_node[primary], held as u64, "SETs on primary {primary}");
    }
    let (key, owner) = owners.iter().next().unwrap();
    let other = primaries.iter().find(|p| *p != owner).unwrap();
    let moved = redis::cmd("GET")
        .arg(key)
        .query::<Option<String>>(&mut cluster.node(*other).connection())
        .unwrap_err();
    assert_eq!(
        moved.kind(),
        redis::ErrorKind::Server(redis::ServerErrorKind::Moved)
    );
    assert_eq!(
        moved.redirect_node(),
        Some((&*format!("127.0.0.1:{owner}"), cluster.slot_of(key)))
    );

    // Killing the primary of `key` promotes its replica, which kept the value.
    let replica = cluster.shard_of(key).replicas[0];
    cluster.node(*owner).wait_for_replicas(1);
    let killed = cluster.kill_primary_of(key);
    assert_eq!(killed, *owner);
    assert!(!cluster.seeds().contains(&format!("127.0.0.1:{killed}")));
    let took = cluster.wait_for_failover();
    eprintln!(
        "cluster failover: {:.2} s from the kill",
        took.as_secs_f64()
    );
    assert!(took < Duration::from_secs(20), "failover took {took:?}");
    let shard = cluster.shard_of(key);
    assert_eq!(shard.primary, replica);
    let value: Option<String> = redis::cmd("GET")
        .arg(key)
        .query(&mut cluster.node(replica).connection())
        .unwrap();
    assert_eq!(value.as_deref(), Some(*key));
    assert_eq!(cluster.shards().len(), 3);

    // Restarted in its directory, the killed node rejoins as a replica of the new primary.
    cluster.node_mut(killed).restart();
    let rejoined = Instant::now();
    let replica_of = |cluster: &RedisCluster| {
        let info: String = redis::cmd("INFO")
            .arg("replication")
            .query(&mut cluster.node(killed).connection())
            .unwrap();
        info.lines().find_map(|line| {
            line.trim()
                .strip_prefix("master_port:")?
                .parse::<u16>()
                .ok()
        })
    };
    while cluster.shard_of(key).replicas != [killed] || replica_of(&cluster) != Some(replica) {
        assert!(
            rejoined.elapsed() < Duration::from_secs(20),
            "the restarted node did not rejoin: {:?}",
            cluster.shards()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!(
        "cluster rejoin after restart: {:.2} s",
        rejoined.elapsed().as_secs_f64()
    );

    assert_cleaned_up_after_drop(cluster);
}

#[test]
fn a_cluster_with_a_password_forms_and_refuses_clients_without_it() {
    let _one = ONE_CLUSTER_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let cluster = RedisCluster::builder()
        .replicas_per_primary(0)
        .requirepass("s3cret")
        .node_timeout(Duration::from_millis(1500))
        .arg("--hz")
        .arg("20")
        .start();
    assert_eq!(cluster.nodes().len(), 3);
    assert_eq!(cluster.password(), Some("s3cret"));
    assert!(cluster.seed_urls()[0].starts_with("redis://:s3cret@127.0.0.1:"));
    let shards = cluster.shards();
    assert_eq!(shards.len(), 3);
    assert!(shards.iter().all(|shard| shard.replicas.is_empty()));
    let node = &cluster.nodes()[0];
    let hz: (String, String) = redis::cmd("CONFIG")
        .arg("GET")
        .arg("hz")
        .query(&mut node.connection())
        .unwrap();
    assert_eq!(hz.1, "20");
    let anonymous = redis::Client::open(format!("redis://127.0.0.1:{}", node.port())).unwrap();
    let refused = redis::cmd("PING")
        .query::<String>(&mut anonymous.get_connection().unwrap())
        .unwrap_err();
    assert!(refused.to_string().contains("NOAUTH"), "{refused}");

    assert_cleaned_up_after_drop(cluster);
}
