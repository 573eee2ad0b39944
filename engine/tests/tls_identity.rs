//! The receiver's persistent identity on disk: stable, private, and never
//! silently replaced.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use isochron_engine::net::tls::{Identity, TlsError};

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn created_once_then_loaded_with_the_same_fingerprint() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("config/identity");
    let first = Identity::load_or_create(&dir).unwrap();
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("key.pem")), 0o600);
    let cert = fs::read(dir.join("cert.pem")).unwrap();

    let again = Identity::load_or_create(&dir).unwrap();
    assert_eq!(again.fingerprint(), first.fingerprint());
    assert_eq!(fs::read(dir.join("cert.pem")).unwrap(), cert);

    let from_files = Identity::from_pem_files(&dir.join("cert.pem"), &dir.join("key.pem")).unwrap();
    assert_eq!(from_files.fingerprint(), first.fingerprint());
}

#[test]
fn an_existing_empty_directory_is_used() {
    let tmp = tempfile::tempdir().unwrap();
    let identity = Identity::load_or_create(tmp.path()).unwrap();
    assert_eq!(mode(&tmp.path().join("key.pem")), 0o600);
    assert_eq!(
        Identity::load_or_create(tmp.path()).unwrap().fingerprint(),
        identity.fingerprint()
    );
}

/// Loading must fail naming `file`, and leave both files as they were.
fn assert_refused(dir: &Path, file: &str, what: &str) -> TlsError {
    let before: Vec<_> = ["cert.pem", "key.pem"]
        .map(|f| fs::read(dir.join(f)).ok())
        .into();
    let err = Identity::load_or_create(dir).unwrap_err();
    let message = err.to_string();
    assert!(message.contains(file), "{message}");
    assert!(message.contains(what), "{message}");
    let after: Vec<_> = ["cert.pem", "key.pem"]
        .map(|f| fs::read(dir.join(f)).ok())
        .into();
    assert_eq!(before, after, "the identity was modified");
    err
}

#[test]
fn a_corrupt_key_is_an_error_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    Identity::load_or_create(tmp.path()).unwrap();
    let key = tmp.path().join("key.pem");

    fs::write(&key, "garbage").unwrap();
    let err = assert_refused(tmp.path(), "key.pem", "no PEM private key");
    assert!(matches!(err, TlsError::NoKey { .. }));

    fs::write(&key, "-----BEGIN PRIVATE KEY-----\nAAAA\n").unwrap();
    let err = assert_refused(tmp.path(), "key.pem", "not a valid PEM file");
    assert!(matches!(err, TlsError::Pem { .. }));

    fs::write(
        &key,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let err = assert_refused(tmp.path(), "key.pem", "unusable private key");
    assert!(matches!(err, TlsError::BadKey { .. }));
}

#[test]
fn a_corrupt_certificate_is_an_error_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    Identity::load_or_create(tmp.path()).unwrap();
    let cert = tmp.path().join("cert.pem");

    fs::write(&cert, "").unwrap();
    assert_refused(tmp.path(), "cert.pem", "no PEM CERTIFICATE");

    fs::write(
        &cert,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    assert_refused(tmp.path(), "cert.pem", "unusable certificate");
}

#[test]
fn a_key_from_another_identity_is_a_mismatch() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    Identity::load_or_create(&a).unwrap();
    Identity::load_or_create(&b).unwrap();
    fs::copy(b.join("key.pem"), a.join("key.pem")).unwrap();
    let err = assert_refused(&a, "key.pem", "does not match the certificate");
    assert!(err.to_string().contains("cert.pem"), "{err}");
}

#[test]
fn a_key_readable_by_others_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    Identity::load_or_create(tmp.path()).unwrap();
    let key = tmp.path().join("key.pem");
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
    let err = assert_refused(tmp.path(), "key.pem", "chmod 600");
    assert!(err.to_string().contains("644"), "{err}");
}

#[test]
fn half_an_identity_is_not_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    Identity::load_or_create(tmp.path()).unwrap();
    fs::remove_file(tmp.path().join("key.pem")).unwrap();
    let err = assert_refused(tmp.path(), "key.pem", "refusing to create a new identity");
    assert!(matches!(err, TlsError::IncompleteIdentity { .. }));
    assert!(!tmp.path().join("key.pem").exists());
}

#[test]
fn missing_pem_files_name_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let err =
        Identity::from_pem_files(&tmp.path().join("c.pem"), &tmp.path().join("k.pem")).unwrap_err();
    assert!(err.to_string().contains("cannot read"), "{err}");
    assert!(err.to_string().contains("c.pem"), "{err}");
}
