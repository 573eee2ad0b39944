//! A simulated one-way link: an [`Impairer`] deciding each packet's fate and
//! a queue of packets in flight, delivered in arrival-time order.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::impair::{ImpairStats, Impairer, Impairment};
use crate::time::Time;

/// One direction of a simulated network path.
pub struct SimLink {
    imp: Impairer,
    /// (arrival, send order, packet): ties leave in send order.
    flight: BinaryHeap<Reverse<(Time, u64, Vec<u8>)>>,
    order: u64,
    pool: Vec<Vec<u8>>,
}

impl SimLink {
    /// A link impaired by `cfg`, drawing from `seed`; outages count from
    /// `origin`.
    pub fn new(cfg: Impairment, seed: u64, origin: Time) -> Self {
        Self {
            imp: Impairer::new(cfg, seed, origin),
            flight: BinaryHeap::new(),
            order: 0,
            pool: Vec::new(),
        }
    }

    /// What the impairment model did so far.
    pub fn stats(&self) -> ImpairStats {
        self.imp.stats()
    }

    /// Send a packet at `now`.
    pub fn send(&mut self, now: Time, bytes: &[u8]) {
        let fate = self.imp.decide(now, bytes.len());
        for at in fate.at.into_iter().flatten() {
            let mut buf = self.pool.pop().unwrap_or_default();
            buf.clear();
            buf.extend_from_slice(bytes);
            self.order += 1;
            self.flight.push(Reverse((at, self.order, buf)));
        }
    }

    /// When the next packet arrives.
    pub fn next_delivery(&self) -> Option<Time> {
        self.flight.peek().map(|Reverse((t, _, _))| *t)
    }

    /// A packet that has arrived by `now`. Hand it back with [`recycle`]
    /// to reuse its buffer.
    ///
    /// [`recycle`]: SimLink::recycle
    pub fn recv(&mut self, now: Time) -> Option<Vec<u8>> {
        if self.next_delivery()? > now {
            return None;
        }
        self.flight.pop().map(|Reverse((_, _, b))| b)
    }

    /// Return a buffer from [`recv`](Self::recv) for reuse.
    pub fn recycle(&mut self, buf: Vec<u8>) {
        self.pool.push(buf);
    }

    /// Packets (and duplicates) not delivered yet.
    pub fn in_flight(&self) -> usize {
        self.flight.len()
    }
}
