//! Wrapping the session secret to one listener.
//!
//! The listener makes an ephemeral X25519 key for its request (and signs the
//! public half with its identity, so the publisher knows whom it serves and
//! no router can substitute its own). The publisher answers with its own
//! ephemeral public key and the secret sealed under a key both derive from
//! the X25519 agreement (HKDF-SHA256 over both public keys and the request's
//! context). Both private keys live for one exchange only, so a wrapped
//! secret recorded today cannot be opened with a key stolen tomorrow.

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use ring::agreement::{self, EphemeralPrivateKey, UnparsedPublicKey, X25519};
use ring::hkdf;
use thiserror::Error;

use super::derive::SessionSecret;

/// Why a key exchange failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum WrapError {
    /// A public key that is not a valid X25519 point.
    #[error("invalid X25519 public key")]
    PublicKey,
    /// The wrapped secret does not open: not for this request, or altered.
    #[error("the wrapped key does not open (not for this request, or altered)")]
    Open,
}

/// The listener's half of one exchange.
pub struct KeyRequestKey {
    private: EphemeralPrivateKey,
    public: [u8; 32],
}

impl KeyRequestKey {
    /// A fresh ephemeral key pair.
    pub fn new() -> Self {
        let rng = ring::rand::SystemRandom::new();
        let private = EphemeralPrivateKey::generate(&X25519, &rng)
            .expect("the operating system's random source works");
        let mut public = [0u8; 32];
        public.copy_from_slice(
            private
                .compute_public_key()
                .expect("an X25519 key has a public half")
                .as_ref(),
        );
        Self { private, public }
    }

    /// The public half, sent in the request.
    pub fn public(&self) -> [u8; 32] {
        self.public
    }
}

impl Default for KeyRequestKey {
    fn default() -> Self {
        Self::new()
    }
}

fn wrap_key(
    shared: &[u8],
    listener: &[u8; 32],
    publisher: &[u8; 32],
    context: &[u8],
) -> LessSafeKey {
    struct Len;
    impl hkdf::KeyType for Len {
        fn len(&self) -> usize {
            32
        }
    }
    let mut k = [0u8; 32];
    hkdf::Salt::new(hkdf::HKDF_SHA256, context)
        .extract(shared)
        .expand(&[b"isochron key wrap v1", listener, publisher], Len)
        .and_then(|okm| okm.fill(&mut k))
        .expect("32 bytes is a valid HKDF output length");
    LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &k).expect("32-byte key"))
}

/// Publisher: seal `secret` for the listener whose request carried
/// `listener_public`; `context` binds it to the stream and run. Returns the
/// publisher's ephemeral public key and the sealed secret.
pub fn wrap_secret(
    secret: &SessionSecret,
    listener_public: &[u8; 32],
    context: &[u8],
) -> Result<([u8; 32], Vec<u8>), WrapError> {
    let mine = KeyRequestKey::new();
    let publisher = mine.public;
    let peer = UnparsedPublicKey::new(&X25519, listener_public);
    let key = agreement::agree_ephemeral(mine.private, &peer, |shared| {
        wrap_key(shared, listener_public, &publisher, context)
    })
    .map_err(|_| WrapError::PublicKey)?;
    let mut sealed = secret.0.to_vec();
    // The wrap key is used for this one message: a fixed nonce is safe.
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key([0; 12]),
        Aad::from(context),
        &mut sealed,
    )
    .expect("sealing 32 bytes succeeds");
    Ok((publisher, sealed))
}

/// Listener: open what the publisher sealed for `request`.
pub fn unwrap_secret(
    request: KeyRequestKey,
    publisher_public: &[u8; 32],
    sealed: &[u8],
    context: &[u8],
) -> Result<SessionSecret, WrapError> {
    let listener = request.public;
    let peer = UnparsedPublicKey::new(&X25519, publisher_public);
    let key = agreement::agree_ephemeral(request.private, &peer, |shared| {
        wrap_key(shared, &listener, publisher_public, context)
    })
    .map_err(|_| WrapError::PublicKey)?;
    let mut buf = sealed.to_vec();
    let plain = key
        .open_in_place(
            Nonce::assume_unique_for_key([0; 12]),
            Aad::from(context),
            &mut buf,
        )
        .map_err(|_| WrapError::Open)?;
    let secret: [u8; 32] = plain.try_into().map_err(|_| WrapError::Open)?;
    Ok(SessionSecret(secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_requester_unwraps_in_its_context() {
        let secret = SessionSecret([9; 32]);
        let req = KeyRequestKey::new();
        let (p, sealed) = wrap_secret(&secret, &req.public(), b"ctx").unwrap();
        assert_eq!(unwrap_secret(req, &p, &sealed, b"ctx").unwrap(), secret);
        let req = KeyRequestKey::new();
        let (p, sealed) = wrap_secret(&secret, &req.public(), b"ctx").unwrap();
        assert_eq!(
            unwrap_secret(req, &p, &sealed, b"other"),
            Err(WrapError::Open)
        );
        let other = KeyRequestKey::new();
        assert_eq!(
            unwrap_secret(other, &p, &sealed, b"ctx"),
            Err(WrapError::Open)
        );
    }
}
