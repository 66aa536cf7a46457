//! Value codecs: how a value becomes bytes.
//!
//! [`Bincode`] (bincode 2 in serde mode) is the default: compact and fast. `Json` (feature
//! `json`) stores text that other languages can read. Any other format plugs in by
//! implementing [`Codec`] and naming it in `#[memoize(codec = MyCodec)]`.

mod borrowing;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Error, ErrorKind, Result};
use borrowing::Seed;

/// The most bytes a decoded value may claim; a corrupt length prefix above it is an error,
/// not an allocation.
pub const MAX_DECODED_BYTES: usize = 64 * 1024 * 1024;

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

    /// Decodes a whole value from `bytes`; never allocates much more than `bytes` implies.
    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T>;
}

/// bincode 2 in serde mode, with variable-length integers and a decode limit of
/// [`MAX_DECODED_BYTES`]. The default codec.
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
            .map_err(|e| Error::new(ErrorKind::Encode, format!("bincode: {e}")).with_source(e))
    }

    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
        // Through `Borrowing`, strings are copied out of `bytes` instead of into a zeroed
        // buffer first (see the `borrowing` module).
        let (value, read) =
            bincode::serde::seed_decode_from_slice(Seed::new(), bytes, BINCODE_CONFIG).map_err(
                |e| Error::new(ErrorKind::Decode, format!("bincode: {e}")).with_source(e),
            )?;
        if read != bytes.len() {
            return Err(Error::new(
                ErrorKind::Decode,
                format!("bincode: {} trailing bytes", bytes.len() - read),
            ));
        }
        Ok(value)
    }
}

/// JSON through `serde_json` (feature `json`).
#[cfg(feature = "json")]
#[derive(Debug, Clone, Copy, Default)]
pub struct Json;

#[cfg(feature = "json")]
impl Codec for Json {
    const ID: u8 = 2;

    fn encode<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<()> {
        serde_json::to_writer(out, value)
            .map_err(|e| Error::new(ErrorKind::Encode, format!("json: {e}")).with_source(e))
    }

    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
        serde_json::from_slice(bytes)
            .map_err(|e| Error::new(ErrorKind::Decode, format!("json: {e}")).with_source(e))
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

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut bytes = Vec::new();
        Bincode::encode(&1u8, &mut bytes).unwrap();
        bytes.push(0);
        assert!(Bincode::decode::<u8>(&bytes).is_err());
    }
}
