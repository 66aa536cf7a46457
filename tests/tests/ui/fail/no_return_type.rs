use cache_core::memoize;

#[memoize]
fn log(line: String) {
    println!("{line}");
}

fn main() {}
