//! What the test machine offers the harness: programs on `PATH` and free ports of 127.0.0.1.

use std::collections::hash_map::RandomState;
use std::fs;
use std::hash::BuildHasher;
use std::io;
use std::net::TcpListener;
use std::ops::RangeInclusive;
use std::path::PathBuf;

/// How far above a cluster node's port its cluster bus listens (Redis's fixed offset).
pub(crate) const CLUSTER_BUS_OFFSET: u16 = 10_000;

/// Where cluster ports are picked when the ephemeral range cannot be read: with their bus
/// ports (30000..=32767) they stay below Linux's usual ephemeral range, 32768 and up.
const CLUSTER_PORTS: RangeInclusive<u16> = 20_000..=22_767;

/// The path of `name` in a directory of `PATH`, if it is there.
pub(crate) fn program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// A port that was free a moment ago, picked by the kernel (from the ephemeral range).
pub(crate) fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

/// A port p that was free a moment ago, with p + [`CLUSTER_BUS_OFFSET`] free too, both
/// below the ephemeral range so that no outgoing connection takes them meanwhile. The
/// search starts at a random port, so concurrent callers rarely try the same ones; a caller
/// still retries when the server finds a port taken.
pub(crate) fn free_port_with_bus() -> io::Result<u16> {
    let range = cluster_ports();
    let (low, high) = (*range.start(), *range.end());
    let count = u64::from(high - low) + 1;
    let first = RandomState::new().hash_one(std::process::id()) % count;
    (0..count)
        .map(|i| low + u16::try_from((first + i) % count).expect("below the range size"))
        .find(|&port| is_free(port) && is_free(port + CLUSTER_BUS_OFFSET))
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("no free port pair (p, p + {CLUSTER_BUS_OFFSET}) for p in {range:?}"),
            )
        })
}

/// [`CLUSTER_PORTS`], lowered when the machine's ephemeral range starts below 32768.
fn cluster_ports() -> RangeInclusive<u16> {
    let ephemeral_low = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok());
    let low = *CLUSTER_PORTS.start();
    match ephemeral_low.and_then(|e| e.checked_sub(CLUSTER_BUS_OFFSET + 1)) {
        // Room for a few hundred nodes below the ephemeral range: stay below it.
        Some(high) if high >= low + 500 => low..=high.min(*CLUSTER_PORTS.end()),
        // The ephemeral range starts too low to stay below it: take the default and rely on
        // the retry when a port is taken.
        _ => CLUSTER_PORTS,
    }
}

fn is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_ports_and_their_bus_ports_stay_below_the_ephemeral_range() {
        let range = cluster_ports();
        assert!(*range.start() >= 20_000);
        assert!(*range.end() + CLUSTER_BUS_OFFSET < 32_768);
        let port = free_port_with_bus().unwrap();
        assert!(range.contains(&port));
    }
}
