//! The backend that stores nothing (caching disabled, like Flask-Caching's `NullCache`).

use bytes::Bytes;

use super::{BlockingBackend, Capabilities, Ttl};
use crate::Result;

/// Stores nothing: every read is a miss and every write is accepted and dropped.
///
/// ```
/// use cache_core::{Cache, backend::null::NullBackend};
///
/// let cache = Cache::builder().backend(NullBackend).build()?;
/// cache.blocking().set("k", &1u32)?;
/// assert_eq!(cache.blocking().get::<u32>("k")?, None);
/// # Ok::<(), cache_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct NullBackend;

impl NullBackend {
    pub(crate) const CAPABILITIES: Capabilities = Capabilities::IN_PROCESS;
}

impl BlockingBackend for NullBackend {
    fn get(&self, _key: &str) -> Result<Option<Bytes>> {
        Ok(None)
    }
    fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        Ok(vec![None; keys.len()])
    }
    fn set(&self, _key: &str, _value: Bytes, _ttl: Ttl) -> Result<()> {
        Ok(())
    }
    fn set_many(&self, _entries: &[(&str, Bytes)], _ttl: Ttl) -> Result<()> {
        Ok(())
    }
    fn add(&self, _key: &str, _value: Bytes, _ttl: Ttl) -> Result<bool> {
        Ok(true)
    }
    fn delete(&self, _key: &str) -> Result<bool> {
        Ok(false)
    }
    fn delete_many(&self, _keys: &[&str]) -> Result<u64> {
        Ok(0)
    }
    fn exists(&self, _key: &str) -> Result<bool> {
        Ok(false)
    }
    fn delete_prefix(&self, _prefix: &str) -> Result<u64> {
        Ok(0)
    }
}

super::async_via_blocking!(NullBackend);
