//! Reed-Solomon forward error correction over GF(2^8), via
//! reed-solomon-erasure.
//!
//! One FEC stream covers all substreams of a session, so sparse sensor
//! packets ride in the same blocks as audio and a block fills quickly.

pub mod adapt;
pub mod audience;
mod codec;
mod decoder;
mod encoder;
mod shards;

pub use adapt::FecAdapter;
pub use audience::{Audience, AudiencePolicy};
pub use codec::{CodecCache, FecError};
pub use decoder::FecDecoder;
pub use encoder::FecEncoder;

use crate::wire::packet::{HEADER_LEN, MAX_DATAGRAM};

/// Largest shard: a repair packet carries a whole shard after its header.
pub const SHARD_CAP: usize = MAX_DATAGRAM - HEADER_LEN;
