//! The sender's bounded datagram queue, in front of the network.
//!
//! The engine owns this queue rather than letting the transport's buffer
//! silently drop the oldest datagram: it knows each datagram's deadline,
//! drops what is too late to matter before the network sees it, and counts
//! every drop. Buffers are recycled, so steady state does not allocate.

use std::collections::VecDeque;

use crate::time::Time;
use crate::wire::packet::MAX_DATAGRAM;

struct Queued {
    buf: Box<[u8]>,
    len: usize,
    deadline: Time,
}

/// A FIFO of ready datagrams, bounded in count, with a deadline each, and
/// a second FIFO ahead of it for datagrams that must not wait behind the
/// stream (retransmissions, already late by a round trip).
pub struct SendQueue {
    q: VecDeque<Queued>,
    urgent: VecDeque<Queued>,
    pool: Vec<Box<[u8]>>,
    current: Option<Box<[u8]>>,
    cap: usize,
    /// Live: a full queue drops its oldest; file mode never overflows (the
    /// producer stops first).
    drop_oldest: bool,
    /// Datagrams lost to a full queue (the oldest live, the newest in file
    /// mode).
    pub dropped_overflow: u64,
    /// Datagrams dropped by [`expire`](Self::expire).
    pub dropped_expired: u64,
}

impl SendQueue {
    /// At most `cap` datagrams (at least 16). `drop_oldest`: a full queue
    /// drops its oldest (live) rather than the new one.
    pub fn new(cap: usize, drop_oldest: bool) -> Self {
        let cap = cap.max(16);
        Self {
            q: VecDeque::with_capacity(cap),
            urgent: VecDeque::with_capacity(cap),
            pool: Vec::with_capacity(cap),
            current: None,
            cap,
            drop_oldest,
            dropped_overflow: 0,
            dropped_expired: 0,
        }
    }

    /// Datagrams queued.
    pub fn len(&self) -> usize {
        self.q.len() + self.urgent.len()
    }

    /// Nothing queued.
    pub fn is_empty(&self) -> bool {
        self.q.is_empty() && self.urgent.is_empty()
    }

    /// Most datagrams held at once.
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Queue a datagram written by `write` into a [`MAX_DATAGRAM`]-byte
    /// buffer (it returns the length). When the queue is full and drops the
    /// newest, `write` is not called.
    pub fn push(&mut self, deadline: Time, write: impl FnOnce(&mut [u8]) -> usize) {
        if self.q.len() >= self.cap {
            if self.drop_oldest {
                let old = self.q.pop_front().expect("full queue");
                self.pool.push(old.buf);
            }
            // Counted whether the oldest or the newest goes.
            self.dropped_overflow += 1;
            if !self.drop_oldest {
                return;
            }
        }
        let mut buf = self
            .pool
            .pop()
            .unwrap_or_else(|| vec![0u8; MAX_DATAGRAM].into_boxed_slice());
        let len = write(&mut buf);
        self.q.push_back(Queued { buf, len, deadline });
    }

    /// Queue a copy of `datagram` ahead of the stream (the newest urgent
    /// one goes when the urgent queue is full, counted as overflow).
    pub fn push_urgent(&mut self, deadline: Time, datagram: &[u8]) {
        if self.urgent.len() >= self.cap {
            self.dropped_overflow += 1;
            return;
        }
        let mut buf = self
            .pool
            .pop()
            .unwrap_or_else(|| vec![0u8; MAX_DATAGRAM].into_boxed_slice());
        let len = datagram.len().min(MAX_DATAGRAM);
        buf[..len].copy_from_slice(&datagram[..len]);
        self.urgent.push_back(Queued { buf, len, deadline });
    }

    fn front(&self) -> Option<&Queued> {
        self.urgent.front().or_else(|| self.q.front())
    }

    /// Length of the next datagram.
    pub fn front_len(&self) -> Option<usize> {
        self.front().map(|d| d.len)
    }

    /// Deadline of the next datagram.
    pub fn front_deadline(&self) -> Option<Time> {
        self.front().map(|d| d.deadline)
    }

    /// Take the next datagram; the slice stays valid until the next call.
    pub fn pop(&mut self) -> Option<&[u8]> {
        let d = self.urgent.pop_front().or_else(|| self.q.pop_front())?;
        if let Some(old) = self.current.replace(d.buf) {
            self.pool.push(old);
        }
        Some(&self.current.as_ref().expect("just set")[..d.len])
    }

    /// Drop datagrams at the front whose deadline has passed; returns how
    /// many. Stops at the first one still in time (deadlines are assumed to
    /// rise along the queue).
    pub fn expire(&mut self, now: Time) -> usize {
        let mut n = 0;
        for q in [&mut self.urgent, &mut self.q] {
            while q.front().is_some_and(|d| d.deadline < now) {
                let d = q.pop_front().expect("checked");
                self.pool.push(d.buf);
                n += 1;
            }
        }
        self.dropped_expired += n as u64;
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflow_and_expiry_are_counted() {
        let t = Time::from_micros;
        let mut q = SendQueue::new(16, true);
        for i in 0..20u8 {
            q.push(t(i as u64), |b| {
                b[0] = i;
                1
            });
        }
        assert_eq!(q.dropped_overflow, 4);
        assert_eq!(q.pop(), Some(&[4u8][..]), "the oldest went");
        assert_eq!(q.expire(t(10)), 5, "deadlines 5..=9 passed");
        assert_eq!(q.pop(), Some(&[10u8][..]));
        q.push_urgent(t(30), &[99]);
        assert_eq!(q.front_len(), Some(1));
        assert_eq!(q.pop(), Some(&[99u8][..]), "urgent goes first");
        assert_eq!(q.pop(), Some(&[11u8][..]));
    }
}
