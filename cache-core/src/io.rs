//! [`Io`]: the future of one backend write made by [`Cache`](crate::Cache) and the call path
//! (reads go through the `read!` macro and [`Backend::get_inline`](crate::backend::Backend::get_inline)).
//!
//! An in-process backend answers at once, so its result is wrapped as is: no boxed future,
//! no allocation. A remote backend's call is its own (boxed, `async-trait`) future. Either
//! way the caller awaits an `Io` directly, without another `async fn` around the call: each
//! level of future nesting costs instructions on every call (about 150 per level on a Redis
//! hit, measured with callgrind).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::Result;

/// A backend call in flight, or its result.
pub(crate) enum Io<'a, T> {
    /// The result, taken by the first poll.
    Ready(Option<Result<T>>),
    /// A remote backend's call.
    Pending(Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>),
}

// A ready result is only ever moved out, never pinned, and a pending call is boxed.
impl<T> Unpin for Io<'_, T> {}

impl<T> Future for Io<'_, T> {
    type Output = Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        match self.get_mut() {
            Io::Ready(result) => Poll::Ready(result.take().expect("Io polled after completion")),
            Io::Pending(call) => call.as_mut().poll(cx),
        }
    }
}
