//! Template fragment caching for [MiniJinja](https://docs.rs/minijinja) (feature
//! `minijinja`): the Rust side of Flask-Caching's `{% cache 120 "name" %}` tag.
//!
//! [`register`] adds a `cache(name, timeout)` function to an environment. Used as a call
//! block, it renders its body once, stores the HTML under `name` for `timeout` seconds
//! (`0`: never expires), and serves it from the cache until then, while the rest of the
//! page renders on every request:
//!
//! ```
//! use cache_core::Cache;
//!
//! let cache = Cache::memory();
//! let mut env = minijinja::Environment::new();
//! cache_core::fragment::register(&mut env, cache.clone());
//! env.add_template(
//!     "dashboard",
//!     "<h1>Dashboard</h1>{% call cache('dashboard_data', 120) %}<p>{{ data }}</p>{% endcall %}",
//! )?;
//! let page = env.get_template("dashboard")?;
//! assert_eq!(page.render(minijinja::context! { data => 1 })?, "<h1>Dashboard</h1><p>1</p>");
//! // The fragment comes from the cache now, whatever the new data:
//! assert_eq!(page.render(minijinja::context! { data => 2 })?, "<h1>Dashboard</h1><p>1</p>");
//! // It is an ordinary entry: `cache.delete("dashboard_data")` refreshes it.
//! cache.blocking().delete("dashboard_data").unwrap();
//! assert_eq!(page.render(minijinja::context! { data => 3 })?, "<h1>Dashboard</h1><p>3</p>");
//! # Ok::<(), minijinja::Error>(())
//! ```
//!
//! MiniJinja renders synchronously, so the fragment is read and written through the
//! cache's blocking half: with Redis, render in `spawn_blocking` (as for any blocking I/O
//! in async code). As everywhere, a cache failure is a miss: the fragment is rendered and
//! the page served. A fragment that fails to render is not stored.

use std::time::Duration;

use minijinja::value::{Kwargs, Value};
use minijinja::{Environment, Error, State};

use crate::Cache;

/// Adds the `cache(name, timeout)` call-block function, backed by `cache`, to `env`.
pub fn register(env: &mut Environment<'_>, cache: Cache) {
    env.add_function(
        "cache",
        move |state: &State<'_, '_>, name: String, timeout: u64, kwargs: Kwargs| {
            fragment(&cache, state, &name, timeout, kwargs)
        },
    );
}

fn fragment(
    cache: &Cache,
    state: &State<'_, '_>,
    name: &str,
    timeout: u64,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let caller: Value = kwargs.get("caller")?;
    kwargs.assert_all_used()?;
    let html: Result<String, Error> =
        cache
            .blocking()
            .try_get_or_set_with(name, Duration::from_secs(timeout), || {
                caller.call(state, &[]).map(|rendered| rendered.to_string())
            });
    html.map(Value::from_safe_string)
}
