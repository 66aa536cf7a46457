//! Start-up shared by the example apps: logging, the cache from the environment, the port.

use std::net::SocketAddr;

use axum::Router;
use cache_core::Cache;
use cache_core::config::{CacheType, Config, redact_url};

/// Logs to stderr; `RUST_LOG` filters (default `info`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
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
            let url = config
                .redis
                .url
                .as_ref()
                .map(|url| redact_url(url.expose()))
                .unwrap_or_else(|| {
                    let host = config.redis.host.as_deref().unwrap_or("localhost");
                    let port = config.redis.port.unwrap_or(6379);
                    let db = config.redis.db.unwrap_or(0);
                    format!("redis://{host}:{port}/{db}")
                });
            tracing::info!("cache: Redis at {url} (namespace {:?})", cache.namespace());
            tracing::info!("see the keys:   redis-cli -u {url} --scan --pattern '{pattern}'");
            tracing::info!(
                "see a TTL:      redis-cli -u {url} TTL '{}homepage'",
                cache.namespace()
            );
        }
        CacheType::Null => tracing::info!("cache: disabled (NullCache)"),
        _ => tracing::info!(
            "cache: in process memory (set CACHE_REDIS_URL=redis://localhost:6379/0 to use Redis)"
        ),
    }
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
    let cache = match install_cache_from_env() {
        Ok(cache) => cache,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::exit(2);
        }
    };
    if let Err(error) = serve(app(cache)).await {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}
