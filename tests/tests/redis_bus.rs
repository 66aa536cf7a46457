//! Issue 12: the near cache's change channel (`Backend::bus`) on real servers: one server,
//! Sentinel and Cluster (sharded pub/sub). A message reaches this process's own
//! subscription and another backend's; namespaces and databases are apart; and every way
//! of losing a subscription (its connection killed, the server restarted, a Sentinel
//! failover, a cluster slot moved or its primary failed over) makes `next` return `Err`,
//! after which subscribing again works. A paused server makes `next` return `Ok(None)` and
//! `publish` fail within the I/O time-outs.
//!
//! Set-ups with several servers run one at a time. `cargo test -p tests --test redis_bus
//! -- --nocapture` prints how long each loss took to be reported.

mod redis_support;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use cache_core::backend::Backend;
use cache_core::bus::{Bus, Subscription};
use cache_redis::{BreakerSettings, RedisBackend};
use tests::RedisServer;
use tests::cluster::RedisCluster;
use tests::sentinel::RedisSentinels;

/// The time-out of each `next` call.
const NEXT: Duration = Duration::from_millis(100);
/// Slack for a machine shared with other test processes, on top of a time-out.
const SLACK: Duration = Duration::from_millis(500);

static ONE_SET_UP_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> MutexGuard<'static, ()> {
    ONE_SET_UP_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

fn bus_of(backend: &RedisBackend, namespace: &str) -> Arc<dyn Bus> {
    Backend::bus(backend, namespace).expect("a Redis backend has a bus")
}

fn single(url: &str) -> RedisBackend {
    RedisBackend::builder()
        .url(url)
        .breaker(BreakerSettings::disabled())
        .build()
        .expect("a valid test URL")
}

/// The next message, waiting at most `within` (in `NEXT` steps).
fn message(subscription: &mut dyn Subscription, within: Duration) -> Vec<u8> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        match subscription.next(NEXT) {
            Ok(Some(message)) => return message,
            Ok(None) => {}
            Err(error) => panic!("the subscription was lost: {error:#}"),
        }
    }
    panic!("no message within {within:?}");
}

/// Nothing arrives for `quiet`.
fn silent(subscription: &mut dyn Subscription, quiet: Duration) {
    let deadline = Instant::now() + quiet;
    while Instant::now() < deadline {
        match subscription.next(NEXT) {
            Ok(None) => {}
            other => panic!("expected silence, got {other:?}"),
        }
    }
}

/// How long `next` took to report the subscription lost (no message may arrive before).
fn lost(subscription: &mut dyn Subscription, within: Duration) -> Duration {
    let started = Instant::now();
    while started.elapsed() < within {
        match subscription.next(NEXT) {
            Ok(None) => {}
            Ok(Some(message)) => panic!("a message on a lost subscription: {message:?}"),
            Err(error) => {
                assert!(error.is_connection(), "{error:#}");
                // Lost for good: never read again.
                assert!(subscription.next(NEXT).is_err());
                return started.elapsed();
            }
        }
    }
    panic!("the subscription was not reported lost within {within:?}");
}

/// A subscription, retried until one is confirmed (a node coming back, a map refreshed).
fn subscribe_eventually(bus: &dyn Bus, within: Duration) -> Box<dyn Subscription> {
    let deadline = Instant::now() + within;
    loop {
        match bus.subscribe() {
            Ok(subscription) => return subscription,
            Err(error) if Instant::now() < deadline => {
                eprintln!("subscribe: {error:#}");
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(error) => panic!("no subscription within {within:?}: {error:#}"),
        }
    }
}

/// Publishes until one succeeds.
fn publish_eventually(bus: &dyn Bus, message: &[u8], within: Duration) {
    let deadline = Instant::now() + within;
    while let Err(error) = bus.publish(message) {
        assert!(
            Instant::now() < deadline,
            "no publish within {within:?}: {error:#}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn channels(server: &RedisServer, command: &str) -> Vec<String> {
    let mut channels: Vec<String> = redis_support::raw(server, redis::cmd("PUBSUB").arg(command));
    channels.sort();
    channels
}

#[test]
fn a_message_reaches_this_and_another_subscription_with_one_publish() {
    let server = RedisServer::start();
    let (one, other) = (single(&server.url()), single(&server.url()));
    let (bus, other_bus) = (bus_of(&one, "app:"), bus_of(&other, "app:"));
    let mut own = bus.subscribe().unwrap();
    let mut theirs = other_bus.subscribe().unwrap();
    assert_eq!(channels(&server, "CHANNELS"), ["app:~near:0"]);

    server.reset_stats();
    bus.publish(b"hello").unwrap();
    other_bus.publish(&[0, 255, b'\n']).unwrap();
    for subscription in [&mut own, &mut theirs] {
        assert_eq!(message(subscription.as_mut(), SLACK), b"hello");
        assert_eq!(message(subscription.as_mut(), SLACK), [0, 255, b'\n']);
        silent(subscription.as_mut(), NEXT);
    }
    assert_eq!(server.command_count("publish"), 2);
    assert_eq!(server.command_count("subscribe"), 0, "no resubscription");
    assert!(!format!("{bus:?}").contains("@"), "{bus:?}");
}

#[test]
fn two_namespaces_and_two_databases_do_not_hear_each_other() {
    let server = RedisServer::start();
    let db0 = single(&server.url());
    let db1 = single(&format!("{}/1", server.url().trim_end_matches("/0")));
    let buses = [bus_of(&db0, "a:"), bus_of(&db0, "b:"), bus_of(&db1, "a:")];
    let mut subscriptions: Vec<_> = buses.iter().map(|bus| bus.subscribe().unwrap()).collect();
    assert_eq!(
        channels(&server, "CHANNELS"),
        ["a:~near:0", "a:~near:1", "b:~near:0"]
    );
    for (sender, bus) in buses.iter().enumerate() {
        bus.publish(format!("from {sender}").as_bytes()).unwrap();
        for (receiver, subscription) in subscriptions.iter_mut().enumerate() {
            if receiver == sender {
                assert_eq!(
                    message(subscription.as_mut(), SLACK),
                    format!("from {sender}").as_bytes()
                );
            } else {
                silent(subscription.as_mut(), NEXT);
            }
        }
    }
}

#[test]
fn a_message_published_right_after_a_read_time_out_is_not_dropped() {
    // The `redis` crate's blocking RESP2 reader takes the first reply after a read
    // time-out for the timed-out request's late answer and drops it; subscriptions speak
    // RESP3, where a message is a push that it never drops, even on a RESP2 backend.
    let server = RedisServer::start();
    for url in [server.url(), format!("{}?protocol=resp3", server.url())] {
        let backend = single(&url);
        let bus = bus_of(&backend, "app:");
        let mut subscription = bus.subscribe().unwrap();
        for n in 0..20u8 {
            assert_eq!(subscription.next(Duration::from_millis(5)).unwrap(), None);
            bus.publish(&[n]).unwrap();
            assert_eq!(message(subscription.as_mut(), SLACK), [n], "{url}");
        }
    }
}

#[test]
fn a_killed_subscriber_connection_is_reported_by_the_next_call_and_subscribing_again_works() {
    let server = RedisServer::start();
    let backend = single(&server.url());
    let bus = bus_of(&backend, "app:");
    let mut subscription = bus.subscribe().unwrap();
    assert_eq!(server.kill_pubsub_clients(), 1);
    let took = lost(subscription.as_mut(), NEXT);
    eprintln!("CLIENT KILL TYPE pubsub reported after {took:?}");
    assert!(took < NEXT + SLACK, "within one next time-out: {took:?}");

    let mut again = bus.subscribe().unwrap();
    bus.publish(b"after").unwrap();
    assert_eq!(message(again.as_mut(), SLACK), b"after");
}

#[test]
fn a_paused_server_gives_no_message_and_publish_and_subscribe_fail_within_the_time_outs() {
    let mut server = RedisServer::start();
    let connect = Duration::from_millis(150);
    let response = Duration::from_millis(150);
    let backend = RedisBackend::builder()
        .url(server.url())
        .connect_timeout(connect)
        .response_timeout(response)
        .breaker(BreakerSettings::disabled())
        .build()
        .unwrap();
    let bus = bus_of(&backend, "app:");
    let mut subscription = bus.subscribe().unwrap();
    bus.publish(b"warm").unwrap();
    assert_eq!(message(subscription.as_mut(), SLACK), b"warm");

    server.pause();
    let started = Instant::now();
    assert!(subscription.next(NEXT).unwrap().is_none());
    assert!(started.elapsed() < NEXT + SLACK, "{:?}", started.elapsed());
    for _ in 0..3 {
        let started = Instant::now();
        let error = bus.publish(b"lost").unwrap_err();
        let took = started.elapsed();
        assert!(error.is_timeout() || error.is_connection(), "{error:#}");
        assert!(took < connect + response + SLACK, "publish took {took:?}");
        let started = Instant::now();
        assert!(bus.subscribe().is_err());
        let took = started.elapsed();
        assert!(took < connect + response + SLACK, "subscribe took {took:?}");
    }
    assert!(subscription.next(NEXT).unwrap().is_none());

    // Resumed: the same subscription hears what is published now, after what the timed-out
    // publishes had written into the paused server's socket (a publish that failed may
    // still be delivered, as with any time-out).
    server.resume();
    publish_eventually(bus.as_ref(), b"resumed", Duration::from_secs(5));
    let mut late = 0;
    loop {
        match message(subscription.as_mut(), SLACK).as_slice() {
            b"resumed" => break,
            b"lost" => late += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(late <= 3, "{late} late messages from 3 failed publishes");
}

#[test]
fn a_restarted_server_loses_the_subscription_and_subscribing_again_works() {
    let mut server = RedisServer::start();
    let backend = single(&server.url());
    let bus = bus_of(&backend, "app:");
    let mut subscription = bus.subscribe().unwrap();
    server.restart();
    let took = lost(subscription.as_mut(), Duration::from_secs(2));
    eprintln!("restart reported after {took:?}");

    let mut again = subscribe_eventually(bus.as_ref(), Duration::from_secs(5));
    publish_eventually(bus.as_ref(), b"after", Duration::from_secs(5));
    assert_eq!(message(again.as_mut(), SLACK), b"after");
}

#[test]
fn an_acl_user_over_tls_subscribes_and_publishes_and_no_secret_shows() {
    let server = match RedisServer::builder()
        .tls()
        .acl_user("near", "near-secret")
        .try_start()
    {
        Ok(server) => server,
        Err(e) => panic!("{e}"),
    };
    let backend = RedisBackend::builder()
        .url(server.url_for_user("near", "near-secret"))
        .tls_root_cert(server.tls_ca_cert().unwrap())
        .build()
        .unwrap();
    let bus = bus_of(&backend, "app:");
    let mut subscription = bus.subscribe().unwrap();
    bus.publish(b"over tls").unwrap();
    assert_eq!(message(subscription.as_mut(), SLACK), b"over tls");
    assert!(!format!("{bus:?}").contains("near-secret"), "{bus:?}");

    let wrong = RedisBackend::builder()
        .url(server.url_for_user("near", "wrong-secret"))
        .tls_root_cert(server.tls_ca_cert().unwrap())
        .build()
        .unwrap();
    let error = bus_of(&wrong, "app:").subscribe().err().unwrap();
    assert!(error.is_authentication(), "{error:#}");
    assert!(
        !format!("{error:#} {error:?}").contains("secret"),
        "{error:?}"
    );
}

#[test]
fn an_acl_user_needs_the_channel_and_gets_a_permission_error_without_it() {
    let server = RedisServer::start();
    let setuser = |rules: &[&str]| {
        let _: () = redis_support::raw(
            &server,
            redis::cmd("ACL").arg("SETUSER").arg("limited").arg(rules),
        );
    };
    // Keys and commands, but no channel (`resetchannels` is Redis 7's default for users).
    setuser(&["on", ">limited-pw", "~*", "+@all", "resetchannels"]);
    let backend = single(&server.url_for_user("limited", "limited-pw"));
    let bus = bus_of(&backend, "app:");
    let error = bus.subscribe().err().unwrap();
    assert!(error.is_permission(), "{error:#}");
    assert!(error.to_string().contains("SUBSCRIBE"), "{error}");
    assert!(bus.publish(b"x").unwrap_err().is_permission());

    setuser(&["&app:~near:*"]);
    let mut subscription = bus.subscribe().unwrap();
    bus.publish(b"allowed").unwrap();
    assert_eq!(message(subscription.as_mut(), SLACK), b"allowed");
}

fn sentinel_backend(set_up: &RedisSentinels) -> RedisBackend {
    let mut builder = RedisBackend::builder().master_name(set_up.master_name());
    for addr in set_up.sentinel_addrs() {
        builder = builder.sentinel(addr);
    }
    builder.build().expect("valid Sentinel settings")
}

#[test]
fn sentinel_publishes_on_the_master_and_a_failover_loses_the_subscription_until_resubscribed() {
    let _one = one_at_a_time();
    let set_up = RedisSentinels::start();
    let (one, other) = (sentinel_backend(&set_up), sentinel_backend(&set_up));
    let (bus, other_bus) = (bus_of(&one, "app:"), bus_of(&other, "app:"));
    let mut own = subscribe_eventually(bus.as_ref(), Duration::from_secs(5));
    let mut theirs = subscribe_eventually(other_bus.as_ref(), Duration::from_secs(5));
    let old = set_up.master_port();
    set_up.reset_stats();
    bus.publish(b"before").unwrap();
    assert_eq!(message(own.as_mut(), SLACK), b"before");
    assert_eq!(message(theirs.as_mut(), SLACK), b"before");
    assert_eq!(set_up.command_counts("publish")[&old], 1);

    let _: () = redis::cmd("SENTINEL")
        .arg("FAILOVER")
        .arg(set_up.master_name())
        .query(&mut set_up.sentinels()[0].connection())
        .unwrap();
    let started = Instant::now();
    let took = lost(own.as_mut(), Duration::from_secs(20));
    eprintln!("Sentinel failover reported after {took:?}");
    let new = one.sentinel_master().expect("a master");
    assert_ne!(new, format!("127.0.0.1:{old}"));
    let new: u16 = new.rsplit_once(':').unwrap().1.parse().unwrap();

    let mut again = subscribe_eventually(bus.as_ref(), Duration::from_secs(5));
    set_up.reset_stats();
    publish_eventually(bus.as_ref(), b"after", Duration::from_secs(5));
    assert_eq!(message(again.as_mut(), SLACK), b"after");
    assert!(set_up.command_counts("publish")[&new] >= 1);
    assert!(started.elapsed() < Duration::from_secs(30));
    // The other backend follows the switch too.
    lost(theirs.as_mut(), Duration::from_secs(20));
}

#[test]
fn sentinel_master_paused_and_failed_over_loses_the_subscription_without_any_publish() {
    let _one = one_at_a_time();
    let mut set_up = RedisSentinels::start();
    let backend = sentinel_backend(&set_up);
    let bus = bus_of(&backend, "app:");
    let mut subscription = subscribe_eventually(bus.as_ref(), Duration::from_secs(5));
    let old = set_up.master_port();
    set_up.master().wait_for_replicas(1);
    // Hung, not dead: the subscription's connection stays open. The backend's watcher
    // follows `+switch-master`, and the next `next` after that reports the loss.
    set_up.data_node_mut(old).pause();
    let took = lost(subscription.as_mut(), Duration::from_secs(30));
    eprintln!("paused Sentinel master's failover reported after {took:?}");
    let new = backend.sentinel_master().expect("a master");
    assert_ne!(new, format!("127.0.0.1:{old}"));
    let mut again = subscribe_eventually(bus.as_ref(), Duration::from_secs(5));
    publish_eventually(bus.as_ref(), b"after", Duration::from_secs(5));
    assert_eq!(message(again.as_mut(), SLACK), b"after");
    set_up.data_node_mut(old).resume();
}

fn cluster_backend(cluster: &RedisCluster) -> RedisBackend {
    RedisBackend::builder()
        .cluster(cluster.seed_list())
        .build()
        .expect("a valid cluster")
}

/// The count of `command` on each running node that ran it at least once.
fn ran(cluster: &RedisCluster, command: &str) -> Vec<(u16, u64)> {
    cluster
        .command_counts(command)
        .into_iter()
        .filter(|(_, count)| *count > 0)
        .collect()
}

fn cluster_raw<T: redis::FromRedisValue>(
    cluster: &RedisCluster,
    port: u16,
    cmd: &mut redis::Cmd,
) -> T {
    cmd.query(&mut cluster.node(port).connection())
        .expect("raw command succeeds")
}

/// Moves `slot` from `from` to `to` (it holds no key: channels are not keys).
fn move_slot(cluster: &RedisCluster, slot: u16, from: u16, to: u16) {
    let id =
        |port: u16| -> String { cluster_raw(cluster, port, redis::cmd("CLUSTER").arg("MYID")) };
    let (from_id, to_id) = (id(from), id(to));
    let setslot = |port: u16, state: &str, node: &str| {
        let _: () = cluster_raw(
            cluster,
            port,
            redis::cmd("CLUSTER")
                .arg("SETSLOT")
                .arg(slot)
                .arg(state)
                .arg(node),
        );
    };
    setslot(to, "IMPORTING", &from_id);
    setslot(from, "MIGRATING", &to_id);
    for shard in cluster.shards() {
        setslot(shard.primary, "NODE", &to_id);
    }
}

#[test]
fn cluster_spublish_and_ssubscribe_go_to_the_slot_owner_and_a_moved_slot_loses_the_subscription() {
    let _one = one_at_a_time();
    let cluster = RedisCluster::builder().replicas_per_primary(0).start();
    let (one, other) = (cluster_backend(&cluster), cluster_backend(&cluster));
    let (bus, other_bus) = (bus_of(&one, "app:"), bus_of(&other, "app:"));
    let channel = "app:~near:0";
    let owner = cluster.shard_of(channel).primary;
    cluster.reset_stats();
    let mut own = bus.subscribe().unwrap();
    let mut theirs = other_bus.subscribe().unwrap();
    bus.publish(b"sharded").unwrap();
    assert_eq!(message(own.as_mut(), SLACK), b"sharded");
    assert_eq!(message(theirs.as_mut(), SLACK), b"sharded");
    assert_eq!(ran(&cluster, "ssubscribe"), [(owner, 2)]);
    assert_eq!(ran(&cluster, "spublish"), [(owner, 1)]);
    assert!(
        ran(&cluster, "publish").is_empty(),
        "no cluster-wide PUBLISH"
    );

    // The channel's slot moves to another primary: the old owner unsubscribes its
    // subscribers, and subscribing again follows the `MOVED` answer.
    let slot = cluster.slot_of(channel);
    let to = cluster
        .shards()
        .iter()
        .map(|shard| shard.primary)
        .find(|port| *port != owner)
        .unwrap();
    move_slot(&cluster, slot, owner, to);
    let took = lost(own.as_mut(), Duration::from_secs(5));
    eprintln!("slot move reported after {took:?}");
    lost(theirs.as_mut(), Duration::from_secs(5));

    cluster.reset_stats();
    let mut again = bus.subscribe().unwrap();
    assert_eq!(cluster.node(to).command_count("ssubscribe"), 1);
    bus.publish(b"moved").unwrap();
    assert_eq!(message(again.as_mut(), SLACK), b"moved");
    assert_eq!(cluster.node(to).command_count("spublish"), 1);
}

#[test]
fn cluster_primary_killed_or_paused_and_failed_over_loses_the_subscription_until_resubscribed() {
    let _one = one_at_a_time();
    let mut cluster = RedisCluster::start();
    let backend = cluster_backend(&cluster);
    let bus = bus_of(&backend, "app:");
    let channel = "app:~near:0";

    // Killed: its connection closes, which the next call reports.
    let mut subscription = bus.subscribe().unwrap();
    cluster.kill_primary_of(channel);
    let took = lost(subscription.as_mut(), Duration::from_secs(2));
    eprintln!("primary kill reported after {took:?}");
    let failover = cluster.wait_for_failover();
    eprintln!("failover after {failover:?}");
    let mut again = subscribe_eventually(bus.as_ref(), Duration::from_secs(10));
    publish_eventually(bus.as_ref(), b"promoted", Duration::from_secs(10));
    assert_eq!(message(again.as_mut(), SLACK), b"promoted");

    // Paused: the connection stays open; once the cluster promoted a replica and the
    // backend's map says so (its failed publishes refresh it), the subscription is lost.
    // On a namespace whose channel is on a primary that still has a replica.
    let (bus, channel) = (0..)
        .map(|n| format!("p{n}:"))
        .find_map(|namespace| {
            let channel = format!("{namespace}~near:0");
            let shard = cluster.shard_of(&channel);
            (!shard.replicas.is_empty()).then(|| (bus_of(&backend, &namespace), channel))
        })
        .unwrap();
    let mut again = subscribe_eventually(bus.as_ref(), Duration::from_secs(10));
    cluster.pause_primary_of(&channel);
    cluster.wait_for_failover();
    let started = Instant::now();
    let mut reported = None;
    while started.elapsed() < Duration::from_secs(10) {
        let _ = bus.publish(b"heartbeat");
        match again.next(NEXT) {
            Ok(_) => {}
            Err(error) => {
                assert!(error.is_connection(), "{error:#}");
                reported = Some(started.elapsed());
                break;
            }
        }
    }
    let reported = reported.expect("the paused primary's subscription was reported lost");
    eprintln!("paused primary's failover reported {reported:?} after the promotion");
    let mut third = subscribe_eventually(bus.as_ref(), Duration::from_secs(10));
    publish_eventually(bus.as_ref(), b"again", Duration::from_secs(10));
    assert_eq!(message(third.as_mut(), SLACK), b"again");
}

/// A running `near_node` process and the lines it prints.
struct Node {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    /// Lines read but not expected yet, in order.
    pending: Vec<String>,
}

impl Node {
    fn start(url: &str, namespace: &str) -> Self {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_near_node"))
            .args(["--url", url, "--namespace", namespace])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("near_node starts");
        let stdout = child.stdout.take().unwrap();
        let (send, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead as _;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let _ = send.send(line);
            }
        });
        Self {
            child,
            lines,
            pending: Vec::new(),
        }
    }

    fn command(&mut self, line: &str) {
        use std::io::Write as _;
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// The first line not expected yet that starts with `prefix`, within 10 s.
    fn expect(&mut self, prefix: &str) -> String {
        if let Some(at) = self.pending.iter().position(|l| l.starts_with(prefix)) {
            return self.pending.remove(at);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(line) => self.pending.push(line),
                Err(_) => panic!("near_node printed no `{prefix}` line: {:?}", self.pending),
            }
        }
    }
}

#[test]
fn two_near_node_processes_hear_each_other_and_report_a_killed_subscription() {
    let server = RedisServer::start();
    let mut nodes = [
        Node::start(&server.url(), "app:"),
        Node::start(&server.url(), "app:"),
    ];
    for node in &mut nodes {
        node.expect("ready");
    }
    nodes[0].command("publish hello from 0");
    nodes[0].expect("published ");
    for node in &mut nodes {
        let line = node.expect("received ");
        let (stamp, text) = line["received ".len()..].split_once(' ').unwrap();
        assert!(stamp.parse::<u128>().is_ok(), "{line}");
        assert_eq!(text, "hello from 0");
    }
    server.kill_pubsub_clients();
    for node in &mut nodes {
        node.expect("lost ");
        node.expect("ready");
    }
    nodes[1].command("publish again");
    assert!(nodes[0].expect("received ").ends_with(" again"));
    for node in &mut nodes {
        node.command("quit");
        assert!(node.child.wait().unwrap().success());
    }
}
