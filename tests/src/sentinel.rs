//! A throwaway local Redis Sentinel set-up: a master, a replica and 3 Sentinels, all real
//! `redis-server` processes.
//!
//! [`RedisSentinels::start`] starts the master and a replica (`--replicaof`) as
//! [`RedisServer`]s, then 3 `redis-server sentinel.conf --sentinel` processes, each with
//! its own generated `sentinel.conf` (`sentinel monitor <name> 127.0.0.1 <port> 2`, a
//! master down after 1 s, a failover time-out of 4 s, `auth-pass` when the data nodes need
//! a password), every one in its own temporary directory on a free port of 127.0.0.1. It
//! waits until every Sentinel sees the master, the replica in sync and the 2 other
//! Sentinels. A failover takes a few seconds. Every process is killed, and its directory
//! removed, on drop.
//!
//! Data nodes are named by their port: every process listens on 127.0.0.1.
//!
//! ```no_run
//! use tests::sentinel::RedisSentinels;
//!
//! let mut sentinels = RedisSentinels::start();
//! let list = sentinels.sentinel_list(); // "127.0.0.1:p1,...", for CACHE_REDIS_SENTINELS
//! assert_eq!(sentinels.master_name(), "mymaster");
//! let mut conn = sentinels.master().connection();
//! sentinels.reset_stats();
//! let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut conn).unwrap();
//! assert_eq!(sentinels.master().command_count("set"), 1);
//!
//! let old = sentinels.kill_master(); // SIGKILL, like `kill -9`
//! let took = sentinels.wait_for_failover(); // the replica is the master now
//! assert_ne!(sentinels.master_port(), old);
//!
//! let secured = RedisSentinels::builder()
//!     .master_name("cache")
//!     .requirepass("data-pass") // for the master and the replica
//!     .sentinel_password("sentinel-pass") // for the Sentinels
//!     .start();
//! ```
//!
//! `redis-server` must be on `PATH`; without it every start panics with install
//! instructions, so a missing server never passes a test silently.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::{RedisServer, RedisServerBuilder, StartError, TlsCa, probe};

/// How many Sentinels watch the master.
const SENTINELS: usize = 3;
/// How many Sentinels must agree that the master is down.
const QUORUM: usize = 2;
/// How long the set-up may take to become healthy.
const FORM_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a failover may take beyond the down-after time.
const FAILOVER_GRACE: Duration = Duration::from_secs(30);

/// The options of a Sentinel set-up; see [`RedisSentinels::builder`].
#[derive(Clone)]
#[must_use]
pub struct RedisSentinelsBuilder {
    master_name: String,
    requirepass: Option<String>,
    sentinel_password: Option<String>,
    sentinel_user: Option<(String, String)>,
    sentinel_tls: bool,
    data_tls: bool,
    down_after: Duration,
    failover_timeout: Duration,
}

impl Default for RedisSentinelsBuilder {
    fn default() -> Self {
        Self {
            master_name: "mymaster".into(),
            requirepass: None,
            sentinel_password: None,
            sentinel_user: None,
            sentinel_tls: false,
            data_tls: false,
            down_after: Duration::from_secs(1),
            failover_timeout: Duration::from_secs(4),
        }
    }
}

impl fmt::Debug for RedisSentinelsBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSentinelsBuilder")
            .field("master_name", &self.master_name)
            .field("requirepass", &self.requirepass.is_some())
            .field("sentinel_password", &self.sentinel_password.is_some())
            .field(
                "sentinel_user",
                &self.sentinel_user.as_ref().map(|(name, _)| name),
            )
            .field("sentinel_tls", &self.sentinel_tls)
            .field("data_tls", &self.data_tls)
            .field("down_after", &self.down_after)
            .field("failover_timeout", &self.failover_timeout)
            .finish()
    }
}

impl RedisSentinelsBuilder {
    /// The name the Sentinels know the master by (`mymaster` by default; letters, digits,
    /// `.`, `-` and `_`).
    pub fn master_name(mut self, name: impl Into<String>) -> Self {
        self.master_name = name.into();
        self
    }

    /// Requires this password on the master and the replica (`--requirepass`, with
    /// `--masterauth` so that either can sync from the other, and `sentinel auth-pass` so
    /// that the Sentinels can log in).
    pub fn requirepass(mut self, password: impl Into<String>) -> Self {
        self.requirepass = Some(password.into());
        self
    }

    /// Requires this password on the Sentinels themselves (`requirepass` on each, and
    /// `sentinel sentinel-pass` so that they can talk to each other).
    pub fn sentinel_password(mut self, password: impl Into<String>) -> Self {
        self.sentinel_password = Some(password.into());
        self
    }

    /// Adds an ACL user `name` with `password` on every Sentinel, allowed exactly what the
    /// cache needs: `SENTINEL GET-MASTER-ADDR-BY-NAME`, `PING` and `SUBSCRIBE` of
    /// `+switch-master` (`user <name> on ><password> +sentinel|get-master-addr-by-name
    /// +ping +subscribe &+switch-master`).
    pub fn sentinel_user(mut self, name: impl Into<String>, password: impl Into<String>) -> Self {
        self.sentinel_user = Some((name.into(), password.into()));
        self
    }

    /// Serves the Sentinels over TLS on their [`port`](RedisServer::port) (each with its own
    /// CA, [`RedisServer::tls_ca_cert`]), with a plain port beside it that the Sentinels
    /// announce to each other and the harness uses
    /// ([`RedisServerBuilder::tls`](crate::RedisServerBuilder::tls)). The data nodes stay
    /// plain.
    pub fn sentinel_tls(mut self) -> Self {
        self.sentinel_tls = true;
        self
    }

    /// Serves everything over TLS with one CA ([`RedisSentinels::tls_ca_cert`]): the data
    /// nodes and the Sentinels on their [`port`](RedisServer::port)s, with
    /// `tls-replication yes` everywhere, so that the replica syncs over TLS and the Sentinels
    /// talk TLS to the data nodes and to each other, and report the data nodes' TLS ports.
    /// Each keeps a plain port for the harness.
    pub fn all_tls(mut self) -> Self {
        self.data_tls = true;
        self
    }

    /// How long the master may not answer before a Sentinel considers it down
    /// (`sentinel down-after-milliseconds`, 1 s by default).
    pub fn down_after(mut self, after: Duration) -> Self {
        self.down_after = after;
        self
    }

    /// `sentinel failover-timeout` (4 s by default): how long a failover may take before
    /// another one is tried.
    pub fn failover_timeout(mut self, timeout: Duration) -> Self {
        self.failover_timeout = timeout;
        self
    }

    /// Starts the data nodes and the Sentinels, and waits until every Sentinel sees the
    /// master, the replica and the other Sentinels.
    ///
    /// # Panics
    ///
    /// If `redis-server` is not installed, or the set-up does not become healthy (the
    /// panic message says why).
    pub fn start(self) -> RedisSentinels {
        self.try_start().unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts the set-up and waits until it is healthy, or says why it could not.
    pub fn try_start(self) -> Result<RedisSentinels, StartError> {
        let name_ok = !self.master_name.is_empty()
            && (self.master_name.chars())
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        if !name_ok {
            return Err(StartError::new(format!(
                "the master name {:?} must be letters, digits, `.`, `-` and `_`",
                self.master_name
            )));
        }
        let ca = match self.data_tls {
            true => Some(Arc::new(TlsCa::generate()?)),
            false => None,
        };
        let master = self.data_options(ca.as_ref()).try_start()?;
        let replica = self
            .data_options(ca.as_ref())
            .arg("--replicaof")
            .arg("127.0.0.1")
            .arg(master.port().to_string())
            .try_start()?;
        let config = self.sentinel_config(master.port());
        let sentinels = (0..SENTINELS)
            .map(|_| {
                let mut sentinel = RedisServer::builder().sentinel(config.clone());
                if let Some(ca) = &ca {
                    sentinel = sentinel
                        .tls_signed_by(ca.clone())
                        .arg("--tls-replication")
                        .arg("yes");
                } else if self.sentinel_tls {
                    sentinel = sentinel.tls();
                }
                match &self.sentinel_password {
                    Some(password) => sentinel.requirepass(password.clone()),
                    None => sentinel,
                }
                .try_start()
            })
            .collect::<Result<Vec<_>, _>>()?;
        let set_up = RedisSentinels {
            data: vec![master, replica],
            sentinels,
            options: self,
            last_kill: None,
        };
        set_up.wait_until_formed().map_err(|(reason, waited)| {
            StartError::new(format!(
                "the Sentinel set-up did not become healthy within {waited:?}: {reason}"
            ))
        })?;
        Ok(set_up)
    }

    fn data_options(&self, ca: Option<&Arc<TlsCa>>) -> RedisServerBuilder {
        // Replicas sync at once, not after the default 5 s wait for more replicas.
        let mut node = RedisServer::builder()
            .arg("--repl-diskless-sync-delay")
            .arg("0");
        if let Some(ca) = ca {
            node = node
                .tls_signed_by(ca.clone())
                .arg("--tls-replication")
                .arg("yes");
        }
        match &self.requirepass {
            Some(password) => node
                .requirepass(password.clone())
                .arg("--masterauth")
                .arg(password.clone()),
            None => node,
        }
    }

    /// The `sentinel.conf` of every Sentinel.
    fn sentinel_config(&self, master_port: u16) -> String {
        let name = &self.master_name;
        let mut config = format!(
            "sentinel monitor {name} 127.0.0.1 {master_port} {QUORUM}\n\
             sentinel down-after-milliseconds {name} {}\n\
             sentinel failover-timeout {name} {}\n",
            self.down_after.as_millis().max(1),
            self.failover_timeout.as_millis().max(1),
        );
        if let Some(password) = &self.requirepass {
            config += &format!("sentinel auth-pass {name} {}\n", quoted(password));
        }
        if let Some(password) = &self.sentinel_password {
            config += &format!("sentinel sentinel-pass {}\n", quoted(password));
        }
        if let Some((user, password)) = &self.sentinel_user {
            config += &format!(
                "user {user} on >{password} +sentinel|get-master-addr-by-name +ping +subscribe \
                 &+switch-master\n"
            );
        }
        config
    }
}

/// `value` as a double-quoted configuration-file string.
fn quoted(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A running local Sentinel set-up; every process is killed, and its directory removed, on
/// drop.
pub struct RedisSentinels {
    /// The first master, then the first replica.
    data: Vec<RedisServer>,
    sentinels: Vec<RedisServer>,
    options: RedisSentinelsBuilder,
    last_kill: Option<(Instant, u16)>,
}

impl fmt::Debug for RedisSentinels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSentinels")
            .field("data", &self.data)
            .field("sentinels", &self.sentinels)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl RedisSentinels {
    /// A master `mymaster`, a replica and 3 Sentinels; see [`RedisSentinelsBuilder::start`].
    pub fn start() -> Self {
        Self::builder().start()
    }

    /// A builder for a set-up with options.
    pub fn builder() -> RedisSentinelsBuilder {
        RedisSentinelsBuilder::default()
    }

    /// The name the Sentinels know the master by.
    pub fn master_name(&self) -> &str {
        &self.options.master_name
    }

    /// The password of the data nodes, if any.
    pub fn password(&self) -> Option<&str> {
        self.options.requirepass.as_deref()
    }

    /// The password of the Sentinels, if any.
    pub fn sentinel_password(&self) -> Option<&str> {
        self.options.sentinel_password.as_deref()
    }

    /// The PEM certificate of the CA of an [`all_tls`](RedisSentinelsBuilder::all_tls)
    /// set-up, which signed every node's and Sentinel's certificate.
    pub fn tls_ca_cert(&self) -> Option<Vec<u8>> {
        self.options.data_tls.then(|| self.data[0].tls_ca_cert())?
    }

    /// The Sentinels' ACL user and its password, if any
    /// ([`RedisSentinelsBuilder::sentinel_user`]).
    pub fn sentinel_user(&self) -> Option<(&str, &str)> {
        let (name, password) = self.options.sentinel_user.as_ref()?;
        Some((name, password))
    }

    /// The Sentinel processes, killed ones included.
    pub fn sentinels(&self) -> &[RedisServer] {
        &self.sentinels
    }

    /// The Sentinel at `index` (in [`sentinel_addrs`](Self::sentinel_addrs) order), to
    /// pause, kill or restart it.
    ///
    /// # Panics
    ///
    /// If there is no Sentinel at `index`.
    pub fn sentinel_mut(&mut self, index: usize) -> &mut RedisServer {
        &mut self.sentinels[index]
    }

    /// `127.0.0.1:port` of every Sentinel, the form `CACHE_REDIS_SENTINELS` takes.
    pub fn sentinel_addrs(&self) -> Vec<String> {
        self.sentinels
            .iter()
            .map(|sentinel| format!("127.0.0.1:{}", sentinel.port()))
            .collect()
    }

    /// [`sentinel_addrs`](Self::sentinel_addrs) joined with commas.
    pub fn sentinel_list(&self) -> String {
        self.sentinel_addrs().join(",")
    }

    /// The data nodes: the first master, then the first replica (killed ones included).
    pub fn data_nodes(&self) -> &[RedisServer] {
        &self.data
    }

    /// The data node on `port`.
    ///
    /// # Panics
    ///
    /// If no data node of this set-up listens on `port`.
    pub fn data_node(&self, port: u16) -> &RedisServer {
        self.data
            .iter()
            .find(|node| node.port() == port)
            .unwrap_or_else(|| panic!("no data node of this set-up on port {port}"))
    }

    /// The data node on `port`, to pause, kill or restart it.
    ///
    /// # Panics
    ///
    /// If no data node of this set-up listens on `port`.
    pub fn data_node_mut(&mut self, port: u16) -> &mut RedisServer {
        self.data
            .iter_mut()
            .find(|node| node.port() == port)
            .unwrap_or_else(|| panic!("no data node of this set-up on port {port}"))
    }

    /// The port of the master as the first Sentinel that answers reports it now
    /// (`SENTINEL GET-MASTER-ADDR-BY-NAME`).
    ///
    /// # Panics
    ///
    /// If no Sentinel answers.
    pub fn master_port(&self) -> u16 {
        self.sentinels
            .iter()
            .find_map(|sentinel| self.reported_master(sentinel).ok())
            .expect("a Sentinel reports the master's address")
    }

    /// `127.0.0.1:port` of the master, as [`master_port`](Self::master_port) finds it.
    pub fn master_addr(&self) -> String {
        format!("127.0.0.1:{}", self.master_port())
    }

    /// The data node that is the master now, as [`master_port`](Self::master_port) finds
    /// it.
    pub fn master(&self) -> &RedisServer {
        self.data_node(self.master_port())
    }

    /// Kills the master with `SIGKILL` (as `kill -9`) and returns its port;
    /// [`wait_for_failover`](Self::wait_for_failover) then waits for the Sentinels to
    /// promote the replica.
    ///
    /// # Panics
    ///
    /// If no Sentinel answers.
    pub fn kill_master(&mut self) -> u16 {
        let port = self.master_port();
        self.data_node_mut(port).kill();
        self.last_kill = Some((Instant::now(), port));
        port
    }

    /// Waits until every running Sentinel reports the same new master, and that node
    /// answers `ROLE` as a master; returns the time from [`kill_master`](Self::kill_master).
    ///
    /// # Panics
    ///
    /// If no master was killed, or the failover does not happen within 30 s beyond the
    /// down-after time.
    pub fn wait_for_failover(&mut self) -> Duration {
        let (at, killed) = self.last_kill.take().expect("kill_master was called first");
        let timeout = self.options.down_after + FAILOVER_GRACE;
        match probe::wait_for(timeout.saturating_sub(at.elapsed()), || {
            self.failed_over(killed)
        }) {
            Ok(((), _)) => at.elapsed(),
            Err((reason, _)) => panic!(
                "no failover of the master on port {killed} within {:?} of its kill: {reason}",
                at.elapsed()
            ),
        }
    }

    /// How many times `command` (e.g. `"get"`) ran on each running data node since start
    /// or [`reset_stats`](Self::reset_stats), by port. A replica also counts the writes it
    /// replays from the master.
    pub fn command_counts(&self, command: &str) -> BTreeMap<u16, u64> {
        self.running_data()
            .map(|node| (node.port(), node.command_count(command)))
            .collect()
    }

    /// Resets the command statistics of every running data node
    /// ([`RedisServer::reset_stats`]).
    pub fn reset_stats(&self) {
        self.running_data().for_each(RedisServer::reset_stats);
    }

    fn running_data(&self) -> impl Iterator<Item = &RedisServer> {
        self.data.iter().filter(|node| node.pid().is_some())
    }

    /// The master's port as `sentinel` reports it.
    fn reported_master(&self, sentinel: &RedisServer) -> Result<u16, String> {
        let cmd = redis::cmd("SENTINEL")
            .arg("GET-MASTER-ADDR-BY-NAME")
            .arg(self.master_name())
            .clone();
        let (_, port): (String, u16) = probe::query(&sentinel.plain_url(), &cmd)
            .map_err(|e| format!("sentinel {}: GET-MASTER-ADDR-BY-NAME: {e}", sentinel.port()))?;
        Ok(port)
    }

    /// `SENTINEL <subcommand> <master name>` on `sentinel`.
    fn ask<T: redis::FromRedisValue>(
        &self,
        sentinel: &RedisServer,
        subcommand: &str,
    ) -> Result<T, String> {
        let cmd = redis::cmd("SENTINEL")
            .arg(subcommand)
            .arg(self.master_name())
            .clone();
        probe::query(&sentinel.plain_url(), &cmd)
            .map_err(|e| format!("sentinel {}: SENTINEL {subcommand}: {e}", sentinel.port()))
    }

    /// Checks once that the replica is in sync and every Sentinel sees the master, the
    /// replica and the other Sentinels.
    fn wait_until_formed(&self) -> Result<((), Duration), (String, Duration)> {
        let (master, replica) = (self.data[0].port(), self.data[1].port());
        probe::wait_for(FORM_TIMEOUT, || {
            probe::check_in_sync(replica, &self.data[1].plain_url())?;
            for sentinel in &self.sentinels {
                let at = sentinel.port();
                let reported = self.reported_master(sentinel)?;
                if reported != master {
                    return Err(format!("sentinel {at} reports the master on {reported}"));
                }
                let state: HashMap<String, String> = self.ask(sentinel, "MASTER")?;
                if state.get("flags").map(String::as_str) != Some("master") {
                    return Err(format!("sentinel {at} sees the master as {state:?}"));
                }
                let replicas: Vec<HashMap<String, String>> = self.ask(sentinel, "REPLICAS")?;
                let in_sync = replicas.iter().any(|r| {
                    r.get("port") == Some(&replica.to_string())
                        && r.get("flags").map(String::as_str) == Some("slave")
                        && r.get("master-link-status").map(String::as_str) == Some("ok")
                });
                if !in_sync {
                    return Err(format!("sentinel {at} sees the replicas {replicas:?}"));
                }
                let others: Vec<HashMap<String, String>> = self.ask(sentinel, "SENTINELS")?;
                if others.len() != SENTINELS - 1 {
                    return Err(format!(
                        "sentinel {at} sees {} other sentinels",
                        others.len()
                    ));
                }
            }
            Ok(())
        })
    }

    /// Checks once that every running Sentinel reports the same master, not `killed`, and
    /// that it answers `ROLE` as a master.
    fn failed_over(&self, killed: u16) -> Result<(), String> {
        let mut reported = None;
        for sentinel in self.sentinels.iter().filter(|s| s.pid().is_some()) {
            let port = self.reported_master(sentinel)?;
            if port == killed || reported.is_some_and(|p| p != port) {
                return Err(format!(
                    "sentinel {} reports the master on {port}",
                    sentinel.port()
                ));
            }
            reported = Some(port);
        }
        let master = reported.ok_or("no Sentinel runs")?;
        probe::check_master(master, &self.data_node(master).plain_url())
    }
}
