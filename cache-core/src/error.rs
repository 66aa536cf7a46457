//! The one error type of the crate.

use std::fmt;

/// A `Result` whose error defaults to [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, without the details.
///
/// New kinds may be added in minor releases, so match with a wildcard arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The configuration (a builder value or an environment variable) is invalid.
    Config,
    /// The backend could not be reached, or its connection broke.
    Connection,
    /// The backend did not answer within its time-out.
    Timeout,
    /// The backend refused the credentials (a wrong password or user name, or none given
    /// where one is required). Not an outage: retrying with the same settings fails again.
    Authentication,
    /// The backend accepted the credentials but denied this user a command or key (Redis
    /// `NOPERM`: an ACL rule). Not an outage either.
    Permission,
    /// The backend answered with another error (a read-only replica, an out-of-range
    /// database, an unexpected reply, ...).
    Backend,
    /// A value could not be encoded for storage.
    Encode,
    /// Stored bytes could not be decoded as the requested type.
    Decode,
    /// The operation would reach outside the cache's namespace, or is not supported here.
    Refused,
    /// A process-wide default cache is already installed.
    AlreadyInstalled,
}

/// The error returned by the [`Cache`](crate::Cache) API and by backends.
///
/// Annotated functions never return it: for them every error is a cache miss.
///
/// Its message says what failed at this layer; the underlying cause, when there is one, is
/// [`source()`](std::error::Error::source) and is not repeated in the message. `{error}`
/// prints the message alone, `{error:#}` the whole chain, `what: why: root cause` (each
/// distinct text once), which is what logs and `main`'s error report want.
///
/// ```
/// use cache_core::{Error, ErrorKind};
///
/// let err = Error::config("CACHE_DEFAULT_TIMEOUT", "expected a whole number of seconds, got \"soon\"");
/// assert!(err.is_config());
/// assert_eq!(err.kind(), ErrorKind::Config);
/// assert!(err.to_string().contains("CACHE_DEFAULT_TIMEOUT"));
///
/// let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
/// let err = Error::new(ErrorKind::Connection, "cannot reach the backend").with_source(io);
/// assert_eq!(err.to_string(), "cannot reach the backend");
/// assert_eq!(format!("{err:#}"), "cannot reach the backend: connection refused");
/// ```
pub struct Error {
    /// Boxed, so `Result`s stay small on the hit path, where they move between futures.
    inner: Box<Inner>,
}

struct Inner {
    kind: ErrorKind,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    /// An error of `kind` with a message (which must never contain a secret) saying what
    /// failed; attach the cause with [`with_source`](Self::with_source) rather than
    /// formatting it into the message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            inner: Box::new(Inner {
                kind,
                message: message.into(),
                source: None,
            }),
        }
    }

    /// A configuration error naming the offending `field` (a builder setting or a variable).
    pub fn config(field: &str, problem: impl fmt::Display) -> Self {
        Self::new(ErrorKind::Config, format!("invalid {field}: {problem}"))
    }

    /// Attaches the underlying cause, reported by [`std::error::Error::source`].
    #[must_use]
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.inner.source = Some(Box::new(source));
        self
    }

    /// What kind of error this is.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// True for an invalid configuration.
    pub fn is_config(&self) -> bool {
        self.inner.kind == ErrorKind::Config
    }

    /// True when the backend could not be reached.
    pub fn is_connection(&self) -> bool {
        self.inner.kind == ErrorKind::Connection
    }

    /// True when the backend refused the credentials.
    pub fn is_authentication(&self) -> bool {
        self.inner.kind == ErrorKind::Authentication
    }

    /// True when the backend denied this user a command or key (an ACL rule).
    pub fn is_permission(&self) -> bool {
        self.inner.kind == ErrorKind::Permission
    }

    /// True when the backend did not answer in time.
    pub fn is_timeout(&self) -> bool {
        self.inner.kind == ErrorKind::Timeout
    }

    /// True when stored bytes could not be decoded.
    pub fn is_decode(&self) -> bool {
        self.inner.kind == ErrorKind::Decode
    }

    /// True when the operation was refused (for example `clear()` without a namespace).
    pub fn is_refused(&self) -> bool {
        self.inner.kind == ErrorKind::Refused
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.inner.kind)
            .field("message", &self.inner.message)
            .field("source", &self.inner.source)
            .finish()
    }
}

impl fmt::Display for Error {
    /// The message; with `{:#}`, followed by each cause in the `source()` chain whose text
    /// differs from the one before it (some errors, such as `redis`'s, wrap an inner error
    /// and print it unchanged).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.inner.message)?;
        if f.alternate() {
            let mut shown = self.inner.message.clone();
            let mut next = std::error::Error::source(self);
            while let Some(cause) = next {
                let text = cause.to_string();
                if text != shown {
                    write!(f, ": {text}")?;
                    shown = text;
                }
                next = cause.source();
            }
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner.source.as_deref().map(|e| e as _)
    }
}
