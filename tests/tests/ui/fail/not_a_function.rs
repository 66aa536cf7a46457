use cache_core::memoize;

#[memoize]
struct Square(u64);

fn main() {}
