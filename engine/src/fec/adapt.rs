//! Adaptive FEC: repair shards chosen from the measured loss.
//!
//! A fixed code is either wasteful on a clean link or too weak on a bad one,
//! and a single failed block costs several packets at once. The adapter
//! keeps an estimate of the loss rate (fast to rise, slow to fall) and picks
//! the smallest `m` whose exact MDS residual loss, for the blocks the sender
//! really builds (`k` as the time budget lets them fill) and the
//! interleaving depth, meets a target. The configured code sets the floor
//! as a ratio: a block the time budget closes at half of `k` keeps at least
//! half of `m` (and one repair), so a short latency budget does not double
//! the overhead on a clean link. Until the first measurement it protects
//! with twice the floor.

use crate::sim::bound::mds_residual;
use crate::sim::impair::Loss;

/// Measured loss is inflated by this much before choosing: estimates from
/// a second of packets are noisy, and bursts hurt more than the Bernoulli
/// model assumes.
const SAFETY: f64 = 1.5;

/// Fewest packets a measurement must cover to count.
const MIN_SAMPLE: u64 = 50;

/// Picks the repair count `m` from the receiver's loss reports.
#[derive(Debug, Clone)]
pub struct FecAdapter {
    target: f64,
    k: u8,
    floor: u8,
    cap: u8,
    /// Most repair bytes per source byte spent on a block, whatever the
    /// loss reported (a receiver reporting 100 % loss must not make the
    /// sender triple its bandwidth).
    max_overhead: f64,
    loss: Option<f64>,
}

impl FecAdapter {
    /// `target`: residual loss to stay under; `floor`: the configured `m`;
    /// `k`: the configured `k` (bounds `m` so `k + m <= 256`, `m <= k`).
    pub fn new(target: f64, k: u8, floor: u8) -> Self {
        let cap = crate::wire::control::FecParams {
            k,
            m: floor,
            depth: 1,
            window_us: 0,
        }
        .max_repair();
        Self {
            target,
            k,
            floor,
            cap,
            max_overhead: 1.0,
            loss: None,
        }
    }

    /// Spend at most `ratio` repair shards per source shard (1.0: 100 %
    /// overhead, the default), never below the configured floor.
    pub fn with_max_overhead(mut self, ratio: f64) -> Self {
        self.max_overhead = if ratio.is_finite() {
            ratio.max(0.0)
        } else {
            1.0
        };
        self
    }

    /// The current loss estimate, once there is one.
    pub fn loss(&self) -> Option<f64> {
        self.loss
    }

    /// `lost` of `total` packets were lost over a measurement window.
    pub fn observe(&mut self, lost: u64, total: u64) {
        if total < MIN_SAMPLE {
            return;
        }
        let p = (lost as f64 / total as f64).min(1.0);
        self.loss = Some(match self.loss {
            Some(e) if p < e => 0.8 * e + 0.2 * p,
            _ => p,
        });
    }

    /// The configured ratio `m / k` applied to blocks of `k` sources.
    fn floor_for(&self, k: usize) -> u8 {
        let scaled = (self.floor as usize * k).div_ceil(self.k.max(1) as usize);
        scaled.clamp(1, self.floor as usize) as u8
    }

    /// Repair shards for blocks of `k` sources at interleaving `depth`.
    pub fn choose(&self, k: usize, depth: usize) -> u8 {
        self.choose_capped(k, depth).0
    }

    /// [`choose`](Self::choose), and whether the overhead cap held it
    /// below what the loss asked for.
    pub fn choose_capped(&self, k: usize, depth: usize) -> (u8, bool) {
        let k = k.max(1);
        let floor = self.floor_for(k);
        let limit = ((k as f64 * self.max_overhead).ceil() as u64)
            .min(self.cap as u64)
            .max(floor as u64) as u8;
        let want = match self.loss {
            None => (floor as u16 * 2).min(self.cap as u16) as u8,
            Some(loss) => {
                let p = (loss * SAFETY).min(0.5);
                if p == 0.0 {
                    floor
                } else {
                    (floor..=self.cap)
                        .find(|&m| {
                            mds_residual(Loss::Bernoulli { p }, k, m as usize, depth) <= self.target
                        })
                        .unwrap_or(self.cap)
                }
            }
        };
        (want.min(limit), want > limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protects_more_as_loss_rises_and_never_below_the_floor() {
        let mut a = FecAdapter::new(1e-5, 16, 4);
        assert_eq!(a.choose(16, 1), 8, "strong until measured");
        a.observe(0, 1000);
        assert_eq!(a.choose(16, 1), 4, "clean link: the configured floor");
        assert_eq!(a.choose(8, 1), 2, "half-filled blocks keep the ratio");
        assert_eq!(a.choose(2, 1), 1, "and at least one repair");
        a.observe(60, 1000); // 6 %
        let m6 = a.choose(9, 1);
        assert!(m6 > 4, "{m6}");
        assert!(mds_residual(Loss::Bernoulli { p: 0.09 }, 9, m6 as usize, 1) <= 1e-5);
        a.observe(200, 1000); // 20 %: rises at once
        assert!(a.choose(9, 1) > m6);
        a.observe(0, 1000); // falls slowly
        assert!(a.loss().unwrap() > 0.1);
        a.observe(5, 10);
        assert!(a.loss().unwrap() > 0.1, "tiny samples are ignored");
    }

    /// A receiver reporting total loss gets at most the overhead cap.
    #[test]
    fn total_loss_reported_is_capped_at_the_overhead_limit() {
        let mut a = FecAdapter::new(1e-4, 16, 4);
        a.observe(1000, 1000);
        // Blocks the time budget closes at ~5.5 sources: 100 % at most.
        assert_eq!(a.choose_capped(6, 1), (6, true));
        let half = FecAdapter::new(1e-4, 16, 4).with_max_overhead(0.5);
        assert_eq!(
            half.choose(16, 1),
            8,
            "before any report: twice the floor, within 50 %"
        );
        let floor = FecAdapter::new(1e-4, 16, 4).with_max_overhead(0.0);
        assert_eq!(floor.choose(16, 1), 4, "never below the configured floor");
    }

    #[test]
    fn the_cap_bounds_m() {
        let mut a = FecAdapter::new(1e-12, 4, 2);
        a.observe(400, 1000);
        assert_eq!(a.choose(4, 1), 4, "m <= k");
    }
}
