//! Storing a value that is one string (or byte string) so that its bytes start the stored
//! value.
//!
//! bincode writes such a value, possibly inside newtype structs and `Some`s, as a prefix (a
//! `1` for each `Some`, then the length) followed by the bytes. When the envelope seals a
//! value ([`Codec::encode_split`]), [`Bincode`] moves that prefix after the bytes, so the
//! bytes start the stored value and a hit read from Redis becomes its buffer cut short (see
//! `owned`), with no byte moved, and starts at the buffer's aligned start, where the UTF-8
//! check runs fastest. Any other value is stored as bincode writes it.
//!
//! What a value serializes is found by a [`Probe`]: a serializer that looks through newtype
//! structs and `Some`s and stops at the first other call, so nothing is encoded twice.
//!
//! [`Codec::encode_split`]: super::Codec::encode_split
//! [`Bincode`]: super::Bincode

use std::fmt;

use serde::Serialize;
use serde::ser::{self, Impossible};

use super::owned::MAX_LAYERS;

/// How many of the first bytes of `value`'s bincode encoding (`encoded` bytes long) come
/// before its one string or byte string: 0 when it is not one.
pub(super) fn prefix_len<T: Serialize + ?Sized>(value: &T, encoded: usize) -> u8 {
    let Err(Found(Some(len))) = value.serialize(Probe { layers: 0 }) else {
        return 0;
    };
    // The bytes end the encoding; a prefix of more than 255 bytes is no bincode of a string.
    encoded
        .checked_sub(len)
        .and_then(|prefix| u8::try_from(prefix).ok())
        .unwrap_or(0)
}

/// A serializer that looks through newtype structs and `Some`s and stops at the first other
/// call, reporting the length of a string or byte string found there.
struct Probe {
    /// Newtype structs and `Some`s looked through.
    layers: usize,
}

impl Probe {
    /// The probe one layer down, if there may be one more.
    fn inner(self) -> Result<Self, Found> {
        if self.layers < MAX_LAYERS {
            Ok(Probe {
                layers: self.layers + 1,
            })
        } else {
            Err(NOT_ONE_STRING)
        }
    }
}

/// The answer, carried as the serializer's error so nothing is written: the length of the
/// string found, or `None` for any other value.
#[derive(Debug)]
struct Found(Option<usize>);

const NOT_ONE_STRING: Found = Found(None);

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("probed")
    }
}

impl std::error::Error for Found {}

impl ser::Error for Found {
    fn custom<M: fmt::Display>(_: M) -> Self {
        NOT_ONE_STRING
    }
}

/// The result of every method: an uninhabited `Ok`.
type Out = Result<std::convert::Infallible, Found>;

/// Methods that take a value that is not one string.
macro_rules! other {
    ($($name:ident($($ty:ty),*);)*) => {$(
        fn $name(self, $(_: $ty),*) -> Out {
            Err(NOT_ONE_STRING)
        }
    )*};
}

impl ser::Serializer for Probe {
    type Ok = std::convert::Infallible;
    type Error = Found;
    type SerializeSeq = Impossible<Self::Ok, Found>;
    type SerializeTuple = Impossible<Self::Ok, Found>;
    type SerializeTupleStruct = Impossible<Self::Ok, Found>;
    type SerializeTupleVariant = Impossible<Self::Ok, Found>;
    type SerializeMap = Impossible<Self::Ok, Found>;
    type SerializeStruct = Impossible<Self::Ok, Found>;
    type SerializeStructVariant = Impossible<Self::Ok, Found>;

    other! {
        serialize_bool(bool); serialize_i8(i8); serialize_i16(i16); serialize_i32(i32);
        serialize_i64(i64); serialize_i128(i128); serialize_u8(u8); serialize_u16(u16);
        serialize_u32(u32); serialize_u64(u64); serialize_u128(u128); serialize_f32(f32);
        serialize_f64(f64); serialize_char(char); serialize_none(); serialize_unit();
        serialize_unit_struct(&'static str);
        serialize_unit_variant(&'static str, u32, &'static str);
    }

    fn serialize_str(self, text: &str) -> Out {
        Err(Found(Some(text.len())))
    }

    fn serialize_bytes(self, bytes: &[u8]) -> Out {
        Err(Found(Some(bytes.len())))
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Out {
        value.serialize(self.inner()?)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, value: &T) -> Out {
        value.serialize(self.inner()?)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Out {
        Err(NOT_ONE_STRING)
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Found> {
        Err(NOT_ONE_STRING)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Found> {
        Err(NOT_ONE_STRING)
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, Found> {
        Err(NOT_ONE_STRING)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Found> {
        Err(NOT_ONE_STRING)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Found> {
        Err(NOT_ONE_STRING)
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, Found> {
        Err(NOT_ONE_STRING)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Found> {
        Err(NOT_ONE_STRING)
    }

    fn is_human_readable(&self) -> bool {
        false
    }
}
