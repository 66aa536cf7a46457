//! One cached call, from lookup to store: the logic shared by `#[cached]`, `#[memoize]` and
//! [`Cache::get_or_set_with`], for sync and async callers alike. Only the I/O edge (a
//! blocking or an async backend call, a blocking or an async wait) differs between
//! [`run_blocking`] and [`run_async`].

use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Result;
use crate::backend::{Backend, BlockingBackend, Ttl};
use crate::cache::{Cache, read, ttl_of};
use crate::codec::Codec;
use crate::counted::open_counted;
use crate::envelope;
use crate::flight::{Leader, Mark, Outcome, Role, SharedResult as Shared};
use crate::lease::Lease;
use crate::shape::{Shape, shape};
use crate::stampede::{Freshness, Stampede, lease_key, lease_token, poll_delay};
use crate::stats::{Counters, Stats};

/// Decides which results of a function are stored, and how a stored value becomes a result
/// again. Chosen per return type by the expansion (see `__private::Probe`).
pub trait Policy<R> {
    /// What is stored: `T` for `T` and `Result<T, E>`, `Option<T>` for `Option<T>`.
    type Stored: Serialize + DeserializeOwned;

    /// The part of `result` to store, or `None` to store nothing.
    fn storable<'r>(&self, result: &'r R, cache_none: bool) -> Option<&'r Self::Stored>;

    /// The result rebuilt from a stored value.
    fn restore(&self, stored: Self::Stored) -> R;

    /// A result that is not stored, in a form the callers waiting on the same flight can
    /// return too (`None`: they take over one at a time instead).
    fn share(&self, _result: &R) -> Option<Shared> {
        None
    }

    /// The result rebuilt from what [`Policy::share`] gave.
    fn unshare(&self, _shared: &Shared) -> Option<R> {
        None
    }
}

/// Stores every result.
#[derive(Debug, Clone, Copy)]
pub struct Plain;

impl<T: Serialize + DeserializeOwned> Policy<T> for Plain {
    type Stored = T;
    fn storable<'r>(&self, result: &'r T, _cache_none: bool) -> Option<&'r T> {
        Some(result)
    }
    fn restore(&self, stored: T) -> T {
        stored
    }
}

/// Stores `Ok` values only; an `Err` is returned and forgotten.
#[derive(Debug, Clone, Copy)]
pub struct OkOnly;

impl<T: Serialize + DeserializeOwned, E> Policy<Result<T, E>> for OkOnly {
    type Stored = T;
    fn storable<'r>(&self, result: &'r Result<T, E>, _cache_none: bool) -> Option<&'r T> {
        result.as_ref().ok()
    }
    fn restore(&self, stored: T) -> Result<T, E> {
        Ok(stored)
    }
}

/// Stores `Ok` values only, like [`OkOnly`], and hands an `Err` to every caller that waited
/// on the same flight, so a failure runs the function once, not once per waiter. Picked
/// for `Result<T, E>` when `E: Clone + Send + Sync + 'static`.
#[derive(Debug, Clone, Copy)]
pub struct OkOrShared;

impl<T, E> Policy<Result<T, E>> for OkOrShared
where
    T: Serialize + DeserializeOwned,
    E: Clone + Send + Sync + 'static,
{
    type Stored = T;
    fn storable<'r>(&self, result: &'r Result<T, E>, _cache_none: bool) -> Option<&'r T> {
        result.as_ref().ok()
    }
    fn restore(&self, stored: T) -> Result<T, E> {
        Ok(stored)
    }
    fn share(&self, result: &Result<T, E>) -> Option<Shared> {
        let error = result.as_ref().err()?;
        Some(Arc::new(error.clone()))
    }
    fn unshare(&self, shared: &Shared) -> Option<Result<T, E>> {
        shared.downcast_ref::<E>().map(|error| Err(error.clone()))
    }
}

/// The attributes' rules for any `T`, read from the value itself (see [`crate::shape`]):
/// an `Err` is not stored, a `None` only with `cache_none`, anything else is. What
/// [`Cache::get_or_set_with`](crate::Cache::get_or_set_with) uses, being generic.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Inspect;

impl<T: Serialize + DeserializeOwned> Policy<T> for Inspect {
    type Stored = T;
    fn storable<'r>(&self, result: &'r T, cache_none: bool) -> Option<&'r T> {
        match shape(result) {
            Shape::Err => None,
            Shape::None => cache_none.then_some(result),
            Shape::Value => Some(result),
        }
    }
    fn restore(&self, stored: T) -> T {
        stored
    }
}

/// Stores `Some` values, and `None` too when `cache_none` is set.
#[derive(Debug, Clone, Copy)]
pub struct SomeOnly;

impl<T: Serialize + DeserializeOwned> Policy<Option<T>> for SomeOnly {
    type Stored = Option<T>;
    fn storable<'r>(&self, result: &'r Option<T>, cache_none: bool) -> Option<&'r Option<T>> {
        (result.is_some() || cache_none).then_some(result)
    }
    fn restore(&self, stored: Option<T>) -> Option<T> {
        stored
    }
}

/// Per-call switches, written by the expansion or given to
/// [`Cache::get_or_set_with_options`](crate::Cache::get_or_set_with_options) and its kin.
///
/// `#[non_exhaustive]`: build one with [`CallOptions::builder`](Options::builder), or start
/// from [`CallOptions::timeout`](Options::timeout) or `CallOptions::default()` and set
/// fields, so adding a switch never breaks your code.
///
/// ```
/// use std::time::Duration;
/// use cache_core::{CallOptions, stampede::Stampede};
///
/// let options = CallOptions::builder()
///     .timeout(Duration::from_secs(60))
///     .stampede(Stampede::default().lease(Duration::from_secs(5)))
///     .cache_none(true)
///     .build();
/// assert_eq!(options.timeout, Some(Duration::from_secs(60)));
/// ```
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct Options {
    /// The entry's timeout; `None` for the cache's default. Zero: never expires.
    pub timeout: Option<Duration>,
    /// Skip the cache entirely for this call: the function runs, nothing is read or
    /// stored, and a bypass is counted.
    pub unless: bool,
    /// Run the function and store its result without reading the cache.
    pub forced_update: bool,
    /// Store `None` results of `Option` functions.
    pub cache_none: bool,
    /// Leases, early refresh, serve-stale and jitter.
    pub stampede: Stampede,
}

impl Options {
    /// Options with only a timeout set.
    pub fn timeout(timeout: Duration) -> Self {
        Self {
            timeout: Some(timeout),
            ..Self::default()
        }
    }

    /// A builder, from the defaults (the cache's timeout, every switch off).
    pub fn builder() -> OptionsBuilder {
        OptionsBuilder(Self::default())
    }
}

/// Builds [`CallOptions`](Options); see [`CallOptions::builder`](Options::builder).
#[derive(Debug, Clone, Copy)]
#[must_use]
pub struct OptionsBuilder(Options);

impl OptionsBuilder {
    /// See [`CallOptions::timeout`](Options::timeout) (the field).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.0.timeout = Some(timeout);
        self
    }

    /// See [`CallOptions::unless`](Options::unless).
    pub fn unless(mut self, unless: bool) -> Self {
        self.0.unless = unless;
        self
    }

    /// See [`CallOptions::forced_update`](Options::forced_update).
    pub fn forced_update(mut self, forced_update: bool) -> Self {
        self.0.forced_update = forced_update;
        self
    }

    /// See [`CallOptions::cache_none`](Options::cache_none).
    pub fn cache_none(mut self, cache_none: bool) -> Self {
        self.0.cache_none = cache_none;
        self
    }

    /// See [`CallOptions::stampede`](Options::stampede).
    pub fn stampede(mut self, stampede: Stampede) -> Self {
        self.0.stampede = stampede;
        self
    }

    /// The options.
    pub fn build(self) -> Options {
        self.0
    }
}

/// A call that will use the cache: the cache, the full key and the switches.
pub(crate) struct Plan<'a> {
    pub(crate) cache: &'a Cache,
    pub(crate) key: String,
    pub(crate) options: Options,
    pub(crate) counters: Counters<'a>,
    pub(crate) label: &'a str,
    pub(crate) outage: Outage,
}

/// Whether this call already met a backend outage (a connection error or a time-out). Once
/// it has, the call skips every later backend step (re-reads, the lease and its release,
/// the store), so a caller pays at most one time-out and a failing store never delays it.
#[derive(Debug, Default)]
pub(crate) struct Outage(AtomicBool);

impl Outage {
    /// Notes `result`'s error if it is an outage.
    #[inline]
    fn note<T>(&self, result: &Result<T>) {
        if let Err(error) = result
            && (error.is_connection() || error.is_timeout())
        {
            self.0.store(true, Ordering::Relaxed);
        }
    }

    #[inline]
    fn seen(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// What a read found.
enum Lookup<T> {
    /// A value to return.
    Fresh(T),
    /// A value to return while one caller refreshes it.
    Stale(T),
    /// Nothing usable, or a value to recompute early.
    Miss,
}

/// What one attempt to take a lease gave.
enum Attempt {
    /// Taken: this caller holds it.
    Held,
    /// Another caller holds it.
    Busy,
    /// The backend failed: go on without a lease.
    Failed,
}

/// What waiting on another process's lease gave.
enum Leased<T> {
    /// This caller holds the lease.
    Held(Lease),
    /// Another caller stored the value meanwhile.
    Filled(Bytes, T),
    /// No lease (time-out or backend failure): compute anyway.
    Open,
}

impl<'a> Plan<'a> {
    /// A plan for the direct API, or `None` (a bypass, counted) when `options.unless` is set.
    pub(crate) fn direct(cache: &'a Cache, key: &str, options: Options) -> Option<Self> {
        let counters = cache.counters();
        if options.unless {
            counters.bypass();
            return None;
        }
        Some(Plan {
            cache,
            key: cache.full_key(key),
            options,
            counters,
            label: "get_or_set_with",
            outage: Outage::default(),
        })
    }

    fn ttl(&self) -> Ttl {
        self.options
            .timeout
            .map_or(self.cache.inner.default_ttl, ttl_of)
    }

    fn blocking_store(&self) -> &dyn BlockingBackend {
        self.cache.inner.store.blocking()
    }

    fn lease_time(&self) -> Option<Duration> {
        self.options.stampede.lease_time()
    }

    /// Classifies a read (counted; errors logged and treated as misses).
    fn lookup<C: Codec, T: DeserializeOwned>(&self, read: Result<Option<Bytes>>) -> Lookup<T> {
        self.outage.note(&read);
        let bytes = match read {
            Ok(bytes) => bytes,
            Err(error) => {
                tracing::warn!(function = self.label, error = %format_args!("{error:#}"), "cache read failed; running the function");
                self.counters.error();
                self.counters.miss();
                self.counters.fail_open();
                return Lookup::Miss;
            }
        };
        let Some((value, meta)) = open_counted::<C, T>(self.counters, self.label, bytes) else {
            return Lookup::Miss;
        };
        if meta.soft_expiry.is_none() {
            // No clock read on the common path: only early refresh and serve-stale need it.
            return Lookup::Fresh(value);
        }
        match self.options.stampede.freshness(&meta, SystemTime::now()) {
            Freshness::Fresh => Lookup::Fresh(value),
            Freshness::Stale => {
                self.counters.stale_hit();
                Lookup::Stale(value)
            }
            Freshness::Early => {
                self.counters.early_refresh();
                Lookup::Miss
            }
        }
    }

    /// The sealed bytes and backend TTL to store for `result`, if the policy stores it.
    fn seal<C: Codec, R, P: Policy<R>>(
        &self,
        policy: &P,
        result: &R,
        compute_time: Duration,
    ) -> Option<(Bytes, Ttl)> {
        self.counters.computed(compute_time);
        let stored = policy.storable(result, self.options.cache_none)?;
        let (ttl, meta) =
            self.options
                .stampede
                .store_plan(self.ttl(), compute_time, SystemTime::now());
        match envelope::seal::<C, P::Stored>(stored, meta) {
            Ok(bytes) => {
                self.counters.sealed(bytes.len());
                Some((bytes, ttl))
            }
            Err(error) => {
                tracing::warn!(function = self.label, error = %format_args!("{error:#}"), "cannot encode the result; not cached");
                self.counters.error();
                None
            }
        }
    }

    /// False, logged and counted as an error, when this call met an outage: its store is
    /// skipped.
    fn may_store(&self) -> bool {
        if !self.outage.seen() {
            return true;
        }
        tracing::debug!(
            function = self.label,
            "cache unreachable during this call; result returned unstored"
        );
        self.counters.error();
        false
    }

    fn stored(&self, write: Result<()>) {
        match write {
            Ok(()) => self.counters.store(),
            Err(error) => {
                tracing::warn!(function = self.label, error = %format_args!("{error:#}"), "cache write failed; result returned uncached");
                self.counters.error();
            }
        }
    }

    fn followed<C: Codec, R, P: Policy<R>>(&self, policy: &P, bytes: &[u8]) -> Option<R> {
        match envelope::open::<C, P::Stored>(bytes) {
            Ok((stored, _)) => Some(policy.restore(stored)),
            Err(error) => {
                tracing::warn!(function = self.label, error = %format_args!("{error:#}"), "shared result did not decode");
                None
            }
        }
    }

    /// A second read, after a flight stored the key while this caller's first read ran:
    /// the stored value, or a retry of the flight if it is gone again.
    fn reread<C: Codec, R, P: Policy<R>>(
        &self,
        policy: &P,
        read: Result<Option<Bytes>>,
    ) -> Joined<R> {
        match self.lookup::<C, P::Stored>(read) {
            Lookup::Fresh(value) | Lookup::Stale(value) => Joined::Done(policy.restore(value)),
            Lookup::Miss => Joined::Retry,
        }
    }

    /// Where a follower stands once its flight ended (`None`: it could not wait).
    fn after_wait<C: Codec, R, P: Policy<R>>(
        &self,
        policy: &P,
        outcome: Option<Outcome>,
    ) -> Joined<R> {
        match outcome {
            None => Joined::Alone,
            Some(Outcome::Stored(bytes)) => self
                .followed::<C, R, P>(policy, &bytes)
                .map_or(Joined::Alone, Joined::Done),
            // The leader's failure, shared: the function ran once for all of them.
            Some(Outcome::NotStored(Some(shared))) => {
                policy.unshare(&shared).map_or(Joined::Retry, Joined::Done)
            }
            // Not shareable: rejoin, so one waiter at a time takes over (never all at once).
            Some(Outcome::NotStored(None) | Outcome::Abandoned) => Joined::Retry,
        }
    }

    /// The lease to try for a stale value's refresh: the configured one, or 30 s on a
    /// shared backend (so one process refreshes), or none in process.
    fn refresh_lease_time(&self) -> Option<Duration> {
        self.lease_time().or_else(|| {
            self.cache
                .inner
                .capabilities
                .shared
                .then_some(STALE_REFRESH_LEASE)
        })
    }

    /// For a refresh: `Some(lease)` to refresh (holding the lease if it was taken, or
    /// without one if the backend failed), `None` when another caller holds it.
    #[allow(clippy::option_option)]
    fn refresh_lease(
        &self,
        taken: Result<bool>,
        key: String,
        token: Bytes,
        blocking: bool,
    ) -> Option<Option<Lease>> {
        match self.lease_attempt(taken) {
            Attempt::Held => Some(Some(Lease::new(self.cache, key, token, blocking))),
            Attempt::Failed => Some(None),
            Attempt::Busy => None,
        }
    }

    /// What one `SET NX` on the lease key gave (a failure is logged and counted).
    fn lease_attempt(&self, taken: Result<bool>) -> Attempt {
        self.outage.note(&taken);
        match taken {
            Ok(true) => Attempt::Held,
            Ok(false) => Attempt::Busy,
            Err(error) => {
                tracing::warn!(function = self.label, error = %format_args!("{error:#}"), "cannot take the lease; computing without it");
                self.counters.error();
                Attempt::Failed
            }
        }
    }

    fn released(&self, release: Result<bool>, lease: Lease) {
        if let Err(error) = release {
            tracing::debug!(function = self.label, error = %format_args!("{error:#}"), "lease not released; it will expire");
        }
        lease.settle();
    }

    /// Settles `lease` without a release when this call met an outage (it expires on its
    /// own); otherwise hands it back to be released.
    fn to_release(&self, lease: Option<Lease>) -> Option<Lease> {
        let lease = lease?;
        if self.outage.seen() {
            lease.settle();
            return None;
        }
        Some(lease)
    }

    /// True when a re-read shows that another caller refreshed the value after this one
    /// read it stale (checked once this caller holds the refresh guards, so a refresh that
    /// finished a moment ago is not repeated).
    fn refreshed_meanwhile(&self, read: Result<Option<Bytes>>) -> bool {
        self.outage.note(&read);
        let Ok(Some(bytes)) = read else { return false };
        envelope::peek_meta(&bytes)
            .and_then(|meta| meta.soft_expiry)
            .is_some_and(|expiry| expiry > SystemTime::now())
    }

    /// The guards of a leader once the lease is settled, or the value another process
    /// stored while this caller waited for its lease.
    fn lead<R, P: Policy<R>>(
        &self,
        policy: &P,
        leader: Leader,
        leased: Leased<P::Stored>,
    ) -> Result<Guards, R> {
        let lease = match leased {
            Leased::Held(lease) => Some(lease),
            Leased::Filled(bytes, value) => {
                leader.finish(Outcome::Stored(bytes));
                return Err(policy.restore(value));
            }
            Leased::Open => None,
        };
        Ok(Guards {
            leader: Some(leader),
            lease,
        })
    }
}

/// How long one caller may refresh a stale value before another may try.
const STALE_REFRESH_LEASE: Duration = Duration::from_secs(30);

/// What the followers of a flight get: the sealed value, or the unstored result shared.
fn outcome_of<R, P: Policy<R>>(policy: &P, result: &R, sealed: &Option<(Bytes, Ttl)>) -> Outcome {
    match sealed {
        Some((bytes, _)) => Outcome::Stored(bytes.clone()),
        None => Outcome::NotStored(policy.share(result)),
    }
}

/// Where a caller that missed stands after joining the key's flight.
enum Joined<R> {
    /// It leads: compute, store, then finish the flight.
    Lead(Leader),
    /// A leader's stored result, decoded.
    Done(R),
    /// Compute without leading (the leader's result was not stored).
    Alone,
    /// The leader gave up: join again.
    Retry,
}

/// The guards a computing caller holds: the in-process flight and the cross-process lease.
pub(crate) struct Guards {
    leader: Option<Leader>,
    lease: Option<Lease>,
}

/// Runs a cached call for a sync function.
pub(crate) fn run_blocking<R, P: Policy<R>, C: Codec, F: FnOnce() -> R>(
    plan: Plan<'_>,
    policy: P,
    body: F,
) -> R {
    let mut guards = Guards {
        leader: None,
        lease: None,
    };
    if !plan.options.forced_update {
        let mut mark = plan.cache.inner.flights.mark();
        match plan.lookup::<C, P::Stored>(plan.blocking_store().get(&plan.key)) {
            Lookup::Fresh(value) => return policy.restore(value),
            Lookup::Stale(value) => match refresher_blocking(&plan) {
                Some(refresh) => guards = refresh,
                None => return policy.restore(value),
            },
            Lookup::Miss => loop {
                let joined = match plan.cache.inner.flights.join(&plan.key, mark, true) {
                    Role::Leader(guard) => Joined::Lead(guard),
                    Role::Follower(follower) => {
                        plan.after_wait::<C, R, P>(&policy, follower.wait_blocking())
                    }
                    Role::Reread => {
                        mark = plan.cache.inner.flights.mark();
                        if plan.outage.seen() {
                            Joined::Retry
                        } else {
                            let read = plan.blocking_store().get(&plan.key);
                            plan.reread::<C, R, P>(&policy, read)
                        }
                    }
                };
                match joined {
                    Joined::Lead(leader) => {
                        let leased = lease_blocking::<C, P::Stored>(&plan);
                        match plan.lead::<R, P>(&policy, leader, leased) {
                            Ok(lead) => guards = lead,
                            Err(result) => return result,
                        }
                    }
                    Joined::Done(result) => return result,
                    Joined::Alone => {}
                    Joined::Retry => continue,
                }
                break;
            },
        }
    }
    let started = Instant::now();
    let result = body();
    let sealed = plan.seal::<C, R, P>(&policy, &result, started.elapsed());
    if let Some((bytes, ttl)) = &sealed
        && plan.may_store()
    {
        plan.stored(plan.blocking_store().set(&plan.key, bytes.clone(), *ttl));
    }
    if let Some(lease) = plan.to_release(guards.lease) {
        let release = plan
            .blocking_store()
            .delete_if_equal(lease.key(), lease.token());
        plan.released(release, lease);
    }
    if let Some(leader) = guards.leader {
        leader.finish(outcome_of(&policy, &result, &sealed));
    }
    result
}

/// Runs an async call through the cache, or without it when there is no plan.
///
/// Only the read and a fresh hit happen here; everything else lives in a separate, boxed
/// future, so the future of a hit holds little besides the read itself (kept in place, see
/// [`GetFuture`](crate::backend::GetFuture)): the miss path's state would otherwise be
/// copied on every spawn of every caller.
pub(crate) async fn run_async<'a, R, P: Policy<R>, C: Codec, F: Future<Output = R>>(
    plan: impl FnOnce() -> Option<Plan<'a>>,
    policy: P,
    body: F,
    detach: impl Detach<F>,
) -> R {
    let Some(plan) = plan() else {
        return body.await;
    };
    let mark = plan.cache.inner.flights.mark();
    let first = if plan.options.forced_update {
        Lookup::Miss
    } else {
        plan.lookup::<C, P::Stored>(read!(plan.cache, &plan.key))
    };
    if let Lookup::Fresh(value) = first {
        return policy.restore(value);
    }
    let read = (first, mark);
    Box::pin(run_async_after_read::<R, P, C, F>(
        plan, policy, body, read, detach,
    ))
    .await
}

/// [`run_async`] after a read that found no fresh value.
async fn run_async_after_read<R, P: Policy<R>, C: Codec, F: Future<Output = R>>(
    plan: Plan<'_>,
    policy: P,
    body: F,
    (first, mut mark): (Lookup<P::Stored>, Mark),
    detach: impl Detach<F>,
) -> R {
    let mut guards = Guards {
        leader: None,
        lease: None,
    };
    let mut body = body;
    if !plan.options.forced_update {
        match first {
            Lookup::Fresh(value) => return policy.restore(value),
            Lookup::Stale(value) => match refresher_async(&plan).await {
                Some(refresh) => match detach.detach(&plan, body, refresh) {
                    Ok(()) => return policy.restore(value),
                    Err((inline, refresh)) => (body, guards) = (inline, refresh),
                },
                None => return policy.restore(value),
            },
            Lookup::Miss => loop {
                let joined = match plan.cache.inner.flights.join(&plan.key, mark, false) {
                    Role::Leader(guard) => Joined::Lead(guard),
                    Role::Follower(follower) => {
                        plan.after_wait::<C, R, P>(&policy, Some(follower.wait().await))
                    }
                    Role::Reread => {
                        mark = plan.cache.inner.flights.mark();
                        if plan.outage.seen() {
                            Joined::Retry
                        } else {
                            let read = read!(plan.cache, &plan.key);
                            plan.reread::<C, R, P>(&policy, read)
                        }
                    }
                };
                match joined {
                    Joined::Lead(leader) => {
                        let leased = lease_async::<C, P::Stored>(&plan).await;
                        match plan.lead::<R, P>(&policy, leader, leased) {
                            Ok(lead) => guards = lead,
                            Err(result) => return result,
                        }
                    }
                    Joined::Done(result) => return result,
                    Joined::Alone => {}
                    Joined::Retry => continue,
                }
                break;
            },
        }
    }
    compute_async::<R, P, C, F>(&plan, &policy, body, guards).await
}

/// Runs the body, stores its result, and releases the guards: the end of every async miss
/// and refresh, in the caller's task or a background one.
async fn compute_async<R, P: Policy<R>, C: Codec, F: Future<Output = R>>(
    plan: &Plan<'_>,
    policy: &P,
    body: F,
    guards: Guards,
) -> R {
    let started = Instant::now();
    let result = body.await;
    let sealed = plan.seal::<C, R, P>(policy, &result, started.elapsed());
    let store = plan.cache.inner.store.as_ref();
    if let Some((bytes, ttl)) = &sealed
        && plan.may_store()
    {
        let write = plan.cache.write(&plan.key, bytes.clone(), *ttl).await;
        plan.stored(write);
    }
    if let Some(lease) = plan.to_release(guards.lease) {
        let release = Backend::delete_if_equal(store, lease.key(), lease.token()).await;
        plan.released(release, lease);
    }
    if let Some(leader) = guards.leader {
        leader.finish(outcome_of(policy, &result, &sealed));
    }
    result
}

/// Where the refresh of a stale value runs.
pub(crate) trait Detach<F> {
    /// Moves the refresh to the background, or hands `body` and `guards` back to run it in
    /// line.
    fn detach(self, plan: &Plan<'_>, body: F, guards: Guards) -> Result<(), (F, Guards)>;
}

/// Refreshes in the caller's task (the body may borrow from it).
pub(crate) struct Inline;

impl<F> Detach<F> for Inline {
    fn detach(self, _plan: &Plan<'_>, body: F, guards: Guards) -> Result<(), (F, Guards)> {
        Err((body, guards))
    }
}

/// Refreshes in a task spawned on the current tokio runtime, so the caller that won the
/// refresh is served the stale value at once like everyone else. Needs a body that owns
/// its data; without a runtime it falls back to [`Inline`].
pub(crate) struct Spawn<R, P, C> {
    pub(crate) policy: P,
    pub(crate) site: Option<&'static Stats>,
    pub(crate) marker: PhantomData<fn() -> (R, C)>,
}

impl<R, P, C, F> Detach<F> for Spawn<R, P, C>
where
    R: Send + 'static,
    P: Policy<R> + Send + Sync + 'static,
    C: Codec,
    F: Future<Output = R> + Send + 'static,
{
    fn detach(self, plan: &Plan<'_>, body: F, guards: Guards) -> Result<(), (F, Guards)> {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return Err((body, guards));
        };
        let (cache, key, options) = (plan.cache.clone(), plan.key.clone(), plan.options);
        let (site, label) = (self.site, plan.label.to_owned());
        let policy = self.policy;
        runtime.spawn(async move {
            let counters = Counters {
                cache: &cache.inner.stats,
                site,
            };
            let plan = Plan {
                cache: &cache,
                key,
                options,
                counters,
                label: &label,
                outage: Outage::default(),
            };
            drop(compute_async::<R, P, C, F>(&plan, &policy, body, guards).await);
        });
        Ok(())
    }
}

/// The guards for refreshing a stale value, if this caller is the one to refresh it.
fn refresher_blocking(plan: &Plan<'_>) -> Option<Guards> {
    let leader = plan.cache.inner.flights.try_lead(&plan.key, true)?;
    let lease = match plan.refresh_lease_time() {
        Some(time) => {
            let (key, token) = (lease_key(&plan.key), lease_token());
            let taken = plan.blocking_store().add(&key, token.clone(), Some(time));
            plan.refresh_lease(taken, key, token, true)?
        }
        None => None,
    };
    let guards = Guards {
        leader: Some(leader),
        lease,
    };
    if !plan.outage.seen() && plan.refreshed_meanwhile(plan.blocking_store().get(&plan.key)) {
        if let Some(lease) = plan.to_release(guards.lease) {
            let release = plan
                .blocking_store()
                .delete_if_equal(lease.key(), lease.token());
            plan.released(release, lease);
        }
        return None;
    }
    Some(guards)
}

/// Async [`refresher_blocking`].
async fn refresher_async(plan: &Plan<'_>) -> Option<Guards> {
    let leader = plan.cache.inner.flights.try_lead(&plan.key, false)?;
    let lease = match plan.refresh_lease_time() {
        Some(time) => {
            let (key, token) = (lease_key(&plan.key), lease_token());
            let taken = Backend::add(
                plan.cache.inner.store.as_ref(),
                &key,
                token.clone(),
                Some(time),
            )
            .await;
            plan.refresh_lease(taken, key, token, false)?
        }
        None => None,
    };
    let guards = Guards {
        leader: Some(leader),
        lease,
    };
    if !plan.outage.seen() && plan.refreshed_meanwhile(read!(plan.cache, &plan.key)) {
        if let Some(lease) = plan.to_release(guards.lease) {
            let store = plan.cache.inner.store.as_ref();
            let release = Backend::delete_if_equal(store, lease.key(), lease.token()).await;
            plan.released(release, lease);
        }
        return None;
    }
    Some(guards)
}

/// Takes the cross-process lease for a miss, or waits for whoever holds it.
fn lease_blocking<C: Codec, T: DeserializeOwned>(plan: &Plan<'_>) -> Leased<T> {
    let Some(time) = plan.lease_time().filter(|_| !plan.outage.seen()) else {
        return Leased::Open;
    };
    let (key, token) = (lease_key(&plan.key), lease_token());
    let deadline = Instant::now() + wait_limit(time);
    for attempt in 0.. {
        let taken = plan.blocking_store().add(&key, token.clone(), Some(time));
        match plan.lease_attempt(taken) {
            Attempt::Held => {
                plan.counters.took_lease(attempt);
                let lease = Lease::new(plan.cache, key, token, true);
                // Stored by another process between this caller's read and its lease?
                if let Some(filled) = filled::<C, T>(plan, plan.blocking_store().get(&plan.key)) {
                    let release = plan
                        .blocking_store()
                        .delete_if_equal(lease.key(), lease.token());
                    plan.released(release, lease);
                    return filled;
                }
                // After an outage the lease is not released: it expires on its own.
                return Leased::Held(lease);
            }
            Attempt::Failed => return Leased::Open,
            Attempt::Busy => plan.counters.lease_busy(attempt),
        }
        if Instant::now() >= deadline {
            plan.counters.lease_takeover();
            return Leased::Open;
        }
        std::thread::sleep(poll_delay(attempt));
        if let Some(filled) = filled::<C, T>(plan, plan.blocking_store().get(&plan.key)) {
            return filled;
        }
        if plan.outage.seen() {
            return Leased::Open;
        }
    }
    Leased::Open
}

/// Async [`lease_blocking`].
async fn lease_async<C: Codec, T: DeserializeOwned>(plan: &Plan<'_>) -> Leased<T> {
    let Some(time) = plan.lease_time().filter(|_| !plan.outage.seen()) else {
        return Leased::Open;
    };
    let store = plan.cache.inner.store.as_ref();
    let (key, token) = (lease_key(&plan.key), lease_token());
    let deadline = Instant::now() + wait_limit(time);
    for attempt in 0.. {
        let taken = Backend::add(store, &key, token.clone(), Some(time)).await;
        match plan.lease_attempt(taken) {
            Attempt::Held => {
                plan.counters.took_lease(attempt);
                let lease = Lease::new(plan.cache, key, token, false);
                // Stored by another process between this caller's read and its lease?
                if let Some(filled) = filled::<C, T>(plan, read!(plan.cache, &plan.key)) {
                    let release = Backend::delete_if_equal(store, lease.key(), lease.token()).await;
                    plan.released(release, lease);
                    return filled;
                }
                return Leased::Held(lease);
            }
            Attempt::Failed => return Leased::Open,
            Attempt::Busy => plan.counters.lease_busy(attempt),
        }
        if Instant::now() >= deadline {
            plan.counters.lease_takeover();
            return Leased::Open;
        }
        tokio::time::sleep(poll_delay(attempt)).await;
        if let Some(filled) = filled::<C, T>(plan, read!(plan.cache, &plan.key)) {
            return filled;
        }
        if plan.outage.seen() {
            return Leased::Open;
        }
    }
    Leased::Open
}

/// How long a caller waits on someone else's lease before computing itself: twice the
/// lease, so a holder that died is replaced (its lease expires) before waiters give up.
fn wait_limit(lease: Duration) -> Duration {
    lease * 2
}

/// A value another caller stored while this one waited on the lease.
fn filled<C: Codec, T: DeserializeOwned>(
    plan: &Plan<'_>,
    read: Result<Option<Bytes>>,
) -> Option<Leased<T>> {
    plan.outage.note(&read);
    let bytes = read.ok()??;
    let (value, _) = envelope::open::<C, T>(&bytes).ok()?;
    plan.counters.hit();
    Some(Leased::Filled(bytes, value))
}
