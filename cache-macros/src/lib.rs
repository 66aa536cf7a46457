//! The `#[cached]` and `#[memoize]` attributes of [`cache_core`]. Use them through
//! `cache_core` (feature `macros`, on by default); this crate is an implementation detail
//! whose version is pinned to `cache_core`'s.
//!
//! [`cache_core`]: https://docs.rs/cache-core

use proc_macro::TokenStream;

mod analyze;
mod args;
mod expand;

use args::Kind;

/// Caches ONE result of a function, whatever its arguments: a page, a configuration, a
/// report.
///
/// ```
/// use cache_core::{cached, Cache};
///
/// #[cached(key_prefix = "homepage", timeout = 30)]
/// fn home() -> String {
///     "<h1>Welcome</h1>".to_owned() // rendered once, then read from the cache for 30 s
/// }
///
/// cache_core::install(Cache::memory())?;
/// assert_eq!(home(), "<h1>Welcome</h1>");
/// assert_eq!(home::key()?, "homepage");
/// assert!(home::invalidate()?); // forget it; the next call renders again
/// # Ok::<(), cache_core::Error>(())
/// ```
///
/// The key is `key_prefix`, escaped exactly as a key given to `cache.set(..)` is (`:`
/// becomes `%3A`, so `key_prefix = "user:profile"` is `user%3Aprofile`), so
/// `cache.delete("homepage")` forgets the entry above; without one it is
/// `cached:{module path}.{name}`. `home::invalidate_all()` deletes exactly that key and its
/// stampede lease (`homepage:~lease`), never a prefix: keys set by hand that start with
/// `homepage` stay. Because the
/// arguments never enter the key, a function with parameters needs an explicit
/// `key_prefix` (otherwise it is a compile error suggesting [`macro@memoize`]): the caller
/// says on purpose that `page(1)` and `page(2)` share one entry. In an `impl` block and for
/// generic functions the key also gets one `<type>` token for `Self` and for each type
/// parameter, so that entries of different types are never mixed (see the stability note
/// under [`macro@memoize`]).
///
/// Everything else (options, return types, supported shapes, companions, the code without
/// the macro) is as for [`macro@memoize`], except `ignore`, which has no meaning here.
#[proc_macro_attribute]
pub fn cached(args: TokenStream, item: TokenStream) -> TokenStream {
    entry(Kind::Cached, args, item)
}

/// Caches one result per distinct argument list.
///
/// ```
/// use cache_core::{memoize, Cache};
///
/// #[memoize(timeout = 60)]
/// fn square(num: u64) -> String {
///     format!("Square of {num} is {}", num * num)
/// }
///
/// cache_core::install(Cache::memory())?;
/// assert_eq!(square(4), "Square of 4 is 16"); // runs the body, stores the result
/// assert_eq!(square(4), "Square of 4 is 16"); // read from the cache
/// assert!(square::key(4)?.ends_with(".square:4")); // memoize:{crate}.square:4
/// # Ok::<(), cache_core::Error>(())
/// ```
///
/// # Keys
///
/// `memoize:{module path with . for ::}.{name}` (or `memoize:{key_prefix}`, escaped, `.`
/// and `:` included, so no prefix ever equals another prefix's keys or a function path),
/// then a `<type>` token for `Self` (in an `impl` block) and for each type parameter, then
/// one token per argument rendered from its `Serialize` implementation: `square(4)` in
/// crate `app` is `memoize:app.square:4`, a struct argument renders as `(field=value,..)`,
/// and no key ever holds `{` or `}` (a Redis Cluster hash tag). The cache's namespace
/// (`cache:` by default) goes in front of every key that reaches the backend.
/// `square::invalidate_all()` deletes the keys under `{namespace}memoize:app.square:` and
/// the zero-argument key `{namespace}memoize:app.square`, nothing else. See
/// `cache_core::key` for the full scheme.
///
/// Stability: keys without a `<type>` token (free functions that are not generic, with or
/// without `key_prefix`) are the same across builds and compiler versions. The `<type>`
/// tokens of methods and generic functions come from `std::any::type_name`, which may
/// change with a compiler upgrade; such entries then become misses.
///
/// Arguments must implement
/// `serde::Serialize` (leave one out with `ignore`); the stored value must implement
/// `Serialize` and `DeserializeOwned`, and a type that does not is one compile error on
/// the return type.
///
/// # Return types
///
/// Whether a result is stored is decided by its type, not by its name (aliases work):
///
/// | return type | stored |
/// |---|---|
/// | `Result<T, E>` | `Ok` values only; an `Err` is returned and forgotten. `E` needs no serde. |
/// | `Option<T>` | `Some` values only, unless `cache_none` is given |
/// | anything else | every value |
///
/// A function must return something: a function returning `()` is a compile error.
///
/// # Options
///
/// | option | meaning |
/// |---|---|
/// | `timeout = 60` | entry lifetime in whole seconds; `0` never expires |
/// | `timeout = Duration::from_millis(500)` | any expression giving a `std::time::Duration` |
/// | `key_prefix = "sq"` | replace the function's path in the key: `memoize:sq:4` |
/// | `cache = MY_CACHE` | a path to a static that derefs to `cache_core::Cache` |
/// | `unless = expr` | a `bool` expression (may use the arguments): true skips the cache |
/// | `forced_update = expr` | a `bool` expression: true runs the body and stores the result |
/// | `cache_none` | store `None` results of an `Option` function |
/// | `ignore = [a, self]` | parameters left out of the key (brackets, comma-separated) |
/// | `codec = path::To::Codec` | a type implementing `cache_core::codec::Codec` |
/// | `crate = "path"` | where `cache_core` is, when it was renamed (default `::cache_core`) |
/// | `associated` | generate associated-function companions (see below) |
/// | `lease = 5` | seconds or a `Duration`: a miss takes a lease in the backend so one caller across every process computes; the others wait for its value |
/// | `early_refresh = 1.0` | an `f64` beta: recompute probabilistically before expiry (XFetch) |
/// | `serve_stale = 30` | seconds or a `Duration` of grace: past `timeout`, serve the stale value while one caller refreshes it (for an `async fn` whose arguments own their data, in a background task: its future must be `Send`) |
/// | `jitter = 0.1` | an `f64` fraction: shorten each entry's timeout at random by up to 10 % |
/// | `local = 30` | seconds or a `Duration`: how long a result may be served from the cache's near cache (process memory, no key string, no decoding, no backend); `0` keeps the function out of it |
///
/// Without `timeout`, the cache's default timeout applies (300 s unless configured). The
/// `lease`, `early_refresh`, `serve_stale` and `jitter` options are described in
/// `cache_core::stampede`; a plain hit stays one read.
///
/// `local` needs a cache with a near cache (`cache_core::NearCache`, or
/// `CACHE_LOCAL_TIMEOUT`): on a cache without one it is ignored, with one warning per
/// function. Without `local`, a function of a cache with a near cache uses the near
/// cache's own local timeout, if its return type is `Clone + Send + Sync + 'static`; with
/// `local`, a return type that is not is a compile error on the return type. A near hit
/// returns a clone of the value: return an `Arc<T>` when clones are expensive (serde
/// serializes an `Arc` with its `rc` feature).
///
/// ```
/// use std::time::Duration;
/// use cache_core::{memoize, Cache, NearCache};
///
/// static CACHE: std::sync::LazyLock<Cache> = std::sync::LazyLock::new(|| {
///     Cache::builder()
///         .near_cache(NearCache::new(Duration::from_secs(10)))
///         .build()
///         .unwrap()
/// });
///
/// #[memoize(cache = CACHE, local = 30)]
/// fn greeting(name: String) -> String {
///     format!("Hello, {name}")
/// }
///
/// fn main() {
///     assert_eq!(greeting("Ada".into()), "Hello, Ada"); // computed, stored, kept near
///     assert_eq!(greeting("Ada".into()), "Hello, Ada"); // a near hit: a clone
///     assert_eq!(greeting::stats().near_hits, 1);
/// }
/// ```
///
/// ```
/// use cache_core::{memoize, Cache};
///
/// #[memoize(timeout = 60, lease = 5, serve_stale = 30, early_refresh = 1.0, jitter = 0.1)]
/// fn leaderboard(page: u32) -> Vec<String> {
///     vec![format!("page {page}")]
/// }
///
/// fn main() -> cache_core::Result<()> {
///     cache_core::install(Cache::memory())?;
///     assert_eq!(leaderboard(1), ["page 1"]);
///     assert_eq!(leaderboard(1), ["page 1"]);
///     assert_eq!(leaderboard::stats().hits, 1);
///     Ok(())
/// }
/// ```
///
/// ```
/// use std::sync::LazyLock;
/// use std::time::Duration;
/// use cache_core::{memoize, Cache};
///
/// static REPORTS: LazyLock<Cache> = LazyLock::new(|| {
///     Cache::builder().namespace("reports:").build().expect("valid")
/// });
///
/// #[memoize(
///     cache = REPORTS,                      // this cache, not the installed one
///     timeout = Duration::from_millis(1500),
///     key_prefix = "totals",                // key: memoize:totals:{year}
///     unless = year < 2000,                 // old years: always recomputed, never stored
///     forced_update = refresh,              // refresh = true: recompute and overwrite
///     ignore = [refresh, trace_id],         // neither enters the key
///     codec = cache_core::codec::Json,      // store JSON (feature `json`)
/// )]
/// fn totals(year: u32, refresh: bool, trace_id: u64) -> Option<u64> {
///     let _ = (refresh, trace_id);
///     (year > 1990).then_some(u64::from(year) * 10)
/// }
///
/// #[memoize(cache = REPORTS, cache_none)]   // remember "not found" too
/// fn find(id: u32) -> Option<String> {
///     (id == 1).then(|| "one".to_owned())
/// }
///
/// fn main() -> cache_core::Result<()> {
///     assert_eq!(totals(2024, false, 7), Some(20240));
///     assert_eq!(totals::key(2024)?, "memoize:totals:2024");
///     assert_eq!(find(2), None);
///     assert_eq!(find::stats().stores, 1);
///     Ok(())
/// }
/// ```
///
/// With `crate = "..."`, for a crate that depends on `cache_core` under another name:
///
/// ```
/// # extern crate cache_core as my_cache;
/// // Cargo.toml: my_cache = { package = "cache-core", version = "..." }
/// #[my_cache::memoize(crate = "my_cache")]
/// fn square(num: u64) -> u64 {
///     num * num
/// }
/// # assert_eq!(square(3), 9);
/// ```
///
/// # Which cache
///
/// Without `cache = ...`, a function uses the process-wide cache installed with
/// `cache_core::install`. Until one is installed the function runs uncached, and its first
/// call logs a warning naming it. A `cache = PATH` is anything `let c: &Cache = &PATH;`
/// accepts, typically a `static LazyLock<Cache>`.
///
/// # Supported functions
///
/// Sync and `async` functions, any visibility, in any module; parameters by value or by
/// reference (`&str`, `&[T]`, `&MyStruct`); generic functions (each type parameter enters
/// the key as a `<type>` token, so instantiations never share entries); inherent methods
/// taking `&self` (or `self`, `self: Arc<Self>`, ...) and associated functions.
///
/// A method's `self` enters the key, serialized, so `Self` must implement `Serialize`;
/// with `ignore = [self]` it does not, and all values of the type share entries:
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use cache_core::{memoize, Cache};
///
/// #[derive(Serialize, Deserialize)]
/// struct Repo {
///     table: String,
/// }
///
/// impl Repo {
///     #[memoize]                          // key: memoize:app.count:<app.Repo>:(table=users):1
///     fn count(&self, min: u32) -> u32 {
///         min + self.table.len() as u32
///     }
///
///     #[memoize(ignore = [self])]         // key: memoize:app.schema_version:<app.Repo>
///     fn schema_version(&self) -> u32 {
///         3
///     }
/// }
///
/// fn main() -> cache_core::Result<()> {
///     cache_core::install(Cache::memory())?;
///     let users = Repo { table: "users".into() };
///     assert_eq!(users.count(1), 6);
///     assert!(users.count_invalidate(1)?);
///     assert_eq!(users.schema_version(), 3);
///     assert!(Repo::schema_version_key()?.ends_with("Repo>"));
///     Ok(())
/// }
/// ```
///
/// Refused at compile time, each with an error on the offending tokens: `const`, `unsafe`
/// and `extern` functions, `&mut self`, `impl Trait` in arguments or return type,
/// parameters written as patterns (`(a, b): (u8, u8)`), and functions returning nothing.
///
/// # Companions: invalidation, keys, statistics
///
/// Generated from the same key builder as the call, so they always agree with it. For a
/// free function `square`, a module of the same name and visibility holds them (functions
/// and modules live in different namespaces):
///
/// | companion | what it does |
/// |---|---|
/// | `square::invalidate(args..)` | forgets one call's entry; `Result<bool>` (did it exist) |
/// | `square::invalidate_all()` | forgets every entry of the function; `Result<u64>` |
/// | `square::key(args..)` | the call's key without the namespace (the backend holds the entry under `cache.namespace()` followed by it, as is); `Result<String>` |
/// | `square::stats()` | the function's hits, misses, stores...: `StatsSnapshot` |
///
/// They take the parameters that enter the key, with their declared types (ignored
/// parameters are left out). `invalidate` and `invalidate_all` are `async` when the
/// function is, blocking otherwise. For `#[cached]`, `invalidate()` and `key()` take no
/// arguments.
///
/// In an `impl` block, where modules cannot go, they are associated functions named after
/// the method: `count_invalidate`, `count_invalidate_all`, `count_key`, `count_stats`,
/// taking `&self` when `self` is part of the key. The attribute finds out that it is in an
/// `impl` block from a receiver or a `Self` in the signature; for an associated function
/// whose signature has neither, write `associated`:
///
/// ```
/// # use cache_core::memoize;
/// struct Config;
///
/// impl Config {
///     #[memoize(associated)]
///     fn port(service: String) -> u16 {
///         if service == "web" { 80 } else { 8080 }
///     }
/// }
/// # let _ = Config::port_key("web".into());
/// ```
///
/// Limits: in a *trait* `impl`, the extra associated functions are not allowed, so cache an
/// inherent method and call it from the trait method. The companion module of a function
/// declared inside another function's body sees the items of the enclosing module, not
/// those local to that body.
///
/// # Without the macro
///
/// ```
/// use cache_core::{memoize, Cache};
///
/// #[memoize(timeout = 60)]
/// fn square(num: u64) -> String {
///     format!("{}", num * num)
/// }
/// # cache_core::install(Cache::memory()).unwrap();
/// # assert_eq!(square(2), "4");
/// ```
///
/// is, up to hidden names, the same as writing
///
/// ```
/// use cache_core::{Cache, __private as p};
///
/// fn square(num: u64) -> String {
///     let cache = p::default_cache(&square::SITE);
///     let policy = {
///         use p::{ProbeOption as _, ProbePlain as _, ProbeResult as _, ProbeShared as _};
///         use p::{NearProbeNo as _, NearProbeYes as _};
///         // Plain, OkOnly, OkOrShared or SomeOnly, by type; wrapped in `Near` when the
///         // near cache can hold the type (`Clone + Send + Sync + 'static`).
///         (&&&p::NearProbe::<String>::new()).near((&&&&p::Probe::<String>::new()).policy())
///     };
///     let options = p::Options::timeout(p::seconds(60));
///     // A near hit returns before any key string exists (the near key is built on the
///     // stack); the options go in and out by value.
///     let (options, near) = match p::near(cache, &square::SITE, options, &policy, |key| {
///         square::args(key, &num)
///     }) {
///         p::NearLookup::Hit(hit) => return hit,
///         p::NearLookup::Miss(options, near) => (options, near),
///     };
///     // The key is built before the body may move the arguments.
///     let prepared = p::prepare(cache, near, |namespace| square::build_key(namespace, &num));
///     p::call_blocking::<String, _, p::DefaultCodec>(prepared, &square::SITE, options, policy, move || {
///         format!("{}", num * num)
///     })
/// }
///
/// mod square {
///     use super::*;
///
///     pub(super) static SITE: p::Site = p::Site::new(p::Kind::Memoize, module_path!(), None);
///
///     /// The arguments after the key's head, into a key string or the near key's buffer.
///     pub(super) fn args(
///         key: &mut p::KeyBuilder<impl p::KeySink>,
///         num: &u64,
///     ) -> cache_core::Result<()> {
///         key.arg(num)?;
///         Ok(())
///     }
///
///     pub(super) fn build_key(namespace: &str, num: &u64) -> cache_core::Result<String> {
///         SITE.build(namespace, |key| args(key, num))
///     }
///
///     pub fn invalidate(num: u64) -> cache_core::Result<bool> {
///         p::forget_blocking(p::default_cache(&SITE), build_key("", &num))
///     }
///
///     pub fn invalidate_all() -> cache_core::Result<u64> {
///         p::forget_all_blocking(p::default_cache(&SITE), &SITE)
///     }
///
///     pub fn key(num: u64) -> cache_core::Result<String> {
///         build_key("", &num)
///     }
///
///     pub fn stats() -> cache_core::StatsSnapshot {
///         SITE.stats()
///     }
/// }
/// # fn main() {
/// # cache_core::install(Cache::memory()).unwrap();
/// # assert_eq!(square(2), "4");
/// # assert!(square::key(2).unwrap().ends_with(".square:2"));
/// # }
/// ```
///
/// An `async fn` runs its body in an `async move` block passed to `call_async` instead of
/// a closure; either way `return` and `?` in the body keep their meaning.
#[proc_macro_attribute]
pub fn memoize(args: TokenStream, item: TokenStream) -> TokenStream {
    entry(Kind::Memoize, args, item)
}

/// Forwards to the `proc_macro2` expansion. On error, keeps the item as written, so the
/// function still exists for the IDE and for the rest of the crate, and adds every error.
fn entry(kind: Kind, args: TokenStream, item: TokenStream) -> TokenStream {
    let item = proc_macro2::TokenStream::from(item);
    match expand::attribute(kind, args.into(), item.clone()) {
        Ok(tokens) => tokens.into(),
        Err(error) => {
            let mut tokens = item;
            tokens.extend(error.into_compile_error());
            tokens.into()
        }
    }
}
