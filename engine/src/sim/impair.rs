//! Network impairment model: what happens to each packet on a link.
//!
//! Used by the deterministic simulator and by the `netem` relay alike. All
//! randomness comes from one seeded generator, so a run is reproducible.
//! Order of effects: scheduled outages, the rate-limited bottleneck queue,
//! random loss (Bernoulli or Gilbert-Elliott), then delay with jitter,
//! reordering and duplication.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::time::{Time, micros};

/// Random loss.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Loss {
    /// No random loss.
    None,
    /// Each packet lost independently with this probability.
    Bernoulli {
        /// Loss probability per packet, 0..=1.
        p: f64,
    },
    /// Two-state Markov chain, loss only in the bad state: from good to bad
    /// with `p`, from bad to good with `r`. Mean loss `p / (p + r)`, mean
    /// burst `1 / r`.
    GilbertElliott {
        /// Probability per packet of going from good to bad.
        p: f64,
        /// Probability per packet of going from bad to good.
        r: f64,
    },
}

impl Loss {
    /// From a mean loss fraction and a mean burst length in packets (1:
    /// independent losses).
    pub fn from_mean(loss: f64, burst: f64) -> Loss {
        if loss <= 0.0 {
            Loss::None
        } else if burst <= 1.0 {
            Loss::Bernoulli { p: loss.min(1.0) }
        } else {
            let r = 1.0 / burst;
            let p = (loss * r / (1.0 - loss)).min(1.0);
            Loss::GilbertElliott { p, r }
        }
    }

    /// Long-run fraction of packets lost.
    pub fn mean(&self) -> f64 {
        match *self {
            Loss::None => 0.0,
            Loss::Bernoulli { p } => p,
            Loss::GilbertElliott { p, r } => p / (p + r),
        }
    }
}

/// A scheduled outage: nothing passes during `[start, start + duration)`,
/// measured from the link's origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outage {
    /// Offset from the link's origin.
    pub start: Duration,
    /// How long nothing passes.
    pub duration: Duration,
}

/// Everything a link does to packets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Impairment {
    /// Random loss model.
    pub loss: Loss,
    /// Fixed one-way delay.
    pub delay: Duration,
    /// Each packet's delay varies uniformly by up to this much either way.
    pub jitter: Duration,
    /// Fraction of packets held back an extra `reorder_by`.
    pub reorder: f64,
    /// Extra delay of a reordered packet.
    pub reorder_by: Duration,
    /// Fraction of packets delivered twice.
    pub duplicate: f64,
    /// Bottleneck rate in bits per second (0: unlimited).
    pub rate_bps: u64,
    /// Bottleneck queue limit, as queueing delay; a packet that would wait
    /// longer is dropped.
    pub queue_limit: Duration,
    /// Scheduled outages.
    pub outages: Vec<Outage>,
    /// Scheduled changes of `jitter`: from `.0` after the origin, jitter
    /// is `.1` (the last step passed wins).
    pub jitter_steps: Vec<(Duration, Duration)>,
}

impl Default for Impairment {
    fn default() -> Self {
        Self {
            loss: Loss::None,
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            reorder: 0.0,
            reorder_by: Duration::from_millis(5),
            duplicate: 0.0,
            rate_bps: 0,
            queue_limit: Duration::from_millis(200),
            outages: Vec::new(),
            jitter_steps: Vec::new(),
        }
    }
}

/// What the link did, counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImpairStats {
    /// Packets offered to the link.
    pub packets: u64,
    /// Copies delivered (a duplicated packet counts twice).
    pub delivered: u64,
    /// Dropped by the random loss model.
    pub lost: u64,
    /// Dropped during a scheduled outage.
    pub outage_drops: u64,
    /// Dropped because the bottleneck queue was over its limit.
    pub queue_drops: u64,
    /// Delivered late by `reorder_by`.
    pub reordered: u64,
    /// Delivered twice.
    pub duplicated: u64,
}

/// The fate of one packet: delivered at up to two instants, or dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fate {
    /// Arrival instants: the packet, then a duplicate if any; `[None, None]`
    /// when dropped.
    pub at: [Option<Time>; 2],
}

impl Fate {
    /// The packet is lost.
    pub const DROP: Fate = Fate { at: [None, None] };

    /// Nothing arrives.
    pub fn dropped(&self) -> bool {
        self.at[0].is_none()
    }
}

/// Decides each packet's fate.
pub struct Impairer {
    cfg: Impairment,
    origin: Time,
    rng: ChaCha8Rng,
    bad: bool,
    busy_until: Time,
    stats: ImpairStats,
}

impl Impairer {
    /// `origin`: the instant outages are measured from.
    pub fn new(cfg: Impairment, seed: u64, origin: Time) -> Self {
        Self {
            cfg,
            origin,
            rng: ChaCha8Rng::seed_from_u64(seed),
            bad: false,
            busy_until: origin,
            stats: ImpairStats::default(),
        }
    }

    /// The model in use.
    pub fn config(&self) -> &Impairment {
        &self.cfg
    }

    /// Counters so far.
    pub fn stats(&self) -> ImpairStats {
        self.stats
    }

    fn in_outage(&self, now: Time) -> bool {
        let t = now.saturating_since(self.origin);
        self.cfg
            .outages
            .iter()
            .any(|o| t >= o.start && t < o.start + o.duration)
    }

    fn lose(&mut self) -> bool {
        match self.cfg.loss {
            Loss::None => false,
            Loss::Bernoulli { p } => self.rng.random::<f64>() < p,
            Loss::GilbertElliott { p, r } => {
                let flip = self.rng.random::<f64>();
                self.bad = if self.bad { flip >= r } else { flip < p };
                self.bad
            }
        }
    }

    fn one_delay(&mut self, now: Time) -> Duration {
        let t = now.saturating_since(self.origin);
        let jitter = self
            .cfg
            .jitter_steps
            .iter()
            .filter(|s| s.0 <= t)
            .max_by_key(|s| s.0)
            .map_or(self.cfg.jitter, |s| s.1);
        let j = micros(jitter) as i64;
        let mut d = micros(self.cfg.delay) as i64;
        if j > 0 {
            d += self.rng.random_range(-j..=j);
        }
        Duration::from_micros(d.max(0) as u64)
    }

    /// Decide what happens to a packet of `len` bytes sent at `now`.
    pub fn decide(&mut self, now: Time, len: usize) -> Fate {
        self.stats.packets += 1;
        if self.in_outage(now) {
            self.stats.outage_drops += 1;
            return Fate::DROP;
        }
        let mut depart = now;
        if let Some(ns) = (len as u64 * 8 * 1_000_000_000).checked_div(self.cfg.rate_bps) {
            let start = self.busy_until.max(now);
            if start.saturating_since(now) > self.cfg.queue_limit {
                self.stats.queue_drops += 1;
                return Fate::DROP;
            }
            let ser = Duration::from_nanos(ns);
            depart = start + ser;
            self.busy_until = depart;
        }
        if self.lose() {
            self.stats.lost += 1;
            return Fate::DROP;
        }
        let mut first = depart + self.one_delay(now);
        if self.cfg.reorder > 0.0 && self.rng.random::<f64>() < self.cfg.reorder {
            self.stats.reordered += 1;
            first += self.cfg.reorder_by;
        }
        let second = (self.cfg.duplicate > 0.0 && self.rng.random::<f64>() < self.cfg.duplicate)
            .then(|| {
                self.stats.duplicated += 1;
                depart + self.one_delay(now)
            });
        self.stats.delivered += 1 + second.is_some() as u64;
        Fate {
            at: [Some(first), second],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measure(loss: Loss, n: usize) -> (f64, f64) {
        let cfg = Impairment {
            loss,
            ..Default::default()
        };
        let mut imp = Impairer::new(cfg, 7, Time::ZERO);
        let (mut lost, mut bursts, mut prev) = (0usize, 0usize, false);
        for _ in 0..n {
            let l = imp.decide(Time::ZERO, 100).dropped();
            lost += l as usize;
            bursts += (l && !prev) as usize;
            prev = l;
        }
        (lost as f64 / n as f64, lost as f64 / bursts.max(1) as f64)
    }

    #[test]
    fn gilbert_elliott_hits_mean_loss_and_burst() {
        let (loss, burst) = measure(Loss::from_mean(0.05, 3.0), 400_000);
        assert!((loss - 0.05).abs() < 0.003, "loss {loss}");
        assert!((burst - 3.0).abs() < 0.15, "burst {burst}");
        let (loss, burst) = measure(Loss::from_mean(0.02, 1.0), 400_000);
        assert!((loss - 0.02).abs() < 0.002, "loss {loss}");
        assert!(burst < 1.1, "independent losses: burst {burst}");
    }

    #[test]
    fn outages_rate_and_jitter() {
        let ms = Duration::from_millis;
        let cfg = Impairment {
            delay: ms(20),
            jitter: ms(10),
            rate_bps: 8_000_000, // 1 byte per microsecond
            outages: vec![Outage {
                start: ms(100),
                duration: ms(50),
            }],
            ..Default::default()
        };
        let mut imp = Impairer::new(cfg, 1, Time::ZERO);
        let f = imp.decide(Time::from_micros(120_000), 1000);
        assert!(f.dropped(), "inside the outage");
        let f = imp.decide(Time::from_micros(200_000), 1000);
        let at = f.at[0].unwrap().as_micros();
        assert!(
            (211_000..=231_000).contains(&at),
            "1 ms serialisation + 20 +- 10 ms: {at}"
        );
        // A second packet at once waits for the first to serialise.
        let g = imp.decide(Time::from_micros(200_000), 1000);
        assert!(g.at[0].unwrap().as_micros() >= 212_000 - 10_000);
        assert_eq!(imp.stats().outage_drops, 1);
    }
}
