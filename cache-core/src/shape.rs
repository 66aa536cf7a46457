//! What a value looks like at its top level, read through its `Serialize` implementation:
//! how [`Cache::get_or_set_with`](crate::Cache::get_or_set_with), which is generic over any
//! `T`, applies the attributes' storing rules (an `Err` is never stored, a `None` only with
//! `cache_none`) without specialisation.
//!
//! The attributes pick a policy from the return type at compile time (see
//! `__private::Probe`); a generic method cannot, so it asks the value: serde serializes a
//! `Result` as the newtype variant `Err` of an enum named `Result`, and an `Option` as
//! `serialize_none`. Only the outermost call is looked at, so this costs a few instructions on
//! a miss, never a walk of the value.

use std::fmt;

use serde::Serialize;
use serde::ser::{self, Impossible};

/// The top-level shape of a value, as far as storing it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// `Err(..)` of a `Result`.
    Err,
    /// `None` of an `Option`.
    None,
    /// Anything else.
    Value,
}

/// The shape of `value`.
pub(crate) fn shape<T: Serialize + ?Sized>(value: &T) -> Shape {
    match value.serialize(Probe) {
        Ok(never) => match never {},
        Err(Found(shape)) => shape,
    }
}

/// A serializer that stops at the first call, reporting what it saw as its "error".
struct Probe;

/// The answer, carried as the serializer's error so nothing below the top is visited.
#[derive(Debug)]
struct Found(Shape);

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl std::error::Error for Found {}

impl ser::Error for Found {
    fn custom<M: fmt::Display>(_: M) -> Self {
        Found(Shape::Value)
    }
}

/// The result of every method: an uninhabited `Ok`.
type Out = Result<std::convert::Infallible, Found>;

const VALUE: Out = Err(Found(Shape::Value));

/// Methods that take a plain value and report [`Shape::Value`].
macro_rules! value {
    ($($name:ident($($ty:ty),*);)*) => {$(
        fn $name(self, $(_: $ty),*) -> Out {
            VALUE
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

    value! {
        serialize_bool(bool); serialize_i8(i8); serialize_i16(i16); serialize_i32(i32);
        serialize_i64(i64); serialize_i128(i128); serialize_u8(u8); serialize_u16(u16);
        serialize_u32(u32); serialize_u64(u64); serialize_u128(u128); serialize_f32(f32);
        serialize_f64(f64); serialize_char(char); serialize_str(&str); serialize_bytes(&[u8]);
        serialize_unit(); serialize_unit_struct(&'static str);
        serialize_unit_variant(&'static str, u32, &'static str);
    }

    fn serialize_none(self) -> Out {
        Err(Found(Shape::None))
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Out {
        VALUE
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, _: &T) -> Out {
        VALUE
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        _: u32,
        variant: &'static str,
        _: &T,
    ) -> Out {
        if name == "Result" && variant == "Err" {
            return Err(Found(Shape::Err));
        }
        VALUE
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Found> {
        Err(Found(Shape::Value))
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Found> {
        Err(Found(Shape::Value))
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, Found> {
        Err(Found(Shape::Value))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Found> {
        Err(Found(Shape::Value))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Found> {
        Err(Found(Shape::Value))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, Found> {
        Err(Found(Shape::Value))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Found> {
        Err(Found(Shape::Value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_and_options_are_told_apart_from_values() {
        assert_eq!(shape(&Err::<u8, String>("db down".into())), Shape::Err);
        assert_eq!(shape(&Ok::<u8, String>(1)), Shape::Value);
        assert_eq!(shape(&None::<u8>), Shape::None);
        assert_eq!(shape(&Some(1u8)), Shape::Value);
        assert_eq!(shape(&vec![1u8]), Shape::Value);
        assert_eq!(shape("text"), Shape::Value);
        assert_eq!(shape(&(1u8, 2u8)), Shape::Value);
    }
}
