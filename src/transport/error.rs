//! Why a host could not be reached or worked on over SSH. Every message
//! names the host; a hint says what to do.

use std::fmt;

/// The broad class of a transport failure: it decides the host's result
/// (`unreachable` for the first two, `error` otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// No TCP connection (refused, no route, DNS).
    Unreachable,
    /// A step took longer than its timeout (connect, handshake, exec).
    Timeout,
    /// The host key is not known, or differs from the one recorded.
    HostKey,
    /// No offered key was accepted.
    Authentication,
    /// `sudo -n` refused (a password or a tty is required).
    Become,
    /// Anything else SSH reported.
    Protocol,
}

impl FailureKind {
    pub fn is_unreachable(self) -> bool {
        matches!(self, FailureKind::Unreachable | FailureKind::Timeout)
    }
}

/// A failure on one host.
#[derive(Debug, Clone)]
pub struct TransportError {
    pub kind: FailureKind,
    /// The inventory name of the host (or hop) it concerns.
    pub host: String,
    pub message: String,
    pub hint: Option<String>,
}

impl TransportError {
    pub fn new(kind: FailureKind, host: &str, message: impl Into<String>) -> TransportError {
        TransportError {
            kind,
            host: host.to_string(),
            message: message.into(),
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> TransportError {
        self.hint = Some(hint.into());
        self
    }

    /// From an ssh2 error during `doing`; libssh2's timeout becomes
    /// [`FailureKind::Timeout`].
    pub fn ssh(host: &str, doing: &str, error: &ssh2::Error) -> TransportError {
        let timed_out = is_timeout(error);
        let kind = if timed_out {
            FailureKind::Timeout
        } else {
            FailureKind::Protocol
        };
        let message = if timed_out {
            format!("{doing}: timed out")
        } else {
            format!("{doing}: {}", error.message())
        };
        TransportError::new(kind, host, message)
    }
}

/// Whether libssh2 gave up waiting (the session's timeout), as opposed to
/// the server answering no.
pub(crate) fn is_timeout(error: &ssh2::Error) -> bool {
    matches!(
        error.code(),
        ssh2::ErrorCode::Session(libssh2_sys::LIBSSH2_ERROR_TIMEOUT)
    )
}

impl fmt::Display for TransportError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}: {}", self.host, self.message)
    }
}

impl std::error::Error for TransportError {}
