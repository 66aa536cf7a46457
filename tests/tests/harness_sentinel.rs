//! The Sentinel harness itself: it forms, a killed master fails over to the replica, and
//! dropping it leaves no process behind.
//!
//! The tests take a lock so that two set-ups never fail over side by side on a small
//! machine.

use std::net::TcpStream;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tests::sentinel::RedisSentinels;

static ONE_SET_UP_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Asserts that every process is gone and every port closed once `set_up` is dropped.
fn assert_cleaned_up_after_drop(set_up: RedisSentinels) {
    let nodes = set_up.data_nodes().iter().chain(set_up.sentinels());
    let pids: Vec<u32> = nodes.clone().filter_map(|n| n.pid()).collect();
    let ports: Vec<u16> = nodes.map(|n| n.port()).collect();
    assert!(!pids.is_empty());
    drop(set_up);
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
fn a_sentinel_set_up_forms_fails_over_and_cleans_up() {
    let _one = ONE_SET_UP_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    let mut set_up = RedisSentinels::start();
    eprintln!(
        "sentinel set-up formed: {:.2} s",
        started.elapsed().as_secs_f64()
    );

    assert_eq!(set_up.master_name(), "mymaster");
    assert_eq!(set_up.sentinels().len(), 3);
    assert_eq!(set_up.sentinel_list().split(',').count(), 3);
    assert!(set_up.sentinel_addrs()[0].starts_with("127.0.0.1:"));
    let (first, replica) = (set_up.data_nodes()[0].port(), set_up.data_nodes()[1].port());
    assert_eq!(set_up.master_port(), first);
    assert_eq!(set_up.master_addr(), format!("127.0.0.1:{first}"));

    // A write on the master is counted there, and replayed (and counted) on the replica.
    set_up.reset_stats();
    let mut conn = set_up.master().connection();
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query(&mut conn)
        .unwrap();
    set_up.master().wait_for_replicas(1);
    let sets = set_up.command_counts("set");
    assert_eq!(sets[&first], 1);
    assert_eq!(sets[&replica], 1);

    // Killing the master promotes the replica, which kept the value and takes writes.
    assert_eq!(set_up.kill_master(), first);
    let took = set_up.wait_for_failover();
    eprintln!(
        "sentinel failover: {:.2} s from the kill",
        took.as_secs_f64()
    );
    assert!(took < Duration::from_secs(20), "failover took {took:?}");
    assert_eq!(set_up.master_port(), replica);
    let mut conn = set_up.master().connection();
    let value: Option<String> = redis::cmd("GET").arg("k").query(&mut conn).unwrap();
    assert_eq!(value.as_deref(), Some("v"));
    let _: () = redis::cmd("SET")
        .arg("k2")
        .arg("v2")
        .query(&mut conn)
        .unwrap();
    assert_eq!(
        set_up.command_counts("set").keys().collect::<Vec<_>>(),
        [&replica]
    );

    assert_cleaned_up_after_drop(set_up);
}

#[test]
fn a_sentinel_set_up_with_passwords_forms_and_refuses_clients_without_them() {
    let _one = ONE_SET_UP_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let set_up = RedisSentinels::builder()
        .master_name("cache-1")
        .requirepass("data \"pass\"")
        .sentinel_password("sentinel-pass")
        .start();
    assert_eq!(set_up.master_name(), "cache-1");
    assert_eq!(set_up.password(), Some("data \"pass\""));
    assert_eq!(set_up.sentinel_password(), Some("sentinel-pass"));
    assert_eq!(set_up.master_port(), set_up.data_nodes()[0].port());
    for node in set_up.data_nodes().iter().chain(set_up.sentinels()) {
        let anonymous = redis::Client::open(format!("redis://127.0.0.1:{}", node.port())).unwrap();
        let refused = redis::cmd("PING")
            .query::<String>(&mut anonymous.get_connection().unwrap())
            .unwrap_err();
        assert!(
            refused.to_string().contains("NOAUTH"),
            "{}: {refused}",
            node.port()
        );
    }

    assert_cleaned_up_after_drop(set_up);
}

#[test]
fn a_master_name_that_cannot_go_into_sentinel_conf_is_refused() {
    let error = RedisSentinels::builder()
        .master_name("my master")
        .try_start()
        .unwrap_err();
    assert!(error.to_string().contains("\"my master\""), "{error}");
}
