use cache_core::{Cache, memoize};

static NOT_A_CACHE: u32 = 1;

#[memoize(unless = "yes", cache = NOT_A_CACHE)]
fn square(num: u64) -> u64 {
    num * num
}

#[memoize(timeout = num)]
fn cube(num: u64) -> u64 {
    num * num * num
}

fn main() {
    let _ = Cache::memory();
}
