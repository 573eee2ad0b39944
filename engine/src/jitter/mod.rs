//! The jitter buffer: frames ordered by media time ahead of the playout,
//! with late and duplicate detection and the final account of each packet.

pub mod buffer;
pub mod sequence;

pub use buffer::{FrameBuffer, GeometryError, Placed};
pub use sequence::{Arrival, SequenceTracker};
