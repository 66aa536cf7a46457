//! The one path from a [`Cache`](crate::Cache) to its backend.
//!
//! Every backend operation, a cached call's read, lease or store as much as a
//! [`Cache`](crate::Cache) method, is a read ([`Gateway::read`]) or one [`Op`] value,
//! performed by a [`Gateway`] at a blocking edge or an async one and counted here: a failure
//! is an error, a write a store, a removal its number of entries, an existence check a hit or
//! a miss. (Whether a read is a hit depends on whether its bytes decode, so the reader counts
//! that.) With the `metrics` feature each operation on a backend that does I/O is also timed
//! and run in a span here. A concern that spans every operation (counting, timing, tracing, a
//! tier in front) is added in this file only.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;

use crate::Result;
use crate::backend::{Acquired, Backend, BlockingBackend, GetFuture, Store, Ttl};
use crate::observe::{BackendOp, Latency};
use crate::stats::Counters;

/// The boxed future of an [`async_trait`](async_trait::async_trait) backend method.
type Boxed<'s, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 's>>;

/// One backend operation: how each edge performs it, and what its success counts.
pub(crate) trait Op: Sized {
    /// What the operation gives.
    type Output;
    /// Its `op` label, for its latency and span.
    const OP: BackendOp;

    /// Performs the operation on the blocking half.
    fn blocking(self, store: &dyn BlockingBackend) -> Result<Self::Output>;

    /// Performs the operation on the async half.
    fn run<'s>(self, store: &'s dyn Backend) -> Boxed<'s, Self::Output>
    where
        Self: 's;

    /// Counts a success (failures are counted by the path itself).
    fn count(_counters: Counters<'_>, _output: &Self::Output) {}
}

/// Where a cache's operations go: its backend, and the counters they are counted in.
#[derive(Clone, Copy)]
pub(crate) struct Gateway<'a> {
    store: &'a dyn Store,
    /// The backend completes its operations in process, without I/O: async callers use
    /// its blocking half in line (no future, nothing boxed).
    in_process: bool,
    counters: Counters<'a>,
    latency: &'a Latency,
}

impl<'a> Gateway<'a> {
    pub(crate) fn new(
        store: &'a dyn Store,
        in_process: bool,
        counters: Counters<'a>,
        latency: &'a Latency,
    ) -> Self {
        Self {
            store,
            in_process,
            counters,
            latency,
        }
    }

    /// `GET` on the blocking half: the bytes under `key`.
    #[inline]
    pub(crate) fn read_blocking(self, key: &str) -> Result<Option<Bytes>> {
        let read = self
            .latency
            .blocking(BackendOp::Get, || self.store.blocking().get(key));
        self.count_read(read)
    }

    /// `GET`, counted: the bytes under `key`.
    pub(crate) async fn read(&self, key: &str) -> Result<Option<Bytes>> {
        let read = if self.reads_in_line() {
            self.read_in_line(key)
        } else {
            self.read_remote(key).await
        };
        self.count_read(read)
    }

    /// True when the backend completes a read in process: then [`Gateway::read_in_line`],
    /// else [`Gateway::read_remote`]; then [`Gateway::count_read`].
    #[inline]
    pub(crate) fn reads_in_line(&self) -> bool {
        self.in_process
    }

    /// `GET` without a future, on an in-process backend.
    #[inline]
    pub(crate) fn read_in_line(&self, key: &str) -> Result<Option<Bytes>> {
        self.store.blocking().get(key)
    }

    /// `GET` on a remote backend, with its read future kept in place ([`GetFuture`]) so a
    /// remote hit allocates no future. (Separate methods rather than one future: an in-process
    /// hit would carry the remote read's space through its await.)
    #[inline]
    pub(crate) fn read_remote<'s>(&self, key: &'s str) -> GetFuture<'s>
    where
        'a: 's,
    {
        self.latency.read(self.store.get_inline(key))
    }

    /// Counts what a read gave.
    #[inline]
    pub(crate) fn count_read(&self, read: Result<Option<Bytes>>) -> Result<Option<Bytes>> {
        if read.is_err() {
            self.counters.error();
        }
        read
    }

    /// Performs `op` on the blocking half.
    #[inline]
    pub(crate) fn perform_blocking<O: Op>(self, op: O) -> Result<O::Output> {
        let result = self
            .latency
            .blocking(O::OP, || op.blocking(self.store.blocking()));
        counted::<O>(self.counters, result)
    }

    /// Performs `op`: in line on an in-process backend, on the async half otherwise.
    #[inline]
    pub(crate) async fn perform<O: Op>(self, op: O) -> Result<O::Output> {
        let result = if self.in_process {
            op.blocking(self.store.blocking())
        } else {
            self.latency.run(O::OP, op.run(self.store)).await
        };
        counted::<O>(self.counters, result)
    }
}

#[inline]
fn counted<O: Op>(counters: Counters<'_>, result: Result<O::Output>) -> Result<O::Output> {
    match &result {
        Ok(output) => O::count(counters, output),
        Err(_) => counters.error(),
    }
    result
}

/// Declares an operation that maps onto one method of both backend halves.
macro_rules! op {
    (
        $(#[$doc:meta])*
        $name:ident { $($field:ident: $ty:ty),* } -> $out:ty, $op:ident,
        |$store:ident| $call:ident($($arg:expr),*),
        count($counters:ident, $output:ident) $count:block
    ) => {
        $(#[$doc])*
        pub(crate) struct $name<'k> { $(pub(crate) $field: $ty),* }

        impl<'k> Op for $name<'k> {
            type Output = $out;
            const OP: BackendOp = BackendOp::$op;

            fn blocking(self, $store: &dyn BlockingBackend) -> Result<$out> {
                let Self { $($field),* } = self;
                $store.$call($($arg),*)
            }
            fn run<'s>(self, $store: &'s dyn Backend) -> Boxed<'s, $out>
            where
                Self: 's,
            {
                let Self { $($field),* } = self;
                $store.$call($($arg),*)
            }
            fn count($counters: Counters<'_>, $output: &$out) $count
        }
    };
}

op! {
    /// `MGET`: the bytes under several keys, in order.
    GetMany { keys: &'k [&'k str] } -> Vec<Option<Bytes>>, GetMany,
    |store| get_many(keys),
    count(_counters, _output) {}
}

op! {
    /// `SET`: a value stored (a store).
    Set { key: &'k str, value: Bytes, ttl: Ttl } -> (), Set,
    |store| set(key, value, ttl),
    count(counters, _output) { counters.store() }
}

/// Several values stored with one time-to-live (one store each; gives how many).
pub(crate) struct SetMany<'k> {
    pub(crate) entries: &'k [(&'k str, Bytes)],
    pub(crate) ttl: Ttl,
}

impl<'k> Op for SetMany<'k> {
    type Output = usize;
    const OP: BackendOp = BackendOp::SetMany;

    fn blocking(self, store: &dyn BlockingBackend) -> Result<usize> {
        store
            .set_many(self.entries, self.ttl)
            .map(|()| self.entries.len())
    }
    fn run<'s>(self, store: &'s dyn Backend) -> Boxed<'s, usize>
    where
        Self: 's,
    {
        let stored = self.entries.len();
        let write = store.set_many(self.entries, self.ttl);
        Box::pin(async move { write.await.map(|()| stored) })
    }
    fn count(counters: Counters<'_>, stored: &usize) {
        for _ in 0..*stored {
            counters.store();
        }
    }
}

op! {
    /// `SET NX`: a value stored only if the key holds none (a store when it was).
    Add { key: &'k str, value: Bytes, ttl: Ttl } -> bool, Add,
    |store| add(key, value, ttl),
    count(counters, added) { if *added { counters.store() } }
}

op! {
    /// `SET NX PX` on a lease key: true if this caller holds the lease (not a store).
    TakeLease { key: &'k str, token: Bytes, time: Duration } -> bool, Add,
    |store| add(key, token, Some(time)),
    count(_counters, _output) {}
}

op! {
    /// Compare-and-delete of a lease this caller holds (not a removal of an entry).
    ReleaseLease { key: &'k str, token: &'k [u8] } -> bool, DeleteIfEqual,
    |store| delete_if_equal(key, token),
    count(_counters, _output) {}
}

op! {
    /// A leased miss's second look and lease in one: the value under `key`, or the lease
    /// taken (or found busy). A value found is counted as a hit by the call.
    AcquireLease { key: &'k str, lease_key: &'k str, token: Bytes, time: Duration } -> Acquired,
    AcquireLease,
    |store| acquire_lease(key, lease_key, token, time),
    count(_counters, _output) {}
}

op! {
    /// A leased miss's store and lease release in one (a store).
    SetReleasing {
        key: &'k str, value: Bytes, ttl: Ttl, lease_key: &'k str, token: &'k [u8]
    } -> (), SetReleasing,
    |store| set_releasing(key, value, ttl, lease_key, token),
    count(counters, _output) { counters.store() }
}

op! {
    /// `UNLINK` of one key (one removal if it existed).
    Delete { key: &'k str } -> bool, Delete,
    |store| delete(key),
    count(counters, removed) { counters.deleted(u64::from(*removed)) }
}

op! {
    /// `UNLINK` of several keys (the removals counted).
    DeleteMany { keys: &'k [&'k str] } -> u64, DeleteMany,
    |store| delete_many(keys),
    count(counters, removed) { counters.deleted(*removed) }
}

op! {
    /// Every key under a prefix removed (the removals counted).
    DeletePrefix { prefix: &'k str } -> u64, DeletePrefix,
    |store| delete_prefix(prefix),
    count(counters, removed) { counters.deleted(*removed) }
}

op! {
    /// `EXISTS`: a hit or a miss.
    Exists { key: &'k str } -> bool, Exists,
    |store| exists(key),
    count(counters, found) { if *found { counters.hit() } else { counters.miss() } }
}
