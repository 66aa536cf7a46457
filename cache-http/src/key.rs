//! Which entry a request reads: the keys of cached responses.
//!
//! A response is stored under the direct key `http:GET{path}?{query}`, which the
//! [`Cache`](cache_core::Cache) escapes like every direct key (so `:`, `?`, `=`, `&`,
//! `{`, `}` and the glob characters become `%XX` and no key holds a Redis Cluster hash
//! tag): `GET /expensive?b=2&a=1` with sorted query strings is
//! `cache:http%3AGET/expensive%3Fa%3D1%26b%3D2` in the default namespace. The `?` always
//! follows the path (with an empty query when there is none or when query strings are not
//! part of the key), and a path never holds a raw `?`, so the keys of one path are exactly
//! the keys that start with `http:GET{path}?`: that is what
//! [`delete_response`](crate::ResponseCacheExt::delete_response) removes, and never the
//! entries of `/expensive2`.
//!
//! When the response names request headers in `Vary`, that key holds a small variant
//! index (the header names, and the first variant), and each other variant lives under
//! the same key followed by `#` and the 128-bit XXH3 hash of the request's values of those
//! headers (`#` never appears in a path or a query either). The values themselves (a
//! `Cookie`, say) are never stored.

use http::HeaderMap;
use xxhash_rust::xxh3::Xxh3;

/// The text every key of a cached response starts with (before escaping).
pub(crate) const MARK: &str = "http:GET";

/// Longest path and query (in bytes) whose responses are cached; longer requests pass
/// through, so a key stays small.
pub(crate) const MAX_TARGET_LEN: usize = 2048;

/// The key of the resource at `path` with `query`, or `None` when the request is not
/// cached (too long, or holding a `#`, which a parsed URI never does).
///
/// With `with_query`, the query's parameters are sorted by name (a stable sort, so repeated
/// names keep their order: `?tag=b&tag=a` and `?tag=a&tag=b` stay two resources) and empty
/// parameters dropped; without it, the query is not part of the key.
pub(crate) fn resource_key(path: &str, query: Option<&str>, with_query: bool) -> Option<String> {
    let query = query.filter(|_| with_query).unwrap_or("");
    if path.len() + query.len() > MAX_TARGET_LEN || path.contains('#') || query.contains('#') {
        return None;
    }
    let mut key = String::with_capacity(MARK.len() + path.len() + query.len() + 1);
    key.push_str(MARK);
    key.push_str(path);
    key.push('?');
    if !query.is_empty() {
        let mut params: Vec<&str> = query.split('&').filter(|p| !p.is_empty()).collect();
        params.sort_by_key(|param| param.split_once('=').map_or(*param, |(name, _)| name));
        for (i, param) in params.iter().enumerate() {
            if i > 0 {
                key.push('&');
            }
            key.push_str(param);
        }
    }
    Some(key)
}

/// The key prefix of every entry of `path` (all its query strings and variants).
pub(crate) fn path_prefix(path: &str) -> String {
    format!("{MARK}{path}?")
}

/// The key prefix of every entry whose path starts with `prefix`.
pub(crate) fn paths_prefix(prefix: &str) -> String {
    format!("{MARK}{prefix}")
}

/// The hash of the request's values of the headers `names` (lower case, sorted): which
/// variant of a resource the request asks for. Every value counts, in order, and a missing
/// header differs from an empty one.
pub(crate) fn variant_hash(headers: &HeaderMap, names: &[String]) -> u128 {
    let mut hasher = Xxh3::new();
    for name in names {
        hasher.update(name.as_bytes());
        hasher.update(&[0]);
        for value in headers.get_all(name.as_str()) {
            hasher.update(&(value.len() as u64).to_le_bytes());
            hasher.update(value.as_bytes());
        }
        hasher.update(&[0xff]);
    }
    hasher.digest128()
}

/// The key of one variant of the resource under `resource`.
pub(crate) fn variant_key(resource: &str, hash: u128) -> String {
    format!("{resource}#{hash:032x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_is_sorted_by_name_and_kept_in_order_for_repeated_names() {
        let key = |q| resource_key("/p", Some(q), true).unwrap();
        assert_eq!(key("b=2&a=1"), "http:GET/p?a=1&b=2");
        assert_eq!(key("a=1&b=2"), key("b=2&a=1"));
        assert_eq!(key("tag=b&tag=a"), "http:GET/p?tag=b&tag=a");
        assert_ne!(key("tag=b&tag=a"), key("tag=a&tag=b"));
        assert_eq!(key("&a=1&&"), "http:GET/p?a=1");
        assert_eq!(key("flag&a"), "http:GET/p?a&flag");
    }

    #[test]
    fn without_query_strings_every_query_shares_the_path_key() {
        assert_eq!(
            resource_key("/p", Some("a=1"), false),
            resource_key("/p", None, true)
        );
        assert_eq!(resource_key("/p", None, true).unwrap(), "http:GET/p?");
    }

    #[test]
    fn a_path_prefix_covers_its_queries_but_not_a_longer_path() {
        let prefix = path_prefix("/expensive");
        assert!(
            resource_key("/expensive", Some("a=1"), true)
                .unwrap()
                .starts_with(&prefix)
        );
        assert!(
            !resource_key("/expensive2", None, true)
                .unwrap()
                .starts_with(&prefix)
        );
        assert!(
            resource_key("/user/7", None, true)
                .unwrap()
                .starts_with(&paths_prefix("/user/"))
        );
    }

    #[test]
    fn long_targets_are_not_cached() {
        assert!(resource_key(&"/a".repeat(MAX_TARGET_LEN), None, true).is_none());
        assert!(resource_key("/a", Some(&"b".repeat(MAX_TARGET_LEN)), false).is_some());
    }

    #[test]
    fn variants_differ_by_value_by_absence_and_by_order() {
        let names = vec!["accept-language".to_owned()];
        let with = |values: &[&str]| {
            let mut headers = HeaderMap::new();
            for value in values {
                headers.append("accept-language", value.parse().unwrap());
            }
            variant_hash(&headers, &names)
        };
        assert_eq!(with(&["en"]), with(&["en"]));
        assert_ne!(with(&["en"]), with(&["fr"]));
        assert_ne!(with(&[]), with(&[""]));
        assert_ne!(with(&["en", "fr"]), with(&["fr", "en"]));
        assert_ne!(with(&["en", "fr"]), with(&["enfr"]));
    }
}
