//! Leases on a real `redis-server`: the round trips of a leased miss (counted with
//! `INFO commandstats` and, per client command, with `MONITOR`), and how soon callers that
//! wait on another cache's lease get its value.

mod redis_support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cache_core::CallOptions;
use cache_core::stampede::Stampede;
use redis_support::cache;
use tests::RedisServer;

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
            seen.push(command.split(' ').next().unwrap().trim_matches('"').to_owned());
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
