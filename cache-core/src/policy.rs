//! Which results of a cached call are stored, and how a stored value becomes a result again.

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::flight::SharedResult as Shared;
use crate::near::NearValue;
use crate::shape::{Shape, shape};

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

    /// `result` as a near cache value (see [`Near`]).
    fn near_value(&self, _result: &R) -> Option<NearValue> {
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

/// Policy `P` for a return type the near cache can hold (`Clone + Send + Sync + 'static`):
/// what `P` stores also goes to the near cache, as a clone, and a near hit is a clone of it.
#[derive(Debug, Clone, Copy)]
pub struct Near<P>(pub P);

impl<R: Clone + Send + Sync + 'static, P: Policy<R>> Policy<R> for Near<P> {
    type Stored = P::Stored;
    #[inline]
    fn storable<'r>(&self, result: &'r R, cache_none: bool) -> Option<&'r Self::Stored> {
        self.0.storable(result, cache_none)
    }
    #[inline]
    fn restore(&self, stored: Self::Stored) -> R {
        self.0.restore(stored)
    }
    fn share(&self, result: &R) -> Option<Shared> {
        self.0.share(result)
    }
    fn unshare(&self, shared: &Shared) -> Option<R> {
        self.0.unshare(shared)
    }
    fn near_value(&self, result: &R) -> Option<NearValue> {
        Some(Arc::new(result.clone()))
    }
}

/// What the near cache asks of a policy before the call's key exists: whether its results
/// can be near hits, and a near hit as a result. Apart from [`Policy`], and without its
/// serde bounds, so a return type that cannot be stored gets one error (from
/// [`Stores`](crate::__private::Stores)), not one more from the near lookup.
pub trait NearRestore<R> {
    /// Whether results can go to the near cache (see [`Near`]).
    #[inline]
    fn near_capable(&self) -> bool {
        false
    }

    /// A near cache value as a result (see [`Near`]).
    #[inline]
    fn near_restore(&self, _value: &NearValue) -> Option<R> {
        None
    }
}

impl<R> NearRestore<R> for Plain {}
impl<R> NearRestore<R> for OkOnly {}
impl<R> NearRestore<R> for OkOrShared {}
impl<R> NearRestore<R> for SomeOnly {}

impl<R: Clone + Send + Sync + 'static, P> NearRestore<R> for Near<P> {
    #[inline]
    fn near_capable(&self) -> bool {
        true
    }
    #[inline]
    fn near_restore(&self, value: &NearValue) -> Option<R> {
        value.downcast_ref::<R>().cloned()
    }
}
