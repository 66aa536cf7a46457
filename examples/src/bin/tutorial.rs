//! Run with: cargo run -p examples --bin tutorial
//!
//! The beginners' Flask-Caching tutorial in Rust. In-memory cache by default; set
//! `CACHE_REDIS_URL=redis://localhost:6379/0` to cache in Redis. Then try:
//!
//! ```text
//! curl localhost:5000/            # cached for 30 s
//! curl localhost:5000/square/5    # 2 s the first time, instant for the next 60 s
//! curl localhost:5000/delete-homepage-cache
//! curl localhost:5000/clear-cache
//! curl localhost:5000/metrics     # hits, misses and latencies, in Prometheus text format
//! ```

#[tokio::main]
async fn main() {
    examples::serve::main(examples::tutorial::router).await;
}
