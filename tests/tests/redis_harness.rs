//! The harness itself: options reach the server, restart keeps the port, stats count.

use tests::RedisServer;

fn config_get(server: &RedisServer, name: &str) -> String {
    let pair: (String, String) = redis::cmd("CONFIG")
        .arg("GET")
        .arg(name)
        .query(&mut server.connection())
        .unwrap();
    pair.1
}

#[test]
fn options_reach_the_server_and_restart_keeps_port_and_options() {
    let mut server = RedisServer::builder()
        .maxmemory("16mb", "allkeys-lru")
        .arg("--hz")
        .arg("42")
        .start();
    assert_eq!(
        config_get(&server, "maxmemory"),
        (16 * 1024 * 1024).to_string()
    );
    assert_eq!(config_get(&server, "maxmemory-policy"), "allkeys-lru");
    assert_eq!(config_get(&server, "hz"), "42");
    assert_eq!(config_get(&server, "save"), "");
    assert_eq!(config_get(&server, "appendonly"), "no");

    let port = server.port();
    let pid = server.pid();
    server.restart();
    assert_eq!(server.port(), port);
    assert_ne!(server.pid(), pid);
    assert_eq!(config_get(&server, "hz"), "42");
}

#[test]
fn command_counts_start_from_a_reset() {
    let server = RedisServer::start();
    let mut conn = server.connection();
    server.reset_stats();
    for _ in 0..3 {
        let _: Option<String> = redis::cmd("GET").arg("k").query(&mut conn).unwrap();
    }
    assert_eq!(server.command_count("get"), 3);
    assert_eq!(server.command_count("GET"), 3);
    assert_eq!(server.command_count("config|resetstat"), 1);
    assert_eq!(server.command_count("set"), 0);
}

#[test]
fn a_paused_server_answers_after_resume_and_a_killed_one_stops() {
    let mut server = RedisServer::start();
    server.pause();
    assert!(server.is_running());
    server.resume();
    assert_eq!(server.dbsize(), 0);
    server.kill();
    assert!(!server.is_running());
    assert!(std::net::TcpStream::connect(("127.0.0.1", server.port())).is_err());
}
