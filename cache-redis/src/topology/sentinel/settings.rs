//! What a Sentinel deployment is made of, fixed when the backend is built.

use redis::{Client, ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo};

use cache_core::Result;

use crate::breaker::BreakerSettings;
use crate::error::from_redis;
use crate::server::{ClientFactory, PoolLimits, Timeouts};

/// A data node's address as the Sentinels report it.
pub(crate) type Addr = (String, u16);

/// The settings of a Sentinel deployment; shared (read-only) by the manager, the resolver
/// and the watcher.
pub(crate) struct Settings {
    /// The name the Sentinels know the master by.
    pub(crate) master_name: String,
    /// A client for every Sentinel, with its credentials and TLS settings.
    pub(crate) sentinels: Vec<Client>,
    /// The data nodes' database, user and password.
    pub(crate) node: RedisConnectionInfo,
    /// The data nodes are reached over TLS.
    pub(crate) node_tls: bool,
    /// Makes the data nodes' clients (trusting the builder's TLS root certificate).
    pub(crate) client: ClientFactory,
    pub(crate) timeouts: Timeouts,
    pub(crate) pool: PoolLimits,
    pub(crate) breaker: BreakerSettings,
}

impl Settings {
    /// A client for the data node at `addr`, with the data nodes' credentials.
    pub(crate) fn node_client(&self, addr: &Addr) -> Result<Client> {
        let (host, port) = addr.clone();
        let target = if self.node_tls {
            ConnectionAddr::TcpTls {
                host,
                port,
                insecure: false,
                tls_params: None,
            }
        } else {
            ConnectionAddr::Tcp(host, port)
        };
        let info = target
            .into_connection_info()
            .map_err(from_redis)?
            .set_redis_settings(self.node.clone());
        (self.client)(info)
    }
}

/// `host:port`, with brackets around an IPv6 address.
pub(crate) fn show(addr: &Addr) -> String {
    if addr.0.contains(':') {
        format!("[{}]:{}", addr.0, addr.1)
    } else {
        format!("{}:{}", addr.0, addr.1)
    }
}

/// The address of a Sentinel's client.
pub(crate) fn sentinel_addr(client: &Client) -> String {
    match client.get_connection_info().addr() {
        ConnectionAddr::Tcp(host, port) | ConnectionAddr::TcpTls { host, port, .. } => {
            show(&(host.clone(), *port))
        }
        other => other.to_string(),
    }
}
