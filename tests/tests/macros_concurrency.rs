//! Cold keys under contention run the body once, and sync cached functions work from every
//! kind of caller: a plain thread, a tokio worker, `spawn_blocking`, a current-thread
//! runtime.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Barrier, LazyLock};
use std::time::Duration;

use cache_core::{Cache, memoize};

static CACHE: LazyLock<Cache> = LazyLock::new(Cache::memory);

static ASYNC_RUNS: AtomicUsize = AtomicUsize::new(0);

#[memoize(cache = CACHE)]
async fn slow_async(num: u64) -> u64 {
    ASYNC_RUNS.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(50)).await;
    num * 2
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_tasks_on_a_cold_key_run_the_body_once() {
    let tasks: Vec<_> = (0..100).map(|_| tokio::spawn(slow_async(21))).collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), 42);
    }
    assert_eq!(ASYNC_RUNS.load(Ordering::SeqCst), 1);
}

static SYNC_RUNS: AtomicUsize = AtomicUsize::new(0);

#[memoize(cache = CACHE)]
fn slow_sync(num: u64) -> u64 {
    SYNC_RUNS.fetch_add(1, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(50));
    num * 2
}

#[test]
fn a_hundred_threads_on_a_cold_key_run_the_body_once() {
    let barrier = Barrier::new(100);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..100)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    slow_sync(50)
                })
            })
            .collect();
        for handle in handles {
            assert_eq!(handle.join().unwrap(), 100);
        }
    });
    assert_eq!(SYNC_RUNS.load(Ordering::SeqCst), 1);
}

static CALLER_RUNS: AtomicUsize = AtomicUsize::new(0);

#[memoize(cache = CACHE)]
fn from_anywhere(caller: &str) -> String {
    CALLER_RUNS.fetch_add(1, Ordering::SeqCst);
    format!("hello {caller}")
}

fn twice(caller: &str) {
    assert_eq!(from_anywhere(caller), format!("hello {caller}"));
    assert_eq!(from_anywhere(caller), format!("hello {caller}"));
    assert!(from_anywhere::invalidate(caller).unwrap());
}

#[test]
fn a_sync_function_works_from_a_plain_test() {
    twice("plain");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_function_works_on_a_multi_thread_worker() {
    twice("worker");
    tokio::spawn(async { twice("spawned") }).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_function_works_in_spawn_blocking() {
    tokio::task::spawn_blocking(|| twice("blocking"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn a_sync_function_works_on_a_current_thread_runtime() {
    twice("current");
}

#[test]
fn a_sync_function_works_inside_a_hand_built_current_thread_runtime() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async { twice("block_on") });
}
