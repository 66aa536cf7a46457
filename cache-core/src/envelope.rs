//! The envelope around every stored value.
//!
//! ```text
//! byte 0      0xC1      envelope format, version 1
//! byte 1      codec     Codec::ID of the payload's codec
//! byte 2      flags     bit 0: a timing block follows
//! bytes 3..7  type      the low 32 bits of XXH3-64 of the stored type's name, little-endian;
//!                       0 for values written through the `Cache` API, which any type may read
//! [timing]    12 bytes  compute time in ms (u32 LE), soft expiry in ms since the epoch (u64 LE)
//! payload               the codec's bytes
//! ```
//!
//! A stored `None` is a payload like any other, so it is a real hit read with one GET. A
//! value written by another codec, for another type, or by a future envelope version is a
//! miss, and the fresh value overwrites it. So is a payload that the codec refuses because
//! decoding it would pass the bounds relative to its size (see [`codec`](crate::codec)).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Buf, Bytes};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::Codec;
use crate::{Error, ErrorKind, Result};

const MAGIC_V1: u8 = 0xC1;
const FLAG_TIMING: u8 = 1;
const HEADER_LEN: usize = 7;
const TIMING_LEN: usize = 12;

/// What the envelope records about a value besides the value itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Meta {
    /// How long the value took to compute.
    pub compute_time: Option<Duration>,
    /// When the value should be refreshed, though it may still be served.
    pub soft_expiry: Option<SystemTime>,
}

/// A stable fingerprint of `T`'s name, so a changed type reads as a miss.
pub fn type_tag<T: ?Sized>() -> u32 {
    xxhash_rust::xxh3::xxh3_64(std::any::type_name::<T>().as_bytes()) as u32
}

/// Encodes `value` with codec `C` inside an envelope that only `T` may read back.
pub fn seal<C: Codec, T: Serialize + ?Sized>(value: &T, meta: Meta) -> Result<Bytes> {
    seal_tagged::<C, T>(value, meta, type_tag::<T>())
}

/// Encodes `value` with codec `C` inside an envelope that any type with a compatible serde
/// form may read back (`&str` written, `String` read): what the `Cache` API writes.
pub fn seal_untyped<C: Codec, T: Serialize + ?Sized>(value: &T, meta: Meta) -> Result<Bytes> {
    seal_tagged::<C, T>(value, meta, UNTYPED)
}

const UNTYPED: u32 = 0;

fn seal_tagged<C: Codec, T: Serialize + ?Sized>(value: &T, meta: Meta, tag: u32) -> Result<Bytes> {
    let mut out = Vec::with_capacity(64);
    out.push(MAGIC_V1);
    out.push(C::ID);
    let timed = meta.compute_time.is_some() || meta.soft_expiry.is_some();
    out.push(if timed { FLAG_TIMING } else { 0 });
    out.extend_from_slice(&tag.to_le_bytes());
    if timed {
        let compute_ms = meta
            .compute_time
            .map_or(0, |d| d.as_millis().min(u32::MAX as u128) as u32);
        let expiry_ms = meta
            .soft_expiry
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis().min(u64::MAX as u128) as u64);
        out.extend_from_slice(&compute_ms.to_le_bytes());
        out.extend_from_slice(&expiry_ms.to_le_bytes());
    }
    C::encode(value, &mut out)?;
    Ok(Bytes::from(out))
}

/// The metadata of an enveloped value, without decoding the value.
pub fn peek_meta(bytes: &[u8]) -> Option<Meta> {
    let header = bytes.get(..HEADER_LEN)?;
    if header[0] != MAGIC_V1 || header[2] & FLAG_TIMING == 0 {
        return (header[0] == MAGIC_V1).then(Meta::default);
    }
    let timing = bytes.get(HEADER_LEN..HEADER_LEN + TIMING_LEN)?;
    Some(read_timing(timing))
}

fn read_timing(timing: &[u8]) -> Meta {
    let compute_ms = u32::from_le_bytes(timing[..4].try_into().expect("4 bytes"));
    let expiry_ms = u64::from_le_bytes(timing[4..].try_into().expect("8 bytes"));
    Meta {
        compute_time: Some(Duration::from_millis(compute_ms.into())),
        soft_expiry: (expiry_ms != 0).then(|| UNIX_EPOCH + Duration::from_millis(expiry_ms)),
    }
}

/// Decodes an enveloped value of type `T` written with codec `C`.
pub fn open<C: Codec, T: DeserializeOwned>(bytes: &[u8]) -> Result<(T, Meta)> {
    let (meta, start) = header::<C, T>(bytes)?;
    Ok((C::decode(&bytes[start..])?, meta))
}

/// [`open`] for bytes the caller gives up: when nothing else holds them (a value just read
/// from Redis), the codec may build the value inside their buffer
/// ([`Codec::decode_owned`]), so a large `String` hit holds one buffer, not two.
#[inline]
pub fn open_owned<C: Codec, T: DeserializeOwned>(bytes: Bytes) -> Result<(T, Meta)> {
    if bytes.is_unique() {
        open_in_place::<C, T>(bytes)
    } else {
        // Held elsewhere too (the memory backend keeps its entries as shared `Bytes`).
        open::<C, T>(&bytes)
    }
}

/// [`open_owned`] for bytes that nothing else holds; out of line, so that the shared case
/// stays as small as [`open`] where it is inlined.
#[inline(never)]
fn open_in_place<C: Codec, T: DeserializeOwned>(mut bytes: Bytes) -> Result<(T, Meta)> {
    let (meta, start) = header::<C, T>(&bytes)?;
    bytes.advance(start);
    Ok((C::decode_owned(bytes)?, meta))
}

/// Checks the envelope of a value of type `T` written with codec `C`: its metadata and
/// where its payload starts. Always inlined, as it is a few comparisons on every hit.
#[inline(always)]
fn header<C: Codec, T>(bytes: &[u8]) -> Result<(Meta, usize)> {
    let header = bytes
        .get(..HEADER_LEN)
        .ok_or_else(|| decode_error("shorter than an envelope header"))?;
    if header[0] != MAGIC_V1 {
        return Err(decode_error(
            "not written by this library (unknown envelope)",
        ));
    }
    if header[1] != C::ID {
        return Err(decode_error(format!(
            "written by codec {}, read with codec {}",
            header[1],
            C::ID
        )));
    }
    let tag = u32::from_le_bytes(header[3..7].try_into().expect("4 bytes"));
    if tag != UNTYPED && tag != type_tag::<T>() {
        return Err(decode_error(format!(
            "written for another type than {}",
            std::any::type_name::<T>()
        )));
    }
    if header[2] & FLAG_TIMING == 0 {
        return Ok((Meta::default(), HEADER_LEN));
    }
    let timing = bytes
        .get(HEADER_LEN..HEADER_LEN + TIMING_LEN)
        .ok_or_else(|| decode_error("truncated timing block"))?;
    Ok((read_timing(timing), HEADER_LEN + TIMING_LEN))
}

fn decode_error(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Decode, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Bincode;

    #[test]
    fn round_trips_with_and_without_timing() {
        let plain = seal::<Bincode, _>(&Some("x".to_owned()), Meta::default()).unwrap();
        let (value, meta) = open::<Bincode, Option<String>>(&plain).unwrap();
        assert_eq!(value.as_deref(), Some("x"));
        assert_eq!(meta, Meta::default());

        let meta = Meta {
            compute_time: Some(Duration::from_millis(250)),
            soft_expiry: Some(UNIX_EPOCH + Duration::from_millis(1_700_000_000_123)),
        };
        let timed = seal::<Bincode, _>(&7u64, meta).unwrap();
        assert_eq!(open::<Bincode, u64>(&timed).unwrap(), (7, meta));
    }

    #[test]
    fn owned_bytes_open_like_borrowed_ones_in_their_own_buffer() {
        let meta = Meta {
            compute_time: Some(Duration::from_millis(3)),
            soft_expiry: None,
        };
        let text = "x".repeat(300_000);
        for sealed in [
            seal::<Bincode, _>(&text, meta).unwrap(),
            seal::<Bincode, _>(&text, Meta::default()).unwrap(),
        ] {
            let expected = open::<Bincode, String>(&sealed).unwrap();
            // Unique bytes (as read from Redis): the string is built in their buffer.
            let unique = Bytes::from(sealed.to_vec());
            let start = unique.as_ptr();
            let opened = open_owned::<Bincode, String>(unique).unwrap();
            assert_eq!(opened, expected);
            assert_eq!(opened.0.as_ptr(), start);
            // Shared bytes (as held by the memory backend): decoded from the slice.
            let held = sealed.clone();
            assert_eq!(open_owned::<Bincode, String>(sealed).unwrap(), expected);
            assert_eq!(
                open::<Bincode, String>(&held).unwrap(),
                expected,
                "left intact"
            );
        }
        let wrong = seal::<Bincode, _>(&1u32, Meta::default()).unwrap();
        assert!(
            open_owned::<Bincode, String>(wrong)
                .unwrap_err()
                .is_decode()
        );
    }

    #[test]
    fn untyped_values_read_as_any_compatible_type() {
        let sealed = seal_untyped::<Bincode, _>(&"Ada", Meta::default()).unwrap();
        assert_eq!(open::<Bincode, String>(&sealed).unwrap().0, "Ada");
    }

    #[test]
    fn a_stored_none_is_a_value() {
        let none = seal::<Bincode, Option<u32>>(&None, Meta::default()).unwrap();
        assert_eq!(open::<Bincode, Option<u32>>(&none).unwrap().0, None);
    }

    #[test]
    fn another_type_or_garbage_is_a_decode_error() {
        let sealed = seal::<Bincode, _>(&1u32, Meta::default()).unwrap();
        assert!(open::<Bincode, String>(&sealed).unwrap_err().is_decode());
        assert!(
            open::<Bincode, u32>(b"garbage bytes")
                .unwrap_err()
                .is_decode()
        );
        assert!(open::<Bincode, u32>(b"").unwrap_err().is_decode());
        assert!(open::<Bincode, u32>(&sealed[..sealed.len() - 1]).is_err());
    }
}
