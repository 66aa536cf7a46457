//! Redis behind Sentinels: a master that moves on failover, followed without a restart.
//!
//! The `redis` crate's Sentinel client resolves the master once per connection and hands
//! back a connection that never looks again. [`Sentinel`] instead:
//!
//! - holds the current master as an ordinary [`Server`] (multiplexed connection, bounded
//!   blocking pool, circuit breaker and prober), swapped atomically when the master moves,
//!   so every call goes to the master (a read right after a write never misses);
//! - resolves the master in the background ([`resolve`]: each Sentinel in turn, then
//!   `ROLE` on the node it names), at most one resolution at a time and at most one per
//!   [`RESOLVE_INTERVAL`], on the first call and after a call to the master meets a
//!   connection error, a time-out (the breaker's fail-fast errors included) or a
//!   `READONLY`/`MASTERDOWN` answer;
//! - listens for `+switch-master` on a Sentinel ([`watch`]), so a switch is picked up as
//!   soon as the Sentinels announce it, without waiting for an error.
//!
//! Calls never wait for a switch: while the master is down they fail open through its
//! breaker (a miss for a cached call), and the first call after the switch goes to the
//! new master. Only a call made before any master was found waits for the resolution in
//! flight, for at most the connect time-out, and then fails with a connection error; once
//! a resolution has found none (no Sentinel answers, say), such calls fail at once while
//! resolutions go on in the background.
//!
//! The resolver and the watcher are plain threads holding only [`Weak`] references, so
//! they need no runtime and end when the backend is dropped; "a resolution runs" and "a
//! watcher runs" are owned by guards whose `Drop` clears them, so a thread that panics or
//! could not start never leaves the flag set.

mod resolve;
mod settings;
mod watch;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use event_listener::{Event, EventListener, Listener as _};
use redis::Value;

use cache_core::{Error, ErrorKind, Result};

use crate::server::{Request, Server};
use resolve::Resolved;
pub(crate) use settings::Settings;
use settings::{Addr, sentinel_addr, show};

/// The shortest time between two resolutions started by errors: 100 ms.
pub(crate) const RESOLVE_INTERVAL: Duration = Duration::from_millis(100);

/// The master as last resolved: its address and its server.
pub(crate) struct Master {
    addr: Addr,
    pub(crate) server: Server,
}

/// A master followed through Redis Sentinel. See the module docs.
pub(crate) struct Sentinel {
    shared: Arc<Shared>,
}

struct Shared {
    settings: Arc<Settings>,
    master: ArcSwapOption<Master>,
    /// Serialises installing a master, so two resolutions never race their swaps.
    installing: Mutex<()>,
    /// A resolution thread runs (owned by its [`Resolving`] guard).
    resolving: AtomicBool,
    /// No resolution starts before this time (nanoseconds since `epoch`).
    next_resolution: AtomicU64,
    epoch: Instant,
    /// Notified when a resolution ends, for the callers waiting for a first master.
    resolved: Event,
    /// A resolution ended without finding any master: callers stop waiting for the next
    /// ones (they fail fast until one succeeds).
    gave_up: AtomicBool,
    /// The watcher thread runs (owned by its [`Watching`] guard).
    watching: AtomicBool,
}

impl std::fmt::Debug for Sentinel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let settings = &self.shared.settings;
        let sentinels: Vec<String> = settings.sentinels.iter().map(sentinel_addr).collect();
        f.debug_struct("Sentinel")
            .field("master_name", &settings.master_name)
            .field("sentinels", &sentinels)
            .field("master", &self.master_addr())
            .field("db", &settings.node.db())
            .finish_non_exhaustive()
    }
}

impl Sentinel {
    /// A manager for `settings`. It does not connect: the first call resolves the master.
    pub(crate) fn new(settings: Settings) -> Self {
        Self {
            shared: Arc::new(Shared {
                settings: Arc::new(settings),
                master: ArcSwapOption::empty(),
                installing: Mutex::new(()),
                resolving: AtomicBool::new(false),
                next_resolution: AtomicU64::new(0),
                epoch: Instant::now(),
                resolved: Event::new(),
                gave_up: AtomicBool::new(false),
                watching: AtomicBool::new(false),
            }),
        }
    }

    /// Sends a request to the master, through its circuit breaker.
    pub(crate) async fn query(&self, request: Request<'_>) -> Result<Value> {
        let master = match self.shared.master.load_full() {
            Some(master) => master,
            None => Box::pin(self.master()).await?,
        };
        let result = master.server.query(request).await;
        if let Err(error) = &result {
            self.shared.after_error(&master, error);
        }
        result
    }

    /// [`query`](Self::query) on a blocking connection.
    pub(crate) fn query_blocking(&self, request: Request<'_>) -> Result<Value> {
        let master = match self.shared.master.load_full() {
            Some(master) => master,
            None => self.master_blocking()?,
        };
        let result = master.server.query_blocking(request);
        if let Err(error) = &result {
            self.shared.after_error(&master, error);
        }
        result
    }

    /// The master, waiting (at most the connect time-out) for the resolution in flight if
    /// none is known yet; once a resolution has failed to find any, without waiting.
    pub(crate) async fn master(&self) -> Result<Arc<Master>> {
        match self.first_master() {
            Lookup::Known(master) => return Ok(master),
            Lookup::Wait(listener) => {
                let _ = tokio::time::timeout(self.shared.settings.timeouts.connect, listener).await;
            }
            Lookup::Unknown => {}
        }
        self.after_wait()
    }

    /// [`master`](Self::master) for sync callers.
    pub(crate) fn master_blocking(&self) -> Result<Arc<Master>> {
        match self.first_master() {
            Lookup::Known(master) => return Ok(master),
            Lookup::Wait(listener) => {
                let _ = listener.wait_timeout(self.shared.settings.timeouts.connect);
            }
            Lookup::Unknown => {}
        }
        self.after_wait()
    }

    /// The step before waiting, shared by both: the master if known, else a listener for
    /// the end of the resolution in flight (unless a resolution has found none).
    #[cold]
    fn first_master(&self) -> Lookup {
        // Listening before looking, so a resolution that ends in between is not missed.
        let listener = self.shared.resolved.listen();
        if let Some(master) = self.shared.master.load_full() {
            return Lookup::Known(master);
        }
        if self.shared.request_resolution() && !self.shared.gave_up.load(Ordering::Relaxed) {
            Lookup::Wait(listener)
        } else {
            Lookup::Unknown
        }
    }

    /// The step after waiting, shared by both.
    fn after_wait(&self) -> Result<Arc<Master>> {
        self.shared
            .master
            .load_full()
            .ok_or_else(|| self.shared.unresolved())
    }

    /// The master as last resolved, if any.
    pub(crate) fn current(&self) -> Option<Arc<Master>> {
        self.shared.master.load_full()
    }

    /// The master's `host:port` as last resolved, if any.
    pub(crate) fn master_addr(&self) -> Option<String> {
        self.current().map(|master| show(&master.addr))
    }

    /// The data nodes' database.
    pub(crate) fn db(&self) -> i64 {
        self.shared.settings.node.db()
    }

    /// After a request of its own to `master` failed (a subscription's, say): re-resolves
    /// as [`query`](Self::query) does after its errors.
    pub(crate) fn after_error(&self, master: &Arc<Master>, error: &Error) {
        self.shared.after_error(master, error);
    }
}

/// Where a call without a known master stands.
enum Lookup {
    Known(Arc<Master>),
    Wait(EventListener),
    Unknown,
}

impl Shared {
    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// After a failed call to `master`: re-resolve if the error says the master may have
    /// moved and `master` is still the current one.
    #[cold]
    fn after_error(self: &Arc<Self>, master: &Arc<Master>, error: &Error) {
        if !(is_outage(error) || is_not_master(error)) {
            return;
        }
        let current = self.master.load();
        if current.as_ref().is_some_and(|now| Arc::ptr_eq(now, master)) {
            self.request_resolution();
        }
    }

    /// Starts a resolution unless one runs or the last started less than
    /// [`RESOLVE_INTERVAL`] ago; true if one runs now. Starts the watcher too, if it does
    /// not run.
    #[cold]
    fn request_resolution(self: &Arc<Self>) -> bool {
        self.ensure_watching();
        if self.resolving.load(Ordering::Acquire) {
            return true;
        }
        let now = self.now();
        if now < self.next_resolution.load(Ordering::Relaxed)
            || self
                .resolving
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            return self.resolving.load(Ordering::Acquire);
        }
        let interval = u64::try_from(RESOLVE_INTERVAL.as_nanos()).unwrap_or(u64::MAX);
        self.next_resolution
            .store(now.saturating_add(interval), Ordering::Relaxed);
        let running = Resolving(Arc::downgrade(self));
        let dispatch = tracing::dispatcher::get_default(Clone::clone);
        let spawned = std::thread::Builder::new()
            .name("cache-redis-sentinel-resolve".to_owned())
            .spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    if let Some(shared) = running.0.upgrade() {
                        shared.resolve();
                    }
                    drop(running);
                });
            });
        match spawned {
            Ok(_) => true,
            Err(error) => {
                // The closure, and the guard in it, are gone: the flag is clear again.
                tracing::warn!(target: "cache_redis", %error, "cannot start a Sentinel resolution; a later call retries");
                false
            }
        }
    }

    /// One resolution: the Sentinels, then the node they name.
    fn resolve(&self) {
        match resolve::master(&self.settings) {
            Ok(resolved) => self.install(resolved),
            Err(error) if self.master.load().is_some() => {
                tracing::debug!(target: "cache_redis", error = %format_args!("{error:#}"), "Sentinel resolution found no new master");
            }
            Err(error) => {
                self.gave_up.store(true, Ordering::Relaxed);
                tracing::warn!(target: "cache_redis", error = %format_args!("{error:#}"), "Sentinel resolution found no master; calls fail open until one is found");
            }
        }
    }

    /// Makes `resolved` the master, unless it is already.
    fn install(&self, resolved: Resolved) {
        let _one_at_a_time = self
            .installing
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let previous = self.master.load_full();
        if previous.as_ref().is_some_and(|m| m.addr == resolved.addr) {
            return;
        }
        let settings = &self.settings;
        let server = Server::new(
            resolved.client,
            settings.timeouts,
            settings.pool,
            settings.breaker,
        );
        let to = show(&resolved.addr);
        self.master.store(Some(Arc::new(Master {
            addr: resolved.addr,
            server,
        })));
        let name = &settings.master_name;
        match previous {
            Some(previous) => tracing::info!(
                target: "cache_redis",
                "Sentinel master `{name}` moved from {} to {to}",
                show(&previous.addr)
            ),
            None => tracing::info!(target: "cache_redis", "Sentinel master `{name}` is at {to}"),
        }
    }

    /// Starts the watcher thread unless it runs.
    #[cold]
    fn ensure_watching(self: &Arc<Self>) {
        if self.watching.load(Ordering::Relaxed)
            || self
                .watching
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let running = Watching(Arc::downgrade(self));
        let settings = self.settings.clone();
        let dispatch = tracing::dispatcher::get_default(Clone::clone);
        let spawned = std::thread::Builder::new()
            .name("cache-redis-sentinel-watch".to_owned())
            .spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    watch::run(&running.0, &settings);
                    drop(running);
                });
            });
        if let Err(error) = spawned {
            tracing::warn!(target: "cache_redis", %error, "cannot start the +switch-master watcher; a later resolution retries");
        }
    }

    #[cold]
    fn unresolved(&self) -> Error {
        Error::new(
            ErrorKind::Connection,
            format!(
                "no Sentinel has named a reachable master for `{}` yet; resolving again in \
                 the background",
                self.settings.master_name
            ),
        )
    }
}

impl watch::Listener for Shared {
    fn switched(self: &Arc<Self>, to: Addr) {
        if self.master.load().as_ref().is_some_and(|m| m.addr == to) {
            return;
        }
        tracing::debug!(target: "cache_redis", to = %show(&to), "+switch-master announced");
        match resolve::verify(&self.settings, &to) {
            Ok(resolved) => self.install(resolved),
            Err(error) => {
                tracing::debug!(target: "cache_redis", error = %format_args!("{error:#}"), "the announced master does not answer as one yet");
                self.request_resolution();
            }
        }
    }

    fn resubscribed(self: &Arc<Self>) {
        self.request_resolution();
    }
}

/// Owns "a resolution runs": clears it, and wakes the callers waiting for a master, when
/// the resolution ends (or panics, or its thread could not start).
struct Resolving(Weak<Shared>);

impl Drop for Resolving {
    fn drop(&mut self) {
        if let Some(shared) = self.0.upgrade() {
            shared.resolving.store(false, Ordering::Release);
            shared.resolved.notify(usize::MAX);
        }
    }
}

/// Owns "the watcher runs".
struct Watching(Weak<Shared>);

impl Drop for Watching {
    fn drop(&mut self) {
        if let Some(shared) = self.0.upgrade() {
            shared.watching.store(false, Ordering::Release);
        }
    }
}

/// Errors that mean the master is unreachable (the breaker's fail-fast errors included).
fn is_outage(error: &Error) -> bool {
    matches!(error.kind(), ErrorKind::Connection | ErrorKind::Timeout)
}

/// `READONLY` (the node was demoted to a replica) or `MASTERDOWN` (a replica that lost
/// its master): the node is not the master any more.
fn is_not_master(error: &Error) -> bool {
    std::error::Error::source(error)
        .and_then(|source| source.downcast_ref::<redis::RedisError>())
        .is_some_and(|error| matches!(error.code(), Some("READONLY" | "MASTERDOWN")))
}
