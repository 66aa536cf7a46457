//! Run with: cargo bench -p cache-core --bench hit_cost --no-run, then under callgrind:
//!
//! ```text
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null --collect-atstart=no \
//!   --toggle-collect='*sync_hits*' target/release/deps/hit_cost-<hash> sync 100000
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null --collect-atstart=no \
//!   --toggle-collect='tokio::runtime::runtime::Runtime::block_on*' \
//!   target/release/deps/hit_cost-<hash> async 100000
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null --collect-atstart=no \
//!   --toggle-collect='*near_hits*' target/release/deps/hit_cost-<hash> near 100000
//! ```
//!
//! The instructions of an in-memory `#[memoize]` hit, counted without a clock: "Collected"
//! divided by `n`. Only the hits are counted (and, async, one first miss): the start-up,
//! which installs a recorder whose clock calibration varies from run to run, is left out.
//! Built with `--features metrics`, it first installs the Prometheus recorder (unless
//! `NO_RECORDER=1`), so the figure includes every counter increment the feature adds;
//! built without, it is the plain hit. Compare the two builds' figures (same machine, same compiler).

use std::hint::black_box;
use std::sync::LazyLock;

use std::time::Duration;

use cache_core::{Cache, NearCache, memoize};

static CACHE: LazyLock<Cache> = LazyLock::new(Cache::memory);

#[memoize(cache = CACHE, timeout = 0)]
fn hundred_sync(n: u64) -> String {
    format!("{n:0>100}")
}

#[memoize(cache = CACHE, timeout = 0)]
async fn hundred(n: u64) -> String {
    format!("{n:0>100}")
}

/// `n` sync hits: the function to count alone (`--toggle-collect='*sync_hits*'`).
#[inline(never)]
fn sync_hits(n: u64) {
    for _ in 0..n {
        black_box(hundred_sync(black_box(7)));
    }
}

static NEAR: LazyLock<Cache> = LazyLock::new(|| {
    Cache::builder()
        .near_cache(NearCache::new(Duration::from_secs(600)))
        .build()
        .expect("valid cache")
});

#[memoize(cache = NEAR, timeout = 0, local = 600)]
fn hundred_near(n: u64) -> String {
    format!("{n:0>100}")
}

#[cached::proc_macro::cached(ttl_secs = 600)]
fn hundred_cached_crate(n: u64) -> String {
    format!("{n:0>100}")
}

/// `n` hits of the `cached` crate's `#[cached]`, to compare with (`*cached_crate_hits*`).
#[inline(never)]
fn cached_crate_hits(n: u64) {
    for _ in 0..n {
        black_box(hundred_cached_crate(black_box(7)));
    }
}

/// `n` near hits (`--toggle-collect='*near_hits*'`).
#[inline(never)]
fn near_hits(n: u64) {
    for _ in 0..n {
        black_box(hundred_near(black_box(7)));
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes `--bench`: then a short run that only checks it works.
    let (flavour, n) = match &args[..] {
        [flavour, n] => (flavour.as_str(), n.parse().expect("n")),
        _ => ("sync", 1000),
    };
    // `NO_RECORDER=1`: the feature's cost when no recorder is installed.
    #[cfg(feature = "metrics")]
    if std::env::var_os("NO_RECORDER").is_none() {
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .install_recorder()
            .expect("the only recorder");
    }
    match flavour {
        "sync" => {
            hundred_sync(7);
            sync_hits(n);
            assert_eq!(hundred_sync::stats().hits, n);
        }
        "near" => {
            hundred_near(7);
            // The near cache serves once its change channel is in sync (a heartbeat came
            // back, a few milliseconds after start-up).
            while hundred_near::stats().near_hits == 0 {
                std::thread::sleep(Duration::from_millis(1));
                hundred_near(7);
            }
            let before = hundred_near::stats().near_hits;
            near_hits(n);
            assert_eq!(hundred_near::stats().near_hits - before, n);
        }
        "cached_crate" => {
            hundred_cached_crate(7);
            cached_crate_hits(n);
        }
        "async" => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("a runtime");
            runtime.block_on(async {
                hundred(7).await;
                for _ in 0..n {
                    black_box(hundred(black_box(7)).await);
                }
            });
            assert_eq!(hundred::stats().hits, n);
        }
        _ => {
            eprintln!("usage: hit_cost <sync|async|near|cached_crate> <n>");
            std::process::exit(2);
        }
    }
}
