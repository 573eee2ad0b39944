//! Transport errors: each says what a user can do about it.

use std::net::SocketAddr;
use std::time::Duration;

use crate::sender::SenderError;
use crate::wire::control::{ControlError, RejectReason};

/// Why a sending or receiving session could not start or go on.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The UDP socket could not be bound (address in use, no permission...).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The system's error.
        source: std::io::Error,
    },
    /// The TLS identity or trust settings are unusable.
    #[error("TLS setup: {0}")]
    Tls(#[from] super::tls::TlsError),
    /// No QUIC handshake completed within the connect timeout.
    #[error(
        "no answer from {addr} within {timeout:?} (is a receiver listening there, and reachable?)"
    )]
    Unreachable {
        /// The receiver's address.
        addr: SocketAddr,
        /// How long the sender waited.
        timeout: Duration,
    },
    /// The peer answered but the TLS handshake failed (fingerprint mismatch,
    /// untrusted certificate, ALPN...).
    #[error("secure handshake with {addr} failed: {detail}")]
    Handshake {
        /// The receiver's address.
        addr: SocketAddr,
        /// What went wrong, for people.
        detail: String,
    },
    /// The receiver answered the hello with a reject.
    #[error("the receiver refused the stream ({reason:?}): {message}")]
    Rejected {
        /// The reject's category.
        reason: RejectReason,
        /// The receiver's explanation.
        message: String,
    },
    /// The receiver paused the stream and never resumed it within
    /// [`SenderConfig::max_pause`](crate::SenderConfig::max_pause).
    #[error(
        "the receiver paused the stream {seconds:.0} s ago and has not resumed it (max pause): giving up"
    )]
    Paused {
        /// How long it was paused.
        seconds: f64,
    },
    /// A control message could not be decoded.
    #[error("control protocol: {0}")]
    Control(#[from] ControlError),
    /// The peer broke the protocol (unexpected message, timeout, bad input).
    #[error("protocol: {0}")]
    Protocol(String),
    /// The connection closed or failed mid-session.
    #[error("connection lost: {0}")]
    ConnectionLost(String),
    /// The sender core refused its input or configuration.
    #[error("{0}")]
    Engine(#[from] SenderError),
    /// A substream index (given) beyond the catalog.
    #[error("substream index {0} is not in the catalog")]
    NoSuchSubstream(usize),
    /// The session is over; no more media is taken.
    #[error("the session has already ended")]
    Ended,
    /// Any other I/O error (thread spawn, socket, reader).
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// Live: media reached the sender too late to be played. The session
    /// goes on (the samples of the call that reports this were taken);
    /// what was late is concealed at the receiver.
    #[error(
        "{frames} frames were pushed too late to be played and {expired} datagrams expired before the network took them; push each frame before its media time plus the receiver's latency (the media clock started with the first push)"
    )]
    Late {
        /// Frames complete after their deadline since the last report.
        frames: u64,
        /// Datagrams dropped at their deadline since the last report.
        expired: u64,
    },
}
