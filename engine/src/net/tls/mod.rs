//! TLS for the transport: secure by default, both ways, without needing a CA.
//!
//! Every user keeps one self-signed ECDSA P-256 [`Identity`]
//! ([`Identity::load_or_create`] in [`Identity::default_dir`]). The
//! receiver (QUIC server) presents it as its certificate and the sender
//! (QUIC client) pins its [`Fingerprint`] ([`Trust::Pinned`]); the sender
//! presents its own as a client certificate, and the receiver admits it only
//! if its [`Admission`] lists it (`recv --allow`, or the
//! [`AuthorizedSenders`] file `isochron trust` manages). Both ends verify
//! the other's TLS 1.3 handshake signature, so each holds the key of the
//! certificate it showed. A CA-signed receiver works too
//! ([`Identity::from_pem_files`], [`Trust::Roots`]). Both ends use TLS 1.3
//! only, the ring provider explicitly (never the process default, which an
//! application may have set to something else) and ALPN [`ALPN`].
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
//! let gate = Gate::new(Admission::file(AuthorizedSenders::default_path(), []));
//! // after the handshake: gate.check(&peer_fingerprint(&connection)?)
//! // Sender
//! let trust = Trust::Pinned(vec!["sha256:...".parse()?]);
//! let me = Identity::load_or_create(&Identity::default_dir())?;
//! let (client, seen) = client_config(&trust, &me, transport)?;
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

mod admission;
mod authorized;
mod client_auth;
mod config;
mod describe;
mod error;
mod fingerprint;
mod identity;
mod sign;
mod verify;

pub use admission::{Admission, Gate};
pub use authorized::{AuthorizedSender, AuthorizedSenders, BadLine};
pub use config::{Trust, client_config, peer_fingerprint, server_config, server_name};
pub use describe::describe_handshake_error;
pub use error::TlsError;
pub use fingerprint::{Fingerprint, ParseFingerprintError};
pub use identity::Identity;
pub use sign::{SignatureError, verify_signature};
pub use verify::PeerSeen;

/// The ALPN protocol both ends require: a peer that speaks something else
/// fails the handshake instead of misreading our streams.
pub const ALPN: &[u8] = b"isochron/1";

/// `$XDG_CONFIG_HOME/isochron`, or `~/.config/isochron`: where this user's
/// [`Identity`] and [`AuthorizedSenders`] live (`./.isochron` without a
/// home directory).
pub fn config_dir() -> std::path::PathBuf {
    use std::path::PathBuf;
    let set = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    match (set("XDG_CONFIG_HOME"), set("HOME")) {
        (Some(d), _) => PathBuf::from(d).join("isochron"),
        (None, Some(h)) => PathBuf::from(h).join(".config/isochron"),
        (None, None) => PathBuf::from(".isochron"),
    }
}

/// The ring provider, named explicitly so an application that installed
/// another process default does not change what we negotiate.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}
