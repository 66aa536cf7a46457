//! A cross-process lease held by one cached call, as a guard: whatever ends the call (its
//! normal end, a cancelled future, a panicking body), a lease it still holds is released.

use bytes::Bytes;

use crate::backplane::NearKey;
use crate::cache::Cache;
use crate::gateway::ReleaseLease;
use crate::waiters::Waiters;

/// A lease this caller took, or is taking (`SET {key}:~lease {token} NX PX`): armed from the
/// moment its `SET NX` may reach the backend, so a call dropped while that command is in
/// flight (which may have taken the lease) still releases it.
///
/// The call releases it itself once it stored its value ([`Lease::key`] and
/// [`Lease::token`] for the compare-and-delete, then [`Lease::settle`]), or settles it
/// without a release after an outage (it then expires on its own). Dropped unsettled,
/// because the call was cancelled or its body panicked, it is released at once so other
/// processes need not wait for it to expire: by a sync caller with a blocking call; by an
/// async caller in a task spawned on the current tokio runtime (`Drop` cannot await).
/// Outside any runtime an async caller's lease is left to expire. Once released, the
/// callers of this process waiting on the lease are woken, so one of them takes over at once.
pub(crate) struct Lease {
    cache: Cache,
    key: String,
    token: Bytes,
    /// The near key of the entry the lease guards, whose waiters a release wakes.
    entry: NearKey,
    blocking: bool,
    held: bool,
}

impl Lease {
    /// A lease on `key`, guarding the entry `entry`, held with `token`, by a sync caller
    /// when `blocking`.
    pub(crate) fn new(
        cache: &Cache,
        key: String,
        entry: NearKey,
        token: Bytes,
        blocking: bool,
    ) -> Self {
        Self {
            cache: cache.clone(),
            key,
            token,
            entry,
            blocking,
            held: true,
        }
    }

    /// The lease key.
    pub(crate) fn key(&self) -> &str {
        &self.key
    }

    /// The token the lease holds.
    pub(crate) fn token(&self) -> &[u8] {
        &self.token
    }

    /// The token, to send with the `SET NX` that takes the lease.
    pub(crate) fn token_bytes(&self) -> Bytes {
        self.token.clone()
    }

    /// This caller does not hold the lease (its `SET NX` found another holder): dropping it
    /// undoes nothing, until [`Lease::arm`].
    pub(crate) fn disarm(&mut self) {
        self.held = false;
    }

    /// This caller may hold the lease from now on: its `SET NX` is about to be sent, and
    /// if the call is dropped before the answer, the lease is released like a held one.
    pub(crate) fn arm(&mut self) {
        self.held = true;
    }

    /// The call released the lease, or leaves it to expire: nothing is left to undo.
    pub(crate) fn settle(mut self) {
        self.held = false;
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if !self.held {
            return;
        }
        if self.blocking {
            let release = ReleaseLease {
                key: &self.key,
                token: &self.token,
            };
            let _ = self.cache.gateway().perform_blocking(release);
            Waiters::global().notify(&[self.entry]);
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (cache, key, token, entry) = (
                self.cache.clone(),
                std::mem::take(&mut self.key),
                self.token.clone(),
                self.entry,
            );
            runtime.spawn(async move {
                let release = ReleaseLease {
                    key: &key,
                    token: &token,
                };
                let _ = cache.gateway().perform(release).await;
                Waiters::global().notify(&[entry]);
            });
        }
    }
}
