//! The layer's response body, and reading a service's body up to the size limit.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

pin_project! {
    /// The body of a response from [`ResponseCache`](crate::ResponseCache): a stored body,
    /// the service's own body (passed through), or the part of it read while deciding
    /// whether to store it followed by the rest.
    pub struct ResponseBody<B: Body> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B: Body> {
        Full { data: Option<Bytes> },
        Passed { #[pin] body: B },
        Prefixed { head: Option<Bytes>, rest: Rest<B> },
    }
}

/// What follows the part of a body read before it was passed on.
enum Rest<B: Body> {
    /// The rest of the body.
    Body(Pin<Box<B>>),
    /// The body ended with trailers.
    Trailers(Option<HeaderMap>),
    /// The body failed.
    Failed(Option<B::Error>),
}

impl<B: Body> fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.kind {
            Kind::Full { .. } => "stored",
            Kind::Passed { .. } => "passed",
            Kind::Prefixed { .. } => "read in part, then passed",
        };
        f.debug_struct("ResponseBody").field("kind", &kind).finish()
    }
}

impl<B: Body> ResponseBody<B> {
    /// A whole body (a stored one, or empty for `HEAD` and `304`).
    pub(crate) fn full(data: Bytes) -> Self {
        let data = (!data.is_empty()).then_some(data);
        Self {
            kind: Kind::Full { data },
        }
    }

    /// The service's body, untouched.
    pub(crate) fn passed(body: B) -> Self {
        Self {
            kind: Kind::Passed { body },
        }
    }

    /// `head`, then what [`read_up_to`] left.
    fn prefixed(head: Bytes, rest: Rest<B>) -> Self {
        let head = (!head.is_empty()).then_some(head);
        Self {
            kind: Kind::Prefixed { head, rest },
        }
    }
}

impl<B: Body> Body for ResponseBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        match self.project().kind.project() {
            KindProj::Full { data } => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            KindProj::Passed { body } => poll_bytes(body, cx),
            KindProj::Prefixed { head, rest } => {
                if let Some(head) = head.take() {
                    return Poll::Ready(Some(Ok(Frame::data(head))));
                }
                match rest {
                    Rest::Body(body) => poll_bytes(body.as_mut(), cx),
                    Rest::Trailers(trailers) => {
                        Poll::Ready(trailers.take().map(|t| Ok(Frame::trailers(t))))
                    }
                    Rest::Failed(error) => Poll::Ready(error.take().map(Err)),
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full { data } => data.is_none(),
            Kind::Passed { body } => body.is_end_stream(),
            Kind::Prefixed { head, rest } => {
                head.is_none()
                    && match rest {
                        Rest::Body(body) => body.is_end_stream(),
                        Rest::Trailers(trailers) => trailers.is_none(),
                        Rest::Failed(error) => error.is_none(),
                    }
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full { data } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
            Kind::Passed { body } => body.size_hint(),
            Kind::Prefixed { head, rest } => {
                let head = head.as_ref().map_or(0, |h| h.len() as u64);
                let mut hint = match rest {
                    Rest::Body(body) => body.size_hint(),
                    _ => SizeHint::with_exact(0),
                };
                hint.set_lower(hint.lower() + head);
                if let Some(upper) = hint.upper() {
                    hint.set_upper(upper + head);
                }
                hint
            }
        }
    }
}

/// Polls `body` for a frame, its data as `Bytes` (without a copy when it already is).
fn poll_bytes<B: Body>(
    body: Pin<&mut B>,
    cx: &mut Context<'_>,
) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
    let frame = ready!(body.poll_frame(cx));
    Poll::Ready(frame.map(|frame| {
        frame.map(|frame| frame.map_data(|mut data| data.copy_to_bytes(data.remaining())))
    }))
}

/// A service's body read up to a limit.
pub(crate) enum Read<B: Body> {
    /// The whole body, within the limit.
    Whole(Bytes),
    /// Over the limit, ended by trailers, or failed: not stored, sent as it came.
    Passed(ResponseBody<B>),
}

/// Reads `body` while it stays within `limit` bytes (so a body is buffered only up to the
/// limit: past it, what was read is sent first, then the rest as it streams).
pub(crate) async fn read_up_to<B: Body>(body: B, limit: usize) -> Read<B> {
    if body.size_hint().lower() > limit as u64 {
        return Read::Passed(ResponseBody::passed(body));
    }
    let mut body = Box::pin(body);
    let mut buffer = BytesMut::new();
    loop {
        let frame = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await;
        let frame = match frame {
            None => return Read::Whole(buffer.freeze()),
            Some(Ok(frame)) => frame,
            Some(Err(error)) => {
                let rest = Rest::Failed(Some(error));
                return Read::Passed(ResponseBody::prefixed(buffer.freeze(), rest));
            }
        };
        match frame.into_data() {
            Ok(mut data) => {
                if buffer.len() + data.remaining() > limit {
                    buffer.extend_from_slice(&data.copy_to_bytes(data.remaining()));
                    let rest = Rest::Body(body);
                    return Read::Passed(ResponseBody::prefixed(buffer.freeze(), rest));
                }
                while data.has_remaining() {
                    let chunk = data.chunk();
                    let len = chunk.len();
                    buffer.extend_from_slice(chunk);
                    data.advance(len);
                }
            }
            Err(frame) => {
                // Trailers: stored responses have none, so this one is passed on.
                let rest = Rest::Trailers(frame.into_trailers().ok());
                return Read::Passed(ResponseBody::prefixed(buffer.freeze(), rest));
            }
        }
    }
}
