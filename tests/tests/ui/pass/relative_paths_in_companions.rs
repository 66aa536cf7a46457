//! Parameter types and the cache written with `self::` and `super::` paths still resolve in
//! the companion module.
use cache_core::Cache;
use std::sync::LazyLock;

static CACHE: LazyLock<Cache> = LazyLock::new(Cache::memory);

#[derive(serde::Serialize)]
struct Id(u32);

mod inner {
    use cache_core::memoize;

    #[derive(serde::Serialize)]
    pub struct Local(pub u8);

    #[memoize(cache = super::CACHE)]
    pub fn both(id: &super::Id, local: self::Local) -> u32 {
        id.0 + u32::from(local.0)
    }
}

fn main() {
    assert_eq!(inner::both(&Id(1), inner::Local(2)), 3);
    assert!(inner::both::invalidate(&Id(1), inner::Local(2)).unwrap());
}
