use cache_core::memoize;

#[memoize(timout = 60, key_prefix = 1, cache_none, cache_none, ignore = [nope])]
fn square(num: u64) -> u64 {
    num * num
}

fn main() {}
