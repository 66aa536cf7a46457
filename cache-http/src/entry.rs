//! What the cache holds for a resource: a response, a variant index, or a "pass" mark.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, StatusCode, response};
use serde::{Deserialize, Serialize};

/// One stored value (times are milliseconds since the Unix epoch; `until == 0`: no end of
/// its own, only the layer's timeout).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Entry {
    /// A whole response.
    Response(Stored),
    /// The resource varies on request headers: their names, and the first variant stored
    /// (the others are under [`variant_key`](crate::key::variant_key)).
    Variants(Variants),
    /// The resource's last response was not storable: until `until`, requests for it skip
    /// coalescing and go to the service (Varnish's "hit-for-pass").
    Pass {
        /// When the mark ends.
        until: u64,
    },
}

/// A stored response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Stored {
    status: u16,
    /// The end-to-end headers, `ETag` included.
    headers: Vec<(String, Bytes)>,
    body: Bytes,
    /// When it was stored.
    stored: u64,
    /// When it stops being fresh (`0`: the layer's timeout decides).
    until: u64,
}

/// A variant index.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Variants {
    /// The request headers the resource varies on (lower case, sorted).
    pub(crate) names: Vec<String>,
    /// The first variant stored, with the hash of its request's values.
    pub(crate) first: Option<(u128, Stored)>,
    /// When the index stops being fresh (`0`: the layer's timeout decides).
    pub(crate) until: u64,
}

impl Entry {
    /// When this entry stops being fresh (`0`: only the layer's timeout ends it).
    pub(crate) fn until(&self) -> u64 {
        match self {
            Entry::Response(stored) => stored.until,
            Entry::Variants(variants) => variants.until,
            Entry::Pass { until } => *until,
        }
    }

    /// True when the entry's own lifetime has ended.
    pub(crate) fn expired(&self, now: u64) -> bool {
        let until = self.until();
        until != 0 && now >= until
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `now + lifetime` in milliseconds, `0` for no lifetime of its own.
pub(crate) fn until(now: u64, lifetime: Option<Duration>) -> u64 {
    lifetime.map_or(0, |d| now.saturating_add(d.as_millis() as u64).max(1))
}

/// Headers that describe one connection, not the response (RFC 9110 section 7.6.1), and
/// `Age`, which the layer writes itself.
fn end_to_end(name: &HeaderName) -> bool {
    !matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "transfer-encoding"
            | "te"
            | "trailer"
            | "upgrade"
            | "age"
    )
}

/// A strong `ETag` for `body`: its 128-bit XXH3 hash.
fn etag_of(body: &[u8]) -> HeaderValue {
    let tag = format!("\"{:032x}\"", xxhash_rust::xxh3::xxh3_128(body));
    HeaderValue::from_str(&tag).expect("hex digits in quotes are a header value")
}

impl Stored {
    /// The response `head` with `body`, stored at `now` until `until`; given an `ETag` if it
    /// has none.
    pub(crate) fn new(head: &response::Parts, body: Bytes, now: u64, until: u64) -> Self {
        let mut headers: Vec<(String, Bytes)> = head
            .headers
            .iter()
            .filter(|(name, _)| end_to_end(name))
            .map(|(name, value)| {
                let value = Bytes::copy_from_slice(value.as_bytes());
                (name.as_str().to_owned(), value)
            })
            .collect();
        if !head.headers.contains_key(header::ETAG) {
            let etag = Bytes::copy_from_slice(etag_of(&body).as_bytes());
            headers.push((header::ETAG.as_str().to_owned(), etag));
        }
        Stored {
            status: head.status.as_u16(),
            headers,
            body,
            stored: now,
            until,
        }
    }

    /// The status, headers and body to send, and the age in whole seconds at `now`.
    pub(crate) fn response(&self, now: u64) -> (StatusCode, HeaderMap, Bytes, u64) {
        let mut headers = HeaderMap::with_capacity(self.headers.len() + 2);
        for (name, value) in &self.headers {
            // Every stored name and value came from a `HeaderMap`; a value in the cache
            // that does not parse (written by someone else) is left out.
            let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_maybe_shared(value.clone()),
            ) else {
                continue;
            };
            headers.append(name, value);
        }
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::OK);
        let age = now.saturating_sub(self.stored) / 1000;
        (status, headers, self.body.clone(), age)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(pairs: &[(&str, &str)]) -> response::Parts {
        let mut builder = http::Response::builder().status(200);
        for (name, value) in pairs {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap().into_parts().0
    }

    #[test]
    fn a_stored_response_gets_an_etag_and_loses_connection_headers() {
        let stored = Stored::new(
            &head(&[
                ("content-type", "text/plain"),
                ("connection", "close"),
                ("age", "9"),
            ]),
            Bytes::from_static(b"hello"),
            1_000,
            0,
        );
        let (status, headers, body, age) = stored.response(3_500);
        assert_eq!(status, 200);
        assert_eq!(body, "hello");
        assert_eq!(age, 2);
        assert_eq!(headers["content-type"], "text/plain");
        assert!(headers.get("connection").is_none() && headers.get("age").is_none());
        assert_eq!(headers["etag"], etag_of(b"hello"));
        assert_ne!(etag_of(b"hello"), etag_of(b"hellp"));
    }

    #[test]
    fn the_handlers_own_etag_is_kept() {
        let stored = Stored::new(&head(&[("etag", "W/\"v1\"")]), Bytes::new(), 0, 0);
        let (_, headers, _, _) = stored.response(0);
        assert_eq!(headers.get_all("etag").iter().count(), 1);
        assert_eq!(headers["etag"], "W/\"v1\"");
    }

    #[test]
    fn entries_expire_at_their_own_time_only_when_they_have_one() {
        let pass = Entry::Pass {
            until: until(1_000, Some(Duration::from_secs(1))),
        };
        assert!(!pass.expired(1_999) && pass.expired(2_000));
        assert!(
            !Entry::Pass {
                until: until(5, None)
            }
            .expired(u64::MAX)
        );
    }
}
