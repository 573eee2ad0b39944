//! The sender's retransmission store: the last source datagrams of each
//! substream, a latency's worth, ready to be sent again on a NACK.
//!
//! Memory is one arena sized at accept; each substream owns a ring of slots
//! indexed by sequence number. What a NACK may cost is bounded by the store,
//! not by the NACK: a range is clipped to the packets still held, each
//! datagram is looked at in at most [`MAX_LOOKUPS`] slots, a packet is sent
//! again at most once a round trip and never past its deadline, and the
//! retransmissions never outnumber the source packets sent, but for
//! [`INITIAL_CREDIT`] (a credit of one per source packet, capped at the
//! store's size). Everything refused is
//! counted. A retransmission that is the last to fit before its deadline
//! (no round trip would be left to ask again) may go two or three times, a
//! little apart, when adaptive FEC says the path needs it: the chances the
//! round trips cannot give.

use std::collections::VecDeque;
use std::time::Duration;

use crate::stats::SenderStats;
use crate::time::Time;
use crate::wire::nack::{self, NackRange};
use crate::wire::packet::{MAX_DATAGRAM, mark_retransmit};

/// Slots examined per NACK datagram at most; the rest of it is ignored.
pub const MAX_LOOKUPS: usize = 512;
/// Most slots a substream's ring holds.
pub const MAX_SLOTS: usize = 4096;
/// Further copies waiting at most.
const MAX_PENDING: usize = 256;
/// Most copies of a last-chance retransmission.
pub const MAX_COPIES: u8 = 3;
/// Retransmissions allowed before any source packet is stored: the
/// retransmissions never outnumber the source packets sent by more.
pub const INITIAL_CREDIT: u64 = 16;

#[derive(Debug, Clone, Copy)]
struct Slot {
    seq: u32,
    valid: bool,
    len: u16,
    deadline: Time,
    last_sent: Option<Time>,
}

const EMPTY: Slot = Slot {
    seq: 0,
    valid: false,
    len: 0,
    deadline: Time::ZERO,
    last_sent: None,
};

struct Ring {
    id: u16,
    /// First slot of this ring in the arena.
    base: usize,
    slots: Vec<Slot>,
    /// Sequence number the next stored packet will have.
    next: u32,
    /// Packets stored so far, capped at the ring size.
    held: usize,
}

/// What a NACK asked for, answered or not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NackOutcome {
    /// Packets queued again.
    pub sent: u64,
    /// Named but sent again less than a round trip ago.
    pub suppressed: u64,
    /// Named but past their deadline.
    pub expired: u64,
    /// Named but not held (never sent, or overwritten).
    pub unknown: u64,
    /// Refused because retransmissions would outnumber source packets.
    pub throttled: u64,
}

/// A second copy to send: when, and which slot (ring, index, sequence).
#[derive(Debug, Clone, Copy)]
struct Pending {
    at: Time,
    ring: usize,
    slot: usize,
    seq: u32,
}

/// See the module documentation.
pub struct RetransmitStore {
    rings: Vec<Ring>,
    arena: Vec<u8>,
    credit: u64,
    credit_cap: u64,
    copies: u8,
    pending: VecDeque<Pending>,
    /// Further copies sent.
    pub copies_sent: u64,
}

impl RetransmitStore {
    /// One ring per substream: `(catalog id, slots)`, each rounded up to a
    /// power of two within 16..=[`MAX_SLOTS`]. Allocates everything now.
    pub fn new(subs: &[(u16, usize)]) -> Self {
        let mut base = 0;
        let rings: Vec<Ring> = subs
            .iter()
            .map(|&(id, n)| {
                let n = n.clamp(16, MAX_SLOTS).next_power_of_two();
                let r = Ring {
                    id,
                    base,
                    slots: vec![EMPTY; n],
                    next: 0,
                    held: 0,
                };
                base += n;
                r
            })
            .collect();
        Self {
            rings,
            arena: vec![0; base * MAX_DATAGRAM],
            credit: INITIAL_CREDIT,
            credit_cap: base as u64,
            copies: 1,
            pending: VecDeque::with_capacity(MAX_PENDING),
            copies_sent: 0,
        }
    }

    /// Copies of a last-chance retransmission (1 to [`MAX_COPIES`]).
    pub fn set_copies(&mut self, copies: u8) {
        self.copies = copies.clamp(1, MAX_COPIES);
    }

    /// When the next further copy is due.
    pub fn next_copy(&self) -> Option<Time> {
        self.pending.front().map(|p| p.at)
    }

    /// Emit the further copies due by `now` (still held, still in time).
    pub fn poll_copies(&mut self, now: Time, emit: &mut dyn FnMut(Time, &[u8])) {
        while let Some(p) = self.pending.front().copied().filter(|p| p.at <= now) {
            self.pending.pop_front();
            let r = &self.rings[p.ring];
            let slot = r.slots[p.slot];
            if !slot.valid || slot.seq != p.seq || now > slot.deadline || self.credit == 0 {
                continue;
            }
            self.credit -= 1;
            self.copies_sent += 1;
            let at = (r.base + p.slot) * MAX_DATAGRAM;
            emit(slot.deadline, &self.arena[at..at + slot.len as usize]);
        }
    }

    /// Slots over all substreams.
    pub fn capacity(&self) -> usize {
        self.rings.iter().map(|r| r.slots.len()).sum()
    }

    /// Keep substream `index`'s source datagram `seq` (deadline: when
    /// sending it stops being useful).
    pub fn put(&mut self, index: usize, seq: u32, deadline: Time, datagram: &[u8]) {
        let Some(r) = self.rings.get_mut(index) else {
            return;
        };
        let len = datagram.len().min(MAX_DATAGRAM);
        let i = seq as usize & (r.slots.len() - 1);
        r.slots[i] = Slot {
            seq,
            valid: true,
            len: len as u16,
            deadline,
            last_sent: None,
        };
        let at = (r.base + i) * MAX_DATAGRAM;
        self.arena[at..at + len].copy_from_slice(&datagram[..len]);
        r.next = seq.wrapping_add(1);
        r.held = (r.held + 1).min(r.slots.len());
        self.credit = (self.credit + 1).min(self.credit_cap);
    }

    /// Answer one NACK datagram at `now`: `emit(deadline, datagram)` gets
    /// each packet to send again (marked as a retransmission). `rtt`: the
    /// measured round trip, the least time between two sends of a packet.
    /// `Err` if the bytes are not a NACK (nothing is sent).
    pub fn on_nack(
        &mut self,
        now: Time,
        rtt: Duration,
        bytes: &[u8],
        emit: &mut dyn FnMut(Time, &[u8]),
    ) -> Result<NackOutcome, nack::NackError> {
        let ranges = nack::parse(bytes)?;
        let mut out = NackOutcome::default();
        let mut budget = MAX_LOOKUPS;
        for range in ranges {
            self.answer(now, rtt, range, &mut budget, &mut out, emit);
        }
        Ok(out)
    }

    /// Plan further copies of `(ring, slot)`, just sent at `now`, if it is
    /// the last chance (no round trip left to ask again) and copies are on:
    /// spread over what is left before the deadline, half a round trip
    /// apart at most (bursts end; a copy at once would share the first
    /// one's fate).
    fn more_copies(&mut self, now: Time, rtt: Duration, ring: usize, slot: usize) {
        let s = self.rings[ring].slots[slot];
        let left = s.deadline.saturating_since(now);
        if self.copies < 2 || left > rtt * 5 / 4 + Duration::from_millis(2) {
            return;
        }
        let gap = (rtt / 2)
            .clamp(Duration::from_millis(2), Duration::from_millis(25))
            .min(left / self.copies as u32);
        for c in 1..self.copies {
            if self.pending.len() >= MAX_PENDING {
                return;
            }
            let p = Pending {
                at: now + gap * c as u32,
                ring,
                slot,
                seq: s.seq,
            };
            let i = self.pending.partition_point(|q| q.at <= p.at);
            self.pending.insert(i, p);
        }
    }

    fn answer(
        &mut self,
        now: Time,
        rtt: Duration,
        range: NackRange,
        budget: &mut usize,
        out: &mut NackOutcome,
        emit: &mut dyn FnMut(Time, &[u8]),
    ) {
        let Some(ri) = self.rings.iter().position(|r| r.id == range.substream) else {
            out.unknown += range.count as u64;
            return;
        };
        let r = &mut self.rings[ri];
        // Sequence numbers relative to the next one: held are -held..0.
        let from = (range.first.wrapping_sub(r.next) as i32) as i64;
        let to = from + range.count as i64;
        let lo = from.max(-(r.held as i64));
        let hi = to.min(0);
        let inside = (hi - lo).max(0) as u64;
        out.unknown += range.count as u64 - inside;
        let mut rel = lo;
        while rel < hi {
            if *budget == 0 {
                out.unknown += (hi - rel) as u64;
                return;
            }
            *budget -= 1;
            let r = &mut self.rings[ri];
            let seq = r.next.wrapping_add(rel as i32 as u32);
            rel += 1;
            let i = seq as usize & (r.slots.len() - 1);
            let slot = &mut r.slots[i];
            if !slot.valid || slot.seq != seq {
                out.unknown += 1;
            } else if now > slot.deadline {
                out.expired += 1;
            } else if slot.last_sent.is_some_and(|t| now < t + rtt) {
                out.suppressed += 1;
            } else if self.credit == 0 {
                out.throttled += 1;
            } else {
                self.credit -= 1;
                slot.last_sent = Some(now);
                let at = (r.base + i) * MAX_DATAGRAM;
                let d = &mut self.arena[at..at + slot.len as usize];
                mark_retransmit(d);
                emit(slot.deadline, d);
                out.sent += 1;
                self.more_copies(now, rtt, ri, i);
            }
        }
    }
}

impl NackOutcome {
    /// Add to the sender's counters.
    pub fn count_into(&self, s: &mut SenderStats) {
        s.nack_suppressed += self.suppressed;
        s.nack_expired += self.expired;
        s.nack_unknown += self.unknown;
        s.nack_throttled += self.throttled;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::nack::NackWriter;
    use crate::wire::packet;

    fn nack(ranges: &[(u16, u32, u32)]) -> Vec<u8> {
        let mut w = NackWriter::new();
        for &(substream, first, count) in ranges {
            w.push(NackRange {
                substream,
                first,
                count,
            });
        }
        w.bytes().to_vec()
    }

    fn store_with(n: u32) -> RetransmitStore {
        let mut s = RetransmitStore::new(&[(7, 16)]);
        for seq in 0..n {
            let mut d = [0u8; 40];
            d[0] = packet::VERSION << 4;
            d[39] = seq as u8;
            s.put(0, seq, Time::from_micros(10_000 * seq as u64), &d);
        }
        s
    }

    #[test]
    fn answers_once_a_round_trip_and_never_late() {
        let mut s = store_with(20); // holds 4..20
        let rtt = Duration::from_micros(100);
        let mut sent = Vec::new();
        let mut emit = |_: Time, d: &[u8]| sent.push(d.to_vec());
        let t = Time::from_micros(120_001);
        let o = s.on_nack(t, rtt, &nack(&[(7, 12, 3)]), &mut emit).unwrap();
        assert_eq!((o.sent, o.expired), (2, 1), "seq 12 is past its deadline");
        let o = s.on_nack(t, rtt, &nack(&[(7, 13, 2)]), &mut emit).unwrap();
        assert_eq!(o.suppressed, 2, "within a round trip");
        let o = s
            .on_nack(t + rtt, rtt, &nack(&[(7, 13, 1)]), &mut emit)
            .unwrap();
        assert_eq!(o.sent, 1, "a round trip later");
        assert_eq!(sent.len(), 3);
        assert!(packet::parse(&sent[0]).is_err(), "test bytes are no packet");
        assert_eq!(sent[0][0] & 0x0F, 2, "marked as sent again");
        assert_eq!((sent[0][39], sent[1][39], sent[2][39]), (13, 14, 13));
    }

    #[test]
    fn hostile_ranges_are_clipped_counted_and_bounded() {
        let mut s = store_with(100); // holds 84..100
        let rtt = Duration::from_secs(1);
        let mut n = 0;
        let mut emit = |_: Time, _: &[u8]| n += 1;
        let t = Time::ZERO;
        let mut total = 0;
        let o = s
            .on_nack(t, rtt, &nack(&[(7, 0, 1 << 16)]), &mut emit)
            .unwrap();
        assert_eq!(o.sent, 16);
        total += o.sent;
        assert_eq!(o.unknown, (1 << 16) - 16);
        let o = s
            .on_nack(t, rtt, &nack(&[(9, 0, 5), (7, 200, 10)]), &mut emit)
            .unwrap();
        assert_eq!((o.sent, o.unknown), (0, 15), "other substream, future seqs");
        // The same range 64 times: suppressed, and looked at in at most
        // MAX_LOOKUPS slots.
        let flood: Vec<_> = (0..64).map(|i| (7, 84 + (i % 2), 16)).collect();
        let o = s.on_nack(t, rtt, &nack(&flood), &mut emit).unwrap();
        assert_eq!(o.sent, 0);
        assert_eq!(o.suppressed as usize, MAX_LOOKUPS);
        assert_eq!((n, total), (16, 16));
        assert!(s.on_nack(t, rtt, &[1, 2, 3], &mut |_, _| {}).is_err());
    }

    #[test]
    fn the_last_chance_goes_twice_when_asked_to() {
        let mut s = store_with(20); // deadlines 10 ms apart
        let rtt = Duration::from_millis(8);
        let mut sent = Vec::new();
        // Seq 15 is due at 150 ms: at 140 ms no round trip is left.
        let t = Time::from_micros(140_000);
        let ask = nack(&[(7, 15, 2)]);
        s.on_nack(t, rtt, &ask, &mut |_, d| sent.push(d[39]))
            .unwrap();
        assert_eq!(s.next_copy(), None, "one copy unless asked");
        s.set_copies(2);
        let later = t + rtt;
        s.on_nack(later, rtt, &ask, &mut |_, d| sent.push(d[39]))
            .unwrap();
        // 15 is due at 150 ms, 2 ms left: a copy 1 ms later; 16 is due at
        // 160, 12 ms left: a copy half a round trip later. Copies keep
        // their order whatever order they were planned in.
        let ms = Duration::from_millis;
        assert_eq!(s.next_copy(), Some(later + ms(1)));
        s.poll_copies(later + ms(1), &mut |_, d| sent.push(d[39]));
        assert_eq!(s.next_copy(), Some(later + ms(4)));
        s.poll_copies(later + ms(4), &mut |_, d| sent.push(d[39]));
        assert_eq!(sent, vec![15, 16, 15, 16, 15, 16]);
        assert_eq!(s.copies_sent, 2);
        assert_eq!(s.next_copy(), None);
    }

    #[test]
    fn retransmissions_never_outnumber_source_packets() {
        let mut s = RetransmitStore::new(&[(0, 64)]);
        let d = [packet::VERSION << 4; 40];
        for seq in 0..4 {
            s.put(0, seq, Time::MAX, &d);
        }
        let mut n = 0;
        let mut emit = |_: Time, _: &[u8]| n += 1;
        // Credit: 16 to start with, +4 sent. A zero round trip lets a
        // hostile receiver ask again and again.
        let mut throttled = 0;
        for _ in 0..10 {
            let o = s
                .on_nack(Time::ZERO, Duration::ZERO, &nack(&[(0, 0, 4)]), &mut emit)
                .unwrap();
            throttled += o.throttled;
        }
        assert_eq!(n, 20);
        assert_eq!(throttled, 20);
    }
}
