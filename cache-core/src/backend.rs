//! The storage interface every backend implements.
//!
//! A backend stores opaque bytes under string keys. It knows nothing of namespaces, codecs or
//! functions: [`Cache`](crate::Cache) adds those, so the same keys and values reach every
//! backend and a deployment can move from memory to Redis without a change in user code.
//!
//! There are two traits with the same operations: [`Backend`] for async callers and
//! [`BlockingBackend`] for sync functions. Each backend implements both at its own I/O edge
//! (the Redis backend, for example, keeps multiplexed async connections and a small pool of
//! plain blocking connections), so a sync function never needs an async runtime and never
//! blocks on one.

#[doc(hidden)]
pub mod composed;
pub mod memory;
pub mod null;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::Result;

/// How a built-in backend behaves, for the call path to pick its cheapest correct path.
/// Not part of the `Backend` contract: a custom backend keeps the default,
/// [`Capabilities::REMOTE`].
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Operations complete in process without I/O, so async callers use the blocking
    /// methods in line (no future on the hit path).
    pub in_process: bool,
    /// Entries are shared with other processes (a stale value's refresh takes a lease; an
    /// empty namespace may not be cleared).
    pub shared: bool,
}

impl Capabilities {
    /// A remote store shared by processes, such as Redis; what a custom backend is taken for.
    pub const REMOTE: Self = Self {
        in_process: false,
        shared: true,
    };

    /// An in-process store.
    pub const IN_PROCESS: Self = Self {
        in_process: true,
        shared: false,
    };
}

/// The bytes a [`GetFuture`] holds in place: enough for the Redis backend's read (checked by
/// its tests), so a Redis hit allocates no future on the heap.
#[doc(hidden)]
pub const GET_FUTURE_SPACE: usize = 1496;

pin_project_lite::pin_project! {
    #[doc(hidden)]
    /// The future of [`Backend::get_inline`]: a read stored in the caller's own future, not on
    /// the heap, when it fits in [`GET_FUTURE_SPACE`] bytes (boxed when it does not). Every
    /// async function that reads through a cache is larger by this space (why: the hit path
    /// in `docs/design.md`).
    ///
    /// ```
    /// use cache_core::backend::GetFuture;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let read = GetFuture::new(async { Ok(Some(bytes::Bytes::from_static(b"v"))) });
    /// assert_eq!(read.await.unwrap().as_deref(), Some(&b"v"[..]));
    /// # }
    /// ```
    #[must_use = "futures do nothing unless awaited"]
    pub struct GetFuture<'a> {
        #[pin]
        inner: stackfuture::StackFuture<'a, Result<Option<Bytes>>, GET_FUTURE_SPACE>,
        // Times the read when the `metrics` feature is on (empty otherwise).
        timer: crate::observe::timer::Timer<'a>,
    }
}

impl<'a> GetFuture<'a> {
    /// Wraps `read`: in place if it fits in [`GET_FUTURE_SPACE`] bytes, boxed otherwise.
    pub fn new<F>(read: F) -> Self
    where
        F: Future<Output = Result<Option<Bytes>>> + Send + 'a,
    {
        Self {
            inner: stackfuture::StackFuture::from_or_box(read),
            timer: crate::observe::timer::Timer::default(),
        }
    }

    /// The same read, timed by `timer`.
    #[cfg(feature = "metrics")]
    pub(crate) fn timed(mut self, timer: crate::observe::timer::Timer<'a>) -> Self {
        self.timer = timer;
        self
    }

    /// True if `read` would be stored in place by [`GetFuture::new`] (for a backend's tests).
    pub fn fits<F: Future>(read: &F) -> bool {
        std::mem::size_of_val(read) <= GET_FUTURE_SPACE
            && std::mem::align_of_val(read) <= std::mem::align_of::<Self>()
    }
}

impl Future for GetFuture<'_> {
    type Output = Result<Option<Bytes>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let read = {
            let _span = this.timer.enter();
            std::task::ready!(this.inner.poll(cx))
        };
        this.timer.finish(read.is_ok());
        Poll::Ready(read)
    }
}

impl fmt::Debug for GetFuture<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GetFuture")
    }
}

/// A time-to-live: `None` means the entry never expires.
pub type Ttl = Option<Duration>;

/// What [`Backend::acquire_lease`] found: the value, or whether this caller now holds the
/// lease (not for custom backends).
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquired {
    /// The key holds this value; this caller holds no lease.
    Value(Bytes),
    /// The key holds nothing and this caller took the lease.
    Taken,
    /// The key holds nothing and another caller holds the lease.
    Busy,
}

/// The async half of a backend. Keys arrive fully built (namespace included).
///
/// Implementations must be cheap to call concurrently and must bound every I/O operation
/// with a time-out.
#[async_trait]
pub trait Backend: Send + Sync + fmt::Debug + 'static {
    /// How a built-in backend behaves (not for custom backends: the default is right).
    #[doc(hidden)]
    fn capabilities(&self) -> Capabilities {
        Capabilities::REMOTE
    }

    /// The change channel of a shared backend for the near cache, scoped to `namespace`
    /// (and to the backend's database), if it has one (not for custom backends: the
    /// default is none, and a near cache then stays off).
    #[doc(hidden)]
    fn bus(&self, namespace: &str) -> Option<std::sync::Arc<dyn crate::bus::Bus>> {
        let _ = namespace;
        None
    }

    /// The value stored under `key`, if any.
    async fn get(&self, key: &str) -> Result<Option<Bytes>>;

    /// [`Backend::get`] for the hit path of a built-in backend, with the future stored in
    /// the caller's own future (not for custom backends: the default wraps `get`).
    #[doc(hidden)]
    fn get_inline<'a>(&'a self, key: &'a str) -> GetFuture<'a> {
        GetFuture::new(self.get(key))
    }

    /// The values under `keys`, in the same order.
    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>>;

    /// Stores `value` under `key`, replacing any value, expiring after `ttl`.
    async fn set(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<()>;

    /// Stores several entries with the same `ttl`.
    async fn set_many(&self, entries: &[(&str, Bytes)], ttl: Ttl) -> Result<()>;

    /// Stores `value` only if `key` holds nothing, atomically; true if it was stored.
    async fn add(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<bool>;

    /// Removes `key`; true if it existed.
    async fn delete(&self, key: &str) -> Result<bool>;

    /// Removes `keys`; returns how many existed.
    async fn delete_many(&self, keys: &[&str]) -> Result<u64>;

    /// True if `key` holds a value.
    async fn exists(&self, key: &str) -> Result<bool>;

    /// Removes every key that starts with `prefix` (a literal prefix, never a pattern) and
    /// returns how many were removed. Callers never pass an empty prefix.
    async fn delete_prefix(&self, prefix: &str) -> Result<u64>;

    /// Removes `key` only if it holds exactly `expected`, atomically; true if removed.
    /// Releases a stampede lease without deleting one that another caller took since.
    ///
    /// The default refuses, so leases then simply expire.
    async fn delete_if_equal(&self, key: &str, expected: &[u8]) -> Result<bool> {
        let _ = (key, expected);
        Err(unsupported("delete_if_equal"))
    }

    /// The value under `key` if there is one, else the lease `lease_key` taken with `token`
    /// for `time` if nobody holds it: a leased miss's second look and its lease in one
    /// operation (not for custom backends: the default, [`composed::acquire_lease`], takes
    /// the lease with [`Backend::add`] and reads `key` with [`Backend::get`]).
    #[doc(hidden)]
    async fn acquire_lease(
        &self,
        key: &str,
        lease_key: &str,
        token: Bytes,
        time: Duration,
    ) -> Result<Acquired> {
        composed::acquire_lease(self, key, lease_key, token, time).await
    }

    /// Stores `value` under `key` for `ttl`, then releases the lease `lease_key` if it holds
    /// `token`: a leased miss's store and release in one operation (not for custom backends:
    /// the default, [`composed::set_releasing`], is [`Backend::set`] then
    /// [`Backend::delete_if_equal`]). An error is the store's.
    #[doc(hidden)]
    async fn set_releasing(
        &self,
        key: &str,
        value: Bytes,
        ttl: Ttl,
        lease_key: &str,
        token: &[u8],
    ) -> Result<()> {
        composed::set_releasing(self, key, value, ttl, lease_key, token).await
    }
}

fn unsupported(operation: &str) -> crate::Error {
    crate::Error::new(
        crate::ErrorKind::Refused,
        format!("this backend does not support {operation}"),
    )
}

/// The blocking half of a backend, used by sync functions and [`Cache::blocking`].
///
/// It must work with no async runtime, inside a runtime's worker thread and inside
/// `spawn_blocking`, and must never wait on an async runtime.
///
/// [`Cache::blocking`]: crate::Cache::blocking
pub trait BlockingBackend: Send + Sync + fmt::Debug + 'static {
    /// See [`Backend::get`].
    fn get(&self, key: &str) -> Result<Option<Bytes>>;
    /// See [`Backend::get_many`].
    fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>>;
    /// See [`Backend::set`].
    fn set(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<()>;
    /// See [`Backend::set_many`].
    fn set_many(&self, entries: &[(&str, Bytes)], ttl: Ttl) -> Result<()>;
    /// See [`Backend::add`].
    fn add(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<bool>;
    /// See [`Backend::delete`].
    fn delete(&self, key: &str) -> Result<bool>;
    /// See [`Backend::delete_many`].
    fn delete_many(&self, keys: &[&str]) -> Result<u64>;
    /// See [`Backend::exists`].
    fn exists(&self, key: &str) -> Result<bool>;
    /// See [`Backend::delete_prefix`].
    fn delete_prefix(&self, prefix: &str) -> Result<u64>;
    /// See [`Backend::delete_if_equal`].
    fn delete_if_equal(&self, key: &str, expected: &[u8]) -> Result<bool> {
        let _ = (key, expected);
        Err(unsupported("delete_if_equal"))
    }
    /// See [`Backend::acquire_lease`].
    #[doc(hidden)]
    fn acquire_lease(
        &self,
        key: &str,
        lease_key: &str,
        token: Bytes,
        time: Duration,
    ) -> Result<Acquired> {
        composed::acquire_lease_blocking(self, key, lease_key, token, time)
    }
    /// See [`Backend::set_releasing`].
    #[doc(hidden)]
    fn set_releasing(
        &self,
        key: &str,
        value: Bytes,
        ttl: Ttl,
        lease_key: &str,
        token: &[u8],
    ) -> Result<()> {
        composed::set_releasing_blocking(self, key, value, ttl, lease_key, token)
    }
}

/// Both halves: what a [`Cache`](crate::Cache) holds. Implemented for every type that
/// implements [`Backend`] and [`BlockingBackend`].
pub trait Store: Backend + BlockingBackend {
    /// The blocking half, as a trait object.
    fn blocking(&self) -> &dyn BlockingBackend;
}

impl<T: Backend + BlockingBackend> Store for T {
    fn blocking(&self) -> &dyn BlockingBackend {
        self
    }
}

/// Implements [`Backend`] for an in-process type by calling its [`BlockingBackend`] methods,
/// which never wait on I/O; `bus = path` forwards [`Backend::bus`] to that function.
macro_rules! async_via_blocking {
    ($ty:ty $(, bus = $bus:path)?) => {
        #[::async_trait::async_trait]
        impl $crate::backend::Backend for $ty {
            fn capabilities(&self) -> $crate::backend::Capabilities {
                Self::CAPABILITIES
            }
            $(
                fn bus(
                    &self,
                    namespace: &str,
                ) -> Option<::std::sync::Arc<dyn $crate::bus::Bus>> {
                    $bus(self, namespace)
                }
            )?
            async fn get(&self, key: &str) -> $crate::Result<Option<::bytes::Bytes>> {
                $crate::backend::BlockingBackend::get(self, key)
            }
            async fn get_many(&self, keys: &[&str]) -> $crate::Result<Vec<Option<::bytes::Bytes>>> {
                $crate::backend::BlockingBackend::get_many(self, keys)
            }
            async fn set(
                &self,
                key: &str,
                value: ::bytes::Bytes,
                ttl: $crate::backend::Ttl,
            ) -> $crate::Result<()> {
                $crate::backend::BlockingBackend::set(self, key, value, ttl)
            }
            async fn set_many(
                &self,
                entries: &[(&str, ::bytes::Bytes)],
                ttl: $crate::backend::Ttl,
            ) -> $crate::Result<()> {
                $crate::backend::BlockingBackend::set_many(self, entries, ttl)
            }
            async fn add(
                &self,
                key: &str,
                value: ::bytes::Bytes,
                ttl: $crate::backend::Ttl,
            ) -> $crate::Result<bool> {
                $crate::backend::BlockingBackend::add(self, key, value, ttl)
            }
            async fn delete(&self, key: &str) -> $crate::Result<bool> {
                $crate::backend::BlockingBackend::delete(self, key)
            }
            async fn delete_many(&self, keys: &[&str]) -> $crate::Result<u64> {
                $crate::backend::BlockingBackend::delete_many(self, keys)
            }
            async fn exists(&self, key: &str) -> $crate::Result<bool> {
                $crate::backend::BlockingBackend::exists(self, key)
            }
            async fn delete_prefix(&self, prefix: &str) -> $crate::Result<u64> {
                $crate::backend::BlockingBackend::delete_prefix(self, prefix)
            }
            async fn delete_if_equal(&self, key: &str, expected: &[u8]) -> $crate::Result<bool> {
                $crate::backend::BlockingBackend::delete_if_equal(self, key, expected)
            }
        }
    };
}
pub(crate) use async_via_blocking;
