//! isochron engine: the media pipeline as a sans-IO core.
//!
//! Every stage is a plain struct whose methods take the current [`Time`]:
//! no sockets, tasks, threads or clocks inside. The sender core
//! ([`SenderCore`]) runs source -> packetizer -> sample interleaver -> FEC
//! encoder -> packet interleaver -> pacer; the receiver core ([`ReceiverCore`])
//! runs validation -> FEC decoder -> jitter buffer (with sample
//! de-interleaving) -> playout. [`sim`] runs both over a simulated network
//! on a virtual clock, deterministically from one seed.

#![warn(missing_docs)]

pub mod arq;
pub mod build_profile;
pub mod catalog;
pub mod config;
pub mod fec;
pub mod files;
pub mod handshake;
pub mod ingress;
pub mod interleave;
pub mod jitter;
pub mod layout;
pub mod limits;
pub mod net;
pub mod pacer;
pub mod packetizer;
pub mod pipe;
pub mod playout;
pub mod queue;
pub mod receiver;
pub mod seal;
pub mod sender;
pub mod sim;
pub mod stats;
pub mod text;
pub mod time;
pub mod wire;

pub use catalog::{MediaKind, SubstreamDesc};
pub use config::{ConfigError, ReceiverConfig, SenderConfig};
pub use playout::PlayedFrame;
pub use receiver::ReceiverCore;
pub use sender::{FrameRead, FrameSource, MediaStart, SenderCore, SenderError};
pub use stats::{ReceiverStats, SenderStats};
pub use time::Time;
pub use wire::control::{Control, FecParams, Mode, Recovery};
