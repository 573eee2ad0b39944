//! The transport: a thin tokio + quinn shell around the sans-IO core.
//!
//! - [`tls`]: identities, fingerprints, pinning (secure by default),
//! - [`relay`]: a UDP relay that impairs traffic with the simulation model.

pub mod relay;
pub mod tls;
