//! The key scheme: how a function call becomes a cache key.
//!
//! Every key that reaches a backend is `{namespace}{key}`. The namespace is the cache's
//! (`CACHE_KEY_PREFIX`, [`Cache::builder().namespace(..)`](crate::CacheBuilder::namespace),
//! `cache:` by default), normalised once by [`namespace`]: one trailing `:` is dropped, the
//! rest is escaped like a string argument and a `:` is put back, so `"cache:"` and `"cache"`
//! both give `cache:`, `"a"` gives `a:` and `"a:b"` gives `a%3Ab:`. The empty namespace
//! stays empty. The part after the namespace is:
//!
//! | where it comes from | key |
//! |---|---|
//! | `cache.set("user_123", ..)` | `user_123` |
//! | `cache.set("user:1", ..)` | `user%3A1` |
//! | `#[cached(key_prefix = "homepage")]` | `homepage` |
//! | `#[cached(key_prefix = "user:profile")]` | `user%3Aprofile` |
//! | `#[cached]` on `fn home()` in module `app::views` | `cached:app.views.home` |
//! | `#[memoize]` on `fn square(num: u64)` in crate `app`, called as `square(4)` | `memoize:app.square:4` |
//! | the same with `key_prefix = "sq"` | `memoize:sq:4` |
//! | the same with `key_prefix = "x.sq"` | `memoize:x%2Esq:4` |
//! | `#[memoize]` on `fn greet(name: &str, loud: bool)`, `greet("a:b", true)` | `memoize:app.greet:a%3Ab:true` |
//! | a generic `fn f<T>(x: T)` called as `f(1u8)` | `memoize:app.f:<u8>:1` |
//! | a method `fn area(&self)` of `struct Square(u32)`, `Square(3).area()` | `memoize:app.Square.area:<app.Square>:3` |
//!
//! Direct keys (the [`Cache`](crate::Cache) methods) and `#[cached]`'s `key_prefix` are
//! escaped with [`escape_str`], so `cache.delete("homepage")` removes the entry of
//! `#[cached(key_prefix = "homepage")]`, and a direct key never holds a `:`: it can never
//! equal, or fall under, the key of a `#[memoize]` function or of a `#[cached]` function
//! without `key_prefix`, whose keys start with `memoize:` and `cached:`.
//!
//! A `#[memoize]` function is named by its module path with `::` written as `.`, or by its
//! `key_prefix` escaped with [`escape_name`], which also escapes `.`: a path always holds a
//! `.` (the crate name comes first) and an escaped `key_prefix` never does, so
//! `key_prefix = "x.order"` never names the same entries as `fn order` in crate `x`. Each
//! argument follows as one `:`-separated token, rendered from its [`Serialize`]
//! implementation:
//!
//! | value | token |
//! |---|---|
//! | integers, floats, `bool` | as written: `4`, `-7`, `1.5`, `true` |
//! | strings and `char` | the text; bytes other than `A-Z a-z 0-9 _ - . / @ +` and non-ASCII are written `%XX`; the empty string is `""` |
//! | byte strings (`serde_bytes`) | `0x` and hex |
//! | `None` / `Some(x)` | `~` / the token of `x` (with a `!` in front when that token starts with `~` or `!`) |
//! | `()`, unit structs | `()` |
//! | sequences, tuples | `[a,b,c]` |
//! | structs, maps | `(field=value,..)`; map entries sorted, so a `HashMap` gives the same key in every process |
//! | enum variants | `Name`, `Name(x)`, `Name[a,b]`, `Name(f=x)` |
//!
//! # Why two calls never share a key
//!
//! Inside a token, every character with a meaning in the scheme (`: , = ( ) [ ] ~ ! # %`),
//! every Redis glob character and the braces `{ }` are escaped, so the tokens of a key are
//! exactly its `:`-separated parts, and the rendering is injective for each type of the
//! serde data model: integers, floats and booleans print distinctly; strings are a
//! prefix-free per-character code (`%XX` for reserved bytes, `""` for the empty string);
//! `None` is `~` and a `Some` whose token could read as `None` or as another `Some` gets a
//! `!`; a sequence, tuple or struct is delimited by brackets whose elements are tokens
//! separated by `,`, which a token only holds inside nested brackets; field names and
//! variant names are fixed by the type, and an enum's variants have distinct names, so
//! `Name(x)` (newtype) and `Name(f=x)` (struct variant) never belong to two variants of one
//! enum; map entries are unique keys, so sorting them loses nothing. Keys are then distinct
//! across sources: the namespace ends at its first `:` (an escaped namespace holds none),
//! direct keys hold no `:`, and function keys start with `memoize:` or `cached:` and a name
//! that holds no `:`. (Two types whose `Serialize` output is the same, such as a newtype and
//! its field, share tokens; a function has one type per parameter, so that never matters.)
//!
//! The namespaces `memoize` and `cached` are refused, so the keys of a cache with an empty
//! namespace never equal or fall under those of a cache with a namespace.
//!
//! # No hash tags
//!
//! No key ever holds `{` or `}`: they are escaped in the namespace, in prefixes, in strings
//! and in type tokens (a closure's type name holds `{{closure}}`), and structs and maps
//! render with parentheses. So Redis Cluster never reads an accidental hash tag in a key,
//! and the entries of one function spread over all slots.
//!
//! # Stability
//!
//! The rendering depends only on the values, never on addresses, `Debug` output or a
//! process-seeded hasher. Keys of free functions that are not generic, of anything without
//! a `<Type>` token, and every direct key are the same across processes, builds, machines
//! and compiler versions. The `<Type>` token of methods (the `Self` type) and of generic
//! functions (each type parameter) is [`std::any::type_name`], which the standard library
//! allows to change between compiler versions: after a compiler upgrade such entries may
//! simply become misses (never wrong answers, since the function and its arguments are the
//! same).
//!
//! When the arguments render to more than [`MAX_ARGS_LEN`] bytes, the key keeps their first
//! [`KEPT_ARGS_LEN`] bytes, then `#` and the 128-bit XXH3 hash of the whole rendering in hex.

use std::fmt;

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
/// produce exactly the same keys. The key is written into a [`KeySink`]: a `String` (the
/// backend key, [`KeyBuilder::finish`]), or a [`NearSink`] on the stack, which writes the
/// same bytes without allocating and gives the near cache's key ([`KeyBuilder::near_key`]):
/// both go through this one serializer, so they can never disagree.
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
pub struct KeyBuilder<S = String> {
    buf: S,
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

    /// The finished key, with a long argument part bounded by a hash.
    #[inline]
    pub fn finish(mut self) -> String {
        bound_args(&mut self.buf, self.args_start);
        self.buf
    }
}

impl KeyBuilder<NearSink> {
    /// Starts the near key of `prefix` (a namespace) and `head`, on the stack.
    #[inline]
    pub fn near(prefix: &str, head: &str) -> Self {
        // Built in place: moving the buffer would copy it.
        let mut near = Self {
            buf: NearSink::new(),
            args_start: 0,
        };
        near.buf.push_bytes(prefix.as_bytes());
        near.buf.push_bytes(head.as_bytes());
        near.args_start = near.buf.len;
        near
    }

    /// The near cache's key: the `xxh3_128` of the bytes [`KeyBuilder::finish`] would give
    /// for the same head and arguments (long arguments bounded by the same hash).
    ///
    /// ```
    /// use cache_core::key::KeyBuilder;
    ///
    /// let mut near = KeyBuilder::near("cache:", "memoize:app.f");
    /// near.arg(&4u64)?;
    /// let mut full = KeyBuilder::with_prefix("cache:", "memoize:app.f");
    /// full.arg(&4u64)?;
    /// assert_eq!(near.near_key(), xxhash_rust::xxh3::xxh3_128(full.finish().as_bytes()));
    /// # Ok::<(), cache_core::Error>(())
    /// ```
    #[inline]
    pub fn near_key(&mut self) -> u128 {
        bound_args(&mut self.buf, self.args_start);
        xxhash_rust::xxh3::xxh3_128(self.buf.bytes())
    }
}

impl<S: KeySink> KeyBuilder<S> {
    /// Appends one argument token.
    pub fn arg<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.buf.push_char(':');
        value
            .serialize(TokenWriter { out: &mut self.buf })
            .map_err(|e| Error::new(ErrorKind::Encode, format!("cannot build a cache key: {e}")))
    }

    /// Appends a type token such as `<u8>`, for generic functions.
    pub fn type_param(&mut self, type_name: &str) {
        self.buf.push_text(":<");
        escape_type_name(type_name, &mut self.buf);
        self.buf.push_char('>');
    }
}

/// Past [`MAX_ARGS_LEN`] bytes of arguments, keeps [`KEPT_ARGS_LEN`] of them, then `#` and
/// the hash of them all.
#[inline]
fn bound_args<S: KeySink>(out: &mut S, args_start: usize) {
    let args_len = out.bytes().len() - args_start;
    if args_len > MAX_ARGS_LEN {
        let hash = xxhash_rust::xxh3::xxh3_128(&out.bytes()[args_start..]);
        let mut cut = args_start + KEPT_ARGS_LEN;
        // A UTF-8 continuation byte is `10xx_xxxx`.
        while out.bytes()[cut] & 0xC0 == 0x80 {
            cut -= 1;
        }
        out.truncate_to(cut);
        let _ = write!(out, "#{hash:032x}");
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for String {}
    impl Sealed for super::NearSink {}
}

/// Where a key is written: a `String`, or a [`NearSink`]. Sealed.
pub trait KeySink: fmt::Write + sealed::Sealed {
    /// Appends `s`.
    fn push_text(&mut self, s: &str);
    /// Appends `c`.
    fn push_char(&mut self, c: char);
    /// The bytes written so far.
    fn bytes(&self) -> &[u8];
    /// Inserts the ASCII byte `b` at `at` (a character boundary).
    fn insert_ascii(&mut self, at: usize, b: u8);
    /// Keeps the first `len` bytes (a character boundary).
    fn truncate_to(&mut self, len: usize);
}

impl KeySink for String {
    #[inline]
    fn push_text(&mut self, s: &str) {
        self.push_str(s);
    }
    #[inline]
    fn push_char(&mut self, c: char) {
        self.push(c);
    }
    #[inline]
    fn bytes(&self) -> &[u8] {
        self.as_bytes()
    }
    fn insert_ascii(&mut self, at: usize, b: u8) {
        self.insert(at, char::from(b));
    }
    fn truncate_to(&mut self, len: usize) {
        self.truncate(len);
    }
}

/// How many bytes of a key a [`NearSink`] holds on the stack before it moves to the heap.
const NEAR_INLINE: usize = 128;

/// A key's bytes on the stack (moved to the heap only past 128 bytes), for the near cache's
/// key: see [`KeyBuilder::near`].
#[derive(Debug, Clone)]
pub struct NearSink {
    inline: [u8; NEAR_INLINE],
    len: usize,
    spilled: Option<Vec<u8>>,
}

impl NearSink {
    #[inline]
    fn new() -> Self {
        Self {
            inline: [0; NEAR_INLINE],
            len: 0,
            spilled: None,
        }
    }

    #[inline]
    fn push_bytes(&mut self, b: &[u8]) {
        if let Some(heap) = &mut self.spilled {
            heap.extend_from_slice(b);
            return;
        }
        let end = self.len + b.len();
        if end <= NEAR_INLINE {
            self.inline[self.len..end].copy_from_slice(b);
            self.len = end;
        } else {
            let mut heap = Vec::with_capacity(end * 2);
            heap.extend_from_slice(&self.inline[..self.len]);
            heap.extend_from_slice(b);
            self.spilled = Some(heap);
        }
    }
}

impl fmt::Write for NearSink {
    #[inline]
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push_bytes(s.as_bytes());
        Ok(())
    }
}

impl KeySink for NearSink {
    #[inline]
    fn push_text(&mut self, s: &str) {
        self.push_bytes(s.as_bytes());
    }
    #[inline]
    fn push_char(&mut self, c: char) {
        if c.is_ascii() && self.spilled.is_none() && self.len < NEAR_INLINE {
            self.inline[self.len] = c as u8;
            self.len += 1;
        } else {
            self.push_bytes(c.encode_utf8(&mut [0; 4]).as_bytes());
        }
    }
    #[inline]
    fn bytes(&self) -> &[u8] {
        match &self.spilled {
            Some(heap) => heap,
            None => &self.inline[..self.len],
        }
    }
    fn insert_ascii(&mut self, at: usize, b: u8) {
        if self.spilled.is_none() && self.len == NEAR_INLINE {
            self.push_bytes(&[b]);
            self.truncate_to(self.bytes().len() - 1);
        }
        match &mut self.spilled {
            Some(heap) => heap.insert(at, b),
            None => {
                self.inline.copy_within(at..self.len, at + 1);
                self.inline[at] = b;
                self.len += 1;
            }
        }
    }
    fn truncate_to(&mut self, len: usize) {
        match &mut self.spilled {
            Some(heap) => heap.truncate(len),
            None => self.len = self.len.min(len),
        }
    }
}

/// The normalised form of a namespace: one trailing `:` dropped, the rest escaped with
/// [`escape_prefix`], then `:`; empty when nothing is left.
///
/// ```
/// use cache_core::key::namespace;
///
/// assert_eq!(namespace("cache:"), "cache:");
/// assert_eq!(namespace("cache"), "cache:");
/// assert_eq!(namespace("a:b"), "a%3Ab:");
/// assert_eq!(namespace("{app}"), "%7Bapp%7D:");
/// assert_eq!(namespace(""), "");
/// ```
pub fn namespace(raw: &str) -> String {
    let body = raw.strip_suffix(':').unwrap_or(raw);
    let mut out = String::with_capacity(body.len() + 1);
    if !body.is_empty() {
        escape_prefix(body, &mut out);
        out.push(':');
    }
    out
}

/// Writes a Rust path (`my_crate::db::load`) as a key segment (`my_crate.db.load`).
pub fn write_path(path: &str, out: &mut impl KeySink) {
    for (i, part) in path.split("::").enumerate() {
        if i > 0 {
            out.push_char('.');
        }
        escape_str(part, out);
    }
}

/// Writes a `#[memoize]` `key_prefix` as a key segment: [`escape_str`], with `.` escaped as
/// well, so that it never equals a function path (which always holds a `.`).
///
/// ```
/// let mut out = String::new();
/// cache_core::key::escape_name("x.order:lines", &mut out);
/// assert_eq!(out, "x%2Eorder%3Alines");
/// ```
pub fn escape_name(s: &str, out: &mut impl KeySink) {
    if s.is_empty() {
        out.push_text("\"\"");
        return;
    }
    for c in s.chars() {
        escape_char_if(c, out, |c| c != '.' && is_plain(c));
    }
}

fn escape_type_name(name: &str, out: &mut impl KeySink) {
    for (i, part) in name.split("::").enumerate() {
        if i > 0 {
            out.push_char('.');
        }
        for c in part.chars() {
            escape_char_if(c, out, |c| {
                is_plain(c)
                    || matches!(c, '<' | '>' | '&' | ' ' | '[' | ']' | ';' | ',' | '(' | ')')
            });
        }
    }
}

fn is_plain(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | '@' | '+') || !c.is_ascii()
}

/// Writes `c`, or `%XX` unless `plain(c)`. Only ASCII is ever escaped, so `XX` is always
/// two hex digits and the code is prefix-free.
fn escape_char_if(c: char, out: &mut impl KeySink, plain: impl Fn(char) -> bool) {
    if plain(c) || !c.is_ascii() {
        out.push_char(c);
    } else {
        let _ = write!(out, "%{:02X}", c as u32);
    }
}

/// Writes `s` escaped so that it holds no separator, structural, brace or glob character;
/// the empty string is written `""`.
///
/// This is the escape of string arguments, of direct keys (`cache.set("user:1", ..)` is
/// stored under `user%3A1`) and of `#[cached]`'s `key_prefix`.
///
/// ```
/// let mut out = String::new();
/// cache_core::key::escape_str("user:{1}*", &mut out);
/// assert_eq!(out, "user%3A%7B1%7D%2A");
/// ```
pub fn escape_str(s: &str, out: &mut impl KeySink) {
    if s.is_empty() {
        out.push_text("\"\"");
        return;
    }
    if s.chars().all(is_plain) {
        out.push_text(s);
        return;
    }
    escape_prefix(s, out);
}

/// Writes `s` escaped character by character, as [`escape_str`] does but with nothing for
/// the empty string, so that a key starts with `s` exactly when its escaped form starts with
/// the escaped `s`. This is how [`Cache::delete_prefix`](crate::Cache::delete_prefix)
/// matches keys.
///
/// ```
/// let mut out = String::new();
/// cache_core::key::escape_prefix("user:", &mut out);
/// assert_eq!(out, "user%3A");
/// ```
pub fn escape_prefix(s: &str, out: &mut impl KeySink) {
    for c in s.chars() {
        escape_char_if(c, out, is_plain);
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
struct TokenWriter<'a, S> {
    out: &'a mut S,
}

impl<'a, S: KeySink> TokenWriter<'a, S> {
    fn int(self, v: impl itoa::Integer) -> KResult {
        self.out.push_text(itoa::Buffer::new().format(v));
        Ok(())
    }

    fn open(self, name: Option<&str>, bracket: char) -> Compound<'a, S> {
        if let Some(name) = name {
            self.out.push_text(name);
        }
        self.out.push_char(bracket);
        Compound {
            out: self.out,
            first: true,
            close: if bracket == '[' { ']' } else { ')' },
            sorted: None,
        }
    }
}

impl<'a, S: KeySink> ser::Serializer for TokenWriter<'a, S> {
    type Ok = ();
    type Error = KeyError;
    type SerializeSeq = Compound<'a, S>;
    type SerializeTuple = Compound<'a, S>;
    type SerializeTupleStruct = Compound<'a, S>;
    type SerializeTupleVariant = Compound<'a, S>;
    type SerializeMap = Compound<'a, S>;
    type SerializeStruct = Compound<'a, S>;
    type SerializeStructVariant = Compound<'a, S>;

    fn serialize_bool(self, v: bool) -> KResult {
        self.out.push_text(if v { "true" } else { "false" });
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
        self.out.push_text("0x");
        for b in v {
            let _ = write!(self.out, "{b:02x}");
        }
        Ok(())
    }
    fn serialize_none(self) -> KResult {
        self.out.push_char('~');
        Ok(())
    }
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> KResult {
        let start = self.out.bytes().len();
        value.serialize(TokenWriter { out: self.out })?;
        if matches!(self.out.bytes().get(start), Some(b'~' | b'!')) {
            self.out.insert_ascii(start, b'!');
        }
        Ok(())
    }
    fn serialize_unit(self) -> KResult {
        self.out.push_text("()");
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
        self.out.push_text(variant);
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
        self.out.push_text(variant);
        self.out.push_char('(');
        value.serialize(TokenWriter { out: self.out })?;
        self.out.push_char(')');
        Ok(())
    }
    fn serialize_seq(self, _len: Option<usize>) -> std::result::Result<Compound<'a, S>, KeyError> {
        Ok(self.open(None, '['))
    }
    fn serialize_tuple(self, _len: usize) -> std::result::Result<Compound<'a, S>, KeyError> {
        Ok(self.open(None, '['))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> std::result::Result<Compound<'a, S>, KeyError> {
        Ok(self.open(None, '['))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _i: u32,
        variant: &'static str,
        _len: usize,
    ) -> std::result::Result<Compound<'a, S>, KeyError> {
        Ok(self.open(Some(variant), '['))
    }
    fn serialize_map(self, _len: Option<usize>) -> std::result::Result<Compound<'a, S>, KeyError> {
        let mut compound = self.open(None, '(');
        compound.sorted = Some(Vec::new());
        Ok(compound)
    }
    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> std::result::Result<Compound<'a, S>, KeyError> {
        Ok(self.open(None, '('))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _i: u32,
        variant: &'static str,
        _len: usize,
    ) -> std::result::Result<Compound<'a, S>, KeyError> {
        Ok(self.open(Some(variant), '('))
    }
}

/// A sequence, struct or map being rendered.
struct Compound<'a, S> {
    out: &'a mut S,
    first: bool,
    close: char,
    /// Map entries, rendered apart and sorted at the end.
    sorted: Option<Vec<String>>,
}

impl<S: KeySink> Compound<'_, S> {
    fn separator(&mut self) {
        if !self.first {
            self.out.push_char(',');
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
        self.out.push_char('=');
        value.serialize(TokenWriter { out: self.out })
    }

    fn close(self) -> KResult {
        if let Some(mut entries) = self.sorted {
            entries.sort_unstable();
            self.out.push_text(&entries.join(","));
        }
        self.out.push_char(self.close);
        Ok(())
    }
}

macro_rules! sequence_impl {
    ($($trait:ident :: $method:ident),*) => {$(
        impl<S: KeySink> ser::$trait for Compound<'_, S> {
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
        impl<S: KeySink> ser::$trait for Compound<'_, S> {
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

impl<S: KeySink> ser::SerializeMap for Compound<'_, S> {
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
        assert_eq!(token(&ordered), "(a=2,b=1)");
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
            Box { w: u32 },
        }
        assert_eq!(token(&Point { x: 1, y: -2 }), "(x=1,y=-2)");
        assert_eq!(token(&Shape::Dot), "Dot");
        assert_eq!(token(&Shape::Circle(3)), "Circle(3)");
        assert_eq!(token(&Shape::Box { w: 2 }), "Box(w=2)");
        assert_eq!(
            token(&Shape::Line(Point { x: 0, y: 0 }, Point { x: 1, y: 1 })),
            "Line[(x=0,y=0),(x=1,y=1)]"
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
        let mut key = KeyBuilder::new("memoize:app.f");
        key.type_param("app::main::{{closure}}");
        assert_eq!(key.finish(), "memoize:app.f:<app.main.%7B%7Bclosure%7D%7D>");
    }

    #[test]
    fn namespaces_are_one_segment() {
        assert_eq!(namespace("cache:"), "cache:");
        assert_eq!(namespace("cache"), "cache:");
        assert_eq!(namespace("a"), "a:");
        assert_eq!(namespace("ab"), "ab:");
        assert_eq!(namespace("a::"), "a%3A:");
        assert_eq!(namespace("x*{y}"), "x%2A%7By%7D:");
        assert_eq!(namespace(""), "");
        assert_eq!(namespace(":"), "");
    }

    #[test]
    fn prefix_escaping_preserves_prefixes() {
        let escaped = |s: &str| {
            let mut out = String::new();
            escape_prefix(s, &mut out);
            out
        };
        assert_eq!(escaped(""), "");
        assert_eq!(escaped("user:"), "user%3A");
        let mut full = String::new();
        escape_str("user:1", &mut full);
        assert!(full.starts_with(&escaped("user:")));
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
            let forbidden = [':', '*', '?', '[', ']', '\\', ',', '=', '{', '}', '#', '(', ')', '~', '!'];
            prop_assert!(!t.contains(forbidden), "{} holds a reserved character", t);
        }

        #[test]
        fn structured_arguments_never_collide_nor_hold_braces(a in arbitrary_value(), b in arbitrary_value()) {
            let (ta, tb) = (token(&a), token(&b));
            prop_assert!(!ta.contains(['{', '}']), "{} holds a brace", ta);
            if a != b {
                prop_assert_ne!(ta, tb);
            }
        }

        #[test]
        fn escaped_prefixes_match_exactly_the_keys_they_start(p in "[a-c:.%]{0,3}", k in "[a-c:.%]{0,4}") {
            let mut prefix = String::new();
            escape_prefix(&p, &mut prefix);
            let mut key = String::new();
            escape_str(&k, &mut key);
            prop_assert_eq!(key.starts_with(&prefix), k.starts_with(&p));
        }

        #[test]
        fn the_near_key_is_the_hash_of_the_finished_key(
            ns in "[a-c:]{0,6}",
            values in proptest::collection::vec(arbitrary_value(), 0..4),
            long in proptest::option::of("[a-cé:%]{150,400}"),
            type_name in proptest::option::of("[a-z:<>{}]{1,12}"),
        ) {
            let ns = namespace(&ns);
            let mut full = KeyBuilder::with_prefix(&ns, "memoize:app.f");
            let mut near = KeyBuilder::near(&ns, "memoize:app.f");
            if let Some(type_name) = &type_name {
                full.type_param(type_name);
                near.type_param(type_name);
            }
            for value in &values {
                full.arg(value).unwrap();
                near.arg(value).unwrap();
            }
            if let Some(long) = &long {
                full.arg(long).unwrap();
                near.arg(long).unwrap();
            }
            let full = full.finish();
            prop_assert_eq!(near.near_key(), crate::backplane::near_key(&full), "{}", full);
        }

        #[test]
        fn namespaces_never_cover_each_other(a in "[ab:{}*]{0,4}", b in "[ab:{}*]{0,4}") {
            let (na, nb) = (namespace(&a), namespace(&b));
            prop_assert!(!na.contains(['{', '}', '*']), "{} holds a brace or glob", na);
            if na != nb && !na.is_empty() {
                prop_assert!(!nb.starts_with(&na), "{} covers {}", na, nb);
            }
        }
    }

    /// A value of one type covering every shape of the serde data model.
    #[derive(Debug, Clone, PartialEq, Serialize)]
    enum Value {
        Unit,
        Int(i64),
        Flag(bool),
        Text(String),
        Maybe(Option<Box<Value>>),
        List(Vec<Value>),
        Pair(Box<Value>, Box<Value>),
        Record { name: String, inner: Box<Value> },
        Map(BTreeMap<String, Value>),
    }

    fn arbitrary_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Unit),
            any::<i64>().prop_map(Value::Int),
            any::<bool>().prop_map(Value::Flag),
            "[a-b:,=(){}\\[\\]~!]{0,3}".prop_map(Value::Text),
        ];
        leaf.prop_recursive(3, 16, 3, |inner| {
            prop_oneof![
                proptest::option::of(inner.clone().prop_map(Box::new)).prop_map(Value::Maybe),
                proptest::collection::vec(inner.clone(), 0..3).prop_map(Value::List),
                (inner.clone(), inner.clone())
                    .prop_map(|(a, b)| Value::Pair(Box::new(a), Box::new(b))),
                ("[a-b:(]{0,2}", inner.clone()).prop_map(|(name, v)| Value::Record {
                    name,
                    inner: Box::new(v)
                }),
                proptest::collection::btree_map("[a-b=,]{0,2}", inner, 0..3).prop_map(Value::Map),
            ]
        })
    }
}
