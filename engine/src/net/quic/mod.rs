//! Driver 1, point to point: one sender, one receiver, over QUIC (quinn).
//!
//! The receiver is the QUIC server and serves many sessions at once; media
//! rides QUIC datagrams, control one bidirectional stream, both under TLS 1.3
//! with pinned identities. Everything media-specific is the sans-IO core's;
//! this module only moves its datagrams and control messages.

pub mod control_stream;
pub mod receiver;
pub mod send_network;
pub mod sender;
pub mod transport;

pub use receiver::{Receiver, ReceiverEvent, ReceiverOptions, SessionInfo};
pub use send_network::SendNetwork;
pub use sender::{Sender, SenderOptions, SenderReport};
