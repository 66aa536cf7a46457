//! Forgetting cached responses: by path, and by path prefix.

use std::future::Future;

use cache_core::{Cache, Error, ErrorKind, Result};

use crate::key::{path_prefix, paths_prefix};

/// Invalidation of cached responses, on the [`Cache`] the layer stores them in.
///
/// ```
/// use cache_http::ResponseCacheExt;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> cache_core::Result<()> {
/// let cache = cache_core::Cache::memory();
/// // .. a ResponseCacheLayer over `cache` served /expensive and /user/7 ..
/// cache.delete_response("/expensive").await?; // every query string and variant of it
/// cache.delete_responses_under("/user/").await?; // /user/7, /user/8/posts, ..
/// # Ok(()) }
/// ```
pub trait ResponseCacheExt {
    /// Removes every stored response of `path` (all its query strings and `Vary` variants,
    /// never those of a longer path such as `/expensive2`); returns how many entries.
    /// `path` is the request path as the client sends it (percent-encoded), starting with
    /// `/`, without a query.
    fn delete_response(&self, path: &str) -> impl Future<Output = Result<u64>> + Send;

    /// Removes every stored response whose path starts with `prefix` (a string prefix:
    /// `/user` also covers `/users`; end it with `/` for a directory); returns how many
    /// entries.
    fn delete_responses_under(&self, prefix: &str) -> impl Future<Output = Result<u64>> + Send;
}

impl ResponseCacheExt for Cache {
    fn delete_response(&self, path: &str) -> impl Future<Output = Result<u64>> + Send {
        let prefix = checked(path, !path.contains(['?', '#'])).map(|()| path_prefix(path));
        async move { self.delete_prefix(&prefix?).await }
    }

    fn delete_responses_under(&self, prefix: &str) -> impl Future<Output = Result<u64>> + Send {
        let prefix = checked(prefix, !prefix.contains(['?', '#'])).map(|()| paths_prefix(prefix));
        async move { self.delete_prefix(&prefix?).await }
    }
}

fn checked(path: &str, plain: bool) -> Result<()> {
    if path.starts_with('/') && plain {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::Refused,
        format!("{path:?} is not a request path: it must start with `/` and hold no `?` or `#`"),
    ))
}
