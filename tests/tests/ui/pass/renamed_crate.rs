//! `crate = "..."` names the runtime crate when it was renamed.
extern crate cache_core as my_cache;

use my_cache::{Cache, memoize};
use std::sync::LazyLock;

static CACHE: LazyLock<Cache> = LazyLock::new(Cache::memory);

#[memoize(crate = "my_cache", cache = CACHE)]
fn square(num: u64) -> u64 {
    num * num
}

fn main() {
    assert_eq!(square(3), 9);
    assert!(square::key(3).unwrap().ends_with(".square:3"));
}
