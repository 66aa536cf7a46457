//! Issue 11: both tutorial apps run unchanged on a Sentinel set-up, configured through
//! `cache_redis::from_env()` by Flask-Caching's variables, and say so (passwords masked) at
//! start-up.

mod support;

use support::App;
use tests::sentinel::RedisSentinels;

const TUTORIAL: &str = env!("CARGO_BIN_EXE_tutorial");
const ADVANCED: &str = env!("CARGO_BIN_EXE_advanced");
const SECRET: &str = "Sekr3t-sentinel-e2e-4c1a";

#[test]
fn the_tutorials_cache_on_the_sentinel_master_and_log_the_deployment_without_secrets() {
    let set_up = RedisSentinels::builder()
        .requirepass(SECRET)
        .sentinel_password(SECRET)
        .start();
    let sentinels = set_up.sentinel_list();
    let env = [
        ("CACHE_TYPE", "RedisSentinelCache"),
        ("CACHE_REDIS_SENTINELS", sentinels.as_str()),
        ("CACHE_REDIS_SENTINEL_MASTER", "mymaster"),
        ("CACHE_REDIS_SENTINEL_PASSWORD", SECRET),
        ("CACHE_REDIS_PASSWORD", SECRET),
    ];
    for binary in [TUTORIAL, ADVANCED] {
        let log = support::startup_log(binary, &env);
        let expected = format!(
            "cache: Redis Sentinel master `mymaster` via {sentinels} (password ***), db 0 \
             (password ***)"
        );
        assert!(log.contains(&expected), "{expected} not in {log}");
        assert!(!log.contains(SECRET), "{log}");
    }

    let app = App::start(TUTORIAL, &env);
    set_up.reset_stats();
    assert_eq!(app.get("/square/5"), (200, "Square of 5 is 25".to_owned()));
    assert_eq!(app.get("/square/5"), (200, "Square of 5 is 25".to_owned()));
    assert_eq!((app.stat("square_runs"), app.stat("square_hits")), (1, 1));
    let exists: bool = redis::cmd("EXISTS")
        .arg("cache:memoize:examples.tutorial.square:5")
        .query(&mut set_up.master().connection())
        .unwrap();
    assert!(exists, "the entry is on the master");
    let replica = set_up.data_nodes()[1].port();
    assert_eq!(set_up.command_counts("get")[&replica], 0);
}
