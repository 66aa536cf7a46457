//! Decoding what a read found, counting a hit, a miss or a decode error.

use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::codec::Codec;
use crate::envelope::{self, Meta};
use crate::stats::Counters;

/// Decodes bytes read from the backend, counting a hit, a miss or a decode error.
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
            tracing::warn!(function = label, error = %format_args!("{error:#}"), "cached value did not decode; treating as a miss");
            counters.error();
            counters.miss();
            None
        }
    }
}

/// [`open_counted`] without the metadata.
pub(crate) fn decode_counted<C: Codec, T: DeserializeOwned>(
    counters: Counters<'_>,
    label: &str,
    bytes: Option<Bytes>,
) -> Option<T> {
    open_counted::<C, T>(counters, label, bytes).map(|(value, _)| value)
}
