//! One instance of the near-cache coherence tests (`tests/tests/near_processes.rs`): a Redis
//! cache with a near tier, driven over stdin, reporting on stdout.
//!
//! Usage: `near_instance <url> <writer|reader> [cluster=<seeds> | sentinel=<addrs>/<master>]`:
//! the cache is on the Redis at `url`, or on the Cluster or Sentinel set-up given third;
//! the truth is always at `url`.
//!
//! Both roles share one cached function, `version()`, whose body reads the "truth" (a plain
//! key the test controls, outside the cache's namespace) and which the near tier serves for
//! up to a minute. The writer's calls are forced updates (write-through), so the reader's
//! body runs only when Redis lost the entry, and a slow fill of the reader cannot put an old
//! value back into Redis after a newer one (the cache-aside race, which is not the near
//! tier's to solve).
//! - `writer`: for each line `bump <n>`, sets the truth to `n`, then calls `version()`, which
//!   stores `n` and announces it; prints `ack <n> <unix µs>` once that store was acknowledged,
//!   `err <n>` when the truth could not be set or the store failed (counted as an error: a
//!   write that failed was never acknowledged, so it sets no deadline). `drop <k>`
//!   makes the next `k` announcements vanish as lost messages would (`dropped`). `quit` ends.
//! - `reader`: calls `version()` about every 100 µs until stdin says `quit` (or closes), and
//!   prints one line per run of equal results: `served <value> <first unix µs> <last unix µs>`
//!   (`value` is `-` for a call that failed), then `near_hits <n>`.

use std::io::{BufRead, Write as _};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LazyLock, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cache_core::{Cache, NearCache, memoize};

/// The truth's key: the test's own, outside the cache's namespace.
pub const TRUTH: &str = "near-test:truth";

static URL: OnceLock<String> = OnceLock::new();
/// Where the cache is, when not at `URL`.
static DEPLOYMENT: OnceLock<String> = OnceLock::new();
static CACHE: LazyLock<Cache> = LazyLock::new(|| {
    let builder = cache_redis::RedisBackend::builder().response_timeout(Duration::from_millis(200));
    let builder = match DEPLOYMENT.get().map(|d| d.split_once('=')) {
        Some(Some(("cluster", seeds))) => builder.cluster(seeds),
        Some(Some(("sentinel", spec))) => {
            let (addrs, master) = spec.rsplit_once('/').expect("sentinel=<addrs>/<master>");
            addrs
                .split(',')
                .fold(builder.master_name(master), |b, addr| b.sentinel(addr))
        }
        Some(other) => panic!("unknown deployment {other:?}"),
        None => builder.url(URL.get().expect("a URL")),
    };
    let backend = builder.build().expect("a valid set-up");
    Cache::builder()
        .backend(backend)
        .near_cache(NearCache::new(Duration::from_secs(60)))
        .build()
        .expect("a cache")
});
static TRUTH_CONNECTION: LazyLock<std::sync::Mutex<Option<redis::Connection>>> =
    LazyLock::new(Default::default);

/// Set in the writer: its calls store the truth without reading the cache.
static WRITER: AtomicBool = AtomicBool::new(false);

/// The truth, read with a short time-out (a failed read fails the call: nothing is stored).
/// A truth that is not there fails the call too: the writer sets it before the first call,
/// so it is gone only when a restart of its server wiped it, until the next `bump`; reading
/// it as 0 then would be a value the writer never acknowledged after the newer ones.
#[memoize(cache = CACHE, timeout = 300, local = 60, forced_update = WRITER.load(Ordering::Relaxed))]
fn version() -> Result<u64, String> {
    with_truth(|redis| redis::cmd("GET").arg(TRUTH).query::<Option<u64>>(redis))
        .and_then(|v| v.ok_or_else(|| "the truth is gone (its server restarted)".to_owned()))
}

fn with_truth<T>(
    f: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>,
) -> Result<T, String> {
    let mut slot = TRUTH_CONNECTION.lock().unwrap();
    if slot.is_none() {
        let client = redis::Client::open(URL.get().unwrap().as_str()).map_err(|e| e.to_string())?;
        let connection = client
            .get_connection_with_timeout(Duration::from_millis(200))
            .map_err(|e| e.to_string())?;
        let _ = connection.set_read_timeout(Some(Duration::from_millis(200)));
        let _ = connection.set_write_timeout(Some(Duration::from_millis(200)));
        *slot = Some(connection);
    }
    let result = f(slot.as_mut().unwrap()).map_err(|e| e.to_string());
    if result.is_err() {
        *slot = None; // reconnect next time
    }
    result
}

fn now_us() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros()
}

fn say(line: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn writer() {
    for line in std::io::stdin().lock().lines() {
        let line = line.expect("stdin");
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("bump"), Some(n)) => {
                let n: u64 = n.parse().expect("a number");
                let errors = version::stats().errors;
                let written =
                    with_truth(|redis| redis::cmd("SET").arg(TRUTH).arg(n).query::<()>(redis));
                let stored =
                    written.is_ok() && version() == Ok(n) && version::stats().errors == errors;
                if stored {
                    say(format_args!("ack {n} {}", now_us()));
                } else {
                    say(format_args!("err {n}"));
                }
            }
            (Some("drop"), Some(k)) => {
                CACHE.__drop_announcements(k.parse().expect("a number"));
                say(format_args!("dropped"));
            }
            (Some("quit"), _) => break,
            _ => say(format_args!("bad command: {line}")),
        }
    }
}

fn reader() {
    static STOP: AtomicBool = AtomicBool::new(false);
    std::thread::spawn(|| {
        for line in std::io::stdin().lock().lines() {
            if line.map_or(true, |l| l.trim() == "quit") {
                break;
            }
        }
        STOP.store(true, Ordering::SeqCst);
    });
    let show = |v: &Option<u64>| v.map_or("-".to_owned(), |v| v.to_string());
    let mut run: Option<(Option<u64>, u128, u128)> = None;
    say(format_args!("ready"));
    while !STOP.load(Ordering::SeqCst) {
        let value = version().ok();
        let at = now_us();
        match &mut run {
            Some((current, _, last)) if *current == value => *last = at,
            _ => {
                if let Some((v, first, last)) = run.take() {
                    say(format_args!("served {} {first} {last}", show(&v)));
                }
                run = Some((value, at, at));
            }
        }
        std::thread::sleep(Duration::from_micros(100));
    }
    if let Some((v, first, last)) = run {
        say(format_args!("served {} {first} {last}", show(&v)));
    }
    say(format_args!("near_hits {}", version::stats().near_hits));
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (url, role) = match &args[..] {
        [_, url, role] => (url, role),
        [_, url, role, deployment] => {
            DEPLOYMENT.set(deployment.clone()).expect("set once");
            (url, role)
        }
        _ => {
            eprintln!(
                "usage: near_instance <url> <writer|reader> [cluster=<seeds> | sentinel=<addrs>/<master>]"
            );
            std::process::exit(2);
        }
    };
    URL.set(url.clone()).expect("set once");
    match role.as_str() {
        "writer" => {
            WRITER.store(true, Ordering::Relaxed);
            writer()
        }
        "reader" => reader(),
        other => {
            eprintln!("unknown role {other}: writer or reader");
            std::process::exit(2);
        }
    }
}
