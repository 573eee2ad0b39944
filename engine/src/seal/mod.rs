//! End-to-end protection of a fan-out stream: what routers carry but can
//! neither read nor forge.
//!
//! A publisher draws a fresh 32-byte session secret for every run (or
//! derives it from a passphrase and a fresh salt, [`derive`]); from it come
//! separate keys for media datagrams, the publisher's control messages and
//! each listener's reports. Every message is sealed with ChaCha20-Poly1305
//! ([`Sealer`]): the isochron header stays readable (routers and FEC need
//! nothing from it, but it is authenticated as associated data), the payload
//! is encrypted. The session secret reaches authorised listeners wrapped to
//! an ephemeral X25519 key each of them signs with its identity ([`wrap`]).
//!
//! Sans-IO like the rest of the core: plain structs over byte slices.

pub mod derive;
pub mod envelope;
pub mod wrap;

pub use derive::{SessionKeys, SessionSecret, key_check, passphrase_master};
pub use envelope::{ENVELOPE_OVERHEAD, OpenError, Opener, Sealer};
pub use wrap::{KeyRequestKey, WrapError, unwrap_secret, wrap_secret};

/// Fill `out` from the system's secure random source.
pub fn random_bytes(out: &mut [u8]) {
    use ring::rand::SecureRandom;
    // The system RNG only fails when the OS has none; nothing secure can
    // run then.
    ring::rand::SystemRandom::new()
        .fill(out)
        .expect("the operating system's random source works");
}

/// Compare two secrets in time independent of where they differ.
pub fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
