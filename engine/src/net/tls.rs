//! TLS identities and verification. (Placeholder with the agreed API; the
//! real module lands from the `tls` branch.)
#![allow(missing_docs, dead_code, unused_variables)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const ALPN: &[u8] = b"isochron/1";

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Fingerprint(pub [u8; 32]);

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sha256:")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Fingerprint {
    type Err = TlsError;
    fn from_str(s: &str) -> Result<Self, TlsError> {
        todo!()
    }
}

pub struct Identity;

impl Identity {
    pub fn load_or_create(dir: &Path) -> Result<Identity, TlsError> {
        todo!()
    }
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Identity, TlsError> {
        todo!()
    }
    pub fn ephemeral() -> Result<Identity, TlsError> {
        todo!()
    }
    pub fn fingerprint(&self) -> Fingerprint {
        todo!()
    }
}

#[derive(Clone, Debug)]
pub enum Trust {
    Pinned(Vec<Fingerprint>),
    Roots {
        ca_pem: PathBuf,
        server_name: String,
    },
    DangerouslyUnverified,
}

#[derive(Clone, Default)]
pub struct PeerSeen;

impl PeerSeen {
    pub fn get(&self) -> Option<Fingerprint> {
        None
    }
}

#[derive(Debug, thiserror::Error)]
#[error("tls")]
pub struct TlsError;

pub fn server_config(
    identity: &Identity,
    transport: Arc<quinn::TransportConfig>,
) -> Result<quinn::ServerConfig, TlsError> {
    todo!()
}

pub fn client_config(
    trust: &Trust,
    transport: Arc<quinn::TransportConfig>,
) -> Result<(quinn::ClientConfig, PeerSeen), TlsError> {
    todo!()
}

pub fn server_name(trust: &Trust) -> &str {
    "isochron"
}

pub fn describe_handshake_error(err: &quinn::ConnectionError, seen: Option<&PeerSeen>) -> String {
    err.to_string()
}
