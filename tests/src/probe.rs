//! Fallible, short queries to servers whose state is in flux (forming a cluster, failing
//! over), for the harness's polling loops: an error there means "not yet", never a panic.

use std::time::{Duration, Instant};

/// How long one probe may take to connect, and then to answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// The pause between two polls.
const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// Runs `cmd` on a new connection to the server at `url`, or says why it failed.
pub(crate) fn query<T: redis::FromRedisValue>(
    url: &str,
    cmd: &redis::Cmd,
) -> redis::RedisResult<T> {
    let client = redis::Client::open(url)?;
    let mut conn = client.get_connection_with_timeout(PROBE_TIMEOUT)?;
    conn.set_read_timeout(Some(PROBE_TIMEOUT))?;
    cmd.query(&mut conn)
}

/// Polls `check` until it returns `Ok`, and returns its value with the time it took; after
/// `timeout`, the last reason it gave, and how long it waited.
pub(crate) fn wait_for<T>(
    timeout: Duration,
    mut check: impl FnMut() -> Result<T, String>,
) -> Result<(T, Duration), (String, Duration)> {
    let start = Instant::now();
    loop {
        match check() {
            Ok(value) => return Ok((value, start.elapsed())),
            Err(reason) if start.elapsed() >= timeout => return Err((reason, start.elapsed())),
            Err(_) => std::thread::sleep(POLL_INTERVAL),
        }
    }
}

/// The value of `name` in `INFO` text (`cluster_state:ok`, `role:master`).
pub(crate) fn info_value<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines()
        .find_map(|line| line.trim().strip_prefix(name)?.strip_prefix(':'))
}

/// Checks that the node at `url` (on `port`) answers `ROLE` as a master.
pub(crate) fn check_master(port: u16, url: &str) -> Result<(), String> {
    let role: Vec<redis::Value> =
        query(url, &redis::cmd("ROLE")).map_err(|e| format!("node {port}: ROLE: {e}"))?;
    match role.first() {
        Some(redis::Value::BulkString(role)) if role == b"master" => Ok(()),
        other => Err(format!("node {port} answers ROLE with {other:?}")),
    }
}

/// Checks that the replica at `url` (on `port`) is in sync with its master
/// (`master_link_status:up`).
pub(crate) fn check_in_sync(port: u16, url: &str) -> Result<(), String> {
    let replication: String = query(url, redis::cmd("INFO").arg("replication"))
        .map_err(|e| format!("replica {port}: INFO replication: {e}"))?;
    match info_value(&replication, "master_link_status") {
        Some("up") => Ok(()),
        link => Err(format!("replica {port} has master_link_status {link:?}")),
    }
}

/// How many replicas of the primary at `url` (on `port`) acknowledged `target`, its
/// `master_repl_offset` on the first call (stored in `target` then).
pub(crate) fn replicas_caught_up(
    port: u16,
    url: &str,
    target: &mut Option<u64>,
) -> Result<usize, String> {
    let replication: String = query(url, redis::cmd("INFO").arg("replication"))
        .map_err(|e| format!("primary {port}: INFO replication: {e}"))?;
    let offset = info_value(&replication, "master_repl_offset")
        .and_then(|offset| offset.parse::<u64>().ok())
        .ok_or_else(|| format!("primary {port} reports no master_repl_offset"))?;
    let target = *target.get_or_insert(offset);
    Ok(replication
        .lines()
        .filter(|line| line.starts_with("slave") && line.contains(":ip="))
        .filter(|line| replica_field(line, "state") == Some("online"))
        .filter_map(|line| replica_field(line, "offset")?.parse::<u64>().ok())
        .filter(|acked| *acked >= target)
        .count())
}

/// The value of `name` in a replica's line of `INFO replication`
/// (`slave0:ip=127.0.0.1,port=6380,state=online,offset=42,lag=0`).
fn replica_field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let (_, fields) = line.split_once(':')?;
    fields
        .split(',')
        .find_map(|field| field.strip_prefix(name)?.strip_prefix('='))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replica_line_of_info_replication_gives_its_state_and_offset() {
        let line = "slave0:ip=127.0.0.1,port=6380,state=online,offset=42,lag=0";
        assert_eq!(replica_field(line, "state"), Some("online"));
        assert_eq!(replica_field(line, "offset"), Some("42"));
        assert_eq!(replica_field(line, "port"), Some("6380"));
        assert_eq!(replica_field(line, "off"), None);
    }
}
