//! Start-up shared by the example apps: logging, the cache from the environment, the port.

use std::io::IsTerminal;
use std::net::SocketAddr;

use axum::Router;
use cache_core::Cache;
use cache_core::config::{CacheType, Config, redact_url};

/// Logs to stderr, in colour only when stderr is a terminal (a piped or redirected log holds
/// no escape codes); `RUST_LOG` filters (default `info`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}

/// Builds the cache from the Flask-Caching variables, installs it as the process default,
/// and says which backend it is and how to look at its keys.
pub fn install_cache_from_env() -> Result<Cache, cache_core::Error> {
    let config = Config::from_env()?;
    let cache = cache_redis::from_config(&config)?;
    cache_core::install(cache.clone())?;
    describe(&config, &cache);
    Ok(cache)
}

fn describe(config: &Config, cache: &Cache) {
    let pattern = format!("{}*", cache.namespace());
    match config.cache_type {
        CacheType::Redis => {
            // Every credential is `***` here, whichever URL form holds it.
            let target = redis_target(config);
            let cli = redis_cli(&target);
            tracing::info!(
                "cache: Redis at {target} (namespace {:?})",
                cache.namespace()
            );
            tracing::info!("see the keys:   {cli} --scan --pattern '{pattern}'");
            tracing::info!("see a TTL:      {cli} TTL '{}homepage'", cache.namespace());
        }
        CacheType::RedisSentinel => {
            let redis = &config.redis;
            let sentinels = sentinel_list(config);
            let first = sentinels.split(',').next().unwrap_or_default();
            let (host, port) = first.rsplit_once(':').unwrap_or((first, "26379"));
            let master = redis
                .sentinel_master
                .as_deref()
                .unwrap_or(cache_core::config::DEFAULT_SENTINEL_MASTER);
            let masked = |set: bool| if set { " (password ***)" } else { "" };
            tracing::info!(
                "cache: Redis Sentinel master `{master}` via {sentinels}{}, db {}{} (namespace {:?})",
                masked(redis.sentinel_password.is_some()),
                redis.db.unwrap_or(0),
                masked(redis.password.is_some()),
                cache.namespace()
            );
            tracing::info!(
                "see the master: redis-cli -h {} -p {port} SENTINEL get-master-addr-by-name {master}",
                host.trim_matches(['[', ']'])
            );
        }
        CacheType::RedisCluster => {
            // The seeds with every credential as `***`.
            let seeds = config
                .redis
                .cluster
                .as_ref()
                .map(|seeds| {
                    seeds
                        .expose()
                        .split(',')
                        .map(|seed| redact_url(seed.trim()))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            tracing::info!(
                "cache: Redis Cluster through the seeds {seeds} (namespace {:?})",
                cache.namespace()
            );
            tracing::info!(
                "see the keys:   redis-cli -c -h <node> -p <port> --scan --pattern '{pattern}' \
                 (on each primary)"
            );
        }
        CacheType::Null => tracing::info!("cache: disabled (NullCache)"),
        _ => tracing::info!(
            "cache: in process memory (set CACHE_REDIS_URL=redis://localhost:6379/0 to use Redis)"
        ),
    }
}

/// `CACHE_REDIS_SENTINELS` as the backend reads it (Flask-Caching's default when unset).
fn sentinel_list(config: &Config) -> String {
    let sentinels = &config.redis.sentinels;
    if sentinels.is_empty() {
        return format!("127.0.0.1:{}", cache_core::config::DEFAULT_SENTINEL_PORT);
    }
    let shown: Vec<String> = sentinels
        .iter()
        .map(|(host, port)| match host.contains(':') {
            true => format!("[{host}]:{port}"),
            false => format!("{host}:{port}"),
        })
        .collect();
    shown.join(",")
}

/// The Redis target with its password masked.
fn redis_target(config: &Config) -> String {
    let redis = &config.redis;
    match &redis.url {
        Some(url) => redact_url(url.expose()),
        None => {
            let host = redis.host.as_deref().unwrap_or("localhost");
            let host = if host.contains(':') {
                format!("[{host}]")
            } else {
                host.to_owned()
            };
            let credentials = if redis.password.is_some() {
                ":***@"
            } else {
                ""
            };
            let port = redis.port.unwrap_or(6379);
            format!(
                "redis://{credentials}{host}:{port}/{}",
                redis.db.unwrap_or(0)
            )
        }
    }
}

/// The `redis-cli` invocation for a masked target: `-u URL`, or `-s SOCKET -n DB` for a
/// Unix socket (redis-cli reads no `unix://` URL). A password shows as `***`, to type in.
fn redis_cli(target: &str) -> String {
    let Some(socket) = target
        .strip_prefix("unix://")
        .or_else(|| target.strip_prefix("redis+unix://"))
        .or_else(|| target.strip_prefix("valkey+unix://"))
    else {
        return format!("redis-cli -u {target}");
    };
    let (path, query) = socket.split_once('?').unwrap_or((socket, ""));
    let mut cli = format!("redis-cli -s {path}");
    for (name, value) in query.split('&').filter_map(|pair| pair.split_once('=')) {
        match name {
            "db" => cli.push_str(&format!(" -n {value}")),
            "user" => cli.push_str(&format!(" --user {value}")),
            "pass" => cli.push_str(" -a ***"),
            _ => {}
        }
    }
    cli
}

/// Serves `app` on `PORT` (default 5000, like Flask) until Ctrl-C.
pub async fn serve(app: Router) -> Result<(), String> {
    let port = match std::env::var("PORT") {
        Ok(value) => value
            .trim()
            .parse::<u16>()
            .map_err(|_| format!("invalid PORT: expected a port number, got {value:?}"))?,
        Err(_) => 5000,
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            format!(
                "port {port} is already in use: stop the other server or set PORT to a free port"
            )
        } else {
            format!("cannot listen on {addr}: {e}")
        }
    })?;
    tracing::info!("listening on http://{addr}");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| format!("server error: {e}"))
}

/// The `main` of both binaries.
pub async fn main(app: fn(Cache) -> Router) {
    init_tracing();
    // Before the cache and any cached call, so every function counts into it.
    let metrics = match crate::prometheus::install() {
        Ok(handle) => handle,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::exit(2);
        }
    };
    let cache = match install_cache_from_env() {
        Ok(cache) => cache,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::exit(2);
        }
    };
    if let Err(error) = serve(app(cache).merge(crate::prometheus::router(metrics))).await {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}
