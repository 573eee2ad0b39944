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
    loss: Option<f64>,
}

impl FecAdapter {
    /// `target`: residual loss to stay under; `floor`: the configured `m`;
    /// `k`: the configured `k` (bounds `m` so `k + m <= 256`, `m <= k`).
    pub fn new(target: f64, k: u8, floor: u8) -> Self {
        let cap = (k as u16).min(256 - k as u16).max(floor as u16) as u8;
        Self {
            target,
            k,
            floor,
            cap,
            loss: None,
        }
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
        let k = k.max(1);
        let floor = self.floor_for(k);
        let Some(loss) = self.loss else {
            return (floor as u16 * 2).min(self.cap as u16) as u8;
        };
        let p = (loss * SAFETY).min(0.5);
        if p == 0.0 {
            return floor;
        }
        (floor..=self.cap)
            .find(|&m| mds_residual(Loss::Bernoulli { p }, k, m as usize, depth) <= self.target)
            .unwrap_or(self.cap)
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

    #[test]
    fn the_cap_bounds_m() {
        let mut a = FecAdapter::new(1e-12, 4, 2);
        a.observe(400, 1000);
        assert_eq!(a.choose(4, 1), 4, "m <= k");
    }
}
