//! Every shape and option, compiled with all warnings denied: the expansion adds none.
#![deny(warnings, missing_docs, unused, rust_2018_idioms, clippy::all)]

use std::sync::LazyLock;
use std::time::Duration;

use cache_core::{Cache, cached, memoize};
use serde::{Deserialize, Serialize};

static CACHE: LazyLock<Cache> = LazyLock::new(Cache::memory);

/// A record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    id: u32,
}

/// Public, sync.
#[memoize(cache = CACHE, timeout = 60)]
pub fn square(num: u64) -> u64 {
    num * num
}

/// Public, async, every option.
#[memoize(
    cache = CACHE,
    timeout = Duration::from_millis(500),
    key_prefix = "users",
    unless = id == 0,
    forced_update = refresh,
    cache_none,
    ignore = [refresh],
    codec = cache_core::codec::Json,
    crate = "::cache_core",
)]
pub async fn user(id: u32, refresh: bool) -> Option<User> {
    let _ = refresh;
    Some(User { id })
}

#[memoize(cache = CACHE)]
fn lengths<'a, T: Serialize + ?Sized>(name: &'a str, items: &[u8], user: &User, extra: &T) -> usize
where
    T: std::fmt::Debug,
{
    name.len() + items.len() + user.id as usize + format!("{extra:?}").len()
}

#[memoize(cache = CACHE)]
fn fallible(text: String) -> Result<u8, String> {
    text.parse().map_err(|_| text)
}

#[cached(cache = CACHE, key_prefix = "homepage")]
async fn home() -> String {
    "home".to_owned()
}

#[cached(cache = CACHE)]
fn config() -> Vec<String> {
    Vec::new()
}

/// A repository.
#[derive(Serialize, Deserialize)]
pub struct Repo {
    table: String,
}

impl Repo {
    /// Keyed on `self`.
    #[memoize(cache = CACHE)]
    pub fn count(&self, min: u32) -> u32 {
        min + self.table.len() as u32
    }

    #[memoize(cache = CACHE, ignore = [self])]
    async fn version(&self) -> String {
        self.table.clone()
    }

    #[memoize(cache = CACHE)]
    fn named(table: String) -> Self {
        Self { table }
    }
}

mod nested {
    use super::*;

    #[memoize(cache = CACHE)]
    pub(crate) fn cube(num: u64) -> u64 {
        num * num * num
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    runtime.block_on(async {
        assert_eq!(square(3), 9);
        assert!(user(1, false).await.is_some());
        assert_eq!(lengths::<str>("ab", &[1], &User { id: 1 }, "x"), 7);
        assert!(fallible("x".into()).is_err());
        assert_eq!(home().await, "home");
        assert!(config().is_empty());
        let repo = Repo::named("t".into());
        assert_eq!(repo.count(1), 2);
        assert_eq!(repo.version().await, "t");
        assert_eq!(nested::cube(2), 8);
        square::invalidate(3).unwrap();
        user::invalidate(1).await.unwrap();
        home::invalidate_all().await.unwrap();
        repo.count_invalidate(1).unwrap();
        Repo::version_invalidate().await.unwrap();
        let _ = (square::key(3), square::stats(), nested::cube::key(2));
        let _ = (Repo::count_stats(), repo.count_key(1), Repo::named_key("t".into()));
    });
}
