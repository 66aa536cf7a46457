//! Attributes on the function stay on it, and `#[cfg]` applies to the companions too.
use cache_core::{Cache, memoize};
use std::sync::LazyLock;

static CACHE: LazyLock<Cache> = LazyLock::new(Cache::memory);

#[cfg(any())]
#[memoize(cache = CACHE)]
fn gone(num: u64) -> u64 {
    num
}

#[memoize(cache = CACHE)]
#[inline]
#[must_use]
fn kept(num: u64) -> u64 {
    #![allow(clippy::let_and_return)]
    let doubled = num * 2;
    doubled
}

fn main() {
    assert_eq!(kept(2), 4);
}
