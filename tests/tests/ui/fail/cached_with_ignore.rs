use cache_core::cached;

#[cached(key_prefix = "page", ignore = [user_id])]
fn page(user_id: u32) -> String {
    format!("user {user_id}")
}

fn main() {}
