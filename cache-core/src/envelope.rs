//! The envelope around every stored value.
//!
//! The envelope is a trailer: the payload starts the stored bytes, so a value decoded in
//! place (a large `String` read from Redis) becomes the buffer it was read into, cut short
//! before the trailer, without a byte moved. Read from the end:
//!
//! ```text
//! payload               the codec's bytes, the first `split` of them moved to the end
//! [timing]  12 bytes    flag bit 0: compute time in ms (u32 LE), soft expiry in ms since the
//!                       epoch (u64 LE, 0 for none)
//! [split]    1 byte     flag bit 1: how many of the codec's first bytes end the payload
//! type       4 bytes    the low 32 bits of XXH3-64 of the stored type's name, little-endian;
//!                       0 for values written through the `Cache` API, which any type may read
//! flags      1 byte     bit 0: a timing block, bit 1: a split byte; other bits are refused
//! codec      1 byte     Codec::ID of the payload's codec
//! version    1 byte     0xC2, envelope format version 2: the last byte
//! ```
//!
//! The trailer is 7 bytes, 8 with a split, 19 or 20 with a timing block. A codec may ask
//! for a split: [`Bincode`](crate::codec::Bincode) writes a value that is one string or byte
//! string (through newtype structs and `Some`s) as a prefix (a `1` per `Some`, the length)
//! followed by the bytes, and has the prefix stored after the bytes, so the bytes start the
//! stored value. Reading puts nothing back in front: the codec reads the prefix where it is.
//!
//! A stored `None` is a payload like any other, so it is a real hit read with one GET. A
//! value written by another codec, for another type, or by another envelope version is a
//! miss, and the fresh value overwrites it. So is a payload that the codec refuses because
//! decoding it would pass the bounds relative to its size (see [`codec`](crate::codec)).
//!
//! Version 1 (the header first: `0xC1`, codec, flags, type, timing, then the payload) is
//! read as a miss. A version-1 value would be read as this version only if it happened to
//! end in a valid trailer for the reader's codec and type (`0xC2`, the codec's id, valid
//! flags and the type's 32-bit hash, or 0) and what came before decoded as the type; a
//! version-1 value that ends in a string never does, as UTF-8 text never ends in `0xC2`.
//! (The other way round, a process of the previous version reads a value of this version
//! as a miss unless it starts with `0xC1`, which the bytes of a `String` never do.)

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::Codec;
use crate::{Error, ErrorKind, Result};

const MAGIC_V2: u8 = 0xC2;
const FLAG_TIMING: u8 = 1;
const FLAG_SPLIT: u8 = 2;
const KNOWN_FLAGS: u8 = FLAG_TIMING | FLAG_SPLIT;
/// The trailer's fixed end: type, flags, codec, version.
const FIXED_LEN: usize = 7;
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
    let split = C::encode_split(value, &mut out)?;
    let timed = meta.compute_time.is_some() || meta.soft_expiry.is_some();
    let mut flags = 0;
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
        flags |= FLAG_TIMING;
    }
    if split != 0 {
        out.push(split);
        flags |= FLAG_SPLIT;
    }
    out.extend_from_slice(&tag.to_le_bytes());
    out.extend_from_slice(&[flags, C::ID, MAGIC_V2]);
    Ok(Bytes::from(out))
}

/// What an envelope's trailer says.
struct Trailer {
    /// The payload's length: it is `bytes[..payload]`.
    payload: usize,
    /// How many of the codec's first bytes end the payload.
    split: usize,
    codec: u8,
    tag: u32,
    meta: Meta,
}

/// Reads the trailer of an envelope of this version; always inlined, as it is a few
/// comparisons on every hit.
#[inline(always)]
fn trailer(bytes: &[u8]) -> Result<Trailer> {
    let mut end = bytes
        .len()
        .checked_sub(FIXED_LEN)
        .ok_or_else(|| decode_error("shorter than an envelope trailer"))?;
    let [t0, t1, t2, t3, flags, codec, version] =
        *<&[u8; FIXED_LEN]>::try_from(&bytes[end..]).expect("7 bytes");
    if version != MAGIC_V2 {
        return Err(decode_error(
            "not written by this version of the library (unknown envelope)",
        ));
    }
    if flags & !KNOWN_FLAGS != 0 {
        return Err(decode_error(format!("unknown envelope flags {flags:#04x}")));
    }
    let mut split = 0;
    if flags & FLAG_SPLIT != 0 {
        end = end
            .checked_sub(1)
            .ok_or_else(|| decode_error("truncated split byte"))?;
        split = usize::from(bytes[end]);
    }
    let mut meta = Meta::default();
    if flags & FLAG_TIMING != 0 {
        end = end
            .checked_sub(TIMING_LEN)
            .ok_or_else(|| decode_error("truncated timing block"))?;
        meta = read_timing(&bytes[end..end + TIMING_LEN]);
    }
    if split > end {
        return Err(decode_error("a split longer than the payload"));
    }
    Ok(Trailer {
        payload: end,
        split,
        codec,
        tag: u32::from_le_bytes([t0, t1, t2, t3]),
        meta,
    })
}

/// The metadata of an enveloped value, without decoding the value.
pub fn peek_meta(bytes: &[u8]) -> Option<Meta> {
    trailer(bytes).ok().map(|trailer| trailer.meta)
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
    let trailer = checked::<C, T>(bytes)?;
    let value = C::decode_split(&bytes[..trailer.payload], trailer.split)?;
    Ok((value, trailer.meta))
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
fn open_in_place<C: Codec, T: DeserializeOwned>(bytes: Bytes) -> Result<(T, Meta)> {
    let trailer = checked::<C, T>(&bytes)?;
    // Unique, so the same buffer (`Bytes::truncate` could allocate to share it).
    let mut payload = BytesMut::from(bytes);
    payload.truncate(trailer.payload);
    let value = C::decode_owned_split(payload, trailer.split)?;
    Ok((value, trailer.meta))
}

/// The trailer of a value of type `T` written with codec `C`, checked.
#[inline(always)]
fn checked<C: Codec, T>(bytes: &[u8]) -> Result<Trailer> {
    let trailer = trailer(bytes)?;
    if trailer.codec != C::ID {
        return Err(decode_error(format!(
            "written by codec {}, read with codec {}",
            trailer.codec,
            C::ID
        )));
    }
    if trailer.tag != UNTYPED && trailer.tag != type_tag::<T>() {
        return Err(decode_error(format!(
            "written for another type than {}",
            std::any::type_name::<T>()
        )));
    }
    Ok(trailer)
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
            assert_eq!(
                &sealed[..text.len()],
                text.as_bytes(),
                "the text comes first"
            );
            let expected = open::<Bincode, String>(&sealed).unwrap();
            // Unique bytes (as read from Redis): the string is their buffer, cut short.
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
    fn the_trailer_is_seven_bytes_plus_a_split_byte_and_a_timing_block() {
        let timed = Meta {
            compute_time: Some(Duration::from_millis(1)),
            soft_expiry: None,
        };
        let len = |bytes: Bytes| bytes.len();
        let page = "p".repeat(5_000);
        assert_eq!(
            len(seal::<Bincode, _>(&7u8, Meta::default()).unwrap()),
            1 + 7
        );
        assert_eq!(len(seal::<Bincode, _>(&7u8, timed).unwrap()), 1 + 19);
        assert_eq!(
            len(seal::<Bincode, _>(&"ab", Meta::default()).unwrap()),
            3 + 8
        );
        assert_eq!(len(seal::<Bincode, _>(&"ab", timed).unwrap()), 3 + 20);
        assert_eq!(
            len(seal::<Bincode, _>(&page, Meta::default()).unwrap()),
            5_003 + 8
        );
        assert_eq!(len(seal::<Bincode, _>(&page, timed).unwrap()), 5_003 + 20);
        let sealed = seal::<Bincode, _>(&Some(page.clone()), timed).unwrap();
        assert_eq!(&sealed[..5_000], page.as_bytes(), "the text first");
        assert_eq!(
            &sealed[5_000..5_004],
            [1, 251, 0x88, 0x13],
            "its Some, its length"
        );
        let trailer = &sealed[5_004 + TIMING_LEN..];
        assert_eq!(trailer[0], 4, "split: those 4 bytes");
        assert_eq!(&trailer[5..], [FLAG_TIMING | FLAG_SPLIT, Bincode::ID, 0xC2]);
        assert_eq!(peek_meta(&sealed), Some(timed));
        let (opened, meta) = open::<Bincode, Option<String>>(&sealed).unwrap();
        assert_eq!((opened.as_deref(), meta), (Some(page.as_str()), timed));
    }

    /// `value` in envelope version 1, as the previous version of this module sealed it:
    /// `0xC1`, codec, flags, type, the timing block if any, then the payload.
    fn seal_v1<T: Serialize + ?Sized>(value: &T, meta: Meta, tag: u32) -> Vec<u8> {
        let timed = meta.compute_time.is_some() || meta.soft_expiry.is_some();
        let mut out = vec![0xC1, Bincode::ID, u8::from(timed)];
        out.extend_from_slice(&tag.to_le_bytes());
        if timed {
            let compute = meta.compute_time.map_or(0, |d| d.as_millis() as u32);
            let expiry = meta.soft_expiry.map_or(0, |t| {
                t.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
            });
            out.extend_from_slice(&compute.to_le_bytes());
            out.extend_from_slice(&expiry.to_le_bytes());
        }
        Bincode::encode(value, &mut out).unwrap();
        out
    }

    /// Opens version-1 bytes as `T` every way a hit can: each must be a miss.
    fn assert_v1_is_a_miss<T: Serialize + DeserializeOwned + std::fmt::Debug>(value: &T) {
        let timed = Meta {
            compute_time: Some(Duration::from_millis(250)),
            soft_expiry: Some(UNIX_EPOCH + Duration::from_millis(1_700_000_000_123)),
        };
        for meta in [Meta::default(), timed] {
            for tag in [type_tag::<T>(), UNTYPED] {
                let old = seal_v1(value, meta, tag);
                let what = format!("{} {meta:?} tag {tag}", std::any::type_name::<T>());
                assert!(open::<Bincode, T>(&old).unwrap_err().is_decode(), "{what}");
                let owned = open_owned::<Bincode, T>(Bytes::from(old.clone()));
                assert!(owned.unwrap_err().is_decode(), "{what}");
                assert_eq!(peek_meta(&old), None, "{what}");
            }
        }
    }

    #[test]
    fn values_of_envelope_version_1_are_misses_not_misreads() {
        assert_v1_is_a_miss(&"x".repeat(300_000));
        assert_v1_is_a_miss(&String::new());
        assert_v1_is_a_miss(&"ends in é".to_owned());
        assert_v1_is_a_miss(&Some("Ada".to_owned()));
        assert_v1_is_a_miss(&None::<String>);
        assert_v1_is_a_miss(&7u64);
        assert_v1_is_a_miss(&vec![1u8, 2, 3]);
        assert_v1_is_a_miss(&vec!["a".to_owned(), "b".to_owned()]);
        assert_v1_is_a_miss(&(0xC2u8, 1u32));
    }

    proptest::proptest! {
        #[test]
        fn no_version_1_text_or_bytes_is_read_as_version_2(
            text in ".{0,64}",
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
        ) {
            for tag in [type_tag::<String>(), UNTYPED] {
                let old = seal_v1(&text, Meta::default(), tag);
                proptest::prop_assert!(open::<Bincode, String>(&old).is_err());
                let old = seal_v1(&bytes, Meta::default(), tag);
                proptest::prop_assert!(open::<Bincode, Vec<u8>>(&old).is_err());
            }
        }
    }

    #[test]
    fn a_damaged_trailer_is_a_decode_error() {
        let sealed = seal::<Bincode, _>(&"abc".to_owned(), Meta::default())
            .unwrap()
            .to_vec();
        let with = |at: usize, byte: u8| {
            let mut bytes = sealed.clone();
            let end = bytes.len();
            bytes[end - at] = byte;
            bytes
        };
        // Unknown flags; another codec; a split longer than the payload; a timing block
        // claimed that is not there; too short for a trailer.
        for damaged in [
            with(3, 0x06),
            with(2, 9),
            with(8, 200),
            with(3, FLAG_TIMING | FLAG_SPLIT),
            sealed[sealed.len() - 6..].to_vec(),
        ] {
            let opened = open::<Bincode, String>(&damaged);
            assert!(opened.unwrap_err().is_decode(), "{damaged:?}");
            let opened = open_owned::<Bincode, String>(Bytes::from(damaged.clone()));
            assert!(opened.unwrap_err().is_decode(), "{damaged:?}");
        }
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
