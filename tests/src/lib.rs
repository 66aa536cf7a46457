//! Throwaway `redis-server` processes for integration tests and the examples' end-to-end
//! tests.
//!
//! Each [`RedisServer`] runs in its own temporary directory on a free port of 127.0.0.1,
//! with persistence off (`--save "" --appendonly no`), and is killed and cleaned up when
//! dropped. Tests can pause it (`SIGSTOP`), kill it, restart it on the same port, and count
//! the commands it executed through `INFO commandstats`.
//!
//! ```no_run
//! use tests::RedisServer;
//!
//! let server = RedisServer::start();
//! let mut conn = server.connection();
//! server.reset_stats();
//! let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut conn).unwrap();
//! assert_eq!(server.command_count("set"), 1);
//!
//! let secured = RedisServer::builder()
//!     .requirepass("s3cret")
//!     .acl_user("app", "app-pass")
//!     .maxmemory("16mb", "allkeys-lru")
//!     .arg("--hz").arg("50")
//!     .start();
//! assert!(secured.url().starts_with("redis://:s3cret@127.0.0.1:"));
//! ```
//!
//! `redis-server` must be on `PATH`; without it every start panics with install
//! instructions, so a missing server never passes a test silently.
//!
//! [`cluster::RedisCluster`] (primaries and replicas, formed with `redis-cli`) and
//! [`sentinel::RedisSentinels`] (a master, a replica and 3 Sentinels) are made of such
//! servers, for tests of the Cluster and Sentinel deployments.

pub mod cluster;
pub mod deployment;
mod host;
pub mod logs;
mod probe;
pub mod sentinel;

/// The README's Rust snippets, compiled (and run where they can) as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The message when `redis-server` is missing.
pub const NOT_FOUND: &str = "redis-server not found: install it with \
     `sudo apt-get install redis-server` (Debian/Ubuntu) or `brew install redis` (macOS)";

/// How long a server may take to start.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Port collisions tolerated before giving up.
const START_ATTEMPTS: usize = 5;
/// How long [`RedisServer::wait_for_replicas`] waits.
const REPLICATION_TIMEOUT: Duration = Duration::from_secs(10);

/// An ACL user created at start-up with every permission.
#[derive(Clone, PartialEq, Eq)]
pub struct AclUser {
    /// The user name.
    pub name: String,
    /// The user's password.
    pub password: String,
}

impl fmt::Debug for AclUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AclUser")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The options of a server; see [`RedisServer::builder`].
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct RedisServerBuilder {
    requirepass: Option<String>,
    users: Vec<AclUser>,
    tls: bool,
    tls_ca: Option<std::sync::Arc<TlsCa>>,
    unix_socket: bool,
    maxmemory: Option<(String, String)>,
    args: Vec<String>,
    cluster_bus: bool,
    sentinel_config: Option<String>,
}

impl RedisServerBuilder {
    /// Requires this password from the default user (`--requirepass`).
    pub fn requirepass(mut self, password: impl Into<String>) -> Self {
        self.requirepass = Some(password.into());
        self
    }

    /// Creates an ACL user with every permission on every key (`--user name on >password
    /// ~* &* +@all`).
    pub fn acl_user(mut self, name: impl Into<String>, password: impl Into<String>) -> Self {
        self.users.push(AclUser {
            name: name.into(),
            password: password.into(),
        });
        self
    }

    /// Serves TLS only, with a certificate signed by a CA generated for this server (needs
    /// the `openssl` command). [`RedisServer::url`] is then a `rediss://` URL and
    /// [`RedisServer::tls_ca_cert`] the CA to trust; a second, plain port on 127.0.0.1 serves
    /// [`RedisServer::connection`] for inspection.
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// Serves TLS like [`tls`](Self::tls), with a certificate signed by `ca` (shared with
    /// other servers) instead of a CA of its own; its `tls-ca-cert-file` is `ca` too, so it
    /// trusts the others as a client (`--tls-replication yes`).
    pub fn tls_signed_by(mut self, ca: std::sync::Arc<TlsCa>) -> Self {
        self.tls = true;
        self.tls_ca = Some(ca);
        self
    }

    /// Also listens on a Unix socket in the server's directory; see
    /// [`RedisServer::unix_url`].
    pub fn unix_socket(mut self) -> Self {
        self.unix_socket = true;
        self
    }

    /// Caps memory (`--maxmemory`, e.g. `"16mb"`) with an eviction policy
    /// (`--maxmemory-policy`, e.g. `"allkeys-lru"`).
    pub fn maxmemory(mut self, bytes: impl Into<String>, policy: impl Into<String>) -> Self {
        self.maxmemory = Some((bytes.into(), policy.into()));
        self
    }

    /// Adds a raw command-line argument (`"--hz"`, then `"50"`).
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Picks the port below the ephemeral range, with its cluster bus port (port + 10000)
    /// free too, for a node started with `--cluster-enabled yes`.
    pub(crate) fn cluster_bus(mut self) -> Self {
        self.cluster_bus = true;
        self
    }

    /// Runs as a Sentinel (`redis-server sentinel.conf --sentinel`) on a `sentinel.conf`
    /// holding `config` (the command-line options still apply). The file is written once,
    /// so a restarted Sentinel keeps what it rewrote there (its id, the current master).
    pub(crate) fn sentinel(mut self, config: impl Into<String>) -> Self {
        self.sentinel_config = Some(config.into());
        self
    }

    /// Starts the server and waits until it accepts connections.
    ///
    /// # Panics
    ///
    /// If `redis-server` is not installed, or the server does not start (the panic message
    /// holds its log).
    pub fn start(self) -> RedisServer {
        self.try_start().unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts the server, or says why it could not (with its log).
    pub fn try_start(self) -> Result<RedisServer, StartError> {
        let binary = find_binary()?;
        let dir = tempfile::Builder::new()
            .prefix("redis-test-")
            .tempdir()
            .map_err(|e| StartError::new(format!("cannot create a temporary directory: {e}")))?;
        let tls = if self.tls {
            Some(TlsFiles::generate(dir.path(), self.tls_ca.as_deref())?)
        } else {
            None
        };
        if let Some(config) = &self.sentinel_config {
            let path = dir.path().join(SENTINEL_CONFIG);
            fs::write(&path, config)
                .map_err(|e| StartError::new(format!("cannot write {}: {e}", path.display())))?;
        }
        let mut server = RedisServer {
            binary,
            options: self,
            tls,
            ports: Ports {
                main: 0,
                admin: None,
            },
            child: None,
            paused: false,
            dir,
        };
        let mut last = None;
        for _ in 0..START_ATTEMPTS {
            server.ports = Ports {
                main: if server.options.cluster_bus {
                    host::free_port_with_bus().map_err(port_error)?
                } else {
                    free_port()?
                },
                admin: if server.tls.is_some() {
                    Some(free_port()?)
                } else {
                    None
                },
            };
            match server.spawn() {
                Ok(()) => return Ok(server),
                Err(e) if e.port_in_use => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| StartError::new("could not find a free port")))
    }
}

/// Why a server did not start.
#[derive(Debug, Clone)]
pub struct StartError {
    message: String,
    port_in_use: bool,
}

impl StartError {
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            port_in_use: false,
        }
    }

    /// True if the server binary was built without TLS support.
    pub fn is_tls_unsupported(&self) -> bool {
        let m = self.message.to_ascii_lowercase();
        m.contains("tls") && (m.contains("not supported") || m.contains("bad directive"))
    }
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StartError {}

#[derive(Debug, Clone, Copy)]
struct Ports {
    /// The port clients use (TLS for a TLS server).
    main: u16,
    /// A plain port for inspection when `main` is TLS.
    admin: Option<u16>,
}

/// The certificate files of a TLS server.
#[derive(Debug, Clone)]
struct TlsFiles {
    ca_cert: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl TlsFiles {
    /// A server certificate for 127.0.0.1 and localhost in `dir`, signed by `ca`, or by a
    /// CA made for it in `dir`; made with `openssl`.
    fn generate(dir: &Path, ca: Option<&TlsCa>) -> Result<Self, StartError> {
        let path = |name: &str| dir.join(name);
        let (ca_cert, ca_key) = match ca {
            Some(ca) => (ca.cert.clone(), ca.key.clone()),
            None => make_ca(dir)?,
        };
        let ext = path("server.ext");
        fs::write(
            &ext,
            "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n\
             extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )
        .map_err(|e| StartError::new(format!("cannot write {}: {e}", ext.display())))?;
        let p = |path: &Path| path.to_string_lossy().into_owned();
        openssl(
            ["req", "-subj", "/CN=127.0.0.1"]
                .iter()
                .chain(&EC_KEY)
                .map(|s| s.to_string())
                .chain([
                    "-keyout".into(),
                    p(&path("server.key")),
                    "-out".into(),
                    p(&path("server.csr")),
                ])
                .collect(),
        )?;
        openssl(
            [
                "x509",
                "-req",
                "-days",
                "2",
                "-in",
                &p(&path("server.csr")),
                "-CA",
                &p(&ca_cert),
                "-CAkey",
                &p(&ca_key),
                "-CAcreateserial",
                "-out",
                &p(&path("server.crt")),
                "-extfile",
                &p(&ext),
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        )?;
        Ok(Self {
            ca_cert,
            cert: path("server.crt"),
            key: path("server.key"),
        })
    }
}

/// A new elliptic-curve key, for `openssl req`.
const EC_KEY: [&str; 5] = [
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
];

/// A self-signed CA (`ca.crt`, `ca.key`) in `dir`.
fn make_ca(dir: &Path) -> Result<(PathBuf, PathBuf), StartError> {
    let (cert, key) = (dir.join("ca.crt"), dir.join("ca.key"));
    openssl(
        ["req", "-x509", "-days", "2", "-subj", "/CN=cache-tests CA"]
            .iter()
            .chain(&EC_KEY)
            .map(|s| s.to_string())
            .chain([
                "-keyout".into(),
                key.to_string_lossy().into_owned(),
                "-out".into(),
                cert.to_string_lossy().into_owned(),
            ])
            .collect(),
    )?;
    Ok((cert, key))
}

fn openssl(args: Vec<String>) -> Result<(), StartError> {
    let output = Command::new("openssl").args(&args).output().map_err(|e| {
        StartError::new(format!(
            "the `openssl` command is needed to make test certificates: {e}"
        ))
    })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(StartError::new(format!(
            "openssl {} failed: {}",
            args[0],
            String::from_utf8_lossy(&output.stderr)
        )))
    }
}

/// A CA that signs the certificates of several TLS servers
/// ([`RedisServerBuilder::tls_signed_by`]), so that they trust each other and a client
/// trusts all of them with one root certificate. Its directory is removed on drop.
#[derive(Debug)]
pub struct TlsCa {
    cert: PathBuf,
    key: PathBuf,
    _dir: tempfile::TempDir,
}

impl TlsCa {
    /// Makes a CA with `openssl`.
    pub fn generate() -> Result<Self, StartError> {
        let dir = tempfile::Builder::new()
            .prefix("redis-test-ca-")
            .tempdir()
            .map_err(|e| StartError::new(format!("cannot create a temporary directory: {e}")))?;
        let (cert, key) = make_ca(dir.path())?;
        Ok(Self {
            cert,
            key,
            _dir: dir,
        })
    }

    /// The CA's PEM certificate, for clients to trust.
    pub fn cert_pem(&self) -> Vec<u8> {
        fs::read(&self.cert).expect("the CA certificate is readable")
    }
}

/// A running `redis-server`; killed, and its directory removed, on drop.
///
/// ```no_run
/// let mut server = tests::RedisServer::start();
/// let url = server.url(); // redis://127.0.0.1:<port>/0
/// server.pause(); // SIGSTOP: connections hang
/// server.resume();
/// ```
pub struct RedisServer {
    binary: PathBuf,
    options: RedisServerBuilder,
    tls: Option<TlsFiles>,
    ports: Ports,
    child: Option<Child>,
    paused: bool,
    dir: tempfile::TempDir,
}

impl fmt::Debug for RedisServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisServer")
            .field("port", &self.ports.main)
            .field("tls", &self.tls.is_some())
            .field("pid", &self.child.as_ref().map(Child::id))
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

impl RedisServer {
    /// A server with default options; see [`RedisServerBuilder::start`].
    pub fn start() -> Self {
        Self::builder().start()
    }

    /// A builder for a server with options.
    pub fn builder() -> RedisServerBuilder {
        RedisServerBuilder::default()
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.ports.main
    }

    /// The URL of database 0 for the default user: `redis://[:requirepass@]127.0.0.1:port/0`,
    /// or `rediss://...` for a TLS server.
    pub fn url(&self) -> String {
        match &self.options.requirepass {
            Some(password) => self.url_with(&format!(":{password}@")),
            None => self.url_with(""),
        }
    }

    /// The URL for the ACL user `name` with `password`.
    pub fn url_for_user(&self, name: &str, password: &str) -> String {
        self.url_with(&format!("{name}:{password}@"))
    }

    fn url_with(&self, credentials: &str) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://{credentials}127.0.0.1:{}/0", self.ports.main)
    }

    /// The `unix://` URL of database 0, for a server started with
    /// [`RedisServerBuilder::unix_socket`].
    pub fn unix_url(&self) -> Option<String> {
        self.options.unix_socket.then(|| {
            let socket = self.dir.path().join("redis.sock");
            match &self.options.requirepass {
                Some(password) => format!("unix://{}?db=0&pass={password}", socket.display()),
                None => format!("unix://{}?db=0", socket.display()),
            }
        })
    }

    /// The PEM certificate of the CA that signed a TLS server's certificate.
    pub fn tls_ca_cert(&self) -> Option<Vec<u8>> {
        let files = self.tls.as_ref()?;
        Some(fs::read(&files.ca_cert).expect("the CA certificate is readable"))
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
    }

    /// Stops the process with `SIGSTOP`: it accepts TCP connections (the kernel does) but
    /// answers nothing until [`resume`](Self::resume).
    pub fn pause(&mut self) {
        self.signal("-STOP");
        self.paused = true;
    }

    /// True while the process runs and is not [paused](Self::pause).
    pub fn is_answering(&self) -> bool {
        self.child.is_some() && !self.paused
    }

    /// Continues a paused process (`SIGCONT`).
    pub fn resume(&mut self) {
        self.signal("-CONT");
        self.paused = false;
    }

    fn signal(&self, signal: &str) {
        let pid = self.pid().expect("the server is running");
        let status = Command::new("kill")
            .arg(signal)
            .arg(pid.to_string())
            .status()
            .expect("the `kill` command runs");
        assert!(status.success(), "kill {signal} {pid} failed");
    }

    /// Kills the process (`SIGKILL`) and waits for it; every entry is lost.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.paused = false;
    }

    /// True while the process runs (paused or not).
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// Kills the server if it runs, then starts it again on the same port with the same
    /// options, and waits until it accepts connections.
    ///
    /// # Panics
    ///
    /// If it cannot start again (the port was taken meanwhile, for instance).
    pub fn restart(&mut self) {
        self.kill();
        if let Err(e) = self.spawn() {
            panic!(
                "redis-server did not restart on port {}: {e}",
                self.ports.main
            );
        }
    }

    /// A plain blocking connection as the default user (on the admin port of a TLS server).
    ///
    /// # Panics
    ///
    /// If the server does not answer.
    pub fn connection(&self) -> redis::Connection {
        let client = redis::Client::open(self.plain_url()).expect("a valid URL");
        let conn = client
            .get_connection_with_timeout(Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("cannot connect to the test redis-server: {e}"));
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("socket time-outs can be set");
        conn
    }

    /// The plain `redis://` URL of database 0 for the default user (the admin port of a TLS
    /// server), for tools without TLS.
    pub fn plain_url(&self) -> String {
        let port = self.ports.admin.unwrap_or(self.ports.main);
        let credentials = match &self.options.requirepass {
            Some(password) => format!(":{password}@"),
            None => String::new(),
        };
        format!("redis://{credentials}127.0.0.1:{port}/0")
    }

    /// Resets the command statistics (`CONFIG RESETSTAT`). The reset itself is then counted
    /// once, under `config|resetstat`.
    pub fn reset_stats(&self) {
        let _: () = redis::cmd("CONFIG")
            .arg("RESETSTAT")
            .query(&mut self.connection())
            .expect("CONFIG RESETSTAT succeeds");
    }

    /// Every command's statistics since start or [`reset_stats`](Self::reset_stats), from
    /// `INFO commandstats`, keyed by lower-case name (`get`, `set`, `config|resetstat`). The
    /// `INFO` that reads them is not included (Redis counts a command after it runs).
    pub fn command_stats(&self) -> BTreeMap<String, CommandStat> {
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query(&mut self.connection())
            .expect("INFO commandstats succeeds");
        parse_command_stats(&info)
    }

    /// Closes every pub/sub connection of the server (`CLIENT KILL TYPE pubsub`), as a
    /// network reset would; returns how many it closed.
    pub fn kill_pubsub_clients(&self) -> u64 {
        redis::cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg("pubsub")
            .query(&mut self.connection())
            .expect("CLIENT KILL succeeds")
    }

    /// How many times each command ran since start or [`reset_stats`](Self::reset_stats),
    /// without the reset itself: what the code under test sent (a script's own commands
    /// included).
    pub fn calls_since_reset(&self) -> BTreeMap<String, u64> {
        self.command_stats()
            .into_iter()
            .filter(|(name, _)| name != "config|resetstat")
            .map(|(name, stat)| (name, stat.calls))
            .collect()
    }

    /// How many times `command` (e.g. `"get"`, `"unlink"`, `"config|resetstat"`) ran since
    /// start or [`reset_stats`](Self::reset_stats), failed calls included.
    pub fn command_count(&self, command: &str) -> u64 {
        self.command_stats()
            .get(&command.to_ascii_lowercase())
            .map_or(0, |stat| stat.calls)
    }

    /// How many connections the server accepted since start or the last
    /// [`reset_stats`](Self::reset_stats) (`total_connections_received`), this method's own
    /// included.
    pub fn connections_received(&self) -> u64 {
        let info: String = redis::cmd("INFO")
            .arg("stats")
            .query(&mut self.connection())
            .expect("INFO stats succeeds");
        info_field(&info, "total_connections_received").unwrap_or(0)
    }

    /// Waits until `replicas` replicas of this primary acknowledged its whole replication
    /// stream as it stood on the first poll, and returns how long that took.
    ///
    /// It polls `INFO replication` (no data command, so no counted `GET` or `SET`): every
    /// `slaveN:...,state=online,offset=..` line against `master_repl_offset`. Unlike `WAIT`,
    /// which waits for the offset of its own connection's last write (a fresh connection's
    /// `WAIT` returns at once), this covers every connection's writes. Replicas acknowledge
    /// about once a second, so it takes up to a second.
    ///
    /// # Panics
    ///
    /// If fewer replicas caught up within 10 s (the message says what the primary reports).
    pub fn wait_for_replicas(&self, replicas: usize) -> Duration {
        let url = self.plain_url();
        let mut target = None;
        probe::wait_for(REPLICATION_TIMEOUT, || {
            let caught_up = probe::replicas_caught_up(self.ports.main, &url, &mut target)?;
            if caught_up >= replicas {
                Ok(())
            } else {
                Err(format!(
                    "{caught_up} of {replicas} replicas of {} acknowledged offset {target:?}",
                    self.ports.main
                ))
            }
        })
        .map(|((), took)| took)
        .unwrap_or_else(|(reason, waited)| panic!("after {waited:?}: {reason}"))
    }

    /// How many keys database 0 holds (`DBSIZE`).
    pub fn dbsize(&self) -> u64 {
        redis::cmd("DBSIZE")
            .query(&mut self.connection())
            .expect("DBSIZE succeeds")
    }

    fn command_line(&self) -> Vec<String> {
        let dir = self.dir.path().to_string_lossy().into_owned();
        let mut args = Vec::new();
        if self.options.sentinel_config.is_some() {
            let config = self.dir.path().join(SENTINEL_CONFIG);
            args.extend([config.to_string_lossy().into_owned(), "--sentinel".into()]);
        }
        args.extend([
            "--bind".into(),
            "127.0.0.1".into(),
            "--dir".into(),
            dir,
            "--logfile".into(),
            "redis.log".into(),
            "--save".into(),
            String::new(),
            "--appendonly".into(),
            "no".into(),
            "--daemonize".into(),
            "no".into(),
        ]);
        match (&self.tls, self.ports.admin) {
            (Some(tls), Some(admin)) => {
                let file = |p: &Path| p.to_string_lossy().into_owned();
                args.extend([
                    "--port".into(),
                    admin.to_string(),
                    "--tls-port".into(),
                    self.ports.main.to_string(),
                    "--tls-cert-file".into(),
                    file(&tls.cert),
                    "--tls-key-file".into(),
                    file(&tls.key),
                    "--tls-ca-cert-file".into(),
                    file(&tls.ca_cert),
                    "--tls-auth-clients".into(),
                    "no".into(),
                ]);
            }
            _ => args.extend(["--port".into(), self.ports.main.to_string()]),
        }
        if self.options.unix_socket {
            let socket = self.dir.path().join("redis.sock");
            args.extend([
                "--unixsocket".into(),
                socket.to_string_lossy().into_owned(),
                "--unixsocketperm".into(),
                "700".into(),
            ]);
        }
        if let Some(password) = &self.options.requirepass {
            args.extend(["--requirepass".into(), password.clone()]);
        }
        for user in &self.options.users {
            args.extend([
                "--user".into(),
                user.name.clone(),
                "on".into(),
                format!(">{}", user.password),
                "~*".into(),
                "&*".into(),
                "+@all".into(),
            ]);
        }
        if let Some((bytes, policy)) = &self.options.maxmemory {
            args.extend([
                "--maxmemory".into(),
                bytes.clone(),
                "--maxmemory-policy".into(),
                policy.clone(),
            ]);
        }
        args.extend(self.options.args.iter().cloned());
        args
    }

    /// Starts the process and waits until it is ready.
    fn spawn(&mut self) -> Result<(), StartError> {
        let log = self.dir.path().join("redis.log");
        let _ = fs::remove_file(&log);
        let child = Command::new(&self.binary)
            .args(self.command_line())
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| StartError::new(format!("cannot run {}: {e}", self.binary.display())))?;
        self.child = Some(child);
        self.paused = false;
        // A Sentinel never logs "Ready to accept connections"; it logs its id once it listens.
        let ready_line = if self.options.sentinel_config.is_some() {
            "Sentinel ID is"
        } else {
            "Ready to accept connections"
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let child = self.child.as_mut().expect("just spawned");
            if let Ok(Some(status)) = child.try_wait() {
                let mut stderr = String::new();
                if let Some(mut pipe) = child.stderr.take() {
                    use std::io::Read;
                    let _ = pipe.read_to_string(&mut stderr);
                }
                self.child = None;
                let log = self.log();
                return Err(StartError {
                    port_in_use: log.contains("Address already in use")
                        || stderr.contains("Address already in use"),
                    message: format!("redis-server exited ({status}) on start:\n{stderr}\n{log}"),
                });
            }
            let ready = self.log().contains(ready_line)
                && TcpStream::connect(("127.0.0.1", self.ports.main)).is_ok();
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.kill();
                return Err(StartError::new(format!(
                    "redis-server did not become ready within {START_TIMEOUT:?}:\n{}",
                    self.log()
                )));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The Sentinel configuration file in a Sentinel's directory.
const SENTINEL_CONFIG: &str = "sentinel.conf";

/// The statistics of one command in `INFO commandstats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CommandStat {
    /// Calls, failed ones included.
    pub calls: u64,
    /// Calls rejected before running (wrong arguments, no permission, ...).
    pub rejected_calls: u64,
    /// Calls that ran and returned an error.
    pub failed_calls: u64,
}

/// Parses `INFO commandstats` lines such as
/// `cmdstat_get:calls=3,usec=10,usec_per_call=3.33,rejected_calls=0,failed_calls=0`.
pub fn parse_command_stats(info: &str) -> BTreeMap<String, CommandStat> {
    info.lines()
        .filter_map(|line| {
            let (name, fields) = line.trim().strip_prefix("cmdstat_")?.split_once(':')?;
            let mut stat = CommandStat::default();
            for field in fields.split(',') {
                let Some((key, value)) = field.split_once('=') else {
                    continue;
                };
                let value = value.parse().unwrap_or(0);
                match key {
                    "calls" => stat.calls = value,
                    "rejected_calls" => stat.rejected_calls = value,
                    "failed_calls" => stat.failed_calls = value,
                    _ => {}
                }
            }
            Some((name.to_ascii_lowercase(), stat))
        })
        .collect()
}

fn info_field(info: &str, name: &str) -> Option<u64> {
    probe::info_value(info, name)?.trim().parse().ok()
}

fn find_binary() -> Result<PathBuf, StartError> {
    host::program("redis-server").ok_or_else(|| StartError::new(NOT_FOUND))
}

fn free_port() -> Result<u16, StartError> {
    host::free_port().map_err(port_error)
}

fn port_error(e: std::io::Error) -> StartError {
    StartError::new(format!("cannot pick a free port: {e}"))
}

/// A cache that a test installs once its server runs, for the `cache = ..` option of an
/// attribute, which needs a path to a static.
///
/// ```
/// use std::sync::OnceLock;
///
/// static CACHE: tests::Late = tests::Late(OnceLock::new());
///
/// #[cache_core::memoize(cache = CACHE)]
/// fn double(n: u32) -> u32 {
///     n * 2
/// }
///
/// fn main() {
///     let _ = CACHE.0.set(cache_core::Cache::memory());
///     assert_eq!(double(2), 4);
/// }
/// ```
pub struct Late(pub std::sync::OnceLock<cache_core::Cache>);

impl std::ops::Deref for Late {
    type Target = cache_core::Cache;

    fn deref(&self) -> &cache_core::Cache {
        self.0.get().expect("the test sets the cache first")
    }
}

/// The envelope trailer that ends a stored value (`cache_core::envelope`: type, flags, codec
/// and version, after a split byte and a timing block when its flags say so), so a test can
/// put a hostile payload of its own in front of it and have it read as the same type.
pub fn envelope_trailer(stored: &[u8]) -> &[u8] {
    let flags = stored[stored.len() - 3];
    let len = 7 + usize::from(flags & 2 != 0) + 12 * usize::from(flags & 1 != 0);
    &stored[stored.len() - len..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_stats_parse() {
        let info = "# Commandstats\r\n\
                    cmdstat_get:calls=3,usec=10,usec_per_call=3.33,rejected_calls=0,failed_calls=1\r\n\
                    cmdstat_config|resetstat:calls=1,usec=5,usec_per_call=5.00,rejected_calls=0,failed_calls=0\r\n";
        let stats = parse_command_stats(info);
        assert_eq!(stats["get"].calls, 3);
        assert_eq!(stats["get"].failed_calls, 1);
        assert_eq!(stats["config|resetstat"].calls, 1);
    }
}
