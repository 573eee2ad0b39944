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
use super::shards::Shards;
use crate::stats::FecCounts;
use crate::time::Time;
use crate::wire::packet::{BlockPos, SourceMeta, parse_shard};

struct Slot {
    active: bool,
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
    /// Shortest and longest source shard stored (padding is only needed
    /// when some source is shorter than the block's shard size).
    min_len: usize,
    max_len: usize,
    n_src: usize,
    n_rep: usize,
    /// Highest shard index seen, plus one (shards leave in index order).
    top: usize,
    /// The block was reported beyond rebuilding.
    told: bool,
    data: Shards,
}

impl Slot {
    fn empty() -> Self {
        Self {
            active: false,
            block: 0,
            k: 0,
            m: 0,
            sources: None,
            shard_len: None,
            opened: Time::ZERO,
            present: [0; 4],
            lens: [0; 256],
            min_len: usize::MAX,
            max_len: 0,
            n_src: 0,
            n_rep: 0,
            top: 0,
            told: false,
            data: Shards::default(),
        }
    }

    /// Reuse this slot for `block` (its buffers stay allocated).
    fn open(&mut self, block: u32, k: usize, m: usize, now: Time) {
        self.active = true;
        self.block = block;
        self.k = k;
        self.m = m;
        self.sources = None;
        self.shard_len = None;
        self.opened = now;
        self.present = [0; 4];
        self.min_len = usize::MAX;
        self.max_len = 0;
        self.n_src = 0;
        self.n_rep = 0;
        self.top = 0;
        self.told = false;
        self.data.ensure(k + m);
    }

    fn has(&self, i: usize) -> bool {
        self.present[i / 64] >> (i % 64) & 1 == 1
    }
    fn set(&mut self, i: usize) {
        self.present[i / 64] |= 1 << (i % 64);
    }
    fn missing_sources(&self) -> bool {
        self.n_src < self.sources.unwrap_or(self.k)
    }

    /// More shards are known lost than the repairs can make up for: every
    /// index below the highest seen that is absent is lost (shards leave in
    /// index order; a reordered one only makes this early).
    fn hopeless(&self) -> bool {
        let src_top = self.top.min(self.sources.unwrap_or(self.k));
        let lost_src = src_top.saturating_sub(self.n_src);
        let lost_rep = self.top.saturating_sub(self.k).saturating_sub(self.n_rep);
        lost_src > 0 && lost_src + lost_rep > self.m
    }
}

/// Recently finished blocks, so late shards do not reopen them: a ring of
/// 64-block words starting at `base` (a multiple of 64). Blocks before it
/// count as finished.
struct Finished {
    base: u32,
    words: [u64; Finished::WORDS],
}

impl Finished {
    const WORDS: usize = 16;

    fn word(b: u32) -> usize {
        (b / 64) as usize % Self::WORDS
    }

    fn in_window(&self, b: u32) -> bool {
        b >= self.base && (b - self.base) / 64 < Self::WORDS as u32
    }

    fn is_done(&self, b: u32) -> bool {
        b < self.base || self.in_window(b) && self.words[Self::word(b)] >> (b % 64) & 1 == 1
    }

    fn mark(&mut self, b: u32) {
        if b < self.base {
            return;
        }
        // Slide whole words until `b` fits, forgetting the oldest.
        let mut slid = 0;
        while !self.in_window(b) && slid < Self::WORDS {
            self.words[Self::word(self.base)] = 0;
            self.base += 64;
            slid += 1;
        }
        if !self.in_window(b) {
            self.words = [0; Self::WORDS];
            self.base = b - b % 64;
        }
        self.words[Self::word(b)] |= 1 << (b % 64);
    }
}

/// Rebuilds lost source packets from any `k'` of a block's `k' + m` shards
/// (`k'`: the sources it really holds), with a fixed pool of block slots.
pub struct FecDecoder {
    codecs: CodecCache,
    slots: Vec<Slot>,
    finished: Finished,
    max_wait: Duration,
    next_expiry: Time,
    stats: FecCounts,
    /// Largest code accepted: (k, m).
    max_code: (usize, usize),
}

impl FecDecoder {
    /// `max_blocks` bounds the open blocks (and so memory); `max_wait` is how
    /// long a block may wait for its shards after its first one arrived.
    pub fn new(max_blocks: usize, max_wait: Duration) -> Self {
        Self {
            codecs: CodecCache::new(4),
            slots: (0..max_blocks.max(1)).map(|_| Slot::empty()).collect(),
            finished: Finished {
                base: 0,
                words: [0; Finished::WORDS],
            },
            max_wait,
            next_expiry: Time::MAX,
            stats: FecCounts::default(),
            max_code: (256, 256),
        }
    }

    /// Bytes `max_blocks` slots take once each has held a block of
    /// `shards` shards (slots are filled lazily: this is the most).
    pub fn memory(max_blocks: usize, shards: usize) -> u64 {
        let slot = shards * super::shards::STRIDE + 63 + std::mem::size_of::<Slot>();
        (max_blocks.max(1) * slot) as u64
    }

    /// Refuse (count as inconsistent) blocks with more than `k` sources or
    /// `m` repairs: the session's negotiated code bounds each slot's
    /// storage, whatever a packet claims.
    pub fn limit_code(mut self, k: usize, m: usize) -> Self {
        self.max_code = (k.max(1), m.max(1));
        self
    }

    /// Counters so far.
    pub fn stats(&self) -> FecCounts {
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
        let slot = &mut self.slots[i];
        let idx = pos.index as usize;
        if slot.has(idx) {
            return;
        }
        slot.data.get_mut(idx)[..shard.len()].copy_from_slice(shard);
        slot.lens[idx] = shard.len() as u16;
        slot.min_len = slot.min_len.min(shard.len());
        slot.max_len = slot.max_len.max(shard.len());
        slot.set(idx);
        slot.top = slot.top.max(idx + 1);
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
        let slot = &mut self.slots[i];
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
        slot.data.get_mut(idx)[..parity.len()].copy_from_slice(parity);
        slot.set(idx);
        slot.top = slot.top.max(idx + 1);
        slot.n_rep += 1;
        self.progress(i, deliver);
    }

    /// `block` is open and known beyond rebuilding (more of its shards lost
    /// than it has repairs); true once per block, so retransmission can be
    /// asked for without waiting for the rest of it.
    pub fn take_hopeless(&mut self, block: u32) -> bool {
        match self.slots.iter_mut().find(|s| s.active && s.block == block) {
            Some(s) if !s.told && s.hopeless() => {
                s.told = true;
                true
            }
            _ => false,
        }
    }

    /// Give up blocks whose wait has run out.
    pub fn expire(&mut self, now: Time) {
        if now < self.next_expiry {
            return;
        }
        let mut next = Time::MAX;
        for i in 0..self.slots.len() {
            let s = &self.slots[i];
            if !s.active {
                continue;
            }
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
        if k > self.max_code.0 || m > self.max_code.1 {
            self.stats.inconsistent += 1;
            return None;
        }
        if let Some(i) = self
            .slots
            .iter()
            .position(|s| s.active && s.block == pos.block)
        {
            let s = &self.slots[i];
            if s.k != k || s.m != m {
                self.stats.inconsistent += 1;
                return None;
            }
            return Some(i);
        }
        let i = match self.slots.iter().position(|s| !s.active) {
            Some(i) => i,
            None => {
                let oldest = (0..self.slots.len())
                    .min_by_key(|&i| self.slots[i].opened)
                    .expect("pool is not empty");
                self.release(oldest, true);
                oldest
            }
        };
        self.slots[i].open(pos.block, k, m, now);
        self.next_expiry = self.next_expiry.min(now + self.max_wait);
        Some(i)
    }

    fn release(&mut self, i: usize, gave_up: bool) {
        let s = &mut self.slots[i];
        if !s.active {
            return;
        }
        s.active = false;
        if gave_up && s.missing_sources() {
            self.stats.blocks_failed += 1;
        }
        self.finished.mark(s.block);
    }

    /// Rebuild if the block can be, and release it once it is whole.
    fn progress(&mut self, i: usize, deliver: &mut dyn FnMut(&SourceMeta, &[u8])) {
        let slot = &mut self.slots[i];
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
        if slot.max_len > shard_len {
            self.stats.inconsistent += 1;
            self.release(i, true);
            return;
        }
        // Pad short sources with zeros; sources beyond `sources` never
        // existed: zero shards (shortened code).
        if slot.min_len < shard_len || sources < k {
            for idx in 0..k {
                if idx >= sources {
                    slot.data.get_mut(idx)[..shard_len].fill(0);
                } else if slot.has(idx) {
                    let len = slot.lens[idx] as usize;
                    slot.data.get_mut(idx)[len..shard_len].fill(0);
                }
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
        let slot = &mut self.slots[i];
        let mut shards: SmallVec<[(&mut [u8], bool); 32]> = slot
            .data
            .iter_mut(k + m, shard_len)
            .enumerate()
            .map(|(idx, c)| (c, has(idx)))
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
            match parse_shard(&slot.data.get(idx)[..shard_len]) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finished_window_slides_and_forgets_the_oldest() {
        let mut f = Finished {
            base: 0,
            words: [0; Finished::WORDS],
        };
        f.mark(5);
        assert!(f.is_done(5) && !f.is_done(6));
        f.mark(1024 + 70); // slides two words: blocks 0..128 count as done
        assert!(f.is_done(5) && f.is_done(100), "before the window: done");
        assert!(f.is_done(1094) && !f.is_done(1093));
        f.mark(1_000_000);
        assert!(f.is_done(1_000_000) && !f.is_done(1_000_001));
        assert!(f.is_done(1094), "long forgotten counts as done");
    }
}
