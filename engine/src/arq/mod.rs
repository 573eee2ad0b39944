//! Retransmission (ARQ) inside the latency budget, beside FEC.
//!
//! - [`planner`]: the receiver decides which missing packets to ask for
//!   again and when (NACKs, as datagrams: see [`crate::wire::nack`]),
//! - [`store`]: the sender keeps a latency's worth of source datagrams and
//!   answers NACKs, bounded whatever the receiver asks,
//! - [`model`]: the exact residual loss and redundancy of FEC plus
//!   retransmission under a loss model, which adaptive FEC chooses from and
//!   the bench compares with.

pub mod model;
pub mod planner;
pub mod store;

pub use planner::NackPlanner;
pub use store::RetransmitStore;
