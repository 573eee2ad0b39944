//! An identity: a certificate chain and its private key, one per user, for every role.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::Path;

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;

use super::{Fingerprint, TlsError, provider};

/// Names in every generated certificate. "isochron" is what a pinning sender
/// connects to ([`super::server_name`]); "localhost" lets a WebPKI client reach
/// a local receiver too.
const NAMES: [&str; 2] = ["isochron", "localhost"];
const CERT_FILE: &str = "cert.pem";
const KEY_FILE: &str = "key.pem";

/// A certificate chain (leaf first) and the leaf's private key: what a
/// receiver presents as its server certificate and a sender as its client
/// certificate (one identity per user serves every role).
pub struct Identity {
    /// Never empty: every constructor puts the leaf first.
    pub(super) chain: Vec<CertificateDer<'static>>,
    pub(super) key: PrivateKeyDer<'static>,
}

impl Identity {
    /// Where this user's identity lives: `$XDG_CONFIG_HOME/isochron/identity`
    /// or `~/.config/isochron/identity`.
    pub fn default_dir() -> std::path::PathBuf {
        super::config_dir().join("identity")
    }

    /// This user's persistent self-signed identity, kept in `dir`.
    ///
    /// Created on first use (ECDSA P-256, names "isochron" and "localhost",
    /// `dir` made with mode 0700, `key.pem` 0600), loaded thereafter, so the
    /// fingerprint senders pin survives restarts. An existing identity that is
    /// incomplete, corrupt, mismatched or readable by other users is an error
    /// naming the file: it is never silently replaced, since a new identity
    /// means a new fingerprint.
    pub fn load_or_create(dir: &Path) -> Result<Identity, TlsError> {
        create_private_dir(dir)?;
        let cert = dir.join(CERT_FILE);
        let key = dir.join(KEY_FILE);
        let exists = |path: &Path| {
            path.try_exists()
                .map_err(|e| TlsError::io("inspect", path, e))
        };
        match (exists(&cert)?, exists(&key)?) {
            (true, true) => {
                check_private(&key)?;
                Identity::from_pem_files(&cert, &key)
            }
            (false, false) => create(&cert, &key),
            (true, false) => Err(TlsError::IncompleteIdentity {
                present: cert,
                missing: key,
            }),
            (false, true) => Err(TlsError::IncompleteIdentity {
                present: key,
                missing: cert,
            }),
        }
    }

    /// A certificate chain (leaf first) and its private key from PEM files,
    /// e.g. a CA-signed pair. The key may be PKCS#8, SEC1 or PKCS#1 (RSA, ECDSA
    /// or Ed25519) and must belong to the leaf.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Identity, TlsError> {
        let chain = read_certs(cert)?;
        let key_der = read_key(key)?;
        warn_if_world_readable(key);
        let identity = Identity {
            chain,
            key: key_der,
        };
        identity.check(cert, key)?;
        Ok(identity)
    }

    /// A throwaway self-signed identity (tests, demos): its fingerprint is new
    /// every time.
    pub fn ephemeral() -> Result<Identity, TlsError> {
        generate().map(|(identity, _, _)| identity)
    }

    /// The fingerprint of the leaf certificate: what senders pin and
    /// receivers authorize.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(self.chain.first().map_or(&[][..], |c| c.as_ref()))
    }

    /// Loads the key with the provider rustls will use and checks it belongs
    /// to the leaf, so a bad pair fails here, naming the files, rather than
    /// in the first handshake.
    fn check(&self, cert: &Path, key: &Path) -> Result<(), TlsError> {
        let signing_key = provider()
            .key_provider
            .load_private_key(self.key.clone_key())
            .map_err(|source| TlsError::BadKey {
                path: key.to_owned(),
                source,
            })?;
        match CertifiedKey::new(self.chain.clone(), signing_key).keys_match() {
            Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
                Ok(())
            }
            Err(rustls::Error::InconsistentKeys(_)) => Err(TlsError::KeyMismatch {
                cert: cert.to_owned(),
                key: key.to_owned(),
            }),
            Err(source) => Err(TlsError::BadCertificate {
                path: cert.to_owned(),
                source,
            }),
        }
    }
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Self {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

/// Shows the fingerprint, never the key.
impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("fingerprint", &self.fingerprint())
            .field("chain_len", &self.chain.len())
            .finish_non_exhaustive()
    }
}

/// A new self-signed ECDSA P-256 identity, with its PEM encodings.
fn generate() -> Result<(Identity, String, String), TlsError> {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::new(NAMES.map(String::from).to_vec())?;
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, "isochron");
    let cert = params.self_signed(&key)?;
    let identity = Identity {
        chain: vec![cert.der().clone()],
        key: PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
    };
    Ok((identity, cert.pem(), key.serialize_pem()))
}

/// Writes a new identity. `create_new` never overwrites: if another process
/// got there first, we fail rather than replace its key.
fn create(cert: &Path, key: &Path) -> Result<Identity, TlsError> {
    let (identity, cert_pem, key_pem) = generate()?;
    write_new(key, key_pem.as_bytes(), 0o600)?;
    if let Err(e) = write_new(cert, cert_pem.as_bytes(), 0o644) {
        // A key alone would block the next start; it was never used, drop it.
        let _ = fs::remove_file(key);
        return Err(e);
    }
    tracing::info!(
        dir = %cert.parent().unwrap_or(cert).display(),
        fingerprint = %identity.fingerprint(),
        "created a new TLS identity"
    );
    Ok(identity)
}

fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<(), TlsError> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options
        .open(path)
        .map_err(|e| TlsError::io("create", path, e))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|e| TlsError::io("write", path, e))
}

pub(super) fn create_private_dir(dir: &Path) -> Result<(), TlsError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|e| TlsError::io("create directory", dir, e))
}

/// A key we manage must not be accessible to anyone else (like ssh).
fn check_private(key: &Path) -> Result<(), TlsError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(key)
            .map_err(|e| TlsError::io("inspect", key, e))?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            return Err(TlsError::KeyPermissions {
                path: key.to_owned(),
                mode,
            });
        }
    }
    Ok(())
}

/// Keys the user brings may be group-readable on purpose (e.g. ssl-cert);
/// world-readable is worth a warning, not a refusal.
fn warn_if_world_readable(key: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = fs::metadata(key) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o004 != 0 {
                tracing::warn!(
                    key = %key.display(),
                    mode = format_args!("{mode:03o}"),
                    "private key file is readable by every user"
                );
            }
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    fs::read(path).map_err(|e| TlsError::io("read", path, e))
}

/// All certificates in a PEM file, in order; at least one.
pub(super) fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| pem_error(path, source))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read(path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
        pem::Error::NoItemsFound => TlsError::NoKey {
            path: path.to_owned(),
        },
        other => pem_error(path, other),
    })
}

fn pem_error(path: &Path, source: pem::Error) -> TlsError {
    match source {
        pem::Error::Io(e) => TlsError::io("read", path, e),
        source => TlsError::Pem {
            path: path.to_owned(),
            source,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    #[test]
    fn ephemeral_identities_differ_and_check_out() {
        let a = Identity::ephemeral().unwrap();
        let b = Identity::ephemeral().unwrap();
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_eq!(a.chain.len(), 1);
        a.check(Path::new("a"), Path::new("a")).unwrap();
        assert!(format!("{a:?}").contains(&a.fingerprint().to_string()));
    }

    #[test]
    fn a_key_from_another_identity_is_a_mismatch() {
        let a = Identity::ephemeral().unwrap();
        let b = Identity::ephemeral().unwrap();
        let mixed = Identity {
            chain: a.chain.clone(),
            key: b.key.clone_key(),
        };
        let err = mixed
            .check(Path::new("c.pem"), Path::new("k.pem"))
            .unwrap_err();
        assert!(matches!(err, TlsError::KeyMismatch { .. }), "{err}");
    }

    #[test]
    fn not_pem_at_all_has_no_items() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.pem");
        fs::write(&path, "hello").unwrap();
        assert!(matches!(
            read_certs(&path),
            Err(TlsError::NoCertificate { .. })
        ));
        assert!(matches!(read_key(&path), Err(TlsError::NoKey { .. })));
        let missing = dir.path().join("missing.pem");
        let err = read_certs(&missing).unwrap_err();
        assert!(err.to_string().contains("missing.pem"), "{err}");
        assert!(
            matches!(err, TlsError::Io { ref source, .. } if source.kind() == io::ErrorKind::NotFound)
        );
    }
}
