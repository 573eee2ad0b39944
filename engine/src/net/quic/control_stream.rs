//! The control stream: one QUIC bidirectional stream of length-prefixed
//! control messages each way.

use std::time::Duration;

use quinn::{RecvStream, SendStream};

use crate::net::error::TransportError;
use crate::wire::control::{Control, ControlDecoder};

/// Reads control messages off a stream.
pub struct ControlReader {
    /// The QUIC stream read from.
    pub recv: RecvStream,
    dec: ControlDecoder,
    buf: Box<[u8]>,
    /// The peer finished its side of the stream.
    pub finished: bool,
}

impl ControlReader {
    /// Read control messages from `recv`.
    pub fn new(recv: RecvStream) -> Self {
        Self {
            recv,
            dec: ControlDecoder::new(),
            buf: vec![0; 16 * 1024].into_boxed_slice(),
            finished: false,
        }
    }

    /// A message already decoded, if any.
    pub fn pending(&mut self) -> Result<Option<Control>, TransportError> {
        Ok(self.dec.next_message()?)
    }

    /// Read more bytes (cancel-safe: no bytes are lost if dropped).
    /// Returns false once the peer has finished the stream.
    pub async fn fill(&mut self) -> Result<bool, TransportError> {
        match self.recv.read(&mut self.buf).await {
            Ok(Some(n)) => {
                self.dec.push(&self.buf[..n])?;
                Ok(true)
            }
            Ok(None) => {
                self.finished = true;
                Ok(false)
            }
            // The connection's own end says why (an idle timeout, a close),
            // whichever of the stream or the datagrams notices first.
            Err(quinn::ReadError::ConnectionLost(e)) => {
                Err(TransportError::ConnectionLost(connection_end(&e)))
            }
            Err(e) => Err(TransportError::ConnectionLost(e.to_string())),
        }
    }

    /// [`fill`](Self::fill) as a future that owns the reader and gives it
    /// back with the result: a session loop keeps one such future pinned
    /// across its turns (and `set`s the next in its place once it is ready)
    /// instead of making and dropping a read at every wake-up.
    pub async fn fill_owned(mut self) -> (Self, Result<bool, TransportError>) {
        let r = self.fill().await;
        (self, r)
    }

    /// The next message, waiting at most `timeout`; `None` if the stream
    /// ended first.
    pub async fn next(&mut self, timeout: Duration) -> Result<Option<Control>, TransportError> {
        let wait = async {
            loop {
                if let Some(m) = self.pending()? {
                    return Ok(Some(m));
                }
                if !self.fill().await? {
                    return self.pending();
                }
            }
        };
        match tokio::time::timeout(timeout, wait).await {
            Ok(r) => r,
            Err(_) => Err(TransportError::Protocol(format!(
                "no control message within {timeout:?}"
            ))),
        }
    }
}

/// How a connection ended, for people.
pub fn connection_end(e: &quinn::ConnectionError) -> String {
    match e {
        quinn::ConnectionError::TimedOut => "the peer went silent (idle timeout)".into(),
        quinn::ConnectionError::ApplicationClosed(c) => format!(
            "the peer closed the connection ({})",
            String::from_utf8_lossy(&c.reason)
        ),
        other => format!("connection lost: {other}"),
    }
}

/// Write one control message.
pub async fn send(stream: &mut SendStream, msg: &Control) -> Result<(), TransportError> {
    stream
        .write_all(&msg.to_frame())
        .await
        .map_err(|e| TransportError::ConnectionLost(e.to_string()))
}
