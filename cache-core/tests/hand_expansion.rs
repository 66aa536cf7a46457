//! What `#[memoize]` expands to, written by hand: the contract between the macro crate and
//! `cache_core::__private`. If this stops compiling, the expansion must change with it.

use cache_core::__private::{self as p, NearProbeYes as _, ProbePlain as _};
use cache_core::Cache;
use cache_core::backend::{BlockingBackend, memory::MemoryBackend};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

static RUNS: AtomicUsize = AtomicUsize::new(0);

static SQUARE_SITE: p::Site = p::Site::new(
    p::Kind::Memoize,
    concat!(module_path!(), "::", "square"),
    None,
);

/// The arguments after the key's head, into a key string or the near key's stack buffer.
fn square_args(key: &mut p::KeyBuilder<impl p::KeySink>, num: &u64) -> cache_core::Result<()> {
    key.arg(num)?;
    Ok(())
}

async fn square(cache: &Cache, num: u64) -> String {
    // Four borrows on purpose: the autoref probe picks the policy by return type; two more
    // pick the near cache's wrapper when the return type can be kept there.
    #[allow(clippy::needless_borrow)]
    let policy = (&&&p::NearProbe::<String>::new()).near((&&&&p::Probe::<String>::new()).policy());
    let options = p::Options::timeout(p::seconds(60));
    let (options, near) = match p::near(Some(cache), &SQUARE_SITE, options, &policy, |k| {
        square_args(k, &num)
    }) {
        p::NearLookup::Hit(hit) => return hit,
        p::NearLookup::Miss(options, miss) => (options, miss),
    };
    let prepared = p::prepare(Some(cache), near, |ns| {
        SQUARE_SITE.build(ns, |k| square_args(k, &num))
    });
    p::call_async::<String, _, p::DefaultCodec, _>(
        prepared,
        &SQUARE_SITE,
        options,
        policy,
        async move {
            RUNS.fetch_add(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
            format!("Square of {num} is {}", num * num)
        },
    )
    .await
}

fn assert_send<T: Send>(_: &T) {}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hand_expansion_caches_and_runs_once_under_contention() {
    let backend = Arc::new(MemoryBackend::new());
    let cache = Cache::builder()
        .shared_backend(backend.clone())
        .build()
        .unwrap();
    assert_send(&square(&cache, 1));
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let cache = cache.clone();
        tasks.push(tokio::spawn(async move { square(&cache, 4).await }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), "Square of 4 is 16");
    }
    assert_eq!(RUNS.load(Ordering::SeqCst), 1);
    assert_eq!(
        SQUARE_SITE.build("", |k| square_args(k, &4)).unwrap(),
        "memoize:hand_expansion.square:4"
    );
    // Stored under the namespace and the key as is; `cache.has(..)` would escape its `:`s.
    assert!(BlockingBackend::exists(&*backend, "cache:memoize:hand_expansion.square:4").unwrap());
    assert!(!cache.has("memoize:hand_expansion.square:4").await.unwrap());
    let stats = SQUARE_SITE.stats();
    assert_eq!(stats.stores, 1);
    assert_eq!(stats.misses, 100 - stats.hits);
}
