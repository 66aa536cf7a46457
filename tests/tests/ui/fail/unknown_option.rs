use cache_core::memoize;

#[memoize(timout = 60)]
fn square(num: u64) -> u64 {
    num * num
}

fn main() {}
