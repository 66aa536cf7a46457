//! Runs an example binary as a real process and talks HTTP to it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What `binary` writes to stderr at start-up with `RUST_LOG=info` and `env` (to a pipe,
/// with no `NO_COLOR`: the app itself must leave colours out), up to its "listening on" line (then it is killed), or until it exits on its own (a bad setting).
pub fn startup_log(binary: &str, env: &[(&str, &str)]) -> String {
    let mut command = Command::new(binary);
    command
        .env_clear()
        .env("PORT", free_port().to_string())
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("the example binary starts");
    let stderr = child.stderr.take().expect("piped stderr");
    let (lines, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)) {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut log = String::new();
    while let Ok(line) = received.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        log.push_str(&line);
        log.push('\n');
        if line.contains("listening on") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    log
}

/// A running example app, killed on drop.
pub struct App {
    child: Child,
    port: u16,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl App {
    /// Starts `binary` with `env`, on a free port, and waits until it accepts connections.
    pub fn start(binary: &str, env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let mut command = Command::new(binary);
        command
            .env_clear()
            .env("PORT", port.to_string())
            .env("SQUARE_DELAY_MS", "200")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (name, value) in env {
            command.env(name, value);
        }
        let child = command.spawn().expect("the example binary starts");
        let app = App { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "{binary} did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        app
    }

    /// `GET path`: the status and the body.
    pub fn get(&self, path: &str) -> (u16, String) {
        self.request("GET", path)
    }

    /// `method path` with no body: the status and the body.
    pub fn request(&self, method: &str, path: &str) -> (u16, String) {
        let (status, _, body) = self.exchange(method, path, &[]);
        (status, body)
    }

    /// `GET path` with the extra request header lines `headers` (`"Name: value"`): the
    /// status, the response head (status line and headers, lines ending in `\r\n`) and
    /// the body.
    #[allow(dead_code)] // only some test files read response headers
    pub fn get_with(&self, path: &str, headers: &[&str]) -> (u16, String, String) {
        self.exchange("GET", path, headers)
    }

    fn exchange(&self, method: &str, path: &str, headers: &[&str]) -> (u16, String, String) {
        let extra: String = headers.iter().map(|h| format!("{h}\r\n")).collect();
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n{extra}\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let status = response[9..12].parse().unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        (status, format!("{head}\r\n"), body.to_owned())
    }

    /// The app's `/stats` counter `name`.
    pub fn stat(&self, name: &str) -> u64 {
        let (status, body) = self.get("/stats");
        assert_eq!(status, 200, "{body}");
        let stats: serde_json::Value = serde_json::from_str(&body).unwrap();
        stats[name]
            .as_u64()
            .unwrap_or_else(|| panic!("no {name} in {body}"))
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
