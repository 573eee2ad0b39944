//! FEC block decoder.
//!
//! Keeps a bounded pool of open blocks. Every source shard is stored (any
//! block may turn out to need it); as soon as a block holds as many shards as
//! it has sources, the missing sources are rebuilt and handed on as if they
//! had arrived. A block is given up when its wait runs out, and the oldest is
//! evicted when the pool is full, so memory stays bounded whatever arrives.

use std::time::Duration;

use smallvec::SmallVec;

use super::SHARD_CAP;
use super::codec::CodecCache;
use crate::time::Time;
use crate::wire::packet::{BlockPos, SourceMeta, parse_shard};

/// What the decoder did, for statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecoderStats {
    pub repair_received: u64,
    pub blocks_rebuilt: u64,
    pub packets_rebuilt: u64,
    /// Blocks given up (out of time or evicted) with sources still missing.
    pub blocks_failed: u64,
    /// Shards that contradict their block (sizes, counts) or rebuilt into
    /// garbage: counted and dropped.
    pub inconsistent: u64,
    /// Repairs for blocks already finished.
    pub repair_unneeded: u64,
}

struct Slot {
    block: u32,
    k: usize,
    m: usize,
    /// Sources the block really has (from a repair), when known.
    sources: Option<usize>,
    /// Shard size (a repair's length), when known.
    shard_len: Option<usize>,
    opened: Time,
    present: [u64; 4],
    lens: [u16; 256],
    n_src: usize,
    n_rep: usize,
    data: Vec<u8>,
}

impl Slot {
    fn has(&self, i: usize) -> bool {
        self.present[i / 64] >> (i % 64) & 1 == 1
    }
    fn set(&mut self, i: usize) {
        self.present[i / 64] |= 1 << (i % 64);
    }
    fn missing_sources(&self) -> bool {
        self.n_src < self.sources.unwrap_or(self.k)
    }
}

/// Recently finished blocks, so late shards do not reopen them.
struct Finished {
    base: u32,
    bits: [u64; 16],
}

impl Finished {
    const SPAN: u32 = 16 * 64;

    fn is_done(&self, b: u32) -> bool {
        if b < self.base {
            return true;
        }
        let o = b - self.base;
        o < Self::SPAN && self.bits[(o / 64) as usize] >> (o % 64) & 1 == 1
    }

    fn mark(&mut self, b: u32) {
        if b < self.base {
            return;
        }
        if b - self.base >= Self::SPAN {
            let shift = b - self.base - Self::SPAN + 1;
            self.slide(shift);
        }
        let o = b - self.base;
        self.bits[(o / 64) as usize] |= 1 << (o % 64);
    }

    fn slide(&mut self, shift: u32) {
        if shift >= Self::SPAN {
            self.bits = [0; 16];
        } else {
            for _ in 0..shift {
                // Shift the 1024-bit window right by one (rare: once a block).
                let mut carry = 0u64;
                for w in self.bits.iter_mut().rev() {
                    let next = *w & 1;
                    *w = (*w >> 1) | (carry << 63);
                    carry = next;
                }
            }
        }
        self.base = self.base.wrapping_add(shift);
    }
}

pub struct FecDecoder {
    codecs: CodecCache,
    slots: Vec<Option<Slot>>,
    spare: Vec<Vec<u8>>,
    finished: Finished,
    max_wait: Duration,
    next_expiry: Time,
    stats: DecoderStats,
}

impl FecDecoder {
    /// `max_blocks` bounds the open blocks (and so memory); `max_wait` is how
    /// long a block may wait for its shards after its first one arrived.
    pub fn new(max_blocks: usize, max_wait: Duration) -> Self {
        Self {
            codecs: CodecCache::new(4),
            slots: (0..max_blocks.max(1)).map(|_| None).collect(),
            spare: Vec::new(),
            finished: Finished {
                base: 0,
                bits: [0; 16],
            },
            max_wait,
            next_expiry: Time::MAX,
            stats: DecoderStats::default(),
        }
    }

    pub fn stats(&self) -> DecoderStats {
        self.stats
    }

    /// A source packet arrived: keep its shard in case its block needs it.
    pub fn on_source(
        &mut self,
        now: Time,
        pos: BlockPos,
        shard: &[u8],
        deliver: &mut dyn FnMut(&SourceMeta, &[u8]),
    ) {
        self.expire(now);
        if pos.m == 0 || self.finished.is_done(pos.block) || shard.len() > SHARD_CAP {
            return;
        }
        let Some(i) = self.slot_for(now, pos) else {
            return;
        };
        let slot = self.slots[i]
            .as_mut()
            .expect("slot_for returns an open slot");
        let idx = pos.index as usize;
        if slot.has(idx) {
            return;
        }
        let at = idx * SHARD_CAP;
        slot.data[at..at + shard.len()].copy_from_slice(shard);
        slot.lens[idx] = shard.len() as u16;
        slot.set(idx);
        slot.n_src += 1;
        self.progress(i, deliver);
    }

    /// A repair packet arrived.
    pub fn on_repair(
        &mut self,
        now: Time,
        pos: BlockPos,
        sources: usize,
        parity: &[u8],
        deliver: &mut dyn FnMut(&SourceMeta, &[u8]),
    ) {
        self.expire(now);
        self.stats.repair_received += 1;
        if self.finished.is_done(pos.block) {
            self.stats.repair_unneeded += 1;
            return;
        }
        if parity.len() > SHARD_CAP {
            self.stats.inconsistent += 1;
            return;
        }
        let Some(i) = self.slot_for(now, pos) else {
            return;
        };
        let slot = self.slots[i].as_mut().expect("open slot");
        let idx = pos.index as usize;
        let agrees = slot.sources.is_none_or(|s| s == sources)
            && slot.shard_len.is_none_or(|l| l == parity.len());
        if !agrees {
            self.stats.inconsistent += 1;
            return;
        }
        if slot.has(idx) {
            return;
        }
        slot.sources = Some(sources);
        slot.shard_len = Some(parity.len());
        let at = idx * SHARD_CAP;
        slot.data[at..at + parity.len()].copy_from_slice(parity);
        slot.set(idx);
        slot.n_rep += 1;
        self.progress(i, deliver);
    }

    /// Give up blocks whose wait has run out.
    pub fn expire(&mut self, now: Time) {
        if now < self.next_expiry {
            return;
        }
        let mut next = Time::MAX;
        for i in 0..self.slots.len() {
            let Some(s) = &self.slots[i] else { continue };
            let deadline = s.opened + self.max_wait;
            if now >= deadline {
                self.release(i, true);
            } else {
                next = next.min(deadline);
            }
        }
        self.next_expiry = next;
    }

    /// Find the block's slot, opening one (evicting the oldest) if needed.
    /// `None` if the packet contradicts the block's code.
    fn slot_for(&mut self, now: Time, pos: BlockPos) -> Option<usize> {
        let (k, m) = (pos.k as usize, pos.m as usize);
        if let Some(i) = self
            .slots
            .iter()
            .position(|s| s.as_ref().is_some_and(|s| s.block == pos.block))
        {
            let s = self.slots[i].as_ref().expect("found");
            if s.k != k || s.m != m {
                self.stats.inconsistent += 1;
                return None;
            }
            return Some(i);
        }
        let i = match self.slots.iter().position(Option::is_none) {
            Some(i) => i,
            None => {
                let oldest = (0..self.slots.len())
                    .min_by_key(|&i| self.slots[i].as_ref().map(|s| s.opened))
                    .expect("pool is not empty");
                self.release(oldest, true);
                oldest
            }
        };
        let mut data = self.spare.pop().unwrap_or_default();
        let need = (k + m) * SHARD_CAP;
        if data.len() < need {
            data.resize(need, 0);
        }
        self.slots[i] = Some(Slot {
            block: pos.block,
            k,
            m,
            sources: None,
            shard_len: None,
            opened: now,
            present: [0; 4],
            lens: [0; 256],
            n_src: 0,
            n_rep: 0,
            data,
        });
        self.next_expiry = self.next_expiry.min(now + self.max_wait);
        Some(i)
    }

    fn release(&mut self, i: usize, gave_up: bool) {
        if let Some(s) = self.slots[i].take() {
            if gave_up && s.missing_sources() {
                self.stats.blocks_failed += 1;
            }
            self.finished.mark(s.block);
            self.spare.push(s.data);
        }
    }

    /// Rebuild if the block can be, and release it once it is whole.
    fn progress(&mut self, i: usize, deliver: &mut dyn FnMut(&SourceMeta, &[u8])) {
        let slot = self.slots[i].as_mut().expect("open slot");
        if !slot.missing_sources() {
            self.release(i, false);
            return;
        }
        let (Some(sources), Some(shard_len)) = (slot.sources, slot.shard_len) else {
            return;
        };
        if slot.n_src + slot.n_rep < sources {
            return;
        }
        let (k, m) = (slot.k, slot.m);
        // Sources beyond `sources` never existed: zero shards (shortened code).
        for idx in 0..k {
            let at = idx * SHARD_CAP;
            if idx >= sources {
                slot.data[at..at + shard_len].fill(0);
            } else if slot.has(idx) {
                let len = slot.lens[idx] as usize;
                if len > shard_len {
                    self.stats.inconsistent += 1;
                    self.release(i, true);
                    return;
                }
                slot.data[at + len..at + shard_len].fill(0);
            }
        }
        let missing: SmallVec<[usize; 32]> = (0..sources).filter(|&idx| !slot.has(idx)).collect();
        let present = slot.present;
        let has =
            |idx: usize| idx >= sources && idx < k || present[idx / 64] >> (idx % 64) & 1 == 1;
        let codec = match self.codecs.get(k, m) {
            Ok(c) => c,
            Err(_) => {
                self.stats.inconsistent += 1;
                self.release(i, true);
                return;
            }
        };
        let slot = self.slots[i].as_mut().expect("open slot");
        let mut shards: SmallVec<[(&mut [u8], bool); 32]> = slot
            .data
            .chunks_mut(SHARD_CAP)
            .take(k + m)
            .enumerate()
            .map(|(idx, c)| (&mut c[..shard_len], has(idx)))
            .collect();
        let rebuilt = codec.reconstruct_data(&mut shards).is_ok();
        drop(shards);
        if !rebuilt {
            self.stats.inconsistent += 1;
            self.release(i, true);
            return;
        }
        self.stats.blocks_rebuilt += 1;
        for &idx in &missing {
            let at = idx * SHARD_CAP;
            match parse_shard(&slot.data[at..at + shard_len]) {
                Ok((meta, payload)) => {
                    self.stats.packets_rebuilt += 1;
                    deliver(&meta, payload);
                }
                Err(_) => self.stats.inconsistent += 1,
            }
        }
        self.release(i, false);
    }
}
