//! Decoding a value that is one string (or byte string) into the buffer it was read from.
//!
//! A value read from Redis arrives in a buffer of its own. Decoding a `String` from it the
//! usual way copies the bytes into a second buffer of the same size, so a hit holds both
//! at once; past the allocator's mmap threshold that is fresh memory, mapped and faulted in
//! on every hit. When the caller gives the buffer up ([`Codec::decode_owned`]) and the value
//! is a `String` or an owned byte buffer (`serde_bytes::ByteBuf`, `bytes::Bytes`), possibly
//! inside newtype structs and `Some`s, that same buffer becomes the value: one buffer per
//! hit, like a raw `GET`. In the envelope's layout the string's bytes start the buffer (its
//! bincode prefix, the `Some` tags and the length, is stored after them: see `split`), so
//! the buffer is only cut short; in bincode's own layout the bytes are moved to its front.
//!
//! What the value asks for is found by a [`Probe`]: a deserializer that only records the
//! first request and refuses it, so nothing is decoded twice.
//!
//! [`Codec::decode_owned`]: super::Codec::decode_owned

use std::cell::Cell;
use std::fmt;
use std::ops::Range;

use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde::forward_to_deserialize_any;

use super::utf8::string_from_utf8;
use super::{BINCODE_CONFIG, MAX_DECODED_BYTES};

/// The most newtype structs and `Option`s a probe looks through: a recursive type
/// (`struct List(Option<Box<List>>)`) would otherwise be probed for ever.
pub(super) const MAX_LAYERS: usize = 16;

/// What a value asks a deserializer for first, through any newtype structs and `Option`s.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Asked {
    /// An owned `String`.
    String,
    /// An owned byte buffer.
    ByteBuf,
    /// Anything else: decoded from a borrowed slice as usual.
    Other,
}

/// Where a `T` that is one string or byte buffer lies in its bincode encoding, and what it
/// asked for: found by [`locate`].
pub(super) struct Text {
    asked: Asked,
    start: usize,
    end: usize,
}

/// Finds the string of a `T` in `bytes`, a bincode encoding whose first `split` bytes end
/// it (0: bincode's own layout, the prefix first): when `T` asks for an owned string or byte
/// buffer (through any newtype structs and `Option`s), the prefix is a `Some` tag for each
/// of those `Option`s and a length that covers exactly the bytes the prefix is not, and
/// those bytes are within the decoding bounds of `bytes`. Otherwise `None`: the usual
/// decoding then reports what is wrong with them, or decodes another value.
#[inline(always)]
pub(super) fn locate<T: DeserializeOwned>(bytes: &[u8], split: usize) -> Option<Text> {
    let (asked, options) = asked_by::<T>();
    if asked == Asked::Other {
        return None;
    }
    let body = bytes.len().checked_sub(split)?;
    let prefix = if split == 0 { bytes } else { &bytes[body..] };
    // Each `Option` on the way is a `Some` (bincode: a 1 byte), then the string's length.
    if !prefix.get(..options)?.iter().all(|&tag| tag == 1) {
        return None;
    }
    let (start, end) = if split == 0 {
        let (len, len_bytes) =
            bincode::decode_from_slice::<u64, _>(&prefix[options..], BINCODE_CONFIG).ok()?;
        let start = options + len_bytes;
        (start, start.checked_add(usize::try_from(len).ok()?)?)
    } else {
        // The length must be the body's, as bincode writes it.
        if !is_length_of(&prefix[options..], body as u64) {
            return None;
        }
        (0, body)
    };
    // The decoding bounds: a string within the stored bytes takes no more memory than they
    // do, far below the bound per stored byte, so only the cap on one value applies.
    if end != body || end - start > MAX_DECODED_BYTES {
        return None;
    }
    Some(Text { asked, start, end })
}

/// Whether `bytes` is exactly bincode's encoding of the length `len` in its standard
/// configuration: one byte below 251, else a marker (251, 252, 253) and the little-endian
/// `u16`, `u32` or `u64`, the shortest that holds it. Checked here rather than by encoding
/// `len` with bincode and comparing: a memory hit's decoding ran 37 instructions in
/// `bincode::encode_into_slice` for it (`hit_cost`).
#[inline(always)]
fn is_length_of(bytes: &[u8], len: u64) -> bool {
    const U16: u64 = u16::MAX as u64;
    const U32: u64 = u32::MAX as u64;
    match *bytes {
        [byte] => byte < 251 && u64::from(byte) == len,
        [251, a, b] => (251..=U16).contains(&len) && u64::from(u16::from_le_bytes([a, b])) == len,
        [252, a, b, c, d] => {
            (U16 + 1..=U32).contains(&len) && u64::from(u32::from_le_bytes([a, b, c, d])) == len
        }
        [253, a, b, c, d, e, f, g, h] => {
            len > U32 && u64::from_le_bytes([a, b, c, d, e, f, g, h]) == len
        }
        _ => false,
    }
}

impl Text {
    /// Where the string's bytes are.
    pub(super) fn range(&self) -> Range<usize> {
        self.start..self.end
    }

    /// The value, made of the string's bytes (checked as UTF-8 if it asked for a `String`).
    #[inline(always)]
    pub(super) fn build<T: DeserializeOwned>(&self, bytes: Vec<u8>) -> Result<T, Refusal> {
        let owned = match self.asked {
            Asked::String => Owned::String(string_from_utf8(bytes).ok_or(Refusal::NotUtf8)?),
            _ => Owned::ByteBuf(bytes),
        };
        T::deserialize(owned).map_err(Refusal::Invalid)
    }
}

/// Why a located string did not become the value.
pub(super) enum Refusal {
    /// A string that is not UTF-8.
    NotUtf8,
    /// The value refused the string it asked for.
    Invalid(de::value::Error),
}

/// What `T` asks a deserializer for first, and through how many `Option`s.
#[inline]
fn asked_by<T: DeserializeOwned>() -> (Asked, usize) {
    let asked = Cell::new(Asked::Other);
    let options = Cell::new(0);
    let _refused = T::deserialize(Probe {
        asked: &asked,
        options: &options,
        layers: 0,
    });
    (asked.get(), options.get())
}

/// A deserializer that records the first request of a value and refuses it, looking through
/// newtype structs and `Option`s.
struct Probe<'a> {
    asked: &'a Cell<Asked>,
    /// `Option`s looked through.
    options: &'a Cell<usize>,
    /// Newtype structs and `Option`s looked through.
    layers: usize,
}

impl Probe<'_> {
    fn record<V>(self, asked: Asked) -> Result<V, Refused> {
        self.asked.set(asked);
        Err(Refused)
    }

    /// The probe one layer down, if there may be one more.
    fn inner(self) -> Option<Self> {
        (self.layers < MAX_LAYERS).then_some(Probe {
            layers: self.layers + 1,
            ..self
        })
    }
}

impl<'de> Deserializer<'de> for Probe<'_> {
    type Error = Refused;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Refused> {
        self.record(Asked::Other)
    }

    fn deserialize_string<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Refused> {
        self.record(Asked::String)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Refused> {
        self.record(Asked::ByteBuf)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Refused> {
        match self.inner() {
            Some(inner) => visitor.visit_newtype_struct(inner),
            None => Err(Refused),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refused> {
        let options = self.options;
        match self.inner() {
            Some(inner) => {
                options.set(options.get() + 1);
                visitor.visit_some(inner)
            }
            None => Err(Refused),
        }
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str bytes unit
        unit_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

/// The probe's refusal: carries nothing, so probing allocates nothing.
#[derive(Debug)]
struct Refused;

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("probed")
    }
}

impl std::error::Error for Refused {}

impl de::Error for Refused {
    fn custom<M: fmt::Display>(_message: M) -> Self {
        Refused
    }
}

/// The decoded string or byte buffer, handed to the value that asked for it.
enum Owned {
    String(String),
    ByteBuf(Vec<u8>),
}

impl<'de> Deserializer<'de> for Owned {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self {
            Owned::String(string) => visitor.visit_string(string),
            Owned::ByteBuf(bytes) => visitor.visit_byte_buf(bytes),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    /// Only asked for where the payload held a `Some`.
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_some(self)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use bytes::{Bytes, BytesMut};

    use super::*;
    use crate::codec::{Bincode, Codec};

    proptest::proptest! {
        #[test]
        fn a_length_is_recognised_exactly_as_bincode_writes_it(
            len in proptest::prop_oneof![
                0..600u64,
                60_000..70_000u64,
                proptest::num::u64::ANY,
            ],
            other in proptest::num::u64::ANY,
        ) {
            let mut written = [0; 9];
            let n = bincode::encode_into_slice(len, &mut written, BINCODE_CONFIG).unwrap();
            proptest::prop_assert!(is_length_of(&written[..n], len));
            proptest::prop_assert_eq!(is_length_of(&written[..n], other), other == len);
            // Cut short, one byte too many, or a longer form than the shortest: refused.
            proptest::prop_assert!(!is_length_of(&written[..n - 1], len));
            proptest::prop_assert!(!is_length_of(&written[..=n.min(8)], len) || n == 9);
        }
    }

    #[test]
    fn a_length_in_a_longer_form_than_bincode_writes_is_refused() {
        assert!(!is_length_of(&[251, 5, 0], 5));
        assert!(!is_length_of(&[252, 0, 1, 0, 0], 256));
        assert!(!is_length_of(&[253, 0, 0, 1, 0, 0, 0, 0, 0], 65_536));
        assert!(!is_length_of(&[254, 1], 1));
    }

    /// Whether `T` may be decoded in place.
    fn in_place<T: DeserializeOwned>() -> bool {
        asked_by::<T>().0 != Asked::Other
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Page(String);

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Wrapped(Page);

    /// An owned byte buffer, as `serde_bytes::ByteBuf` is.
    #[derive(Debug, PartialEq)]
    struct Buffer(Vec<u8>);

    impl Serialize for Buffer {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(&self.0)
        }
    }

    impl<'de> Deserialize<'de> for Buffer {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct Only;
            impl Visitor<'_> for Only {
                type Value = Buffer;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("an owned byte buffer")
                }
                fn visit_byte_buf<E>(self, value: Vec<u8>) -> Result<Buffer, E> {
                    Ok(Buffer(value))
                }
            }
            d.deserialize_byte_buf(Only)
        }
    }

    /// `value` in bincode's own layout, in a buffer of its own.
    fn payload<T: Serialize>(value: &T) -> BytesMut {
        let mut bytes = Vec::new();
        Bincode::encode(value, &mut bytes).unwrap();
        BytesMut::from(Bytes::from(bytes))
    }

    /// `value` as the envelope stores it: its prefix after its bytes, if it is one string.
    fn split<T: Serialize>(value: &T) -> (BytesMut, usize) {
        let mut bytes = Vec::new();
        let split = Bincode::encode_split(value, &mut bytes).unwrap();
        (BytesMut::from(Bytes::from(bytes)), split.into())
    }

    #[test]
    fn strings_byte_buffers_and_their_newtypes_are_decoded_in_place() {
        assert!(in_place::<String>() && in_place::<Page>() && in_place::<Wrapped>());
        assert!(in_place::<Buffer>() && in_place::<Box<str>>());
        assert!(in_place::<Option<String>>() && in_place::<Option<Option<Wrapped>>>());
        assert!(!in_place::<Vec<u8>>() && !in_place::<Option<u64>>());
        assert!(!in_place::<(String, String)>() && !in_place::<u64>());
    }

    /// A recursive type, as deep as its data says.
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct List(Option<Box<List>>);

    /// A type with no finite values, which a probe must not follow for ever either.
    #[derive(Deserialize)]
    struct Endless(#[allow(dead_code, reason = "only probed")] Box<Endless>);

    #[test]
    fn recursive_types_are_probed_a_bounded_number_of_layers() {
        assert!(!in_place::<List>() && !in_place::<Endless>());
        let list = List(Some(Box::new(List(None))));
        assert_eq!(Bincode::decode_owned::<List>(payload(&list)).unwrap(), list);
    }

    #[test]
    fn a_string_becomes_the_buffer_it_was_read_from() {
        let text = "é".repeat(100_000);
        let stored = payload(&text);
        let start = stored.as_ptr();
        let decoded: String = Bincode::decode_owned(stored).unwrap();
        assert_eq!(decoded, text);
        assert_eq!(decoded.as_ptr(), start, "the same buffer, not a copy");
        let wrapped: Wrapped = Bincode::decode_owned(self::payload(&"w")).unwrap();
        assert_eq!(wrapped, Wrapped(Page("w".into())));
        let bytes: Buffer = Bincode::decode_owned(self::payload(&Buffer(vec![0, 255]))).unwrap();
        assert_eq!(bytes, Buffer(vec![0, 255]));
        // Through `Some`s: the buffer too; a `None` decodes as usual.
        let some = self::payload(&Some(Some(Page(text.clone()))));
        let start = some.as_ptr();
        let decoded: Option<Option<Page>> = Bincode::decode_owned(some).unwrap();
        let Some(Some(Page(inner))) = decoded else {
            panic!("two Somes")
        };
        assert_eq!((inner.as_ptr(), &inner), (start, &text));
        let none: Option<Option<Page>> =
            Bincode::decode_owned(self::payload(&Some(None::<Page>))).unwrap();
        assert_eq!(none, Some(None));
    }

    #[test]
    fn a_split_string_becomes_its_buffer_cut_short_with_no_byte_moved() {
        let text = "é".repeat(100_000);
        let (stored, split) = self::split(&text);
        assert_eq!(
            &stored[..text.len()],
            text.as_bytes(),
            "the bytes come first"
        );
        assert_eq!(split, 1 + 4, "then a u32 length after its marker");
        // Copied out of bytes that something else holds, which are left intact.
        assert!(Bincode::decode_split::<String>(&stored, split).unwrap() == text);
        assert_eq!(stored.len(), text.len() + split);
        let start = stored.as_ptr();
        let decoded: String = Bincode::decode_owned_split(stored, split).unwrap();
        assert!(decoded == text);
        assert_eq!(decoded.as_ptr(), start, "the same buffer, not a copy");
        // Through newtypes and `Some`s; a `None`, not a string, is not split.
        let (some, split) = self::split(&Some(Some(Page(text.clone()))));
        assert_eq!(split, 2 + 1 + 4);
        let start = some.as_ptr();
        let decoded: Option<Option<Page>> = Bincode::decode_owned_split(some, split).unwrap();
        let Some(Some(Page(inner))) = decoded else {
            panic!("two Somes")
        };
        assert!(inner == text);
        assert_eq!(inner.as_ptr(), start);
        assert_eq!(self::split(&Some(None::<Page>)).1, 0);
        let (bytes, split) = self::split(&Buffer(vec![0, 255]));
        assert_eq!((&bytes[..], split), (&[0, 255, 2][..], 1));
        assert_eq!(
            Bincode::decode_owned_split::<Buffer>(bytes, split).unwrap(),
            Buffer(vec![0, 255])
        );
    }

    #[test]
    fn only_values_that_are_one_string_are_split() {
        let long = "w".repeat(4096);
        assert_eq!(split(&long).1, 3, "a u16 length after its marker");
        assert_eq!(split(&Wrapped(Page(long.clone()))).1, 3);
        assert_eq!(split(&Some(Some(long.clone()))).1, 2 + 3);
        assert_eq!(split(&"").1, 1, "an empty string is its length");
        assert_eq!(split(&7u64).1, 0);
        assert_eq!(split(&vec![1u8, 2]).1, 0, "a Vec<u8> is a sequence");
        assert_eq!(split(&(long, 1u8)).1, 0);
        assert_eq!(split(&None::<String>).1, 0);
    }

    #[test]
    fn a_split_value_read_as_another_compatible_type_is_put_back_together() {
        // Written as a string, read as a one-field tuple (the same bincode bytes).
        let text = "a".repeat(300);
        let (stored, split) = self::split(&text);
        assert!(split > 0);
        let tuple = (text.clone(),);
        assert!(Bincode::decode_split::<(String,)>(&stored, split).unwrap() == tuple);
        assert!(Bincode::decode_owned_split::<(String,)>(stored, split).unwrap() == tuple);
        // Read as an `Option<String>`: its tag would be the length's marker, so no value.
        let (stored, split) = self::split(&text);
        assert!(Bincode::decode_owned_split::<Option<String>>(stored, split).is_err());
    }

    #[test]
    fn other_values_decode_as_from_a_slice() {
        let pair = (String::from("a"), 7u32);
        let decoded: (String, u32) = Bincode::decode_owned(payload(&pair)).unwrap();
        assert_eq!(decoded, pair);
        let some: Option<u8> = Bincode::decode_owned(payload(&Some(3u8))).unwrap();
        assert_eq!(some, Some(3));
    }

    #[test]
    fn bad_strings_are_decode_errors_in_place_too() {
        let owned = |bytes: &[u8]| BytesMut::from(bytes);
        // Not UTF-8; trailing bytes; a length beyond the bytes; a length prefix cut short.
        let not_utf8 = owned(&[2, 0xC3, 0x28]);
        assert!(
            Bincode::decode_owned::<String>(not_utf8)
                .unwrap_err()
                .is_decode()
        );
        let mut trailing = payload(&"abc");
        trailing.extend_from_slice(&[0]);
        let err = Bincode::decode_owned::<String>(trailing).unwrap_err();
        assert!(format!("{err:#}").contains("trailing"), "{err:#}");
        let short = owned(&[9, b'a']);
        assert!(
            Bincode::decode_owned::<String>(short)
                .unwrap_err()
                .is_decode()
        );
        let cut = owned(&[0xFD, 1]);
        assert!(Bincode::decode_owned::<Page>(cut).unwrap_err().is_decode());
        assert!(
            Bincode::decode_owned::<String>(BytesMut::new())
                .unwrap_err()
                .is_decode()
        );
        // The same, split: not UTF-8; a length that is not the bytes before it, either way;
        // a split longer than the bytes.
        for (stored, split) in [
            (&[0xC3, 0x28, 2][..], 1),
            (&[b'a', b'b', 3], 1),
            (&[b'a', b'b', 1], 1),
            (&[b'a', 1, 2], 2),
            (&[2], 2),
        ] {
            let borrowed = Bincode::decode_split::<String>(stored, split);
            let in_place = Bincode::decode_owned_split::<String>(owned(stored), split);
            assert!(
                borrowed.unwrap_err().is_decode() && in_place.unwrap_err().is_decode(),
                "{stored:?} split {split}"
            );
        }
    }
}
