//! One instance of the multi-process near-cache tests, on the `Bus` level: subscribes to
//! the near cache's channel of a namespace and prints what it receives, and publishes what
//! it is told to on stdin.
//!
//! Usage: `near_node --url <redis url> --namespace <ns>` (or `--cluster <host:port,...>`
//! instead of `--url`). The namespace is used as given (a cache's is normalised, such as
//! `app:`).
//!
//! Reads commands from stdin, one a line: `publish <text>` and `quit` (so does the end of
//! stdin). Prints, one a line, flushed, with `<ns>` the nanoseconds since the Unix epoch:
//!
//! - `ready` each time a subscription is confirmed (at start, and after each loss);
//! - `received <ns> <text>` for every message (this instance's own included);
//! - `published <ns>` or `publish-failed <error>` after each `publish`;
//! - `lost <error>` when the subscription is lost (then it subscribes again).

use std::io::{BufRead as _, Write as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cache_core::backend::Backend;
use cache_core::bus::Bus;
use cache_redis::RedisBackend;

/// How long each wait for a message lasts, so that `quit` ends the listener soon.
const NEXT: Duration = Duration::from_millis(100);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        args.iter()
            .position(|arg| arg == flag)
            .and_then(|at| args.get(at + 1))
    };
    let (Some(namespace), target) = (value("--namespace"), (value("--url"), value("--cluster")))
    else {
        usage();
    };
    let builder = match target {
        (Some(url), None) => RedisBackend::builder().url(url),
        (None, Some(seeds)) => RedisBackend::builder().cluster(seeds),
        _ => usage(),
    };
    let backend = builder.build().unwrap_or_else(|error| {
        eprintln!("near_node: {error:#}");
        std::process::exit(2);
    });
    let bus = Backend::bus(&backend, namespace).expect("a Redis backend has a bus");
    let done = Arc::new(AtomicBool::new(false));
    let listener = {
        let (bus, done) = (bus.clone(), done.clone());
        std::thread::spawn(move || listen(bus.as_ref(), &done))
    };
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        match line.split_once(' ') {
            Some(("publish", text)) => match bus.publish(text.as_bytes()) {
                Ok(()) => say(&format!("published {}", now())),
                Err(error) => say(&format!("publish-failed {error:#}")),
            },
            None if line == "quit" => break,
            _ => eprintln!("near_node: unknown command {line:?}"),
        }
    }
    done.store(true, Ordering::Relaxed);
    let _ = listener.join();
}

/// Subscribes, prints what arrives, and subscribes again after each loss, until `done`.
fn listen(bus: &dyn Bus, done: &AtomicBool) {
    while !done.load(Ordering::Relaxed) {
        let mut subscription = match bus.subscribe() {
            Ok(subscription) => subscription,
            Err(error) => {
                eprintln!("near_node: subscribe: {error:#}");
                std::thread::sleep(NEXT);
                continue;
            }
        };
        say("ready");
        while !done.load(Ordering::Relaxed) {
            match subscription.next(NEXT) {
                Ok(Some(message)) => say(&format!(
                    "received {} {}",
                    now(),
                    String::from_utf8_lossy(&message)
                )),
                Ok(None) => {}
                Err(error) => {
                    say(&format!("lost {error:#}"));
                    break;
                }
            }
        }
    }
}

fn now() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos())
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn usage() -> ! {
    eprintln!("usage: near_node (--url <redis url> | --cluster <host:port,...>) --namespace <ns>");
    std::process::exit(2);
}
