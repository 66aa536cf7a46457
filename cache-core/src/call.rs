//! One cached call, from lookup to store: the logic shared by `#[cached]`, `#[memoize]` and
//! [`Cache::get_or_set_with`], for sync and async callers alike. Only the I/O edge (a
//! blocking or an async backend call, a blocking or an async wait) differs between
//! [`run_blocking`] and [`run_async`].

use std::future::Future;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Result;
use crate::backend::{BlockingBackend, Ttl};
use crate::cache::{Cache, ttl_of};
use crate::codec::Codec;
use crate::envelope::{self, Meta};
use crate::flight::{Leader, Outcome, Role};
use crate::stats::Counters;

/// Decides which results of a function are stored, and how a stored value becomes a result
/// again. Chosen per return type by the expansion (see `__private::Probe`).
pub trait Policy<R> {
    /// What is stored: `T` for `T` and `Result<T, E>`, `Option<T>` for `Option<T>`.
    type Stored: Serialize + DeserializeOwned;

    /// The part of `result` to store, or `None` to store nothing.
    fn storable<'r>(&self, result: &'r R, cache_none: bool) -> Option<&'r Self::Stored>;

    /// The result rebuilt from a stored value.
    fn restore(&self, stored: Self::Stored) -> R;
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

/// Per-call switches, written by the expansion.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// The entry's timeout; `None` for the cache's default. Zero: never expires.
    pub timeout: Option<Duration>,
    /// Skip the cache entirely for this call.
    pub unless: bool,
    /// Run the function and store its result without reading the cache.
    pub forced_update: bool,
    /// Store `None` results of `Option` functions.
    pub cache_none: bool,
}

/// A call that will use the cache: the cache, the full key and the switches.
pub(crate) struct Plan<'a> {
    pub(crate) cache: &'a Cache,
    pub(crate) key: String,
    pub(crate) options: Options,
    pub(crate) counters: Counters<'a>,
    pub(crate) label: &'a str,
}

impl<'a> Plan<'a> {
    /// A plan for the direct API, where the key is the label.
    pub(crate) fn direct(cache: &'a Cache, key: String, timeout: Option<Duration>) -> Self {
        Plan {
            cache,
            key,
            options: Options {
                timeout,
                ..Options::default()
            },
            counters: cache.counters(),
            label: "get_or_set_with",
        }
    }

    fn ttl(&self) -> Ttl {
        self.options
            .timeout
            .map_or(self.cache.inner.default_ttl, ttl_of)
    }

    fn blocking_store(&self) -> &dyn BlockingBackend {
        self.cache.inner.store.blocking()
    }

    /// A stored value from a read, or `None` for a miss (counted, errors logged).
    fn hit<C: Codec, T: DeserializeOwned>(&self, read: Result<Option<Bytes>>) -> Option<T> {
        match read {
            Ok(bytes) => decode_counted::<C, T>(self.counters, self.label, bytes),
            Err(error) => {
                tracing::warn!(function = self.label, %error, "cache read failed; running the function");
                self.counters.error();
                self.counters.miss();
                None
            }
        }
    }

    /// The sealed bytes to store for `result`, if the policy stores it.
    fn seal<C: Codec, R, P: Policy<R>>(
        &self,
        policy: &P,
        result: &R,
        compute_time: Duration,
    ) -> Option<Bytes> {
        let stored = policy.storable(result, self.options.cache_none)?;
        let meta = Meta {
            compute_time: Some(compute_time),
            soft_expiry: None,
        };
        match envelope::seal::<C, P::Stored>(stored, meta) {
            Ok(bytes) => Some(bytes),
            Err(error) => {
                tracing::warn!(function = self.label, %error, "cannot encode the result; not cached");
                self.counters.error();
                None
            }
        }
    }

    fn stored(&self, write: Result<()>) {
        match write {
            Ok(()) => self.counters.store(),
            Err(error) => {
                tracing::warn!(function = self.label, %error, "cache write failed; result returned uncached");
                self.counters.error();
            }
        }
    }

    fn followed<C: Codec, R, P: Policy<R>>(&self, policy: &P, bytes: &[u8]) -> Option<R> {
        match envelope::open::<C, P::Stored>(bytes) {
            Ok((stored, _)) => Some(policy.restore(stored)),
            Err(error) => {
                tracing::warn!(function = self.label, %error, "shared result did not decode");
                None
            }
        }
    }
}

/// Decodes bytes read from the backend, counting a hit, a miss or a decode error.
pub(crate) fn decode_counted<C: Codec, T: DeserializeOwned>(
    counters: Counters<'_>,
    label: &str,
    bytes: Option<Bytes>,
) -> Option<T> {
    let Some(bytes) = bytes else {
        counters.miss();
        return None;
    };
    match envelope::open::<C, T>(&bytes) {
        Ok((value, _meta)) => {
            counters.hit();
            Some(value)
        }
        Err(error) => {
            tracing::warn!(function = label, %error, "cached value did not decode; treating as a miss");
            counters.error();
            counters.miss();
            None
        }
    }
}

fn outcome_of(sealed: Option<Bytes>) -> Outcome {
    sealed.map_or(Outcome::NotStored, Outcome::Stored)
}

/// Where a caller that missed stands after joining the key's flight.
enum Joined<'a, R> {
    /// It leads: compute, store, then finish the flight.
    Lead(Leader<'a>),
    /// A leader's stored result, decoded.
    Done(R),
    /// Compute without leading (the leader's result was not stored).
    Alone,
    /// The leader gave up: join again.
    Retry,
}

impl Plan<'_> {
    fn after_wait<C: Codec, R, P: Policy<R>>(&self, policy: &P, outcome: Outcome) -> Joined<'_, R> {
        match outcome {
            Outcome::Stored(bytes) => self
                .followed::<C, R, P>(policy, &bytes)
                .map_or(Joined::Alone, Joined::Done),
            Outcome::NotStored => Joined::Alone,
            Outcome::Abandoned => Joined::Retry,
        }
    }

    fn finish<C: Codec, R, P: Policy<R>>(
        &self,
        policy: &P,
        result: &R,
        started: Instant,
    ) -> Option<Bytes> {
        self.seal::<C, R, P>(policy, result, started.elapsed())
    }
}

/// Runs a cached call for a sync function.
pub(crate) fn run_blocking<R, P: Policy<R>, C: Codec, F: FnOnce() -> R>(
    plan: Plan<'_>,
    policy: P,
    body: F,
) -> R {
    let forced = plan.options.forced_update;
    if !forced && let Some(stored) = plan.hit::<C, P::Stored>(plan.blocking_store().get(&plan.key))
    {
        return policy.restore(stored);
    }
    let mut leader = None;
    while !forced {
        let joined = match plan.cache.inner.flights.join(&plan.key) {
            Role::Leader(guard) => Joined::Lead(guard),
            Role::Follower(follower) => {
                plan.after_wait::<C, R, P>(&policy, follower.wait_blocking())
            }
        };
        match joined {
            Joined::Lead(guard) => leader = Some(guard),
            Joined::Done(result) => return result,
            Joined::Alone => {}
            Joined::Retry => continue,
        }
        break;
    }
    let started = Instant::now();
    let result = body();
    let sealed = plan.finish::<C, R, P>(&policy, &result, started);
    if let Some(bytes) = &sealed {
        plan.stored(
            plan.blocking_store()
                .set(&plan.key, bytes.clone(), plan.ttl()),
        );
    }
    if let Some(leader) = leader {
        leader.finish(outcome_of(sealed));
    }
    result
}

/// Runs a cached call for an async function.
pub(crate) async fn run_async<R, P: Policy<R>, C: Codec, F: Future<Output = R>>(
    plan: Plan<'_>,
    policy: P,
    body: F,
) -> R {
    let forced = plan.options.forced_update;
    if !forced && let Some(stored) = plan.hit::<C, P::Stored>(plan.cache.read(&plan.key).await) {
        return policy.restore(stored);
    }
    let mut leader = None;
    while !forced {
        let joined = match plan.cache.inner.flights.join(&plan.key) {
            Role::Leader(guard) => Joined::Lead(guard),
            Role::Follower(follower) => plan.after_wait::<C, R, P>(&policy, follower.wait().await),
        };
        match joined {
            Joined::Lead(guard) => leader = Some(guard),
            Joined::Done(result) => return result,
            Joined::Alone => {}
            Joined::Retry => continue,
        }
        break;
    }
    let started = Instant::now();
    let result = body.await;
    let sealed = plan.finish::<C, R, P>(&policy, &result, started);
    if let Some(bytes) = &sealed {
        let write = plan.cache.write(&plan.key, bytes.clone(), plan.ttl()).await;
        plan.stored(write);
    }
    if let Some(leader) = leader {
        leader.finish(outcome_of(sealed));
    }
    result
}
