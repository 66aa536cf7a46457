use cache_core::memoize;

struct Connection;

#[memoize]
fn load(conn: &Connection, id: u32) -> String {
    let _ = conn;
    id.to_string()
}

fn main() {}
