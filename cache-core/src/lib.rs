//! Attribute-driven caching for Rust functions: in process memory by default, Redis when
//! configured (with `cache-redis`), with the same code. What Flask-Caching is to Python:
//! `#[cached]` and `#[memoize]` on sync and async functions, typed keys and values, and a
//! cache that never makes your program wrong or down (a failing cache is a miss).
//!
//! # Quick start
//!
//! ```
//! use std::time::Duration;
//! use cache_core::{Cache, cached, memoize};
//!
//! #[cached(key_prefix = "homepage", timeout = 30)] // one entry, whatever the arguments
//! fn home() -> String {
//!     "Home".to_owned()
//! }
//!
//! #[memoize(timeout = 60)] // one entry per distinct argument list
//! fn square(num: u64) -> String {
//!     format!("Square of {num} is {}", num * num)
//! }
//!
//! // Once, at start-up (`cache_redis::from_env()` builds a Redis cache instead).
//! cache_core::install(Cache::memory())?;
//! assert_eq!(square(4), "Square of 4 is 16"); // runs the body and stores the result
//! assert_eq!(square(4), "Square of 4 is 16"); // read from the cache
//! assert_eq!(home(), "Home");
//! square::invalidate(4)?; // forget one call's entry
//! assert_eq!(square::stats().hits, 1);
//!
//! // The same cached call without an attribute: `Ok` stored, `Err` returned and forgotten.
//! let cache = cache_core::installed().expect("installed above");
//! let user: Result<String, std::io::Error> = cache
//!     .blocking()
//!     .try_get_or_set_with("user_1", Duration::from_secs(60), || Ok("Ada".to_owned()));
//! assert_eq!(user?, "Ada");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`memoize`] documents every option, the function shapes it supports and the code it
//! stands for; [`Cache`] the direct API and its storing rules; [`key`] the key scheme;
//! [`stampede`] leases, early refresh and serve-stale; [`NearCache`] the typed in-process
//! tier in front of the backend (`local = ..`). The README has the measured figures,
//! `docs/design.md` the design notes behind them.
//!
//! # Features
//!
//! | Name | Description | Default? |
//! |---|---|---|
//! | `macros` | re-exports `#[cached]` and `#[memoize]` from `cache-macros` | yes |
//! | `json` | `codec::Json`, a JSON value codec for values other languages read too | no |
//! | `minijinja` | `fragment`: template fragment caching for MiniJinja | no |
//! | `metrics` | counters and histograms through the `metrics` facade, `tracing` spans per call and per backend operation ([`observe`]) | no |
//!
//! # Minimum supported Rust version
//!
//! Rust 1.88 (edition 2024).

pub mod backend;
mod backplane;
#[doc(hidden)]
pub mod bus;
mod cache;
pub mod codec;
pub mod config;
mod counted;
mod direct;
mod drive;
mod engine;
pub mod envelope;
mod error;
mod flight;
#[cfg(feature = "minijinja")]
pub mod fragment;
mod gateway;
mod global;
pub mod key;
mod lease;
mod limits;
mod near;
pub mod observe;
mod options;
mod policy;
mod race;
mod shape;
pub mod stampede;
pub mod stats;
mod waiters;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use cache::{BlockingCache, Cache, CacheBuilder, DEFAULT_NAMESPACE, DEFAULT_TIMEOUT};
pub use error::{Error, ErrorKind, Result};
pub use global::{install, installed};
pub use near::NearCache;
pub use options::{Options as CallOptions, OptionsBuilder as CallOptionsBuilder};
pub use stats::StatsSnapshot;

#[cfg(feature = "macros")]
pub use cache_macros::{cached, memoize};
