//! The timer a [`GetFuture`](crate::backend::GetFuture) may carry: it times a read in flight
//! and runs it in its span, then hands the time to whoever started it. A leaf module (it
//! knows nothing of backends), so the backend module can hold one without importing the
//! latency recorder that starts it.

#[cfg(feature = "metrics")]
pub(crate) use timed::{Records, Timer};

#[cfg(feature = "metrics")]
mod timed {
    use std::fmt;
    use std::time::Instant;

    use tracing::Span;

    /// What a finished read's time goes to (a cache's latency histograms).
    pub(crate) trait Records: Sync {
        /// A read started at `started` ended, successfully when `ok`.
        fn read_ended(&self, started: Instant, ok: bool);
    }

    /// The timing of a read in flight (empty: not timed).
    #[derive(Default)]
    pub(crate) struct Timer<'a>(Option<Running<'a>>);

    struct Running<'a> {
        to: &'a dyn Records,
        started: Instant,
        span: Span,
    }

    impl fmt::Debug for Timer<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("Timer").finish_non_exhaustive()
        }
    }

    impl<'a> Timer<'a> {
        /// Starts timing a read, in `span`, for `to`.
        pub(crate) fn start(to: &'a dyn Records, span: Span) -> Self {
            Self(Some(Running {
                to,
                started: Instant::now(),
                span,
            }))
        }

        /// Enters the read's span for one poll.
        #[inline]
        pub(crate) fn enter(&self) -> Option<tracing::span::Entered<'_>> {
            self.0.as_ref().map(|running| running.span.enter())
        }

        /// The read ended: hands its time over (once).
        #[inline]
        pub(crate) fn finish(&mut self, ok: bool) {
            if let Some(running) = self.0.take() {
                running.to.read_ended(running.started, ok);
            }
        }
    }
}

/// The timer a [`GetFuture`](crate::backend::GetFuture) may carry: empty without the feature.
#[cfg(not(feature = "metrics"))]
#[derive(Debug, Default)]
pub(crate) struct Timer<'a>(std::marker::PhantomData<&'a ()>);

#[cfg(not(feature = "metrics"))]
impl Timer<'_> {
    #[inline]
    pub(crate) fn enter(&self) -> Option<()> {
        None
    }

    #[inline]
    pub(crate) fn finish(&mut self, _ok: bool) {}
}
