//! Run with: cargo bench -p cache-core --bench hit_cost --no-run, then under callgrind:
//!
//! ```text
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/deps/hit_cost-* sync 1000
//! ```
//!
//! The instructions of an in-memory `#[memoize]` hit, counted without a clock: run it with
//! two values of `n` and divide the difference in "Collected" by the difference in `n`
//! (start-up cancels out). Built with `--features metrics`, it first installs the Prometheus
//! recorder, so the figure includes every counter increment the feature adds; built without,
//! it is the plain hit. Compare the two builds' figures (same machine, same compiler).

use std::hint::black_box;
use std::sync::LazyLock;

use cache_core::{Cache, memoize};

static CACHE: LazyLock<Cache> = LazyLock::new(Cache::memory);

#[memoize(cache = CACHE, timeout = 0)]
fn hundred_sync(n: u64) -> String {
    format!("{n:0>100}")
}

#[memoize(cache = CACHE, timeout = 0)]
async fn hundred(n: u64) -> String {
    format!("{n:0>100}")
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes `--bench`: then a short run that only checks it works.
    let (flavour, n) = match &args[..] {
        [flavour, n] => (flavour.as_str(), n.parse().expect("n")),
        _ => ("sync", 1000),
    };
    #[cfg(feature = "metrics")]
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .expect("the only recorder");
    match flavour {
        "sync" => {
            hundred_sync(7);
            for _ in 0..n {
                black_box(hundred_sync(black_box(7)));
            }
            assert_eq!(hundred_sync::stats().hits, n);
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
            eprintln!("usage: hit_cost <sync|async> <n>");
            std::process::exit(2);
        }
    }
}
