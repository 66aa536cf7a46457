//! The near cache's staleness bound across real processes: a writer process changes a value
//! (write-through, acknowledged once Redis has it), a reader process serves it from its near
//! tier about 10,000 times a second, and no read after `acknowledgement + bound` returns an
//! older value, with and without faults: the subscriber's connection killed, Redis paused
//! for longer than the bound, Redis restarted, messages dropped on purpose.
//!
//! Each test prints the invalidation latency distribution (time from a change's
//! acknowledgement to the reader's first read of it) with `--nocapture`.

use std::io::{BufRead, BufReader, Write as _};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tests::RedisServer;
use tests::cluster::RedisCluster;
use tests::sentinel::RedisSentinels;

const NODE: &str = env!("CARGO_BIN_EXE_near_instance");
/// The default staleness bound, which the nodes use.
const BOUND_US: u128 = 1_000_000;

struct Node {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
}

impl Node {
    fn start(server: &RedisServer, role: &str, deployment: Option<&str>) -> Self {
        let mut child = Command::new(NODE)
            .args([server.url().as_str(), role])
            .args(deployment)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("near_instance starts");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            stdin,
            lines,
        }
    }

    fn send(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").expect("the node reads stdin");
        self.stdin.flush().unwrap();
    }

    fn line(&self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(10))
            .expect("the node answers within 10 s")
    }
}

/// What a run produced: the writer's acknowledgements and the reader's runs of results.
struct Run {
    /// (value, acknowledged at, µs since the epoch), in order.
    acks: Vec<(u64, u128)>,
    /// (value or none for a failed call, first served, last served).
    served: Vec<(Option<u64>, u128, u128)>,
    near_hits: u64,
}

impl Run {
    /// Reads after `ack(n) + bound` that returned a value older than `n`.
    fn violations(&self) -> Vec<String> {
        let mut found = Vec::new();
        for &(value, first, last) in &self.served {
            let Some(value) = value else { continue };
            // The first acknowledged change that superseded `value`.
            let next = self.acks.partition_point(|&(n, _)| n <= value);
            if let Some(&(n, at)) = self.acks.get(next)
                && last > at + BOUND_US
            {
                found.push(format!(
                    "served {value} until {} ms after {n} was acknowledged (first {first}, last {last})",
                    (last - at) / 1000
                ));
            }
        }
        found
    }

    /// Per acknowledged change: µs from its acknowledgement to the reader's first read of it
    /// or of a newer value (0 when the reader had it before the acknowledgement).
    fn latencies(&self) -> Vec<u128> {
        let mut latencies = Vec::new();
        for &(n, at) in &self.acks {
            let seen = self
                .served
                .iter()
                .filter(|(v, _, last)| v.is_some_and(|v| v >= n) && *last >= at)
                .map(|&(_, first, _)| first)
                .min();
            if let Some(seen) = seen {
                latencies.push(seen.saturating_sub(at));
            }
        }
        latencies.sort_unstable();
        latencies
    }

    fn report(&self, name: &str) {
        let latencies = self.latencies();
        let at = |q: f64| match latencies.len() {
            0 => f64::NAN,
            n => latencies[((n - 1) as f64 * q) as usize] as f64 / 1000.0,
        };
        println!(
            "{name}: {} changes acknowledged, {} seen by the reader; latency median {:.2} ms, \
             p99 {:.2} ms, max {:.2} ms; reader near hits {}",
            self.acks.len(),
            latencies.len(),
            at(0.5),
            at(0.99),
            at(1.0),
            self.near_hits
        );
    }
}

/// Runs `changes` write-through changes, calling `fault(i, server, writer)` before each.
fn run(changes: u64, fault: impl FnMut(u64, &mut RedisServer, &mut Node)) -> Run {
    run_on(None, changes, fault)
}

/// [`run`] with the cache on `deployment` (`cluster=..`, `sentinel=..`; the truth stays on a
/// server of its own).
fn run_on(
    deployment: Option<&str>,
    changes: u64,
    mut fault: impl FnMut(u64, &mut RedisServer, &mut Node),
) -> Run {
    let mut server = RedisServer::start();
    let mut writer = Node::start(&server, "writer", deployment);
    writer.send("bump 0");
    assert!(writer.line().starts_with("ack 0 "));
    let mut reader = Node::start(&server, "reader", deployment);
    assert_eq!(reader.line(), "ready");
    // Let the reader subscribe and serve from its near tier before the run.
    std::thread::sleep(Duration::from_millis(500));
    let mut acks = Vec::new();
    for n in 1..=changes {
        fault(n, &mut server, &mut writer);
        writer.send(&format!("bump {n}"));
        let answer = writer.line();
        if let Some(rest) = answer.strip_prefix("ack ") {
            let (_, at) = rest.split_once(' ').unwrap();
            acks.push((n, at.parse().unwrap()));
        } else {
            assert_eq!(answer, format!("err {n}"));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    // The last change's bound passes before the reader stops.
    std::thread::sleep(Duration::from_micros(BOUND_US as u64 + 200_000));
    reader.send("quit");
    let mut served = Vec::new();
    let near_hits = loop {
        let line = reader.line();
        let words: Vec<&str> = line.split_whitespace().collect();
        match words[..] {
            ["served", value, first, last] => served.push((
                value.parse().ok(),
                first.parse().unwrap(),
                last.parse().unwrap(),
            )),
            ["near_hits", n] => break n.parse().unwrap(),
            _ => panic!("unexpected reader line {line}"),
        }
    };
    writer.send("quit");
    for node in [&mut writer, &mut reader] {
        let deadline = Instant::now() + Duration::from_secs(10);
        while node.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "the node exits after quit");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    Run {
        acks,
        served,
        near_hits,
    }
}

fn assert_bound_held(run: &Run, name: &str) {
    run.report(name);
    let violations = run.violations();
    assert!(
        violations.is_empty(),
        "{} violations: {violations:#?}",
        violations.len()
    );
    assert!(
        run.near_hits > 1_000,
        "the reader served from its near tier"
    );
}

#[test]
fn a_change_in_one_process_is_not_served_by_another_after_the_bound() {
    let run = run(1_000, |_, _, _| {});
    assert_bound_held(&run, "no fault");
    assert_eq!(run.acks.len(), 1_000, "every change acknowledged");
    let latencies = run.latencies();
    assert!(latencies.len() > 900, "the reader saw most changes");
}

#[test]
fn killing_the_subscriber_connection_keeps_the_bound() {
    let run = run(600, |n, server, _| {
        if n % 100 == 50 {
            server.kill_pubsub_clients();
        }
    });
    assert_bound_held(&run, "CLIENT KILL TYPE pubsub every 100 changes");
}

#[test]
fn pausing_redis_for_longer_than_the_bound_keeps_the_bound() {
    let mut paused_at: Option<Instant> = None;
    let run = run(600, |n, server, _| {
        if n == 200 {
            server.pause();
            paused_at = Some(Instant::now());
        }
        if paused_at.is_some_and(|at| at.elapsed() > Duration::from_micros(BOUND_US as u64 * 5 / 2))
        {
            server.resume();
            paused_at = None;
        }
    });
    assert_bound_held(&run, "Redis paused (SIGSTOP) for 2.5 times the bound");
}

#[test]
fn restarting_redis_keeps_the_bound() {
    let run = run(600, |n, server, _| {
        if n == 300 {
            server.restart();
        }
    });
    assert_bound_held(&run, "Redis restarted");
}

#[test]
fn dropped_messages_keep_the_bound() {
    let run = run(600, |n, _, writer| {
        if n % 50 == 0 {
            writer.send("drop 1");
            assert_eq!(writer.line(), "dropped");
        }
    });
    assert_bound_held(&run, "one announcement in 50 dropped");
}

#[test]
fn on_a_cluster_a_change_is_not_served_after_the_bound_and_killed_subscribers_keep_it() {
    let cluster = RedisCluster::builder().replicas_per_primary(0).start();
    let deployment = format!("cluster={}", cluster.seed_list());
    let run = run_on(Some(&deployment), 400, |n, _, _| {
        if n % 100 == 50 {
            for node in cluster.nodes() {
                node.kill_pubsub_clients();
            }
        }
    });
    assert_bound_held(
        &run,
        "Cluster (sharded pub/sub), CLIENT KILL TYPE pubsub every 100 changes",
    );
}

#[test]
fn on_sentinel_a_change_is_not_served_after_the_bound() {
    let set_up = RedisSentinels::start();
    let deployment = format!(
        "sentinel={}/{}",
        set_up.sentinel_addrs().join(","),
        set_up.master_name()
    );
    let run = run_on(Some(&deployment), 400, |_, _, _| {});
    assert_bound_held(&run, "Sentinel");
}
