//! FEC block encoder with packet interleaving.
//!
//! Each source shard is folded into its block's parity as the packet leaves
//! (`encode_single_sep`), so the encoder stores no sources and spreads the
//! coding work evenly. A group of `D` blocks closes when every block holds `k`
//! sources or when its time budget (`D` block windows) runs out; a block
//! closed early is a shortened code: the sources it never got count as zero
//! shards, and its repairs carry how many it really has.

use std::time::Duration;

use reed_solomon_erasure::galois_8::ReedSolomon;
use smallvec::SmallVec;

use super::SHARD_CAP;
use super::codec::{FecError, new_codec};
use crate::interleave::packet::{place_source, repair_order};
use crate::time::Time;
use crate::wire::packet::{BlockPos, REPAIR_SUBSTREAM, SourceMeta};

struct BlockAcc {
    /// `m` parity shards of `SHARD_CAP` bytes, zero beyond `len`.
    parity: Vec<u8>,
    /// Longest source shard so far: the block's shard size.
    len: usize,
    sources: usize,
    first_media_ts: u64,
}

/// Encodes one session's FEC stream.
pub struct FecEncoder {
    k: usize,
    m: usize,
    depth: usize,
    window: Duration,
    rs: ReedSolomon,
    blocks: Vec<BlockAcc>,
    /// Block number of `blocks[0]`.
    base: u32,
    in_group: usize,
    opened: Option<Time>,
    repair_seq: u32,
    repairs: u64,
}

impl FecEncoder {
    /// `window` is one block's time budget; the group's is `depth` times it.
    pub fn new(k: usize, m: usize, depth: usize, window: Duration) -> Result<Self, FecError> {
        let rs = new_codec(k, m)?;
        let depth = depth.max(1);
        let blocks = (0..depth)
            .map(|_| BlockAcc {
                parity: vec![0; m * SHARD_CAP],
                len: 0,
                sources: 0,
                first_media_ts: 0,
            })
            .collect();
        Ok(Self {
            k,
            m,
            depth,
            window,
            rs,
            blocks,
            base: 0,
            in_group: 0,
            opened: None,
            repair_seq: 0,
            repairs: 0,
        })
    }

    /// Repair packets produced so far.
    pub fn repairs(&self) -> u64 {
        self.repairs
    }

    /// Place a source packet in the current group and fold its shard (bytes
    /// 8.. of the packet, at most [`SHARD_CAP`]) into the parity. Returns the
    /// block header fields to write.
    pub fn add_source(&mut self, now: Time, media_ts: u64, shard: &[u8]) -> BlockPos {
        debug_assert!(shard.len() <= SHARD_CAP);
        if self.in_group == 0 {
            self.opened = Some(now);
        }
        let (b, index) = place_source(self.in_group, self.depth);
        self.in_group += 1;
        let block = &mut self.blocks[b];
        if block.sources == 0 {
            block.first_media_ts = media_ts;
        }
        block.sources += 1;
        block.len = block.len.max(shard.len());
        let mut parity: SmallVec<[&mut [u8]; 32]> = block
            .parity
            .chunks_mut(SHARD_CAP)
            .map(|p| &mut p[..shard.len()])
            .collect();
        self.rs
            .encode_single_sep(index, shard, &mut parity)
            .expect("index < k and equal shard lengths by construction");
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
        self.opened.map(|t| t + self.window * self.depth as u32)
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
            let start = j * SHARD_CAP;
            emit(pos, &meta, &block.parity[start..start + block.len]);
        }
        for block in &mut self.blocks {
            for p in block.parity.chunks_mut(SHARD_CAP) {
                p[..block.len].fill(0);
            }
            block.len = 0;
            block.sources = 0;
        }
        self.base = self.base.wrapping_add(self.depth as u32);
        self.in_group = 0;
        self.opened = None;
    }
}
