//! Stampede protection on a shared in-memory store. Two `Cache` handles on one backend have
//! separate in-process flights, so they stand in for two processes sharing a Redis.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cache_core::backend::memory::MemoryBackend;
use cache_core::stampede::Stampede;
use cache_core::{Cache, CallOptions};

fn processes(n: usize) -> Vec<Cache> {
    let shared = Arc::new(MemoryBackend::new());
    (0..n)
        .map(|_| {
            Cache::builder()
                .shared_backend(shared.clone())
                .build()
                .unwrap()
        })
        .collect()
}

fn options(stampede: Stampede) -> CallOptions {
    let mut options = CallOptions::timeout(Duration::from_secs(60));
    options.stampede = stampede;
    options
}

/// Entries fresh for 100 ms, then served stale for 30 s while one caller refreshes them.
fn stale_after_100ms() -> CallOptions {
    let mut options = options(Stampede::default().serve_stale(Duration::from_secs(30)));
    options.timeout = Some(Duration::from_millis(100));
    options
}

/// How many times 25 callers in each of 4 "processes" ran a 200 ms computation of one cold
/// key, every caller getting its value.
async fn cold_key_computations(options: CallOptions) -> usize {
    let runs = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for cache in processes(4) {
        for _ in 0..25 {
            let (cache, runs) = (cache.clone(), runs.clone());
            tasks.push(tokio::spawn(async move {
                cache
                    .get_or_set_with_options("cold", options, || async {
                        runs.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        7u32
                    })
                    .await
            }));
        }
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), 7);
    }
    runs.load(Ordering::SeqCst)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lease_makes_one_caller_compute_across_processes() {
    let leased = options(Stampede::default().lease(Duration::from_secs(5)));
    assert_eq!(cold_key_computations(leased).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_lease_each_process_computes_once() {
    assert_eq!(
        cold_key_computations(options(Stampede::default())).await,
        4,
        "in-process single flight only"
    );
}

#[test]
fn a_dead_holders_lease_expires_and_one_waiter_takes_over() {
    let [dead, alive] = <[Cache; 2]>::try_from(processes(2)).unwrap();
    let lease = Duration::from_millis(300);
    let leased = options(Stampede::default().lease(lease));
    // The "dead" holder takes the lease and never finishes: simulate with a raw lease write.
    dead.blocking()
        .set_with_timeout("cold:~lease", &"someone", lease)
        .unwrap();
    let runs = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..10 {
            s.spawn(|| {
                let value = alive
                    .blocking()
                    .get_or_set_with_options("cold", leased, || {
                        runs.fetch_add(1, Ordering::SeqCst);
                        9u8
                    });
                assert_eq!(value, 9);
            });
        }
    });
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[test]
fn serve_stale_returns_the_old_value_while_one_caller_refreshes() {
    let cache = Cache::memory();
    let stale = stale_after_100ms();
    let runs = AtomicUsize::new(0);
    let compute = || runs.fetch_add(1, Ordering::SeqCst) as u32;
    assert_eq!(
        cache
            .blocking()
            .get_or_set_with_options("hot", stale, compute),
        0
    );
    std::thread::sleep(Duration::from_millis(150));
    // Past its timeout: the first caller refreshes (and gets the new value); while it does,
    // the others are served the stale one without waiting.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        s.spawn(|| {
            cache.blocking().get_or_set_with_options("hot", stale, || {
                tx.send(()).unwrap();
                std::thread::sleep(Duration::from_millis(300));
                compute()
            })
        });
        rx.recv().unwrap();
        for _ in 0..20 {
            let served = cache
                .blocking()
                .get_or_set_with_options("hot", stale, compute);
            assert_eq!(served, 0, "stale value served while the refresh runs");
        }
    });
    assert_eq!(
        runs.load(Ordering::SeqCst),
        2,
        "one initial compute, one refresh"
    );
    assert_eq!(
        cache
            .blocking()
            .get_or_set_with_options("hot", stale, compute),
        1
    );
}

#[test]
fn early_refresh_recomputes_before_expiry_and_only_near_it() {
    let cache = Cache::memory();
    let early = CallOptions::builder()
        .timeout(Duration::from_millis(400))
        .stampede(Stampede::default().early_refresh(1.0))
        .build();
    let runs = AtomicUsize::new(0);
    let slow = || {
        std::thread::sleep(Duration::from_millis(100));
        runs.fetch_add(1, Ordering::SeqCst)
    };
    cache.blocking().get_or_set_with_options("k", early, slow);
    // Right after the store, the value is 400 ms from expiry with a 100 ms compute:
    // early refresh is very unlikely (e^-4 per read) but possible; read a few times.
    for _ in 0..3 {
        cache.blocking().get_or_set_with_options("k", early, slow);
    }
    assert!(runs.load(Ordering::SeqCst) <= 3);
    // 120 ms before expiry with a 100 ms compute, each read refreshes with p = e^-1.2 = 0.3.
    std::thread::sleep(Duration::from_millis(380 - 100));
    let before = runs.load(Ordering::SeqCst);
    for _ in 0..50 {
        cache.blocking().get_or_set_with_options("k", early, slow);
        if runs.load(Ordering::SeqCst) > before {
            break;
        }
    }
    assert!(
        runs.load(Ordering::SeqCst) > before,
        "refreshed before expiry"
    );
}

#[test]
fn a_waiter_that_never_gets_the_lease_computes_itself() {
    let cache = Cache::memory();
    // A lease that never expires and a value that never comes: waiters must not hang.
    cache
        .blocking()
        .set_with_timeout("stuck:~lease", &"gone", Duration::ZERO)
        .unwrap();
    let leased = options(Stampede::default().lease(Duration::from_millis(50)));
    let value = cache
        .blocking()
        .get_or_set_with_options("stuck", leased, || 3u8);
    assert_eq!(
        value, 3,
        "after twice the lease, the waiter computed (fail-open)"
    );
}

#[test]
fn a_hot_key_under_steady_load_recomputes_once_per_expiry_and_serves_stale_meanwhile() {
    use std::sync::atomic::AtomicBool;
    let cache = Cache::memory();
    let stale = stale_after_100ms();
    let recomputes = AtomicUsize::new(0);
    let refreshing = AtomicBool::new(false);
    let served_during_refresh = AtomicUsize::new(0);
    let started = std::time::Instant::now();
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                while started.elapsed() < Duration::from_millis(700) {
                    cache.blocking().get_or_set_with_options("hot", stale, || {
                        refreshing.store(true, Ordering::SeqCst);
                        recomputes.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(30));
                        refreshing.store(false, Ordering::SeqCst);
                        1u8
                    });
                    if refreshing.load(Ordering::SeqCst) {
                        served_during_refresh.fetch_add(1, Ordering::SeqCst);
                    }
                }
            });
        }
    });
    // 700 ms of load on a 100 ms timeout with 30 ms recomputes: one recompute per expiry
    // at most (each expiry is at least 100 ms after the previous store).
    let recomputes = recomputes.load(Ordering::SeqCst);
    assert!((2..=7).contains(&recomputes), "{recomputes} recomputes");
    assert!(
        served_during_refresh.load(Ordering::SeqCst) > 0,
        "other callers were answered while a refresh ran"
    );
}
