//! What the fan-out driver reports: each says what a user can do about it.

use std::time::Duration;

use crate::net::tls::Fingerprint;
use crate::sender::SenderError;

/// Why a listener was refused (the message says more).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusedReason {
    /// The catalog is signed by a publisher the listener does not pin.
    Pin,
    /// The catalog's signature does not verify, or the catalog is invalid.
    Catalog,
    /// The publisher does not give this listener the key.
    NotAuthorised,
    /// A passphrase is needed, or the one given is wrong.
    Passphrase,
    /// The listener's latency is below the stream's floor.
    Latency,
}

/// Why a publisher or subscriber could not start or go on.
#[derive(Debug, thiserror::Error)]
pub enum FanoutError {
    /// An invalid stream name (the reason says which rule).
    #[error("stream name: {0}")]
    Name(String),
    /// The zenoh configuration could not be built or the session opened.
    #[error("zenoh: {0}")]
    Zenoh(String),
    /// No router answered.
    #[error(
        "no zenoh router reachable at {routers} (start one with `isochron router`, or pass --router)"
    )]
    Unreachable {
        /// The routers tried.
        routers: String,
    },
    /// The stream is not on air.
    #[error(
        "no stream named '{stream}' answered within {waited:?}: {state} (`isochron streams` lists what is on air)"
    )]
    NotFound {
        /// The stream asked for.
        stream: String,
        /// How long we waited.
        waited: Duration,
        /// What was still missing (no publisher on air, or one whose
        /// catalog does not answer).
        state: String,
    },
    /// The listener was refused; nothing was written.
    #[error("refused ({reason:?}): {message}")]
    Refused {
        /// The category, for programs.
        reason: RefusedReason,
        /// What to do about it, for people.
        message: String,
    },
    /// The publisher's signing key failed.
    #[error("signing: {0}")]
    Sign(#[from] crate::net::tls::SignatureError),
    /// The stream's timing cannot work (latency against FEC window and
    /// frame hold).
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    /// The sender core refused its input or configuration.
    #[error("{0}")]
    Engine(#[from] SenderError),
    /// A substream index (given) beyond the catalog.
    #[error("substream index {0} is not in the catalog")]
    NoSuchSubstream(usize),
    /// The session is over; no more media is taken.
    #[error("the stream has already ended")]
    Ended,
    /// The sink could not be created.
    #[error("output: {0}")]
    Sink(String),
    /// Any other I/O error (thread spawn, reader).
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

impl FanoutError {
    pub(crate) fn refused(reason: RefusedReason, message: impl Into<String>) -> Self {
        FanoutError::Refused {
            reason,
            message: message.into(),
        }
    }

    pub(crate) fn pin(signed_by: Fingerprint, pins: &[Fingerprint]) -> Self {
        let pinned: Vec<String> = pins.iter().map(|p| p.to_string()).collect();
        Self::refused(
            RefusedReason::Pin,
            format!(
                "the stream is signed by {signed_by}, which is not pinned (pinned: {}); \
                 if you trust that publisher, subscribe with --pin {signed_by}",
                pinned.join(", ")
            ),
        )
    }
}

impl From<crate::net::zenoh::config::ConfigError> for FanoutError {
    fn from(e: crate::net::zenoh::config::ConfigError) -> Self {
        FanoutError::Zenoh(e.0)
    }
}
