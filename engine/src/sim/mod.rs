//! The simulation kit: run the pipeline over an impaired network on a
//! virtual clock, deterministically from one seed.
//!
//! - [`impair`]: the loss / delay / jitter / reorder / duplicate / rate /
//!   outage model (also used by the `netem` relay),
//! - [`link`]: a simulated one-way link built on it,
//! - [`control`]: the control stream, ideal or modelled on QUIC's
//!   retransmission over the same impaired path,
//! - [`bound`]: the exact residual-loss limit of an ideal code,
//! - [`media`]: test media whose every byte is checkable,
//! - [`session`]: a whole session, sender to playout.

pub mod bound;
pub mod control;
pub mod impair;
pub mod link;
pub mod media;
pub mod session;

pub use control::ControlModel;
pub use impair::{Fate, ImpairStats, Impairer, Impairment, Loss, Outage};
pub use link::SimLink;
pub use media::{PatternCheck, PatternSource};
pub use session::{SimConfig, SimOutcome, run};
