//! `local = ..` in every form, and return types the near cache cannot hold without it.

use std::time::Duration;

use cache_core::{cached, memoize};
use serde::{Deserialize, Serialize};

#[memoize(local = 30)]
fn seconds(num: u64) -> u64 {
    num
}

#[memoize(local = Duration::from_millis(500), timeout = 60)]
fn millis(num: u64) -> String {
    num.to_string()
}

#[memoize(local = 0)]
fn opted_out(num: u64) -> u64 {
    num
}

#[cached(key_prefix = "home", local = 5)]
async fn home() -> Result<String, String> {
    Ok("home".to_owned())
}

/// Not `Clone`: without `local`, it simply stays out of the near cache.
#[derive(Serialize, Deserialize)]
struct Report {
    lines: Vec<String>,
}

#[memoize]
fn report(id: u32) -> Report {
    Report {
        lines: vec![id.to_string()],
    }
}

#[memoize(local = 10)]
fn maybe(id: u32) -> Option<Vec<u8>> {
    Some(id.to_be_bytes().to_vec())
}

fn main() {
    let _ = (seconds(1), millis(1), opted_out(1), home(), report(1).lines, maybe(1));
}
