//! What decoding one stored value may still take: input bytes, memory, zero-sized elements
//! and nesting depth (the bounds are documented on the [`codec`](super) module).
//!
//! The accounting is a lower bound on the input a value needs and an estimate of the memory
//! it takes, both known before the elements are decoded: a sequence that announces its
//! length (bincode) is charged in full before its first element, so an implausible length is
//! an error before anything but serde's own cautious pre-allocation (at most 1 MiB) exists.

use std::cell::Cell;
use std::mem::size_of;

use serde::de;

use super::{
    DECODED_BYTES_ALLOWANCE, DECODED_BYTES_PER_STORED_BYTE, MAX_DECODED_BYTES, MAX_DEPTH,
    MAX_ZERO_SIZED_ELEMENTS,
};

/// The remaining allowance of one decode; shared by reference by every level of the value.
pub(crate) struct Budget {
    /// Stored bytes not yet accounted for: each element of a type that is not zero-sized
    /// starts at a byte of its own, and each string or byte string holds its bytes.
    input: Cell<usize>,
    /// Bytes the decoded elements and strings may still take.
    memory: Cell<usize>,
    /// Elements of zero-sized types still allowed, which take no stored bytes at all.
    zero_sized: Cell<usize>,
    /// Levels of nesting still allowed, so a hostile value cannot overflow the stack.
    depth: Cell<usize>,
}

impl Budget {
    /// The budget for decoding `stored` bytes.
    pub(crate) fn for_stored(stored: usize) -> Self {
        let memory = stored
            .saturating_mul(DECODED_BYTES_PER_STORED_BYTE)
            .saturating_add(DECODED_BYTES_ALLOWANCE)
            .min(MAX_DECODED_BYTES);
        Self {
            input: Cell::new(stored),
            memory: Cell::new(memory),
            zero_sized: Cell::new(MAX_ZERO_SIZED_ELEMENTS),
            depth: Cell::new(MAX_DEPTH),
        }
    }

    /// Charges `count` elements of type `T` (of a sequence, or the keys or values of a map).
    pub(crate) fn claim_elements<T, E: de::Error>(&self, count: usize) -> Result<(), E> {
        let size = size_of::<T>();
        if size == 0 {
            return take(&self.zero_sized, count).ok_or_else(|| {
                E::custom(format_args!(
                    "{count} zero-sized elements, more than the {MAX_ZERO_SIZED_ELEMENTS} allowed"
                ))
            });
        }
        take(&self.input, count).ok_or_else(|| {
            E::custom(format_args!(
                "a length of {count} elements, more than the stored bytes left"
            ))
        })?;
        self.claim_memory(count.saturating_mul(size))
    }

    /// Charges a string or byte string of `len` bytes, read from the input and copied.
    pub(crate) fn claim_bytes<E: de::Error>(&self, len: usize) -> Result<(), E> {
        take(&self.input, len)
            .ok_or_else(|| E::custom("a string longer than the stored bytes left"))?;
        self.claim_memory(len)
    }

    fn claim_memory<E: de::Error>(&self, bytes: usize) -> Result<(), E> {
        take(&self.memory, bytes).ok_or_else(|| {
            E::custom(format_args!(
                "{bytes} more bytes decoded, beyond the bound of \
                 {DECODED_BYTES_PER_STORED_BYTE} per stored byte plus {DECODED_BYTES_ALLOWANCE} \
                 (at most {MAX_DECODED_BYTES})"
            ))
        })
    }

    /// Runs `nested` one level deeper, failing beyond [`MAX_DEPTH`] levels.
    pub(crate) fn nested<R, E: de::Error>(
        &self,
        nested: impl FnOnce() -> Result<R, E>,
    ) -> Result<R, E> {
        take(&self.depth, 1)
            .ok_or_else(|| E::custom(format_args!("nested more than {MAX_DEPTH} levels deep")))?;
        let result = nested();
        self.depth.set(self.depth.get() + 1);
        result
    }
}

/// Subtracts `amount` from `cell`, or leaves it and returns `None` if it holds less.
fn take(cell: &Cell<usize>, amount: usize) -> Option<()> {
    cell.set(cell.get().checked_sub(amount)?);
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    type Error = serde::de::value::Error;

    #[test]
    fn the_memory_bound_grows_with_the_stored_size_up_to_the_cap() {
        let small = Budget::for_stored(10);
        assert_eq!(small.memory.get(), 10 * 32 + 64 * 1024);
        assert_eq!(
            Budget::for_stored(usize::MAX).memory.get(),
            MAX_DECODED_BYTES
        );
    }

    #[test]
    fn elements_are_charged_for_input_and_memory() {
        let budget = Budget::for_stored(100);
        budget.claim_elements::<u64, Error>(100).unwrap();
        assert!(budget.claim_elements::<u64, Error>(1).is_err());
        assert_eq!(budget.memory.get(), 100 * 32 + 64 * 1024 - 800);
    }

    #[test]
    fn zero_sized_elements_take_no_input_but_have_a_cap() {
        let budget = Budget::for_stored(0);
        budget
            .claim_elements::<(), Error>(MAX_ZERO_SIZED_ELEMENTS)
            .unwrap();
        assert!(budget.claim_elements::<(), Error>(1).is_err());
    }

    #[test]
    fn depth_is_given_back_after_each_level() {
        let budget = Budget::for_stored(0);
        for _ in 0..2 * MAX_DEPTH {
            budget.nested(|| Ok::<_, Error>(())).unwrap();
        }
        fn dive(budget: &Budget, levels: usize) -> Result<(), Error> {
            if levels == 0 {
                return Ok(());
            }
            budget.nested(|| dive(budget, levels - 1))
        }
        dive(&budget, MAX_DEPTH).unwrap();
        assert!(dive(&budget, MAX_DEPTH + 1).is_err());
    }
}
