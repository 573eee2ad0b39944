//! TLS for the transport: secure by default, without needing a CA.
//!
//! The receiver (QUIC server) keeps a self-signed ECDSA P-256 [`Identity`]
//! and prints its [`Fingerprint`]; the sender (QUIC client) pins it
//! ([`Trust::Pinned`]) and still verifies the TLS 1.3 handshake signature.
//! A CA-signed pair works too ([`Identity::from_pem_files`],
//! [`Trust::Roots`]). Both ends use TLS 1.3 only, the ring provider
//! explicitly (never the process default, which an application may have set
//! to something else) and ALPN [`ALPN`].
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use isochron_engine::net::tls::*;
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let transport = Arc::new(quinn::TransportConfig::default());
//! // Receiver
//! let identity = Identity::load_or_create("identity".as_ref())?;
//! println!("fingerprint: {}", identity.fingerprint());
//! let server = server_config(&identity, transport.clone())?;
//! // Sender
//! let trust = Trust::Pinned(vec!["sha256:...".parse()?]);
//! let (client, seen) = client_config(&trust, transport)?;
//! let mut endpoint = quinn::Endpoint::client("0.0.0.0:0".parse()?)?;
//! endpoint.set_default_client_config(client);
//! match endpoint.connect("127.0.0.1:7000".parse()?, server_name(&trust))?.await {
//!     Ok(_connection) => {}
//!     Err(e) => eprintln!("{}", describe_handshake_error(&e, Some(&seen))),
//! }
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

use std::sync::Arc;

use rustls::crypto::CryptoProvider;

mod config;
mod describe;
mod error;
mod fingerprint;
mod identity;
mod sign;
mod verify;

pub use config::{Trust, client_config, server_config, server_name};
pub use describe::describe_handshake_error;
pub use error::TlsError;
pub use fingerprint::{Fingerprint, ParseFingerprintError};
pub use identity::Identity;
pub use sign::{SignatureError, verify_signature};
pub use verify::PeerSeen;

/// The ALPN protocol both ends require: a peer that speaks something else
/// fails the handshake instead of misreading our streams.
pub const ALPN: &[u8] = b"isochron/1";

/// The ring provider, named explicitly so an application that installed
/// another process default does not change what we negotiate.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}
