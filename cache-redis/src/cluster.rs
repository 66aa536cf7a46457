//! Redis Cluster: commands routed by hash slot to the primary that serves it, over one
//! [`Server`] per node (each with its own multiplexed connection, bounded blocking pool,
//! circuit breaker and prober).
//!
//! Routing is done here rather than by the `redis` crate's cluster client, which retries a
//! request up to 16 times by default with exponential waits (and waits and retries on
//! `TRYAGAIN`, `CLUSTERDOWN` and `MASTERDOWN`), so a caller could pay several time-outs; it
//! has no circuit breaker, and its blocking `ClusterConnection` is not `Sync` (its node
//! connections and slot map are in `RefCell`s), so sync callers could not share a bounded
//! pool per node (checked in `redis` 1.8.1, `src/cluster_handling/`).
//!
//! - **The slot map** comes from `CLUSTER SLOTS` of any reachable node (the seeds first). It
//!   is read on the first call (building never connects), and refreshed lazily: on `MOVED`
//!   the slot is pointed at the named node at once and the command sent there once more; on
//!   `ASK` the command is sent once to the named node after `ASKING` (a multi-key command
//!   turned away with `ASK` or `TRYAGAIN` is resent key by key, see [`crate::migration`]);
//!   on a connection error or time-out to a node the call fails open and a background
//!   thread reads the map again (at most one at a time, at most one per
//!   [`BreakerSettings::probe_interval`]). So a failover is followed without a restart:
//!   the dead primary's circuit opens, its calls fail fast, and the next refresh after the
//!   cluster promoted a replica routes its slots there.
//! - **One time-out per call.** A call starts no new request (a redirect, a next seed, the
//!   next node of a multi-key operation) once the connect time-out plus the response
//!   time-out has passed since it began.
//! - **Multi-key operations** (`MGET`, `UNLINK` of keys in several slots, the pipeline of
//!   `set_many`, `FLUSHDB`) are split: one pipeline per node, holding one command per slot
//!   for multi-key commands, so Redis never sees keys of two slots in one command
//!   (`CROSSSLOT`). Nodes are asked one after the other; the first failure ends the call.
//! - **A hit** is one `GET` on the key's primary, as on a single server: the slot is
//!   computed in process and the map read without a lock.
//!
//! A call is a small state machine ([`Call`]) that says which request to send to which
//! node next and reads its reply; the async and the blocking drivers only do the I/O.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use cache_core::{Error, ErrorKind, Result};
use redis::{Cmd, ConnectionAddr, ConnectionInfo, Pipeline, RedisError, Value};

use crate::breaker::BreakerSettings;
use crate::migration::{Migration, To, Turn};
use crate::server::{ClientFactory, PoolLimits, Request, Server, Timeouts};
use crate::slots::{Addr, Layout, slot};
use crate::split::{Keys, Merge, by_slot, keys, multi_key, one_slot};

/// How to reach the nodes: the seeds' shared settings and the per-server limits.
pub(crate) struct NodeSettings {
    /// The first seed's target: its credentials and TLS settings apply to every node.
    pub(crate) template: ConnectionInfo,
    pub(crate) client: ClientFactory,
    pub(crate) timeouts: Timeouts,
    pub(crate) pool: PoolLimits,
    pub(crate) breaker: BreakerSettings,
}

impl NodeSettings {
    fn server(&self, addr: &Addr) -> Result<Server> {
        let target = match self.template.addr() {
            ConnectionAddr::TcpTls {
                insecure,
                tls_params,
                ..
            } => ConnectionAddr::TcpTls {
                host: addr.host.clone(),
                port: addr.port,
                insecure: *insecure,
                tls_params: tls_params.clone(),
            },
            _ => ConnectionAddr::Tcp(addr.host.clone(), addr.port),
        };
        let client = (self.client)(self.template.clone().set_addr(target))?;
        Ok(Server::new(client, self.timeouts, self.pool, self.breaker))
    }
}

/// A Redis Cluster. See the module docs.
pub(crate) struct Cluster {
    shared: Arc<Shared>,
}

struct Shared {
    settings: NodeSettings,
    seeds: Vec<Addr>,
    /// Read on every call without a lock; replaced whole on every change.
    map: ArcSwapOption<SlotMap>,
    /// Every node known (seeds, primaries, replicas), so a node keeps its connections and
    /// breaker across map changes. Pruned to those on every refresh, which ends the
    /// probers of nodes that left.
    nodes: Mutex<BTreeMap<Addr, Arc<Server>>>,
    refresh: Refresh,
}

/// Which primary serves each slot.
struct SlotMap {
    owners: Box<[Option<u16>]>,
    primaries: Vec<(Addr, Arc<Server>)>,
    replicas: Vec<Addr>,
}

/// At most one background refresh at a time, at most one per interval.
struct Refresh {
    running: AtomicBool,
    /// No refresh starts before this (nanoseconds since `epoch`).
    next_at: AtomicU64,
    epoch: Instant,
    interval: Duration,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let map = self.shared.map.load();
        let primaries: Vec<String> = map
            .iter()
            .flat_map(|map| map.primaries.iter().map(|(addr, _)| addr.to_string()))
            .collect();
        f.debug_struct("Cluster")
            .field(
                "seeds",
                &self
                    .shared
                    .seeds
                    .iter()
                    .map(Addr::to_string)
                    .collect::<Vec<_>>(),
            )
            .field("primaries", &primaries)
            .field("timeouts", &self.shared.settings.timeouts)
            .field("circuit_open", &self.is_circuit_open())
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// A cluster reached through `seeds`. Nothing connects until the first call.
    pub(crate) fn new(seeds: Vec<Addr>, settings: NodeSettings) -> Self {
        let interval = settings.breaker.probe_interval;
        Self {
            shared: Arc::new(Shared {
                settings,
                seeds,
                map: ArcSwapOption::empty(),
                nodes: Mutex::new(BTreeMap::new()),
                refresh: Refresh {
                    running: AtomicBool::new(false),
                    next_at: AtomicU64::new(0),
                    epoch: Instant::now(),
                    interval,
                },
            }),
        }
    }

    /// Sends a request to the primaries of its keys, through their breakers.
    pub(crate) async fn query(&self, request: Request<'_>) -> Result<Value> {
        // The hit path: one key, a map, one request, no allocation but the server's `Arc`.
        if let Some(server) = self.shared.route(request) {
            let result = server.query(request).await;
            return match self.shared.redirect(&result) {
                None if !turned_away(&result) => result,
                _ => Box::pin(self.drive(Call::after(&self.shared, request, result))).await,
            };
        }
        Box::pin(self.drive(Call::new(&self.shared, request))).await
    }

    /// [`query`](Self::query) on blocking connections.
    pub(crate) fn query_blocking(&self, request: Request<'_>) -> Result<Value> {
        if let Some(server) = self.shared.route(request) {
            let result = server.query_blocking(request);
            return match self.shared.redirect(&result) {
                None if !turned_away(&result) => result,
                _ => self.drive_blocking(Call::after(&self.shared, request, result)),
            };
        }
        self.drive_blocking(Call::new(&self.shared, request))
    }

    async fn drive(&self, mut call: Call<'_>) -> Result<Value> {
        let original = call.request;
        loop {
            match call.step() {
                Step::Done(result) => return result,
                Step::Send(plan) => {
                    let mut replies = Vec::with_capacity(plan.parts.len());
                    let mut failed = None;
                    for part in &plan.parts {
                        match part.server.query(part.request(original)).await {
                            Ok(reply) => replies.push(reply),
                            Err(error) => {
                                failed = Some(error);
                                break;
                            }
                        }
                    }
                    call.on_replies(plan, failed.map_or(Ok(replies), Err));
                }
            }
        }
    }

    fn drive_blocking(&self, mut call: Call<'_>) -> Result<Value> {
        let original = call.request;
        loop {
            match call.step() {
                Step::Done(result) => return result,
                Step::Send(plan) => {
                    let replies = plan
                        .parts
                        .iter()
                        .map(|part| part.server.query_blocking(part.request(original)))
                        .collect();
                    call.on_replies(plan, replies);
                }
            }
        }
    }

    /// True while any node's circuit breaker fails calls fast.
    pub(crate) fn is_circuit_open(&self) -> bool {
        self.shared
            .nodes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .any(|server| server.is_circuit_open())
    }

    /// The primary serving `slot`, reading the map first if none is known yet (within one
    /// call's budget).
    pub(crate) fn owner_blocking(&self, slot: u16) -> Result<Arc<Server>> {
        if self.shared.map.load().is_none() {
            self.shared.load_blocking(Instant::now())?;
        }
        self.shared.owner(slot).ok_or_else(|| {
            Error::new(
                ErrorKind::Connection,
                format!("no Redis Cluster primary serves slot {slot}"),
            )
        })
    }

    /// True if `server` is still the primary of `slot` in the map.
    pub(crate) fn owns(&self, slot: u16, server: &Arc<Server>) -> bool {
        self.shared
            .owner(slot)
            .is_some_and(|owner| Arc::ptr_eq(&owner, server))
    }

    /// After a request of its own failed (a subscription's, say): a `MOVED` re-points its
    /// slot (true: send it again, to the new owner), a connection error or time-out
    /// refreshes the map in the background, as for a routed request.
    pub(crate) fn after_error(&self, error: &Error) -> bool {
        match self.shared.redirect_for(error) {
            Some(Redirect {
                ask: false,
                addr,
                slot,
            }) => {
                self.shared.moved(slot, &addr);
                true
            }
            _ => false,
        }
    }

    /// Every primary of a map read just now, for a `SCAN` of the whole key space.
    pub(crate) async fn primaries(&self) -> Result<Vec<Primary>> {
        let cmd = cluster_slots();
        let mut load = Load::new(&self.shared, Instant::now());
        while let Some(server) = load.next() {
            let reply = server.query(Request::Cmd(&cmd)).await;
            if load.on_reply(reply) {
                break;
            }
        }
        load.finish().map(|()| self.shared.primaries())
    }

    /// [`primaries`](Self::primaries) on blocking connections.
    pub(crate) fn primaries_blocking(&self) -> Result<Vec<Primary>> {
        self.shared.load_blocking(Instant::now())?;
        Ok(self.shared.primaries())
    }
}

/// One primary, for `SCAN` and the `UNLINK` of what it found: the keys of each batch are
/// unlinked one slot per command, in one pipeline.
pub(crate) struct Primary {
    server: Arc<Server>,
}

impl Primary {
    /// Sends `request` to this primary, an `UNLINK` of several slots split per slot.
    pub(crate) async fn query(&self, request: Request<'_>) -> Result<Value> {
        match per_slot_unlink(request) {
            Some((pipe, merge)) => {
                merge.finish(vec![self.server.query(Request::Pipeline(&pipe)).await?])
            }
            None => self.server.query(request).await,
        }
    }

    /// [`query`](Self::query) on a blocking connection.
    pub(crate) fn query_blocking(&self, request: Request<'_>) -> Result<Value> {
        match per_slot_unlink(request) {
            Some((pipe, merge)) => {
                merge.finish(vec![self.server.query_blocking(Request::Pipeline(&pipe))?])
            }
            None => self.server.query_blocking(request),
        }
    }
}

/// An `UNLINK` of keys of several slots as one pipeline of one `UNLINK` per slot.
fn per_slot_unlink(request: Request<'_>) -> Option<(Pipeline, Merge)> {
    let Request::Cmd(cmd) = request else {
        return None;
    };
    let Keys::Many(name, keys) = keys(cmd) else {
        return None;
    };
    let by_slot = by_slot(&keys);
    if by_slot.len() < 2 {
        return None;
    }
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    for members in by_slot.values() {
        pipe.add_command(multi_key(name, &keys, members));
    }
    Some((pipe, Merge::Sum))
}

impl Shared {
    /// The server for a request of one slot, if the map is known.
    #[inline]
    fn route(&self, request: Request<'_>) -> Option<Arc<Server>> {
        let Request::Cmd(cmd) = request else {
            return None;
        };
        let slot = match keys(cmd) {
            Keys::One(key) => slot(key),
            Keys::Many(_, keys) => one_slot(&keys)?,
            Keys::None => return None,
        };
        self.owner(slot)
    }

    fn owner(&self, slot: u16) -> Option<Arc<Server>> {
        let map = self.map.load();
        let map = map.as_ref()?;
        let index = map.owners.get(usize::from(slot)).copied().flatten()?;
        map.primaries
            .get(usize::from(index))
            .map(|(_, server)| server.clone())
    }

    /// What a failed request calls for: a redirect, or nothing more (a background refresh
    /// started if the node was unreachable).
    fn redirect(self: &Arc<Self>, result: &Result<Value>) -> Option<Redirect> {
        self.redirect_for(result.as_ref().err()?)
    }

    /// [`redirect`](Self::redirect) for the error of a failed request.
    fn redirect_for(self: &Arc<Self>, error: &Error) -> Option<Redirect> {
        if matches!(error.kind(), ErrorKind::Connection | ErrorKind::Timeout) {
            self.refresh_soon();
            return None;
        }
        let redis: &RedisError = std::error::Error::source(error)?.downcast_ref()?;
        let (addr, slot) = redis.redirect_node()?;
        let addr = Addr::parse(addr)?;
        let ask = redis.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::Ask);
        Some(Redirect { ask, addr, slot })
    }

    /// The node at `addr`, created if new.
    fn node(&self, addr: &Addr) -> Option<Arc<Server>> {
        let mut nodes = self.nodes.lock().unwrap_or_else(PoisonError::into_inner);
        self.node_in(&mut nodes, addr)
    }

    fn node_in(&self, nodes: &mut BTreeMap<Addr, Arc<Server>>, addr: &Addr) -> Option<Arc<Server>> {
        if let Some(server) = nodes.get(addr) {
            return Some(server.clone());
        }
        match self.settings.server(addr) {
            Ok(server) => {
                let server = Arc::new(server);
                nodes.insert(addr.clone(), server.clone());
                Some(server)
            }
            Err(error) => {
                tracing::warn!(target: "cache_redis", node = %addr, %error, "cannot make a client for a Redis Cluster node");
                None
            }
        }
    }

    /// The nodes to ask for the map: current primaries, then replicas, then seeds.
    fn candidates(&self) -> Vec<(Addr, Arc<Server>)> {
        let map = self.map.load_full();
        let mut addrs: Vec<Addr> = Vec::new();
        if let Some(map) = &map {
            addrs.extend(map.primaries.iter().map(|(addr, _)| addr.clone()));
            addrs.extend(map.replicas.iter().cloned());
        }
        for seed in &self.seeds {
            if !addrs.contains(seed) {
                addrs.push(seed.clone());
            }
        }
        let mut nodes = self.nodes.lock().unwrap_or_else(PoisonError::into_inner);
        addrs
            .into_iter()
            .filter_map(|addr| {
                let server = self.node_in(&mut nodes, &addr)?;
                Some((addr, server))
            })
            .collect()
    }

    /// Makes `layout` the map, keeping the nodes it names (and the seeds) and dropping the
    /// others.
    fn install(&self, layout: Layout) {
        let mut nodes = self.nodes.lock().unwrap_or_else(PoisonError::into_inner);
        let primaries: Vec<(Addr, Arc<Server>)> = layout
            .primaries
            .iter()
            .filter_map(|addr| Some((addr.clone(), self.node_in(&mut nodes, addr)?)))
            .collect();
        if primaries.len() != layout.primaries.len() {
            return;
        }
        for replica in &layout.replicas {
            let _ = self.node_in(&mut nodes, replica);
        }
        nodes.retain(|addr, _| {
            self.seeds.contains(addr)
                || layout.primaries.contains(addr)
                || layout.replicas.contains(addr)
        });
        drop(nodes);
        let changed = self.map.load().as_ref().is_none_or(|old| {
            old.owners != layout.owners
                || old
                    .primaries
                    .iter()
                    .map(|(a, _)| a)
                    .ne(layout.primaries.iter())
        });
        if changed {
            tracing::info!(
                target: "cache_redis",
                primaries = %layout.primaries.iter().map(Addr::to_string).collect::<Vec<_>>().join(","),
                complete = layout.is_complete(),
                "Redis Cluster slot map read"
            );
        }
        self.map.store(Some(Arc::new(SlotMap {
            owners: layout.owners,
            primaries,
            replicas: layout.replicas,
        })));
    }

    /// Points `slot` at `addr` (after `MOVED`), and refreshes the whole map soon.
    fn moved(self: &Arc<Self>, slot: u16, addr: &Addr) {
        let Some(server) = self.node(addr) else {
            return;
        };
        self.map.rcu(|map| {
            let map = map.as_ref()?;
            let mut primaries = map.primaries.clone();
            let index = match primaries.iter().position(|(a, _)| a == addr) {
                Some(index) => index,
                None => {
                    primaries.push((addr.clone(), server.clone()));
                    primaries.len() - 1
                }
            };
            let mut owners = map.owners.clone();
            *owners.get_mut(usize::from(slot))? = Some(u16::try_from(index).ok()?);
            Some(Arc::new(SlotMap {
                owners,
                primaries,
                replicas: map.replicas.clone(),
            }))
        });
        self.refresh_soon();
    }

    fn primaries(&self) -> Vec<Primary> {
        self.map
            .load()
            .iter()
            .flat_map(|map| map.primaries.iter())
            .map(|(_, server)| Primary {
                server: server.clone(),
            })
            .collect()
    }

    /// Reads the map on blocking connections, within one call's budget from `started`.
    fn load_blocking(&self, started: Instant) -> Result<()> {
        let cmd = cluster_slots();
        let mut load = Load::new(self, started);
        while let Some(server) = load.next() {
            if load.on_reply(server.query_blocking(Request::Cmd(&cmd))) {
                break;
            }
        }
        load.finish()
    }

    fn budget(&self) -> Duration {
        self.settings.timeouts.connect + self.settings.timeouts.response
    }

    /// Starts a background refresh of the map, unless one runs or one started less than
    /// an interval ago. The thread holds only a weak reference: dropping the backend ends
    /// it after its current request.
    fn refresh_soon(self: &Arc<Self>) {
        let refresh = &self.refresh;
        let now = u64::try_from(refresh.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        if now < refresh.next_at.load(Ordering::Relaxed)
            || refresh
                .running
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let interval = u64::try_from(refresh.interval.as_nanos()).unwrap_or(u64::MAX);
        refresh
            .next_at
            .store(now.saturating_add(interval), Ordering::Relaxed);
        let running = Refreshing(Arc::downgrade(self));
        let dispatch = tracing::dispatcher::get_default(Clone::clone);
        let spawned = std::thread::Builder::new()
            .name("cache-redis-cluster-refresh".to_owned())
            .spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    if let Some(shared) = running.0.upgrade()
                        && let Err(error) = shared.load_blocking(Instant::now())
                    {
                        tracing::debug!(target: "cache_redis", %error, "Redis Cluster slot map refresh failed");
                    }
                    drop(running);
                });
            });
        if let Err(error) = spawned {
            tracing::warn!(target: "cache_redis", %error, "cannot start a Redis Cluster slot map refresh; a later call retries");
        }
    }
}

/// Owns "a refresh runs": dropped when the refresh thread ends (or with its closure when it
/// could not be spawned), it clears the mark.
struct Refreshing(Weak<Shared>);

impl Drop for Refreshing {
    fn drop(&mut self) {
        if let Some(shared) = self.0.upgrade() {
            shared.refresh.running.store(false, Ordering::Release);
        }
    }
}

/// The Redis error a request failed with, if it came from Redis.
fn redis_error(result: &Result<Value>) -> Option<&RedisError> {
    std::error::Error::source(result.as_ref().err()?)?.downcast_ref()
}

/// True if a node turned the request away during a slot migration (`ASK`, `TRYAGAIN`).
fn turned_away(result: &Result<Value>) -> bool {
    result.is_err() && redis_error(result).and_then(Turn::of).is_some()
}

fn cluster_slots() -> Cmd {
    let mut cmd = redis::cmd("CLUSTER");
    cmd.arg("SLOTS");
    cmd
}

/// Reading the map: asks the candidates one after the other until one answers with a map,
/// and starts no request once the call's budget is spent.
struct Load<'a> {
    shared: &'a Shared,
    candidates: std::vec::IntoIter<(Addr, Arc<Server>)>,
    asked: Option<Addr>,
    deadline: Instant,
    outcome: Option<Result<()>>,
}

impl<'a> Load<'a> {
    fn new(shared: &'a Shared, started: Instant) -> Self {
        Self {
            shared,
            candidates: shared.candidates().into_iter(),
            asked: None,
            deadline: started + shared.budget(),
            outcome: None,
        }
    }

    /// The next node to ask, if any: none once the map is read, the candidates are
    /// exhausted or the time is up.
    fn next(&mut self) -> Option<Arc<Server>> {
        if matches!(self.outcome, Some(Ok(()))) {
            return None;
        }
        if Instant::now() >= self.deadline {
            self.outcome = Some(Err(out_of_time()));
            return None;
        }
        let (addr, server) = self.candidates.next()?;
        self.asked = Some(addr);
        Some(server)
    }

    /// Reads the reply of the node [`next`](Self::next) gave; true once the map is read.
    fn on_reply(&mut self, reply: Result<Value>) -> bool {
        let asked = self.asked.take();
        let outcome =
            reply.and_then(
                |value| match asked.and_then(|asked| Layout::parse(&value, &asked)) {
                    Some(layout) if !layout.primaries.is_empty() => {
                        self.shared.install(layout);
                        Ok(())
                    }
                    _ => Err(Error::new(
                        ErrorKind::Backend,
                        "a Redis Cluster node answered CLUSTER SLOTS with no slot map (is cluster \
                     mode enabled?)",
                    )),
                },
            );
        let done = outcome.is_ok();
        self.outcome = Some(outcome);
        done
    }

    fn finish(self) -> Result<()> {
        self.outcome.unwrap_or_else(|| {
            Err(Error::new(
                ErrorKind::Connection,
                "no Redis Cluster node to ask for the slot map",
            ))
        })
    }
}

fn out_of_time() -> Error {
    Error::new(
        ErrorKind::Timeout,
        "the Redis Cluster call ran out of time (connect + response time-out)",
    )
}

/// Where a node sent a request instead.
#[derive(Debug, Clone)]
struct Redirect {
    ask: bool,
    addr: Addr,
    slot: u16,
}

/// One cluster call without I/O: it says what to send where ([`Step::Send`]) and reads the
/// replies, until it is done.
struct Call<'a> {
    shared: &'a Arc<Shared>,
    request: Request<'a>,
    started: Instant,
    /// The map is being read first.
    load: Option<Load<'a>>,
    /// A redirect was followed already (only one is).
    redirected: bool,
    /// Commands of a multi-key request a node turned away during a slot migration, being
    /// resent key by key.
    migrating: Option<Migrating>,
    /// A migration was followed already (only one is).
    migrated: bool,
    /// The outcome of the last plan, for the next step.
    last: Option<Result<Value>>,
}

enum Step {
    Send(Plan),
    Done(Result<Value>),
}

impl<'a> Call<'a> {
    fn new(shared: &'a Arc<Shared>, request: Request<'a>) -> Self {
        Self {
            shared,
            request,
            started: Instant::now(),
            load: None,
            redirected: false,
            migrating: None,
            migrated: false,
            last: None,
        }
    }

    /// A call whose first request (on the hit path) got `result`, a redirect.
    fn after(shared: &'a Arc<Shared>, request: Request<'a>, result: Result<Value>) -> Self {
        Self {
            last: Some(result),
            ..Self::new(shared, request)
        }
    }

    fn step(&mut self) -> Step {
        let shared = self.shared;
        let in_time = self.in_time();
        if let Some(migrating) = &mut self.migrating {
            if !in_time {
                self.migrating = None;
                return Step::Done(Err(out_of_time()));
            }
            match migrating.next(shared) {
                Some(plan) if !plan.parts.is_empty() => return Step::Send(plan),
                Some(_) => {
                    self.last = self.migrating.take().map(Migrating::finish);
                }
                None => {
                    self.migrating = None;
                    return Step::Done(Err(Error::new(
                        ErrorKind::Connection,
                        "cannot make a client for the Redis Cluster node an ASK named",
                    )));
                }
            }
        }
        if let Some(result) = self.last.take() {
            if !self.migrated
                && let Some(migrating) = Migrating::of_command(shared, self.request, &result)
            {
                self.migrated = true;
                self.migrating = Some(migrating);
                return self.step();
            }
            match shared.redirect(&result) {
                Some(redirect) if !self.redirected => {
                    self.redirected = true;
                    if redirect.ask {
                        return match (self.request, shared.node(&redirect.addr)) {
                            (Request::Cmd(cmd), Some(server)) if self.in_time() => {
                                Step::Send(Plan::asking(server, cmd))
                            }
                            _ => Step::Done(result),
                        };
                    }
                    shared.moved(redirect.slot, &redirect.addr);
                }
                _ => return Step::Done(result),
            }
        }
        if !self.in_time() {
            return Step::Done(Err(out_of_time()));
        }
        if self.load.is_none() && shared.map.load().is_none() {
            self.load = Some(Load::new(shared, self.started));
        }
        if let Some(load) = &mut self.load {
            if let Some(server) = load.next() {
                return Step::Send(Plan::load(server));
            }
            if let Some(Err(error)) = self.load.take().map(Load::finish) {
                return Step::Done(Err(error));
            }
        }
        match Plan::new(shared, self.request) {
            Some(plan) => Step::Send(plan),
            None => Step::Done(Err(Error::new(
                ErrorKind::Connection,
                "no Redis Cluster primary serves the slot (the cluster is failing over or \
                 incomplete)",
            ))),
        }
    }

    /// Reads the replies of `plan`: all of them, or the first failure.
    fn on_replies(&mut self, plan: Plan, replies: Result<Vec<Value>>) {
        if let Some(load) = &mut self.load {
            load.on_reply(replies.map(|mut replies| replies.pop().unwrap_or(Value::Nil)));
            return;
        }
        if let Some(mut migrating) = self.migrating.take() {
            match replies {
                Ok(replies) => {
                    migrating.migration.on_replies(replies);
                    self.migrating = Some(migrating);
                }
                Err(error) => self.last = Some(Err(error)),
            }
            return;
        }
        match replies {
            Ok(replies) if !self.migrated => match Migrating::of_plan(plan, replies) {
                Ok(migrating) => {
                    self.migrated = true;
                    self.migrating = Some(migrating);
                }
                Err(result) => self.last = Some(result),
            },
            replies => self.last = Some(replies.and_then(|replies| plan.merge.finish(replies))),
        }
    }

    /// True while the call may start another request.
    fn in_time(&self) -> bool {
        self.started.elapsed() < self.shared.budget()
    }
}

/// A multi-key request some of whose commands a node turned away during a slot migration
/// (see [`crate::migration`]): the replies so far, and the nodes of the plan's parts.
struct Migrating {
    migration: Migration,
    servers: Vec<Arc<Server>>,
    replies: Vec<Value>,
    merge: Merge,
}

impl Migrating {
    /// The migration of `plan`'s turned-away commands, or the merged replies if none was
    /// (or `plan` is no split of a multi-key request).
    fn of_plan(plan: Plan, replies: Vec<Value>) -> Result<Self, Result<Value>> {
        let split = matches!(plan.merge, Merge::Mget { .. } | Merge::Sum | Merge::Ignored);
        if !split {
            return Err(plan.merge.finish(replies));
        }
        let pipelines: Vec<&Pipeline> = plan
            .parts
            .iter()
            .filter_map(|part| match &part.request {
                PartRequest::Pipeline(pipe) => Some(pipe),
                _ => None,
            })
            .collect();
        let found = (pipelines.len() == replies.len())
            .then(|| Migration::find(&pipelines, &replies))
            .flatten();
        match found {
            Some(migration) => Ok(Self {
                migration,
                servers: plan.parts.into_iter().map(|part| part.server).collect(),
                replies,
                merge: plan.merge,
            }),
            None => Err(plan.merge.finish(replies)),
        }
    }

    /// The migration of a multi-key command of one slot that `result` says a node turned
    /// away.
    fn of_command(shared: &Shared, request: Request<'_>, result: &Result<Value>) -> Option<Self> {
        let Request::Cmd(cmd) = request else {
            return None;
        };
        let migration = Migration::of_command(cmd, Turn::of(redis_error(result)?)?)?;
        let Keys::Many(_, keys) = keys(cmd) else {
            return None;
        };
        Some(Self {
            migration,
            servers: vec![shared.owner(one_slot(&keys)?)?],
            replies: vec![Value::Array(vec![Value::Nil])],
            merge: Merge::First,
        })
    }

    /// The next round of per-key commands (no part once every key has its reply), or
    /// `None` if an `ASK` named a node no client can be made for.
    fn next(&mut self, shared: &Shared) -> Option<Plan> {
        let parts = self
            .migration
            .next()
            .into_iter()
            .map(|(to, pipe)| {
                let server = match to {
                    To::Part(at) => self.servers.get(at).cloned(),
                    To::Asked(addr) => shared.node(&addr),
                }?;
                Some(Part {
                    server,
                    request: PartRequest::Pipeline(pipe),
                })
            })
            .collect::<Option<_>>()?;
        Some(Plan {
            parts,
            merge: Merge::Ignored,
        })
    }

    /// The request's reply, with the turned-away commands' replies put back.
    fn finish(self) -> Result<Value> {
        let mut replies = self.replies;
        self.migration.patch(&mut replies);
        self.merge.finish(replies)
    }
}

/// What to send to which nodes, and how their replies make one.
struct Plan {
    parts: Vec<Part>,
    merge: Merge,
}

struct Part {
    server: Arc<Server>,
    request: PartRequest,
}

enum PartRequest {
    /// The call's own request.
    Original,
    Cmd(Cmd),
    Pipeline(Pipeline),
}

impl Part {
    fn request<'r>(&'r self, original: Request<'r>) -> Request<'r> {
        match &self.request {
            PartRequest::Original => original,
            PartRequest::Cmd(cmd) => Request::Cmd(cmd),
            PartRequest::Pipeline(pipe) => Request::Pipeline(pipe),
        }
    }
}

impl Plan {
    fn load(server: Arc<Server>) -> Self {
        Self {
            parts: vec![Part {
                server,
                request: PartRequest::Cmd(cluster_slots()),
            }],
            merge: Merge::Only,
        }
    }

    /// `ASKING` and the command, on the node an `ASK` named.
    fn asking(server: Arc<Server>, cmd: &Cmd) -> Self {
        let mut pipe = redis::pipe();
        pipe.cmd("ASKING").ignore().add_command(cmd.clone());
        Self {
            parts: vec![Part {
                server,
                request: PartRequest::Pipeline(pipe),
            }],
            merge: Merge::First,
        }
    }

    /// The plan for `request` on the current map; `None` if a slot has no primary.
    fn new(shared: &Shared, request: Request<'_>) -> Option<Self> {
        let cmd = match request {
            Request::Cmd(cmd) => cmd,
            Request::Pipeline(pipe) => return Self::pipeline(shared, pipe),
        };
        let keys = match keys(cmd) {
            Keys::None => {
                let parts: Vec<Part> = shared
                    .primaries()
                    .into_iter()
                    .map(|primary| Part {
                        server: primary.server,
                        request: PartRequest::Original,
                    })
                    .collect();
                return (!parts.is_empty()).then_some(Self {
                    parts,
                    merge: Merge::Last,
                });
            }
            Keys::One(key) => return Self::single(shared, slot(key)),
            Keys::Many(name, keys) => match one_slot(&keys) {
                Some(slot) => return Self::single(shared, slot),
                None => (name, keys),
            },
        };
        let (name, keys) = keys;
        let mut groups: Vec<(Arc<Server>, Pipeline, Vec<Vec<usize>>)> = Vec::new();
        for (slot, members) in by_slot(&keys) {
            let server = shared.owner(slot)?;
            let at = match groups.iter().position(|(s, _, _)| Arc::ptr_eq(s, &server)) {
                Some(at) => at,
                None => {
                    let mut pipe = redis::pipe();
                    pipe.ignore_errors();
                    groups.push((server, pipe, Vec::new()));
                    groups.len() - 1
                }
            };
            let (_, pipe, positions) = &mut groups[at];
            pipe.add_command(multi_key(name, &keys, &members));
            positions.push(members);
        }
        let mget = name.eq_ignore_ascii_case(b"MGET");
        let mut positions = Vec::with_capacity(groups.len());
        let parts = groups
            .into_iter()
            .map(|(server, pipe, members)| {
                positions.push(members);
                Part {
                    server,
                    request: PartRequest::Pipeline(pipe),
                }
            })
            .collect();
        let merge = if mget {
            Merge::Mget {
                len: keys.len(),
                positions,
            }
        } else {
            Merge::Sum
        };
        Some(Self { parts, merge })
    }

    fn single(shared: &Shared, slot: u16) -> Option<Self> {
        Some(Self {
            parts: vec![Part {
                server: shared.owner(slot)?,
                request: PartRequest::Original,
            }],
            merge: Merge::Only,
        })
    }

    /// A pipeline of single-key commands (`set_many`), one pipeline per node.
    fn pipeline(shared: &Shared, pipe: &Pipeline) -> Option<Self> {
        let mut parts: Vec<Part> = Vec::new();
        for cmd in pipe.cmd_iter() {
            let server = match keys(cmd) {
                Keys::One(key) => shared.owner(slot(key))?,
                Keys::Many(_, keys) => shared.owner(one_slot(&keys)?)?,
                Keys::None => return None,
            };
            let at = match parts.iter().position(|p| Arc::ptr_eq(&p.server, &server)) {
                Some(at) => at,
                None => {
                    let mut pipe = redis::pipe();
                    pipe.ignore_errors();
                    parts.push(Part {
                        server,
                        request: PartRequest::Pipeline(pipe),
                    });
                    parts.len() - 1
                }
            };
            if let PartRequest::Pipeline(pipe) = &mut parts[at].request {
                pipe.add_command(cmd.clone());
            }
        }
        Some(Self {
            parts,
            merge: Merge::Ignored,
        })
    }
}
