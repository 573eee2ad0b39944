//! What can go wrong setting up TLS, with the file and the fix in the message.

use std::io;
use std::path::PathBuf;

/// Setting up an identity or a TLS configuration failed.
///
/// Every variant about a file names it, so the message alone tells the user
/// which file to look at.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file or directory could not be read, created or written.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What we were doing ("read", "create", ...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's reason.
        source: io::Error,
    },
    /// A PEM file is malformed (bad base64, missing END line...).
    #[error("{} is not a valid PEM file: {source}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// The parser's reason.
        source: rustls::pki_types::pem::Error,
    },
    /// A certificate file holds no certificate.
    #[error("{} holds no PEM CERTIFICATE block", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// A key file holds no private key.
    #[error(
        "{} holds no PEM private key (expected PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY)",
        path.display()
    )]
    NoKey {
        /// The file.
        path: PathBuf,
    },
    /// A private key is corrupt or of a kind the ring provider cannot use.
    #[error("{} holds an unusable private key: {source}", path.display())]
    BadKey {
        /// The file.
        path: PathBuf,
        /// rustls' reason.
        source: rustls::Error,
    },
    /// The leaf certificate cannot be parsed.
    #[error("{} holds an unusable certificate: {source}", path.display())]
    BadCertificate {
        /// The file.
        path: PathBuf,
        /// rustls' reason.
        source: rustls::Error,
    },
    /// The key does not belong to the certificate.
    #[error(
        "the private key in {} does not match the certificate in {}",
        key.display(),
        cert.display()
    )]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// A private key file can be read by other users.
    #[error(
        "{} can be accessed by other users (mode {mode:03o}); run `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    KeyPermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Half an identity: one of cert.pem and key.pem is missing.
    ///
    /// We refuse to create a new one over it: that would silently change the
    /// fingerprint every sender has pinned.
    #[error(
        "{} is missing but {} exists; refusing to create a new identity over it \
         (move the directory away to start afresh, which changes the fingerprint)",
        missing.display(),
        present.display()
    )]
    IncompleteIdentity {
        /// The file that exists.
        present: PathBuf,
        /// The file that does not.
        missing: PathBuf,
    },
    /// rcgen could not make a self-signed certificate.
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// A CA file for [`Trust::Roots`](super::Trust::Roots) yields no usable CA.
    #[error("{} holds no usable CA certificate", path.display())]
    NoRoots {
        /// The CA file.
        path: PathBuf,
    },
    /// The WebPKI verifier could not be built from the CA file.
    #[error("cannot verify with the CAs in {}: {source}", path.display())]
    Verifier {
        /// The CA file.
        path: PathBuf,
        /// rustls' reason.
        source: rustls::server::VerifierBuilderError,
    },
    /// The name to check the receiver's certificate against is not a DNS name or IP address.
    #[error("{name:?} is not a valid server name (a DNS name or an IP address)")]
    InvalidServerName {
        /// The name given.
        name: String,
    },
    /// [`Trust::Pinned`](super::Trust::Pinned) with no fingerprint would trust nobody.
    #[error("no fingerprint to pin: give at least one sha256:<hex>")]
    NoPins,
    /// A line of an authorized-senders file is not `sha256:HEX [comment]`.
    #[error("{}: line {line}: {problem}", path.display())]
    AuthorizedLine {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        problem: String,
    },
    /// An authorized-senders file over the size limit.
    #[error(
        "{} is {bytes} bytes, over the {} limit for an authorized-senders file",
        path.display(),
        super::authorized::MAX_FILE_BYTES
    )]
    AuthorizedTooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        bytes: u64,
    },
    /// Other users may write an authorized-senders file: they could admit anyone.
    #[error(
        "{} can be written by other users (mode {mode:03o}), so it could admit anyone; \
         run `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    AuthorizedPermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// rustls refused the configuration (a bug on our side, not a user error).
    #[error("TLS configuration rejected by rustls: {0}")]
    Config(#[from] rustls::Error),
    /// The TLS configuration cannot carry QUIC (a bug on our side, not a user error).
    #[error("TLS configuration unusable for QUIC: {0}")]
    Quic(#[from] quinn::crypto::rustls::NoInitialCipherSuite),
}

impl TlsError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
