use cache_core::memoize;

struct Repo;

impl Repo {
    #[memoize]
    fn load(&self, id: u32) -> String {
        id.to_string()
    }
}

fn main() {}
