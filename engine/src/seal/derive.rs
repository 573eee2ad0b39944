//! Keys: a session secret per publisher run, and the keys derived from it.
//!
//! Every key is HKDF-SHA256 of the session secret with a label naming its
//! one use, so no two uses share a key (and so a nonce space). A
//! passphrase is stretched with PBKDF2-HMAC-SHA256 first, since people
//! choose guessable ones; the per-run salt then makes each run's secret
//! fresh even when the passphrase is reused.

use std::fmt;
use std::num::NonZeroU32;

use ring::{hkdf, hmac, pbkdf2};

/// Iterations of PBKDF2 a publisher uses for a passphrase (OWASP's 2023
/// figure for HMAC-SHA256 is 600 000; this keeps a debug build's start-up
/// under a second while costing a guesser the same per try as the
/// listener).
pub const PASSPHRASE_ITERATIONS: u32 = 100_000;
/// A catalog asking for more iterations than this is refused (a hostile
/// catalog must not pin a listener's CPU).
pub const MAX_PASSPHRASE_ITERATIONS: u32 = 10_000_000;

struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

fn hkdf32(salt: &[u8], ikm: &[u8], label: &[&[u8]]) -> [u8; 32] {
    let mut out = [0u8; 32];
    hkdf::Salt::new(hkdf::HKDF_SHA256, salt)
        .extract(ikm)
        .expand(label, Len(32))
        .and_then(|okm| okm.fill(&mut out))
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    out
}

/// The 32-byte secret of one publisher run: what authorised listeners
/// receive, wrapped. Debug output never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionSecret(pub [u8; 32]);

impl fmt::Debug for SessionSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionSecret(..)")
    }
}

impl SessionSecret {
    /// A fresh random secret.
    pub fn random() -> Self {
        let mut s = [0u8; 32];
        super::random_bytes(&mut s);
        Self(s)
    }

    /// The secret of a passphrase-protected run: the stretched passphrase
    /// (`master`, from [`passphrase_master`]) with the run's `salt`.
    pub fn from_master(master: &[u8; 32], salt: &[u8; 16]) -> Self {
        Self(hkdf32(salt, master, &[b"isochron session v1"]))
    }

    /// The keys of each use.
    pub fn keys(&self) -> SessionKeys {
        SessionKeys {
            media: hkdf32(&[], &self.0, &[b"isochron media v1"]),
            control: hkdf32(&[], &self.0, &[b"isochron control v1"]),
            secret: self.clone(),
        }
    }
}

/// Keys derived from a [`SessionSecret`], one per use.
#[derive(Clone)]
pub struct SessionKeys {
    /// Media datagrams, publisher to listeners.
    pub media: [u8; 32],
    /// The publisher's control messages (end of stream).
    pub control: [u8; 32],
    secret: SessionSecret,
}

impl SessionKeys {
    /// The key a listener seals its reports with: its own, so listeners'
    /// counters never share a nonce space.
    pub fn report(&self, listener: &[u8; 16]) -> [u8; 32] {
        hkdf32(listener, &self.secret.0, &[b"isochron report v1"])
    }
}

impl fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionKeys(..)")
    }
}

/// Stretch a passphrase for stream `stream` (the name salts it, so one
/// guess table does not serve every stream).
pub fn passphrase_master(passphrase: &str, stream: &str, iterations: u32) -> [u8; 32] {
    let mut salt = b"isochron passphrase v1\0".to_vec();
    salt.extend_from_slice(stream.as_bytes());
    let mut out = [0u8; 32];
    let n =
        NonZeroU32::new(iterations.clamp(1, MAX_PASSPHRASE_ITERATIONS)).expect("clamped to 1..");
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        n,
        &salt,
        passphrase.as_bytes(),
        &mut out,
    );
    out
}

/// A check value the signed catalog carries, so a listener tells a wrong
/// passphrase (or a substituted key) from a broken network at once.
pub fn key_check(secret: &SessionSecret) -> [u8; 16] {
    let tag = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, &secret.0),
        b"isochron key check v1",
    );
    let mut out = [0u8; 16];
    out.copy_from_slice(&tag.as_ref()[..16]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uses_get_distinct_keys_and_passphrases_salt_per_stream_and_run() {
        let s = SessionSecret([1; 32]);
        let k = s.keys();
        assert_ne!(k.media, k.control);
        assert_ne!(k.report(&[0; 16]), k.report(&[1; 16]));
        let m = passphrase_master("correct horse", "studio/a", 1000);
        assert_ne!(m, passphrase_master("correct horse", "studio/b", 1000));
        assert_ne!(
            SessionSecret::from_master(&m, &[0; 16]),
            SessionSecret::from_master(&m, &[1; 16])
        );
        assert_eq!(key_check(&s), key_check(&SessionSecret([1; 32])));
        assert_ne!(key_check(&s), key_check(&SessionSecret([2; 32])));
        assert_eq!(format!("{s:?}"), "SessionSecret(..)");
    }
}
