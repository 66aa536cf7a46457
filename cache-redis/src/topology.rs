//! Where commands go: which server of a deployment a command is sent to.
//!
//! [`Topology`] answers two questions for the backend: *which connection does this command
//! go to* ([`Topology::query`], [`Topology::query_blocking`]) and *which nodes must a `SCAN`
//! visit* ([`Topology::scan_nodes`]). [`Topology::Single`] is one server;
//! [`Topology::Sentinel`] is the master of a Sentinel set-up, resolved through the
//! Sentinels and followed across failovers (see [`sentinel`]); [`Topology::Cluster`] routes
//! keyed commands by slot and scans every primary (see [`crate::cluster`]).
//!
//! For the near cache's channel it also answers *which node a subscription goes to*
//! ([`Topology::home_blocking`]) and *whether that node still serves it*
//! ([`Topology::is_home`]).
//!
//! Each node is a [`Server`](crate::server::Server).

use std::sync::Arc;

use redis::Value;

use cache_core::{Error, Result};

use crate::cluster::{Cluster, Primary};
use crate::server::{Request, Server};

pub(crate) mod sentinel;

use sentinel::{Master, Sentinel};

/// The servers a backend talks to. See the module docs.
#[derive(Debug)]
// One per backend, behind its `Arc`: boxing the server would add a pointer chase to every
// single-server call to save memory that is allocated once.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Topology {
    /// One standalone server (or a proxy in front of several).
    Single(Server),
    /// The master of a Sentinel set-up, followed across failovers.
    Sentinel(Sentinel),
    /// A Redis Cluster: one server per node, commands routed by hash slot.
    Cluster(Cluster),
}

pin_project_lite::pin_project! {
    /// The future of [`Topology::query`]: the single server's query, the Sentinel master's
    /// or the cluster's.
    #[project = QueryProjection]
    pub(crate) enum Query<S, M, C> {
        Single { #[pin] future: S },
        Sentinel { #[pin] future: M },
        Cluster { #[pin] future: C },
    }
}

impl<S, M, C> Future for Query<S, M, C>
where
    S: Future<Output = Result<Value>>,
    M: Future<Output = Result<Value>>,
    C: Future<Output = Result<Value>>,
{
    type Output = Result<Value>;

    #[inline]
    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        match self.project() {
            QueryProjection::Single { future } => future.poll(cx),
            QueryProjection::Sentinel { future } => future.poll(cx),
            QueryProjection::Cluster { future } => future.poll(cx),
        }
    }
}

/// A node whose key space a `SCAN` covers: the single server, the master a Sentinel set-up
/// has now (kept alive for the whole scan even if the master moves meanwhile), or a cluster
/// primary (which unlinks each batch per slot).
pub(crate) enum ScanNode<'a> {
    Single(&'a Server),
    Master(Arc<Master>),
    Cluster(Primary),
}

impl ScanNode<'_> {
    /// Sends a request to this node.
    pub(crate) async fn query(&self, request: Request<'_>) -> Result<Value> {
        match self {
            Self::Single(server) => server.query(request).await,
            Self::Master(master) => master.server.query(request).await,
            Self::Cluster(primary) => primary.query(request).await,
        }
    }

    /// Sends a request to this node on a blocking connection.
    pub(crate) fn query_blocking(&self, request: Request<'_>) -> Result<Value> {
        match self {
            Self::Single(server) => server.query_blocking(request),
            Self::Master(master) => master.server.query_blocking(request),
            Self::Cluster(primary) => primary.query_blocking(request),
        }
    }
}

/// The node a subscription to a channel is made on: the single server, the master of the
/// moment, or the primary serving the channel's slot (sharded pub/sub).
pub(crate) enum Home {
    Single,
    Master(Arc<Master>),
    Owner { slot: u16, server: Arc<Server> },
}

impl Topology {
    /// Where a subscription to `channel` goes now (on a cluster, the slot map is read first
    /// if none is known; on Sentinel, the master is resolved first if none is known).
    pub(crate) fn home_blocking(&self, channel: &[u8]) -> Result<Home> {
        match self {
            Self::Single(_) => Ok(Home::Single),
            Self::Sentinel(sentinel) => Ok(Home::Master(sentinel.master_blocking()?)),
            Self::Cluster(cluster) => {
                let slot = crate::slots::slot(channel);
                Ok(Home::Owner {
                    slot,
                    server: cluster.owner_blocking(slot)?,
                })
            }
        }
    }

    /// The server of `home`.
    pub(crate) fn server_of<'a>(&'a self, home: &'a Home) -> &'a Server {
        match (self, home) {
            (_, Home::Master(master)) => &master.server,
            (_, Home::Owner { server, .. }) => server,
            (Self::Single(server), Home::Single) => server,
            (Self::Sentinel(_) | Self::Cluster(_), Home::Single) => {
                unreachable!("a single-server home comes from a single-server topology")
            }
        }
    }

    /// True while `home` still serves its channel: always on one server; while it is the
    /// master on Sentinel; while the slot map names it the slot's primary on a cluster.
    pub(crate) fn is_home(&self, home: &Home) -> bool {
        match (self, home) {
            (Self::Sentinel(sentinel), Home::Master(master)) => sentinel
                .current()
                .is_some_and(|current| Arc::ptr_eq(&current, master)),
            (Self::Cluster(cluster), Home::Owner { slot, server }) => cluster.owns(*slot, server),
            _ => true,
        }
    }

    /// After a request of its own to `home` failed: what the topology's own requests do
    /// after such an error (re-resolve the master, re-point a moved slot, refresh the map).
    /// True if the request should be sent once more, to the home named now (after `MOVED`).
    pub(crate) fn after_error(&self, home: &Home, error: &Error) -> bool {
        match (self, home) {
            (Self::Sentinel(sentinel), Home::Master(master)) => {
                sentinel.after_error(master, error);
                false
            }
            (Self::Cluster(cluster), Home::Owner { .. }) => cluster.after_error(error),
            _ => false,
        }
    }

    /// The database of the data nodes (0 on a cluster).
    pub(crate) fn db(&self) -> i64 {
        match self {
            Self::Single(server) => server.db(),
            Self::Sentinel(sentinel) => sentinel.db(),
            Self::Cluster(_) => 0,
        }
    }

    /// True on a Redis Cluster (whose channels are sharded).
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }

    /// Sends a request on the async connection for its keys, through that server's circuit
    /// breaker.
    ///
    /// A plain function returning the server's future rather than an `async fn` around it:
    /// every level of future nesting costs instructions on every call.
    #[inline]
    pub(crate) fn query<'a>(
        &'a self,
        request: Request<'a>,
    ) -> impl Future<Output = Result<Value>> + 'a {
        match self {
            Self::Single(server) => Query::Single {
                future: server.query(request),
            },
            Self::Sentinel(sentinel) => Query::Sentinel {
                future: sentinel.query(request),
            },
            Self::Cluster(cluster) => Query::Cluster {
                future: cluster.query(request),
            },
        }
    }

    /// Sends a request on a blocking connection for its keys, through that server's circuit
    /// breaker.
    #[inline]
    pub(crate) fn query_blocking(&self, request: Request<'_>) -> Result<Value> {
        match self {
            Self::Single(server) => server.query_blocking(request),
            Self::Sentinel(sentinel) => sentinel.query_blocking(request),
            Self::Cluster(cluster) => cluster.query_blocking(request),
        }
    }

    /// True while any server's circuit breaker fails calls fast.
    pub(crate) fn is_circuit_open(&self) -> bool {
        match self {
            Self::Single(server) => server.is_circuit_open(),
            Self::Sentinel(sentinel) => sentinel
                .current()
                .is_some_and(|master| master.server.is_circuit_open()),
            Self::Cluster(cluster) => cluster.is_circuit_open(),
        }
    }

    /// The nodes whose key spaces a `SCAN` must cover: every node holding primary data (on
    /// a cluster, every primary of a slot map read just now).
    pub(crate) async fn scan_nodes(&self) -> Result<Vec<ScanNode<'_>>> {
        match self {
            Self::Single(server) => Ok(vec![ScanNode::Single(server)]),
            Self::Sentinel(sentinel) => Ok(vec![ScanNode::Master(sentinel.master().await?)]),
            Self::Cluster(cluster) => Ok(cluster
                .primaries()
                .await?
                .into_iter()
                .map(ScanNode::Cluster)
                .collect()),
        }
    }

    /// [`scan_nodes`](Self::scan_nodes) on blocking connections.
    pub(crate) fn scan_nodes_blocking(&self) -> Result<Vec<ScanNode<'_>>> {
        match self {
            Self::Single(server) => Ok(vec![ScanNode::Single(server)]),
            Self::Sentinel(sentinel) => Ok(vec![ScanNode::Master(sentinel.master_blocking()?)]),
            Self::Cluster(cluster) => Ok(cluster
                .primaries_blocking()?
                .into_iter()
                .map(ScanNode::Cluster)
                .collect()),
        }
    }
}
