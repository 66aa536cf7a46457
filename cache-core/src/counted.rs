//! Decoding what a read found, counting a hit, a miss or a decode error.

use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::Error;
use crate::codec::Codec;
use crate::envelope::{self, Meta};
use crate::stats::Counters;

/// Decodes bytes read from the backend, counting a hit, a miss or a decode error.
///
/// In line in the hit path, the decode error's report out of it: a memory hit ran 20
/// instructions of this function's own entry and exit (`hit_cost`).
#[inline(always)]
pub(crate) fn open_counted<C: Codec, T: DeserializeOwned>(
    counters: Counters<'_>,
    label: &str,
    bytes: Option<Bytes>,
) -> Option<(T, Meta)> {
    let Some(bytes) = bytes else {
        counters.miss();
        return None;
    };
    match envelope::open_owned::<C, T>(bytes) {
        Ok(opened) => {
            counters.hit();
            Some(opened)
        }
        Err(error) => {
            undecodable(counters, label, &error);
            None
        }
    }
}

/// Reports and counts a value that did not decode, which is then a miss.
#[cold]
#[inline(never)]
fn undecodable(counters: Counters<'_>, label: &str, error: &Error) {
    tracing::warn!(function = label, error = %format_args!("{error:#}"), "cached value did not decode; treating as a miss");
    counters.error();
    counters.miss();
}

/// [`open_counted`] without the metadata.
pub(crate) fn decode_counted<C: Codec, T: DeserializeOwned>(
    counters: Counters<'_>,
    label: &str,
    bytes: Option<Bytes>,
) -> Option<T> {
    open_counted::<C, T>(counters, label, bytes).map(|(value, _)| value)
}
