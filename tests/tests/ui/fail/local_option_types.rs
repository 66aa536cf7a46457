use cache_core::memoize;

#[memoize(local = "30s")]
fn square(num: u64) -> u64 {
    num * num
}

#[memoize(local = 1.5)]
fn cube(num: u64) -> u64 {
    num * num * num
}

#[memoize(local = 30u32)]
fn twice(num: u64) -> u64 {
    num * 2
}

#[memoize(local = 30 * 2)]
fn thrice(num: u64) -> u64 {
    num * 3
}

fn main() {}
