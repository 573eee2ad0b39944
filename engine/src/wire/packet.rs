//! Media packets: one per QUIC datagram.
//!
//! Layout (big-endian, 38-byte header):
//!
//! ```text
//! 0   u8  version (high nibble) | kind (low nibble: 0 source, 1 repair,
//!         2 source sent again on a NACK; 3 is the receiver's NACK, see
//!         [`nack`](super::nack))
//! 1   u8  k      FEC code dimension (source shards a full block holds)
//! 2   u8  m      repair shards per block (0: FEC off)
//! 3   u8  index  shard index in the block (repair: k + j)
//! 4   u32 block  FEC block number
//! --- the shard: what Reed-Solomon protects, so a rebuilt packet is whole ---
//! 8   u16 substream id (repair: 0xFFFF)
//! 10  u32 seq        per substream (repair: its own sequence)
//! 14  u64 media ts   microseconds on the session media clock (first frame)
//! 22  u64 sender ts  microseconds on the sender's clock when produced
//! 30  u8  group      sample-interleave group G (1: none); repair: the
//!                    packet interleaving depth of its FEC group (0: unsaid)
//! 31  u8  lane       lane of the group this payload carries
//! 32  u8  frag index
//! 33  u8  frag count fragments of the unit (1: whole)
//! 34  u8  count      source: frames the unit spans; repair: sources in block
//! 35  u8  reserved   0
//! 36  u16 payload length
//! 38  payload        source: samples; repair: parity over the block's shards
//! ```
//!
//! A repair packet's payload is a parity shard: the XOR-like RS combination of
//! the block's source shards (bytes 8.. of each source packet), each
//! zero-padded to the longest. A block may close before it holds `k` sources
//! (its time budget ran out); it is then a shortened code whose missing
//! sources are zero shards, and repairs say how many sources it really has.

use thiserror::Error;

/// Packet format version (the header's high nibble); other versions are
/// dropped as malformed.
pub const VERSION: u8 = 1;
/// Header bytes before the payload.
pub const HEADER_LEN: usize = 38;
/// Offset of the FEC-protected shard in a source packet.
pub const SHARD_OFFSET: usize = 8;
/// Shard bytes before the payload.
pub const SHARD_HEADER_LEN: usize = HEADER_LEN - SHARD_OFFSET;
/// Substream id carried by repair packets.
pub const REPAIR_SUBSTREAM: u16 = 0xFFFF;
/// Largest datagram the engine ever builds (QUIC's floor MTU is 1200).
pub const MAX_DATAGRAM: usize = 1452;
/// Smallest datagram size the engine can plan for.
pub const MIN_DATAGRAM: usize = 256;
/// Kind nibble of a source packet sent again on request: the same bytes as
/// the original from byte 1 on, so the shard (and FEC) is unchanged.
const KIND_RETRANSMIT: u8 = 2;

/// Mark a source datagram (bytes as [`encode`] wrote them) as sent again.
pub fn mark_retransmit(datagram: &mut [u8]) {
    if let Some(b) = datagram.first_mut() {
        *b = VERSION << 4 | KIND_RETRANSMIT;
    }
}

/// Largest source payload that keeps both source and repair packets within
/// `max_datagram` (a repair carries a whole shard: 30 bytes more).
pub const fn max_payload(max_datagram: usize) -> usize {
    max_datagram.saturating_sub(HEADER_LEN + SHARD_HEADER_LEN)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
/// Source or repair (the header's low nibble).
pub enum Kind {
    /// Media samples of one substream (0).
    Source,
    /// FEC parity over a block's source shards (1).
    Repair,
}

/// Where a packet sits in FEC: block, index, and the block's code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockPos {
    /// FEC block number: one counter for the whole session, wrapping.
    pub block: u32,
    /// Shard index in the block: sources `0..k`, repair `j` at `k + j`.
    pub index: u8,
    /// Source shards a full block holds (0 with FEC off).
    pub k: u8,
    /// Repair shards per block (0: FEC off).
    pub m: u8,
}

/// The shard header of a source packet: everything needed to place its
/// payload on the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SourceMeta {
    /// Catalog id ([`REPAIR_SUBSTREAM`] on repair packets).
    pub substream: u16,
    /// Per substream, from 0, wrapping (repairs: their own sequence).
    pub seq: u32,
    /// Media time of the unit's first frame, microseconds on the session
    /// media clock (repairs: of the block's first source).
    pub media_ts: u64,
    /// Sender clock when the packet was made, microseconds (for jitter and
    /// delay).
    pub sender_ts: u64,
    /// Sample-interleave group G (1: none).
    pub group: u8,
    /// Lane of the group this payload carries (`< group`).
    pub lane: u8,
    /// This fragment's index (`< frag_count`).
    pub frag_index: u8,
    /// Fragments the unit (or lane) was split into (1: whole).
    pub frag_count: u8,
    /// Frames the unit spans (aggregated frames, or the group's frames).
    /// Repairs: the sources their block really holds.
    pub frames: u8,
}

/// Why bytes are not a valid packet. Every variant is a counted drop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum PacketError {
    /// Fewer bytes than [`HEADER_LEN`] (or a shard shorter than its header).
    #[error("shorter than the {HEADER_LEN}-byte header")]
    Short,
    /// Version nibble (given) is not [`VERSION`].
    #[error("unknown version {0}")]
    Version(u8),
    /// Kind nibble (given) is neither source nor repair.
    #[error("unknown packet kind {0}")]
    Kind(u8),
    /// The payload length field disagrees with the bytes present.
    #[error("payload length field disagrees with the datagram length")]
    Length,
    /// `k`, `m`, `index` or `block` impossible for the packet's kind.
    #[error("FEC fields out of range (k, m, index)")]
    Fec,
    /// A source's group, lane, fragment, frames or reserved byte is invalid,
    /// or it claims the repair substream id.
    #[error("layout fields out of range (group, lane, fragments, frames)")]
    Layout,
    /// A repair's substream id, source count or shard length is invalid.
    #[error("repair packet fields out of range")]
    Repair,
}

/// A parsed packet borrowing its payload.
#[derive(Debug, Clone, Copy)]
pub struct PacketView<'a> {
    /// Source or repair.
    pub kind: Kind,
    /// Bytes 0..8: where it sits in FEC.
    pub pos: BlockPos,
    /// Bytes 8..38 (for a repair, only `seq`, `media_ts`, `sender_ts`,
    /// `group`, its group's interleaving depth, and `frames` mean anything).
    pub meta: SourceMeta,
    /// Bytes 38..: samples, or a repair's parity shard.
    pub payload: &'a [u8],
    /// Bytes 8.. of a source packet (the FEC shard, unpadded).
    pub shard: &'a [u8],
    /// A source packet sent again on the receiver's request (kind 2).
    pub retransmit: bool,
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn be64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Write the shard header (bytes 8..38) into `out[..30]`.
pub fn write_shard_header(out: &mut [u8], meta: &SourceMeta, payload_len: usize) {
    out[0..2].copy_from_slice(&meta.substream.to_be_bytes());
    out[2..6].copy_from_slice(&meta.seq.to_be_bytes());
    out[6..14].copy_from_slice(&meta.media_ts.to_be_bytes());
    out[14..22].copy_from_slice(&meta.sender_ts.to_be_bytes());
    out[22] = meta.group;
    out[23] = meta.lane;
    out[24] = meta.frag_index;
    out[25] = meta.frag_count;
    out[26] = meta.frames;
    out[27] = 0;
    out[28..30].copy_from_slice(&(payload_len as u16).to_be_bytes());
}

/// Write the block header (bytes 0..8).
pub fn write_block_header(out: &mut [u8], kind: Kind, pos: BlockPos) {
    let kind = match kind {
        Kind::Source => 0,
        Kind::Repair => 1,
    };
    out[0] = VERSION << 4 | kind;
    out[1] = pos.k;
    out[2] = pos.m;
    out[3] = pos.index;
    out[4..8].copy_from_slice(&pos.block.to_be_bytes());
}

/// Encode a whole packet into `out`; returns its length.
/// Panics if `out` is shorter than `HEADER_LEN + payload.len()` or the
/// payload exceeds 65535 bytes (callers size both from `max_payload`).
pub fn encode(
    out: &mut [u8],
    kind: Kind,
    pos: BlockPos,
    meta: &SourceMeta,
    payload: &[u8],
) -> usize {
    let len = HEADER_LEN + payload.len();
    assert!(payload.len() <= u16::MAX as usize && out.len() >= len);
    write_block_header(&mut out[..SHARD_OFFSET], kind, pos);
    write_shard_header(&mut out[SHARD_OFFSET..HEADER_LEN], meta, payload.len());
    out[HEADER_LEN..len].copy_from_slice(payload);
    len
}

fn parse_meta(s: &[u8]) -> SourceMeta {
    SourceMeta {
        substream: be16(s, 0),
        seq: be32(s, 2),
        media_ts: be64(s, 6),
        sender_ts: be64(s, 14),
        group: s[22],
        lane: s[23],
        frag_index: s[24],
        frag_count: s[25],
        frames: s[26],
    }
}

fn check_source_layout(meta: &SourceMeta, reserved: u8) -> Result<(), PacketError> {
    let ok = meta.group >= 1
        && meta.lane < meta.group
        && meta.frag_count >= 1
        && meta.frag_index < meta.frag_count
        && meta.frames >= 1
        && reserved == 0
        && meta.substream != REPAIR_SUBSTREAM;
    if ok { Ok(()) } else { Err(PacketError::Layout) }
}

/// Parse a shard rebuilt by FEC (zero padding after the payload is allowed).
pub fn parse_shard(shard: &[u8]) -> Result<(SourceMeta, &[u8]), PacketError> {
    if shard.len() < SHARD_HEADER_LEN {
        return Err(PacketError::Short);
    }
    let meta = parse_meta(shard);
    check_source_layout(&meta, shard[27])?;
    let plen = be16(shard, 28) as usize;
    let end = SHARD_HEADER_LEN + plen;
    if end > shard.len() {
        return Err(PacketError::Length);
    }
    Ok((meta, &shard[SHARD_HEADER_LEN..end]))
}

/// Parse and validate a datagram. Never panics, never allocates.
pub fn parse(b: &[u8]) -> Result<PacketView<'_>, PacketError> {
    if b.len() < HEADER_LEN {
        return Err(PacketError::Short);
    }
    let version = b[0] >> 4;
    if version != VERSION {
        return Err(PacketError::Version(version));
    }
    let (kind, retransmit) = match b[0] & 0x0F {
        0 => (Kind::Source, false),
        1 => (Kind::Repair, false),
        KIND_RETRANSMIT => (Kind::Source, true),
        other => return Err(PacketError::Kind(other)),
    };
    let pos = BlockPos {
        k: b[1],
        m: b[2],
        index: b[3],
        block: be32(b, 4),
    };
    let plen = be16(b, 36) as usize;
    if HEADER_LEN + plen != b.len() {
        return Err(PacketError::Length);
    }
    let (k, m, index) = (pos.k as usize, pos.m as usize, pos.index as usize);
    let meta = parse_meta(&b[SHARD_OFFSET..]);
    match kind {
        Kind::Source => {
            // m == 0: FEC off; block fields must then be zero.
            let fec_ok = if m == 0 {
                k == 0 && index == 0 && pos.block == 0
            } else {
                k >= 1 && k + m <= 256 && index < k
            };
            if !fec_ok {
                return Err(PacketError::Fec);
            }
            check_source_layout(&meta, b[35])?;
        }
        Kind::Repair => {
            if !(k >= 1 && m >= 1 && k + m <= 256 && index >= k && index < k + m) {
                return Err(PacketError::Fec);
            }
            // count = sources in the block; the payload is a whole shard.
            let sources = meta.frames as usize;
            if meta.substream != REPAIR_SUBSTREAM
                || sources == 0
                || sources > k
                || plen < SHARD_HEADER_LEN
            {
                return Err(PacketError::Repair);
            }
        }
    }
    Ok(PacketView {
        kind,
        pos,
        meta,
        payload: &b[HEADER_LEN..],
        shard: &b[SHARD_OFFSET..],
        retransmit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> SourceMeta {
        SourceMeta {
            substream: 3,
            seq: 77,
            media_ts: 10_000,
            sender_ts: 123_456,
            group: 1,
            lane: 0,
            frag_index: 0,
            frag_count: 1,
            frames: 1,
        }
    }

    #[test]
    fn source_round_trip() {
        let mut buf = [0u8; 200];
        let pos = BlockPos {
            block: 9,
            index: 2,
            k: 16,
            m: 4,
        };
        let n = encode(&mut buf, Kind::Source, pos, &meta(), b"hello");
        let v = parse(&buf[..n]).unwrap();
        assert_eq!(v.kind, Kind::Source);
        assert_eq!(v.pos, pos);
        assert_eq!(v.meta, meta());
        assert_eq!(v.payload, b"hello");
        let (m2, p2) = parse_shard(v.shard).unwrap();
        assert_eq!((m2, p2), (meta(), &b"hello"[..]));
        assert!(!v.retransmit);
        let shard = v.shard.to_vec();
        mark_retransmit(&mut buf[..n]);
        let r = parse(&buf[..n]).unwrap();
        assert!(r.retransmit && r.kind == Kind::Source);
        assert_eq!((r.pos, r.meta, r.shard), (pos, meta(), &shard[..]));
    }

    #[test]
    fn rejects_bad_fields() {
        let mut buf = [0u8; 200];
        let pos = BlockPos {
            block: 0,
            index: 16,
            k: 16,
            m: 4,
        };
        let n = encode(&mut buf, Kind::Source, pos, &meta(), b"x");
        assert_eq!(parse(&buf[..n]).unwrap_err(), PacketError::Fec);
        assert_eq!(parse(&buf[..n - 1]).unwrap_err(), PacketError::Length);
        assert_eq!(parse(&buf[..10]).unwrap_err(), PacketError::Short);
    }
}
