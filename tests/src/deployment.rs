//! One interface over the three deployments the harness starts (one [`RedisServer`], a
//! [`RedisCluster`], a [`RedisSentinels`] set-up), so that a behaviour test is written once
//! and run on each.
//!
//! ```no_run
//! use tests::deployment::Deployment;
//!
//! fn one_get_per_hit(deployment: &impl Deployment) {
//!     let cache = cache_core::Cache::builder()
//!         .backend(deployment.backend())
//!         .build()
//!         .unwrap();
//!     cache.blocking().set("k", &1u8).unwrap();
//!     deployment.reset_stats();
//!     assert_eq!(cache.blocking().get::<u8>("k").unwrap(), Some(1));
//!     assert_eq!(deployment.data_command_count("get"), 1);
//! }
//!
//! one_get_per_hit(&tests::RedisServer::start());
//! one_get_per_hit(&tests::cluster::RedisCluster::start());
//! one_get_per_hit(&tests::sentinel::RedisSentinels::start());
//! ```

use cache_redis::RedisBackend;

use crate::RedisServer;
use crate::cluster::RedisCluster;
use crate::sentinel::RedisSentinels;

/// A running deployment: how to build a backend on it and how to look at its data nodes.
pub trait Deployment {
    /// What it is, for messages: `"one server"`, `"a cluster"`, `"Sentinel"`.
    fn name(&self) -> &'static str;

    /// A backend on it with the default time-outs, pool and breaker (and its passwords).
    fn backend(&self) -> RedisBackend;

    /// Resets the command statistics of every running data node.
    fn reset_stats(&self);

    /// How many times `command` ran since the last reset on the nodes that serve calls:
    /// the server, the cluster's primaries together, the Sentinel master.
    fn data_command_count(&self, command: &str) -> u64;

    /// The node that serves `key` now, for raw commands on it.
    fn node_of(&self, key: &str) -> &RedisServer;
}

impl Deployment for RedisServer {
    fn name(&self) -> &'static str {
        "one server"
    }

    fn backend(&self) -> RedisBackend {
        RedisBackend::builder()
            .url(self.url())
            .build()
            .expect("a valid server URL")
    }

    fn reset_stats(&self) {
        RedisServer::reset_stats(self);
    }

    fn data_command_count(&self, command: &str) -> u64 {
        self.command_count(command)
    }

    fn node_of(&self, _: &str) -> &RedisServer {
        self
    }
}

impl Deployment for RedisCluster {
    fn name(&self) -> &'static str {
        "a cluster"
    }

    fn backend(&self) -> RedisBackend {
        let builder = RedisBackend::builder().cluster(self.seed_list());
        match self.password() {
            Some(password) => builder.password(password),
            None => builder,
        }
        .build()
        .expect("valid cluster seeds")
    }

    fn reset_stats(&self) {
        RedisCluster::reset_stats(self);
    }

    fn data_command_count(&self, command: &str) -> u64 {
        self.command_count(command)
    }

    fn node_of(&self, key: &str) -> &RedisServer {
        self.primary_of(key)
    }
}

impl Deployment for RedisSentinels {
    fn name(&self) -> &'static str {
        "Sentinel"
    }

    fn backend(&self) -> RedisBackend {
        let mut builder = RedisBackend::builder().master_name(self.master_name());
        for addr in self.sentinel_addrs() {
            builder = builder.sentinel(addr);
        }
        if let Some(password) = self.password() {
            builder = builder.password(password);
        }
        if let Some(password) = self.sentinel_password() {
            builder = builder.sentinel_password(password);
        }
        builder.build().expect("valid Sentinel settings")
    }

    fn reset_stats(&self) {
        RedisSentinels::reset_stats(self);
    }

    fn data_command_count(&self, command: &str) -> u64 {
        self.master().command_count(command)
    }

    fn node_of(&self, _: &str) -> &RedisServer {
        self.master()
    }
}
