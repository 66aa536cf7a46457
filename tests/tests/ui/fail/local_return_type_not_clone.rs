use cache_core::memoize;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Report {
    lines: Vec<String>,
}

#[memoize(local = 30)]
fn report(id: u32) -> Report {
    Report { lines: vec![id.to_string()] }
}

fn main() {
    let _ = report(1).lines;
}
