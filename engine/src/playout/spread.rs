//! How much one-way delay varies: the highest minus the lowest transit time
//! (arrival minus the sender's timestamp) over a sliding window. A clock
//! offset between the hosts cancels out; what remains is the spread a
//! buffer must absorb for every packet, the slowest included, to be on time.

use crate::time::Time;

const BUCKETS: usize = 8;

/// Sliding-window maximum minus minimum of transit times, in 8 buckets.
#[derive(Debug, Clone)]
pub struct DelaySpread {
    bucket_us: u64,
    /// (bucket id, lowest, highest transit).
    buckets: [(u64, i64, i64); BUCKETS],
}

impl DelaySpread {
    /// `window_us`: how far back it looks.
    pub fn new(window_us: u64) -> Self {
        Self {
            bucket_us: (window_us / BUCKETS as u64).max(1),
            buckets: [(u64::MAX, i64::MAX, i64::MIN); BUCKETS],
        }
    }

    /// A packet arrived at `arrival`, `transit_us` after its sender
    /// timestamp (on the sender's clock).
    pub fn observe(&mut self, arrival: Time, transit_us: i64) {
        let id = arrival.as_micros() / self.bucket_us;
        let b = &mut self.buckets[(id % BUCKETS as u64) as usize];
        if b.0 != id {
            *b = (id, transit_us, transit_us);
        } else {
            b.1 = b.1.min(transit_us);
            b.2 = b.2.max(transit_us);
        }
    }

    /// Highest minus lowest transit over the window ending at `now`,
    /// microseconds; `None` before any packet or after a silent window.
    pub fn spread_us(&self, now: Time) -> Option<u64> {
        let id = now.as_micros() / self.bucket_us;
        let live = self
            .buckets
            .iter()
            .filter(|b| b.0 != u64::MAX && b.0 + (BUCKETS as u64) > id);
        let (lo, hi) = live.fold((i64::MAX, i64::MIN), |(lo, hi), b| {
            (lo.min(b.1), hi.max(b.2))
        });
        (lo <= hi).then(|| (hi - lo) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highest_minus_lowest_over_a_sliding_window() {
        let mut s = DelaySpread::new(800_000); // 100 ms buckets
        assert_eq!(s.spread_us(Time::from_micros(0)), None);
        // Transit alternates 15 +- 10 ms, on a clock 3 s off.
        for i in 0..100u64 {
            let jitter = [-10_000, 10_000, 0][(i % 3) as usize];
            s.observe(Time::from_micros(i * 1_000), 3_000_000 + 15_000 + jitter);
        }
        assert_eq!(s.spread_us(Time::from_micros(100_000)), Some(20_000));
        // A spike is remembered for the window, then forgotten.
        s.observe(Time::from_micros(150_000), 3_000_000 + 60_000);
        assert_eq!(s.spread_us(Time::from_micros(160_000)), Some(55_000));
        for i in 0..100u64 {
            s.observe(Time::from_micros(1_000_000 + i * 1_000), 3_015_000);
        }
        assert_eq!(s.spread_us(Time::from_micros(1_100_000)), Some(0));
    }
}
