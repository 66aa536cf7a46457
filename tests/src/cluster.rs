//! A throwaway local Redis Cluster: primaries and replicas as real `redis-server` processes.
//!
//! [`RedisCluster::start`] starts each node as a [`RedisServer`] with `--cluster-enabled
//! yes` (its own temporary directory, persistence off) on a free port p of 127.0.0.1 whose
//! cluster bus port p + 10000 is free too, both below the ephemeral range; it then forms
//! the cluster with `redis-cli --cluster create ... --cluster-replicas N --cluster-yes` and
//! waits until every node reports `cluster_state:ok`, all 16384 slots served, every node
//! known and every replica in sync. The node time-out is short (2 s by default), so a
//! failover takes a few seconds. Every node is killed, and its directory removed, on drop.
//!
//! Nodes are named by their port: every node listens on 127.0.0.1.
//!
//! ```no_run
//! use tests::cluster::RedisCluster;
//!
//! let mut cluster = RedisCluster::start(); // 3 primaries, 1 replica each
//! let seeds = cluster.seed_list(); // "127.0.0.1:p1,127.0.0.1:p2,...", for CACHE_REDIS_CLUSTER
//! let shard = cluster.shard_of("user:1"); // the primary, its replicas, its slots
//! let mut conn = cluster.node(shard.primary).connection();
//! cluster.reset_stats();
//! let _: () = redis::cmd("SET").arg("user:1").arg("v").query(&mut conn).unwrap();
//! assert_eq!(cluster.command_count("set"), 1);
//!
//! let killed = cluster.kill_primary_of("user:1"); // SIGKILL, like `kill -9`
//! let took = cluster.wait_for_failover(); // a replica now serves the slots
//! assert_ne!(cluster.shard_of("user:1").primary, killed);
//!
//! let secured = RedisCluster::builder()
//!     .primaries(3)
//!     .replicas_per_primary(0)
//!     .requirepass("s3cret")
//!     .arg("--hz")
//!     .arg("50")
//!     .start();
//! ```
//!
//! `redis-server` and `redis-cli` must be on `PATH`; without them every start panics with
//! install instructions, so a missing server never passes a test silently.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::RangeInclusive;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{RedisServer, StartError, host, probe};

/// The message when `redis-cli` is missing.
pub const CLI_NOT_FOUND: &str = "redis-cli not found: install it with \
     `sudo apt-get install redis-tools` (Debian/Ubuntu; redis-server depends on it) or \
     `brew install redis` (macOS)";

/// The number of hash slots of every Redis Cluster.
pub const SLOTS: u16 = 16_384;

/// How long `redis-cli --cluster create` and the wait for a healthy cluster may take.
const FORM_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a failover may take beyond the node time-out.
const FAILOVER_GRACE: Duration = Duration::from_secs(30);

/// The options of a cluster; see [`RedisCluster::builder`].
#[derive(Clone)]
#[must_use]
pub struct RedisClusterBuilder {
    primaries: usize,
    replicas: usize,
    requirepass: Option<String>,
    node_timeout: Duration,
    args: Vec<String>,
}

impl Default for RedisClusterBuilder {
    fn default() -> Self {
        Self {
            primaries: 3,
            replicas: 1,
            requirepass: None,
            node_timeout: Duration::from_secs(2),
            args: Vec::new(),
        }
    }
}

impl fmt::Debug for RedisClusterBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisClusterBuilder")
            .field("primaries", &self.primaries)
            .field("replicas", &self.replicas)
            .field("requirepass", &self.requirepass.is_some())
            .field("node_timeout", &self.node_timeout)
            .finish_non_exhaustive()
    }
}

impl RedisClusterBuilder {
    /// How many primaries share the slots (3 by default; `redis-cli` needs at least 3).
    pub fn primaries(mut self, primaries: usize) -> Self {
        self.primaries = primaries;
        self
    }

    /// How many replicas each primary has (1 by default).
    pub fn replicas_per_primary(mut self, replicas: usize) -> Self {
        self.replicas = replicas;
        self
    }

    /// Requires this password from the default user on every node (`--requirepass`, and
    /// `--masterauth` so that replicas can sync).
    pub fn requirepass(mut self, password: impl Into<String>) -> Self {
        self.requirepass = Some(password.into());
        self
    }

    /// How long a node may be unreachable before it is considered failed
    /// (`--cluster-node-timeout`, 2 s by default, in whole milliseconds).
    pub fn node_timeout(mut self, timeout: Duration) -> Self {
        self.node_timeout = timeout;
        self
    }

    /// Adds a raw command-line argument to every node (`"--hz"`, then `"50"`).
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Starts the nodes, forms the cluster and waits until it is healthy.
    ///
    /// # Panics
    ///
    /// If `redis-server` or `redis-cli` is not installed, or the cluster does not form (the
    /// panic message says why).
    pub fn start(self) -> RedisCluster {
        self.try_start().unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts the nodes, forms the cluster and waits until it is healthy, or says why it
    /// could not.
    pub fn try_start(self) -> Result<RedisCluster, StartError> {
        crate::find_binary()?;
        let cli = host::program("redis-cli").ok_or_else(|| StartError::new(CLI_NOT_FOUND))?;
        if self.primaries < 3 {
            return Err(StartError::new(format!(
                "a cluster needs at least 3 primaries (redis-cli refuses fewer), not {}",
                self.primaries
            )));
        }
        let count = self.primaries * (1 + self.replicas);
        let nodes = (0..count)
            .map(|_| self.node_options().try_start())
            .collect::<Result<Vec<_>, _>>()?;
        let cluster = RedisCluster {
            nodes,
            options: self,
            last_kill: None,
        };
        cluster.create(&cli)?;
        cluster.wait_until_formed().map_err(|(reason, waited)| {
            StartError::new(format!(
                "the cluster did not become healthy within {waited:?}: {reason}"
            ))
        })?;
        Ok(cluster)
    }

    fn node_options(&self) -> crate::RedisServerBuilder {
        let millis = self.node_timeout.as_millis().max(1).to_string();
        let mut node = RedisServer::builder()
            .cluster_bus()
            .arg("--cluster-enabled")
            .arg("yes")
            .arg("--cluster-node-timeout")
            .arg(millis)
            // A replica may take over however long it has been out of sync: right after
            // start, or on a busy machine, it must not refuse to.
            .arg("--cluster-replica-validity-factor")
            .arg("0")
            // Replicas sync at once, not after the default 5 s wait for more replicas.
            .arg("--repl-diskless-sync-delay")
            .arg("0");
        if let Some(password) = &self.requirepass {
            node = node
                .requirepass(password.clone())
                .arg("--masterauth")
                .arg(password.clone());
        }
        self.args
            .iter()
            .fold(node, |node, arg| node.arg(arg.clone()))
    }
}

/// A running local Redis Cluster; every node is killed, and its directory removed, on drop.
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
    options: RedisClusterBuilder,
    last_kill: Option<Kill>,
}

/// The primary that [`RedisCluster::kill_primary_of`] killed.
#[derive(Debug, Clone, Copy)]
struct Kill {
    at: Instant,
    port: u16,
    /// A slot it served, which a replica must take over.
    slot: u16,
}

impl fmt::Debug for RedisCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCluster")
            .field("nodes", &self.nodes)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// One primary and what it serves, as a node of the cluster sees it (`CLUSTER NODES`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Shard {
    /// The primary's port on 127.0.0.1 (it may be failed, until a replica takes over).
    pub primary: u16,
    /// The ports of its replicas that are not failed.
    pub replicas: Vec<u16>,
    /// The slots it serves, as inclusive ranges in ascending order.
    pub slots: Vec<RangeInclusive<u16>>,
}

impl Shard {
    /// True if this shard serves `slot`.
    pub fn serves(&self, slot: u16) -> bool {
        self.slots.iter().any(|range| range.contains(&slot))
    }
}

impl RedisCluster {
    /// A cluster of 3 primaries with 1 replica each; see [`RedisClusterBuilder::start`].
    pub fn start() -> Self {
        Self::builder().start()
    }

    /// A builder for a cluster with options.
    pub fn builder() -> RedisClusterBuilder {
        RedisClusterBuilder::default()
    }

    /// Every node started, primaries and replicas, killed ones included, in start order.
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// The node on `port`.
    ///
    /// # Panics
    ///
    /// If no node of this cluster listens on `port`.
    pub fn node(&self, port: u16) -> &RedisServer {
        self.nodes
            .iter()
            .find(|node| node.port() == port)
            .unwrap_or_else(|| panic!("no node of this cluster on port {port}"))
    }

    /// The node on `port`, to pause, kill or restart it ([`RedisServer::restart`] keeps its
    /// directory, so it rejoins the cluster with the node id it had).
    ///
    /// # Panics
    ///
    /// If no node of this cluster listens on `port`.
    pub fn node_mut(&mut self, port: u16) -> &mut RedisServer {
        self.nodes
            .iter_mut()
            .find(|node| node.port() == port)
            .unwrap_or_else(|| panic!("no node of this cluster on port {port}"))
    }

    /// `127.0.0.1:port` of every running node, the form `CACHE_REDIS_CLUSTER` takes.
    pub fn seeds(&self) -> Vec<String> {
        self.running()
            .map(|node| format!("127.0.0.1:{}", node.port()))
            .collect()
    }

    /// [`seeds`](Self::seeds) joined with commas: `"127.0.0.1:p1,127.0.0.1:p2,..."`.
    pub fn seed_list(&self) -> String {
        self.seeds().join(",")
    }

    /// A `redis://[:requirepass@]127.0.0.1:port` URL for every running node.
    pub fn seed_urls(&self) -> Vec<String> {
        let credentials = match &self.options.requirepass {
            Some(password) => format!(":{password}@"),
            None => String::new(),
        };
        self.running()
            .map(|node| format!("redis://{credentials}127.0.0.1:{}", node.port()))
            .collect()
    }

    /// The password every node requires, if any.
    pub fn password(&self) -> Option<&str> {
        self.options.requirepass.as_deref()
    }

    /// The primaries in order of their first slot, with their replicas and slots, as the
    /// first running node that answers sees them now.
    ///
    /// # Panics
    ///
    /// If no node answers `CLUSTER NODES`.
    pub fn shards(&self) -> Vec<Shard> {
        let nodes = self
            .running()
            .find_map(|node| cluster_nodes(node).ok())
            .expect("a running node answers CLUSTER NODES");
        shards(&nodes)
    }

    /// The hash slot of `key` (`CLUSTER KEYSLOT`).
    ///
    /// # Panics
    ///
    /// If no node answers.
    pub fn slot_of(&self, key: &str) -> u16 {
        self.running()
            .find_map(|node| {
                probe::query(&node.url(), redis::cmd("CLUSTER").arg("KEYSLOT").arg(key)).ok()
            })
            .expect("a running node answers CLUSTER KEYSLOT")
    }

    /// The shard that serves `key`'s slot now.
    ///
    /// # Panics
    ///
    /// If no node answers.
    pub fn shard_of(&self, key: &str) -> Shard {
        let slot = self.slot_of(key);
        self.shards()
            .into_iter()
            .find(|shard| shard.serves(slot))
            .unwrap_or_else(|| panic!("no primary serves slot {slot}"))
    }

    /// The primary that holds `key` now.
    ///
    /// # Panics
    ///
    /// If no node answers.
    pub fn primary_of(&self, key: &str) -> &RedisServer {
        self.node(self.shard_of(key).primary)
    }

    /// Kills the primary that holds `key` with `SIGKILL` (as `kill -9`) and returns its
    /// port; [`wait_for_failover`](Self::wait_for_failover) then waits for a replica to take
    /// over.
    ///
    /// # Panics
    ///
    /// If no node answers.
    pub fn kill_primary_of(&mut self, key: &str) -> u16 {
        self.take_down_primary_of(key, RedisServer::kill)
    }

    /// Pauses the primary that holds `key` with `SIGSTOP` (hung, not dead: it accepts
    /// connections and answers nothing) and returns its port;
    /// [`wait_for_failover`](Self::wait_for_failover) then waits for a replica to take
    /// over. Resume it with [`node_mut`](Self::node_mut) and [`RedisServer::resume`]: it
    /// rejoins as a replica of the promoted node.
    ///
    /// # Panics
    ///
    /// If no node answers.
    pub fn pause_primary_of(&mut self, key: &str) -> u16 {
        self.take_down_primary_of(key, RedisServer::pause)
    }

    fn take_down_primary_of(&mut self, key: &str, take_down: fn(&mut RedisServer)) -> u16 {
        let shard = self.shard_of(key);
        let slot = *shard.slots[0].start();
        take_down(self.node_mut(shard.primary));
        self.last_kill = Some(Kill {
            at: Instant::now(),
            port: shard.primary,
            slot,
        });
        shard.primary
    }

    /// Waits until a replica of the primary that [`kill_primary_of`](Self::kill_primary_of)
    /// killed (or [`pause_primary_of`](Self::pause_primary_of) paused) serves its slots as a primary and every running node reports
    /// `cluster_state:ok` with all slots served again, and returns the time from the kill.
    ///
    /// # Panics
    ///
    /// If no primary was killed, or the failover does not happen within 30 s beyond the
    /// node time-out.
    pub fn wait_for_failover(&mut self) -> Duration {
        let kill = self
            .last_kill
            .take()
            .expect("kill_primary_of was called first");
        let timeout = self.options.node_timeout + FAILOVER_GRACE;
        let remaining = timeout.saturating_sub(kill.at.elapsed());
        match probe::wait_for(remaining, || self.failed_over(kill)) {
            Ok(((), _)) => kill.at.elapsed(),
            Err((reason, _)) => panic!(
                "no failover of the primary on port {} within {:?} of its kill: {reason}",
                kill.port,
                kill.at.elapsed()
            ),
        }
    }

    /// How many times `command` (e.g. `"get"`) ran on the current primaries together since
    /// start or [`reset_stats`](Self::reset_stats). Replicas are left out: they also count
    /// the writes they replay from their primary.
    pub fn command_count(&self, command: &str) -> u64 {
        self.shards()
            .iter()
            .filter(|shard| self.node(shard.primary).is_answering())
            .map(|shard| self.node(shard.primary).command_count(command))
            .sum()
    }

    /// The data commands the primaries ran since start or [`reset_stats`](Self::reset_stats),
    /// summed over them, each with its count: what tests send to inspect the nodes (`INFO`,
    /// `PING`, the reset) and the slot map reads (`CLUSTER ..`) are left out.
    pub fn data_commands(&self) -> BTreeMap<String, u64> {
        let mut sum = BTreeMap::new();
        for shard in self.shards() {
            for (name, stat) in self.node(shard.primary).command_stats() {
                let inspection = name == "info"
                    || name == "ping"
                    || name == "config|resetstat"
                    || name.starts_with("cluster|");
                if !inspection {
                    *sum.entry(name).or_insert(0) += stat.calls;
                }
            }
        }
        sum
    }

    /// How many times `command` ran on each running node, primaries and replicas, by port.
    pub fn command_counts(&self, command: &str) -> BTreeMap<u16, u64> {
        self.running()
            .map(|node| (node.port(), node.command_count(command)))
            .collect()
    }

    /// Resets the command statistics of every running node
    /// ([`RedisServer::reset_stats`]).
    pub fn reset_stats(&self) {
        self.running().for_each(RedisServer::reset_stats);
    }

    /// The nodes that were neither killed nor paused.
    fn running(&self) -> impl Iterator<Item = &RedisServer> {
        self.nodes.iter().filter(|node| node.is_answering())
    }

    /// Runs `redis-cli --cluster create` on every node.
    fn create(&self, cli: &std::path::Path) -> Result<(), StartError> {
        let mut command = Command::new(cli);
        if let Some(password) = &self.options.requirepass {
            command.arg("-a").arg(password).arg("--no-auth-warning");
        }
        command
            .arg("--cluster")
            .arg("create")
            .args(self.seeds())
            .arg("--cluster-replicas")
            .arg(self.options.replicas.to_string())
            .arg("--cluster-yes");
        let output = run(command, FORM_TIMEOUT)?;
        if output.contains("[OK] All 16384 slots covered") {
            Ok(())
        } else {
            Err(StartError::new(format!(
                "redis-cli --cluster create failed:\n{output}"
            )))
        }
    }

    /// Checks every node once: healthy, every node known, the expected shards, replicas in
    /// sync.
    fn wait_until_formed(&self) -> Result<((), Duration), (String, Duration)> {
        let expected = self.nodes.len();
        probe::wait_for(FORM_TIMEOUT, || {
            for node in &self.nodes {
                let port = node.port();
                let info = cluster_info(node)?;
                check_healthy(port, &info)?;
                let known = probe::info_value(&info, "cluster_known_nodes");
                if known != Some(&expected.to_string()) {
                    return Err(format!("node {port} knows {known:?} nodes of {expected}"));
                }
                let lines = cluster_nodes(node)?;
                let shards = shards(&lines);
                let complete = shards.len() == self.options.primaries
                    && shards
                        .iter()
                        .all(|shard| shard.replicas.len() == self.options.replicas);
                if !complete {
                    return Err(format!("node {port} sees the shards {shards:?}"));
                }
                let myself = lines.iter().find(|line| line.has_flag("myself"));
                if myself.is_some_and(|line| line.has_flag("slave")) {
                    probe::check_in_sync(port, &node.url())?;
                }
            }
            Ok(())
        })
    }

    /// Checks every running node once: healthy, and `kill.slot` served by a running
    /// primary that answers `ROLE` as one.
    fn failed_over(&self, kill: Kill) -> Result<(), String> {
        let mut promoted = None;
        for node in self.running() {
            let port = node.port();
            check_healthy(port, &cluster_info(node)?)?;
            let owner = shards(&cluster_nodes(node)?)
                .into_iter()
                .find(|shard| shard.serves(kill.slot))
                .map(|shard| shard.primary);
            match owner {
                Some(owner) if owner != kill.port && promoted.is_none_or(|p| p == owner) => {
                    promoted = Some(owner);
                }
                _ => return Err(format!("node {port} sees slot {} on {owner:?}", kill.slot)),
            }
        }
        let promoted = promoted.ok_or("no node runs")?;
        probe::check_master(promoted, &self.node(promoted).url())
    }
}

/// `CLUSTER INFO` of `node`.
fn cluster_info(node: &RedisServer) -> Result<String, String> {
    probe::query(&node.url(), redis::cmd("CLUSTER").arg("INFO"))
        .map_err(|e| format!("node {}: CLUSTER INFO: {e}", node.port()))
}

/// `CLUSTER NODES` of `node`, parsed.
fn cluster_nodes(node: &RedisServer) -> Result<Vec<NodeLine>, String> {
    let text: String = probe::query(&node.url(), redis::cmd("CLUSTER").arg("NODES"))
        .map_err(|e| format!("node {}: CLUSTER NODES: {e}", node.port()))?;
    Ok(text.lines().filter_map(NodeLine::parse).collect())
}

/// Checks that `CLUSTER INFO` says `cluster_state:ok` with every slot served.
fn check_healthy(port: u16, info: &str) -> Result<(), String> {
    let state = probe::info_value(info, "cluster_state");
    let slots_ok = probe::info_value(info, "cluster_slots_ok");
    if state == Some("ok") && slots_ok == Some(&SLOTS.to_string()) {
        Ok(())
    } else {
        Err(format!(
            "node {port} has cluster_state {state:?}, cluster_slots_ok {slots_ok:?}"
        ))
    }
}

/// Runs `command` to completion within `timeout`, and returns its standard output and error.
fn run(mut command: Command, timeout: Duration) -> Result<String, StartError> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| StartError::new(format!("cannot run {command:?}: {e}")))?;
    let deadline = Instant::now() + timeout;
    while matches!(child.try_wait(), Ok(None)) {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(StartError::new(format!(
                "{command:?} did not finish within {timeout:?}"
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child
        .wait_with_output()
        .map_err(|e| StartError::new(format!("cannot read the output of {command:?}: {e}")))?;
    Ok(format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    ))
}

/// One line of `CLUSTER NODES`:
/// `<id> <ip:port@cport[,hostname]> <flags> <primary id or -> <ping-sent> <pong-recv>
/// <config-epoch> <link-state> <slot or range>...`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct NodeLine {
    id: String,
    port: u16,
    flags: Vec<String>,
    primary_id: Option<String>,
    slots: Vec<RangeInclusive<u16>>,
}

impl NodeLine {
    fn parse(line: &str) -> Option<Self> {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [id, address, flags, primary, _, _, _, _, slots @ ..] = fields.as_slice() else {
            return None;
        };
        let (_, port) = address
            .split(['@', ','].as_slice())
            .next()?
            .rsplit_once(':')?;
        let slots = slots
            .iter()
            // `[slot->-id]` and `[slot-<-id]`: a slot being migrated, still served here.
            .filter(|slot| !slot.starts_with('['))
            .map(|slot| match slot.split_once('-') {
                Some((start, end)) => Some(start.parse().ok()?..=end.parse().ok()?),
                None => slot.parse().ok().map(|s| s..=s),
            })
            .collect::<Option<_>>()?;
        Some(Self {
            id: id.to_string(),
            port: port.parse().ok()?,
            flags: flags.split(',').map(str::to_string).collect(),
            primary_id: (*primary != "-").then(|| primary.to_string()),
            slots,
        })
    }

    fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    fn is_failed(&self) -> bool {
        self.has_flag("fail") || self.has_flag("fail?")
    }
}

/// The primaries that serve slots, in order of their first slot, with their replicas that
/// are not failed.
fn shards(lines: &[NodeLine]) -> Vec<Shard> {
    let mut shards: Vec<Shard> = lines
        .iter()
        .filter(|line| line.has_flag("master") && !line.slots.is_empty())
        .map(|primary| {
            let mut slots = primary.slots.clone();
            slots.sort_by_key(|range| *range.start());
            Shard {
                primary: primary.port,
                replicas: lines
                    .iter()
                    .filter(|line| line.primary_id.as_ref() == Some(&primary.id))
                    .filter(|line| line.has_flag("slave") && !line.is_failed())
                    .map(|line| line.port)
                    .collect(),
                slots,
            }
        })
        .collect();
    shards.sort_by_key(|shard| *shard.slots[0].start());
    shards
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODES: &str = "\
        e7d1 127.0.0.1:20001@30001 myself,master - 0 0 1 connected 0-5460\n\
        07c3 127.0.0.1:20004@30004,host4 slave e7d1 0 1426238317239 4 connected\n\
        67ed 127.0.0.1:20002@30002 master - 0 1426238316232 2 connected 10923-16383 5461 [5462->-292f]\n\
        292f 127.0.0.1:20003@30003 master,fail - 0 1426238318243 3 connected 5462-10922\n\
        824f 127.0.0.1:20005@30005 slave,fail? 67ed 0 1426238317741 5 connected\n";

    #[test]
    fn cluster_nodes_lines_parse_into_shards_by_first_slot() {
        let lines: Vec<NodeLine> = NODES.lines().filter_map(NodeLine::parse).collect();
        assert_eq!(lines.len(), 5);
        assert!(lines[0].has_flag("myself"));
        assert_eq!(lines[1].port, 20004);
        assert_eq!(lines[1].primary_id.as_deref(), Some("e7d1"));
        assert!(lines[4].is_failed());
        let shards = shards(&lines);
        let summary: Vec<(u16, Vec<u16>, Vec<RangeInclusive<u16>>)> = shards
            .into_iter()
            .map(|s| (s.primary, s.replicas, s.slots))
            .collect();
        assert_eq!(
            summary,
            [
                (20001, vec![20004], vec![0..=5460]),
                (20002, vec![], vec![5461..=5461, 10923..=16383]),
                (20003, vec![], vec![5462..=10922]),
            ]
        );
    }
}
