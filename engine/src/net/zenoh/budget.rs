//! The datagram budget: how large a put may be so that it crosses every
//! link of the fan-out path as one zenoh message in one UDP datagram.
//!
//! A zenoh batch on a `udp/` link is one UDP datagram of at most
//! [`LINK_BATCH`] bytes (our configuration; a stock router documented in
//! the README uses the same). Around a put's payload zenoh adds its frame
//! header (sequence number, QoS), the push header and the key, which a
//! router sends in full on a link where it has not declared a shorter
//! mapping (measured: routers send it in full on their links).
//! [`PUT_OVERHEAD`] was measured through two routers; a test records every
//! datagram on the routers' `udp/` link and asserts none is a zenoh
//! fragment and none exceeds [`LINK_BATCH`].

use super::config::LINK_BATCH;
use super::keys;
use crate::seal::ENVELOPE_OVERHEAD;
use crate::wire::packet::{MAX_DATAGRAM, MIN_DATAGRAM};

/// Zenoh's bytes around a put's payload on a `udp/` link, besides the key
/// itself: 14 to 15 measured (frame header and sequence number, push
/// header, QoS, key length, payload length), 26 more when a router
/// timestamps samples (a stock router's default), and margin for sequence
/// numbers that need more varint bytes.
pub const PUT_OVERHEAD: usize = 64;

/// The largest put (sealed datagram) for a stream named `stream`.
pub fn max_put(stream: &str) -> usize {
    LINK_BATCH as usize - PUT_OVERHEAD - keys::media(stream).len()
}

/// The largest isochron datagram (before sealing) for `stream`: what the
/// sender core plans packets for.
pub fn max_datagram(stream: &str) -> usize {
    (max_put(stream) - ENVELOPE_OVERHEAD).clamp(MIN_DATAGRAM, MAX_DATAGRAM)
}
