//! The process-wide default cache that attributes use when not given `cache = ...`.

use std::sync::OnceLock;

use crate::{Cache, Error, ErrorKind, Result};

static DEFAULT: OnceLock<Cache> = OnceLock::new();

/// Installs `cache` as the process-wide default, once.
///
/// Annotated functions without a `cache = ...` option use it. Until one is installed they
/// run uncached, and the first call of each logs a warning naming the function.
///
/// ```
/// use cache_core::Cache;
///
/// cache_core::install(Cache::memory())?;
/// assert!(cache_core::installed().is_some());
/// assert!(cache_core::install(Cache::memory()).unwrap_err().kind() == cache_core::ErrorKind::AlreadyInstalled);
/// # Ok::<(), cache_core::Error>(())
/// ```
pub fn install(cache: Cache) -> Result<()> {
    DEFAULT.set(cache).map_err(|_| {
        Error::new(
            ErrorKind::AlreadyInstalled,
            "a default cache is already installed; install it once, at start-up",
        )
    })
}

/// The installed default cache, if any.
pub fn installed() -> Option<&'static Cache> {
    DEFAULT.get()
}
