//! isochron codecs: turn files and application buffers into substreams and
//! back, and decide what a listener hears when a packet is gone for good.
//!
//! Nothing here knows about the network. The engine treats media as
//! fixed-size samples described by a [`StreamFormat`]; this crate owns what
//! those bytes mean.

pub mod format;
pub mod mask;

pub use format::{Encoding, FormatError, Origin, Rate, StreamFormat};
pub use mask::SampleMask;
