use cache_core::memoize;

#[memoize(timeout = 60, timeout = 30)]
fn square(num: u64) -> u64 {
    num * num
}

fn main() {}
