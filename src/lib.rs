//! isochron: real-time media streaming over QUIC with Reed-Solomon FEC,
//! interleaving and isochronous playout.
//!
//! This umbrella crate is the one dependency an application adds. It
//! re-exports the engine (the sans-IO pipeline and its transport) and the
//! codecs (WAV, sensor CSV, wire sample encodings, concealment).

pub use isochron_codecs as codecs;
pub use isochron_engine as engine;
