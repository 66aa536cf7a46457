//! The key scheme: how a function call becomes a cache key.
//!
//! Every key that reaches a backend is `{namespace}{key}`, where the namespace is the
//! cache's (`CACHE_KEY_PREFIX`, `"cache:"` by default). The part after the namespace is:
//!
//! | where it comes from | key |
//! |---|---|
//! | `cache.set("user_123", ..)` | `user_123` |
//! | `#[cached(key_prefix = "homepage")]` | `homepage` |
//! | `#[cached]` on `fn home()` in module `app::views` | `cached:app.views.home` |
//! | `#[memoize]` on `fn square(num: u64)` in crate `app`, called as `square(4)` | `memoize:app.square:4` |
//! | the same with `key_prefix = "sq"` | `memoize:sq:4` |
//! | `#[memoize]` on `fn greet(name: &str, loud: bool)`, `greet("a:b", true)` | `memoize:app.greet:a%3Ab:true` |
//! | a generic `fn f<T>(x: T)` called as `f(1u8)` | `memoize:app.f:<u8>:1` |
//!
//! The function is named by its module path with `::` written as `.`, so two `fn load` in
//! different modules never share entries and the name never contains the `:` separator.
//! Each argument follows as one `:`-separated token, rendered from its
//! [`Serialize`] implementation:
//!
//! | value | token |
//! |---|---|
//! | integers, floats, `bool` | as written: `4`, `-7`, `1.5`, `true` |
//! | strings and `char` | the text; bytes other than `A-Z a-z 0-9 _ - . / @ +` and non-ASCII are written `%XX`; the empty string is `""` |
//! | byte strings (`serde_bytes`) | `0x` and hex |
//! | `None` / `Some(x)` | `~` / the token of `x` (with a `!` in front when that token starts with `~` or `!`) |
//! | `()`, unit structs | `()` |
//! | sequences, tuples | `[a,b,c]` |
//! | structs, maps | `{field=value,..}`; map entries sorted, so a `HashMap` gives the same key in every process |
//! | enum variants | `Name`, `Name(x)`, `Name[a,b]`, `Name{f=x}` |
//!
//! Because every character with a meaning in the scheme (and every Redis glob character) is
//! escaped inside strings, argument boundaries are unambiguous: `f("a:b", "c")` and
//! `f("a", "b:c")` get different keys. The rendering depends only on the values, never on
//! addresses, `Debug` output or a process-seeded hasher, so keys are the same across
//! processes, builds and machines.
//!
//! When the arguments render to more than [`MAX_ARGS_LEN`] bytes, the key keeps their first
//! [`KEPT_ARGS_LEN`] bytes, then `#` and the 128-bit XXH3 hash of the whole rendering in hex.

use std::fmt::{self, Write as _};

use serde::Serialize;
use serde::ser;

use crate::{Error, ErrorKind, Result};

/// Above this many bytes of rendered arguments, the key ends in a hash.
pub const MAX_ARGS_LEN: usize = 200;
/// How many bytes of a long argument rendering a bounded key keeps readable.
pub const KEPT_ARGS_LEN: usize = 96;

/// Builds one key: a fixed head (namespace, kind, function) and then argument tokens.
///
/// This is what `#[memoize]` expansions call; it is public so that hand-written code can
/// produce exactly the same keys.
///
/// ```
/// use cache_core::key::KeyBuilder;
///
/// let mut key = KeyBuilder::new("memoize:app.greet");
/// key.arg("a:b")?;
/// key.arg(&true)?;
/// assert_eq!(key.finish(), "memoize:app.greet:a%3Ab:true");
/// # Ok::<(), cache_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct KeyBuilder {
    buf: String,
    args_start: usize,
}

impl KeyBuilder {
    /// Starts a key with `head` written as is.
    pub fn new(head: &str) -> Self {
        Self::with_prefix("", head)
    }

    /// Starts a key with `prefix` (a namespace) and `head` written as is, in one allocation.
    #[inline]
    pub fn with_prefix(prefix: &str, head: &str) -> Self {
        let mut buf = String::with_capacity(prefix.len() + head.len() + 24);
        buf.push_str(prefix);
        buf.push_str(head);
        let args_start = buf.len();
        Self { buf, args_start }
    }

    /// Appends one argument token.
    pub fn arg<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.buf.push(':');
        value
            .serialize(TokenWriter { out: &mut self.buf })
            .map_err(|e| Error::new(ErrorKind::Encode, format!("cannot build a cache key: {e}")))
    }

    /// Appends a type token such as `<u8>`, for generic functions.
    pub fn type_param(&mut self, type_name: &str) {
        self.buf.push_str(":<");
        escape_type_name(type_name, &mut self.buf);
        self.buf.push('>');
    }

    /// The finished key, with a long argument part bounded by a hash.
    #[inline]
    pub fn finish(mut self) -> String {
        let args_len = self.buf.len() - self.args_start;
        if args_len > MAX_ARGS_LEN {
            let hash = xxhash_rust::xxh3::xxh3_128(&self.buf.as_bytes()[self.args_start..]);
            let mut cut = self.args_start + KEPT_ARGS_LEN;
            while !self.buf.is_char_boundary(cut) {
                cut -= 1;
            }
            self.buf.truncate(cut);
            let _ = write!(self.buf, "#{hash:032x}");
        }
        self.buf
    }
}

/// Writes a Rust path (`my_crate::db::load`) as a key segment (`my_crate.db.load`).
pub fn write_path(path: &str, out: &mut String) {
    for (i, part) in path.split("::").enumerate() {
        if i > 0 {
            out.push('.');
        }
        escape_str(part, out);
    }
}

fn escape_type_name(name: &str, out: &mut String) {
    for (i, part) in name.split("::").enumerate() {
        if i > 0 {
            out.push('.');
        }
        for c in part.chars() {
            match c {
                '<' | '>' | '&' | ' ' | '[' | ']' | ';' | ',' | '(' | ')' => out.push(c),
                _ => escape_char(c, out),
            }
        }
    }
}

fn is_plain(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | '@' | '+') || !c.is_ascii()
}

fn escape_char(c: char, out: &mut String) {
    if is_plain(c) {
        out.push(c);
    } else {
        let _ = write!(out, "%{:02X}", c as u32);
    }
}

/// Writes `s` escaped so that it holds no separator, structural or glob character.
pub fn escape_str(s: &str, out: &mut String) {
    if s.is_empty() {
        out.push_str("\"\"");
        return;
    }
    if s.chars().all(is_plain) {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        escape_char(c, out);
    }
}

/// Escapes the Redis glob characters (`* ? [ ] \`) in `s`, so it matches only itself in a
/// `SCAN MATCH` pattern.
///
/// ```
/// assert_eq!(cache_core::key::escape_glob("a*b?[c]"), r"a\*b\?\[c\]");
/// ```
pub fn escape_glob(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A key could not be rendered (a `Serialize` implementation reported an error).
#[derive(Debug)]
pub struct KeyError(String);

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for KeyError {}

impl ser::Error for KeyError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self(msg.to_string())
    }
}

type KResult = std::result::Result<(), KeyError>;

/// The serde serializer that renders one argument as a key token.
struct TokenWriter<'a> {
    out: &'a mut String,
}

impl<'a> TokenWriter<'a> {
    fn int(self, v: impl itoa::Integer) -> KResult {
        self.out.push_str(itoa::Buffer::new().format(v));
        Ok(())
    }

    fn open(self, name: Option<&str>, bracket: char) -> Compound<'a> {
        if let Some(name) = name {
            self.out.push_str(name);
        }
        self.out.push(bracket);
        Compound {
            out: self.out,
            first: true,
            close: if bracket == '[' { ']' } else { '}' },
            sorted: None,
        }
    }
}

impl<'a> ser::Serializer for TokenWriter<'a> {
    type Ok = ();
    type Error = KeyError;
    type SerializeSeq = Compound<'a>;
    type SerializeTuple = Compound<'a>;
    type SerializeTupleStruct = Compound<'a>;
    type SerializeTupleVariant = Compound<'a>;
    type SerializeMap = Compound<'a>;
    type SerializeStruct = Compound<'a>;
    type SerializeStructVariant = Compound<'a>;

    fn serialize_bool(self, v: bool) -> KResult {
        self.out.push_str(if v { "true" } else { "false" });
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> KResult {
        self.int(v)
    }
    fn serialize_i16(self, v: i16) -> KResult {
        self.int(v)
    }
    fn serialize_i32(self, v: i32) -> KResult {
        self.int(v)
    }
    fn serialize_i64(self, v: i64) -> KResult {
        self.int(v)
    }
    fn serialize_i128(self, v: i128) -> KResult {
        self.int(v)
    }
    fn serialize_u8(self, v: u8) -> KResult {
        self.int(v)
    }
    fn serialize_u16(self, v: u16) -> KResult {
        self.int(v)
    }
    fn serialize_u32(self, v: u32) -> KResult {
        self.int(v)
    }
    fn serialize_u64(self, v: u64) -> KResult {
        self.int(v)
    }
    fn serialize_u128(self, v: u128) -> KResult {
        self.int(v)
    }
    fn serialize_f32(self, v: f32) -> KResult {
        let _ = write!(self.out, "{v}");
        Ok(())
    }
    fn serialize_f64(self, v: f64) -> KResult {
        let _ = write!(self.out, "{v}");
        Ok(())
    }
    fn serialize_char(self, v: char) -> KResult {
        escape_str(v.encode_utf8(&mut [0; 4]), self.out);
        Ok(())
    }
    fn serialize_str(self, v: &str) -> KResult {
        escape_str(v, self.out);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> KResult {
        self.out.push_str("0x");
        for b in v {
            let _ = write!(self.out, "{b:02x}");
        }
        Ok(())
    }
    fn serialize_none(self) -> KResult {
        self.out.push('~');
        Ok(())
    }
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> KResult {
        let start = self.out.len();
        value.serialize(TokenWriter { out: self.out })?;
        if matches!(self.out.as_bytes().get(start), Some(b'~' | b'!')) {
            self.out.insert(start, '!');
        }
        Ok(())
    }
    fn serialize_unit(self) -> KResult {
        self.out.push_str("()");
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> KResult {
        self.serialize_unit()
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _i: u32,
        variant: &'static str,
    ) -> KResult {
        self.out.push_str(variant);
        Ok(())
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        value: &T,
    ) -> KResult {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        _i: u32,
        variant: &'static str,
        value: &T,
    ) -> KResult {
        self.out.push_str(variant);
        self.out.push('(');
        value.serialize(TokenWriter { out: self.out })?;
        self.out.push(')');
        Ok(())
    }
    fn serialize_seq(self, _len: Option<usize>) -> std::result::Result<Compound<'a>, KeyError> {
        Ok(self.open(None, '['))
    }
    fn serialize_tuple(self, _len: usize) -> std::result::Result<Compound<'a>, KeyError> {
        Ok(self.open(None, '['))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> std::result::Result<Compound<'a>, KeyError> {
        Ok(self.open(None, '['))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _i: u32,
        variant: &'static str,
        _len: usize,
    ) -> std::result::Result<Compound<'a>, KeyError> {
        Ok(self.open(Some(variant), '['))
    }
    fn serialize_map(self, _len: Option<usize>) -> std::result::Result<Compound<'a>, KeyError> {
        let mut compound = self.open(None, '{');
        compound.sorted = Some(Vec::new());
        Ok(compound)
    }
    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> std::result::Result<Compound<'a>, KeyError> {
        Ok(self.open(None, '{'))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _i: u32,
        variant: &'static str,
        _len: usize,
    ) -> std::result::Result<Compound<'a>, KeyError> {
        Ok(self.open(Some(variant), '{'))
    }
}

/// A sequence, struct or map being rendered.
struct Compound<'a> {
    out: &'a mut String,
    first: bool,
    close: char,
    /// Map entries, rendered apart and sorted at the end.
    sorted: Option<Vec<String>>,
}

impl Compound<'_> {
    fn separator(&mut self) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
    }

    fn element<T: ?Sized + Serialize>(&mut self, value: &T) -> KResult {
        self.separator();
        value.serialize(TokenWriter { out: self.out })
    }

    fn field<T: ?Sized + Serialize>(&mut self, name: &str, value: &T) -> KResult {
        self.separator();
        escape_str(name, self.out);
        self.out.push('=');
        value.serialize(TokenWriter { out: self.out })
    }

    fn close(self) -> KResult {
        if let Some(mut entries) = self.sorted {
            entries.sort_unstable();
            self.out.push_str(&entries.join(","));
        }
        self.out.push(self.close);
        Ok(())
    }
}

macro_rules! sequence_impl {
    ($($trait:ident :: $method:ident),*) => {$(
        impl ser::$trait for Compound<'_> {
            type Ok = ();
            type Error = KeyError;
            fn $method<T: ?Sized + Serialize>(&mut self, value: &T) -> KResult {
                self.element(value)
            }
            fn end(self) -> KResult {
                self.close()
            }
        }
    )*};
}
sequence_impl!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

macro_rules! struct_impl {
    ($($trait:ident),*) => {$(
        impl ser::$trait for Compound<'_> {
            type Ok = ();
            type Error = KeyError;
            fn serialize_field<T: ?Sized + Serialize>(&mut self, name: &'static str, value: &T) -> KResult {
                self.field(name, value)
            }
            fn end(self) -> KResult {
                self.close()
            }
        }
    )*};
}
struct_impl!(SerializeStruct, SerializeStructVariant);

impl ser::SerializeMap for Compound<'_> {
    type Ok = ();
    type Error = KeyError;

    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> KResult {
        let mut entry = String::new();
        key.serialize(TokenWriter { out: &mut entry })?;
        entry.push('=');
        self.sorted.get_or_insert_with(Vec::new).push(entry);
        Ok(())
    }

    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> KResult {
        let entry = self
            .sorted
            .as_mut()
            .and_then(|entries| entries.last_mut())
            .ok_or_else(|| <KeyError as ser::Error>::custom("map value without a key"))?;
        value.serialize(TokenWriter { out: entry })
    }

    fn end(self) -> KResult {
        self.close()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use proptest::prelude::*;
    use serde::Serialize;

    use super::*;

    fn token<T: Serialize + ?Sized>(value: &T) -> String {
        let mut key = KeyBuilder::new("");
        key.arg(value).unwrap();
        key.finish()[1..].to_owned()
    }

    fn key2(a: &str, b: &str) -> String {
        let mut key = KeyBuilder::new("memoize:f");
        key.arg(a).unwrap();
        key.arg(b).unwrap();
        key.finish()
    }

    #[test]
    fn simple_arguments_are_readable() {
        assert_eq!(token(&4u64), "4");
        assert_eq!(token(&-7i32), "-7");
        assert_eq!(token(&true), "true");
        assert_eq!(token("alice"), "alice");
        assert_eq!(token(&1.5f64), "1.5");
        assert_eq!(token(&Some(3u8)), "3");
        assert_eq!(token(&None::<u8>), "~");
    }

    #[test]
    fn separators_inside_strings_are_escaped() {
        assert_ne!(key2("a:b", "c"), key2("a", "b:c"));
        assert_eq!(key2("a:b", "c"), "memoize:f:a%3Ab:c");
        assert_eq!(token(""), "\"\"");
        assert_eq!(token("*"), "%2A");
    }

    #[test]
    fn nested_options_are_distinct() {
        let values = [None, Some(None), Some(Some(None)), Some(Some(Some(1u8)))];
        let tokens: Vec<_> = values.iter().map(token).collect();
        assert_eq!(tokens, ["~", "!~", "!!~", "1"]);
    }

    #[test]
    fn hash_maps_render_in_a_stable_order() {
        let mut a = HashMap::new();
        let mut b = HashMap::new();
        for i in 0..50u32 {
            a.insert(i, i * 2);
        }
        for i in (0..50u32).rev() {
            b.insert(i, i * 2);
        }
        assert_eq!(token(&a), token(&b));
        let ordered: BTreeMap<_, _> = [("b", 1), ("a", 2)].into_iter().collect();
        assert_eq!(token(&ordered), "{a=2,b=1}");
    }

    #[test]
    fn structs_and_enums_render_with_names() {
        #[derive(Serialize)]
        struct Point {
            x: i32,
            y: i32,
        }
        #[derive(Serialize)]
        enum Shape {
            Dot,
            Circle(u32),
            Line(Point, Point),
        }
        assert_eq!(token(&Point { x: 1, y: -2 }), "{x=1,y=-2}");
        assert_eq!(token(&Shape::Dot), "Dot");
        assert_eq!(token(&Shape::Circle(3)), "Circle(3)");
        assert_eq!(
            token(&Shape::Line(Point { x: 0, y: 0 }, Point { x: 1, y: 1 })),
            "Line[{x=0,y=0},{x=1,y=1}]"
        );
        assert_eq!(token(&(1u8, "a")), "[1,a]");
        assert_eq!(token(&vec!["a,b", "c"]), "[a%2Cb,c]");
    }

    #[test]
    fn long_arguments_are_bounded_by_a_hash() {
        let long = "x".repeat(10_000);
        let mut key = KeyBuilder::new("memoize:f");
        key.arg(&long).unwrap();
        let key = key.finish();
        assert!(key.len() < 160, "{key}");
        assert!(key.starts_with("memoize:f:xxxx"));
        let mut other = KeyBuilder::new("memoize:f");
        other.arg(&format!("{long}y")).unwrap();
        assert_ne!(other.finish(), key);
    }

    #[test]
    fn paths_use_dots() {
        let mut out = String::new();
        write_path("app::db::load", &mut out);
        assert_eq!(out, "app.db.load");
        let mut key = KeyBuilder::new("memoize:app.f");
        key.type_param("alloc::string::String");
        assert_eq!(key.finish(), "memoize:app.f:<alloc.string.String>");
    }

    proptest! {
        #[test]
        fn two_string_arguments_never_collide(a in ".{0,8}", b in ".{0,8}", c in ".{0,8}", d in ".{0,8}") {
            prop_assume!((&a, &b) != (&c, &d));
            prop_assert_ne!(key2(&a, &b), key2(&c, &d));
        }

        #[test]
        fn string_vectors_never_collide(a in proptest::collection::vec("[a-c,\\[\\]:]{0,3}", 0..4),
                                        b in proptest::collection::vec("[a-c,\\[\\]:]{0,3}", 0..4)) {
            prop_assume!(a != b);
            prop_assert_ne!(token(&a), token(&b));
        }

        #[test]
        fn rendered_strings_hold_no_glob_or_separator(s in ".{0,16}") {
            let t = token(s.as_str());
            let forbidden = [':', '*', '?', '[', ']', '\\', ',', '=', '{', '}', '#'];
            prop_assert!(!t.contains(forbidden), "{} holds a reserved character", t);
        }
    }
}
