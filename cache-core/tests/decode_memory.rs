//! What decoding a hostile stored value allocates, measured with a counting global allocator
//! (dhat's heap statistics), in a test binary of its own so no other test's allocations count.
//!
//! Run with: `cargo test -p cache-core --test decode_memory -- --nocapture` (prints the peaks).

use std::sync::{Mutex, MutexGuard};

use cache_core::codec::Bincode;
use cache_core::envelope::{self, Meta};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// dhat allows one profiler at a time, and counts every thread's allocations: the tests take
/// turns, each holding its turn from its first allocation to its last.
static TURN: Mutex<()> = Mutex::new(());

fn turn() -> MutexGuard<'static, ()> {
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

const MIB: usize = 1024 * 1024;

/// The envelope a `#[memoize]` function returning `T` reads, holding a sequence that claims
/// `len` elements followed by `len` zero bytes: for `Vec<String>`, `len` empty strings, a
/// valid encoding that costs 24 bytes of memory per stored byte.
fn zeros_claiming<T: serde::Serialize + Default>(len: u32) -> Vec<u8> {
    let sealed = envelope::seal::<Bincode, T>(&T::default(), Meta::default()).unwrap();
    // An empty sequence is its zero length; the envelope's trailer follows it.
    let (empty, trailer) = sealed.split_at(1);
    assert_eq!(empty, [0], "an empty sequence is its zero length");
    let mut bytes = vec![0xFC]; // bincode's varint marker for a u32 that follows
    bytes.extend_from_slice(&len.to_le_bytes());
    bytes.resize(bytes.len() + len as usize, 0);
    bytes.extend_from_slice(trailer);
    bytes
}

/// Runs `decode` under a fresh profiler and returns its result and the peak bytes it held
/// (call it during the test's [`turn`]).
fn peak_of<R>(decode: impl FnOnce() -> R) -> (R, usize) {
    let profiler = dhat::Profiler::builder().testing().build();
    let result = decode();
    let peak = dhat::HeapStats::get().max_bytes;
    drop(profiler);
    (result, peak)
}

fn report(what: &str, stored: usize, peak: usize) {
    eprintln!(
        "{what}: {:.1} MiB stored, peak {:.2} MiB allocated while decoding",
        stored as f64 / MIB as f64,
        peak as f64 / MIB as f64
    );
}

#[test]
fn a_twenty_megabyte_vec_of_empty_strings_is_a_miss_without_a_big_allocation() {
    let _turn = turn();
    let hostile = zeros_claiming::<Vec<String>>(20_000_000);
    let (result, peak) = peak_of(|| envelope::open::<Bincode, Vec<String>>(&hostile).map(drop));
    report("20 MB Vec<String> of empty strings", hostile.len(), peak);
    assert!(result.unwrap_err().is_decode());
    assert!(peak < 2 * MIB, "decoding held {peak} bytes");
}

#[test]
fn an_eight_megabyte_vec_of_empty_strings_is_a_miss_without_a_big_allocation() {
    let _turn = turn();
    let hostile = zeros_claiming::<Vec<String>>(8_000_000);
    let (result, peak) = peak_of(|| envelope::open::<Bincode, Vec<String>>(&hostile).map(drop));
    report("8 MB Vec<String> of empty strings", hostile.len(), peak);
    assert!(result.unwrap_err().is_decode());
    assert!(peak < 2 * MIB, "decoding held {peak} bytes");
}

#[test]
fn four_concurrent_readers_of_the_hostile_value_hold_a_few_megabytes_not_a_gigabyte() {
    let _turn = turn();
    let hostile = zeros_claiming::<Vec<String>>(20_000_000);
    let barrier = std::sync::Barrier::new(4);
    let (results, peak) = peak_of(|| {
        std::thread::scope(|s| {
            let readers: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        barrier.wait();
                        envelope::open::<Bincode, Vec<String>>(&hostile).map(drop)
                    })
                })
                .collect();
            readers
                .into_iter()
                .map(|r| r.join().unwrap())
                .collect::<Vec<_>>()
        })
    });
    report("4 concurrent readers of 20 MB", hostile.len(), peak);
    assert!(results.iter().all(|r| r.as_ref().unwrap_err().is_decode()));
    assert!(peak < 8 * MIB, "decoding held {peak} bytes");
}

#[test]
fn a_legitimate_value_decodes_within_its_stated_bound() {
    let _turn = turn();
    let words: Vec<String> = (0..100_000).map(|i| format!("w{i}")).collect();
    let sealed = envelope::seal::<Bincode, _>(&words, Meta::default()).unwrap();
    let (decoded, peak) = peak_of(|| envelope::open::<Bincode, Vec<String>>(&sealed).unwrap().0);
    report("a Vec<String> of 100,000 short words", sealed.len(), peak);
    assert_eq!(decoded, words);
    let bound = sealed.len() * cache_core::codec::DECODED_BYTES_PER_STORED_BYTE
        + cache_core::codec::DECODED_BYTES_ALLOWANCE;
    assert!(
        peak < 2 * bound,
        "decoding held {peak} bytes, bound {bound}"
    );
}

/// JSON announces no lengths, so elements are charged as they are read: a hostile array is
/// refused once its elements reach the bound, and a growing `Vec` may hold up to about twice
/// what was charged at that point.
#[cfg(feature = "json")]
#[test]
fn a_twenty_megabyte_json_array_of_empty_strings_is_a_miss_within_the_bound() {
    use cache_core::codec::{Json, MAX_DECODED_BYTES};

    let _turn = turn();
    let sealed = envelope::seal::<Json, Vec<String>>(&Vec::new(), Meta::default()).unwrap();
    let (empty, trailer) = sealed.split_at(b"[]".len());
    assert_eq!(empty, b"[]");
    let mut hostile = b"[".to_vec();
    hostile.extend(std::iter::repeat_n(*b"\"\",", 6_666_666).flatten());
    hostile.extend_from_slice(b"\"\"]");
    hostile.extend_from_slice(trailer);
    let (result, peak) = peak_of(|| envelope::open::<Json, Vec<String>>(&hostile).map(drop));
    report("20 MB JSON array of empty strings", hostile.len(), peak);
    assert!(result.unwrap_err().is_decode());
    assert!(peak < 3 * MAX_DECODED_BYTES, "decoding held {peak} bytes");
}
