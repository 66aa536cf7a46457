//! The tutorial app as a real process on a throwaway Redis Cluster, picked up from
//! `CACHE_REDIS_CLUSTER` with no code change.

mod support;

use support::{App, startup_log};
use tests::cluster::RedisCluster;

const BIN: &str = env!("CARGO_BIN_EXE_tutorial");

#[test]
fn the_tutorial_runs_on_a_cluster_from_the_environment_and_says_so_without_the_password() {
    let cluster = RedisCluster::builder()
        .replicas_per_primary(0)
        .requirepass("cl-s3cret")
        .start();
    let seeds = cluster.seed_urls().join(",");
    let env = [("CACHE_REDIS_CLUSTER", seeds.as_str())];
    let log = startup_log(BIN, &env);
    assert!(
        log.contains("cache: Redis Cluster through the seeds redis://:***@127.0.0.1:"),
        "{log}"
    );
    assert!(!log.contains("cl-s3cret"), "{log}");

    let app = App::start(BIN, &env);
    assert_eq!(app.get("/square/5"), (200, "Square of 5 is 25".to_owned()));
    assert_eq!(app.get("/square/5"), (200, "Square of 5 is 25".to_owned()));
    assert_eq!(app.stat("square_runs"), 1);
    assert_eq!(app.stat("square_hits"), 1);

    // Clear removes the app's keys on every primary and nothing else.
    let key = "cache:memoize:examples.tutorial.square:5";
    let holder = cluster.primary_of(key).port();
    let foreign = "not-ours";
    let foreign_holder = cluster.primary_of(foreign).port();
    let _: () = redis::cmd("SET")
        .arg(foreign)
        .arg("1")
        .query(&mut cluster.node(foreign_holder).connection())
        .unwrap();
    assert!(cluster.node(holder).dbsize() > 0);
    assert_eq!(
        app.get("/clear-cache"),
        (200, "All cache cleared!".to_owned())
    );
    let kept: Option<String> = redis::cmd("GET")
        .arg(foreign)
        .query(&mut cluster.node(foreign_holder).connection())
        .unwrap();
    assert_eq!(kept.as_deref(), Some("1"));
    let total: u64 = cluster
        .shards()
        .iter()
        .map(|s| cluster.node(s.primary).dbsize())
        .sum();
    assert_eq!(total, 1, "only the foreign key is left");
    app.get("/square/5");
    assert_eq!(app.stat("square_runs"), 2);
}
