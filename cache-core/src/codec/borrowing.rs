//! A deserializer adapter that asks for borrowed strings and bytes where a type asks for
//! owned ones, and holds every level of the value to one decoding [`Budget`].
//!
//! Decoding an owned `String`, bincode first fills a zeroed buffer of the right length and
//! then copies the bytes in; zeroed memory comes from `calloc`, the allocator's slow path
//! (the cost is in `docs/design.md`). Asked for a borrowed `&str` instead, bincode hands over
//! a slice of the input and serde's `String` copies it into one plain allocation. [`Borrowing`] makes that request at every depth of a value: it wraps the
//! deserializer, and [`Visit`] and [`Wrap`] carry the wrapping down through visitors,
//! sequences, maps, enums and seeds.
//!
//! Since the adapter sees every level anyway, it is also where decoding is bounded: each
//! string, each element of a sequence asked for with `deserialize_seq` (or found by
//! `deserialize_any`) and each map entry is charged to the [`Budget`] before it is decoded
//! ([`Elements`]), and each compound level counts towards the depth limit. Tuples, structs
//! and enum variants are inline, not allocated, so their fields are not charged again.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor,
};

use super::budget::Budget;

/// A deserializer whose `deserialize_string` and `deserialize_byte_buf` ask the inner one
/// for `str` and `bytes`, then give the visitor an owned copy, so the value sees exactly the
/// calls it asked for.
pub(crate) struct Borrowing<'b, D> {
    de: D,
    budget: &'b Budget,
}

/// Carries [`Borrowing`] into the tuples, enums and seeds a deserializer hands to the value
/// being built.
pub(crate) struct Wrap<'b, T> {
    inner: T,
    budget: &'b Budget,
}

/// The elements of a sequence or the entries of a map: carries [`Borrowing`] down like
/// [`Wrap`], and charges each element to the budget, all at once when the length is known.
pub(crate) struct Elements<'b, A> {
    inner: A,
    budget: &'b Budget,
    /// For a sequence, its elements; for a map, its keys.
    first: Claim,
    /// For a map, its values.
    second: Claim,
}

/// How much of a sequence's length is still to be charged.
#[derive(Clone, Copy)]
enum Claim {
    /// The announced length, charged before the first element.
    Announced(usize),
    /// Charged already.
    Done,
    /// No length announced (JSON): each element is charged before it is read.
    EachElement,
}

impl Claim {
    fn charge<T, E: de::Error>(&mut self, budget: &Budget) -> Result<(), E> {
        match *self {
            Claim::Announced(len) => {
                *self = Claim::Done;
                budget.claim_elements::<T, E>(len)
            }
            Claim::Done => Ok(()),
            Claim::EachElement => budget.claim_elements::<T, E>(1),
        }
    }
}

/// What the value asked the deserializer for, which decides how a [`Visit`] passes on what
/// it is given.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Asked {
    /// Anything else: passed on as given, sequences and maps as inline (tuples, structs).
    Inline,
    /// An owned `String` or `Vec<u8>`: borrowed strings and bytes are copied.
    Owned,
    /// A sequence or map (or anything, which may be one): its elements are charged.
    Elements,
}

/// A visitor carrying [`Borrowing`] down, turning borrowed strings and bytes back into owned
/// ones when its value asked for owned ones, and charging strings and elements.
pub(crate) struct Visit<'b, V> {
    inner: V,
    budget: &'b Budget,
    asked: Asked,
}

/// A seed that deserializes `T` through [`Borrowing`] within a budget.
pub(crate) struct Seed<'b, T> {
    budget: &'b Budget,
    value: PhantomData<fn() -> T>,
}

impl<'b, T> Seed<'b, T> {
    pub(crate) fn new(budget: &'b Budget) -> Self {
        Self {
            budget,
            value: PhantomData,
        }
    }
}

impl<'de, T: de::Deserialize<'de>> DeserializeSeed<'de> for Seed<'_, T> {
    type Value = T;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<T, D::Error> {
        T::deserialize(Borrowing {
            de: deserializer,
            budget: self.budget,
        })
    }
}

impl<'b, D> Borrowing<'b, D> {
    fn visit<V>(&self, inner: V, asked: Asked) -> Visit<'b, V> {
        Visit {
            inner,
            budget: self.budget,
            asked,
        }
    }
}

/// Methods for values that hold nothing nested.
macro_rules! forward_deserialize {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
            let visitor = self.visit(visitor, Asked::Inline);
            self.de.$method(visitor)
        }
    )*};
}

/// Methods for values that hold others: one level deeper.
macro_rules! forward_nested {
    ($($method:ident($asked:ident $(, $arg:ident: $ty:ty)*))*) => {$(
        fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, D::Error> {
            let visitor = self.visit(visitor, Asked::$asked);
            let budget = self.budget;
            budget.nested(|| self.de.$method($($arg,)* visitor))
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Borrowing<'_, D> {
    type Error = D::Error;

    forward_deserialize! {
        deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32
        deserialize_i64 deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32
        deserialize_u64 deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char
        deserialize_str deserialize_bytes deserialize_unit deserialize_identifier
        deserialize_ignored_any
    }

    forward_nested! {
        deserialize_any(Elements)
        deserialize_option(Inline)
        deserialize_seq(Elements)
        deserialize_map(Elements)
        deserialize_unit_struct(Inline, name: &'static str)
        deserialize_newtype_struct(Inline, name: &'static str)
        deserialize_tuple(Inline, len: usize)
        deserialize_tuple_struct(Inline, name: &'static str, len: usize)
        deserialize_struct(Inline, name: &'static str, fields: &'static [&'static str])
        deserialize_enum(Inline, name: &'static str, variants: &'static [&'static str])
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        let visitor = self.visit(visitor, Asked::Owned);
        self.de.deserialize_str(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        let visitor = self.visit(visitor, Asked::Owned);
        self.de.deserialize_bytes(visitor)
    }

    fn is_human_readable(&self) -> bool {
        self.de.is_human_readable()
    }
}

impl<'b, V> Visit<'b, V> {
    fn owned(&self) -> bool {
        self.asked == Asked::Owned
    }

    fn borrowing<D>(&self, de: D) -> Borrowing<'b, D> {
        Borrowing {
            de,
            budget: self.budget,
        }
    }

    fn wrap<T>(&self, inner: T) -> Wrap<'b, T> {
        Wrap {
            inner,
            budget: self.budget,
        }
    }
}

macro_rules! forward_visit {
    ($($method:ident($ty:ty))*) => {$(
        fn $method<E: de::Error>(self, value: $ty) -> Result<V::Value, E> {
            self.inner.$method(value)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Visit<'_, V> {
    type Value = V::Value;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(formatter)
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<V::Value, E> {
        self.budget.claim_bytes(value.len())?;
        if self.owned() {
            self.inner.visit_string(value.to_owned())
        } else {
            self.inner.visit_str(value)
        }
    }

    fn visit_borrowed_str<E: de::Error>(self, value: &'de str) -> Result<V::Value, E> {
        self.budget.claim_bytes(value.len())?;
        if self.owned() {
            self.inner.visit_string(value.to_owned())
        } else {
            self.inner.visit_borrowed_str(value)
        }
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<V::Value, E> {
        self.budget.claim_bytes(value.len())?;
        self.inner.visit_string(value)
    }

    fn visit_bytes<E: de::Error>(self, value: &[u8]) -> Result<V::Value, E> {
        self.budget.claim_bytes(value.len())?;
        if self.owned() {
            self.inner.visit_byte_buf(value.to_owned())
        } else {
            self.inner.visit_bytes(value)
        }
    }

    fn visit_borrowed_bytes<E: de::Error>(self, value: &'de [u8]) -> Result<V::Value, E> {
        self.budget.claim_bytes(value.len())?;
        if self.owned() {
            self.inner.visit_byte_buf(value.to_owned())
        } else {
            self.inner.visit_borrowed_bytes(value)
        }
    }

    fn visit_byte_buf<E: de::Error>(self, value: Vec<u8>) -> Result<V::Value, E> {
        self.budget.claim_bytes(value.len())?;
        self.inner.visit_byte_buf(value)
    }

    forward_visit! {
        visit_bool(bool) visit_i8(i8) visit_i16(i16) visit_i32(i32) visit_i64(i64)
        visit_i128(i128) visit_u8(u8) visit_u16(u16) visit_u32(u32) visit_u64(u64)
        visit_u128(u128) visit_f32(f32) visit_f64(f64) visit_char(char)
    }

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<V::Value, D::Error> {
        let deserializer = self.borrowing(deserializer);
        self.inner.visit_some(deserializer)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<V::Value, D::Error> {
        let deserializer = self.borrowing(deserializer);
        self.inner.visit_newtype_struct(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        if self.asked == Asked::Elements {
            let first = Claim::of(seq.size_hint());
            self.inner.visit_seq(Elements {
                inner: seq,
                budget: self.budget,
                first,
                second: Claim::Done,
            })
        } else {
            let seq = self.wrap(seq);
            self.inner.visit_seq(seq)
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        if self.asked == Asked::Elements {
            let claim = Claim::of(map.size_hint());
            self.inner.visit_map(Elements {
                inner: map,
                budget: self.budget,
                first: claim,
                second: claim,
            })
        } else {
            let map = self.wrap(map);
            self.inner.visit_map(map)
        }
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        let data = self.wrap(data);
        self.inner.visit_enum(data)
    }
}

impl Claim {
    fn of(announced: Option<usize>) -> Self {
        announced.map_or(Claim::EachElement, Claim::Announced)
    }
}

impl<'b, T> Wrap<'b, T> {
    fn wrap<U>(&self, inner: U) -> Wrap<'b, U> {
        Wrap {
            inner,
            budget: self.budget,
        }
    }

    fn visit<V>(&self, inner: V) -> Visit<'b, V> {
        Visit {
            inner,
            budget: self.budget,
            asked: Asked::Inline,
        }
    }
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Wrap<'_, S> {
    type Value = S::Value;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<S::Value, D::Error> {
        self.inner.deserialize(Borrowing {
            de: deserializer,
            budget: self.budget,
        })
    }
}

/// The fields of a tuple or struct (or a map a struct is read from): inline, not charged.
impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Wrap<'_, A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        let seed = self.wrap(seed);
        self.inner.next_element_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Wrap<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        let seed = self.wrap(seed);
        self.inner.next_key_seed(seed)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        let seed = self.wrap(seed);
        self.inner.next_value_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'b, A> Elements<'b, A> {
    fn wrap<U>(&self, inner: U) -> Wrap<'b, U> {
        Wrap {
            inner,
            budget: self.budget,
        }
    }
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Elements<'_, A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        self.first.charge::<T::Value, A::Error>(self.budget)?;
        let seed = self.wrap(seed);
        self.inner.next_element_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Elements<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        self.first.charge::<K::Value, A::Error>(self.budget)?;
        let seed = self.wrap(seed);
        self.inner.next_key_seed(seed)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.second.charge::<V::Value, A::Error>(self.budget)?;
        let seed = self.wrap(seed);
        self.inner.next_value_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, 'b, A: EnumAccess<'de>> EnumAccess<'de> for Wrap<'b, A> {
    type Error = A::Error;
    type Variant = Wrap<'b, A::Variant>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self::Variant), A::Error> {
        let seed = self.wrap(seed);
        let budget = self.budget;
        let (value, inner) = self.inner.variant_seed(seed)?;
        Ok((value, Wrap { inner, budget }))
    }
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for Wrap<'_, A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.inner.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        let seed = self.wrap(seed);
        self.inner.newtype_variant_seed(seed)
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        let visitor = self.visit(visitor);
        self.inner.tuple_variant(len, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        let visitor = self.visit(visitor);
        self.inner.struct_variant(fields, visitor)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use serde::{Deserialize, Serialize};

    use crate::codec::{BINCODE_CONFIG, Bincode, Codec};

    /// Decodes with bincode's own owning deserializer, without the adapter.
    fn plain<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> T {
        bincode::serde::decode_from_slice(bytes, BINCODE_CONFIG)
            .expect("decodes")
            .0
    }

    fn round_trip<T>(value: &T)
    where
        T: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        let mut bytes = Vec::new();
        Bincode::encode(value, &mut bytes).unwrap();
        let adapted: T = Bincode::decode(&bytes).unwrap();
        assert_eq!(&adapted, value);
        assert_eq!(adapted, plain::<T>(&bytes));
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Shape {
        Unit,
        Named(String),
        Pair(String, Option<String>),
        Record { name: String, tags: Vec<String> },
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Page {
        title: String,
        sections: BTreeMap<String, Vec<Shape>>,
        raw: Vec<u8>,
        note: Option<Box<str>>,
        id: (u64, i128, char),
    }

    /// A value that asks for an owned string and accepts nothing else: the adapter must
    /// still call `visit_string`, never `visit_str`.
    #[derive(Debug, PartialEq)]
    struct OwnedOnly(String);

    impl<'de> Deserialize<'de> for OwnedOnly {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct Only;
            #[allow(
                clippy::serde_api_misuse,
                reason = "the point: a visitor that only takes owned strings"
            )]
            impl serde::de::Visitor<'_> for Only {
                type Value = OwnedOnly;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("an owned string")
                }
                fn visit_string<E>(self, value: String) -> Result<OwnedOnly, E> {
                    Ok(OwnedOnly(value))
                }
            }
            d.deserialize_string(Only)
        }
    }

    /// Bytes asked for as an owned buffer, accepting only `visit_byte_buf`.
    #[derive(Debug, PartialEq)]
    struct Buffer(Vec<u8>);

    impl Serialize for Buffer {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(&self.0)
        }
    }

    impl<'de> Deserialize<'de> for Buffer {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct Only;
            impl serde::de::Visitor<'_> for Only {
                type Value = Buffer;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("an owned byte buffer")
                }
                fn visit_byte_buf<E>(self, value: Vec<u8>) -> Result<Buffer, E> {
                    Ok(Buffer(value))
                }
            }
            d.deserialize_byte_buf(Only)
        }
    }

    #[test]
    fn values_that_want_owned_data_get_owned_data() {
        let mut bytes = Vec::new();
        Bincode::encode("owned", &mut bytes).unwrap();
        assert_eq!(
            Bincode::decode::<OwnedOnly>(&bytes).unwrap(),
            OwnedOnly("owned".into())
        );
        round_trip(&vec![Buffer(vec![1, 2, 3]), Buffer(Vec::new())]);
    }

    #[test]
    fn nested_values_decode_as_without_the_adapter() {
        let mut sections = BTreeMap::new();
        sections.insert(
            "intro".to_owned(),
            vec![
                Shape::Unit,
                Shape::Named("é".into()),
                Shape::Pair("a".into(), None),
                Shape::Record {
                    name: "r".into(),
                    tags: vec!["x".into(), String::new()],
                },
            ],
        );
        round_trip(&Page {
            title: "home".into(),
            sections,
            raw: vec![0, 255],
            note: Some("n".into()),
            id: (7, -3, 'λ'),
        });
    }

    #[test]
    fn invalid_utf8_is_still_an_error() {
        // Length 2, then bytes that are not UTF-8.
        assert!(
            Bincode::decode::<String>(&[2, 0xC3, 0x28])
                .unwrap_err()
                .is_decode()
        );
    }

    proptest! {
        #[test]
        fn any_strings_round_trip(
            value in proptest::collection::vec(
                (any::<String>(), proptest::option::of(any::<String>()), any::<Vec<u8>>()),
                0..5,
            )
        ) {
            round_trip(&value);
        }
    }
}
