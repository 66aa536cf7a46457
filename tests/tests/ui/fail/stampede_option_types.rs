use cache_core::memoize;

#[memoize(lease = "5s", serve_stale = 1.5)]
fn square(num: u64) -> u64 {
    num * num
}

#[memoize(early_refresh = true, jitter = "a tenth")]
fn cube(num: u64) -> u64 {
    num * num * num
}

fn main() {}
