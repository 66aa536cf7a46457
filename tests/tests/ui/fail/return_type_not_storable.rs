use cache_core::memoize;

struct Report {
    lines: Vec<String>,
}

#[memoize]
fn report(id: u32) -> Report {
    Report { lines: vec![id.to_string()] }
}

fn main() {
    let _ = report(1).lines;
}
