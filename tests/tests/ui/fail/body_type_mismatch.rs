use cache_core::memoize;

#[memoize]
fn square(num: u64) -> String {
    num * num
}

#[memoize]
async fn square_async(num: u64) -> String {
    num * num
}

fn main() {}
