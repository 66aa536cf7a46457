//! A deserializer adapter that asks for borrowed strings and bytes where a type asks for
//! owned ones.
//!
//! Decoding an owned `String`, bincode first fills a zeroed buffer of the right length and
//! then copies the bytes in. Zeroed memory comes from `calloc`, which glibc serves without
//! its per-thread cache, so one such string cost about 400 instructions, a tenth of a whole
//! Redis hit's client work (measured with callgrind). Asked for a borrowed `&str` instead,
//! bincode hands over a slice of the input and serde's `String` copies it into one plain
//! allocation. [`Borrowing`] makes that request at every depth of a value: it wraps the
//! deserializer, and [`Visit`] and [`Wrap`] carry the wrapping down through visitors,
//! sequences, maps, enums and seeds.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor,
};

/// A deserializer whose `deserialize_string` and `deserialize_byte_buf` ask the inner one
/// for `str` and `bytes`, then give the visitor an owned copy, so the value sees exactly the
/// calls it asked for.
pub(crate) struct Borrowing<D>(pub(crate) D);

/// Carries [`Borrowing`] into the sequences, maps, enums and seeds a deserializer hands to
/// the value being built.
pub(crate) struct Wrap<T>(T);

/// A visitor carrying [`Borrowing`] down, and turning borrowed strings and bytes back into
/// owned ones when its value asked for owned ones.
pub(crate) struct Visit<V> {
    inner: V,
    owned: bool,
}

impl<V> Visit<V> {
    fn new(inner: V) -> Self {
        Self {
            inner,
            owned: false,
        }
    }

    fn owned(inner: V) -> Self {
        Self { inner, owned: true }
    }
}

/// A seed that deserializes `T` through [`Borrowing`].
pub(crate) struct Seed<T>(PhantomData<fn() -> T>);

impl<T> Seed<T> {
    pub(crate) fn new() -> Self {
        Self(PhantomData)
    }
}

impl<'de, T: de::Deserialize<'de>> DeserializeSeed<'de> for Seed<T> {
    type Value = T;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<T, D::Error> {
        T::deserialize(Borrowing(deserializer))
    }
}

macro_rules! forward_deserialize {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
            self.0.$method(Visit::new(visitor))
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Borrowing<D> {
    type Error = D::Error;

    forward_deserialize! {
        deserialize_any deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32
        deserialize_i64 deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32
        deserialize_u64 deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char
        deserialize_str deserialize_bytes deserialize_option deserialize_unit deserialize_seq
        deserialize_map deserialize_identifier deserialize_ignored_any
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_str(Visit::owned(visitor))
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_bytes(Visit::owned(visitor))
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_unit_struct(name, Visit::new(visitor))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_newtype_struct(name, Visit::new(visitor))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_tuple(len, Visit::new(visitor))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0
            .deserialize_tuple_struct(name, len, Visit::new(visitor))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_struct(name, fields, Visit::new(visitor))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_enum(name, variants, Visit::new(visitor))
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

macro_rules! forward_visit {
    ($($method:ident($ty:ty))*) => {$(
        fn $method<E: de::Error>(self, value: $ty) -> Result<V::Value, E> {
            self.inner.$method(value)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Visit<V> {
    type Value = V::Value;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(formatter)
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<V::Value, E> {
        if self.owned {
            self.inner.visit_string(value.to_owned())
        } else {
            self.inner.visit_str(value)
        }
    }

    fn visit_borrowed_str<E: de::Error>(self, value: &'de str) -> Result<V::Value, E> {
        if self.owned {
            self.inner.visit_string(value.to_owned())
        } else {
            self.inner.visit_borrowed_str(value)
        }
    }

    fn visit_bytes<E: de::Error>(self, value: &[u8]) -> Result<V::Value, E> {
        if self.owned {
            self.inner.visit_byte_buf(value.to_owned())
        } else {
            self.inner.visit_bytes(value)
        }
    }

    fn visit_borrowed_bytes<E: de::Error>(self, value: &'de [u8]) -> Result<V::Value, E> {
        if self.owned {
            self.inner.visit_byte_buf(value.to_owned())
        } else {
            self.inner.visit_borrowed_bytes(value)
        }
    }

    forward_visit! {
        visit_bool(bool) visit_i8(i8) visit_i16(i16) visit_i32(i32) visit_i64(i64)
        visit_i128(i128) visit_u8(u8) visit_u16(u16) visit_u32(u32) visit_u64(u64)
        visit_u128(u128) visit_f32(f32) visit_f64(f64) visit_char(char)
        visit_string(String) visit_byte_buf(Vec<u8>)
    }

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<V::Value, D::Error> {
        self.inner.visit_some(Borrowing(deserializer))
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<V::Value, D::Error> {
        self.inner.visit_newtype_struct(Borrowing(deserializer))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        self.inner.visit_seq(Wrap(seq))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.inner.visit_map(Wrap(map))
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        self.inner.visit_enum(Wrap(data))
    }
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Wrap<S> {
    type Value = S::Value;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<S::Value, D::Error> {
        self.0.deserialize(Borrowing(deserializer))
    }
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Wrap<A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        self.0.next_element_seed(Wrap(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Wrap<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        self.0.next_key_seed(Wrap(seed))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.0.next_value_seed(Wrap(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: EnumAccess<'de>> EnumAccess<'de> for Wrap<A> {
    type Error = A::Error;
    type Variant = Wrap<A::Variant>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self::Variant), A::Error> {
        let (value, variant) = self.0.variant_seed(Wrap(seed))?;
        Ok((value, Wrap(variant)))
    }
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for Wrap<A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.0.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        self.0.newtype_variant_seed(Wrap(seed))
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        self.0.tuple_variant(len, Visit::new(visitor))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        self.0.struct_variant(fields, Visit::new(visitor))
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
