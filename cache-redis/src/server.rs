//! One Redis server: its connections, its blocking pool and its circuit breaker, the
//! building block of every deployment (one server, a Sentinel master, a cluster node).
//!
//! A [`Server`] holds, for one address:
//!
//! - one shared multiplexed async connection, opened lazily on first use, replaced after a
//!   connection error or a time-out (never a connection per call, never a `PING` per call);
//! - a bounded pool of plain blocking connections with socket read and write time-outs, so
//!   sync callers never need an async runtime (see [`crate::pool`]), opened and queried
//!   within one time-out each (see [`crate::blocking`]);
//! - the circuit breaker of both, whose prober checks the server with a fresh blocking
//!   connection and a `PING` (see [`crate::breaker`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use redis::aio::MultiplexedConnection;
use redis::{
    AsyncConnectionConfig, Client, Cmd, Connection, Pipeline, ProtocolVersion, RedisResult, Value,
};

use cache_core::{Error, ErrorKind, Result};

use crate::blocking::{self, Connector};
use crate::breaker::{Breaker, BreakerSettings, Probe};
use crate::error::{breaks_connection, from_redis};
use crate::pool::{Pool, Slot};

/// Opens a `redis` client for a connection target (TLS settings included), for a topology
/// that finds its servers at run time.
pub(crate) type ClientFactory = Box<dyn Fn(redis::ConnectionInfo) -> Result<Client> + Send + Sync>;

/// The time-outs that bound every call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timeouts {
    pub(crate) connect: Duration,
    pub(crate) response: Duration,
}

/// One request: a command or a pipeline.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Request<'a> {
    Cmd(&'a Cmd),
    Pipeline(&'a Pipeline),
}

/// The bounds of a server's blocking pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PoolLimits {
    /// Connections open at once, idle or in use.
    pub(crate) max_connections: usize,
    /// Idle connections kept between calls.
    pub(crate) idle: usize,
}

/// The live async connection and its generation, so a failed call replaces only the
/// connection it used and never a newer one.
type Live = (u64, MultiplexedConnection);

/// One server: a lazily opened multiplexed connection, a blocking pool, and the circuit
/// breaker of both (a server that is down fails fast without holding back the others).
pub(crate) struct Server {
    client: Client,
    blocking: Connector,
    breaker: Breaker,
    timeouts: Timeouts,
    /// Read on every call: an `ArcSwap` load takes no lock and writes no shared cache line,
    /// which matters when every worker thread reads it at once.
    multiplexed: ArcSwapOption<Live>,
    /// Serialises reconnection, so concurrent callers wait for one attempt.
    connecting: tokio::sync::Mutex<()>,
    generation: AtomicU64,
    pool: Pool,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `redis::Client`'s Debug would print the password; print the address only.
        f.debug_struct("Server")
            .field(
                "addr",
                &format_args!("{}", self.client.get_connection_info().addr()),
            )
            .field(
                "db",
                &self.client.get_connection_info().redis_settings().db(),
            )
            .field("timeouts", &self.timeouts)
            .field("pool", &self.pool)
            .field("circuit_open", &self.breaker.is_open_now())
            .finish_non_exhaustive()
    }
}

impl Server {
    pub(crate) fn new(
        client: Client,
        timeouts: Timeouts,
        pool: PoolLimits,
        breaker: BreakerSettings,
    ) -> Self {
        let blocking = Connector::new(&client, timeouts.connect, timeouts.response);
        let probe: Probe = {
            let connector = blocking.clone();
            Box::new(move || connector.ping())
        };
        Self {
            client,
            blocking,
            breaker: Breaker::new(breaker, probe),
            timeouts,
            multiplexed: ArcSwapOption::empty(),
            connecting: tokio::sync::Mutex::new(()),
            generation: AtomicU64::new(0),
            pool: Pool::new(pool.max_connections, pool.idle),
        }
    }

    /// True while this server's circuit breaker fails calls fast.
    pub(crate) fn is_circuit_open(&self) -> bool {
        self.breaker.is_open_now()
    }

    /// The database this server's connections select.
    pub(crate) fn db(&self) -> i64 {
        self.client.get_connection_info().redis_settings().db()
    }

    /// A fresh blocking connection of its own, outside the pool, for a subscription: the
    /// same target, credentials and TLS settings as the pool's, opened within the connect
    /// time-out, with the response time-out on reads and writes, through the circuit
    /// breaker (an open circuit fails it at once; a failure to connect counts).
    ///
    /// It always speaks RESP3, whatever the configured protocol: in RESP3 a published
    /// message is a push, which the `redis` crate's blocking reader never drops, whereas in
    /// RESP2 it is a plain reply, and that reader drops the first plain reply after a read
    /// time-out (it takes it for the late answer of the timed-out request). Subscriptions
    /// need Redis 6 or later.
    pub(crate) fn dedicated_blocking(&self) -> Result<Connection> {
        self.breaker.admit()?;
        let info = self.client.get_connection_info().clone();
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let client = Client::open(info.set_redis_settings(settings)).map_err(from_redis)?;
        let result = Connector::new(&client, self.timeouts.connect, self.timeouts.response)
            .connect(None)
            .map_err(from_redis);
        self.breaker.record(&result);
        result
    }

    /// Sends one request on the shared connection, through the circuit breaker.
    ///
    /// Written as one future (the exchange is a labelled block, not another `async fn`):
    /// every level of future nesting costs instructions on every call.
    pub(crate) async fn query(&self, request: Request<'_>) -> Result<Value> {
        if let Err(error) = self.breaker.admit() {
            return fail_fast(error).await;
        }
        let result = 'exchange: {
            let (generation, mut conn) = match self.live() {
                Some(live) => live,
                // Boxed: connecting is rare, and its large future would otherwise be part of
                // every query's future, copied on each call (measured with callgrind: see
                // the README).
                None => match Box::pin(self.connect()).await {
                    Ok(live) => live,
                    Err(error) => break 'exchange Err(error),
                },
            };
            let result = match request {
                // The connection's own method, not `Cmd::query_async`, which boxes this same
                // future behind the `ConnectionLike` trait (one allocation per call).
                Request::Cmd(cmd) => conn
                    .send_packed_command(cmd)
                    .await
                    .and_then(Value::extract_error),
                Request::Pipeline(pipe) => pipe.query_async::<Value>(&mut conn).await,
            };
            if let Err(error) = &result
                && breaks_connection(error)
            {
                self.forget(generation);
            }
            result
        }
        .map_err(from_redis);
        self.breaker.record(&result);
        result
    }

    /// The shared connection, if one is open.
    #[inline]
    fn live(&self) -> Option<(u64, MultiplexedConnection)> {
        let live = self.multiplexed.load();
        live.as_ref().map(|live| (live.0, live.1.clone()))
    }

    #[cold]
    async fn connect(&self) -> RedisResult<(u64, MultiplexedConnection)> {
        let attempt = async {
            let _one_at_a_time = self.connecting.lock().await;
            if let Some(live) = self.live() {
                return Ok(live);
            }
            let config = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(self.timeouts.connect))
                .set_response_timeout(Some(self.timeouts.response));
            let conn = self
                .client
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
            let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
            self.multiplexed
                .store(Some(Arc::new((generation, conn.clone()))));
            tracing::debug!(target: "cache_redis", generation, "async connection to Redis opened");
            Ok((generation, conn))
        };
        // Waiting for another caller's attempt counts against this caller's bound too.
        match tokio::time::timeout(self.timeouts.connect, attempt).await {
            Ok(result) => result,
            Err(_) => Err(std::io::Error::from(std::io::ErrorKind::TimedOut).into()),
        }
    }

    /// Drops the shared connection if it is still the one of `generation`.
    #[cold]
    fn forget(&self, generation: u64) {
        let previous = self.multiplexed.rcu(|live| match live {
            Some(live) if live.0 == generation => None,
            other => other.clone(),
        });
        if matches!(&previous, Some(live) if live.0 == generation) {
            tracing::debug!(target: "cache_redis", generation, "async connection to Redis dropped; the next call reconnects");
        }
    }

    /// Sends one request on a pooled blocking connection, through the circuit breaker.
    ///
    /// A call that finds every connection of the pool in use waits for one, and its wait and
    /// its exchange together (a connect included) get one response time-out: when that runs
    /// out in the wait, the call fails with a time-out error that the breaker does not count
    /// (it says this process is busy, not that Redis is down), and neither does a time-out
    /// within what the wait left.
    pub(crate) fn query_blocking(&self, request: Request<'_>) -> Result<Value> {
        self.breaker.admit()?;
        let Some(mut slot) = self.pool.checkout(self.timeouts.response) else {
            return Err(self.pool_exhausted());
        };
        let budget = match slot.waited_since() {
            None => None,
            Some(since) => {
                // The circuit may have opened meanwhile (the connections were busy timing out).
                self.breaker.admit()?;
                let left = self.timeouts.response.checked_sub(since.elapsed());
                Some(
                    left.filter(|left| !left.is_zero())
                        .ok_or_else(|| self.pool_exhausted())?,
                )
            }
        };
        let result = self
            .exchange_blocking(&mut slot, request, budget)
            .map_err(from_redis);
        // A time-out within what a wait left is weak evidence of an outage: only calls that
        // had the whole time-out count towards opening the circuit.
        if budget.is_none() || result.is_ok() {
            self.breaker.record(&result);
        }
        if result.is_err() && self.breaker.is_open_now() {
            // Connections opened before the outage would each fail once after it and open
            // the circuit again: the calls after it closes open fresh ones.
            drop(slot);
            self.pool.close_idle();
        }
        result
    }

    /// One exchange on the slot's connection, within `budget` if given (instead of the
    /// connection's usual time-outs).
    fn exchange_blocking(
        &self,
        slot: &mut Slot<'_>,
        request: Request<'_>,
        budget: Option<Duration>,
    ) -> RedisResult<Value> {
        let conn = slot.connection(|| self.blocking.connect(budget))?;
        let timeout = budget.unwrap_or(self.timeouts.response);
        if budget.is_some()
            && let Err(error) = conn.set_read_timeout(Some(timeout))
        {
            slot.discard();
            return Err(error);
        }
        let result = match request {
            Request::Cmd(cmd) => cmd.query::<Value>(conn),
            Request::Pipeline(pipe) => blocking::query_pipeline(conn, pipe, timeout),
        };
        // A connection that timed out may still receive the late answer: never reuse it.
        // One that answered gets its usual time-out back.
        let keep = match &result {
            Err(error) if breaks_connection(error) => false,
            _ if budget.is_some() || matches!(request, Request::Pipeline(_)) => {
                conn.set_read_timeout(Some(self.timeouts.response)).is_ok()
            }
            _ => true,
        };
        if !keep {
            slot.discard();
        }
        result
    }

    #[cold]
    fn pool_exhausted(&self) -> Error {
        tracing::debug!(target: "cache_redis", "every blocking Redis connection stayed in use");
        Error::new(
            ErrorKind::Timeout,
            format!(
                "no blocking Redis connection came free within {:?} (raise max_connections)",
                self.timeouts.response
            ),
        )
    }
}

/// The end of a call that the open circuit refused. It still counts against tokio's
/// scheduling budget, so a task that loops over such calls yields to the others in time
/// (the closed path never gets here).
#[cold]
async fn fail_fast(error: Error) -> Result<Value> {
    tokio::task::coop::consume_budget().await;
    Err(error)
}
