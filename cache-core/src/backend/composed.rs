//! The lease operations of a backend without a single-step form of them
//! ([`Backend::acquire_lease`], [`Backend::set_releasing`]), composed of its plain
//! operations: what custom backends and a Redis Cluster whose value and lease keys sit in
//! different slots do. Not public API.
//!
//! Composed, a leased miss costs what it did before these operations existed: `SET NX` on
//! the lease, `GET` of the key, then `SET` of the value and the lease's compare-and-delete.

use std::time::Duration;

use bytes::Bytes;

use super::{Acquired, Backend, BlockingBackend, Ttl};
use crate::Result;

/// [`Backend::acquire_lease`] as `add(lease_key)` then `get(key)`: taken first, so a value
/// stored by a holder that released its lease just before is still seen; a lease taken
/// while the value is there is released at once.
pub async fn acquire_lease<B: Backend + ?Sized>(
    backend: &B,
    key: &str,
    lease_key: &str,
    token: Bytes,
    time: Duration,
) -> Result<Acquired> {
    let taken = backend.add(lease_key, token.clone(), Some(time)).await?;
    let value = backend.get(key).await?;
    let (acquired, release) = acquired(taken, value);
    if release {
        released(backend.delete_if_equal(lease_key, &token).await);
    }
    Ok(acquired)
}

/// [`acquire_lease`] on the blocking half.
pub fn acquire_lease_blocking<B: BlockingBackend + ?Sized>(
    backend: &B,
    key: &str,
    lease_key: &str,
    token: Bytes,
    time: Duration,
) -> Result<Acquired> {
    let taken = backend.add(lease_key, token.clone(), Some(time))?;
    let value = backend.get(key)?;
    let (acquired, release) = acquired(taken, value);
    if release {
        released(backend.delete_if_equal(lease_key, &token));
    }
    Ok(acquired)
}

/// [`Backend::set_releasing`] as `set(key)` then `delete_if_equal(lease_key)`; after a
/// store that met an outage the lease is left to expire (a caller pays one time-out).
pub async fn set_releasing<B: Backend + ?Sized>(
    backend: &B,
    key: &str,
    value: Bytes,
    ttl: Ttl,
    lease_key: &str,
    token: &[u8],
) -> Result<()> {
    let stored = backend.set(key, value, ttl).await;
    if !is_outage(&stored) {
        released(backend.delete_if_equal(lease_key, token).await);
    }
    stored
}

/// [`set_releasing`] on the blocking half.
pub fn set_releasing_blocking<B: BlockingBackend + ?Sized>(
    backend: &B,
    key: &str,
    value: Bytes,
    ttl: Ttl,
    lease_key: &str,
    token: &[u8],
) -> Result<()> {
    let stored = backend.set(key, value, ttl);
    if !is_outage(&stored) {
        released(backend.delete_if_equal(lease_key, token));
    }
    stored
}

/// What a `SET NX` that gave `taken` and a `GET` that gave `value` amount to, and whether
/// the lease must be released (taken while the value was there).
fn acquired(taken: bool, value: Option<Bytes>) -> (Acquired, bool) {
    match (value, taken) {
        (Some(value), taken) => (Acquired::Value(value), taken),
        (None, true) => (Acquired::Taken, false),
        (None, false) => (Acquired::Busy, false),
    }
}

fn is_outage(result: &Result<()>) -> bool {
    result
        .as_ref()
        .is_err_and(|error| error.is_connection() || error.is_timeout())
}

fn released(release: Result<bool>) {
    if let Err(error) = release {
        tracing::debug!(error = %format_args!("{error:#}"), "lease not released; it will expire");
    }
}
