//! Attribute-driven caching for Rust functions: in process memory by default, Redis when
//! configured, with the same code.
//!
//! ```
//! use cache_core::{memoize, Cache};
//!
//! #[memoize(timeout = 60)]
//! fn square(num: u64) -> String {
//!     format!("Square of {num} is {}", num * num)
//! }
//!
//! cache_core::install(Cache::memory())?;
//! assert_eq!(square(4), "Square of 4 is 16"); // runs the body and stores the result
//! assert_eq!(square(4), "Square of 4 is 16"); // read from the cache
//! # Ok::<(), cache_core::Error>(())
//! ```
//!
//! See the README for the key scheme, the attributes' options and the backends.

pub mod backend;
mod cache;
mod call;
pub mod codec;
pub mod config;
mod counted;
mod direct;
pub mod envelope;
mod error;
mod flight;
#[cfg(feature = "minijinja")]
pub mod fragment;
mod global;
mod shape;
pub mod key;
pub mod stampede;
pub mod stats;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use cache::{BlockingCache, Cache, CacheBuilder, DEFAULT_NAMESPACE, DEFAULT_TIMEOUT};
pub use call::{Options as CallOptions, OptionsBuilder as CallOptionsBuilder};
pub use error::{Error, ErrorKind, Result};
pub use global::{install, installed};
pub use stats::StatsSnapshot;

#[cfg(feature = "macros")]
pub use cache_macros::{cached, memoize};
