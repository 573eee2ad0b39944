//! Transport errors: each says what a user can do about it.

use std::net::SocketAddr;
use std::time::Duration;

use crate::sender::SenderError;
use crate::wire::control::{ControlError, RejectReason};

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("TLS setup: {0}")]
    Tls(#[from] super::tls::TlsError),
    #[error(
        "no answer from {addr} within {timeout:?} (is a receiver listening there, and reachable?)"
    )]
    Unreachable { addr: SocketAddr, timeout: Duration },
    #[error("secure handshake with {addr} failed: {detail}")]
    Handshake { addr: SocketAddr, detail: String },
    #[error("the receiver refused the stream ({reason:?}): {message}")]
    Rejected {
        reason: RejectReason,
        message: String,
    },
    #[error("control protocol: {0}")]
    Control(#[from] ControlError),
    #[error("protocol: {0}")]
    Protocol(String),
    #[error("connection lost: {0}")]
    ConnectionLost(String),
    #[error("{0}")]
    Engine(#[from] SenderError),
    #[error("substream index {0} is not in the catalog")]
    NoSuchSubstream(usize),
    #[error("the session has already ended")]
    Ended,
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}
