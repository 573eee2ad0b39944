//! A deadline heap of sessions: each slot has at most one wake-up time, and
//! moving it (earlier or later) is `O(log n)` in place, so a worker can keep
//! every session it serves scheduled without stale entries or allocation
//! once the slots exist.

/// An indexed binary min-heap of `(deadline, slot)`.
#[derive(Debug, Default)]
pub struct DeadlineHeap {
    /// Slots in heap order.
    heap: Vec<u32>,
    /// Per slot: its index in `heap`, or `NONE`.
    pos: Vec<u32>,
    /// Per slot: its deadline (meaningful while scheduled).
    key: Vec<u64>,
}

const NONE: u32 = u32::MAX;

impl DeadlineHeap {
    /// A heap with room for `slots` slots before it grows.
    pub fn with_capacity(slots: usize) -> Self {
        Self {
            heap: Vec::with_capacity(slots),
            pos: Vec::with_capacity(slots),
            key: Vec::with_capacity(slots),
        }
    }

    /// Slots scheduled.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Nothing scheduled.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// The earliest `(deadline, slot)`.
    pub fn peek(&self) -> Option<(u64, u32)> {
        self.heap.first().map(|&s| (self.key[s as usize], s))
    }

    /// Whether `slot` is scheduled, and when.
    pub fn deadline(&self, slot: u32) -> Option<u64> {
        let i = *self.pos.get(slot as usize)?;
        (i != NONE).then(|| self.key[slot as usize])
    }

    /// Schedule `slot` at `at`, moving it if it was scheduled already.
    pub fn schedule(&mut self, slot: u32, at: u64) {
        let s = slot as usize;
        if self.pos.len() <= s {
            self.pos.resize(s + 1, NONE);
            self.key.resize(s + 1, 0);
        }
        let old = self.key[s];
        self.key[s] = at;
        match self.pos[s] {
            NONE => {
                self.pos[s] = self.heap.len() as u32;
                self.heap.push(slot);
                self.up(self.heap.len() - 1);
            }
            i if at < old => self.up(i as usize),
            i => self.down(i as usize),
        }
    }

    /// Schedule `slot` at `at` unless it is due earlier already.
    pub fn schedule_by(&mut self, slot: u32, at: u64) {
        match self.deadline(slot) {
            Some(d) if d <= at => {}
            _ => self.schedule(slot, at),
        }
    }

    /// Unschedule `slot` (no-op if it was not scheduled).
    pub fn remove(&mut self, slot: u32) {
        let Some(&i) = self.pos.get(slot as usize) else {
            return;
        };
        if i == NONE {
            return;
        }
        let i = i as usize;
        let last = self.heap.len() - 1;
        self.swap(i, last);
        self.heap.pop();
        self.pos[slot as usize] = NONE;
        if i < self.heap.len() {
            self.down(i);
            self.up(i);
        }
    }

    /// Take the earliest slot if it is due by `now`.
    pub fn pop_due(&mut self, now: u64) -> Option<u32> {
        let (at, slot) = self.peek()?;
        if at > now {
            return None;
        }
        self.remove(slot);
        Some(slot)
    }

    fn less(&self, a: usize, b: usize) -> bool {
        let (sa, sb) = (self.heap[a] as usize, self.heap[b] as usize);
        (self.key[sa], sa) < (self.key[sb], sb)
    }

    fn swap(&mut self, a: usize, b: usize) {
        self.heap.swap(a, b);
        self.pos[self.heap[a] as usize] = a as u32;
        self.pos[self.heap[b] as usize] = b as u32;
    }

    fn up(&mut self, mut i: usize) {
        while i > 0 {
            let parent = (i - 1) / 2;
            if !self.less(i, parent) {
                break;
            }
            self.swap(i, parent);
            i = parent;
        }
    }

    fn down(&mut self, mut i: usize) {
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut m = i;
            if l < self.heap.len() && self.less(l, m) {
                m = l;
            }
            if r < self.heap.len() && self.less(r, m) {
                m = r;
            }
            if m == i {
                break;
            }
            self.swap(i, m);
            i = m;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[test]
    fn pops_in_deadline_order_and_moves_in_place() {
        let mut h = DeadlineHeap::default();
        h.schedule(3, 30);
        h.schedule(1, 10);
        h.schedule(2, 20);
        h.schedule(3, 5); // earlier
        h.schedule(1, 40); // later
        assert_eq!(h.len(), 3);
        assert_eq!(h.pop_due(4), None);
        assert_eq!(h.pop_due(100), Some(3));
        assert_eq!(h.pop_due(100), Some(2));
        h.schedule_by(1, 50); // already due earlier: stays at 40
        assert_eq!(h.deadline(1), Some(40));
        h.schedule_by(1, 35);
        assert_eq!(h.deadline(1), Some(35));
        assert_eq!(h.pop_due(100), Some(1));
        assert!(h.is_empty());
        h.remove(7);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Schedule(u32, u64),
        By(u32, u64),
        Remove(u32),
        Pop(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u32..40, 0u64..1000).prop_map(|(s, t)| Op::Schedule(s, t)),
            (0u32..40, 0u64..1000).prop_map(|(s, t)| Op::By(s, t)),
            (0u32..40).prop_map(Op::Remove),
            (0u64..1000).prop_map(Op::Pop),
        ]
    }

    proptest! {
        #[test]
        fn matches_a_sorted_model(ops in proptest::collection::vec(op(), 1..300)) {
            let mut h = DeadlineHeap::default();
            let mut model: BTreeMap<u32, u64> = BTreeMap::new();
            for o in ops {
                match o {
                    Op::Schedule(s, t) => { h.schedule(s, t); model.insert(s, t); }
                    Op::By(s, t) => {
                        h.schedule_by(s, t);
                        let e = model.entry(s).or_insert(t);
                        *e = (*e).min(t);
                    }
                    Op::Remove(s) => { h.remove(s); model.remove(&s); }
                    Op::Pop(now) => {
                        let want = model.iter().map(|(&s, &t)| (t, s)).min()
                            .filter(|&(t, _)| t <= now).map(|(_, s)| s);
                        prop_assert_eq!(h.pop_due(now), want);
                        if let Some(s) = want { model.remove(&s); }
                    }
                }
                prop_assert_eq!(h.len(), model.len());
                for (&s, &t) in &model {
                    prop_assert_eq!(h.deadline(s), Some(t));
                }
            }
        }
    }
}
