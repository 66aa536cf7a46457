//! Conditional requests: `If-None-Match` against a stored `ETag` (RFC 9110 section 13.1.2).

use http::HeaderMap;
use http::header::{self, HeaderValue};

/// True when the request's `If-None-Match` fields match `etag` with the weak comparison
/// (`W/"a"` matches `"a"`), or are `*`: the answer is then a `304 Not Modified`.
pub(crate) fn none_match(request: &HeaderMap, etag: Option<&HeaderValue>) -> bool {
    let Some(etag) = etag.and_then(|e| e.to_str().ok()) else {
        return false;
    };
    let opaque = |tag: &str| tag.trim().trim_start_matches("W/").to_owned();
    let wanted = opaque(etag);
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|list| list.split(','))
        .any(|tag| tag.trim() == "*" || opaque(tag) == wanted)
}

/// The headers a `304` keeps from the `200` it stands for (RFC 9110 section 15.4.5).
pub(crate) fn not_modified_headers(headers: HeaderMap) -> HeaderMap {
    let mut kept = HeaderMap::new();
    for name in [
        header::CACHE_CONTROL,
        header::CONTENT_LOCATION,
        header::DATE,
        header::ETAG,
        header::EXPIRES,
        header::VARY,
    ] {
        for value in headers.get_all(&name) {
            kept.append(name.clone(), value.clone());
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asking(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::IF_NONE_MATCH, value.parse().unwrap());
        headers
    }

    #[test]
    fn if_none_match_uses_the_weak_comparison_and_lists() {
        let etag = HeaderValue::from_static("\"abc\"");
        assert!(none_match(&asking("\"abc\""), Some(&etag)));
        assert!(none_match(&asking("W/\"abc\""), Some(&etag)));
        assert!(none_match(&asking("\"x\", \"abc\""), Some(&etag)));
        assert!(none_match(&asking("*"), Some(&etag)));
        assert!(!none_match(&asking("\"abcd\""), Some(&etag)));
        assert!(!none_match(&HeaderMap::new(), Some(&etag)));
        assert!(!none_match(&asking("*"), None));
    }

    #[test]
    fn a_304_keeps_only_the_validator_and_caching_headers() {
        let mut headers = HeaderMap::new();
        headers.insert(header::ETAG, "\"a\"".parse().unwrap());
        headers.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        headers.insert(header::VARY, "accept".parse().unwrap());
        let kept = not_modified_headers(headers);
        assert_eq!(kept.len(), 2);
        assert!(kept.get(header::CONTENT_TYPE).is_none());
    }
}
