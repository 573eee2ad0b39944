//! The sealed envelope: one AEAD message per datagram or control message.
//!
//! ```text
//! 0   u64   counter   big-endian; the nonce is 4 zero bytes + this counter
//! 8   ...   clear     the first `clear` bytes of the message (the isochron
//!                     header for media): readable, authenticated
//! ..  ...   sealed    the rest of the message, encrypted
//! end 16    tag       Poly1305
//! ```
//!
//! Associated data is the counter and the clear part, so neither can be
//! changed. Why the nonce never repeats: every key is used by exactly one
//! [`Sealer`] (keys are derived per session from a fresh random salt, and
//! per purpose and per listener), and a sealer's counter only goes up, one
//! per message, and refuses to wrap. A receiver keeps a window of counters
//! it has opened, so a replayed message is refused too.

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use thiserror::Error;

/// Counter plus tag: what sealing adds to a message.
pub const ENVELOPE_OVERHEAD: usize = 8 + TAG_LEN;
const TAG_LEN: usize = 16;
/// Counters further behind the newest than this are refused as stale.
const REPLAY_WINDOW: u64 = 4096;

fn nonce(counter: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&counter.to_be_bytes());
    Nonce::assume_unique_for_key(n)
}

fn key(secret: &[u8; 32]) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, secret).expect("a 32-byte key"))
}

/// Seals messages under one key; the only user of that key.
pub struct Sealer {
    key: LessSafeKey,
    next: u64,
}

impl Sealer {
    /// A sealer for a key nothing else seals with.
    pub fn new(secret: &[u8; 32]) -> Self {
        Self {
            key: key(secret),
            next: 0,
        }
    }

    /// Messages sealed so far.
    pub fn count(&self) -> u64 {
        self.next
    }

    /// Seal `msg` into `out` (cleared first): its first `clear` bytes stay
    /// readable. `clear` beyond the message's length means all of it.
    pub fn seal(&mut self, msg: &[u8], clear: usize, out: &mut Vec<u8>) {
        let counter = self.next;
        // 2^64 messages never happen; refusing beats reusing a nonce.
        self.next = counter.checked_add(1).expect("nonce counter exhausted");
        let clear = clear.min(msg.len());
        out.clear();
        out.reserve(msg.len() + ENVELOPE_OVERHEAD);
        out.extend_from_slice(&counter.to_be_bytes());
        out.extend_from_slice(msg);
        let (aad, body) = out.split_at_mut(8 + clear);
        let tag = self
            .key
            .seal_in_place_separate_tag(nonce(counter), Aad::from(&*aad), body)
            .expect("ChaCha20-Poly1305 seals any length we send");
        out.extend_from_slice(tag.as_ref());
    }
}

/// Why a sealed message was refused. Each is a counted drop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum OpenError {
    /// Shorter than counter, clear part and tag.
    #[error("shorter than a sealed envelope")]
    Short,
    /// The tag does not verify: another key, or altered bytes.
    #[error("authentication failed (wrong key, or the message was altered)")]
    Auth,
    /// A counter already opened, or too far behind the newest.
    #[error("replayed or stale message")]
    Replay,
}

/// Opens messages sealed under one key, refusing replays.
pub struct Opener {
    key: LessSafeKey,
    newest: Option<u64>,
    /// Bit `i`: counter `newest - i` was opened.
    seen: [u64; (REPLAY_WINDOW / 64) as usize],
}

impl Opener {
    /// An opener for the key a [`Sealer`] seals with.
    pub fn new(secret: &[u8; 32]) -> Self {
        Self {
            key: key(secret),
            newest: None,
            seen: [0; (REPLAY_WINDOW / 64) as usize],
        }
    }

    fn check_fresh(&self, c: u64) -> Result<(), OpenError> {
        match self.newest {
            Some(n) if c <= n => {
                let back = n - c;
                if back >= REPLAY_WINDOW || self.bit(back) {
                    Err(OpenError::Replay)
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }

    fn bit(&self, back: u64) -> bool {
        self.seen[(back / 64) as usize] >> (back % 64) & 1 == 1
    }

    fn mark(&mut self, c: u64) {
        match self.newest {
            Some(n) if c <= n => {
                let back = n - c;
                self.seen[(back / 64) as usize] |= 1 << (back % 64);
            }
            _ => {
                let shift = self.newest.map_or(REPLAY_WINDOW, |n| c - n);
                shift_window(&mut self.seen, shift);
                self.seen[0] |= 1;
                self.newest = Some(c);
            }
        }
    }

    /// Open `sealed` in place; `clear` as it was sealed. Returns the message
    /// (clear part then plaintext), a slice of `sealed`. Refused messages
    /// leave the replay window unchanged.
    pub fn open<'a>(&mut self, sealed: &'a mut [u8], clear: usize) -> Result<&'a [u8], OpenError> {
        if sealed.len() < ENVELOPE_OVERHEAD {
            return Err(OpenError::Short);
        }
        let counter = u64::from_be_bytes(sealed[..8].try_into().expect("8 bytes"));
        self.check_fresh(counter)?;
        let clear = clear.min(sealed.len() - ENVELOPE_OVERHEAD);
        let (aad, body) = sealed.split_at_mut(8 + clear);
        let plain_len = self
            .key
            .open_in_place(nonce(counter), Aad::from(&*aad), body)
            .map_err(|_| OpenError::Auth)?
            .len();
        self.mark(counter);
        Ok(&sealed[8..8 + clear + plain_len])
    }
}

/// Age every bit by `shift` positions (bit 0 is the newest counter).
fn shift_window(seen: &mut [u64], shift: u64) {
    let words = seen.len() as u64;
    if shift >= words * 64 {
        seen.fill(0);
        return;
    }
    let (w, b) = ((shift / 64) as usize, (shift % 64) as u32);
    for i in (0..seen.len()).rev() {
        let lo = i.checked_sub(w).map_or(0, |j| seen[j]);
        let carry = if b == 0 {
            0
        } else {
            i.checked_sub(w + 1).map_or(0, |j| seen[j] >> (64 - b))
        };
        seen[i] = if b == 0 { lo } else { lo << b | carry };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: [u8; 32] = [7; 32];

    #[test]
    fn round_trip_keeps_the_clear_part_readable() {
        let mut s = Sealer::new(&K);
        let mut out = Vec::new();
        s.seal(b"headerPAYLOAD", 6, &mut out);
        assert_eq!(out.len(), 13 + ENVELOPE_OVERHEAD);
        assert_eq!(&out[8..14], b"header", "clear part is in the clear");
        assert!(!out.windows(7).any(|w| w == b"PAYLOAD"), "payload is not");
        let mut o = Opener::new(&K);
        assert_eq!(o.open(&mut out.clone(), 6).unwrap(), b"headerPAYLOAD");
    }

    #[test]
    fn altered_header_wrong_key_and_replays_are_refused() {
        let mut s = Sealer::new(&K);
        let mut a = Vec::new();
        s.seal(b"hdrdata", 3, &mut a);
        let mut o = Opener::new(&K);
        let mut bad = a.clone();
        bad[9] ^= 1; // in the clear header
        assert_eq!(o.open(&mut bad, 3), Err(OpenError::Auth));
        assert_eq!(
            Opener::new(&[8; 32]).open(&mut a.clone(), 3),
            Err(OpenError::Auth)
        );
        assert!(o.open(&mut a.clone(), 3).is_ok());
        assert_eq!(o.open(&mut a.clone(), 3), Err(OpenError::Replay));
        assert_eq!(o.open(&mut [0u8; 10], 3), Err(OpenError::Short));
    }

    #[test]
    fn reordering_within_the_window_opens_once_each() {
        let mut s = Sealer::new(&K);
        let msgs: Vec<Vec<u8>> = (0..300u32)
            .map(|i| {
                let mut v = Vec::new();
                s.seal(&i.to_be_bytes(), 0, &mut v);
                v
            })
            .collect();
        let mut o = Opener::new(&K);
        // Odd ones first, then even, then everything again.
        let order = (0..300)
            .filter(|i| i % 2 == 1)
            .chain((0..300).filter(|i| i % 2 == 0));
        for i in order {
            assert!(o.open(&mut msgs[i].clone(), 0).is_ok(), "{i}");
        }
        for m in &msgs {
            assert_eq!(o.open(&mut m.clone(), 0), Err(OpenError::Replay));
        }
        // A big jump forgets the old window: old counters are stale.
        let mut far = Sealer::new(&K);
        far.next = 1_000_000;
        let mut v = Vec::new();
        far.seal(b"x", 0, &mut v);
        assert!(o.open(&mut v, 0).is_ok());
        assert_eq!(o.open(&mut msgs[299].clone(), 0), Err(OpenError::Replay));
    }

    proptest::proptest! {
        #[test]
        fn opening_garbage_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200), clear in 0usize..100) {
            let mut o = Opener::new(&K);
            let mut b = bytes;
            let _ = o.open(&mut b, clear);
        }
    }
}
