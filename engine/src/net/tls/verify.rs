//! The sender's certificate verifier: pinned fingerprints, WebPKI, or nothing,
//! always recording what the receiver presented so a failure can say so.

use std::error::Error as StdError;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, OtherError, SignatureScheme};

use super::{Fingerprint, Trust};

/// What the sender saw in its most recent handshake with a [`client_config`],
/// so a failure can say "the receiver presented sha256:X, you pinned sha256:Y".
///
/// Shared by every connection made with that config: with several handshakes
/// at once, it holds whichever verified last.
///
/// [`client_config`]: super::client_config
#[derive(Clone, Default, Debug)]
pub struct PeerSeen {
    seen: Arc<Mutex<Seen>>,
    /// The trust the config was built with, for the message.
    trust: Option<Arc<Trust>>,
}

#[derive(Default, Debug)]
struct Seen {
    fingerprint: Option<Fingerprint>,
    rejected: Option<Rejection>,
}

/// Why our verifier refused the receiver.
#[derive(Clone, Debug)]
pub(super) struct Rejection {
    /// True if the certificate was fine but the handshake signature was not.
    pub(super) signature: bool,
    pub(super) error: rustls::Error,
}

impl PeerSeen {
    pub(super) fn new(trust: &Trust) -> Self {
        Self {
            seen: Arc::default(),
            trust: Some(Arc::new(trust.clone())),
        }
    }

    /// The fingerprint of the leaf certificate the receiver presented, if a
    /// handshake got that far.
    pub fn get(&self) -> Option<Fingerprint> {
        self.lock().fingerprint
    }

    pub(super) fn rejected(&self) -> Option<Rejection> {
        self.lock().rejected.clone()
    }

    pub(super) fn trust(&self) -> Option<&Trust> {
        self.trust.as_deref()
    }

    fn record(&self, fingerprint: Fingerprint) {
        let mut seen = self.lock();
        seen.fingerprint = Some(fingerprint);
        seen.rejected = None;
    }

    fn reject(&self, signature: bool, error: &rustls::Error) {
        self.lock().rejected = Some(Rejection {
            signature,
            error: error.clone(),
        });
    }

    /// A panic elsewhere while holding the lock leaves plain data behind,
    /// still worth reporting.
    fn lock(&self) -> MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The receiver's leaf is not one of the pinned fingerprints. Travels inside
/// `CertificateError::Other`, which rustls prints with `Debug`, so that is
/// readable too: the text reaches the receiver as the close reason.
pub(super) struct PinMismatch {
    pub(super) presented: Fingerprint,
    pub(super) pinned: Vec<Fingerprint>,
}

impl fmt::Display for PinMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the receiver presented {}, pinned: ", self.presented)?;
        for (i, pin) in self.pinned.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}{pin}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for PinMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl StdError for PinMismatch {}

impl PinMismatch {
    /// The mismatch inside a rejection, if that is what it was.
    pub(super) fn find(error: &rustls::Error) -> Option<&PinMismatch> {
        match error {
            rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(e))) => {
                e.downcast_ref()
            }
            _ => None,
        }
    }
}

#[derive(Debug)]
pub(super) enum Check {
    /// Only these leaves, any name.
    Pinned(Vec<Fingerprint>),
    /// WebPKI chain and name verification.
    Roots(Arc<WebPkiServerVerifier>),
    /// Anything (loudly).
    Unverified,
}

/// Our one [`ServerCertVerifier`]: records the leaf's fingerprint before
/// deciding, then applies its [`Check`]. The TLS 1.3 handshake signature is
/// verified in every mode, so the peer at least holds the key of the
/// certificate it showed.
#[derive(Debug)]
pub(super) struct Verifier {
    pub(super) check: Check,
    pub(super) seen: PeerSeen,
    pub(super) algorithms: WebPkiSupportedAlgorithms,
}

impl Verifier {
    fn decide(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let presented = Fingerprint::of(end_entity);
        match &self.check {
            Check::Pinned(pins) if pins.contains(&presented) => Ok(ServerCertVerified::assertion()),
            Check::Pinned(pins) => Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                OtherError(Arc::new(PinMismatch {
                    presented,
                    pinned: pins.clone(),
                })),
            ))),
            Check::Roots(webpki) => webpki.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ),
            Check::Unverified => {
                tracing::warn!(
                    fingerprint = %presented,
                    "TLS verification is OFF: accepting the receiver's certificate unchecked; \
                     anyone on the path can read and alter this session"
                );
                Ok(ServerCertVerified::assertion())
            }
        }
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.seen.record(Fingerprint::of(end_entity));
        let verdict = self.decide(end_entity, intermediates, server_name, ocsp_response, now);
        if let Err(e) = &verdict {
            self.seen.reject(false, e);
        }
        verdict
    }

    /// QUIC is TLS 1.3 only; a TLS 1.2 signature means something is wrong.
    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls12NotOfferedOrEnabled,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let verdict = rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms);
        if let Err(e) = &verdict {
            self.seen.reject(true, e);
        }
        verdict
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
