use cache_core::memoize;

#[memoize]
unsafe fn raw(num: u64) -> u64 {
    num
}

#[memoize]
extern "C" fn ffi(num: u64) -> u64 {
    num
}

fn main() {}
