//! Issue 11: the Sentinel deployment on real local set-ups (a master, a replica and 3
//! Sentinels, started by the harness): the single-server guarantees (one `GET` per hit on
//! the master, scoped clear, fail-open, secrets), a switch followed through
//! `+switch-master` without any caller error, and failover under load.
//!
//! The tests take a lock so that two set-ups never fail over side by side on a small
//! machine. `cargo test -p tests --test redis_sentinel -- --nocapture` prints the figures.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use cache_core::config::Config;
use cache_core::{Cache, memoize};
use cache_redis::RedisBackend;
use tests::Late;
use tests::sentinel::RedisSentinels;

static ONE_SET_UP_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_SET_UP_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// A Sentinel backend on `set_up`, with the default time-outs and breaker.
fn backend(set_up: &RedisSentinels) -> RedisBackend {
    let mut builder = RedisBackend::builder().master_name(set_up.master_name());
    for addr in set_up.sentinel_addrs() {
        builder = builder.sentinel(addr);
    }
    builder.build().expect("valid Sentinel settings")
}

fn cache_on(backend: RedisBackend, ns: &str) -> Cache {
    Cache::builder()
        .backend(backend)
        .namespace(ns)
        .default_timeout(Duration::from_secs(60))
        .build()
        .expect("a valid cache")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap()
}

/// Waits until the replica acknowledged every write the master took.
fn replicate(set_up: &RedisSentinels) {
    set_up.master().wait_for_replicas(1);
}

/// How many clients of the running Sentinels hold a subscription.
fn subscribed_clients(set_up: &RedisSentinels) -> usize {
    set_up
        .sentinels()
        .iter()
        .filter(|sentinel| sentinel.pid().is_some())
        .map(subscribed_on)
        .sum()
}

/// How many clients of `sentinel` hold a subscription (`sub=` in `CLIENT LIST`).
fn subscribed_on(sentinel: &tests::RedisServer) -> usize {
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query(&mut sentinel.connection())
        .unwrap();
    list.lines()
        .filter(|line| {
            line.split(' ')
                .any(|f| f.starts_with("sub=") && f != "sub=0")
        })
        .count()
}

fn eventually(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

static ESSENTIALS: Late = Late(OnceLock::new());
static SQUARE_RUNS: AtomicUsize = AtomicUsize::new(0);
static DOUBLE_RUNS: AtomicUsize = AtomicUsize::new(0);

#[memoize(cache = ESSENTIALS, timeout = 60)]
fn square(n: u64) -> u64 {
    SQUARE_RUNS.fetch_add(1, Ordering::SeqCst);
    n * n
}

#[memoize(cache = ESSENTIALS, timeout = 60)]
async fn double(n: u64) -> u64 {
    DOUBLE_RUNS.fetch_add(1, Ordering::SeqCst);
    n * 2
}

#[test]
fn a_hit_is_one_get_on_the_master_reads_follow_writes_and_clear_keeps_foreign_keys() {
    let _one = one_at_a_time();
    let mut set_up = RedisSentinels::start();
    let (master, replica) = (set_up.data_nodes()[0].port(), set_up.data_nodes()[1].port());
    let backend = backend(&set_up);
    assert_eq!(backend.sentinel_master(), None, "building does not connect");
    let _ = ESSENTIALS.0.set(cache_on(backend.clone(), "app:"));
    let other = cache_on(backend.clone(), "other:");
    let rt = runtime();

    for n in 0..10 {
        assert_eq!(square(n), n * n);
        assert_eq!(rt.block_on(double(n)), n * 2);
    }
    assert_eq!(
        backend.sentinel_master(),
        Some(format!("127.0.0.1:{master}"))
    );
    assert_eq!(
        (
            SQUARE_RUNS.load(Ordering::SeqCst),
            DOUBLE_RUNS.load(Ordering::SeqCst)
        ),
        (10, 10)
    );
    replicate(&set_up);

    set_up.reset_stats();
    for n in 0..10 {
        assert_eq!(square(n), n * n);
        assert_eq!(rt.block_on(double(n)), n * 2);
    }
    assert_eq!(SQUARE_RUNS.load(Ordering::SeqCst), 10, "sync hits");
    assert_eq!(DOUBLE_RUNS.load(Ordering::SeqCst), 10, "async hits");
    let gets = set_up.command_counts("get");
    assert_eq!(gets[&master], 20, "one GET per hit, on the master");
    assert_eq!(gets[&replica], 0, "no read goes to the replica");
    assert_eq!(set_up.command_counts("set")[&master], 0);

    // A read right after a write never misses: both go to the master.
    for i in 0..50 {
        let key = format!("fresh-{i}");
        ESSENTIALS.blocking().set(&key, &i).unwrap();
        assert_eq!(ESSENTIALS.blocking().get::<i32>(&key).unwrap(), Some(i));
        let key = format!("fresh-async-{i}");
        rt.block_on(async {
            ESSENTIALS.set(&key, &i).await.unwrap();
            assert_eq!(ESSENTIALS.get::<i32>(&key).await.unwrap(), Some(i));
        });
    }

    // clear() removes this namespace only, on the master and (replicated) the replica.
    other.blocking().set("kept", &1).unwrap();
    let _: () = redis::cmd("SET")
        .arg("foreign")
        .arg("x")
        .query(&mut set_up.master().connection())
        .unwrap();
    assert_eq!(ESSENTIALS.blocking().clear().unwrap(), 120);
    replicate(&set_up);
    for node in set_up.data_nodes() {
        assert_eq!(
            node.dbsize(),
            2,
            "node {}: other:kept and foreign",
            node.port()
        );
    }
    assert_eq!(other.blocking().get::<i32>("kept").unwrap(), Some(1));
    assert_eq!(rt.block_on(other.clear()).unwrap(), 1);
    assert_eq!(set_up.master().dbsize(), 1, "foreign survives");

    // Fail-open: a paused master costs misses, not errors, and one time-out per call.
    set_up.data_node_mut(master).pause();
    let started = Instant::now();
    assert_eq!(square(1000), 1_000_000);
    assert_eq!(rt.block_on(double(1000)), 2000);
    let took = started.elapsed();
    eprintln!("two calls on a paused master: {:.3} s", took.as_secs_f64());
    assert!(took < Duration::from_millis(1500), "{took:?}");
    set_up.data_node_mut(master).resume();

    // The watcher is the one subscribed client; dropping the backend ends it.
    assert_eq!(subscribed_clients(&set_up), 1);
    drop((backend, other));
    let cache = ESSENTIALS.0.get().unwrap();
    assert!(format!("{cache:?}").contains("Sentinel master `mymaster`"));
    // The static cache still holds its backend: the watcher stays until that goes too,
    // shown with a backend of its own.
    let own = crate::backend(&set_up);
    let own_cache = cache_on(own.clone(), "own:");
    own_cache.blocking().set("k", &1).unwrap();
    assert!(eventually(Duration::from_secs(5), || subscribed_clients(
        &set_up
    ) == 2));
    drop((own, own_cache));
    assert!(
        eventually(Duration::from_secs(2), || subscribed_clients(&set_up) == 1),
        "the dropped backend's watcher ended"
    );
}

static TRIPLE_RUNS: AtomicUsize = AtomicUsize::new(0);
static NOWHERE: Late = Late(OnceLock::new());

#[memoize(cache = NOWHERE, timeout = 60)]
fn triple(n: u64) -> u64 {
    TRIPLE_RUNS.fetch_add(1, Ordering::SeqCst);
    n * 3
}

#[memoize(cache = NOWHERE, timeout = 60)]
async fn triple_async(n: u64) -> u64 {
    TRIPLE_RUNS.fetch_add(1, Ordering::SeqCst);
    n * 3
}

#[test]
fn without_a_reachable_sentinel_calls_fail_open_within_one_time_out() {
    // Ports nothing listens on (a fresh listener's port, closed again).
    let closed: Vec<String> = (0..3)
        .map(|_| {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            format!("127.0.0.1:{}", listener.local_addr().unwrap().port())
        })
        .collect();
    let mut builder = RedisBackend::builder();
    for addr in &closed {
        builder = builder.sentinel(addr);
    }
    let _ = NOWHERE.0.set(cache_on(builder.build().unwrap(), "app:"));
    let rt = runtime();
    let mut slowest = Duration::ZERO;
    for n in 0..20 {
        let started = Instant::now();
        assert_eq!(triple(n), n * 3);
        assert_eq!(rt.block_on(triple_async(n)), n * 3);
        slowest = slowest.max(started.elapsed());
    }
    assert_eq!(
        TRIPLE_RUNS.load(Ordering::SeqCst),
        40,
        "every call ran its body"
    );
    assert!(NOWHERE.stats().errors >= 40, "{:?}", NOWHERE.stats());
    eprintln!("slowest pair of calls without Sentinels: {slowest:?}");
    assert!(slowest < Duration::from_secs(1), "{slowest:?}");
    let err = NOWHERE.blocking().get::<u64>("k").unwrap_err();
    assert!(err.is_connection(), "{err:#}");
}

static SWITCH: Late = Late(OnceLock::new());
static HALVE_RUNS: AtomicUsize = AtomicUsize::new(0);

#[memoize(cache = SWITCH, timeout = 60)]
fn halve(n: u64) -> u64 {
    HALVE_RUNS.fetch_add(1, Ordering::SeqCst);
    n / 2
}

#[test]
fn a_switch_announced_with_switch_master_is_followed_without_a_call_or_an_error() {
    let _one = one_at_a_time();
    let set_up = RedisSentinels::start();
    let (old, new) = (set_up.data_nodes()[0].port(), set_up.data_nodes()[1].port());
    let backend = backend(&set_up);
    let _ = SWITCH.0.set(cache_on(backend.clone(), "app:"));
    for n in 0..10 {
        assert_eq!(halve(n), n / 2);
    }
    assert_eq!(backend.sentinel_master(), Some(format!("127.0.0.1:{old}")));
    replicate(&set_up);

    // A manual failover: the old master stays up (as a replica) and answers reads, so no
    // call could notice the switch by an error; and no call is made until it is followed.
    let _: () = redis::cmd("SENTINEL")
        .arg("FAILOVER")
        .arg(set_up.master_name())
        .query(&mut set_up.sentinels()[0].connection())
        .unwrap();
    let started = Instant::now();
    assert!(
        eventually(Duration::from_secs(20), || {
            backend.sentinel_master() == Some(format!("127.0.0.1:{new}"))
        }),
        "the backend still sends to {:?}",
        backend.sentinel_master()
    );
    eprintln!(
        "+switch-master followed {:.2} s after SENTINEL FAILOVER",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(set_up.master_port(), new);

    set_up.reset_stats();
    for n in 0..10 {
        assert_eq!(halve(n), n / 2);
    }
    assert_eq!(
        HALVE_RUNS.load(Ordering::SeqCst),
        10,
        "hits on the new master"
    );
    let gets = set_up.command_counts("get");
    assert_eq!((gets[&new], gets[&old]), (10, 0), "{gets:?}");
    assert_eq!(halve(100), 50);
    assert_eq!(
        set_up.command_counts("set")[&new],
        1,
        "the miss stored on the new master"
    );
    assert_eq!(SWITCH.stats().errors, 0, "no call met an error");
}

static LOAD: Late = Late(OnceLock::new());

/// Known answers for the load test, as a `Result` so that an error could surface.
#[memoize(cache = LOAD, timeout = 300)]
async fn answer(n: u64) -> Result<u64, String> {
    Ok(n * 7 + 1)
}

/// What the callers saw.
#[derive(Debug, Default)]
struct Seen {
    calls: u64,
    wrong: u64,
    errors: u64,
    /// The longest call that started after the kill.
    longest_after_kill: Duration,
}

impl Seen {
    /// One call for `n` that started at `started` and returned `result`.
    fn record(&mut self, n: u64, result: Result<u64, String>, started: Instant, kill: &Kill) {
        let took = started.elapsed();
        self.calls += 1;
        match result {
            Ok(value) if value == n * 7 + 1 => {}
            Ok(_) => self.wrong += 1,
            Err(_) => self.errors += 1,
        }
        if kill.at.get().is_some_and(|at| started >= *at) {
            self.longest_after_kill = self.longest_after_kill.max(took);
        }
    }

    fn add(&mut self, other: Seen) {
        self.calls += other.calls;
        self.wrong += other.wrong;
        self.errors += other.errors;
        self.longest_after_kill = self.longest_after_kill.max(other.longest_after_kill);
    }
}

/// When the master was killed, and when the callers should stop.
#[derive(Default)]
struct Kill {
    at: OnceLock<Instant>,
    stop: std::sync::atomic::AtomicBool,
}

const CALLERS: u64 = 32;
const KEYS: u64 = 64;

/// Kills the master while the callers run, waits until hits (`hits()` grows) come from the
/// promoted master, lets the callers run 0.5 s more and stops them. Returns the seconds
/// from the kill until the Sentinels promoted the replica and until hits resumed.
fn kill_under_load(
    set_up: &mut RedisSentinels,
    backend: &RedisBackend,
    kill: &Kill,
    hits: impl Fn() -> u64,
) -> (Duration, Duration) {
    std::thread::sleep(Duration::from_millis(300));
    assert!(hits() > 0, "the callers hit before the kill");
    let promoted = set_up.data_nodes()[1].port();
    assert_ne!(set_up.kill_master(), promoted);
    let at = *kill.at.get_or_init(Instant::now);
    let promoted_after = set_up.wait_for_failover();
    assert_eq!(set_up.master_port(), promoted);
    let on_promoted = format!("127.0.0.1:{promoted}");
    let mut resumed = None;
    let mut before = hits();
    while at.elapsed() < Duration::from_secs(30) {
        let now = hits();
        if backend.sentinel_master().as_deref() == Some(on_promoted.as_str()) && now > before {
            resumed = Some(at.elapsed());
            break;
        }
        before = now;
        std::thread::sleep(Duration::from_millis(5));
    }
    let resumed = resumed.expect("hits resumed on the promoted master within 30 s");
    std::thread::sleep(Duration::from_millis(500));
    kill.stop.store(true, Ordering::Relaxed);
    assert!(set_up.command_counts("get")[&promoted] > 0);
    (promoted_after, resumed)
}

/// Prints the figures and asserts them (generously for the times).
fn check_failover(what: &str, total: &Seen, (promoted, resumed): (Duration, Duration)) {
    eprintln!(
        "failover under load, {what}: {CALLERS} callers, {} calls, {} wrong answers, {} \
         errors; longest call after the kill {:.3} s; the Sentinels promoted the replica \
         {:.2} s after the kill; hits resumed on it {:.2} s after the kill",
        total.calls,
        total.wrong,
        total.errors,
        total.longest_after_kill.as_secs_f64(),
        promoted.as_secs_f64(),
        resumed.as_secs_f64(),
    );
    assert_eq!(total.wrong, 0, "wrong answers");
    assert_eq!(total.errors, 0, "errors surfaced to callers");
    assert!(
        total.longest_after_kill < Duration::from_millis(1500),
        "{:?}",
        total.longest_after_kill
    );
    assert!(resumed < Duration::from_secs(20), "{resumed:?}");
}

#[test]
fn failover_under_load_gives_no_wrong_answer_no_error_and_hits_resume_on_the_promoted_master() {
    let _one = one_at_a_time();
    let mut set_up = RedisSentinels::start();
    let backend = backend(&set_up);
    let _ = LOAD.0.set(cache_on(backend.clone(), "app:"));
    let rt = runtime();
    rt.block_on(async {
        for n in 0..KEYS {
            assert_eq!(answer(n).await, Ok(n * 7 + 1));
        }
    });
    replicate(&set_up);

    let kill = Arc::new(Kill::default());
    let callers: Vec<_> = (0..CALLERS)
        .map(|caller| {
            let kill = kill.clone();
            rt.spawn(async move {
                let mut seen = Seen::default();
                let mut i = caller;
                while !kill.stop.load(Ordering::Relaxed) {
                    let n = i % KEYS;
                    i += 7;
                    let started = Instant::now();
                    seen.record(n, answer(n).await, started, &kill);
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                seen
            })
        })
        .collect();
    let times = kill_under_load(&mut set_up, &backend, &kill, || answer::stats().hits);
    let mut total = Seen::default();
    for caller in callers {
        total.add(rt.block_on(caller).expect("no caller panicked"));
    }
    check_failover("async", &total, times);
}

static SYNC_LOAD: Late = Late(OnceLock::new());

/// The same known answers, for sync callers.
#[memoize(cache = SYNC_LOAD, timeout = 300)]
fn answer_sync(n: u64) -> Result<u64, String> {
    Ok(n * 7 + 1)
}

#[test]
fn sync_failover_under_load_gives_no_wrong_answer_no_error_and_hits_resume_on_the_promoted_master()
{
    let _one = one_at_a_time();
    let mut set_up = RedisSentinels::start();
    let backend = backend(&set_up);
    let _ = SYNC_LOAD.0.set(cache_on(backend.clone(), "app:"));
    for n in 0..KEYS {
        assert_eq!(answer_sync(n), Ok(n * 7 + 1));
    }
    replicate(&set_up);

    let kill = Arc::new(Kill::default());
    let callers: Vec<_> = (0..CALLERS)
        .map(|caller| {
            let kill = kill.clone();
            std::thread::spawn(move || {
                let mut seen = Seen::default();
                let mut i = caller;
                while !kill.stop.load(Ordering::Relaxed) {
                    let n = i % KEYS;
                    i += 7;
                    let started = Instant::now();
                    seen.record(n, answer_sync(n), started, &kill);
                    std::thread::sleep(Duration::from_millis(1));
                }
                seen
            })
        })
        .collect();
    let times = kill_under_load(&mut set_up, &backend, &kill, || answer_sync::stats().hits);
    let mut total = Seen::default();
    for caller in callers {
        total.add(caller.join().expect("no caller panicked"));
    }
    check_failover("sync", &total, times);
}

/// The data nodes' password and the Sentinels' password, as distinctive strings.
const DATA_SECRET: &str = "Sekr3t-data-51c2";
const SENTINEL_SECRET: &str = "Sekr3t-sentinel-8d0e";

fn assert_clean(what: &str, text: &str) {
    assert!(!text.contains("Sekr3t"), "{what} shows a secret: {text}");
}

/// Everything an error shows: `Display`, `{:#}`, `Debug`, and each `source()` in turn.
fn everything_shown(error: &cache_core::Error) -> String {
    let mut shown = format!("{error} | {error:#} | {error:?}");
    let mut next = std::error::Error::source(error);
    while let Some(cause) = next {
        shown.push_str(&format!(" | {cause} | {cause:?}"));
        next = cause.source();
    }
    shown
}

/// The configuration of `set_up` from Flask-Caching's variables, with these passwords.
fn config(set_up: &RedisSentinels, sentinel_password: &str, password: &str) -> Config {
    let vars = [
        ("CACHE_TYPE", "RedisSentinelCache".to_owned()),
        ("CACHE_REDIS_SENTINELS", set_up.sentinel_list()),
        (
            "CACHE_REDIS_SENTINEL_MASTER",
            set_up.master_name().to_owned(),
        ),
        (
            "CACHE_REDIS_SENTINEL_PASSWORD",
            sentinel_password.to_owned(),
        ),
        ("CACHE_REDIS_PASSWORD", password.to_owned()),
        ("CACHE_REDIS_DB", "3".to_owned()),
        ("CACHE_KEY_PREFIX", "app:".to_owned()),
    ];
    Config::from_vars(|name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    })
    .unwrap()
}

#[test]
fn both_passwords_work_from_the_environment_and_never_show() {
    let _one = one_at_a_time();
    let set_up = RedisSentinels::builder()
        .master_name("cache-1")
        .requirepass(DATA_SECRET)
        .sentinel_password(SENTINEL_SECRET)
        .start();
    let (logs, _guard) = tests::logs::capture();

    let good = config(&set_up, SENTINEL_SECRET, DATA_SECRET);
    assert_clean("the config's Debug", &format!("{good:?}"));
    let cache = cache_redis::from_config(&good).unwrap();
    assert_clean("the cache's Debug", &format!("{cache:?}"));
    cache.blocking().set("k", &7).unwrap();
    assert_eq!(cache.blocking().get::<i32>("k").unwrap(), Some(7));
    assert_clean("the cache's Debug", &format!("{cache:?}"));
    let mut db3 = set_up.master().connection();
    let _: () = redis::cmd("SELECT").arg(3).query(&mut db3).unwrap();
    let size: u64 = redis::cmd("DBSIZE").query(&mut db3).unwrap();
    assert_eq!(
        (size, set_up.master().dbsize()),
        (1, 0),
        "CACHE_REDIS_DB applies"
    );

    for (sentinel_password, password, what) in [
        ("Sekr3t-wrong-1", DATA_SECRET, "a wrong Sentinel password"),
        (SENTINEL_SECRET, "Sekr3t-wrong-2", "a wrong data password"),
    ] {
        let cache =
            cache_redis::from_config(&config(&set_up, sentinel_password, password)).unwrap();
        let err = cache.blocking().get::<i32>("k").unwrap_err();
        assert!(err.is_connection(), "{what}: {err:#}");
        assert_clean(what, &everything_shown(&err));
        let value = cache
            .blocking()
            .get_or_set_with("v", Duration::from_secs(5), || 42);
        assert_eq!(value, 42, "{what}: fails open");
        assert_clean(what, &format!("{cache:?}"));
    }
    // The resolutions ran on their own threads, logging where the calls would.
    let text = logs.text();
    assert!(
        text.contains("Redis refused the credentials"),
        "the resolutions' warnings say why: {text}"
    );
    assert!(text.contains("Sentinel master `cache-1` is at"), "{text}");
    assert_clean("the logs", &text);
}

#[test]
fn a_call_cancelled_while_the_master_is_resolved_or_while_it_answers_leaves_nothing_stuck() {
    let _one = one_at_a_time();
    let mut set_up = RedisSentinels::start();
    // A Sentinel that accepts connections and never answers, asked first.
    let hung = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hung_addr = format!("127.0.0.1:{}", hung.local_addr().unwrap().port());
    let accepted = std::thread::spawn(move || {
        let held: Vec<_> = hung.incoming().take(1).collect();
        std::thread::sleep(Duration::from_secs(3));
        drop(held);
    });
    let mut builder = RedisBackend::builder().sentinel(hung_addr);
    for addr in set_up.sentinel_addrs() {
        builder = builder.sentinel(addr);
    }
    let cache = cache_on(builder.build().unwrap(), "app:");
    let rt = runtime();

    // Cancelled while it waits for the first resolution (the hung Sentinel costs it one
    // response time-out, 200 ms).
    let cancelled = rt.block_on(async {
        tokio::time::timeout(Duration::from_millis(10), cache.get::<i32>("k")).await
    });
    assert!(cancelled.is_err(), "the wait was cancelled");
    assert!(
        eventually(Duration::from_secs(2), || cache
            .blocking()
            .set("k", &1)
            .is_ok()),
        "the resolution went on without the cancelled caller"
    );
    assert_eq!(rt.block_on(cache.get::<i32>("k")).unwrap(), Some(1));

    // Cancelled while the master is asked (it is paused).
    let master = set_up.master_port();
    set_up.data_node_mut(master).pause();
    let cancelled = rt.block_on(async {
        tokio::time::timeout(Duration::from_millis(10), cache.get::<i32>("k")).await
    });
    assert!(cancelled.is_err(), "the query was cancelled");
    set_up.data_node_mut(master).resume();
    assert!(
        eventually(Duration::from_secs(2), || rt
            .block_on(cache.get::<i32>("k"))
            .is_ok_and(|v| v == Some(1))),
        "hits resume after the cancelled query"
    );
    assert_eq!(
        rt.block_on(cache.get::<i32>("k")).unwrap(),
        Some(1),
        "and stay"
    );
    accepted.join().unwrap();
}

#[test]
fn calls_with_a_hung_sentinel_share_one_resolution_at_a_time_and_then_fail_fast() {
    // A "Sentinel" that accepts connections and never answers, counting them.
    let hung = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("127.0.0.1:{}", hung.local_addr().unwrap().port());
    let accepted = Arc::new(AtomicUsize::new(0));
    let counted = accepted.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in hung.incoming() {
            counted.fetch_add(1, Ordering::SeqCst);
            held.push(conn);
        }
    });
    let cache = cache_on(
        RedisBackend::builder().sentinel(addr).build().unwrap(),
        "app:",
    );
    let started = Instant::now();
    let first = cache
        .blocking()
        .get_or_set_with("k", Duration::from_secs(5), || 1);
    let first_took = started.elapsed();
    assert_eq!(first, 1);
    let callers: Vec<_> = (0..8)
        .map(|_| {
            let cache = cache.clone();
            std::thread::spawn(move || {
                let mut slowest = Duration::ZERO;
                let deadline = Instant::now() + Duration::from_millis(1500);
                while Instant::now() < deadline {
                    let started = Instant::now();
                    assert_eq!(
                        cache
                            .blocking()
                            .get_or_set_with("k", Duration::from_secs(5), || 1),
                        1
                    );
                    slowest = slowest.max(started.elapsed());
                    std::thread::sleep(Duration::from_millis(1));
                }
                slowest
            })
        })
        .collect();
    let slowest = callers
        .into_iter()
        .map(|caller| caller.join().unwrap())
        .max()
        .unwrap();
    let connections = accepted.load(Ordering::SeqCst);
    eprintln!(
        "hung Sentinel: first call {first_took:?}, slowest later call {slowest:?}, {connections} \
         connections to the Sentinel in 1.5 s (resolutions and the watcher)"
    );
    assert!(first_took < Duration::from_millis(600), "{first_took:?}");
    assert!(
        slowest < Duration::from_millis(100),
        "later calls fail fast: {slowest:?}"
    );
    assert!(
        connections <= 15,
        "{connections} connections: resolutions are rate-limited"
    );
}

#[test]
fn the_watcher_moves_to_another_sentinel_when_its_own_dies_and_still_follows_a_switch() {
    let _one = one_at_a_time();
    let mut set_up = RedisSentinels::start();
    let (old, new) = (set_up.data_nodes()[0].port(), set_up.data_nodes()[1].port());
    let backend = backend(&set_up);
    let cache = cache_on(backend.clone(), "app:");
    cache.blocking().set("k", &1).unwrap();
    replicate(&set_up);
    // The watcher subscribes on the first Sentinel; kill it (`kill -9`).
    assert!(eventually(Duration::from_secs(5), || subscribed_on(
        &set_up.sentinels()[0]
    ) == 1));
    set_up.sentinel_mut(0).kill();
    assert!(
        eventually(Duration::from_secs(5), || subscribed_clients(&set_up) == 1),
        "the watcher subscribed on another Sentinel"
    );

    let _: () = redis::cmd("SENTINEL")
        .arg("FAILOVER")
        .arg(set_up.master_name())
        .query(&mut set_up.sentinels()[1].connection())
        .unwrap();
    assert!(
        eventually(Duration::from_secs(20), || {
            backend.sentinel_master() == Some(format!("127.0.0.1:{new}"))
        }),
        "the backend still sends to {:?} (old master {old})",
        backend.sentinel_master()
    );
    set_up.reset_stats();
    assert_eq!(cache.blocking().get::<i32>("k").unwrap(), Some(1));
    assert_eq!(set_up.command_counts("get")[&new], 1);
    assert_eq!(cache.stats().errors, 0);
}

/// Writes `k` = 1 once the first resolution is done: the first call waits for it at most
/// the connect time-out (250 ms), which a TLS handshake in a debug build on a loaded
/// machine can take, and fails open meanwhile.
fn first_write(cache: &Cache) {
    let mut last = None;
    assert!(
        eventually(Duration::from_secs(5), || {
            let result = cache.blocking().set("k", &1);
            let done = result.is_ok();
            last = result.err();
            done
        }),
        "the master was not resolved: {:#}",
        last.unwrap()
    );
}

/// Sends `SENTINEL FAILOVER` and waits until `backend` sends to the other data node.
fn switch_and_follow(set_up: &RedisSentinels, backend: &RedisBackend) {
    let old = set_up.master_port();
    let new = set_up
        .data_nodes()
        .iter()
        .map(tests::RedisServer::port)
        .find(|port| *port != old)
        .unwrap();
    let _: () = redis::cmd("SENTINEL")
        .arg("FAILOVER")
        .arg(set_up.master_name())
        .query(&mut set_up.sentinels()[0].connection())
        .unwrap();
    assert!(
        eventually(Duration::from_secs(20), || {
            backend.sentinel_master() == Some(format!("127.0.0.1:{new}"))
        }),
        "the backend still sends to {:?} (old master {old})",
        backend.sentinel_master()
    );
}

#[test]
fn an_acl_user_on_the_sentinels_resolves_and_follows_a_switch_and_a_wrong_one_fails_open() {
    let _one = one_at_a_time();
    let set_up = RedisSentinels::builder()
        .sentinel_password(SENTINEL_SECRET)
        .sentinel_user("cache", "Sekr3t-acl-77f1")
        .start();
    // The user may run exactly what the cache needs (GET-MASTER-ADDR-BY-NAME, PING,
    // SUBSCRIBE +switch-master): resolution, a watcher and a followed switch.
    let mut builder = RedisBackend::builder()
        .sentinel_username("cache")
        .sentinel_password("Sekr3t-acl-77f1");
    for addr in set_up.sentinel_addrs() {
        builder = builder.sentinel(addr);
    }
    let backend = builder.build().unwrap();
    assert_clean("the backend's Debug", &format!("{backend:?}"));
    assert!(format!("{backend:?}").contains("Sentinel user cache, password ***"));
    let cache = cache_on(backend.clone(), "app:");
    first_write(&cache);
    assert_eq!(cache.blocking().get::<i32>("k").unwrap(), Some(1));
    assert!(eventually(Duration::from_secs(5), || subscribed_clients(
        &set_up
    ) == 1));
    replicate(&set_up);
    switch_and_follow(&set_up, &backend);
    assert_eq!(cache.blocking().get::<i32>("k").unwrap(), Some(1));
    assert_eq!(cache.stats().errors, 0);

    // The same user in a Sentinel's URL.
    let (port, password) = (
        set_up.sentinels()[1].port(),
        set_up.sentinel_user().unwrap().1,
    );
    let by_url = RedisBackend::builder()
        .sentinel(format!("redis://cache:{password}@127.0.0.1:{port}"))
        .build()
        .unwrap();
    assert_clean("a URL Sentinel's Debug", &format!("{by_url:?}"));
    let by_url = cache_on(by_url, "app:");
    assert!(
        eventually(Duration::from_secs(5), || by_url
            .blocking()
            .get::<i32>("k")
            .is_ok_and(|v| v == Some(1))),
        "the user in the URL logs in"
    );

    // The user's password without the user: the default user refuses it.
    let mut builder = RedisBackend::builder().sentinel_password("Sekr3t-acl-77f1");
    for addr in set_up.sentinel_addrs() {
        builder = builder.sentinel(addr);
    }
    let err = fails_open(&cache_on(builder.build().unwrap(), "app:"));
    assert_clean("the error", &everything_shown(&err));
}

/// A cache that cannot reach its Sentinels: a read is a connection error, and a cached
/// call returns its function's value. Returns the error.
fn fails_open(wrong: &Cache) -> cache_core::Error {
    let err = wrong.blocking().get::<i32>("k").unwrap_err();
    assert!(err.is_connection(), "{err:#}");
    assert_eq!(
        wrong
            .blocking()
            .get_or_set_with("v", Duration::from_secs(5), || 42),
        42,
        "fails open"
    );
    err
}

/// Starts a set-up with TLS, or fails saying so when this `redis-server` has no TLS.
fn start_tls(builder: tests::sentinel::RedisSentinelsBuilder) -> RedisSentinels {
    match builder.try_start() {
        Ok(set_up) => set_up,
        Err(e) if e.is_tls_unsupported() => {
            panic!("this redis-server was built without TLS support, so TLS is untested: {e}")
        }
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn sentinels_over_tls_resolve_watch_and_follow_a_switch_and_a_wrong_ca_fails_open() {
    let _one = one_at_a_time();
    let set_up = start_tls(RedisSentinels::builder().sentinel_tls());
    // Each Sentinel has its own CA: the backend trusts the first one's, and asks it alone.
    let first = &set_up.sentinels()[0];
    assert!(first.url().starts_with("rediss://"));
    let backend = RedisBackend::builder()
        .sentinel(first.url())
        .tls_root_cert(first.tls_ca_cert().unwrap())
        .build()
        .unwrap();
    let cache = cache_on(backend.clone(), "app:");
    first_write(&cache);
    assert_eq!(
        backend.sentinel_master(),
        Some(set_up.master_addr()),
        "resolved over TLS"
    );
    assert!(
        eventually(Duration::from_secs(5), || subscribed_on(first) == 1),
        "the watcher subscribed over TLS"
    );
    replicate(&set_up);
    switch_and_follow(&set_up, &backend);
    assert_eq!(cache.blocking().get::<i32>("k").unwrap(), Some(1));
    assert_eq!(cache.stats().errors, 0);

    // Another Sentinel's CA: the certificate is refused, and calls fail open.
    let wrong = RedisBackend::builder()
        .sentinel(first.url())
        .tls_root_cert(set_up.sentinels()[1].tls_ca_cert().unwrap())
        .build()
        .unwrap();
    fails_open(&cache_on(wrong, "app:"));
}

#[test]
fn an_all_tls_set_up_resolves_a_tls_master_and_follows_a_kill() {
    let _one = one_at_a_time();
    let mut set_up = start_tls(RedisSentinels::builder().all_tls());
    let ca = set_up.tls_ca_cert().unwrap();
    let mut builder = RedisBackend::builder()
        .data_node_tls(true)
        .tls_root_cert(ca.clone());
    for sentinel in set_up.sentinels() {
        assert!(sentinel.url().starts_with("rediss://"));
        builder = builder.sentinel(sentinel.url());
    }
    let backend = builder.build().unwrap();
    let cache = cache_on(backend.clone(), "app:");
    first_write(&cache);
    assert_eq!(backend.sentinel_master(), Some(set_up.master_addr()));
    set_up.reset_stats();
    assert_eq!(cache.blocking().get::<i32>("k").unwrap(), Some(1));
    assert_eq!(
        set_up.master().command_count("get"),
        1,
        "the hit went to the master, over TLS"
    );
    replicate(&set_up);
    let old = set_up.kill_master();
    set_up.wait_for_failover();
    let new = set_up.master_port();
    assert_ne!(new, old);
    assert!(
        eventually(Duration::from_secs(10), || {
            backend.sentinel_master() == Some(format!("127.0.0.1:{new}"))
        }),
        "the backend follows to {new}: {:?}",
        backend.sentinel_master()
    );
    assert!(
        eventually(Duration::from_secs(5), || cache
            .blocking()
            .get::<i32>("k")
            .is_ok_and(|v| v == Some(1))),
        "hits on the promoted master over TLS"
    );

    // Plain TCP to a TLS data node is refused: calls fail open.
    let mut plain = RedisBackend::builder().tls_root_cert(ca);
    for sentinel in set_up.sentinels().iter().filter(|s| s.pid().is_some()) {
        plain = plain.sentinel(sentinel.url());
    }
    let plain = cache_on(plain.build().unwrap(), "app:");
    assert!(plain.blocking().get::<i32>("k").is_err());
    assert_eq!(
        plain
            .blocking()
            .get_or_set_with("v", Duration::from_secs(5), || 42),
        42
    );
}
