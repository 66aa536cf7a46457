//! Run with: cargo run -p examples --bin advanced
//!
//! The advanced Flask caching tutorial in Rust. Run two instances against one Redis to see
//! distributed caching:
//!
//! ```text
//! CACHE_REDIS_URL=redis://localhost:6379/0 PORT=5000 cargo run -p examples --bin advanced &
//! CACHE_REDIS_URL=redis://localhost:6379/0 PORT=5001 cargo run -p examples --bin advanced &
//! curl -i 'localhost:5000/expensive?b=2&a=1'   # x-cache: miss, and an ETag
//! curl -i 'localhost:5001/expensive?a=1&b=2'   # x-cache: hit (same sorted query), Age
//! curl localhost:5001/expensive/forget
//! curl localhost:5000/user/7      # prints "Fetching from database..." once
//! curl localhost:5001/user/7      # a hit: the other instance computed it
//! curl -X POST 'localhost:5000/cache/user_123?value=Ada&timeout=300'
//! curl localhost:5001/cache/user_123
//! curl localhost:5001/cache/user_123/delete
//! curl localhost:5001/metrics     # hits, misses and latencies, in Prometheus text format
//! ```

#[tokio::main]
async fn main() {
    examples::serve::main(examples::advanced::router).await;
}
