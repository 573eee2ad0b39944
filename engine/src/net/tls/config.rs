//! quinn server and client configurations: TLS 1.3 only, ring, ALPN isochron/1.

use std::path::PathBuf;
use std::sync::Arc;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::RootCertStore;
use rustls::client::{Resumption, WebPkiServerVerifier};
use rustls::pki_types::ServerName;

use super::client_auth::AnySignedClient;
use super::identity::read_certs;
use super::verify::{Check, Verifier};
use super::{ALPN, Fingerprint, Identity, PeerSeen, TlsError, provider};

/// The name a pinning sender connects to; every generated identity carries it.
const PINNED_NAME: &str = "isochron";

/// How the sender decides to trust the receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// Accept only a leaf whose fingerprint is one of these; names are not
    /// checked (the pin is stronger), nor is the validity period (the pin is
    /// the trust anchor), but the TLS 1.3 handshake signature is still
    /// verified, so the receiver must hold the pinned certificate's key.
    Pinned(Vec<Fingerprint>),
    /// Normal WebPKI verification against the CA certificates in a PEM file,
    /// checking that the receiver's certificate is valid for `server_name`.
    Roots {
        /// PEM file with one or more CA certificates.
        ca_pem: PathBuf,
        /// The DNS name or IP address the certificate must name.
        server_name: String,
    },
    /// No verification at all: anyone on the path can impersonate the
    /// receiver. Only behind a loudly named CLI option; warns when used.
    DangerouslyUnverified,
}

/// The receiver's (server's) QUIC configuration presenting `identity`.
///
/// Every client must present a certificate and sign the handshake with its
/// key; which ones are admitted is decided after the handshake, from
/// [`peer_fingerprint`] (see [`Gate`](super::Gate)), so that a refused
/// sender can be told how to get admitted.
pub fn server_config(
    identity: &Identity,
    transport: Arc<quinn::TransportConfig>,
) -> Result<quinn::ServerConfig, TlsError> {
    let clients = AnySignedClient {
        algorithms: provider().signature_verification_algorithms,
    };
    let mut tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(Arc::new(clients))
        .with_single_cert(identity.chain.clone(), identity.key.clone_key())?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    // Our clients never resume (see client_config): tickets would be wasted.
    tls.send_tls13_tickets = 0;
    let quic = QuicServerConfig::try_from(tls)?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(quic));
    config.transport_config(transport);
    Ok(config)
}

/// The sender's (client's) QUIC configuration trusting per `trust` and
/// presenting `identity` as its client certificate, and the [`PeerSeen`]
/// its verifier fills in for [`describe_handshake_error`].
///
/// Session resumption is off, so every connection runs the full check
/// against the current pins, and [`PeerSeen`] always reflects it.
///
/// [`describe_handshake_error`]: super::describe_handshake_error
pub fn client_config(
    trust: &Trust,
    identity: &Identity,
    transport: Arc<quinn::TransportConfig>,
) -> Result<(quinn::ClientConfig, PeerSeen), TlsError> {
    let check = match trust {
        Trust::Pinned(pins) if pins.is_empty() => return Err(TlsError::NoPins),
        Trust::Pinned(pins) => Check::Pinned(pins.clone()),
        Trust::Roots {
            ca_pem,
            server_name,
        } => {
            ServerName::try_from(server_name.as_str()).map_err(|_| {
                TlsError::InvalidServerName {
                    name: server_name.clone(),
                }
            })?;
            Check::Roots(webpki_verifier(ca_pem)?)
        }
        Trust::DangerouslyUnverified => {
            tracing::warn!(
                "TLS verification is OFF (dangerously unverified): the receiver is not \
                 authenticated and anyone on the path can read and alter the session"
            );
            Check::Unverified
        }
    };
    let seen = PeerSeen::new(trust);
    let verifier = Verifier {
        check,
        seen: seen.clone(),
        algorithms: provider().signature_verification_algorithms,
    };
    let mut tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_auth_cert(identity.chain.clone(), identity.key.clone_key())?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    tls.resumption = Resumption::disabled();
    let quic = QuicClientConfig::try_from(tls)?;
    let mut config = quinn::ClientConfig::new(Arc::new(quic));
    config.transport_config(transport);
    Ok((config, seen))
}

/// The name to give `Endpoint::connect(addr, name)` under `trust`: the
/// configured name for [`Trust::Roots`], "isochron" otherwise (every
/// identity from [`Identity::load_or_create`] carries it).
pub fn server_name(trust: &Trust) -> &str {
    match trust {
        Trust::Roots { server_name, .. } => server_name,
        Trust::Pinned(_) | Trust::DangerouslyUnverified => PINNED_NAME,
    }
}

fn webpki_verifier(ca_pem: &std::path::Path) -> Result<Arc<WebPkiServerVerifier>, TlsError> {
    let mut roots = RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(read_certs(ca_pem)?);
    if ignored > 0 {
        tracing::warn!(
            file = %ca_pem.display(),
            ignored,
            "some CA certificates could not be parsed and are ignored"
        );
    }
    if added == 0 {
        return Err(TlsError::NoRoots {
            path: ca_pem.to_owned(),
        });
    }
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|source| TlsError::Verifier {
            path: ca_pem.to_owned(),
            source,
        })
}

/// The fingerprint of the leaf certificate the peer of `connection`
/// presented (and proved it holds the key of); `None` before the handshake
/// or if it presented none.
pub fn peer_fingerprint(connection: &quinn::Connection) -> Option<Fingerprint> {
    let certs = connection
        .peer_identity()?
        .downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>()
        .ok()?;
    certs.first().map(|c| Fingerprint::of(c))
}
