//! HTTP's storing rules (RFC 9111), as pure functions of requests and response heads.

use std::time::Duration;

use http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_LENGTH, SET_COOKIE, VARY};
use http::{HeaderMap, Method};

/// What the layer does with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Use {
    /// A `GET`: served from the cache, or computed once and stored.
    Cache,
    /// Served from a stored `GET` entry if there is one, else passed to the service and
    /// not stored: a `HEAD`, or a `GET` whose client sent `Cache-Control: no-store`.
    LookUp,
    /// Passed to the service untouched: other methods, and requests with `Authorization`.
    Pass,
}

/// How the layer uses a request with this method and these headers.
///
/// A shared cache must not store a response to a request with `Authorization` (RFC 9111
/// section 3.5, unless the response says `public`); the layer neither stores nor serves
/// those. A client's `no-store` forbids storing (section 5.2.1.5) but not answering from the
/// cache. A client's `no-cache` and `max-age=0` are served from the cache like any request,
/// as reverse proxies do by default: honouring them would let any client defeat the cache.
pub(crate) fn request_use(method: &Method, headers: &HeaderMap) -> Use {
    let looked_up = match *method {
        Method::GET => false,
        Method::HEAD => true,
        _ => return Use::Pass,
    };
    if headers.contains_key(AUTHORIZATION) {
        return Use::Pass;
    }
    if looked_up || directives(headers).no_store {
        Use::LookUp
    } else {
        Use::Cache
    }
}

/// The `Cache-Control` directives the layer reads.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Directives {
    /// `no-store`.
    pub(crate) no_store: bool,
    /// `no-cache` (with or without field names).
    pub(crate) no_cache: bool,
    /// `private` (with or without field names).
    pub(crate) private: bool,
    /// `max-age=N`, in seconds.
    pub(crate) max_age: Option<u64>,
    /// `s-maxage=N`, in seconds: what a shared cache obeys before `max-age`.
    pub(crate) s_maxage: Option<u64>,
}

/// The directives of every `Cache-Control` field in `headers`. Names are case-insensitive;
/// an unparsable age counts as `0` (RFC 9111 section 4.2.1: treat it as stale).
pub(crate) fn directives(headers: &HeaderMap) -> Directives {
    let mut found = Directives::default();
    for value in headers.get_all(CACHE_CONTROL) {
        let Ok(text) = value.to_str() else {
            // Not text: the safe reading is "do not store".
            found.no_store = true;
            continue;
        };
        for directive in text.split(',') {
            let (name, argument) = match directive.split_once('=') {
                Some((name, argument)) => (name.trim(), Some(argument.trim().trim_matches('"'))),
                None => (directive.trim(), None),
            };
            let seconds = || argument.and_then(|a| a.parse().ok()).unwrap_or(0);
            match name.to_ascii_lowercase().as_str() {
                "no-store" => found.no_store = true,
                "no-cache" => found.no_cache = true,
                "private" => found.private = true,
                "max-age" => found.max_age = Some(seconds()),
                "s-maxage" => found.s_maxage = Some(seconds()),
                _ => {}
            }
        }
    }
    found
}

/// Whether and how long a response may be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Store it for `lifetime` (`None`: the layer's timeout), keyed also by the request
    /// headers `vary` (lower case, sorted, no duplicates).
    Store {
        /// The response's own freshness lifetime, when it gives one.
        lifetime: Option<Duration>,
        /// The request headers the response varies on.
        vary: Vec<String>,
    },
    /// Never store it, and never hand it to another request.
    Pass(&'static str),
}

/// The verdict on a response head that the user's filter accepted, with a body limit of
/// `max_body` bytes (a `Content-Length` beyond it is passed without reading the body).
pub(crate) fn verdict(headers: &HeaderMap, max_body: usize) -> Verdict {
    if headers.contains_key(SET_COOKIE) {
        return Verdict::Pass("it sets a cookie");
    }
    let cc = directives(headers);
    if cc.no_store {
        return Verdict::Pass("Cache-Control: no-store");
    }
    if cc.private {
        return Verdict::Pass("Cache-Control: private");
    }
    if cc.no_cache {
        return Verdict::Pass("Cache-Control: no-cache");
    }
    let lifetime = cc.s_maxage.or(cc.max_age).map(Duration::from_secs);
    if lifetime == Some(Duration::ZERO) {
        return Verdict::Pass("its max-age is 0");
    }
    let too_long = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        .is_some_and(|length| length > max_body as u64);
    if too_long {
        return Verdict::Pass("its body is over the size limit");
    }
    match vary(headers) {
        Some(vary) => Verdict::Store { lifetime, vary },
        None => Verdict::Pass("Vary: *"),
    }
}

/// The header names of every `Vary` field, lower case, sorted and unique; `None` for
/// `Vary: *` (or a field that is not a list of header names), which is never cached.
fn vary(headers: &HeaderMap) -> Option<Vec<String>> {
    let mut names = Vec::new();
    for value in headers.get_all(VARY) {
        for name in value.to_str().ok()?.split(',') {
            let name = name.trim();
            if name.is_empty() {
                continue;
            }
            if name == "*" {
                return None;
            }
            let parsed = http::HeaderName::from_bytes(name.as_bytes()).ok()?;
            names.push(parsed.as_str().to_owned());
        }
    }
    names.sort();
    names.dedup();
    Some(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        map
    }

    fn store(lifetime: Option<u64>, vary: &[&str]) -> Verdict {
        Verdict::Store {
            lifetime: lifetime.map(Duration::from_secs),
            vary: vary.iter().map(|v| (*v).to_owned()).collect(),
        }
    }

    #[test]
    fn gets_are_cached_heads_looked_up_and_the_rest_passed() {
        let none = HeaderMap::new();
        assert_eq!(request_use(&Method::GET, &none), Use::Cache);
        assert_eq!(request_use(&Method::HEAD, &none), Use::LookUp);
        assert_eq!(request_use(&Method::POST, &none), Use::Pass);
        let auth = headers(&[("authorization", "Bearer x")]);
        assert_eq!(request_use(&Method::GET, &auth), Use::Pass);
        assert_eq!(request_use(&Method::HEAD, &auth), Use::Pass);
        let no_store = headers(&[("cache-control", "No-Store")]);
        assert_eq!(request_use(&Method::GET, &no_store), Use::LookUp);
        let no_cache = headers(&[("cache-control", "no-cache, max-age=0")]);
        assert_eq!(request_use(&Method::GET, &no_cache), Use::Cache);
    }

    #[test]
    fn directives_are_read_from_every_field_case_insensitively() {
        let cc = directives(&headers(&[
            ("cache-control", "public, MAX-AGE=\"30\""),
            ("cache-control", "s-maxage=10, private=\"x-user\""),
        ]));
        assert_eq!(cc.max_age, Some(30));
        assert_eq!(cc.s_maxage, Some(10));
        assert!(cc.private && !cc.no_store && !cc.no_cache);
        assert_eq!(
            directives(&headers(&[("cache-control", "max-age=soon")])).max_age,
            Some(0)
        );
    }

    #[test]
    fn what_http_forbids_is_never_stored() {
        for pairs in [
            &[("set-cookie", "session=1")][..],
            &[("cache-control", "no-store")],
            &[("cache-control", "private")],
            &[("cache-control", "no-cache")],
            &[("cache-control", "max-age=0")],
            &[("vary", "*")],
            &[("vary", "accept, *")],
            &[("content-length", "2000")],
        ] {
            assert!(
                matches!(verdict(&headers(pairs), 1000), Verdict::Pass(_)),
                "{pairs:?}"
            );
        }
    }

    #[test]
    fn lifetimes_and_vary_names_are_read() {
        assert_eq!(verdict(&HeaderMap::new(), 1000), store(None, &[]));
        let head = headers(&[
            ("cache-control", "max-age=30, s-maxage=5"),
            ("content-length", "1000"),
        ]);
        assert_eq!(verdict(&head, 1000), store(Some(5), &[]));
        let head = headers(&[
            ("vary", "Accept-Language, accept-encoding"),
            ("vary", "Accept-Language"),
        ]);
        assert_eq!(
            verdict(&head, 1000),
            store(None, &["accept-encoding", "accept-language"])
        );
    }
}
