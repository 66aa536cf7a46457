//! Stampede protection beyond one process: leases, early refresh, serve-stale and TTL jitter.
//!
//! - **Lease**: a caller that misses takes `SET {key}:~lease {token} NX PX {lease}` before
//!   computing, in one operation with a second look at the key (another process may have
//!   stored it since this caller's first read; on Redis one script, which returns the value
//!   instead of taking the lease). Callers (of other caches, or in other processes) that
//!   find the lease taken pause (with back-off) and look again instead of computing; a
//!   pause ends at once when a holder in the same process stores its value. The holder
//!   stores its value and releases the lease in one operation, with a compare-and-delete,
//!   so a slow holder never deletes a lease someone else took since.
//!   If the holder dies, its lease expires and one waiter takes over; a waiter that waits
//!   twice the lease without a value computes itself (a lease never becomes an outage). A
//!   plain hit still costs one GET; a leased miss three round trips.
//! - **Early refresh** (`beta`): the envelope records how long the value took to compute
//!   (`delta`) and when it expires; on each hit a caller recomputes early when
//!   `now - delta * beta * ln(rand()) >= expiry` (Vattani, Chierichetti and Lowenstein,
//!   *Optimal Probabilistic Cache Stampede Prevention*, VLDB 2015). `beta = 1` is the
//!   paper's optimum; larger values refresh earlier.
//! - **Serve-stale** (`serve_stale`): entries live for their timeout plus a grace period;
//!   past the timeout, callers get the stale value at once while exactly one caller (one
//!   per cluster, through the lease) refreshes it.
//! - **Jitter**: each entry's timeout is shortened by a random fraction up to `jitter`, so
//!   entries written together do not expire together.
//!
//! The `:~lease` suffix can never collide with an argument key: no argument token starts
//! with `~` followed by a letter.

use std::time::{Duration, SystemTime};

use bytes::Bytes;

use crate::backend::Ttl;
use crate::envelope::Meta;

/// Stampede settings of one call site or one [`Cache::get_or_set_with_options`] call.
///
/// [`Cache::get_or_set_with_options`]: crate::Cache::get_or_set_with_options
///
/// ```
/// use std::time::Duration;
/// use cache_core::stampede::Stampede;
///
/// let settings = Stampede::default()
///     .lease(Duration::from_secs(5))
///     .early_refresh(1.0)
///     .serve_stale(Duration::from_secs(30))
///     .jitter(0.1);
/// assert_eq!(settings.lease_time(), Some(Duration::from_secs(5)));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Stampede {
    lease: Option<Duration>,
    beta: Option<f64>,
    grace: Option<Duration>,
    jitter: f64,
}

impl Stampede {
    /// No protection beyond the in-process single flight (the default).
    pub const DEFAULT: Self = Self {
        lease: None,
        beta: None,
        grace: None,
        jitter: 0.0,
    };

    /// Take a lease on a miss so one caller across all processes computes; `lease` is how
    /// long a holder may compute before others stop waiting (and the lease's expiry).
    #[must_use]
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = (!lease.is_zero()).then_some(lease);
        self
    }

    /// Recompute early with the probabilistic rule, weighted by `beta` (> 0).
    #[must_use]
    pub fn early_refresh(mut self, beta: f64) -> Self {
        self.beta = (beta.is_finite() && beta > 0.0).then_some(beta);
        self
    }

    /// Keep entries `grace` past their timeout and serve them while one caller refreshes.
    #[must_use]
    pub fn serve_stale(mut self, grace: Duration) -> Self {
        self.grace = (!grace.is_zero()).then_some(grace);
        self
    }

    /// Shorten each entry's timeout by a random fraction up to `fraction` (0 to 1).
    #[must_use]
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.jitter = if fraction.is_finite() {
            fraction.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self
    }

    /// The lease time, if leases are on.
    pub fn lease_time(&self) -> Option<Duration> {
        self.lease
    }

    /// True when stored values need a soft expiry in their envelope.
    fn tracks_expiry(&self) -> bool {
        self.beta.is_some() || self.grace.is_some()
    }

    /// The backend TTL and the envelope metadata for a value that took `compute` to make.
    pub(crate) fn store_plan(&self, ttl: Ttl, compute: Duration, now: SystemTime) -> (Ttl, Meta) {
        let Some(ttl) = ttl else {
            return (
                None,
                Meta {
                    compute_time: Some(compute),
                    soft_expiry: None,
                },
            );
        };
        let ttl = if self.jitter > 0.0 {
            ttl.mul_f64(1.0 - self.jitter * fastrand::f64())
                .max(Duration::from_millis(1))
        } else {
            ttl
        };
        let soft_expiry = self.tracks_expiry().then(|| now + ttl);
        let hard_ttl = ttl + self.grace.unwrap_or_default();
        (
            Some(hard_ttl),
            Meta {
                compute_time: Some(compute),
                soft_expiry,
            },
        )
    }

    /// How a value read with `meta` should be used at `now`.
    pub(crate) fn freshness(&self, meta: &Meta, now: SystemTime) -> Freshness {
        let Some(expiry) = meta.soft_expiry else {
            return Freshness::Fresh;
        };
        if self.grace.is_some() && now >= expiry {
            return Freshness::Stale;
        }
        if let Some(beta) = self.beta {
            let delta = meta.compute_time.unwrap_or_default().as_secs_f64();
            // -ln(rand) in (0, inf): rand in (0, 1].
            let gap = delta * beta * -(1.0 - fastrand::f64()).ln();
            if now + Duration::from_secs_f64(gap.min(1e9)) >= expiry {
                return Freshness::Early;
            }
        }
        Freshness::Fresh
    }
}

/// What a hit's metadata says about the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Freshness {
    /// Use it.
    Fresh,
    /// Use it, but one caller should refresh it now (serve-stale).
    Stale,
    /// Recompute now (early refresh).
    Early,
}

/// The key of the lease that guards `key`.
pub(crate) fn lease_key(key: &str) -> String {
    let mut lease = String::with_capacity(key.len() + 7);
    lease.push_str(key);
    lease.push_str(":~lease");
    lease
}

/// A token that identifies one lease holder.
pub(crate) fn lease_token() -> Bytes {
    Bytes::from(format!(
        "{:016x}{:016x}",
        fastrand::u64(..),
        fastrand::u64(..)
    ))
}

/// Back-off between polls while another process holds the lease: 5 ms doubling to 100 ms.
pub(crate) fn poll_delay(attempt: u32) -> Duration {
    Duration::from_millis(5u64.saturating_mul(1 << attempt.min(5)).min(100))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serve_stale_keeps_entries_for_the_grace_period() {
        let s = Stampede::default().serve_stale(Duration::from_secs(30));
        let now = SystemTime::now();
        let (ttl, meta) = s.store_plan(Some(Duration::from_secs(60)), Duration::ZERO, now);
        assert_eq!(ttl, Some(Duration::from_secs(90)));
        assert_eq!(meta.soft_expiry, Some(now + Duration::from_secs(60)));
        assert_eq!(s.freshness(&meta, now), Freshness::Fresh);
        assert_eq!(
            s.freshness(&meta, now + Duration::from_secs(61)),
            Freshness::Stale
        );
    }

    #[test]
    fn early_refresh_fires_more_often_near_expiry() {
        let s = Stampede::default().early_refresh(1.0);
        let now = SystemTime::now();
        let meta = Meta {
            compute_time: Some(Duration::from_secs(1)),
            soft_expiry: Some(now + Duration::from_secs(60)),
        };
        let early = |at: SystemTime| {
            (0..2_000)
                .filter(|_| s.freshness(&meta, at) == Freshness::Early)
                .count()
        };
        assert_eq!(early(now), 0, "a minute away with a 1 s compute: e^-60");
        let near = early(now + Duration::from_millis(59_500));
        assert!(
            (500..1_700).contains(&near),
            "half a second away: about 1 - e^-0.5 = 39%, got {near}"
        );
        assert_eq!(early(now + Duration::from_secs(60)), 2_000);
    }

    #[test]
    fn jitter_only_shortens() {
        let s = Stampede::default().jitter(0.5);
        for _ in 0..100 {
            let (ttl, _) = s.store_plan(
                Some(Duration::from_secs(100)),
                Duration::ZERO,
                SystemTime::now(),
            );
            let ttl = ttl.unwrap();
            assert!(ttl <= Duration::from_secs(100) && ttl >= Duration::from_secs(50));
        }
    }

    #[test]
    fn no_expiry_means_no_soft_expiry() {
        let s = Stampede::default().serve_stale(Duration::from_secs(1));
        let (ttl, meta) = s.store_plan(None, Duration::ZERO, SystemTime::now());
        assert_eq!((ttl, meta.soft_expiry), (None, None));
    }
}
