//! [`RedisBackend`] and its builder.

pub(crate) mod sentinel;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use cache_core::backend::{
    Acquired, Backend, BlockingBackend, Capabilities, GetFuture, Ttl, composed,
};
use cache_core::config::{Secret, check_db, redact_url};
use cache_core::{Error, Result};
use redis::{Cmd, ConnectionInfo, Value};

use crate::breaker::BreakerSettings;
use crate::cluster::{Cluster, NodeSettings};
use crate::error::{is_no_script, is_wrong_type};
use crate::ops::{self, PrefixDeletion};
use crate::seeds;
use crate::server::{PoolLimits, Request, Server, Timeouts};
use crate::slots::slot;
use crate::target::{self, Names, describe};
use crate::topology::Topology;

/// How long opening a connection may take, handshake included, unless configured: 250 ms.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(250);
/// How long Redis may take to answer one command or pipeline, unless configured: 200 ms.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_millis(200);
/// The most blocking connections open at once (idle or in use), unless configured: 16.
pub const DEFAULT_MAX_CONNECTIONS: usize = 16;
/// The most idle blocking connections kept for sync callers, unless configured: 16, as many
/// as may be open, so a burst of sync calls never closes a connection only to open another.
pub const DEFAULT_POOL_SIZE: usize = DEFAULT_MAX_CONNECTIONS;

/// A [`cache_core`] backend that stores entries in Redis.
///
/// It implements both [`Backend`] (async) and [`BlockingBackend`] (sync), so the same
/// backend serves `async fn`s and plain `fn`s:
///
/// - **async**: one shared multiplexed connection per backend, opened on first use and
///   replaced after a connection error or time-out. No connection per call, no `PING`.
/// - **sync**: a bounded pool of plain blocking connections (at most
///   [`max_connections`](RedisBackendBuilder::max_connections) open at once, of which
///   [`pool_size`](RedisBackendBuilder::pool_size) are kept idle) with socket read and write
///   time-outs. It needs no async runtime and works inside a runtime's worker thread, in
///   `spawn_blocking` and on a `current_thread` runtime.
///
/// Building never touches the network, so a service starts while Redis is down; the first
/// call connects. Every call is bounded by the connect time-out (when it must connect) plus
/// the response time-out. Cloning is cheap and clones share connections.
///
/// # Commands
///
/// A hit is exactly one `GET`; a store is one `SET key value PX ms` (no `PX` without a
/// time-to-live); `add` is `SET NX PX`; `get_many` is one `MGET`; `set_many` one pipeline;
/// deletes are `UNLINK`; `exists` is `EXISTS`; releasing a stampede lease
/// (`delete_if_equal`) is one `EVAL` of a compare-and-delete script. A leased miss costs
/// three round trips: its `GET`, one `EVALSHA` that returns the value or takes the lease,
/// and one `EVALSHA` that stores the value and releases the lease; a server that does not
/// know a script (restarted, failed over, `SCRIPT FLUSH`) answers `NOSCRIPT` and is sent it
/// in full once (`EVAL`, which loads it). On a Cluster, where the two keys of a lease
/// script usually sit in different slots, those two operations are composed of single-key
/// commands instead (`SET NX`, `GET`; `SET`, the release `EVAL`). `delete_prefix` (behind `Cache::clear()` and
/// forgetting a function's entries) walks `SCAN cursor MATCH <prefix>* COUNT 500` and unlinks
/// each batch; glob characters in the prefix are escaped, so only keys that literally start
/// with it go. It never uses `KEYS` or `FLUSHDB`; [`flush_database`](Self::flush_database)
/// is the explicit way to empty the whole database.
///
/// A key that holds another Redis type (a list, a hash, ...) reads as a miss, and the next
/// store overwrites it.
///
/// # Redis Cluster
///
/// With [`RedisBackendBuilder::cluster`] (or `CACHE_REDIS_CLUSTER`), the backend talks to a
/// Redis Cluster: one server (connection, blocking pool, circuit breaker) per node, each
/// command sent to the primary of its key's hash slot. A hit is still one `GET`. The slot
/// map is read on the first call and followed through `MOVED` (the slot is re-pointed and
/// the command sent once more), `ASK` (`ASKING` and the command on the named node, once) and
/// failovers (a connection error or time-out refreshes the map in the background, at most
/// once per [`BreakerSettings::probe_interval`]). `get_many`, `set_many` and `delete_many`
/// send one pipeline per node with one command per slot, never a `CROSSSLOT` error;
/// `delete_prefix` reads a fresh map and scans every primary, unlinking per slot;
/// [`flush_database`](Self::flush_database) flushes every primary. A call starts no new
/// request once the connect plus response time-out has passed since it began. Replicas are
/// never read.
///
/// ```no_run
/// use cache_redis::RedisBackend;
///
/// # fn main() -> cache_core::Result<()> {
/// let backend = RedisBackend::builder()
///     .cluster("10.0.0.1:7000,10.0.0.2:7000,10.0.0.3:7000")
///     .password("s3cret")
///     .build()?;
/// let cache = cache_core::Cache::builder().backend(backend).build()?;
/// cache.blocking().set("greeting", "hello")?;
/// # Ok(()) }
/// ```
///
/// # Redis Sentinel
///
/// With [`RedisBackendBuilder::sentinel`] (or `CACHE_REDIS_SENTINELS`), the backend finds
/// the master through Redis Sentinel and follows it across failovers. Every call goes to the
/// master, so a read right after a write never misses (no replica reads), command for
/// command as on one server (a hit is one `GET` on the master; `clear()` scans the master,
/// whose deletions reach the replicas), with the same time-outs, bounded blocking pool and
/// circuit breaker, for the master of the moment. On top of that:
///
/// - **Lazy.** Building never connects. The first call asks the Sentinels, one after the
///   other, for the master (`SENTINEL GET-MASTER-ADDR-BY-NAME`, each within the connect and
///   response time-outs) and checks that the node answers `ROLE` as a master; that call
///   waits for it at most the connect time-out.
/// - **Failover.** A background thread subscribes to `+switch-master` on one Sentinel at a
///   time and switches as soon as the Sentinels announce a new master; it moves to the next
///   Sentinel when its own dies or stops answering `PING`. A call that meets a connection
///   error, a time-out or a `READONLY` answer also starts a resolution in the background
///   (one at a time, at most one per 100 ms). Callers never wait for a switch: until it
///   happens they fail open (a miss for a cached call), through the old master's breaker.
/// - **Threads.** Besides the breaker's prober, one watcher thread per backend while it is
///   in use, and a short-lived one per resolution; they hold only weak references, so
///   dropping the backend ends them (the watcher within 0.5 s).
///
/// The Sentinels take the [`sentinel_password`](RedisBackendBuilder::sentinel_password)
/// (their own `requirepass`, or with
/// [`sentinel_username`](RedisBackendBuilder::sentinel_username) an ACL user's), or the
/// user and password of a Sentinel given as a URL (`rediss://` for TLS to it); the master
/// takes the builder's `password`, `username` and `db`, over plain TCP. Neither password
/// appears in `Debug` output, errors or logs.
///
/// # The near cache's channel
///
/// For the near cache's coherence messages, the backend offers one pub/sub channel per
/// namespace and database, `<namespace>~near:<db>` (such as `cache:~near:0`; never a hash
/// tag, never a secret): on one server and on the Sentinel master of the moment, `PUBLISH`
/// on a pooled blocking connection (within the time-outs, through the breaker) and one
/// dedicated connection per subscription, confirmed `SUBSCRIBE` before it is used; on a
/// cluster, sharded pub/sub (Redis 7): `SPUBLISH` routed to the primary of the channel's
/// slot and `SSUBSCRIBE` on that primary. A subscription's connection has the backend's
/// target, user, password and TLS settings but always speaks RESP3 (Redis 6 or later).
/// A subscription is reported lost when its connection closes, when the server
/// unsubscribes it (a cluster slot moved away), when the backend follows the Sentinel
/// master elsewhere, and when the slot map names another primary for the channel. An ACL
/// user needs `+publish +subscribe` (`+spublish +ssubscribe` on a cluster) and
/// `&<namespace>~near:*`.
///
/// # Failures
///
/// Errors are typed: [`ErrorKind::Connection`](cache_core::ErrorKind::Connection) when Redis
/// cannot be reached, [`ErrorKind::Timeout`](cache_core::ErrorKind::Timeout) when it does not
/// answer in time, [`ErrorKind::Authentication`](cache_core::ErrorKind::Authentication) when
/// it refuses the credentials (`WRONGPASS`, `NOAUTH`),
/// [`ErrorKind::Permission`](cache_core::ErrorKind::Permission) when an ACL rule denies the
/// user a command (`NOPERM`, such as a user without `SCAN` calling `clear()`), and
/// [`ErrorKind::Backend`](cache_core::ErrorKind::Backend) when it answers with another error.
/// Each message says what failed; the `redis` error is its
/// [`source()`](std::error::Error::source). `#[memoize]` functions turn them into misses.
///
/// After [`BreakerSettings::threshold`] consecutive connection failures or time-outs, a
/// circuit breaker (one per server) opens: calls fail at once, without touching the network.
/// Callers never probe: a background thread opens a fresh connection and sends `PING` every
/// [`BreakerSettings::probe_interval`] (200 ms), and closes the circuit as soon as Redis
/// answers, so hits resume within about that interval of Redis accepting connections again,
/// however long the outage was. While the circuit is open, an async call that fails fast
/// still counts against tokio's scheduling budget, so a task looping over cached calls lets
/// other tasks run. See [`BreakerSettings`].
///
/// A sync caller that finds all [`max_connections`](RedisBackendBuilder::max_connections)
/// blocking connections in use waits for one; its wait and its request together get one
/// response time-out. When that runs out in the wait, it gets an
/// [`ErrorKind::Timeout`](cache_core::ErrorKind::Timeout) error (a miss for a cached call;
/// not counted by the breaker).
///
/// Passwords never appear in `Debug` output, errors or logs, whichever URL form holds them
/// (see [`redact_url`]): `Debug` shows the target with `***` for the password, such as
/// `redis://app:***@cache:6379/0` or `unix:///run/redis.sock?db=0&pass=***`.
///
/// # Runtime
///
/// The async half needs a Tokio runtime with time enabled (`#[tokio::main]` enables it). Its
/// connection is driven by the runtime that opened it; if that runtime shuts down, at most
/// one call fails with a connection error and the next one reconnects on its own runtime.
/// Calls from another runtime that is still running work, but each pays a wake-up across
/// runtimes, which makes a hit markedly slower (see the README's Performance section): a
/// process with several runtimes should give each its own backend.
///
/// ```no_run
/// use std::time::Duration;
/// use cache_core::Cache;
/// use cache_redis::RedisBackend;
///
/// # fn main() -> cache_core::Result<()> {
/// let backend = RedisBackend::builder()
///     .url("redis://:s3cret@localhost:6379/0")
///     .connect_timeout(Duration::from_millis(250))
///     .response_timeout(Duration::from_millis(200))
///     .build()?;
/// let cache = Cache::builder().backend(backend).namespace("myapp:").build()?;
/// cache.blocking().set("greeting", "hello")?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisBackend {
    inner: Arc<Inner>,
}

struct Inner {
    topology: Topology,
    /// The target with any password replaced by `***`.
    target: String,
}

impl fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBackend")
            .field("target", &self.inner.target)
            .field("topology", &self.inner.topology)
            .field("circuit_open", &self.inner.topology.is_circuit_open())
            .finish()
    }
}

impl RedisBackend {
    /// Starts a builder with the defaults: no URL yet, [`DEFAULT_CONNECT_TIMEOUT`],
    /// [`DEFAULT_RESPONSE_TIMEOUT`], [`DEFAULT_MAX_CONNECTIONS`], [`DEFAULT_POOL_SIZE`] and
    /// [`BreakerSettings::default`].
    pub fn builder() -> RedisBackendBuilder {
        RedisBackendBuilder::default()
    }

    /// A backend for `url` with the default settings; see [`RedisBackendBuilder::url`].
    ///
    /// ```
    /// // Building does not connect, so this works with no server running.
    /// let backend = cache_redis::RedisBackend::open("redis://:hunter2@localhost:6379/1")?;
    /// assert!(!format!("{backend:?}").contains("hunter2"));
    ///
    /// let err = cache_redis::RedisBackend::open("http://localhost").unwrap_err();
    /// assert!(err.is_config());
    /// # Ok::<(), cache_core::Error>(())
    /// ```
    pub fn open(url: &str) -> Result<Self> {
        Self::builder().url(url).build()
    }

    /// True while the circuit breaker fails calls fast.
    pub fn is_circuit_open(&self) -> bool {
        self.inner.topology.is_circuit_open()
    }

    /// For a backend on a Sentinel set-up ([`RedisBackendBuilder::sentinel`]), the `host:port`
    /// of the master it sends to now; `None` before its first call has resolved one, and for
    /// other deployments.
    pub fn sentinel_master(&self) -> Option<String> {
        match &self.inner.topology {
            Topology::Sentinel(sentinel) => sentinel.master_addr(),
            _ => None,
        }
    }

    /// A backend on `topology`; `target` describes it with every password masked.
    pub(crate) fn from_topology(topology: Topology, target: String) -> Self {
        Self {
            inner: Arc::new(Inner { topology, target }),
        }
    }

    /// Deletes **every key of the database** (`FLUSHDB ASYNC`), not only this cache's.
    ///
    /// `Cache::clear()` removes only the keys of its namespace and refuses an empty
    /// namespace on Redis; call this when emptying the whole database is what you mean.
    pub async fn flush_database(&self) -> Result<()> {
        let cmd = ops::flush_database();
        self.send(Request::Cmd(&cmd)).await.map(drop)
    }

    /// [`flush_database`](Self::flush_database) for sync code.
    pub fn flush_database_blocking(&self) -> Result<()> {
        let cmd = ops::flush_database();
        self.send_blocking(Request::Cmd(&cmd)).map(drop)
    }

    /// Sends one request to the server for its keys (through that server's circuit breaker).
    #[inline]
    fn send<'a>(&'a self, request: Request<'a>) -> impl Future<Output = Result<Value>> + 'a {
        self.inner.topology.query(request)
    }

    #[inline]
    fn send_blocking(&self, request: Request<'_>) -> Result<Value> {
        self.inner.topology.query_blocking(request)
    }

    /// True when the two-key lease scripts can run for `key` and `lease_key`: always, but
    /// on a Cluster only when both keys hash to one slot (else the script is `CROSSSLOT`,
    /// and the lease operations are composed of single-key commands).
    fn scripts_run(&self, key: &str, lease_key: &str) -> bool {
        !matches!(self.inner.topology, Topology::Cluster(_))
            || slot(key.as_bytes()) == slot(lease_key.as_bytes())
    }

    /// Runs the script `command(in_full)` builds: by hash, and in full once if the server
    /// does not know it (`NOSCRIPT`).
    async fn script(&self, command: impl Fn(bool) -> Cmd) -> Result<Value> {
        let by_hash = command(false);
        match self.send(Request::Cmd(&by_hash)).await {
            Err(error) if is_no_script(&error) => {
                let in_full = command(true);
                self.send(Request::Cmd(&in_full)).await
            }
            reply => reply,
        }
    }

    /// [`RedisBackend::script`] on the blocking half.
    fn script_blocking(&self, command: impl Fn(bool) -> Cmd) -> Result<Value> {
        let by_hash = command(false);
        match self.send_blocking(Request::Cmd(&by_hash)) {
            Err(error) if is_no_script(&error) => self.send_blocking(Request::Cmd(&command(true))),
            reply => reply,
        }
    }

    /// One `GET`: the future of both [`Backend::get`] and [`Backend::get_inline`].
    async fn read(&self, key: &str) -> Result<Option<Bytes>> {
        let cmd = ops::get(key);
        get_reply(self.send(Request::Cmd(&cmd)).await)
    }
}

impl crate::bus::Deployment for RedisBackend {
    fn topology(&self) -> &Topology {
        &self.inner.topology
    }
}

/// A `GET` reply; a key of another type (`WRONGTYPE`) is a miss.
#[inline]
fn get_reply(result: Result<Value>) -> Result<Option<Bytes>> {
    match result {
        Ok(value) => Ok(ops::value_reply(value)),
        Err(error) if wrong_type(&error) => Ok(None),
        Err(error) => Err(error),
    }
}

fn wrong_type(error: &Error) -> bool {
    std::error::Error::source(error)
        .and_then(|source| source.downcast_ref::<redis::RedisError>())
        .is_some_and(is_wrong_type)
}

#[async_trait]
impl Backend for RedisBackend {
    fn capabilities(&self) -> Capabilities {
        Capabilities::REMOTE
    }

    /// The near cache's channel `<namespace>~near:<db>`: `PUBLISH` and a dedicated
    /// `SUBSCRIBE` connection on one server and on the Sentinel master of the moment,
    /// sharded `SPUBLISH`/`SSUBSCRIBE` on the channel's primary on a cluster (see the
    /// `bus` module).
    fn bus(&self, namespace: &str) -> Option<Arc<dyn cache_core::bus::Bus>> {
        Some(Arc::new(crate::bus::RedisBus::new(self.clone(), namespace)))
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        self.read(key).await
    }

    fn get_inline<'a>(&'a self, key: &'a str) -> GetFuture<'a> {
        GetFuture::new(self.read(key))
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let cmd = ops::get_many(keys);
        ops::get_many_reply(self.send(Request::Cmd(&cmd)).await?, keys.len())
    }

    async fn set(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<()> {
        let cmd = ops::set(key, &value, ttl);
        self.send(Request::Cmd(&cmd)).await.map(drop)
    }

    async fn set_many(&self, entries: &[(&str, Bytes)], ttl: Ttl) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let pipe = ops::set_many(entries, ttl);
        self.send(Request::Pipeline(&pipe)).await.map(drop)
    }

    async fn add(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<bool> {
        let cmd = ops::add(key, &value, ttl);
        ops::add_reply(&self.send(Request::Cmd(&cmd)).await?)
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        Ok(Backend::delete_many(self, &[key]).await? > 0)
    }

    async fn delete_many(&self, keys: &[&str]) -> Result<u64> {
        if keys.is_empty() {
            return Ok(0);
        }
        let cmd = ops::unlink(keys);
        ops::count_reply("UNLINK", &self.send(Request::Cmd(&cmd)).await?)
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        let cmd = ops::exists(key);
        Ok(ops::count_reply("EXISTS", &self.send(Request::Cmd(&cmd)).await?)? > 0)
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<u64> {
        let mut deleted = 0;
        for node in self.inner.topology.scan_nodes().await? {
            let mut job = PrefixDeletion::new(prefix);
            while let Some(cmd) = job.next_command() {
                job.on_reply(node.query(Request::Cmd(&cmd)).await?)?;
            }
            deleted += job.deleted();
        }
        Ok(deleted)
    }

    async fn delete_if_equal(&self, key: &str, expected: &[u8]) -> Result<bool> {
        let cmd = ops::delete_if_equal(key, expected);
        Ok(ops::count_reply("EVAL", &self.send(Request::Cmd(&cmd)).await?)? > 0)
    }

    async fn acquire_lease(
        &self,
        key: &str,
        lease_key: &str,
        token: Bytes,
        time: Duration,
    ) -> Result<Acquired> {
        if !self.scripts_run(key, lease_key) {
            return composed::acquire_lease(self, key, lease_key, token, time).await;
        }
        let reply = self
            .script(|in_full| ops::acquire_lease(in_full, key, lease_key, &token, time))
            .await?;
        ops::acquire_reply(reply)
    }

    async fn set_releasing(
        &self,
        key: &str,
        value: Bytes,
        ttl: Ttl,
        lease_key: &str,
        token: &[u8],
    ) -> Result<()> {
        if !self.scripts_run(key, lease_key) {
            return composed::set_releasing(self, key, value, ttl, lease_key, token).await;
        }
        self.script(|in_full| ops::set_releasing(in_full, key, &value, ttl, lease_key, token))
            .await
            .map(drop)
    }
}

impl BlockingBackend for RedisBackend {
    fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let cmd = ops::get(key);
        get_reply(self.send_blocking(Request::Cmd(&cmd)))
    }

    fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let cmd = ops::get_many(keys);
        ops::get_many_reply(self.send_blocking(Request::Cmd(&cmd))?, keys.len())
    }

    fn set(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<()> {
        let cmd = ops::set(key, &value, ttl);
        self.send_blocking(Request::Cmd(&cmd)).map(drop)
    }

    fn set_many(&self, entries: &[(&str, Bytes)], ttl: Ttl) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let pipe = ops::set_many(entries, ttl);
        self.send_blocking(Request::Pipeline(&pipe)).map(drop)
    }

    fn add(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<bool> {
        let cmd = ops::add(key, &value, ttl);
        ops::add_reply(&self.send_blocking(Request::Cmd(&cmd))?)
    }

    fn delete(&self, key: &str) -> Result<bool> {
        Ok(BlockingBackend::delete_many(self, &[key])? > 0)
    }

    fn delete_many(&self, keys: &[&str]) -> Result<u64> {
        if keys.is_empty() {
            return Ok(0);
        }
        let cmd = ops::unlink(keys);
        ops::count_reply("UNLINK", &self.send_blocking(Request::Cmd(&cmd))?)
    }

    fn exists(&self, key: &str) -> Result<bool> {
        let cmd = ops::exists(key);
        Ok(ops::count_reply("EXISTS", &self.send_blocking(Request::Cmd(&cmd))?)? > 0)
    }

    fn delete_prefix(&self, prefix: &str) -> Result<u64> {
        let mut deleted = 0;
        for node in self.inner.topology.scan_nodes_blocking()? {
            let mut job = PrefixDeletion::new(prefix);
            while let Some(cmd) = job.next_command() {
                job.on_reply(node.query_blocking(Request::Cmd(&cmd))?)?;
            }
            deleted += job.deleted();
        }
        Ok(deleted)
    }

    fn delete_if_equal(&self, key: &str, expected: &[u8]) -> Result<bool> {
        let cmd = ops::delete_if_equal(key, expected);
        Ok(ops::count_reply("EVAL", &self.send_blocking(Request::Cmd(&cmd))?)? > 0)
    }

    fn acquire_lease(
        &self,
        key: &str,
        lease_key: &str,
        token: Bytes,
        time: Duration,
    ) -> Result<Acquired> {
        if !self.scripts_run(key, lease_key) {
            return composed::acquire_lease_blocking(self, key, lease_key, token, time);
        }
        let reply = self
            .script_blocking(|in_full| ops::acquire_lease(in_full, key, lease_key, &token, time))?;
        ops::acquire_reply(reply)
    }

    fn set_releasing(
        &self,
        key: &str,
        value: Bytes,
        ttl: Ttl,
        lease_key: &str,
        token: &[u8],
    ) -> Result<()> {
        if !self.scripts_run(key, lease_key) {
            return composed::set_releasing_blocking(self, key, value, ttl, lease_key, token);
        }
        self.script_blocking(|in_full| {
            ops::set_releasing(in_full, key, &value, ttl, lease_key, token)
        })
        .map(drop)
    }
}

/// Builds a [`RedisBackend`]; see [`RedisBackend::builder`].
///
/// The target is either a URL ([`url`](Self::url)) or Flask-style parts
/// ([`host`](Self::host), [`port`](Self::port), [`db`](Self::db),
/// [`password`](Self::password)); with both, the URL wins and an explicit `db`, `username`
/// or `password` overrides the URL's. Without either, `redis://localhost:6379/0`.
///
/// ```
/// use std::time::Duration;
/// use cache_redis::{BreakerSettings, RedisBackend};
///
/// let backend = RedisBackend::builder()
///     .host("cache.internal")
///     .port(6380)
///     .db(2)
///     .password("hunter2")
///     .connect_timeout(Duration::from_millis(100))
///     .response_timeout(Duration::from_millis(50))
///     .max_connections(8)
///     .pool_size(4)
///     .breaker(BreakerSettings::new(5, Duration::from_millis(100)))
///     .build()?;
/// assert!(!format!("{backend:?}").contains("hunter2"));
/// # Ok::<(), cache_core::Error>(())
/// ```
#[must_use]
#[derive(Clone)]
pub struct RedisBackendBuilder {
    pub(crate) url: Option<Secret>,
    pub(crate) names: Names,
    pub(crate) host: Option<String>,
    pub(crate) port: Option<u16>,
    pub(crate) db: Option<i64>,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<Secret>,
    pub(crate) connect_timeout: Duration,
    pub(crate) response_timeout: Duration,
    pub(crate) max_connections: usize,
    pub(crate) pool_size: usize,
    pub(crate) breaker: BreakerSettings,
    pub(crate) cluster: Option<Secret>,
    pub(crate) sentinels: Vec<String>,
    pub(crate) master_name: Option<String>,
    pub(crate) sentinel_username: Option<String>,
    pub(crate) data_node_tls: bool,
    pub(crate) sentinel_password: Option<Secret>,
    #[cfg(feature = "tls")]
    pub(crate) tls_root_cert: Option<Vec<u8>>,
}

impl Default for RedisBackendBuilder {
    fn default() -> Self {
        Self {
            url: None,
            names: Names::SETTERS,
            host: None,
            port: None,
            db: None,
            username: None,
            password: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            pool_size: DEFAULT_POOL_SIZE,
            breaker: BreakerSettings::default(),
            cluster: None,
            sentinels: Vec::new(),
            master_name: None,
            sentinel_username: None,
            data_node_tls: false,
            sentinel_password: None,
            #[cfg(feature = "tls")]
            tls_root_cert: None,
        }
    }
}

impl fmt::Debug for RedisBackendBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBackendBuilder")
            .field(
                "url",
                &self.url.as_ref().map(|url| redact_url(url.expose())),
            )
            // A URL given as the host by mistake keeps its password out of sight too.
            .field("host", &self.host.as_deref().map(redact_url))
            .field("port", &self.port)
            .field("db", &self.db)
            .field("username", &self.username)
            .field("password", &self.password)
            .field("connect_timeout", &self.connect_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("max_connections", &self.max_connections)
            .field("pool_size", &self.pool_size)
            .field("breaker", &self.breaker)
            .field(
                "cluster",
                &self
                    .cluster
                    .as_ref()
                    .map(|seeds| seeds::redact_seeds(seeds.expose())),
            )
            .field(
                "sentinels",
                &(self.sentinels.iter())
                    .map(|sentinel| cache_core::config::redact_url(sentinel))
                    .collect::<Vec<_>>(),
            )
            .field("master_name", &self.master_name)
            .field("sentinel_username", &self.sentinel_username)
            .field("data_node_tls", &self.data_node_tls)
            .field("sentinel_password", &self.sentinel_password)
            .finish_non_exhaustive()
    }
}

impl RedisBackendBuilder {
    /// The server, as a URL:
    ///
    /// - `redis://[[user]:password@]host[:port][/db][?protocol=P]` (`valkey://` too)
    /// - `rediss://...[#insecure]` for TLS (needs the `tls` feature)
    /// - `unix:///path/to/redis.sock[?db=N&user=U&pass=P&protocol=P]` (`redis+unix://` too)
    ///
    /// `P` is `2`, `resp2`, `3` or `resp3`; `db` is 0 to
    /// [`MAX_REDIS_DB`](cache_core::config::MAX_REDIS_DB). Percent-encode special characters
    /// in the user name and password. [`build`](Self::build) checks it.
    pub fn url(mut self, url: impl AsRef<str>) -> Self {
        self.url = Some(Secret::new(url.as_ref()));
        self
    }

    /// The host name or address, when no URL is given (`CACHE_REDIS_HOST`; default
    /// `localhost`): a host name, an IPv4 address, or an IPv6 address with or without
    /// brackets; see [`check_host`](cache_core::config::check_host).
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.host = Some(host.into());
        self
    }

    /// The port, when no URL is given (`CACHE_REDIS_PORT`; default 6379): 1 to 65535.
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// The database number (`CACHE_REDIS_DB`; default 0, or the URL's): 0 to
    /// [`MAX_REDIS_DB`](cache_core::config::MAX_REDIS_DB).
    pub fn db(mut self, db: i64) -> Self {
        self.db = Some(db);
        self
    }

    /// The ACL user name (default: none, or the URL's).
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }

    /// The password (`CACHE_REDIS_PASSWORD`; default: none, or the URL's).
    pub fn password(mut self, password: impl AsRef<str>) -> Self {
        self.password = Some(Secret::new(password.as_ref()));
        self
    }

    /// How long opening a connection may take, TLS and authentication included (default
    /// [`DEFAULT_CONNECT_TIMEOUT`], 250 ms).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long Redis may take to answer one command or pipeline (default
    /// [`DEFAULT_RESPONSE_TIMEOUT`], 200 ms).
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// The most blocking connections open at once for sync callers, idle or in use
    /// (default [`DEFAULT_MAX_CONNECTIONS`], 16; at least 1). A sync caller that finds them
    /// all in use waits for one, and its wait and its request together get one response
    /// time-out; when that runs out in the wait, the call fails with a time-out error (a miss
    /// for a cached call). The breaker's prober uses one more connection while the circuit is
    /// open; async callers share one multiplexed connection.
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max;
        self
    }

    /// The most idle blocking connections kept between calls (default
    /// [`DEFAULT_POOL_SIZE`], 16; at most [`max_connections`](Self::max_connections)). The
    /// others are closed when their call ends, unless a caller waits for one. A smaller
    /// value frees connections after a burst, at the price of reconnecting in the next one.
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size;
        self
    }

    /// The circuit breaker's settings (default [`BreakerSettings::default`]).
    pub fn breaker(mut self, settings: BreakerSettings) -> Self {
        self.breaker = settings;
        self
    }

    /// A PEM root certificate to trust for `rediss://` instead of the public roots, for a
    /// server whose certificate a private CA signed.
    #[cfg(feature = "tls")]
    pub fn tls_root_cert(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls_root_cert = Some(pem.into());
        self
    }

    /// A Redis Cluster reached through these seed nodes, instead of one server: `host:port`
    /// or `redis://` (`rediss://`) URLs separated by commas, as in
    /// `"10.0.0.1:7000,10.0.0.2:7000"` (`CACHE_REDIS_CLUSTER`). Any one reachable seed is
    /// enough: the others are asked only when it is not.
    ///
    /// The credentials (from the first seed's URL, or [`username`](Self::username) and
    /// [`password`](Self::password)) and TLS settings apply to every node. A cluster has only
    /// database 0: another [`db`](Self::db) is refused. [`url`](Self::url),
    /// [`host`](Self::host) and [`port`](Self::port) are not used. Every other setting (time-outs,
    /// pool, breaker) applies per node: each node has its own connections and circuit
    /// breaker. See [`RedisBackend`]'s "Redis Cluster" section.
    ///
    /// ```
    /// use cache_redis::RedisBackend;
    ///
    /// // Building does not connect, so this works with no cluster running.
    /// let backend = RedisBackend::builder()
    ///     .cluster("127.0.0.1:7000,127.0.0.1:7001")
    ///     .password("hunter2")
    ///     .build()?;
    /// assert!(!format!("{backend:?}").contains("hunter2"));
    /// let err = RedisBackend::builder().cluster("127.0.0.1").build().unwrap_err();
    /// assert!(err.is_config() && err.to_string().starts_with("invalid cluster: "));
    /// # Ok::<(), cache_core::Error>(())
    /// ```
    pub fn cluster(mut self, seeds: impl AsRef<str>) -> Self {
        self.cluster = Some(Secret::new(seeds.as_ref()));
        self
    }

    /// Adds a Sentinel of a Redis Sentinel set-up, `host[:port]` (port 26379 by default;
    /// IPv6 as `[::1]:26379`), or a URL naming its port: `redis://[[user]:password@]host:port`,
    /// or `rediss://...` for TLS to that Sentinel (trusting
    /// [`tls_root_cert`](Self::tls_root_cert) when set; needs the `tls` feature); a URL's own
    /// user and password take the place of [`sentinel_username`](Self::sentinel_username)
    /// and [`sentinel_password`](Self::sentinel_password). With one or more, the backend
    /// finds the master through the Sentinels and follows it across failovers (see
    /// [`RedisBackend`]'s "Redis Sentinel" section). The data nodes are reached over plain
    /// TCP, or TLS with [`data_node_tls`](Self::data_node_tls). Give several: they are asked in this order, and the watcher moves from one
    /// to the next. [`url`](Self::url), [`host`](Self::host) and [`port`](Self::port) are
    /// refused with Sentinels (they name the master); [`db`](Self::db),
    /// [`username`](Self::username) and [`password`](Self::password) are the data nodes',
    /// and every other setting applies to the master of the moment.
    ///
    /// ```
    /// use std::time::Duration;
    /// use cache_redis::RedisBackend;
    ///
    /// let backend = RedisBackend::builder()
    ///     .sentinel("10.0.0.1:26379")
    ///     .sentinel("10.0.0.2:26379")
    ///     .sentinel("10.0.0.3") // port 26379
    ///     .master_name("mymaster")
    ///     .sentinel_password("sentinel-secret")
    ///     .password("data-secret")
    ///     .db(2)
    ///     .response_timeout(Duration::from_millis(100))
    ///     .build()?; // does not connect
    /// let shown = format!("{backend:?}");
    /// assert!(!shown.contains("secret"), "{shown}");
    ///
    /// let err = RedisBackend::builder().master_name("mymaster").build().unwrap_err();
    /// assert!(err.is_config() && err.to_string().starts_with("invalid sentinel: "));
    /// # Ok::<(), cache_core::Error>(())
    /// ```
    pub fn sentinel(mut self, addr: impl Into<String>) -> Self {
        self.sentinels.push(addr.into());
        self
    }

    /// The name the Sentinels know the master by (`sentinel monitor <name> ...`; default
    /// `mymaster`); see [`sentinel`](Self::sentinel).
    pub fn master_name(mut self, name: impl Into<String>) -> Self {
        self.master_name = Some(name.into());
        self
    }

    /// The Sentinels' own password (their `requirepass`, or the password of
    /// [`sentinel_username`](Self::sentinel_username); default none); see
    /// [`sentinel`](Self::sentinel).
    pub fn sentinel_password(mut self, password: impl AsRef<str>) -> Self {
        self.sentinel_password = Some(Secret::new(password.as_ref()));
        self
    }

    /// The ACL user the backend logs in to the Sentinels as, with
    /// [`sentinel_password`](Self::sentinel_password) (default: the default user). It needs
    /// `SENTINEL GET-MASTER-ADDR-BY-NAME`, `SUBSCRIBE` of `+switch-master` and `PING`:
    /// `user cache on >password +sentinel|get-master-addr-by-name +subscribe +ping
    /// &+switch-master` in `sentinel.conf`. A Sentinel given as a URL with its own user
    /// keeps that one.
    ///
    /// ```
    /// let backend = cache_redis::RedisBackend::builder()
    ///     .sentinel("10.0.0.1:26379")
    ///     .sentinel_username("cache")
    ///     .sentinel_password("sentinel-secret")
    ///     .build()?;
    /// let shown = format!("{backend:?}");
    /// assert!(shown.contains("Sentinel user cache, password ***"), "{shown}");
    /// # Ok::<(), cache_core::Error>(())
    /// ```
    pub fn sentinel_username(mut self, username: impl Into<String>) -> Self {
        self.sentinel_username = Some(username.into());
        self
    }

    /// Reaches the data nodes of a Sentinel set-up (the master of the moment) over TLS, at
    /// the address the Sentinels report (Sentinels with `tls-replication yes` report the
    /// TLS ports), trusting [`tls_root_cert`](Self::tls_root_cert) when set; default plain
    /// TCP. Needs the `tls` feature; see [`sentinel`](Self::sentinel).
    ///
    /// ```
    /// # #[cfg(feature = "tls")] {
    /// let backend = cache_redis::RedisBackend::builder()
    ///     .sentinel("rediss://10.0.0.1:26379")
    ///     .data_node_tls(true)
    ///     .build()?;
    /// assert!(format!("{backend:?}").contains("TLS to the data nodes"));
    /// # }
    /// # Ok::<(), cache_core::Error>(())
    /// ```
    pub fn data_node_tls(mut self, enabled: bool) -> Self {
        self.data_node_tls = enabled;
        self
    }

    /// Names the environment variables (`CACHE_REDIS_URL`, ...) in errors rather than the
    /// setters, for a backend built from a `Config`.
    pub(crate) fn env_names(mut self) -> Self {
        self.names = Names::ENV;
        self
    }

    /// Checks the settings and builds the backend. It does not connect.
    ///
    /// A malformed URL, a query parameter the `redis` crate would ignore, an out-of-range
    /// `db`, `port` or `protocol`, a host that is no host name or IP address, a zero time-out
    /// or a zero `max_connections` is an [`ErrorKind::Config`](cache_core::ErrorKind::Config)
    /// error naming the setter (or, from [`from_config`](crate::from_config), the variable)
    /// and the allowed values; the URL itself is never repeated, so no password leaks.
    ///
    /// ```
    /// use cache_redis::RedisBackend;
    ///
    /// let err = RedisBackend::builder().port(0).build().unwrap_err();
    /// assert!(err.is_config());
    /// assert_eq!(err.to_string(), "invalid port: port 0 is not a port to connect to; expected 1 to 65535");
    /// let err = RedisBackend::builder().db(-1).build().unwrap_err();
    /// assert!(err.to_string().starts_with("invalid db: database -1 is out of range"));
    /// ```
    pub fn build(self) -> Result<RedisBackend> {
        check_limits(
            self.connect_timeout,
            self.response_timeout,
            self.max_connections,
        )?;
        if let Some(seeds) = &self.cluster {
            let seeds = seeds.clone();
            return self.build_cluster(seeds.expose());
        }
        if !self.sentinels.is_empty()
            || self.master_name.is_some()
            || self.sentinel_username.is_some()
            || self.data_node_tls
            || self.sentinel_password.is_some()
        {
            return sentinel::build(self);
        }
        let info = self.connection_info()?;
        let target = describe(&info);
        let client = self.client(info)?;
        let timeouts = Timeouts {
            connect: self.connect_timeout,
            response: self.response_timeout,
        };
        Ok(RedisBackend {
            inner: Arc::new(Inner {
                topology: Topology::Single(Server::new(
                    client,
                    timeouts,
                    PoolLimits {
                        max_connections: self.max_connections,
                        idle: self.pool_size,
                    },
                    self.breaker,
                )),
                target,
            }),
        })
    }

    /// The cluster backend for `seeds`; see [`cluster`](Self::cluster).
    fn build_cluster(self, seeds: &str) -> Result<RedisBackend> {
        let field = self.names.cluster;
        let mut infos = seeds::parse_seeds(seeds, field)?;
        for info in &mut infos {
            let mut settings = info.redis_settings().clone();
            if let Some(db) = self.db {
                settings = settings.set_db(check_db(self.names.db, db)?);
            }
            if settings.db() != 0 {
                return Err(Error::config(
                    field,
                    "a Redis Cluster has only database 0; remove the database number",
                ));
            }
            if let Some(username) = &self.username {
                settings = settings.set_username(username);
            }
            if let Some(password) = &self.password {
                settings = settings.set_password(password.expose());
            }
            *info = info.clone().set_redis_settings(settings);
        }
        // The first seed's credentials and protocol are every node's.
        let settings = infos[0].redis_settings().clone();
        for info in &mut infos[1..] {
            *info = info.clone().set_redis_settings(settings.clone());
        }
        let target = format!(
            "cluster {}",
            infos.iter().map(describe).collect::<Vec<_>>().join(",")
        );
        let seeds = infos.iter().filter_map(seeds::addr_of).collect();
        let template = infos.swap_remove(0);
        // Checked once here, so that a TLS or client setting the `redis` crate refuses is a
        // start-up error, not a failure of every node later.
        self.client(template.clone())?;
        let timeouts = Timeouts {
            connect: self.connect_timeout,
            response: self.response_timeout,
        };
        let pool = PoolLimits {
            max_connections: self.max_connections,
            idle: self.pool_size,
        };
        let breaker = self.breaker;
        let builder = self;
        let settings = NodeSettings {
            template,
            client: Box::new(move |info| builder.client(info)),
            timeouts,
            pool,
            breaker,
        };
        Ok(RedisBackend {
            inner: Arc::new(Inner {
                topology: Topology::Cluster(Cluster::new(seeds, settings)),
                target,
            }),
        })
    }

    fn connection_info(&self) -> Result<ConnectionInfo> {
        let info = match &self.url {
            Some(url) => target::parse_url(url.expose(), self.names.url)?,
            None => target::from_parts(self.host.as_deref(), self.port, &self.names)?,
        };
        let mut settings = info.redis_settings().clone();
        if let Some(db) = self.db {
            settings = settings.set_db(check_db(self.names.db, db)?);
        }
        if let Some(username) = &self.username {
            settings = settings.set_username(username);
        }
        if let Some(password) = &self.password {
            settings = settings.set_password(password.expose());
        }
        Ok(info.set_redis_settings(settings))
    }

    /// A client for `info`, trusting [`tls_root_cert`](Self::tls_root_cert) for TLS (a
    /// root certificate with a plain target is refused).
    #[cfg(feature = "tls")]
    pub(crate) fn client(&self, info: ConnectionInfo) -> Result<redis::Client> {
        // redis enables rustls without a crypto provider; pick ring unless the application
        // already installed one (then this does nothing).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = match &self.tls_root_cert {
            Some(pem) => redis::Client::build_with_tls(
                info,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem.clone()),
                },
            ),
            None => redis::Client::open(info),
        };
        client
            .map_err(|e| Error::config("tls_root_cert", "the TLS client refused it").with_source(e))
    }

    /// A client for `info`.
    #[cfg(not(feature = "tls"))]
    pub(crate) fn client(&self, info: ConnectionInfo) -> Result<redis::Client> {
        redis::Client::open(info).map_err(|e| {
            Error::config(self.names.url, "the Redis client refused it").with_source(e)
        })
    }
}

/// Refuses a zero time-out or a zero `max_connections`, naming the setter.
pub(crate) fn check_limits(
    connect_timeout: Duration,
    response_timeout: Duration,
    max_connections: usize,
) -> Result<()> {
    if connect_timeout.is_zero() {
        return Err(Error::config(
            "connect_timeout",
            "must be greater than zero",
        ));
    }
    if response_timeout.is_zero() {
        return Err(Error::config(
            "response_timeout",
            "must be greater than zero",
        ));
    }
    if max_connections == 0 {
        return Err(Error::config("max_connections", "must be at least 1"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hit_future_fits_in_place() {
        // If a `redis` upgrade makes the read future larger, hits fall back to a boxed
        // future (correct, slower): raise `GET_FUTURE_SPACE` to match.
        let backend = RedisBackend::open("redis://127.0.0.1:1/0").unwrap();
        let read = backend.read("key");
        assert!(
            GetFuture::fits(&read),
            "the read future takes {} bytes, more than GET_FUTURE_SPACE ({})",
            std::mem::size_of_val(&read),
            cache_core::backend::GET_FUTURE_SPACE
        );
    }

    #[test]
    fn flask_style_parts_build_a_target_and_override_the_url() {
        let builder = RedisBackend::builder()
            .host("cache")
            .port(7000)
            .db(4)
            .password("hunter2");
        assert_eq!(
            describe(&builder.connection_info().unwrap()),
            "redis://:***@cache:7000/4"
        );
        let builder = RedisBackend::builder()
            .url("redis://localhost/1")
            .db(5)
            .username("u");
        assert_eq!(
            describe(&builder.connection_info().unwrap()),
            "redis://u@localhost:6379/5"
        );
    }

    #[test]
    fn a_cluster_builds_without_connecting_and_refuses_a_database() {
        let backend = RedisBackend::builder()
            .cluster("redis://:hunter2@127.0.0.1:1,127.0.0.1:2")
            .build()
            .unwrap();
        let shown = format!("{backend:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains("cluster redis://:***@127.0.0.1:1/0,redis://:***@127.0.0.1:2/0"),
            "the first seed's password applies to every node: {shown}"
        );
        let err = RedisBackend::builder()
            .cluster("127.0.0.1:1")
            .db(2)
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("only database 0"), "{err}");
        let err = RedisBackend::builder()
            .cluster("redis://h:1/3")
            .env_names()
            .build()
            .unwrap_err();
        assert!(
            err.to_string().starts_with("invalid CACHE_REDIS_CLUSTER: "),
            "{err}"
        );
        let builder = RedisBackend::builder().cluster("redis://:hunter2@h:1");
        assert!(!format!("{builder:?}").contains("hunter2"));
    }

    #[test]
    fn a_bus_shows_its_channel_and_no_password() {
        let backend = RedisBackend::open("redis://:hunter2@127.0.0.1:1/4").unwrap();
        let shown = format!("{:?}", Backend::bus(&backend, "app:").unwrap());
        assert!(shown.contains("\"app:~near:4\", sharded: false"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        let cluster = RedisBackend::builder()
            .cluster("redis://:hunter2@127.0.0.1:1")
            .build()
            .unwrap();
        let shown = format!("{:?}", Backend::bus(&cluster, "app:").unwrap());
        assert!(shown.contains("\"app:~near:0\", sharded: true"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn an_unreachable_server_fails_publish_and_subscribe_with_a_connection_error() {
        let backend = RedisBackend::open("redis://127.0.0.1:1/0").unwrap();
        let bus = Backend::bus(&backend, "app:").unwrap();
        assert!(bus.publish(b"x").unwrap_err().is_connection());
        assert!(bus.subscribe().err().unwrap().is_connection());
    }

    #[test]
    fn zero_timeouts_are_refused() {
        let err = RedisBackend::builder()
            .response_timeout(Duration::ZERO)
            .build()
            .unwrap_err();
        assert!(err.is_config());
    }

    #[test]
    fn zero_max_connections_is_refused() {
        let err = RedisBackend::builder()
            .max_connections(0)
            .build()
            .unwrap_err();
        assert!(
            err.is_config() && err.to_string().contains("max_connections"),
            "{err}"
        );
    }

    #[test]
    fn building_does_not_connect_and_hides_the_password() {
        let backend = RedisBackend::open("redis://:hunter2@127.0.0.1:1/0").unwrap();
        let shown = format!("{backend:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("127.0.0.1"), "{shown}");
        let builder = RedisBackend::builder()
            .url("redis://:hunter2@h")
            .password("hunter2");
        assert!(!format!("{builder:?}").contains("hunter2"));
        let misplaced = RedisBackend::builder().host("redis://:hunter2@h");
        assert!(!format!("{misplaced:?}").contains("hunter2"));
        let err = misplaced.build().unwrap_err();
        assert!(!format!("{err:#} {err:?}").contains("hunter2"), "{err}");
    }
}
