//! The transport: a thin tokio + quinn shell around the sans-IO core.
//!
//! - [`sender`], [`receiver`]: the application API (sessions over QUIC),
//! - [`playout_thread`], [`sink`]: isochronous playout and where media goes,
//! - [`source`]: feeding a sender from application or reader threads,
//! - [`tls`]: identities, fingerprints, pinning (secure by default),
//! - [`transport`]: QUIC settings and media congestion control,
//! - [`clock`], [`socket`]: the host clock, UDP sockets with large buffers,
//! - [`relay`]: a UDP relay that impairs traffic with the simulation model.

pub mod clock;
pub mod control_stream;
pub mod error;
pub mod playout_thread;
pub mod receiver;
pub mod relay;
pub mod sender;
pub mod sink;
pub mod socket;
pub mod source;
pub mod tls;
pub mod transport;

pub use error::TransportError;
pub use receiver::{Receiver, ReceiverEvent, ReceiverOptions, SessionInfo};
pub use sender::{Sender, SenderOptions, SenderReport};
pub use sink::{FileSink, PullSink, Pulled, ReceivedFrame, SessionEnd, Sink, pull_channel};
pub use tls::{Fingerprint, Identity, Trust};
