use cache_core::{cached, memoize};

#[memoize(key_prefix = users)]
fn square(num: u64) -> u64 {
    num * num
}

#[cached(timeout = "soon")]
fn home() -> String {
    String::new()
}

#[memoize(timeout = 1.5, cache_none = true)]
fn find(id: u32) -> Option<u32> {
    Some(id)
}

#[memoize(ignore = id)]
fn find_again(id: u32) -> Option<u32> {
    Some(id)
}

fn main() {}
