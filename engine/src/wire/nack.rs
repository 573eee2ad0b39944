//! NACK: the receiver asks the sender for source packets again.
//!
//! A NACK travels as a QUIC datagram, not on the control stream: its value
//! lasts less than a round trip, and a stream delivers in order, so one
//! lost stream packet (a report, an earlier NACK) would hold every later
//! NACK back by a retransmission timeout, by which time the packets asked
//! for are due. A datagram is lost alone; the receiver repeats what is
//! still missing, and the sender answers each packet at most once a round
//! trip, so repeats cost nothing but a few bytes.
//!
//! Layout (big-endian):
//!
//! ```text
//! 0   u8  version (high nibble, as media packets) | kind 3 (low nibble)
//! 1   u8  n: ranges that follow, 1..=MAX_NACK_RANGES
//! 2   n x { u16 substream id, u32 first sequence number, u16 count - 1 }
//! ```
//!
//! Parsing checks the length exactly and never allocates; what a range asks
//! for is bounded by the sender's retransmission store, not by the range.

use thiserror::Error;

use super::packet::VERSION;

/// Kind nibble of a NACK datagram.
const KIND_NACK: u8 = 3;
/// Bytes before the ranges.
const NACK_HEADER: usize = 2;
/// Bytes per range.
const RANGE_LEN: usize = 8;
/// Most ranges one NACK carries.
pub const MAX_NACK_RANGES: usize = 64;
/// Longest NACK datagram.
pub const MAX_NACK_LEN: usize = NACK_HEADER + RANGE_LEN * MAX_NACK_RANGES;
/// Most packets one range names.
pub const MAX_RANGE_COUNT: u32 = 1 << 16;

/// Consecutive source packets of one substream: `first .. first + count`
/// (sequence numbers wrap).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NackRange {
    /// Catalog id of the substream.
    pub substream: u16,
    /// First sequence number asked for.
    pub first: u32,
    /// Packets asked for, 1..=[`MAX_RANGE_COUNT`].
    pub count: u32,
}

/// Why bytes are not a NACK. Each is a counted drop at the sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum NackError {
    /// Not a NACK (version or kind), or shorter than its header.
    #[error("not a NACK datagram")]
    NotNack,
    /// The range count is 0 or over [`MAX_NACK_RANGES`], or the length
    /// disagrees with it.
    #[error("NACK length disagrees with its range count")]
    Length,
}

/// Builds one NACK datagram in a fixed buffer.
#[derive(Debug, Clone)]
pub struct NackWriter {
    buf: [u8; MAX_NACK_LEN],
    n: usize,
}

impl Default for NackWriter {
    fn default() -> Self {
        Self {
            buf: [0; MAX_NACK_LEN],
            n: 0,
        }
    }
}

impl NackWriter {
    /// An empty NACK.
    pub fn new() -> Self {
        Self::default()
    }

    /// Ranges written so far.
    pub fn len(&self) -> usize {
        self.n
    }

    /// No range written yet.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The NACK holds [`MAX_NACK_RANGES`] ranges.
    pub fn is_full(&self) -> bool {
        self.n == MAX_NACK_RANGES
    }

    /// Add a range (count clamped to 1..=[`MAX_RANGE_COUNT`]); false when
    /// full. A range continuing the previous one extends it instead.
    pub fn push(&mut self, r: NackRange) -> bool {
        let count = r.count.clamp(1, MAX_RANGE_COUNT);
        if let Some(last) = self.n.checked_sub(1) {
            let at = NACK_HEADER + last * RANGE_LEN;
            let prev = read_range(&self.buf[at..at + RANGE_LEN]);
            if prev.substream == r.substream
                && prev.first.wrapping_add(prev.count) == r.first
                && prev.count + count <= MAX_RANGE_COUNT
            {
                let extra = (prev.count + count - 1) as u16;
                self.buf[at + 6..at + 8].copy_from_slice(&extra.to_be_bytes());
                return true;
            }
        }
        if self.is_full() {
            return false;
        }
        let at = NACK_HEADER + self.n * RANGE_LEN;
        let b = &mut self.buf[at..at + RANGE_LEN];
        b[0..2].copy_from_slice(&r.substream.to_be_bytes());
        b[2..6].copy_from_slice(&r.first.to_be_bytes());
        b[6..8].copy_from_slice(&((count - 1) as u16).to_be_bytes());
        self.n += 1;
        true
    }

    /// The datagram (empty when no range was pushed).
    pub fn bytes(&mut self) -> &[u8] {
        if self.n == 0 {
            return &[];
        }
        self.buf[0] = VERSION << 4 | KIND_NACK;
        self.buf[1] = self.n as u8;
        &self.buf[..NACK_HEADER + self.n * RANGE_LEN]
    }

    /// Start over.
    pub fn clear(&mut self) {
        self.n = 0;
    }
}

fn read_range(b: &[u8]) -> NackRange {
    NackRange {
        substream: u16::from_be_bytes([b[0], b[1]]),
        first: u32::from_be_bytes([b[2], b[3], b[4], b[5]]),
        count: u16::from_be_bytes([b[6], b[7]]) as u32 + 1,
    }
}

/// Parse a NACK datagram; the ranges are read lazily from `bytes`.
pub fn parse(bytes: &[u8]) -> Result<impl Iterator<Item = NackRange> + '_, NackError> {
    if bytes.len() < NACK_HEADER || bytes[0] != (VERSION << 4 | KIND_NACK) {
        return Err(NackError::NotNack);
    }
    let n = bytes[1] as usize;
    if n == 0 || n > MAX_NACK_RANGES || bytes.len() != NACK_HEADER + n * RANGE_LEN {
        return Err(NackError::Length);
    }
    Ok(bytes[NACK_HEADER..].chunks_exact(RANGE_LEN).map(read_range))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(substream: u16, first: u32, count: u32) -> NackRange {
        NackRange {
            substream,
            first,
            count,
        }
    }

    #[test]
    fn round_trip_and_merging() {
        let mut w = NackWriter::new();
        assert!(w.bytes().is_empty());
        assert!(w.push(r(0, 10, 1)));
        assert!(w.push(r(0, 11, 2))); // continues: merged
        assert!(w.push(r(1, u32::MAX, 1)));
        assert!(w.push(r(1, 0, 1))); // wraps and continues
        assert!(w.push(r(0, 20, 0))); // count clamped to 1
        let got: Vec<_> = parse(w.bytes()).unwrap().collect();
        assert_eq!(got, vec![r(0, 10, 3), r(1, u32::MAX, 2), r(0, 20, 1)]);
    }

    #[test]
    fn a_full_nack_refuses_more_and_lengths_are_exact() {
        let mut w = NackWriter::new();
        for i in 0..MAX_NACK_RANGES as u32 {
            assert!(w.push(r(0, i * 10, 1)));
        }
        assert!(!w.push(r(0, 5_000, 1)));
        assert!(w.push(r(0, 631, 1)), "a continuation still fits");
        let b = w.bytes().to_vec();
        assert_eq!(b.len(), MAX_NACK_LEN);
        assert_eq!(parse(&b).unwrap().count(), MAX_NACK_RANGES);
        assert_eq!(parse(&b[..b.len() - 1]).err(), Some(NackError::Length));
        let mut zero = b.clone();
        zero[1] = 0;
        assert_eq!(parse(&zero[..2]).err(), Some(NackError::Length));
        let mut source = b;
        source[0] = VERSION << 4;
        assert_eq!(parse(&source).err(), Some(NackError::NotNack));
        assert_eq!(parse(&[]).err(), Some(NackError::NotNack));
    }
}
