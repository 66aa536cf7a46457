use cache_core::memoize;

#[memoize]
const fn square(num: u64) -> u64 {
    num * num
}

fn main() {}
