//! Items used by the code that `#[cached]` and `#[memoize]` expand to.
//!
//! **Not public API.** Nothing here follows semantic versioning; the macro crate is pinned
//! to this crate's exact version, so both always change together.

use std::marker::PhantomData;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

pub use core::future::Future;
pub use core::option::Option::{self, None, Some};
pub use core::result::Result::{self, Err, Ok};
pub use core::time::Duration;
pub use std::string::String;

pub use crate::codec::{Codec, DefaultCodec};
pub use crate::key::{KeyBuilder, KeySink, NearSink};
pub use crate::options::Options;
pub use crate::policy::{Near, NearRestore, OkOnly, OkOrShared, Plain, Policy, SomeOnly};
pub use crate::stampede::Stampede;

use crate::Cache;
use crate::drive::{Inline, Spawn, run_async, run_blocking};
use crate::engine::{Plan, Planner};
use crate::key::{escape_name, escape_str, write_path};
use crate::near::NearPlan;
use crate::observe;
use crate::stampede::lease_key;
use crate::stats::{Counters, Stats, StatsSnapshot};

/// Whether a site caches one entry (`#[cached]`) or one per argument list (`#[memoize]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `#[cached]`.
    Cached,
    /// `#[memoize]`.
    Memoize,
}

/// One annotated function: its name, key head and counters. One `static` per function.
#[derive(Debug)]
pub struct Site {
    kind: Kind,
    path: &'static str,
    key_prefix: Option<&'static str>,
    typed: bool,
    head: OnceLock<Box<str>>,
    stats: Stats,
    warned: AtomicBool,
    warned_near: AtomicBool,
}

impl Site {
    /// A site for the function at `path` (`module_path!()::name`).
    pub const fn new(kind: Kind, path: &'static str, key_prefix: Option<&'static str>) -> Self {
        Self {
            kind,
            path,
            key_prefix,
            typed: false,
            head: OnceLock::new(),
            stats: Stats::function(path),
            warned: AtomicBool::new(false),
            warned_near: AtomicBool::new(false),
        }
    }

    /// The same site, for a function whose keys carry `<Type>` tokens after the head (a
    /// method, or a generic function).
    pub const fn typed(mut self) -> Self {
        self.typed = true;
        self
    }

    /// The function's path, as written in logs.
    pub fn path(&self) -> &'static str {
        self.path
    }

    /// The key head: the escaped `key_prefix` for `#[cached]` with one (the key that
    /// `cache.set(key_prefix, ..)` would write), `cached:{path}` without, and
    /// `memoize:{key_prefix or path}` for `#[memoize]`, with `::` written as `.` and the
    /// `key_prefix` escaped with `.` included (see [`crate::key`]).
    #[inline]
    pub fn head(&self) -> &str {
        self.head.get_or_init(|| {
            let mut head = String::new();
            match (self.kind, self.key_prefix) {
                (Kind::Cached, Some(prefix)) => escape_str(prefix, &mut head),
                (Kind::Cached, None) => {
                    head.push_str("cached:");
                    write_path(self.path, &mut head);
                }
                (Kind::Memoize, Some(prefix)) => {
                    head.push_str("memoize:");
                    escape_name(prefix, &mut head);
                }
                (Kind::Memoize, None) => {
                    head.push_str("memoize:");
                    write_path(self.path, &mut head);
                }
            }
            head.into()
        })
    }

    /// A key builder that starts with `namespace` and this site's head.
    #[inline]
    pub fn key(&self, namespace: &str) -> KeyBuilder {
        KeyBuilder::with_prefix(namespace, self.head())
    }

    /// The key in `namespace` of the call whose arguments `args` writes.
    #[inline]
    pub fn build(
        &self,
        namespace: &str,
        args: impl FnOnce(&mut KeyBuilder) -> crate::Result<()>,
    ) -> crate::Result<String> {
        let mut key = self.key(namespace);
        args(&mut key)?;
        Ok(key.finish())
    }

    /// What forgetting every entry of this site in namespace `ns` deletes: exact keys, and
    /// key prefixes. `#[memoize]`: its zero-argument key `{ns}{head}` and everything under
    /// `{ns}{head}:`. `#[cached]`: its key and the key's lease, and, when its keys carry
    /// `<Type>` tokens, everything under `{ns}{head}:<`. A key a user `set` by hand holds
    /// no `:` after the namespace, so it is never under one of these prefixes.
    fn everything(&self, ns: &str) -> (Vec<String>, Option<String>) {
        let mut key = String::with_capacity(ns.len() + self.head().len() + 8);
        key.push_str(ns);
        key.push_str(self.head());
        let mut under = key.clone();
        under.push(':');
        match self.kind {
            // The key's lease is under `under`.
            Kind::Memoize => (vec![key], Some(under)),
            Kind::Cached => {
                let lease = lease_key(&key);
                under.push('<');
                (vec![key, lease], self.typed.then_some(under))
            }
        }
    }

    /// This function's counters.
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    #[cold]
    fn warn_no_near(&self) {
        if !self.warned_near.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                function = self.path,
                "`local = ..` is ignored: this function's cache has no near cache; give it \
                 one with CacheBuilder::near_cache(..) or CACHE_LOCAL_TIMEOUT"
            );
        }
    }

    fn warn_uninstalled(&self) {
        if !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                function = self.path,
                "no cache is installed, so this function runs uncached; call \
                 cache_core::install(..) at start-up or give the attribute `cache = ..`"
            );
        }
    }
}

/// The process-wide default cache for `site`, warning once per site when there is none.
pub fn default_cache(site: &Site) -> Option<&'static Cache> {
    let cache = crate::global::installed();
    if cache.is_none() {
        site.warn_uninstalled();
    }
    cache
}

/// The cache named by `cache = <path>`.
pub fn given_cache(cache: &Cache) -> Option<&Cache> {
    Some(cache)
}

/// The cache of one call, its key, built before the body takes the arguments, and its
/// near miss.
pub type Prepared<'a> = Option<(&'a Cache, crate::Result<String>, NearMiss)>;

/// Builds the key of a call for `cache` (nothing when there is no cache). The closure runs
/// at once, so it may borrow arguments that the body moves afterwards.
#[inline]
pub fn prepare<'a>(
    cache: Option<&'a Cache>,
    near: NearMiss,
    key: impl FnOnce(&str) -> crate::Result<String>,
) -> Prepared<'a> {
    cache.map(|cache| (cache, key(cache.namespace()), near))
}

/// What the near cache said about one call, before its key string is built.
pub enum NearLookup<R> {
    /// A near hit: the result.
    Hit(R),
    /// A near miss: the call goes on through the backend, with these options.
    Miss(Options, NearMiss),
}

/// A near miss: whether, and how, the call keeps its value in the near cache.
#[derive(Debug)]
pub struct NearMiss(Option<Box<NearPlan>>);

/// Whether `cache` has a near cache: the expansion's one branch before [`near`].
#[inline(always)]
pub fn has_near(cache: Option<&Cache>) -> bool {
    cache.is_some_and(|cache| cache.inner.near.is_some())
}

/// The near miss of a call whose cache has no near cache (warning once when the function
/// asked for one with `local = ..`).
#[inline(always)]
pub fn no_near(cache: Option<&Cache>, site: &Site, options: Options) -> (Options, NearMiss) {
    if cache.is_some() && options.local.is_some_and(|local| !local.is_zero()) {
        site.warn_no_near();
    }
    (options, NearMiss(None))
}

/// Looks a call up in its cache's near cache, if it has one and the call uses it; `args`
/// writes the call's arguments into the near key (on the stack). The expansion calls it
/// only after [`has_near`], so a call without a near cache costs that one branch.
#[inline]
pub fn near<R, P: NearRestore<R>>(
    cache: Option<&Cache>,
    site: &Site,
    options: Options,
    policy: &P,
    args: impl FnOnce(&mut KeyBuilder<NearSink>) -> crate::Result<()>,
) -> NearLookup<R> {
    let Some(cache) = cache else {
        return NearLookup::Miss(options, NearMiss(None));
    };
    match near_lookup(cache, site, &options, policy, args) {
        Ok(hit) => NearLookup::Hit(hit),
        Err(miss) => NearLookup::Miss(options, miss),
    }
}

fn near_lookup<R, P: NearRestore<R>>(
    cache: &Cache,
    site: &Site,
    options: &Options,
    policy: &P,
    args: impl FnOnce(&mut KeyBuilder<NearSink>) -> crate::Result<()>,
) -> Result<R, NearMiss> {
    let miss = Err(NearMiss(None));
    let Some(tier) = cache.near() else {
        return miss;
    };
    let local = options.local.unwrap_or(tier.local());
    if local.is_zero() || options.unless || !policy.near_capable() {
        return miss;
    }
    let mut key = KeyBuilder::near(cache.namespace(), site.head());
    if args(&mut key).is_err() {
        // `prepare` meets the same error, and logs it.
        return miss;
    }
    let key = key.near_key();
    if !options.forced_update
        && let Some(value) = tier.get(key)
        && let Some(result) = policy.near_restore(&value)
    {
        let counters = Counters {
            cache: &cache.inner.stats,
            site: Some(&site.stats),
        };
        counters.near_hit();
        return Ok(result);
    }
    Err(NearMiss(Some(Box::new(tier.plan(key, local)))))
}

/// Builds the plan for one call, or `None` to run the function without the cache.
#[inline]
fn plan<'a>(prepared: Prepared<'a>, site: &'a Site, options: &'a Options) -> Option<Plan<'a>> {
    let Some((cache, key, near)) = prepared else {
        site.stats.bypass();
        return None;
    };
    let counters = Counters {
        cache: &cache.inner.stats,
        site: Some(&site.stats),
    };
    if options.unless {
        counters.bypass();
        return None;
    }
    match key {
        Ok(key) => Some(Plan {
            cache,
            key,
            options,
            counters,
            label: site.path,
            outage: Default::default(),
            near: near.0,
        }),
        Err(error) => {
            tracing::warn!(function = site.path, error = %format_args!("{error:#}"), "cannot build the cache key; running uncached");
            counters.error();
            counters.bypass();
            None
        }
    }
}

/// The plan of one async call of a site.
struct SitePlan<'a> {
    prepared: Prepared<'a>,
    site: &'a Site,
}

impl Planner for SitePlan<'_> {
    #[inline]
    fn plan<'o>(self, options: &'o Options) -> Option<Plan<'o>>
    where
        Self: 'o,
    {
        plan(self.prepared, self.site, options)
    }
}

/// `P` stores results of type `R`: [`Policy`] under a name that makes a clean error.
///
/// The expansion's calls are bounded by this trait, spanned on the user's return type, so a
/// return type that cannot be stored gets one error naming it there, instead of one per
/// missing serde trait.
#[diagnostic::on_unimplemented(
    message = "the return type `{R}` cannot be cached",
    label = "a cached value must implement `Serialize` and `DeserializeOwned`",
    note = "derive `serde::Serialize` and `serde::Deserialize` for the stored type (for \
            `Result<T, E>` and `Option<T>`, that is `T`)"
)]
pub trait Stores<R>: Policy<R> {}

#[diagnostic::do_not_recommend]
impl<R, P: Policy<R>> Stores<R> for P {}

/// Runs a sync function through the cache.
pub fn call_blocking<R, P: Stores<R>, C: Codec>(
    prepared: Prepared<'_>,
    site: &Site,
    options: Options,
    policy: P,
    body: impl FnOnce() -> R,
) -> R {
    let span = observe::call_span(site.path, key_of(&prepared));
    span.in_scope(|| match plan(prepared, site, &options) {
        Some(plan) => run_blocking::<R, P, C, _>(plan, policy, body),
        None => body(),
    })
}

/// The full key of a prepared call, if it has one (for its span).
#[inline]
fn key_of<'a>(prepared: &'a Prepared<'_>) -> Option<&'a str> {
    prepared.as_ref()?.1.as_deref().ok()
}

/// Runs an async function through the cache.
///
/// A plain function returning the call's future, not an `async fn` around it, so the hit
/// path has one level of future nesting less; the plan is made on the future's first poll.
pub fn call_async<'a, R, P, C, F>(
    prepared: Prepared<'a>,
    site: &'a Site,
    options: Options,
    policy: P,
    body: F,
) -> impl Future<Output = R> + 'a
where
    R: 'a,
    P: Stores<R> + 'a,
    C: Codec,
    F: Future<Output = R> + 'a,
{
    let span = observe::call_span(site.path, key_of(&prepared));
    let plan = SitePlan { prepared, site };
    span.instrument(run_async::<R, P, C, _>(plan, options, policy, body, Inline))
}

/// [`call_async`] for a function with `serve_stale` whose body owns its data: the refresh
/// of a stale value runs in a background task, so every caller, the one that triggered
/// the refresh included, is answered at once.
pub fn call_async_detached<'a, R, P, C, F>(
    prepared: Prepared<'a>,
    site: &'static Site,
    options: Options,
    policy: P,
    body: F,
) -> impl Future<Output = R> + 'a
where
    R: Send + 'static,
    P: Stores<R> + Copy + Send + Sync + 'static,
    P::Stored: Send,
    C: Codec,
    F: Future<Output = R> + Send + 'static,
{
    let spawn: Spawn<C> = Spawn {
        site: Some(&site.stats),
        codec: PhantomData,
    };
    let span = observe::call_span(site.path, key_of(&prepared));
    let plan = SitePlan { prepared, site };
    span.instrument(run_async::<R, P, C, _>(plan, options, policy, body, spawn))
}

/// Forgets one entry by its logical key (as built with an empty namespace).
pub async fn forget(cache: Option<&Cache>, key: crate::Result<String>) -> crate::Result<bool> {
    match cache {
        Some(cache) => cache.delete_built(&cache.namespaced(&key?)).await,
        None => Ok(false),
    }
}

/// Blocking [`forget`].
pub fn forget_blocking(cache: Option<&Cache>, key: crate::Result<String>) -> crate::Result<bool> {
    match cache {
        Some(cache) => cache.blocking().delete_built(&cache.namespaced(&key?)),
        None => Ok(false),
    }
}

/// Forgets every entry of a site, and nothing else (see `Site::everything`); returns how
/// many keys were removed, leases in flight included.
pub async fn forget_all(cache: Option<&Cache>, site: &Site) -> crate::Result<u64> {
    let Some(cache) = cache else { return Ok(0) };
    let (exact, under) = site.everything(cache.namespace());
    let mut removed = 0;
    // One key at a time: a key and its lease lie in different Redis Cluster slots.
    for key in &exact {
        removed += u64::from(cache.delete_built(key).await?);
    }
    if let Some(under) = under {
        removed += cache.delete_built_prefix(&under).await?;
    }
    Ok(removed)
}

/// Blocking [`forget_all`].
pub fn forget_all_blocking(cache: Option<&Cache>, site: &Site) -> crate::Result<u64> {
    let Some(cache) = cache else { return Ok(0) };
    let blocking = cache.blocking();
    let (exact, under) = site.everything(cache.namespace());
    let mut removed = 0;
    for key in &exact {
        removed += u64::from(blocking.delete_built(key)?);
    }
    if let Some(under) = under {
        removed += blocking.delete_built_prefix(&under)?;
    }
    Ok(removed)
}

/// The options of one call, in the order the expansion writes them (a function, so adding
/// an option never makes older expansions' struct literals incomplete or redundant).
pub fn options(
    timeout: Option<Duration>,
    unless: bool,
    forced_update: bool,
    cache_none: bool,
    stampede: Stampede,
    local: Option<Duration>,
) -> Options {
    Options {
        timeout,
        unless,
        forced_update,
        cache_none,
        stampede,
        local,
    }
}

/// The near cache's policy for return type `R` (see [`NearProbe`]).
pub struct NearProbe<R>(PhantomData<fn() -> R>);

impl<R> NearProbe<R> {
    /// A probe for return type `R`.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        Self(PhantomData)
    }
}

/// A return type the near cache cannot hold: the policy as it is.
pub trait NearProbeNo {
    /// The policy.
    fn near<P>(&self, policy: P) -> P {
        policy
    }
}
impl<R> NearProbeNo for &NearProbe<R> {}

/// A return type the near cache can hold (`Clone + Send + Sync + 'static`): the policy
/// wrapped in [`Near`].
pub trait NearProbeYes {
    /// The policy.
    fn near<P>(&self, policy: P) -> Near<P> {
        Near(policy)
    }
}
impl<R: Clone + Send + Sync + 'static> NearProbeYes for &&NearProbe<R> {}

/// A return type that a function with `local = ..` returns: asserted with one spanned
/// check on the return type.
#[diagnostic::on_unimplemented(
    message = "the return type `{Self}` cannot be kept in the near cache (`local = ..`)",
    label = "a near-cached value must be `Clone + Send + Sync + 'static`",
    note = "return an `Arc<T>` for a value that is not `Clone` (or cheap clones), or remove `local`"
)]
pub trait Local: Clone + Send + Sync + 'static {}

#[diagnostic::do_not_recommend]
impl<R: Clone + Send + Sync + 'static> Local for R {}

/// Asserts that `R` can be kept in the near cache.
pub const fn assert_local<R: Local>() {}

/// A timeout of whole seconds.
pub const fn seconds(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

/// The type whose [`Probe`] traits pick the storing [`Policy`] of a return type `R`.
///
/// The expansion calls `(&&&&Probe::<R>::new()).policy()` with the four probe traits in
/// scope: method resolution picks [`ProbeShared`] for `Result<T, E>` with `E: Clone + Send +
/// Sync + 'static`, [`ProbeResult`] for any other `Result<T, E>`, [`ProbeOption`] for
/// `Option<T>`, and [`ProbePlain`] for any other type, by the type itself (aliases included),
/// never by its name.
pub struct Probe<R>(PhantomData<fn() -> R>);

impl<R> Probe<R> {
    /// A probe for return type `R`.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        Self(PhantomData)
    }
}

/// Any return type: stored whole.
pub trait ProbePlain {
    /// The policy.
    fn policy(&self) -> Plain {
        Plain
    }
}
impl<R> ProbePlain for &Probe<R> {}

/// `Result<T, E>`: `Ok` stored.
pub trait ProbeResult {
    /// The policy.
    fn policy(&self) -> OkOnly {
        OkOnly
    }
}
impl<T, E> ProbeResult for &&Probe<core::result::Result<T, E>> {}

/// `Result<T, E>` with a cloneable error: `Ok` stored, an `Err` shared with the callers
/// that waited on the same flight.
pub trait ProbeShared {
    /// The policy.
    fn policy(&self) -> OkOrShared {
        OkOrShared
    }
}
impl<T, E: Clone + Send + Sync + 'static> ProbeShared for &&&Probe<core::result::Result<T, E>> {}

/// `Option<T>`: `Some` stored (and `None` with `cache_none`).
pub trait ProbeOption {
    /// The policy.
    fn policy(&self) -> SomeOnly {
        SomeOnly
    }
}
impl<T> ProbeOption for &&Probe<core::option::Option<T>> {}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy_name<P>(_: &P) -> &'static str {
        std::any::type_name::<P>().rsplit("::").next().unwrap()
    }

    type Fallible = core::result::Result<u8, String>;
    type Unshared = core::result::Result<u8, std::io::Error>;

    #[test]
    #[allow(clippy::needless_borrow)] // the borrows are the probe: each level is one rule
    fn the_probe_picks_the_policy_by_type() {
        assert_eq!(policy_name(&(&&&&Probe::<u8>::new()).policy()), "Plain");
        assert_eq!(
            policy_name(&(&&&&Probe::<Fallible>::new()).policy()),
            "OkOrShared"
        );
        assert_eq!(
            policy_name(&(&&&&Probe::<Unshared>::new()).policy()),
            "OkOnly"
        );
        assert_eq!(
            policy_name(&(&&&&Probe::<Option<u8>>::new()).policy()),
            "SomeOnly"
        );
    }

    #[test]
    fn heads_follow_the_key_scheme() {
        let memo = Site::new(Kind::Memoize, "app::math::square", None);
        assert_eq!(memo.head(), "memoize:app.math.square");
        let grouped = Site::new(Kind::Memoize, "app::math::square", Some("sq"));
        assert_eq!(grouped.head(), "memoize:sq");
        let dotted = Site::new(Kind::Memoize, "app::math::square", Some("app.math.square"));
        assert_eq!(dotted.head(), "memoize:app%2Emath%2Esquare");
        let nested = Site::new(Kind::Memoize, "app::order_lines", Some("order:lines"));
        assert_eq!(nested.head(), "memoize:order%3Alines");
        let view = Site::new(Kind::Cached, "app::home", Some("homepage"));
        assert_eq!(view.head(), "homepage");
        let profile = Site::new(Kind::Cached, "app::profile", Some("user:{profile}"));
        assert_eq!(profile.head(), "user%3A%7Bprofile%7D");
        let plain = Site::new(Kind::Cached, "app::home", None);
        assert_eq!(plain.head(), "cached:app.home");
    }

    #[test]
    fn forgetting_everything_names_exact_keys_and_own_prefixes() {
        let memo = Site::new(Kind::Memoize, "app::order", Some("order"));
        let (exact, under) = memo.everything("cache:");
        assert_eq!(exact, ["cache:memoize:order"]);
        assert_eq!(under.as_deref(), Some("cache:memoize:order:"));
        let view = Site::new(Kind::Cached, "app::home", Some("homepage"));
        let (exact, under) = view.everything("cache:");
        assert_eq!(exact, ["cache:homepage", "cache:homepage:~lease"]);
        assert_eq!(under, None);
        let method = Site::new(Kind::Cached, "app::View::home", Some("homepage")).typed();
        assert_eq!(method.everything("").1.as_deref(), Some("homepage:<"));
    }
}
