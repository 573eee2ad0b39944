//! Maps the sender's media clock to the local clock.
//!
//! The offset is the minimum of (arrival - media time) over a sliding window:
//! the fastest packet's path, which queueing only ever delays. Playout adds
//! the target latency to it. The window slides, so slow clock drift is
//! followed; bucketed minima keep it O(1) in time and memory.

use crate::time::Time;

const BUCKETS: usize = 32;

/// Sliding-window minimum of (arrival - media time), in 32 buckets.
#[derive(Debug, Clone)]
pub struct OffsetEstimator {
    bucket_us: u64,
    buckets: [(u64, i64); BUCKETS],
}

impl OffsetEstimator {
    /// `window_us`: how far back the minimum looks.
    pub fn new(window_us: u64) -> Self {
        Self {
            bucket_us: (window_us / BUCKETS as u64).max(1),
            buckets: [(u64::MAX, i64::MAX); BUCKETS],
        }
    }

    /// Record one packet: it arrived at `arrival` carrying media time `media_ts`.
    pub fn observe(&mut self, arrival: Time, media_ts: u64) {
        let sample = arrival.as_micros() as i64 - media_ts as i64;
        let id = arrival.as_micros() / self.bucket_us;
        let b = &mut self.buckets[(id % BUCKETS as u64) as usize];
        if b.0 != id {
            *b = (id, sample);
        } else {
            b.1 = b.1.min(sample);
        }
    }

    /// Minimum offset over the window ending at `now`, microseconds (local
    /// clock minus media time); `None` before any packet or after a silent
    /// window.
    pub fn estimate(&self, now: Time) -> Option<i64> {
        let id = now.as_micros() / self.bucket_us;
        self.buckets
            .iter()
            .filter(|b| b.0 != u64::MAX && b.0 + (BUCKETS as u64) > id)
            .map(|b| b.1)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimum_over_a_sliding_window() {
        let mut e = OffsetEstimator::new(3_200_000); // 100 ms buckets
        e.observe(Time::from_micros(1_000_000), 0); // offset 1 s
        e.observe(Time::from_micros(1_050_000), 100_000); // 0.95 s
        assert_eq!(e.estimate(Time::from_micros(1_100_000)), Some(950_000));
        // After the window, the old minimum is forgotten.
        e.observe(Time::from_micros(5_000_000), 3_000_000);
        assert_eq!(e.estimate(Time::from_micros(5_000_000)), Some(2_000_000));
    }
}
