//! One direction's packets in flight: each waits for its delivery instant,
//! earliest first, and the queue is bounded in packets and bytes so a slow
//! or huge delay cannot grow the relay without limit.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use bytes::Bytes;

use crate::time::Time;

/// The queue is full: the packet was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Full;

/// A timer queue (binary heap) of packets bound for destinations of type `D`.
pub(super) struct DelayQueue<D> {
    heap: BinaryHeap<Entry<D>>,
    /// Insertion order: packets due at the same instant leave in the order
    /// they came, so a clean link never reorders.
    next_seq: u64,
    bytes: usize,
    max_packets: usize,
    max_bytes: usize,
}

struct Entry<D> {
    at: Time,
    seq: u64,
    data: Bytes,
    dest: D,
}

impl<D> PartialEq for Entry<D> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl<D> Eq for Entry<D> {}

impl<D> PartialOrd for Entry<D> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<D> Ord for Entry<D> {
    /// Reversed: `BinaryHeap` is a max-heap and we want the earliest on top.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

impl<D> DelayQueue<D> {
    pub(super) fn new(max_packets: usize, max_bytes: usize) -> Self {
        Self {
            heap: BinaryHeap::new(),
            next_seq: 0,
            bytes: 0,
            max_packets,
            max_bytes,
        }
    }

    /// Queue `data` for delivery at `at`. `Ok(true)` when it is now the
    /// earliest packet, so the delivery timer has to be brought forward.
    pub(super) fn push(&mut self, at: Time, data: Bytes, dest: D) -> Result<bool, Full> {
        if self.heap.len() >= self.max_packets || self.bytes + data.len() > self.max_bytes {
            return Err(Full);
        }
        let earliest = self.next_at().is_none_or(|t| at < t);
        self.bytes += data.len();
        self.heap.push(Entry {
            at,
            seq: self.next_seq,
            data,
            dest,
        });
        self.next_seq += 1;
        Ok(earliest)
    }

    /// When the earliest packet is due.
    pub(super) fn next_at(&self) -> Option<Time> {
        self.heap.peek().map(|e| e.at)
    }

    /// The earliest packet, if it is due by `now`.
    pub(super) fn pop_due(&mut self, now: Time) -> Option<(Time, Bytes, D)> {
        if self.next_at()? > now {
            return None;
        }
        let e = self.heap.pop()?;
        self.bytes -= e.data.len();
        Some((e.at, e.data, e.dest))
    }

    pub(super) fn len(&self) -> usize {
        self.heap.len()
    }

    pub(super) fn clear(&mut self) {
        self.heap.clear();
        self.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(us: u64) -> Time {
        Time::from_micros(us)
    }

    #[test]
    fn earliest_first_and_ties_in_arrival_order() {
        let mut q = DelayQueue::new(10, 1000);
        assert_eq!(q.push(t(30), Bytes::from_static(b"c"), 3), Ok(true));
        assert_eq!(q.push(t(10), Bytes::from_static(b"a"), 1), Ok(true));
        assert_eq!(q.push(t(10), Bytes::from_static(b"b"), 2), Ok(false));
        assert_eq!(q.next_at(), Some(t(10)));
        assert!(q.pop_due(t(9)).is_none(), "nothing early");
        let order: Vec<i32> = std::iter::from_fn(|| q.pop_due(t(100)).map(|(_, _, d)| d)).collect();
        assert_eq!(order, [1, 2, 3]);
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn bounded_in_packets_and_bytes() {
        let mut q = DelayQueue::new(2, 10);
        assert!(q.push(t(1), Bytes::from(vec![0; 6]), ()).is_ok());
        assert_eq!(
            q.push(t(1), Bytes::from(vec![0; 6]), ()),
            Err(Full),
            "bytes"
        );
        assert!(q.push(t(1), Bytes::from(vec![0; 4]), ()).is_ok());
        assert_eq!(q.push(t(1), Bytes::new(), ()), Err(Full), "packets");
        q.pop_due(t(1));
        assert!(
            q.push(t(1), Bytes::from(vec![0; 6]), ()).is_ok(),
            "room again"
        );
        q.clear();
        assert_eq!((q.len(), q.next_at()), (0, None));
    }
}
