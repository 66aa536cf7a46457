//! Run with: cargo bench -p cache-http --bench http_wrk
//!
//! Requests per second of a cached route (the response cache layer on the in-memory
//! backend, every request a hit) against the same route without the layer returning a
//! constant (the floor), measured with `wrk` in interleaved rounds in one run: each round
//! runs both sides back to back, in alternating order, and the result is the median of the
//! per-round ratios (goal: at least 0.8x the floor). `WRK_ROUNDS` (default 7), `WRK_SECS`
//! (default 3) and `WRK_CONNECTIONS` (default 32) change the run; `wrk` must be installed
//! (`sudo apt-get install -y wrk` on Debian and Ubuntu).

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use cache_core::Cache;
use cache_http::ResponseCacheLayer;

/// What both sides answer: a short constant text.
async fn constant() -> &'static str {
    "Heavy computation result"
}

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Serves `app` on a free port, on `runtime`.
fn serve(runtime: &tokio::runtime::Runtime, app: Router) -> SocketAddr {
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    })
}

/// `wrk`'s requests per second against `addr`.
fn wrk(addr: SocketAddr, secs: u64, connections: u64) -> f64 {
    let output = Command::new("wrk")
        .args(["-t1", &format!("-c{connections}"), &format!("-d{secs}s")])
        .arg(format!("http://{addr}/expensive"))
        .output()
        .expect("wrk runs");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(!text.contains("Non-2xx"), "every answer is a 200:\n{text}");
    text.lines()
        .find_map(|line| line.strip_prefix("Requests/sec:"))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Requests/sec in wrk's output:\n{text}"))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    if Command::new("wrk").arg("--version").output().is_err() {
        eprintln!(
            "http_wrk needs wrk, which is not installed: `sudo apt-get install -y wrk` \
             (Debian, Ubuntu) or `brew install wrk` (macOS)"
        );
        return;
    }
    let (rounds, secs, connections) = (
        setting("WRK_ROUNDS", 7),
        setting("WRK_SECS", 3),
        setting("WRK_CONNECTIONS", 32),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let floor = serve(&runtime, Router::new().route("/expensive", get(constant)));
    let layer = ResponseCacheLayer::builder(Cache::memory())
        .timeout(Duration::from_secs(3600))
        .query_string(true)
        .hit_header(true)
        .build()
        .unwrap();
    let cached = serve(
        &runtime,
        Router::new().route("/expensive", get(constant).layer(layer)),
    );
    wrk(floor, 1, connections);
    wrk(cached, 1, connections);
    let (mut floors, mut layers, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let (f, l) = if round % 2 == 0 {
            let f = wrk(floor, secs, connections);
            (f, wrk(cached, secs, connections))
        } else {
            let l = wrk(cached, secs, connections);
            (wrk(floor, secs, connections), l)
        };
        println!(
            "round {round}: floor {f:.0} req/s, layer {l:.0} req/s, {:.3}x",
            l / f
        );
        floors.push(f);
        layers.push(l);
        ratios.push(l / f);
    }
    println!(
        "http_wrk ({rounds} rounds of {secs} s, {connections} connections): floor {:.0} req/s, \
         layer (hits, in memory) {:.0} req/s; median ratio {:.3}x (goal: at least 0.8x)",
        median(floors),
        median(layers),
        median(ratios)
    );
}
