use cache_core::cached;

#[cached(timeout = 30)]
fn user_page(user_id: u32) -> String {
    format!("user {user_id}")
}

fn main() {}
