//! The seed nodes of a Redis Cluster (`CACHE_REDIS_CLUSTER`, `RedisBackendBuilder::cluster`):
//! parsed and checked at build time, and shown with every password masked.

use cache_core::{Error, Result};
use redis::{ConnectionAddr, ConnectionInfo};

use crate::slots::Addr;

/// Parses `CACHE_REDIS_CLUSTER`: `host:port` or URLs, separated by commas. Errors name
/// `field` and never repeat the text (a URL may hold a password).
pub(crate) fn parse_seeds(seeds: &str, field: &str) -> Result<Vec<ConnectionInfo>> {
    let infos = seeds
        .split(',')
        .map(str::trim)
        .filter(|seed| !seed.is_empty())
        .enumerate()
        .map(|(index, seed)| {
            if seed.contains("://") {
                return crate::target::parse_url(seed, field);
            }
            let problem = || {
                Error::config(
                    field,
                    format!(
                        "seed {} is neither host:port nor a redis:// URL; expected \
                         \"host1:port1,host2:port2\"",
                        index + 1
                    ),
                )
            };
            let (host, port) = seed.rsplit_once(':').ok_or_else(problem)?;
            let port: u16 = port.parse().map_err(|_| problem())?;
            let host = cache_core::config::check_host(field, host)?;
            let port = cache_core::config::check_port(field, port)?;
            redis::IntoConnectionInfo::into_connection_info((host, port))
                .map_err(|e| Error::config(field, "the Redis client refused it").with_source(e))
        })
        .collect::<Result<Vec<_>>>()?;
    if infos.is_empty() {
        return Err(Error::config(
            field,
            "no seed node; expected \"host1:port1,host2:port2\"",
        ));
    }
    if infos.iter().any(|info| {
        !matches!(
            info.addr(),
            ConnectionAddr::Tcp(..) | ConnectionAddr::TcpTls { .. }
        )
    }) {
        return Err(Error::config(
            field,
            "a Redis Cluster is reached over TCP: unix:// seeds are not supported",
        ));
    }
    Ok(infos)
}

/// The address of a TCP target.
pub(crate) fn addr_of(info: &ConnectionInfo) -> Option<Addr> {
    match info.addr() {
        ConnectionAddr::Tcp(host, port) | ConnectionAddr::TcpTls { host, port, .. } => Some(Addr {
            host: host.clone(),
            port: *port,
        }),
        _ => None,
    }
}

/// The seeds with every password masked, for `Debug`.
pub(crate) fn redact_seeds(seeds: &str) -> String {
    seeds
        .split(',')
        .map(|seed| cache_core::config::redact_url(seed.trim()))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_parse_as_host_port_or_urls_and_bad_ones_name_the_field_only() {
        let infos =
            parse_seeds(" 127.0.0.1:7000, redis://:hunter2@h:7001 ,[::1]:7002", "f").unwrap();
        let addrs: Vec<String> = infos
            .iter()
            .filter_map(addr_of)
            .map(|addr| addr.to_string())
            .collect();
        assert_eq!(addrs, ["127.0.0.1:7000", "h:7001", "[::1]:7002"]);
        assert_eq!(infos[1].redis_settings().password(), Some("hunter2"));
        for (seeds, says) in [
            ("", "no seed node"),
            (" , ", "no seed node"),
            ("h", "seed 1 is neither"),
            ("h:7000,h:notaport", "seed 2 is neither"),
            ("h:0", "1 to 65535"),
            ("bad host!:7000", "not a host name"),
            ("unix:///tmp/redis.sock", "over TCP"),
            ("redis://:hunter2@h/x", "database number"),
        ] {
            let err = parse_seeds(seeds, "CACHE_REDIS_CLUSTER").unwrap_err();
            let shown = format!("{err:#} {err:?}");
            assert!(err.is_config(), "{seeds}: {shown}");
            assert!(
                shown.contains("CACHE_REDIS_CLUSTER") && shown.contains(says),
                "{seeds}: {shown}"
            );
            assert!(!shown.contains("hunter2"), "{shown}");
        }
        assert_eq!(
            redact_seeds("h:1,redis://:hunter2@h:2"),
            "h:1,redis://:***@h:2"
        );
    }
}
