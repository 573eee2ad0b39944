//! Interleaving spreads a loss over time.
//!
//! - [`sample`]: the samples of `G` consecutive frames are dealt round-robin
//!   into `G` lanes (one unit each), so a lost lane becomes every `G`-th
//!   sample missing over `G` frames, which concealment interpolates.
//! - [`packet`]: the packets of `D` consecutive FEC blocks are sent column by
//!   column, so a burst of `D` losses costs each block one packet.

pub mod packet;
pub mod sample;
