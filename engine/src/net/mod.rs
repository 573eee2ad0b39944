//! The drivers: thin shells that move the sans-IO core's datagrams and
//! control messages over a real network, on real clocks and threads.
//!
//! One core, two drivers:
//! - [`quic`]: point to point over QUIC (quinn): [`Sender`] -> [`Receiver`],
//! - `zenoh` (feature `fanout`): fan-out by name through Zenoh routers
//!   (publish / subscribe).
//!
//! What every driver shares:
//! - [`playout_start`], [`playout_pool`], [`sink`]: isochronous playout (a few
//!   threads for every session) and where media goes ([`pipe_sink`]: one
//!   substream to standard output),
//! - [`source`]: feeding a sender from application or reader threads,
//! - [`tls`]: identities and fingerprints (secure by default),
//! - `device` (feature `device`): sound cards in and out through cpal,
//! - [`clock`], [`socket`]: the host clock, UDP sockets with large buffers,
//! - [`priority`]: real-time scheduling for the threads that keep time,
//! - [`error`]: what a driver reports.
//!
//! And a tool: [`relay`], a UDP relay that impairs traffic with the
//! simulation model (`isochron netem`).

pub mod clock;
#[cfg(feature = "device")]
pub mod device;
pub mod error;
pub mod output_budget;
pub mod pipe_sink;
pub mod playout_pool;
pub mod playout_start;
pub mod priority;
pub mod quic;
pub mod relay;
pub mod sink;
pub mod socket;
pub mod source;
pub mod tls;
#[cfg(feature = "fanout")]
pub mod zenoh;

pub use error::TransportError;
pub use pipe_sink::{PipeOutput, PipeSink};
pub use quic::{
    Receiver, ReceiverEvent, ReceiverOptions, SendNetwork, Sender, SenderOptions, SenderReport,
    SessionInfo,
};
pub use sink::{
    FileSink, OutputBudget, OutputLimits, PullReceiver, PullSink, Pulled, ReceivedFrame,
    SessionEnd, Sink, pull_channel,
};
pub use tls::{Admission, Fingerprint, Identity, Trust};
