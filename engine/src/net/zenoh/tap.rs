//! A tap: a listener of a stream's sealed media datagrams exactly as a
//! router forwards them, without key, catalog or playout. It sees what any
//! router sees (ciphertext), so it needs no authorisation; the bench puts
//! one behind each router and matches the same datagram at both to measure
//! the delay one router hop adds.

use ::zenoh::Wait;

use super::config::{self, ZenohOptions};
use super::error::FanoutError;
use super::{keys, open_session};
use crate::wire::fanout::validate_stream_name;

/// A running tap; dropping it closes its zenoh session.
pub struct Tap {
    _subscriber: ::zenoh::pubsub::Subscriber<()>,
    session: ::zenoh::Session,
}

impl Tap {
    /// Attach to the first of `zenoh.routers` (as a listener does) and call
    /// `on` with every media datagram of `stream` that arrives, on a zenoh
    /// thread: `on` must be quick and must not block.
    pub fn start<F>(zenoh: &ZenohOptions, stream: &str, on: F) -> Result<Tap, FanoutError>
    where
        F: Fn(&[u8]) + Send + Sync + 'static,
    {
        validate_stream_name(stream).map_err(FanoutError::Name)?;
        let session = open_session(config::listener(zenoh)?, zenoh)?;
        let subscriber = session
            .declare_subscriber(keys::media(stream))
            .callback(move |s| on(&s.payload().to_bytes()))
            .wait()
            .map_err(|e| FanoutError::Zenoh(e.to_string()))?;
        Ok(Tap {
            _subscriber: subscriber,
            session,
        })
    }

    /// Close the session now.
    pub fn close(self) {
        let Tap {
            _subscriber,
            session,
        } = self;
        drop(_subscriber);
        let _ = session.close().wait();
    }
}
