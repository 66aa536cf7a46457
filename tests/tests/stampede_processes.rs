//! Cross-process single flight: several worker processes share one redis-server, and a lease
//! makes exactly one caller among all of them compute.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tests::RedisServer;

const WORKER: &str = env!("CARGO_BIN_EXE_stampede_worker");

fn worker(server: &RedisServer, callers: usize, body_ms: u64, lease_ms: u64) -> Child {
    worker_in(server, callers, body_ms, lease_ms, "api")
}

fn worker_in(
    server: &RedisServer,
    callers: usize,
    body_ms: u64,
    lease_ms: u64,
    mode: &str,
) -> Child {
    Command::new(WORKER)
        .args([
            server.url(),
            callers.to_string(),
            body_ms.to_string(),
            lease_ms.to_string(),
            mode.to_owned(),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("the worker starts")
}

/// How many times the worker's body ran, from its `done N` line.
fn runs(child: Child) -> usize {
    let output = child.wait_with_output().expect("the worker ends");
    assert!(output.status.success(), "worker failed: {output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let done = stdout
        .lines()
        .find_map(|l| l.strip_prefix("done "))
        .expect("a done line");
    done.parse().unwrap()
}

#[test]
fn four_processes_of_25_callers_run_a_cold_body_once() {
    let server = RedisServer::start();
    let workers: Vec<_> = (0..4).map(|_| worker(&server, 25, 200, 5_000)).collect();
    let total: usize = workers.into_iter().map(runs).sum();
    assert_eq!(total, 1, "one computation for 100 callers in 4 processes");
    let mut redis = server.connection();
    let lease: bool = redis::cmd("EXISTS")
        .arg("cache:cold:~lease")
        .query(&mut redis)
        .unwrap();
    assert!(!lease, "the holder released its lease (compare-and-delete)");
}

#[test]
fn the_memoize_lease_option_does_the_same() {
    let server = RedisServer::start();
    let workers: Vec<_> = (0..4)
        .map(|_| worker_in(&server, 25, 200, 5_000, "memoize"))
        .collect();
    let total: usize = workers.into_iter().map(runs).sum();
    assert_eq!(total, 1, "one computation for 100 callers in 4 processes");
    server.reset_stats();
    let hit = worker_in(&server, 1, 200, 5_000, "memoize");
    assert_eq!(runs(hit), 0);
    assert_eq!(
        server.command_count("get"),
        1,
        "a plain hit is still one GET"
    );
    assert_eq!(server.command_count("set"), 0);
}

#[test]
fn when_the_holder_dies_the_body_runs_again_once() {
    let server = RedisServer::start();
    // The holder: one caller whose body takes far longer than the lease.
    let mut holder = worker(&server, 1, 30_000, 1_000);
    let mut lines = BufReader::new(holder.stdout.take().unwrap()).lines();
    assert_eq!(
        lines.next().unwrap().unwrap(),
        "computing",
        "the holder took the lease"
    );
    let others: Vec<_> = (0..3).map(|_| worker(&server, 33, 200, 1_000)).collect();
    std::thread::sleep(Duration::from_millis(200));
    holder.kill().unwrap();
    let _ = holder.wait();
    let started = Instant::now();
    let total: usize = others.into_iter().map(runs).sum();
    assert_eq!(total, 1, "after the lease expired, one waiter took over");
    assert!(started.elapsed() < Duration::from_secs(20));
}

/// Run with `cargo test -p tests --test stampede_processes -- --ignored --nocapture`.
///
/// How long after the holder's body ended do callers waiting on its lease in another process
/// return: polling (`api`) against woken by the near cache's change channel (`near-api`).
#[test]
#[ignore = "a measurement; prints figures"]
fn measure_how_soon_waiters_in_another_process_get_the_holders_value() {
    for mode in ["api", "near-api"] {
        let mut delays = Vec::new();
        for _ in 0..10 {
            let server = RedisServer::start();
            let mut holder = worker_in(&server, 1, 300, 5_000, mode);
            let mut lines = BufReader::new(holder.stdout.take().unwrap()).lines();
            assert_eq!(lines.next().unwrap().unwrap(), "computing");
            let waiters = worker_in(&server, 7, 300, 5_000, mode);
            let computed: u128 = lines
                .by_ref()
                .map(|l| l.unwrap())
                .find_map(|l| l.strip_prefix("computed ").map(|t| t.parse().unwrap()))
                .expect("the holder's body ends");
            lines.for_each(drop);
            let output = waiters.wait_with_output().unwrap();
            let stdout = String::from_utf8(output.stdout).unwrap();
            assert!(
                stdout.contains("done 0"),
                "the waiters did not compute: {stdout}"
            );
            for returned in stdout.lines().filter_map(|l| l.strip_prefix("returned ")) {
                let returned: u128 = returned.parse().unwrap();
                delays.push(returned.saturating_sub(computed) as f64 / 1000.0);
            }
            holder.wait().unwrap();
        }
        delays.sort_by(f64::total_cmp);
        eprintln!(
            "{mode}: {} waiters in another process, delay after the body's end: median {:.1} ms, max {:.1} ms",
            delays.len(),
            delays[delays.len() / 2],
            delays[delays.len() - 1]
        );
    }
}
