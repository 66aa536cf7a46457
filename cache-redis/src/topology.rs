//! Where commands go: which server of a deployment a command is sent to.
//!
//! [`Topology`] answers two questions for the backend: *which connection does this command
//! go to* ([`Topology::query`], [`Topology::query_blocking`]) and *which nodes must a `SCAN`
//! visit* ([`Topology::scan_nodes`]). [`Topology::Single`] is one server;
//! [`Topology::Sentinel`] is the master of a Sentinel set-up, resolved through the
//! Sentinels and followed across failovers (see [`sentinel`]); [`Topology::Cluster`] routes
//! keyed commands by slot and scans every primary (see [`crate::cluster`]).
//!
//! Each node is a [`Server`](crate::server::Server).

use std::sync::Arc;

use redis::Value;

use cache_core::Result;

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

impl Topology {
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
