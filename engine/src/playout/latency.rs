//! Adaptive target latency (`--latency auto[:MIN..MAX]`), as NetEq does:
//! the target follows a high percentile of each packet's delay above the
//! fastest path, from a histogram whose old counts fade with time, so it
//! rises within a fraction of a second of a jitter spike and comes back
//! down some twenty seconds after the jitter falls. A packet later than
//! the target lifts it at once (with half again as headroom), so a spike
//! costs its first few packets, not the time the percentile takes. Margin for FEC (a
//! block's wait) is added, the result held within the bounds.
//!
//! The playout applies it to the anchor: a rise at once between frames
//! (the next frame is simply due later; file sinks write the same samples,
//! device sinks stretch through their drift loop), a fall slewed.

use std::time::Duration;

use crate::time::{Time, micros};

/// Histogram bin width, microseconds.
const BIN_US: u64 = 500;
/// Counts fade by `FADE` every `FADE_EVERY_US`: a time constant of 5 s.
const FADE_EVERY_US: u64 = 100_000;
const FADE: f64 = 0.980_198_673_306_755_8; // exp(-0.1 / 5)

/// Bounds of an adaptive latency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatencyBounds {
    /// Never below this (also what the FEC window is sized from).
    pub min: Duration,
    /// Never above this (the sender's deadlines are set from it).
    pub max: Duration,
}

/// The adaptive target.
#[derive(Debug, Clone)]
pub struct AdaptiveLatency {
    bounds: LatencyBounds,
    /// Added to the delay percentile: FEC window x depth (a rebuilt packet
    /// comes when its block is complete) plus a tick of margin.
    margin_us: u64,
    quantile: f64,
    bins: Vec<f64>,
    total: f64,
    last_fade: Option<u64>,
    /// Raised at once by a packet later than the target (with headroom),
    /// fading as the histogram does: the first late packets of a spike
    /// lift the target before the percentile has seen enough of them.
    peak_us: f64,
    target_us: u64,
}

impl AdaptiveLatency {
    /// A target within `bounds`, `margin` above the `quantile` (e.g. 0.97)
    /// of delay above the fastest path; it starts at the minimum.
    pub fn new(bounds: LatencyBounds, margin: Duration, quantile: f64) -> Self {
        let bins = (micros(bounds.max) / BIN_US + 2) as usize;
        Self {
            bounds,
            margin_us: micros(margin),
            quantile: quantile.clamp(0.5, 0.9999),
            bins: vec![0.0; bins],
            total: 0.0,
            last_fade: None,
            peak_us: 0.0,
            target_us: micros(bounds.min),
        }
    }

    fn fade_to(&mut self, now: Time) {
        let t = now.as_micros();
        let Some(last) = self.last_fade else {
            self.last_fade = Some(t);
            return;
        };
        let steps = (t.saturating_sub(last) / FADE_EVERY_US).min(1_000);
        if steps == 0 {
            return;
        }
        let f = FADE.powi(steps as i32);
        for b in &mut self.bins {
            *b *= f;
        }
        self.total *= f;
        self.peak_us *= f;
        self.last_fade = Some(last + steps * FADE_EVERY_US);
    }

    /// A packet arrived at `now`, `above_us` later than the fastest path.
    pub fn observe(&mut self, now: Time, above_us: u64) {
        self.fade_to(now);
        let i = ((above_us / BIN_US) as usize).min(self.bins.len() - 1);
        self.bins[i] += 1.0;
        self.total += 1.0;
        if above_us + self.margin_us > self.target_us {
            let peak =
                (above_us as f64 * 1.5 + self.margin_us as f64).min(micros(self.bounds.max) as f64);
            self.peak_us = self.peak_us.max(peak);
            self.target_us = self.target_us.max(peak as u64);
        }
    }

    /// The target at `now`, microseconds.
    pub fn target_us(&mut self, now: Time) -> u64 {
        self.fade_to(now);
        if self.total > 0.0 {
            let want = self.total * self.quantile;
            let mut acc = 0.0;
            let mut q = self.bins.len() - 1;
            for (i, b) in self.bins.iter().enumerate() {
                acc += b;
                if acc >= want {
                    q = i;
                    break;
                }
            }
            let delay = (q as u64 + 1) * BIN_US;
            self.target_us = (delay + self.margin_us)
                .max(self.peak_us as u64)
                .clamp(micros(self.bounds.min), micros(self.bounds.max));
        }
        self.target_us
    }

    /// The bounds in force.
    pub fn bounds(&self) -> LatencyBounds {
        self.bounds
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use isochron_codecs::signal::Rng;

    #[test]
    fn rises_on_a_spike_and_falls_back_slowly() {
        let b = LatencyBounds {
            min: Duration::from_millis(5),
            max: Duration::from_millis(500),
        };
        let mut a = AdaptiveLatency::new(b, Duration::from_millis(2), 0.97);
        let mut rng = Rng::new(1);
        let mut t = 0u64;
        let mut run = |a: &mut AdaptiveLatency, secs: u64, jitter_ms: f64| {
            for _ in 0..secs * 100 {
                t += 10_000;
                a.observe(
                    Time::from_micros(t),
                    (rng.range(0.0, jitter_ms) * 1e3) as u64,
                );
            }
            a.target_us(Time::from_micros(t))
        };
        let calm = run(&mut a, 20, 2.0);
        assert!((4_000..=6_000).contains(&calm), "calm {calm}");
        let spike = run(&mut a, 1, 40.0);
        assert!(spike >= 30_000, "after 1 s of 40 ms jitter: {spike}");
        run(&mut a, 19, 40.0);
        let held = run(&mut a, 10, 2.0);
        assert!(held >= 30_000, "10 s after: still high {held}");
        let back = run(&mut a, 20, 2.0);
        assert!(back <= 6_000, "30 s after: back to {back}");
    }
}
