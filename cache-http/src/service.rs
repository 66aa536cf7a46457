//! The service the layer wraps around another: one request, from key to response.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use cache_core::CallOptions;
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body::Body;
use tower_service::Service;

use crate::body::{Read, ResponseBody, read_up_to};
use crate::conditional::{none_match, not_modified_headers};
use crate::entry::{Entry, Stored, Variants, now_ms, until};
use crate::key::{resource_key, variant_hash, variant_key};
use crate::rules::{Use, Verdict, request_use, verdict};
use crate::settings::Settings;

/// The `x-cache` header of [`hit_header`](crate::ResponseCacheBuilder::hit_header).
const X_CACHE: HeaderName = HeaderName::from_static("x-cache");

/// A service whose `GET` responses are cached: what [`ResponseCacheLayer`] wraps around
/// `S`.
///
/// [`ResponseCacheLayer`]: crate::ResponseCacheLayer
#[derive(Clone)]
pub struct ResponseCache<S> {
    inner: S,
    settings: Arc<Settings>,
}

impl<S: fmt::Debug> fmt::Debug for ResponseCache<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseCache")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S> ResponseCache<S> {
    pub(crate) fn new(inner: S, settings: Arc<Settings>) -> Self {
        Self { inner, settings }
    }
}

/// The future of a [`ResponseCache`] call.
pub type ResponseFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, Q, B> Service<Request<Q>> for ResponseCache<S>
where
    S: Service<Request<Q>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send,
    Q: Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Send,
{
    type Response = Response<ResponseBody<B>>;
    type Error = S::Error;
    type Future = ResponseFuture<Self::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Q>) -> Self::Future {
        // The service that was polled ready serves this request; a clone waits for the next.
        let ready = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, ready);
        let settings = self.settings.clone();
        let how = request_use(request.method(), request.headers());
        let uri = request.uri();
        let key = match how {
            Use::Pass => None,
            Use::Cache | Use::LookUp => {
                resource_key(uri.path(), uri.query(), settings.query_string)
            }
        };
        let head = request.method() == http::Method::HEAD;
        let exchange = Exchange {
            inner,
            request: Some(request),
            sent_headers: HeaderMap::new(),
            own: None,
        };
        Box::pin(async move {
            match (how, key) {
                (Use::Cache, Some(key)) => exchange.cached(&settings, key).await,
                (Use::LookUp, Some(key)) => exchange.looked_up(&settings, key, head).await,
                _ => exchange.pass(&settings).await,
            }
        })
    }
}

/// One request's dealings with the service: it is called at most once.
struct Exchange<S, Q, B: Body, E> {
    inner: S,
    /// The request, until it is sent to the service.
    request: Option<Request<Q>>,
    /// The request's headers once it was sent (for its variant and `If-None-Match`).
    sent_headers: HeaderMap,
    /// The service's answer, when this request called it.
    own: Option<Own<B, E>>,
}

/// What the service answered this request.
enum Own<B: Body, E> {
    /// A storable response, read whole.
    Stored(Stored),
    /// A response that is not stored, as it came.
    Passed(Response<ResponseBody<B>>),
    /// The service failed.
    Failed(E),
}

/// Which entry of a resource a call reads.
enum Stage {
    /// The resource's key: a response, a variant index or a pass mark.
    Resource,
    /// One variant of a resource that varies on the request headers `names`.
    Variant(Vec<String>),
}

/// What a request does with what it read.
enum Next {
    /// Answer with a stored response.
    Serve(Stored),
    /// Send the request to the service, storing nothing.
    Pass,
    /// The entry's own lifetime is over: compute it again.
    Refresh,
    /// Read the variant under this key, for these header names.
    Variant(String, Vec<String>),
}

impl<S, Q, B> Exchange<S, Q, B, S::Error>
where
    S: Service<Request<Q>, Response = Response<B>>,
    B: Body,
{
    fn headers(&self) -> &HeaderMap {
        self.request
            .as_ref()
            .map_or(&self.sent_headers, Request::headers)
    }

    /// A `GET`: the stored response, or the service's, computed once for every request
    /// that misses the same entry at the same time.
    async fn cached(
        mut self,
        settings: &Settings,
        mut key: String,
    ) -> Result<Response<ResponseBody<B>>, S::Error> {
        let mut stage = Stage::Resource;
        let mut forced = false;
        loop {
            let options = CallOptions::builder()
                .timeout(settings.timeout)
                .stampede(settings.stampede)
                .forced_update(forced)
                .build();
            let entry: Option<Entry> = settings
                .cache
                .get_or_set_with_options(&key, options, || self.fetch(settings, &stage))
                .await;
            if let Some(own) = self.own.take() {
                shorten(settings, key, entry);
                return self.answer_own(settings, own);
            }
            match next(entry, &stage, &key, self.headers(), now_ms()) {
                Next::Serve(stored) => return Ok(self.answer(settings, &stored, true, false)),
                Next::Refresh if !forced => forced = true,
                Next::Variant(variant, names) if matches!(stage, Stage::Resource) => {
                    (key, stage, forced) = (variant, Stage::Variant(names), false);
                }
                Next::Pass | Next::Refresh | Next::Variant(..) => return self.pass(settings).await,
            }
        }
    }

    /// A `HEAD`, or a `GET` that must not be stored: a stored response if there is a fresh
    /// one, else the service's, not stored.
    async fn looked_up(
        self,
        settings: &Settings,
        mut key: String,
        head: bool,
    ) -> Result<Response<ResponseBody<B>>, S::Error> {
        let mut stage = Stage::Resource;
        loop {
            let entry = match settings.cache.get::<Option<Entry>>(&key).await {
                Ok(entry) => entry.flatten(),
                Err(error) => {
                    tracing::warn!(error = %format_args!("{error:#}"), "response cache read failed; passing the request on");
                    None
                }
            };
            match next(entry, &stage, &key, self.headers(), now_ms()) {
                Next::Serve(stored) => return Ok(self.answer(settings, &stored, true, head)),
                Next::Variant(variant, names) if matches!(stage, Stage::Resource) => {
                    (key, stage) = (variant, Stage::Variant(names));
                }
                Next::Pass | Next::Refresh | Next::Variant(..) => return self.pass(settings).await,
            }
        }
    }

    /// Calls the service with this request and decides what to store: the compute step of
    /// a cached call. `None` (nothing stored, the waiters take over one at a time) only when
    /// the service failed or a variant's `Vary` changed.
    async fn fetch(&mut self, settings: &Settings, stage: &Stage) -> Option<Entry> {
        let (parts, body) = self.request.take()?.into_parts();
        self.sent_headers = parts.headers.clone();
        let (head, body) = match self.inner.call(Request::from_parts(parts, body)).await {
            Ok(response) => response.into_parts(),
            Err(error) => {
                self.own = Some(Own::Failed(error));
                return None;
            }
        };
        let now = now_ms();
        let pass = Entry::Pass {
            until: until(now, Some(settings.pass_time())),
        };
        let verdict = if (settings.filter)(&head) {
            verdict(&head.headers, settings.max_body)
        } else {
            Verdict::Pass("the layer's filter rejects it")
        };
        let (lifetime, vary) = match verdict {
            Verdict::Store { lifetime, vary } => (lifetime, vary),
            Verdict::Pass(reason) => {
                tracing::debug!(status = head.status.as_u16(), reason, "response not stored");
                let body = ResponseBody::passed(body);
                self.own = Some(Own::Passed(Response::from_parts(head, body)));
                return Some(pass);
            }
        };
        let bytes = match read_up_to(body, settings.max_body).await {
            Read::Whole(bytes) => bytes,
            Read::Passed(body) => {
                tracing::debug!("response body over the size limit, or with trailers: not stored");
                self.own = Some(Own::Passed(Response::from_parts(head, body)));
                return Some(pass);
            }
        };
        let until = until(now, settings.lifetime(lifetime));
        let stored = Stored::new(&head, bytes, now, until);
        self.own = Some(Own::Stored(stored.clone()));
        match stage {
            Stage::Resource if vary.is_empty() => Some(Entry::Response(stored)),
            Stage::Resource => {
                let hash = variant_hash(&self.sent_headers, &vary);
                let first = Some((hash, stored));
                Some(Entry::Variants(Variants {
                    names: vary,
                    first,
                    until,
                }))
            }
            Stage::Variant(names) => (*names == vary).then_some(Entry::Response(stored)),
        }
    }

    /// The service's answer to this request, stored or not.
    fn answer_own(
        &self,
        settings: &Settings,
        own: Own<B, S::Error>,
    ) -> Result<Response<ResponseBody<B>>, S::Error> {
        match own {
            Own::Stored(stored) => Ok(self.answer(settings, &stored, false, false)),
            Own::Passed(mut response) => {
                mark(settings, response.headers_mut(), false);
                Ok(response)
            }
            Own::Failed(error) => Err(error),
        }
    }

    /// `stored` as the answer to this request: a `304` when its `If-None-Match` matches,
    /// no body for a `HEAD`.
    fn answer(
        &self,
        settings: &Settings,
        stored: &Stored,
        hit: bool,
        head: bool,
    ) -> Response<ResponseBody<B>> {
        let (status, mut headers, body, age) = stored.response(now_ms());
        let not_modified =
            status.is_success() && none_match(self.headers(), headers.get(header::ETAG));
        let body = if not_modified {
            headers = not_modified_headers(headers);
            Bytes::new()
        } else {
            if !headers.contains_key(header::CONTENT_LENGTH) {
                headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
            }
            if head { Bytes::new() } else { body }
        };
        headers.insert(header::AGE, HeaderValue::from(age));
        mark(settings, &mut headers, hit);
        let mut response = Response::new(ResponseBody::full(body));
        *response.status_mut() = if not_modified {
            StatusCode::NOT_MODIFIED
        } else {
            status
        };
        *response.headers_mut() = headers;
        response
    }

    /// Sends the request to the service and its response back untouched (but for
    /// `x-cache`).
    async fn pass(mut self, settings: &Settings) -> Result<Response<ResponseBody<B>>, S::Error> {
        if let Some(own) = self.own.take() {
            return self.answer_own(settings, own);
        }
        let request = self
            .request
            .take()
            .expect("a request is sent to the service only by `fetch`, which leaves an answer");
        let mut response = self.inner.call(request).await?.map(ResponseBody::passed);
        mark(settings, response.headers_mut(), false);
        Ok(response)
    }
}

/// What to do with `entry`, read at `stage` of the resource under `key`, for a request
/// with `headers`, at `now`.
fn next(entry: Option<Entry>, stage: &Stage, key: &str, headers: &HeaderMap, now: u64) -> Next {
    let Some(entry) = entry else {
        return Next::Pass;
    };
    if entry.expired(now) {
        return Next::Refresh;
    }
    match (entry, stage) {
        (Entry::Response(stored), _) => Next::Serve(stored),
        (Entry::Variants(variants), Stage::Resource) => {
            let hash = variant_hash(headers, &variants.names);
            match variants.first {
                Some((first, stored)) if first == hash => Next::Serve(stored),
                _ => Next::Variant(variant_key(key, hash), variants.names),
            }
        }
        (Entry::Pass { .. } | Entry::Variants(_), _) => Next::Pass,
    }
}

/// Writes `x-cache: hit|miss` when the layer is asked to.
fn mark(settings: &Settings, headers: &mut HeaderMap, hit: bool) {
    if settings.hit_header {
        let value = HeaderValue::from_static(if hit { "hit" } else { "miss" });
        headers.insert(X_CACHE, value);
    }
}

/// Gives an entry whose own lifetime ends before the layer's timeout (a shorter `max-age`,
/// a pass mark) that time-to-live in the backend too, so it does not linger. Spawned, so
/// that a slow or failing store never delays the response; the entry also carries its end,
/// so it is never served after it even if this write fails.
fn shorten(settings: &Settings, key: String, entry: Option<Entry>) {
    let Some(entry) = entry else { return };
    let left = entry.until().saturating_sub(now_ms());
    let timeout = settings.timeout.as_millis() as u64;
    if entry.until() == 0 || left == 0 || (timeout != 0 && left >= timeout) {
        return;
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let cache = settings.cache.clone();
    runtime.spawn(async move {
        let stored = Some(entry);
        if let Err(error) = cache
            .set_with_timeout(&key, &stored, Duration::from_millis(left))
            .await
        {
            tracing::debug!(error = %format_args!("{error:#}"), "cannot shorten a cached response's time-to-live; it carries its own end");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(body: &'static str, until: u64) -> Stored {
        let head = Response::new(()).into_parts().0;
        Stored::new(&head, Bytes::from_static(body.as_bytes()), 0, until)
    }

    fn served(next: Next) -> Option<String> {
        match next {
            Next::Serve(stored) => Some(String::from_utf8(stored.response(0).2.to_vec()).unwrap()),
            _ => None,
        }
    }

    #[test]
    fn an_entry_past_its_own_end_is_computed_again_never_served() {
        let headers = HeaderMap::new();
        let fresh = Some(Entry::Response(stored("a", 2_000)));
        assert_eq!(
            served(next(fresh.clone(), &Stage::Resource, "k", &headers, 1_999)),
            Some("a".into())
        );
        assert!(matches!(
            next(fresh, &Stage::Resource, "k", &headers, 2_000),
            Next::Refresh
        ));
        let pass = Some(Entry::Pass { until: 2_000 });
        assert!(matches!(
            next(pass.clone(), &Stage::Resource, "k", &headers, 1_000),
            Next::Pass
        ));
        assert!(matches!(
            next(pass, &Stage::Resource, "k", &headers, 2_000),
            Next::Refresh
        ));
        assert!(matches!(
            next(None, &Stage::Resource, "k", &headers, 0),
            Next::Pass
        ));
    }

    #[test]
    fn a_variant_index_serves_its_first_variant_or_names_the_others_key() {
        let names = vec!["accept-language".to_owned()];
        let mut en = HeaderMap::new();
        en.insert("accept-language", "en".parse().unwrap());
        let mut fr = HeaderMap::new();
        fr.insert("accept-language", "fr".parse().unwrap());
        let index = Some(Entry::Variants(Variants {
            names: names.clone(),
            first: Some((variant_hash(&en, &names), stored("en", 0))),
            until: 0,
        }));
        assert_eq!(
            served(next(index.clone(), &Stage::Resource, "k", &en, 0)),
            Some("en".into())
        );
        match next(index.clone(), &Stage::Resource, "k", &fr, 0) {
            Next::Variant(key, found) => {
                assert_eq!(key, variant_key("k", variant_hash(&fr, &names)));
                assert_eq!(found, names);
            }
            _ => panic!("another variant's key"),
        }
        // An index where a variant belongs is not followed a second time.
        assert!(matches!(
            next(index, &Stage::Variant(names), "k#1", &fr, 0),
            Next::Pass
        ));
    }
}
