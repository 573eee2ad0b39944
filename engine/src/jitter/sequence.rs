//! Per-substream sequence tracking: duplicates, late arrivals, and the final
//! account of every source packet.
//!
//! A packet's fate is final once the playout has passed its first frame.
//! A gap is final once a later packet's frame has been passed (sequence
//! numbers and media times rise together within a substream), so residual
//! loss is counted exactly, without knowing the missing packets' times.
//! As packets become final, runs of lost ones are counted too: their mean
//! length is the burst length adaptive FEC models, and a run spanning more
//! than the latency is an outage, which no code within the budget fixes.

use crate::ingress::Via;
use crate::stats::PacketCounts;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Direct,
    /// Rebuilt by FEC in time.
    Recovered,
    /// Sent again on a NACK and arrived in time.
    Retransmitted,
    /// Arrived (or was rebuilt) after its frame was played.
    Late,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    seq: u64,
    state: State,
    ts: u64,
}

/// How a packet should be treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// New: place its payload.
    New,
    /// Seen before (directly or rebuilt): drop.
    Duplicate,
}

/// One substream's packet accounting ([`PacketCounts`]): a ring of recent
/// sequence numbers, finalised as the playout passes their frames.
#[derive(Debug)]
pub struct SequenceTracker {
    ring: Vec<Entry>,
    /// First sequence number not yet final.
    base: u64,
    highest: Option<u64>,
    /// First known-present entry after `base`, when `base` itself is a gap.
    hint: Option<u64>,
    /// Mid-stream join: `base` follows the lowest sequence number seen
    /// until the first packet is final.
    floating: bool,
    counts: PacketCounts,
    /// Lost packets in the run being committed (0: the last one arrived).
    run: u64,
    /// Media time of the last packet committed as arrived.
    last_ok_ts: Option<u64>,
    /// A run spanning more media time than this is an outage.
    outage_us: u64,
}

const EMPTY: Entry = Entry {
    seq: u64::MAX,
    state: State::Direct,
    ts: 0,
};

impl SequenceTracker {
    /// `window`: how many sequence numbers may be pending at once (rounded up
    /// to a power of two). Older pending gaps are finalised as lost.
    pub fn new(window: usize) -> Self {
        Self {
            ring: vec![EMPTY; Self::ring_len(window)],
            base: 0,
            highest: None,
            hint: None,
            floating: false,
            counts: PacketCounts::default(),
            run: 0,
            last_ok_ts: None,
            outage_us: u64::MAX,
        }
    }

    /// Runs of lost packets spanning more than `us` of media count as
    /// outages (see [`PacketCounts::outage_lost`]).
    pub fn set_outage(&mut self, us: u64) {
        self.outage_us = us;
    }

    /// The substream is joined mid-stream: accounting starts at the first
    /// packet seen (or an earlier one that arrives before anything is
    /// final), not at sequence number 0.
    pub fn start_anywhere(&mut self) {
        self.floating = true;
    }

    fn ring_len(window: usize) -> usize {
        window.next_power_of_two().max(64)
    }

    /// Bytes [`new`](Self::new) allocates for `window`.
    pub fn memory(window: usize) -> u64 {
        (Self::ring_len(window) * std::mem::size_of::<Entry>()) as u64
    }

    /// The counts so far (`expected`, `lost` and the rest only cover
    /// packets already final).
    pub fn counts(&self) -> &PacketCounts {
        &self.counts
    }

    /// For the playout to count `invalid` packets it refused.
    pub fn counts_mut(&mut self) -> &mut PacketCounts {
        &mut self.counts
    }

    fn slot(&self, s: u64) -> usize {
        (s as usize) & (self.ring.len() - 1)
    }

    fn known(&self, s: u64) -> Option<Entry> {
        let e = self.ring[self.slot(s)];
        (e.seq == s).then_some(e)
    }

    /// Widen a 32-bit sequence number next to the highest seen.
    fn extend(&self, seq: u32) -> Option<u64> {
        let Some(h) = self.highest else {
            return Some(seq as u64);
        };
        let delta = seq.wrapping_sub(h as u32) as i32 as i64;
        u64::try_from(h as i64 + delta).ok()
    }

    /// Record a source packet that arrived `via` the network, FEC or a
    /// retransmission. `late`: its first frame was already played.
    pub fn on_packet(&mut self, seq: u32, media_ts: u64, via: Via, late: bool) -> Arrival {
        let Some(s) = self.extend(seq) else {
            return Arrival::Duplicate;
        };
        if self.floating && (self.highest.is_none() || s < self.base) {
            self.base = s;
        }
        if let Some(e) = self.known(s) {
            match via {
                // The original of a packet rebuilt or sent again first is
                // no duplicate: it arrived, and if in time, it was never lost.
                Via::Direct if matches!(e.state, State::Recovered | State::Retransmitted) => {
                    self.counts.received += 1;
                    if !late && s >= self.base {
                        if e.state == State::Retransmitted {
                            self.counts.retransmit_redundant += 1;
                        }
                        let i = self.slot(s);
                        self.ring[i].state = State::Direct;
                    }
                }
                Via::Direct => self.counts.duplicate += 1,
                Via::Retransmitted => self.counts.retransmit_redundant += 1,
                Via::Rebuilt => {}
            }
            return Arrival::Duplicate;
        }
        if s < self.base {
            // Final already, and counted unrecovered: only note the arrival.
            match via {
                Via::Direct => {
                    self.counts.received += 1;
                    self.counts.late += 1;
                }
                Via::Retransmitted => self.counts.retransmit_late += 1,
                Via::Rebuilt => {}
            }
            let i = self.slot(s);
            if self.ring[i].seq == u64::MAX || self.ring[i].seq < s {
                self.ring[i] = Entry {
                    seq: s,
                    state: State::Late,
                    ts: media_ts,
                };
            }
            return Arrival::New;
        }
        let window = self.ring.len() as u64;
        if s >= self.base + window {
            self.force_final(s + 1 - window);
        }
        match via {
            Via::Direct => {
                self.counts.received += 1;
                if late {
                    self.counts.late += 1;
                }
            }
            Via::Retransmitted if late => self.counts.retransmit_late += 1,
            Via::Retransmitted | Via::Rebuilt => {}
        }
        let state = match (late, via) {
            (true, _) => State::Late,
            (false, Via::Direct) => State::Direct,
            (false, Via::Rebuilt) => State::Recovered,
            (false, Via::Retransmitted) => State::Retransmitted,
        };
        let i = self.slot(s);
        self.ring[i] = Entry {
            seq: s,
            state,
            ts: media_ts,
        };
        self.highest = Some(self.highest.map_or(s, |h| h.max(s)));
        if self.hint.is_some_and(|h| s < h) {
            self.hint = Some(s);
        }
        Arrival::New
    }

    /// One packet becomes final; `ts`: its media time, when known.
    fn commit(&mut self, state: Option<State>, ts: Option<u64>) {
        self.counts.expected += 1;
        match state {
            Some(State::Direct) => {
                if self.run > 0 {
                    let c = &mut self.counts;
                    c.loss_runs += 1;
                    let span = match (ts, self.last_ok_ts) {
                        (Some(t), Some(l)) => t.saturating_sub(l),
                        _ => 0,
                    };
                    if span > self.outage_us {
                        c.outage_runs += 1;
                        c.outage_lost += self.run;
                    }
                    self.run = 0;
                }
                if ts.is_some() {
                    self.last_ok_ts = ts;
                }
                return;
            }
            Some(State::Recovered) => {
                self.counts.lost += 1;
                self.counts.recovered += 1;
            }
            Some(State::Retransmitted) => {
                self.counts.lost += 1;
                self.counts.recovered += 1;
                self.counts.retransmitted += 1;
            }
            Some(State::Late) | None => {
                self.counts.lost += 1;
                self.counts.unrecovered += 1;
            }
        }
        self.run += 1;
    }

    /// Everything before `to` becomes final, present or not. Only the ring
    /// (what is within a window of the highest packet) can hold arrivals;
    /// numbers beyond it are lost in one step, so a sequence number that
    /// jumps by 2^31 costs one window of work, not 2^31 steps.
    fn force_final(&mut self, to: u64) {
        self.floating = false;
        let known_end = self.highest.map_or(self.base, |h| h.saturating_add(1));
        while self.base < to.min(known_end) {
            let e = self.known(self.base);
            self.commit(e.map(|e| e.state), e.map(|e| e.ts));
            self.base += 1;
        }
        if to > self.base {
            let n = to - self.base;
            let c = &mut self.counts;
            c.expected = c.expected.saturating_add(n);
            c.lost = c.lost.saturating_add(n);
            c.unrecovered = c.unrecovered.saturating_add(n);
            self.base = to;
        }
        self.hint = None;
    }

    /// The playout has played every frame before media time `played_to`:
    /// finalise what can be.
    pub fn finalize(&mut self, played_to: u64) {
        let Some(highest) = self.highest else { return };
        self.floating = false;
        while self.base <= highest {
            if let Some(e) = self.known(self.base) {
                if e.ts >= played_to {
                    return;
                }
                self.commit(Some(e.state), Some(e.ts));
                self.base += 1;
                continue;
            }
            // A gap: final once the next present packet is.
            let from = self
                .hint
                .filter(|&h| h > self.base)
                .unwrap_or(self.base + 1);
            let next = (from..=highest).find(|&s| self.known(s).is_some());
            let Some(next) = next else { return };
            let e = self.known(next).expect("found present");
            if e.ts >= played_to {
                self.hint = Some(next);
                return;
            }
            for _ in self.base..next {
                self.commit(None, None);
            }
            self.base = next;
            self.hint = None;
        }
    }

    /// End of stream: `total` packets were sent; everything is final.
    pub fn finish(&mut self, total: u64) {
        let end = total.max(self.highest.map_or(0, |h| h + 1));
        self.force_final(end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_become_unrecovered_once_passed() {
        let mut t = SequenceTracker::new(64);
        for s in [0u32, 1, 3, 4] {
            assert_eq!(
                t.on_packet(s, s as u64 * 10, Via::Direct, false),
                Arrival::New
            );
        }
        t.finalize(25); // frames before ts 25 played: 0, 1 and the gap 2
        assert_eq!(t.counts().lost, 0, "gap 2 is not final until 3 is");
        t.finalize(35);
        assert_eq!((t.counts().lost, t.counts().unrecovered), (1, 1));
        t.finish(6);
        assert_eq!((t.counts().lost, t.counts().unrecovered), (2, 2));
        assert_eq!(t.counts().received, 4);
    }

    #[test]
    fn recovered_duplicate_and_late() {
        let mut t = SequenceTracker::new(64);
        t.on_packet(0, 0, Via::Direct, false);
        t.on_packet(1, 10, Via::Rebuilt, false); // rebuilt, original never comes
        t.on_packet(2, 20, Via::Rebuilt, false); // rebuilt, then the original in time
        assert_eq!(t.on_packet(2, 20, Via::Direct, false), Arrival::Duplicate);
        assert_eq!(t.on_packet(0, 0, Via::Direct, false), Arrival::Duplicate);
        t.on_packet(3, 30, Via::Direct, true); // late
        t.finish(4);
        let c = t.counts();
        assert_eq!((c.lost, c.recovered, c.unrecovered, c.late), (2, 1, 1, 1));
        assert_eq!((c.received, c.duplicate), (3, 1));
    }

    #[test]
    fn arrival_after_final_counts_late_not_twice() {
        let mut t = SequenceTracker::new(64);
        t.on_packet(0, 0, Via::Direct, false);
        t.on_packet(2, 20, Via::Direct, false);
        t.finalize(30);
        assert_eq!(t.counts().unrecovered, 1);
        assert_eq!(t.on_packet(1, 10, Via::Direct, true), Arrival::New);
        assert_eq!((t.counts().unrecovered, t.counts().late), (1, 1));
        assert_eq!(t.on_packet(0, 0, Via::Direct, true), Arrival::Duplicate);
    }

    #[test]
    fn a_first_sequence_number_in_the_upper_half_is_new() {
        let mut t = SequenceTracker::new(64);
        assert_eq!(
            t.on_packet(3_000_000_000, 0, Via::Direct, false),
            Arrival::New
        );
        assert_eq!(
            t.on_packet(3_000_000_001, 10, Via::Direct, false),
            Arrival::New
        );
        assert_eq!(
            t.on_packet(3_000_000_000, 0, Via::Direct, false),
            Arrival::Duplicate
        );
    }

    #[test]
    fn a_mid_stream_start_counts_from_the_lowest_first_packet() {
        let mut t = SequenceTracker::new(64);
        t.start_anywhere();
        t.on_packet(5_002, 20, Via::Direct, false);
        t.on_packet(5_000, 0, Via::Rebuilt, false); // rebuilt before anything is final
        t.on_packet(5_003, 30, Via::Direct, false);
        t.finalize(35);
        let c = t.counts();
        assert_eq!(
            (c.expected, c.lost, c.recovered, c.unrecovered),
            (4, 2, 1, 1)
        );
        // Once accounting runs, an older number is late, not a new start.
        t.on_packet(4_000, 0, Via::Direct, true);
        assert_eq!(t.counts().expected, 4);
    }

    #[test]
    fn a_huge_jump_or_total_is_one_step() {
        let mut t = SequenceTracker::new(64);
        t.on_packet(0, 0, Via::Direct, false);
        t.on_packet(i32::MAX as u32, 10, Via::Direct, false);
        assert_eq!(t.counts().expected, (1 << 31) - 64);
        t.finish(u64::MAX);
        assert_eq!(t.counts().expected, u64::MAX, "saturates, never wraps");
    }

    #[test]
    fn window_overflow_finalises_oldest() {
        let mut t = SequenceTracker::new(64);
        t.on_packet(0, 0, Via::Direct, false);
        t.on_packet(100, 1000, Via::Direct, false);
        assert_eq!(
            t.counts().unrecovered,
            100 - 64,
            "seqs 1..=36 fall out of the window"
        );
    }

    #[test]
    fn retransmissions_useful_late_and_redundant() {
        let mut t = SequenceTracker::new(64);
        t.on_packet(0, 0, Via::Direct, false);
        t.on_packet(1, 10, Via::Retransmitted, false); // in time: useful
        t.on_packet(2, 20, Via::Rebuilt, false);
        t.on_packet(2, 20, Via::Retransmitted, false); // FEC was first
        t.on_packet(3, 30, Via::Retransmitted, false);
        t.on_packet(3, 30, Via::Direct, false); // only delayed: not lost
        t.on_packet(4, 40, Via::Retransmitted, true); // too late
        t.finish(5);
        let c = t.counts();
        assert_eq!((c.lost, c.recovered, c.retransmitted), (3, 2, 1));
        assert_eq!((c.retransmit_late, c.retransmit_redundant), (1, 2));
        assert_eq!(
            (c.unrecovered, c.received, c.duplicate, c.late),
            (1, 2, 0, 0)
        );
    }

    #[test]
    fn loss_runs_and_outages() {
        let mut t = SequenceTracker::new(256);
        t.set_outage(50);
        // Present: 0, 3, 4, 20 (media time 10 per packet): runs 1..=2 and
        // 5..=19; the second spans 160 > 50 of media.
        for s in [0u32, 3, 4, 20] {
            t.on_packet(s, s as u64 * 10, Via::Direct, false);
        }
        t.finish(21);
        let c = t.counts();
        assert_eq!((c.lost, c.loss_runs), (17, 2));
        assert_eq!((c.outage_runs, c.outage_lost), (1, 15));
    }
}
