//! A `String` made of a buffer that holds UTF-8, checked at SIMD speed.
//!
//! A large `String` hit read from Redis is its reply's buffer, checked as UTF-8 (see
//! `owned`). `String::from_utf8` checks a 1 MB buffer in about 40 µs on this project's
//! machine, an eighth of the raw `GET`'s whole cost; `simdutf8` checks it in about 11 µs
//! (AVX2 or SSE 4.2 chosen at run time, the standard library's check elsewhere), 4 KB in
//! 35 against 83 ns, 100 B in 10.5 against 11.5 ns (95 instructions against 125). Building
//! the `String` from bytes already checked takes the workspace's only `unsafe` block, kept
//! to this module (`docs/design.md`, "The UTF-8 check").
#![allow(unsafe_code)]

/// `bytes` as a `String` when they are UTF-8; otherwise `None` (the bytes are dropped).
#[inline]
pub(super) fn string_from_utf8(bytes: Vec<u8>) -> Option<String> {
    simdutf8::basic::from_utf8(&bytes).ok()?;
    // SAFETY: `simdutf8::basic::from_utf8` returned `Ok`, so `bytes` is valid UTF-8, which is
    // all `String::from_utf8_unchecked` requires; nothing changed `bytes` since.
    Some(unsafe { String::from_utf8_unchecked(bytes) })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::string_from_utf8;

    #[test]
    fn text_becomes_the_same_string_in_the_same_buffer() {
        let bytes = "héllo ✓ wörld".repeat(100).into_bytes();
        let pointer = bytes.as_ptr();
        let string = string_from_utf8(bytes).expect("UTF-8");
        assert_eq!(string, "héllo ✓ wörld".repeat(100));
        assert_eq!(string.as_ptr(), pointer, "no copy");
    }

    #[test]
    fn bytes_that_are_not_utf8_are_refused_wherever_they_are() {
        for at in [0, 1, 63, 64, 65, 4_095, 9_999] {
            let mut bytes = vec![b'x'; 10_000];
            bytes[at] = 0xFF;
            assert_eq!(string_from_utf8(bytes), None, "0xFF at {at}");
        }
        // A sequence cut short at the end, and an overlong encoding.
        assert_eq!(string_from_utf8(b"abc\xE2\x9C".to_vec()), None);
        assert_eq!(string_from_utf8(b"\xC0\xAF".to_vec()), None);
    }

    proptest! {
        #[test]
        fn agrees_with_the_standard_library(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            prop_assert_eq!(string_from_utf8(bytes.clone()), String::from_utf8(bytes).ok());
        }

        #[test]
        fn keeps_every_string(text in ".{0,400}") {
            prop_assert_eq!(string_from_utf8(text.clone().into_bytes()), Some(text));
        }
    }
}
