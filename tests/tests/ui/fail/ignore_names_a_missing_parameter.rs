use cache_core::memoize;

#[memoize(ignore = [db, self])]
fn load(id: u32, conn: u8) -> String {
    format!("{id}{conn}")
}

fn main() {}
