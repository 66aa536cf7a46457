//! Decoding a value that is one string (or byte string) into the buffer it was read from.
//!
//! A value read from Redis arrives in a buffer of its own. Decoding a `String` from it the
//! usual way copies the bytes into a second buffer of the same size, so a hit holds both
//! at once; past the allocator's mmap threshold that is fresh memory, mapped and faulted in
//! on every hit. When the caller gives the buffer up ([`Codec::decode_owned`]) and the value
//! is a `String` or an owned byte buffer (`serde_bytes::ByteBuf`, `bytes::Bytes`), possibly
//! inside newtype structs and `Some`s, the bytes are moved to the front of that same buffer, which
//! becomes the value: one buffer per hit, like a raw `GET`.
//!
//! What the value asks for is found by a [`Probe`]: a deserializer that only records the
//! first request and refuses it, so nothing is decoded twice.
//!
//! [`Codec::decode_owned`]: super::Codec::decode_owned

use std::cell::Cell;
use std::fmt;

use bytes::{Buf, BytesMut};
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde::forward_to_deserialize_any;

use super::BINCODE_CONFIG;
use super::budget::Budget;

/// The most newtype structs and `Option`s a probe looks through: a recursive type
/// (`struct List(Option<Box<List>>)`) would otherwise be probed for ever.
const MAX_LAYERS: usize = 16;

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

/// Whether [`decode`] may decode `T` in place: whether `T` asks for an owned string or byte
/// buffer (through any newtype structs and `Option`s).
#[inline]
pub(super) fn in_place<T: DeserializeOwned>() -> bool {
    asked_by::<T>().0 != Asked::Other
}

/// Decodes `payload` (bincode) as `T` inside `payload`'s own buffer, or gives the payload
/// back when `T` is not a string or a byte buffer, or the payload is not one whole string
/// (the usual decoding then reports what is wrong with it).
pub(super) fn decode<T: DeserializeOwned>(mut payload: BytesMut) -> Result<T, Refusal> {
    let (asked, options) = asked_by::<T>();
    // Each `Option` on the way is a `Some` (bincode: a 1 byte), then the string's length.
    let somes = payload
        .get(..options)
        .is_some_and(|tags| tags.iter().all(|&tag| tag == 1));
    if asked == Asked::Other || !somes {
        return Err(Refusal::NotText(payload));
    }
    let Ok((len, prefix)) =
        bincode::decode_from_slice::<u64, _>(&payload[options..], BINCODE_CONFIG)
    else {
        return Err(Refusal::NotText(payload));
    };
    let prefix = options + prefix;
    let whole = usize::try_from(len)
        .ok()
        .and_then(|len| len.checked_add(prefix))
        .is_some_and(|end| end == payload.len());
    let budget = Budget::for_stored(payload.len());
    if !whole
        || budget
            .claim_bytes::<de::value::Error>(payload.len() - prefix)
            .is_err()
    {
        return Err(Refusal::NotText(payload));
    }
    payload.advance(prefix);
    // Moves the bytes to the front of the buffer (no allocation): the buffer becomes the value.
    let bytes = Vec::from(payload);
    let owned = match asked {
        Asked::String => Owned::String(String::from_utf8(bytes).map_err(|_| Refusal::NotUtf8)?),
        _ => Owned::ByteBuf(bytes),
    };
    T::deserialize(owned).map_err(Refusal::Invalid)
}

/// Why [`decode`] did not produce a value.
pub(super) enum Refusal {
    /// Not a value that this path decodes: the payload, to decode as usual.
    NotText(BytesMut),
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

    use bytes::Bytes;

    use super::*;
    use crate::codec::{Bincode, Codec};

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

    fn payload<T: Serialize>(value: &T) -> Bytes {
        let mut bytes = Vec::new();
        Bincode::encode(value, &mut bytes).unwrap();
        Bytes::from(bytes)
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
        // Bytes that something else holds are left intact.
        let held = payload(&text);
        let copy: String = Bincode::decode_owned(held.clone()).unwrap();
        assert_ne!(copy.as_ptr(), held.as_ptr());
        assert_eq!(Bincode::decode::<String>(&held).unwrap(), text);
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
        // Not UTF-8; trailing bytes; a length beyond the bytes; a length prefix cut short.
        let not_utf8 = Bytes::from(vec![2, 0xC3, 0x28]);
        assert!(
            Bincode::decode_owned::<String>(not_utf8)
                .unwrap_err()
                .is_decode()
        );
        let mut trailing = payload(&"abc").to_vec();
        trailing.push(0);
        let trailing = Bytes::from(trailing);
        let err = Bincode::decode_owned::<String>(trailing).unwrap_err();
        assert!(format!("{err:#}").contains("trailing"), "{err:#}");
        let short = Bytes::from(vec![9, b'a']);
        assert!(
            Bincode::decode_owned::<String>(short)
                .unwrap_err()
                .is_decode()
        );
        let cut = Bytes::from(vec![0xFD, 1]);
        assert!(Bincode::decode_owned::<Page>(cut).unwrap_err().is_decode());
        assert!(
            Bincode::decode_owned::<String>(Bytes::new())
                .unwrap_err()
                .is_decode()
        );
    }
}
