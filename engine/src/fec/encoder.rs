//! FEC block encoder with packet interleaving.
//!
//! Each source shard is folded into its block's parity as the packet leaves,
//! so the encoder stores no sources and spreads the coding work evenly. The
//! parity coefficients are read once from reed-solomon-erasure's encoding
//! matrix; each packet then costs one call of its SIMD multiply-accumulate
//! kernel per repair shard, which is all the block encoder does too. A group
//! of `D` blocks closes when every block holds `k` sources or when its time
//! budget (`D` block windows) runs out; a block
//! closed early is a shortened code: the sources it never got count as zero
//! shards, and its repairs carry how many it really has.
//!
//! With automatic depth the encoder is built for the deepest group granted
//! and runs at a depth in force at most that ([`FecEncoder::set_depth`]):
//! the group's time budget and its block numbers (a multiple of the
//! granted depth at each group's start) stay those of the deepest group,
//! so the receiver's checks hold whatever the depth, and each repair says
//! the depth of its group (its header's `group` byte).

use std::time::Duration;

use reed_solomon_erasure::galois_8::{self, ReedSolomon};

use super::codec::{FecError, new_codec};
use super::shards::Shards;
use crate::interleave::packet::{place_source, repair_order};
use crate::time::Time;
use crate::wire::packet::{BlockPos, REPAIR_SUBSTREAM, SourceMeta};

struct BlockAcc {
    /// `m` parity shards, valid up to `len`.
    parity: Shards,
    /// Longest source shard so far: the block's shard size.
    len: usize,
    sources: usize,
    first_media_ts: u64,
}

/// The `m x k` parity weights of a codec: encoding unit vectors (source `i`
/// holds a 1 at byte `i`) leaves weight `(j, i)` at byte `i` of repair `j`.
fn parity_coefficients(rs: &ReedSolomon, k: usize, m: usize) -> Vec<u8> {
    let data: Vec<Vec<u8>> = (0..k)
        .map(|i| (0..k).map(|b| (b == i) as u8).collect())
        .collect();
    let mut parity = vec![vec![0u8; k]; m];
    rs.encode_sep(&data, &mut parity)
        .expect("shard counts and lengths match the codec");
    parity.concat()
}

/// Encodes one session's FEC stream.
pub struct FecEncoder {
    k: usize,
    m: usize,
    /// Blocks of the group being built (the depth in force).
    depth: usize,
    /// Blocks set aside a group: the deepest depth allowed; block numbers
    /// advance by this much a group.
    stride: usize,
    /// A group's time budget (window x the deepest depth).
    span: Duration,
    /// `coef[j * k + i]`: weight of source `i` in repair `j`.
    coef: Vec<u8>,
    blocks: Vec<BlockAcc>,
    /// Block number of `blocks[0]`.
    base: u32,
    in_group: usize,
    opened: Option<Time>,
    repair_seq: u32,
    repairs: u64,
    closed: u64,
    /// Running mean of sources a closed block held (the real `k`).
    mean_sources: Option<f64>,
}

impl FecEncoder {
    /// `window` is one block's time budget; the group's is `depth` times it.
    pub fn new(k: usize, m: usize, depth: usize, window: Duration) -> Result<Self, FecError> {
        let coef = parity_coefficients(&new_codec(k, m)?, k, m);
        let depth = depth.max(1);
        let blocks = (0..depth)
            .map(|_| BlockAcc {
                parity: Shards::new(m),
                len: 0,
                sources: 0,
                first_media_ts: 0,
            })
            .collect();
        Ok(Self {
            k,
            m,
            depth,
            stride: depth,
            span: window * depth as u32,
            coef,
            blocks,
            base: 0,
            in_group: 0,
            opened: None,
            repair_seq: 0,
            repairs: 0,
            closed: 0,
            mean_sources: None,
        })
    }

    /// Switch to a new code from the next group on (closing the open group
    /// first is the caller's job). Block numbers keep counting, so the
    /// receiver follows the change from the `k` and `m` in each packet.
    pub fn set_code(&mut self, k: usize, m: usize) -> Result<(), FecError> {
        debug_assert_eq!(self.in_group, 0, "close the group before changing the code");
        self.coef = parity_coefficients(&new_codec(k, m)?, k, m);
        for b in &mut self.blocks {
            b.parity.ensure(m);
        }
        (self.k, self.m) = (k, m);
        Ok(())
    }

    /// Interleave `depth` blocks a group from the next group on (closing the
    /// open group first is the caller's job), at most the depth the encoder
    /// was built with; the group's time budget and numbering do not change.
    pub fn set_depth(&mut self, depth: usize) {
        debug_assert_eq!(
            self.in_group, 0,
            "close the group before changing the depth"
        );
        self.depth = depth.clamp(1, self.stride);
    }

    /// The depth in force.
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// Sources a closed block held, on average lately: blocks close early
    /// when the time budget runs out, so this is the code really in use.
    pub fn mean_sources(&self) -> Option<f64> {
        self.mean_sources
    }

    /// The code in use: (k, m).
    pub fn code(&self) -> (usize, usize) {
        (self.k, self.m)
    }

    /// Blocks closed so far (with at least one source).
    pub fn blocks_closed(&self) -> u64 {
        self.closed
    }

    /// Repair packets produced so far.
    pub fn repairs(&self) -> u64 {
        self.repairs
    }

    /// Place a source packet in the current group and fold its shard (bytes
    /// 8.. of the packet, at most [`SHARD_CAP`](super::SHARD_CAP)) into the parity. Returns the
    /// block header fields to write.
    pub fn add_source(&mut self, now: Time, media_ts: u64, shard: &[u8]) -> BlockPos {
        debug_assert!(!shard.is_empty() && shard.len() <= super::SHARD_CAP);
        if self.in_group == 0 {
            self.opened = Some(now);
        }
        let (b, index) = place_source(self.in_group, self.depth);
        self.in_group += 1;
        let block = &mut self.blocks[b];
        if block.sources == 0 {
            block.first_media_ts = media_ts;
        }
        let len = shard.len();
        let (coef, m, k) = (&self.coef, self.m, self.k);
        if block.sources == 0 {
            // The first shard overwrites whatever the last block left.
            for (j, p) in block.parity.iter_mut(m, len).enumerate() {
                galois_8::mul_slice(coef[j * k + index], shard, p);
            }
            block.len = len;
        } else {
            if len > block.len {
                // Shorter shards are zero-padded: extend the parity with zeros.
                for p in block.parity.iter_mut(m, len) {
                    p[block.len..].fill(0);
                }
                block.len = len;
            }
            for (j, p) in block.parity.iter_mut(m, len).enumerate() {
                galois_8::mul_slice_xor(coef[j * k + index], shard, p);
            }
        }
        block.sources += 1;
        BlockPos {
            block: self.base.wrapping_add(b as u32),
            index: index as u8,
            k: self.k as u8,
            m: self.m as u8,
        }
    }

    /// The group holds `k` sources in every block.
    pub fn group_full(&self) -> bool {
        self.in_group == self.k * self.depth
    }

    /// When the open group's time budget runs out.
    pub fn deadline(&self) -> Option<Time> {
        self.opened.map(|t| t + self.span)
    }

    /// Close the group if it is full or out of time.
    pub fn poll(&mut self, now: Time, emit: &mut dyn FnMut(BlockPos, &SourceMeta, &[u8])) -> bool {
        let due = self.group_full() || self.deadline().is_some_and(|d| now >= d);
        if due {
            self.close(now, emit);
        }
        due
    }

    /// Close the open group now: emit its repairs column by column and start
    /// the next group.
    pub fn close(&mut self, now: Time, emit: &mut dyn FnMut(BlockPos, &SourceMeta, &[u8])) {
        if self.in_group == 0 {
            return;
        }
        for (j, b) in repair_order(self.depth, self.m) {
            let block = &self.blocks[b];
            if block.sources == 0 {
                continue;
            }
            let meta = SourceMeta {
                substream: REPAIR_SUBSTREAM,
                seq: self.repair_seq,
                media_ts: block.first_media_ts,
                sender_ts: now.as_micros(),
                frames: block.sources as u8,
                // The depth of the group (the receiver refuses one deeper
                // than it granted).
                group: self.depth as u8,
                ..SourceMeta::default()
            };
            self.repair_seq = self.repair_seq.wrapping_add(1);
            self.repairs += 1;
            let pos = BlockPos {
                block: self.base.wrapping_add(b as u32),
                index: (self.k + j) as u8,
                k: self.k as u8,
                m: self.m as u8,
            };
            emit(pos, &meta, &block.parity.get(j)[..block.len]);
        }
        for block in &mut self.blocks[..self.depth] {
            if block.sources > 0 {
                self.closed += 1;
                let n = block.sources as f64;
                self.mean_sources = Some(self.mean_sources.map_or(n, |m| 0.9 * m + 0.1 * n));
            }
            block.len = 0;
            block.sources = 0;
        }
        self.base = self.base.wrapping_add(self.stride as u32);
        self.in_group = 0;
        self.opened = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incremental_parity_equals_the_crates_block_encode() {
        let (k, m) = (5, 3);
        let lens = [40, 100, 7, 100, 64];
        let shards: Vec<Vec<u8>> = lens
            .iter()
            .enumerate()
            .map(|(i, &n)| (0..n).map(|b| (b * 13 + i * 101) as u8).collect())
            .collect();
        let mut enc = FecEncoder::new(k, m, 1, Duration::from_secs(1)).unwrap();
        // Run two blocks so the second starts on the first's leftovers.
        for _ in 0..2 {
            for s in &shards {
                enc.add_source(Time::ZERO, 0, s);
            }
            let mut ours = Vec::new();
            enc.close(Time::ZERO, &mut |_, _, p| ours.push(p.to_vec()));
            let padded: Vec<Vec<u8>> = shards
                .iter()
                .map(|s| {
                    let mut v = s.clone();
                    v.resize(100, 0);
                    v
                })
                .collect();
            let mut parity = vec![vec![0u8; 100]; m];
            ReedSolomon::new(k, m)
                .unwrap()
                .encode_sep(&padded, &mut parity)
                .unwrap();
            assert_eq!(ours, parity);
        }
    }

    #[test]
    fn a_shallower_depth_keeps_the_span_and_the_numbering() {
        let span = Duration::from_millis(40);
        let mut enc = FecEncoder::new(2, 1, 4, span / 4).unwrap();
        enc.set_depth(2);
        let t0 = Time::from_micros(1000);
        let mut pos = Vec::new();
        for _ in 0..3 {
            pos.push(enc.add_source(t0, 0, &[1, 2, 3]));
        }
        assert_eq!(
            enc.deadline(),
            Some(t0 + span),
            "the deepest group's budget"
        );
        assert_eq!(
            pos.iter().map(|p| (p.block, p.index)).collect::<Vec<_>>(),
            [(0, 0), (1, 0), (0, 1)]
        );
        assert!(!enc.group_full());
        enc.add_source(t0, 0, &[4]);
        assert!(enc.group_full(), "2 blocks of k = 2");
        let mut repairs = Vec::new();
        enc.close(t0, &mut |p, m, _| repairs.push((p.block, m.group)));
        assert_eq!(
            repairs,
            [(0, 2), (1, 2)],
            "each repair says its group's depth"
        );
        // The next group starts at the granted depth's multiple.
        enc.set_depth(9);
        assert_eq!(enc.depth(), 4, "at most the depth built for");
        assert_eq!(enc.add_source(t0, 0, &[1]).block, 4);
    }
}
