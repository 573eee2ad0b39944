//! Signing with an identity, outside TLS: a publisher signs its stream
//! catalog and key grants, a listener its key requests, so the other side
//! can check them against a pinned fingerprint.
//!
//! The identity's own key signs through the ring provider rustls uses (the
//! same schemes as in a TLS 1.3 handshake); verification checks the
//! signature against the certificate the message carries, whose
//! fingerprint the caller compares with its pin. Every message is signed
//! with a context label in front, so a signature made for one kind of
//! message cannot pass for another.

use rustls::SignatureScheme;
use rustls::pki_types::CertificateDer;

use super::{Identity, provider};

/// Signature schemes we sign with, most preferred first.
const SCHEMES: [SignatureScheme; 5] = [
    SignatureScheme::ECDSA_NISTP256_SHA256,
    SignatureScheme::ED25519,
    SignatureScheme::ECDSA_NISTP384_SHA384,
    SignatureScheme::RSA_PSS_SHA256,
    SignatureScheme::RSA_PKCS1_SHA256,
];

/// Why a signature was not made or does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The identity's key cannot sign with any scheme we use.
    #[error("the identity's key cannot sign ({0})")]
    Key(String),
    /// The certificate cannot be parsed.
    #[error("the signer's certificate is unusable: {0}")]
    Certificate(String),
    /// A scheme we do not verify.
    #[error("unsupported signature scheme {0:#06x}")]
    Scheme(u16),
    /// The signature does not match the message and certificate.
    #[error("the signature does not verify")]
    Invalid,
}

fn framed(context: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(context.len() + 1 + msg.len());
    v.extend_from_slice(context);
    v.push(0);
    v.extend_from_slice(msg);
    v
}

impl Identity {
    /// The leaf certificate (DER): what a signed message carries so the
    /// other side can verify it and compare its [`fingerprint`](Identity::fingerprint).
    pub fn certificate_der(&self) -> &[u8] {
        self.chain.first().map_or(&[][..], |c| c.as_ref())
    }

    /// Sign `msg` under `context` (a label naming the kind of message).
    /// Returns the scheme (its TLS code point) and the signature.
    pub fn sign(&self, context: &[u8], msg: &[u8]) -> Result<(u16, Vec<u8>), SignatureError> {
        let key = provider()
            .key_provider
            .load_private_key(self.key.clone_key())
            .map_err(|e| SignatureError::Key(e.to_string()))?;
        let signer = key
            .choose_scheme(&SCHEMES)
            .ok_or_else(|| SignatureError::Key("no supported scheme".into()))?;
        let sig = signer
            .sign(&framed(context, msg))
            .map_err(|e| SignatureError::Key(e.to_string()))?;
        Ok((u16::from(signer.scheme()), sig))
    }
}

/// Check that `signature` (made by [`Identity::sign`] with `scheme` under
/// `context`) signs `msg` with the key of `cert_der`.
pub fn verify_signature(
    cert_der: &[u8],
    context: &[u8],
    msg: &[u8],
    scheme: u16,
    signature: &[u8],
) -> Result<(), SignatureError> {
    let scheme = SignatureScheme::from(scheme);
    if !SCHEMES.contains(&scheme) {
        return Err(SignatureError::Scheme(u16::from(scheme)));
    }
    let algs = provider().signature_verification_algorithms;
    let alg = algs
        .mapping
        .iter()
        .find(|(s, _)| *s == scheme)
        .and_then(|(_, a)| a.first())
        .ok_or(SignatureError::Scheme(u16::from(scheme)))?;
    let cert = CertificateDer::from(cert_der);
    let ee = webpki::EndEntityCert::try_from(&cert)
        .map_err(|e| SignatureError::Certificate(e.to_string()))?;
    ee.verify_signature(*alg, &framed(context, msg), signature)
        .map_err(|_| SignatureError::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_bind_key_context_and_message() {
        let a = Identity::ephemeral().unwrap();
        let b = Identity::ephemeral().unwrap();
        let (scheme, sig) = a.sign(b"ctx", b"hello").unwrap();
        let cert = a.certificate_der();
        verify_signature(cert, b"ctx", b"hello", scheme, &sig).unwrap();
        let bad = |r: Result<(), SignatureError>| assert_eq!(r, Err(SignatureError::Invalid));
        bad(verify_signature(cert, b"ctx", b"hellO", scheme, &sig));
        bad(verify_signature(cert, b"other", b"hello", scheme, &sig));
        bad(verify_signature(
            b.certificate_der(),
            b"ctx",
            b"hello",
            scheme,
            &sig,
        ));
        assert!(verify_signature(b"garbage", b"ctx", b"hello", scheme, &sig).is_err());
        assert!(matches!(
            verify_signature(cert, b"ctx", b"hello", 0x9999, &sig),
            Err(SignatureError::Scheme(_))
        ));
    }
}
