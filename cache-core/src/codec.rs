//! Value codecs: how a value becomes bytes.
//!
//! [`Bincode`] (bincode 2 in serde mode) is the default: compact and fast. `Json` (feature
//! `json`) stores text that other languages can read. Any other format plugs in by
//! implementing [`Codec`] and naming it in `#[memoize(codec = MyCodec)]`.
//!
//! # Bounded decoding
//!
//! A stored value is input from outside the process: anyone who can write to the Redis
//! database can put any bytes under a function's key. Both codecs of this crate decode within
//! bounds relative to the stored size, so a hostile or corrupt value is a decode error (for
//! an annotated function: a miss, logged and counted, and the body runs), never a large
//! allocation. Decoding `n` stored bytes:
//!
//! - every sequence and map length must be plausible for the stored bytes left: an element
//!   of a type that is not zero-sized takes at least one byte, so a length beyond the bytes
//!   not yet accounted for is an error before any element is decoded;
//! - the elements of all sequences and maps (counted at `size_of` each) and all strings and
//!   byte strings together may take at most [`DECODED_BYTES_PER_STORED_BYTE`]` * n +
//!   `[`DECODED_BYTES_ALLOWANCE`] bytes, and never more than [`MAX_DECODED_BYTES`]; with
//!   bincode the whole announced length is charged before the first element is decoded;
//! - elements of zero-sized types (`Vec<()>`), which take no stored bytes, are limited to
//!   [`MAX_ZERO_SIZED_ELEMENTS`] in the whole value;
//! - values nest at most [`MAX_DEPTH`] levels deep (each `Option`, struct, tuple, enum,
//!   sequence and map is a level), so a hostile value cannot overflow the stack.
//!
//! What the bound counts is the decoded elements' own size: the spare capacity of a growing
//! `Vec` or hash table, serde's pre-allocation of at most 1 MiB for a sequence being checked,
//! and heap data behind a `Box`, `Rc` or `Arc` inside an element (counted at its pointer's
//! size) come on top. A value that needs more than the bound (say, a megabyte of
//! `Vec<Option<[u64; 8]>>` that is mostly `None`, 72 decoded bytes per stored byte) is a miss
//! every time: cache it in a more compact form. The integration test
//! `cache-core/tests/decode_memory.rs` measures what decoding hostile values holds.
//!
//! ```
//! use cache_core::codec::{Bincode, Codec};
//!
//! // 16 bytes claiming 2^40 zero-sized elements: an error, not a hit.
//! let mut bytes = vec![0xFD]; // a u64 length follows
//! bytes.extend_from_slice(&(1u64 << 40).to_le_bytes());
//! bytes.resize(16, 0);
//! assert!(Bincode::decode::<Vec<()>>(&bytes).unwrap_err().is_decode());
//!
//! // 20 MB that claim 20 million empty strings (480 MB decoded): an error, found before
//! // the elements are decoded.
//! let mut bytes = vec![0xFC]; // a u32 length follows
//! bytes.extend_from_slice(&20_000_000u32.to_le_bytes());
//! bytes.resize(bytes.len() + 20_000_000, 0);
//! assert!(Bincode::decode::<Vec<String>>(&bytes).unwrap_err().is_decode());
//! ```

mod borrowing;
mod budget;
mod owned;
mod split;
mod utf8;

use bytes::{Buf, BytesMut};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Error, ErrorKind, Result};
use borrowing::Seed;
use budget::Budget;
use owned::Refusal;

/// The most bytes a decoded value may take, whatever its stored size (64 MiB).
pub const MAX_DECODED_BYTES: usize = 64 * 1024 * 1024;

/// How many decoded bytes each stored byte may become (32: enough for a sequence of empty
/// `String`s or `Vec`s, 24 bytes each from one stored byte).
pub const DECODED_BYTES_PER_STORED_BYTE: usize = 32;

/// Decoded bytes allowed on top of [`DECODED_BYTES_PER_STORED_BYTE`] per stored byte, so
/// small values are never refused (64 KiB).
pub const DECODED_BYTES_ALLOWANCE: usize = 64 * 1024;

/// The most elements of zero-sized types (such as `()`) in one decoded value (65,536).
pub const MAX_ZERO_SIZED_ELEMENTS: usize = 1 << 16;

/// The deepest a decoded value may nest, counting each `Option`, struct, tuple, enum,
/// sequence and map as a level (128, serde_json's own limit for arrays and objects).
pub const MAX_DEPTH: usize = 128;

/// A serialization format for cached values.
///
/// `ID` is stored in every value's envelope, so a value written by one codec is never read
/// by another (it is a miss instead).
///
/// ```
/// use cache_core::codec::{Bincode, Codec};
///
/// let mut bytes = Vec::new();
/// Bincode::encode(&("hello", 42u32), &mut bytes)?;
/// let back: (String, u32) = Bincode::decode(&bytes)?;
/// assert_eq!(back, ("hello".to_owned(), 42));
/// # Ok::<(), cache_core::Error>(())
/// ```
pub trait Codec: Send + Sync + 'static {
    /// A number unique to the format (0 to 15 are reserved for this crate).
    const ID: u8;

    /// Appends the encoding of `value` to `out`.
    fn encode<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<()>;

    /// Decodes a whole value from `bytes`; never allocates much more than `bytes` implies
    /// (the codecs of this crate keep to the [bounds](self#bounded-decoding) above).
    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T>;

    /// Decodes a whole value from `bytes`, which the caller gives up: a codec may build the
    /// value inside their buffer instead of copying out of it. The value must be the one
    /// [`decode`](Self::decode) returns for the same bytes.
    ///
    /// The default decodes from the slice. [`Bincode`] decodes a `String` (or an owned byte
    /// buffer such as `serde_bytes::ByteBuf`, inside any newtype structs and `Some`s) in
    /// place, so a hit on a large text read from Redis holds one buffer, not the reply and a
    /// copy.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use cache_core::codec::{Bincode, Codec};
    ///
    /// let mut bytes = Vec::new();
    /// Bincode::encode("a large page", &mut bytes)?;
    /// let page: String = Bincode::decode_owned(BytesMut::from(&bytes[..]))?;
    /// assert_eq!(page, "a large page");
    /// # Ok::<(), cache_core::Error>(())
    /// ```
    #[inline]
    fn decode_owned<T: DeserializeOwned>(bytes: BytesMut) -> Result<T> {
        Self::decode(&bytes)
    }

    /// Not public API: how the [envelope](crate::envelope) stores a payload. Appends the
    /// encoding of `value` to `out` like [`encode`](Self::encode), possibly with its first
    /// bytes moved to the end (so that what a value is decoded into in place starts the
    /// stored bytes), and returns how many were moved. The default moves none.
    #[doc(hidden)]
    #[inline]
    fn encode_split<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<u8> {
        Self::encode(value, out).map(|()| 0)
    }

    /// Not public API: [`decode`](Self::decode) for an encoding whose first `split` bytes
    /// end `bytes` (as [`encode_split`](Self::encode_split) wrote it). The default puts them
    /// back in front.
    #[doc(hidden)]
    #[inline]
    fn decode_split<T: DeserializeOwned>(bytes: &[u8], split: usize) -> Result<T> {
        decode_rejoined::<Self, T>(bytes, split)
    }

    /// Not public API: [`decode_owned`](Self::decode_owned) for an encoding whose first
    /// `split` bytes end `bytes`. The default puts them back in front.
    #[doc(hidden)]
    #[inline]
    fn decode_owned_split<T: DeserializeOwned>(bytes: BytesMut, split: usize) -> Result<T> {
        if split == 0 {
            Self::decode_owned(bytes)
        } else {
            decode_rejoined::<Self, T>(&bytes, split)
        }
    }
}

/// Decodes an encoding whose first `split` bytes end `bytes` by putting them back in front
/// (a copy, needed only when a split value is read as a type that does not decode it where
/// it is).
fn decode_rejoined<C: Codec + ?Sized, T: DeserializeOwned>(
    bytes: &[u8],
    split: usize,
) -> Result<T> {
    if split == 0 {
        return C::decode(bytes);
    }
    let (body, head) = bytes.split_at(bytes.len().saturating_sub(split));
    C::decode(&[head, body].concat())
}

/// bincode 2 in serde mode, with variable-length integers, decoding within the
/// [bounds](self#bounded-decoding) above. The default codec.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bincode;

const BINCODE_CONFIG: bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<MAX_DECODED_BYTES>,
> = bincode::config::standard().with_limit::<MAX_DECODED_BYTES>();

impl Codec for Bincode {
    const ID: u8 = 1;

    fn encode<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<()> {
        bincode::serde::encode_into_std_write(value, out, BINCODE_CONFIG)
            .map(drop)
            .map_err(|e| {
                Error::new(ErrorKind::Encode, "cannot encode the value with bincode").with_source(e)
            })
    }

    #[inline]
    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
        // Through `Borrowing`, strings are copied out of `bytes` instead of into a zeroed
        // buffer first, and every level is held to the budget (see the `borrowing` module).
        let budget = Budget::for_stored(bytes.len());
        let (value, read) =
            bincode::serde::seed_decode_from_slice(Seed::new(&budget), bytes, BINCODE_CONFIG)
                .map_err(|e| {
                    Error::new(
                        ErrorKind::Decode,
                        "cannot decode the stored value with bincode",
                    )
                    .with_source(e)
                })?;
        if read != bytes.len() {
            return Err(Error::new(
                ErrorKind::Decode,
                format!(
                    "cannot decode the stored value with bincode: {} trailing bytes",
                    bytes.len() - read
                ),
            ));
        }
        Ok(value)
    }

    #[inline]
    fn decode_owned<T: DeserializeOwned>(bytes: BytesMut) -> Result<T> {
        Self::decode_owned_split(bytes, 0)
    }

    fn encode_split<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<u8> {
        let start = out.len();
        Self::encode(value, out)?;
        let split = split::prefix_len(value, out.len() - start);
        out[start..].rotate_left(split.into());
        Ok(split)
    }

    #[inline]
    fn decode_split<T: DeserializeOwned>(bytes: &[u8], split: usize) -> Result<T> {
        if split == 0 {
            return Self::decode(bytes);
        }
        match owned::locate::<T>(bytes, split) {
            // Copied out of bytes that something else holds (the memory backend's entries).
            Some(text) => built(text.build(bytes[text.range()].to_vec())),
            None => decode_rejoined::<Self, T>(bytes, split),
        }
    }

    #[inline]
    fn decode_owned_split<T: DeserializeOwned>(mut bytes: BytesMut, split: usize) -> Result<T> {
        let Some(text) = owned::locate::<T>(&bytes, split) else {
            return decode_rejoined::<Self, T>(&bytes, split);
        };
        // The buffer becomes the value: cut short after the text, and its bytes moved to the
        // front only when the prefix is in front of them (`split` 0).
        let range = text.range();
        bytes.truncate(range.end);
        bytes.advance(range.start);
        built(text.build(Vec::from(bytes)))
    }
}

/// The result of decoding a string in place, as this module's error.
fn built<T>(value: Result<T, Refusal>) -> Result<T> {
    value.map_err(|refusal| match refusal {
        Refusal::NotUtf8 => Error::new(
            ErrorKind::Decode,
            "cannot decode the stored value with bincode: a string that is not UTF-8",
        ),
        Refusal::Invalid(e) => Error::new(
            ErrorKind::Decode,
            "cannot decode the stored value with bincode",
        )
        .with_source(e),
    })
}

/// JSON through `serde_json` (feature `json`), decoding within the
/// [bounds](self#bounded-decoding) above (serde_json announces no lengths, so each element is
/// charged as it is read).
#[cfg(feature = "json")]
#[derive(Debug, Clone, Copy, Default)]
pub struct Json;

#[cfg(feature = "json")]
impl Codec for Json {
    const ID: u8 = 2;

    fn encode<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<()> {
        serde_json::to_writer(out, value).map_err(|e| {
            Error::new(ErrorKind::Encode, "cannot encode the value as JSON").with_source(e)
        })
    }

    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
        use serde::de::DeserializeSeed;

        let budget = Budget::for_stored(bytes.len());
        let mut deserializer = serde_json::Deserializer::from_slice(bytes);
        Seed::new(&budget)
            .deserialize(&mut deserializer)
            .and_then(|value| deserializer.end().map(|()| value))
            .map_err(|e| {
                Error::new(ErrorKind::Decode, "cannot decode the stored value as JSON")
                    .with_source(e)
            })
    }
}

/// The codec used when none is named.
pub type DefaultCodec = Bincode;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_corrupt_length_prefix_is_an_error_not_an_allocation() {
        // A varint length of u64::MAX followed by nothing.
        let corrupt = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
        assert!(Bincode::decode::<String>(&corrupt).unwrap_err().is_decode());
        assert!(
            Bincode::decode::<Vec<u64>>(&corrupt)
                .unwrap_err()
                .is_decode()
        );
        // 4 GiB claimed, 3 bytes present.
        let mut claim = vec![0xFC];
        claim.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(Bincode::decode::<Vec<u8>>(&claim).unwrap_err().is_decode());
    }

    /// bincode's varint marker for a u64 length, then the length.
    fn claiming(len: u64) -> Vec<u8> {
        let mut bytes = vec![0xFD];
        bytes.extend_from_slice(&len.to_le_bytes());
        bytes
    }

    #[test]
    fn sixteen_bytes_never_decode_as_two_to_the_forty_units() {
        let mut bytes = claiming(1 << 40);
        bytes.resize(16, 0);
        let err = Bincode::decode::<Vec<()>>(&bytes).unwrap_err();
        assert!(err.is_decode());
        assert!(format!("{err:#}").contains("zero-sized"), "{err:#}");
    }

    #[test]
    fn zero_sized_elements_are_capped_across_the_whole_value() {
        let mut one = Vec::new();
        Bincode::encode(&vec![(); MAX_ZERO_SIZED_ELEMENTS], &mut one).unwrap();
        assert_eq!(
            Bincode::decode::<Vec<()>>(&one).unwrap().len(),
            MAX_ZERO_SIZED_ELEMENTS
        );
        let mut two = Vec::new();
        let half = vec![(); MAX_ZERO_SIZED_ELEMENTS / 2 + 1];
        Bincode::encode(&(half.clone(), half), &mut two).unwrap();
        assert!(
            Bincode::decode::<(Vec<()>, Vec<()>)>(&two)
                .unwrap_err()
                .is_decode()
        );
    }

    #[test]
    fn a_length_beyond_the_stored_bytes_is_refused_before_decoding_elements() {
        // A million u64s claimed, three present: refused at the length, not at the end.
        let mut bytes = claiming(1_000_000);
        bytes.extend_from_slice(&[1, 2, 3]);
        let err = Bincode::decode::<Vec<u64>>(&bytes).unwrap_err();
        assert!(format!("{err:#}").contains("stored bytes left"), "{err:#}");
        // The same for map entries, and for strings inside sequences.
        assert!(Bincode::decode::<std::collections::HashMap<u8, u8>>(&bytes).is_err());
        let mut strings = vec![2, 5];
        strings.extend_from_slice(b"abcde");
        assert!(
            Bincode::decode::<Vec<String>>(&strings)
                .unwrap_err()
                .is_decode()
        );
    }

    #[test]
    fn memory_is_bounded_by_a_multiple_of_the_stored_size() {
        // Empty strings take 24 bytes from one stored byte: 24x is within the bound.
        let empties = vec![String::new(); 100_000];
        let mut bytes = Vec::new();
        Bincode::encode(&empties, &mut bytes).unwrap();
        assert_eq!(Bincode::decode::<Vec<String>>(&bytes).unwrap(), empties);
        // Mostly-`None` options of a 72-byte type are beyond it: a miss, not 7 MB.
        let nones = vec![None::<[u64; 8]>; 100_000];
        let mut bytes = Vec::new();
        Bincode::encode(&nones, &mut bytes).unwrap();
        let err = Bincode::decode::<Vec<Option<[u64; 8]>>>(&bytes).unwrap_err();
        assert!(format!("{err:#}").contains("per stored byte"), "{err:#}");
    }

    #[test]
    fn big_values_still_decode() {
        let words: Vec<String> = (0..200_000).map(|i| format!("word {i}")).collect();
        let table: std::collections::BTreeMap<u32, Vec<u8>> =
            (0..1_000).map(|i| (i, vec![7; 1_000])).collect();
        let mut bytes = Vec::new();
        Bincode::encode(&(&words, &table), &mut bytes).unwrap();
        let (w, t): (Vec<String>, std::collections::BTreeMap<u32, Vec<u8>>) =
            Bincode::decode(&bytes).unwrap();
        assert_eq!((w, t), (words, table));
    }

    /// A type that nests as deep as its data says.
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code, reason = "only decoded")]
    struct Nest(Option<Box<Nest>>);

    #[test]
    fn a_value_nested_a_million_deep_is_a_miss_not_a_stack_overflow() {
        let bytes = vec![1u8; 1_000_000]; // `Some(` a million times
        let err = Bincode::decode::<Nest>(&bytes).unwrap_err();
        assert!(format!("{err:#}").contains("levels deep"), "{err:#}");
        let mut fine = vec![1u8; MAX_DEPTH / 2 - 1];
        fine.push(0);
        assert!(Bincode::decode::<Nest>(&fine).is_ok());
    }

    #[cfg(feature = "json")]
    #[test]
    fn json_is_held_to_the_same_bounds() {
        let units = format!("[{}null]", "null,".repeat(MAX_ZERO_SIZED_ELEMENTS));
        assert!(
            Json::decode::<Vec<()>>(units.as_bytes())
                .unwrap_err()
                .is_decode()
        );
        let nested = format!("{}1{}", "[".repeat(100), "]".repeat(100));
        assert!(Json::decode::<serde_json::Value>(nested.as_bytes()).is_ok());
        let nones = format!("[{}null]", "null,".repeat(100_000));
        let err = Json::decode::<Vec<Option<[u64; 32]>>>(nones.as_bytes()).unwrap_err();
        assert!(format!("{err:#}").contains("per stored byte"), "{err:#}");
        let value = serde_json::json!({"a": [1, "two", {"three": [null, true]}], "b": ""});
        let text = serde_json::to_vec(&value).unwrap();
        assert_eq!(Json::decode::<serde_json::Value>(&text).unwrap(), value);
        assert!(Json::decode::<u8>(b"1 2").unwrap_err().is_decode());
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut bytes = Vec::new();
        Bincode::encode(&1u8, &mut bytes).unwrap();
        bytes.push(0);
        assert!(Bincode::decode::<u8>(&bytes).is_err());
    }
}
