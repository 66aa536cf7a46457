//! Every supported function shape compiles and caches: sync, async, references, generics,
//! methods, associated functions, visibility, modules.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use cache_core::{Cache, cached, memoize};
use serde::{Deserialize, Serialize};

static CACHE: LazyLock<Cache> = LazyLock::new(Cache::memory);
static RUNS: AtomicUsize = AtomicUsize::new(0);

fn run() {
    RUNS.fetch_add(1, Ordering::SeqCst);
}

#[memoize(cache = CACHE)]
fn square(num: u64) -> String {
    run();
    format!("{}", num * num)
}

#[memoize(cache = CACHE, timeout = 60)]
async fn square_async(num: u64) -> String {
    format!("{}", num * num)
}

#[cached(cache = CACHE, key_prefix = "homepage")]
fn home() -> String {
    "home".to_owned()
}

#[memoize(cache = CACHE)]
fn joined(name: &str, parts: &[u32]) -> String {
    format!("{name}{parts:?}")
}

#[derive(Debug, Serialize, Deserialize)]
struct User {
    id: u32,
}

#[memoize(cache = CACHE)]
fn describe(user: &User) -> String {
    format!("{user:?}")
}

#[memoize(cache = CACHE)]
fn generic<T: Serialize + Clone + serde::de::DeserializeOwned>(value: T) -> Vec<T> {
    vec![value.clone(), value]
}

#[derive(Serialize, Deserialize)]
struct Repo {
    name: String,
}

impl Repo {
    #[memoize(cache = CACHE)]
    fn load(&self, id: u32) -> String {
        format!("{}:{id}", self.name)
    }

    #[memoize(cache = CACHE, ignore = [self])]
    pub async fn load_async(&self, id: u32) -> Result<String, String> {
        Ok(format!("{}:{id}", self.name))
    }

    #[memoize(cache = CACHE)]
    fn make(id: u32) -> Option<Self> {
        let _ = id;
        None
    }

    #[memoize(cache = CACHE, associated)]
    fn plain(id: u32) -> u32 {
        id + 1
    }
}

#[memoize(cache = CACHE)]
fn early(text: &str) -> Result<u32, std::num::ParseIntError> {
    if text.is_empty() {
        return Ok(0);
    }
    let n: u32 = text.parse()?;
    Ok(n + 1)
}

#[memoize(cache = CACHE)]
async fn early_async(text: String) -> Result<u32, std::num::ParseIntError> {
    if text.is_empty() {
        return Ok(0);
    }
    let n: u32 = text.parse()?;
    Ok(n + 1)
}

#[cached(cache = CACHE)]
fn config() -> Vec<String> {
    vec!["a".to_owned()]
}

#[derive(Clone, Serialize, Deserialize)]
struct Token(u32);

impl Token {
    #[memoize(cache = CACHE)]
    fn by_value(self, extra: u32) -> u32 {
        self.0 + extra
    }

    #[memoize(cache = CACHE)]
    fn by_arc(self: std::sync::Arc<Self>) -> u32 {
        self.0
    }
}

mod inner {
    use super::*;

    #[memoize(cache = CACHE)]
    pub fn cube(num: u64) -> u64 {
        num * num * num
    }
}

#[tokio::test]
async fn every_shape_caches() {
    assert_eq!(square(4), "16");
    assert_eq!(square(4), "16");
    assert_eq!(RUNS.load(Ordering::SeqCst), 1);
    assert_eq!(square::key(4).unwrap(), "memoize:macros_shapes.square:4");
    assert_eq!(square_async(3).await, "9");
    assert_eq!(home(), "home");
    assert_eq!(home::key().unwrap(), "homepage");
    assert_eq!(joined("a", &[1, 2]), "a[1, 2]");
    assert_eq!(describe(&User { id: 1 }), "User { id: 1 }");
    assert_eq!(generic(1u8), [1, 1]);
    assert_eq!(
        generic::key(1u8).unwrap(),
        "memoize:macros_shapes.generic:<u8>:1"
    );
    let repo = Repo { name: "r".into() };
    assert_eq!(repo.load(1), "r:1");
    assert_eq!(
        repo.load_key(1).unwrap(),
        "memoize:macros_shapes.load:<macros_shapes.Repo>:(name=r):1"
    );
    assert_eq!(repo.load_async(2).await.unwrap(), "r:2");
    assert_eq!(
        Repo::load_async_key(2).unwrap(),
        "memoize:macros_shapes.load_async:<macros_shapes.Repo>:2"
    );
    assert!(Repo::make(1).is_none());
    assert_eq!(Repo::plain(1), 2);
    assert_eq!(early(""), Ok(0));
    assert_eq!(early("4"), Ok(5));
    assert!(early("x").is_err());
    assert_eq!(early_async(String::new()).await, Ok(0));
    assert!(early_async("x".into()).await.is_err());
    assert_eq!(config(), ["a"]);
    assert_eq!(config::key().unwrap(), "cached:macros_shapes.config");
    assert_eq!(Token(1).by_value(2), 3);
    assert_eq!(
        Token(1).by_value_key(2).unwrap(),
        "memoize:macros_shapes.by_value:<macros_shapes.Token>:1:2"
    );
    assert_eq!(std::sync::Arc::new(Token(7)).by_arc(), 7);
    assert_eq!(inner::cube(2), 8);
    assert_eq!(
        inner::cube::key(2).unwrap(),
        "memoize:macros_shapes.inner.cube:2"
    );
}
