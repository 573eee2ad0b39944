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
//!
//! A session that retransmits and loses packets gets a round trip too, as
//! WebRTC's video timing adds the round trip to the jitter delay when it
//! relies on NACK: while the loss of the last tens of seconds (gaps that
//! did not come at all; late arrivals and outages left out) is at least
//! [`ARQ_ON`], the target holds FEC's wait, the spread, and one round of
//! retransmission (the round trip and the spread both ways, as file mode's
//! flow marks count it), if the bounds allow it. Without it the target
//! sat at the jitter's few milliseconds on a 100 ms round trip and hybrid
//! recovery had no time to ask: 1 % loss on `jitter-step-auto`'s path
//! lost 30-40 packets in 20 s. The sender plans FEC for that round
//! ([`recovery_us`](AdaptiveLatency::recovery_us), in the reports): its
//! FEC covers what one round cannot, the receiver gives the round as soon
//! as loss shows, and a clean path keeps the low latency and little FEC.

use std::time::Duration;

use crate::time::{Time, micros};

/// Histogram bin width, microseconds.
const BIN_US: u64 = 500;
/// Counts fade by `FADE` every `FADE_EVERY_US`: a time constant of 5 s.
const FADE_EVERY_US: u64 = 100_000;
const FADE: f64 = 0.980_198_673_306_755_8; // exp(-0.1 / 5)
/// Loss (of the packets whose fate is final, faded over [`LOSS_TAU_S`])
/// at which a retransmitting session's target takes in a round trip:
/// twice the default residual target, as the sender counts on the round
/// whenever it fits (a couple of losses in twenty seconds at 400 packets
/// a second).
pub const ARQ_ON: f64 = 2e-4;
/// Loss under which the round trip is let go again: a path losing one
/// packet in 10 000 keeps it rather than rising and falling with each.
pub const ARQ_OFF: f64 = 5e-5;
/// Time constant of the loss counts, seconds: longer than the delay's, as
/// losses are rarer than packets and each rise of the target is heard.
const LOSS_TAU_S: f64 = 20.0;
/// The loss rate is taken over at least this many packets (faded): a loss
/// among the first few hundred packets is not a rate yet.
const LOSS_MIN_PACKETS: f64 = 2_000.0;
/// Slack on one round (the planner's timer and its own slack).
const ROUND_SLACK_US: u64 = 1_000;
/// Slack on the whole floor, as file mode's marks have.
const ARQ_MARGIN_US: u64 = 5_000;

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
    /// The session retransmits; the round trip once measured.
    retransmits: bool,
    rtt_us: Option<u64>,
    /// Faded counts of packets lost (not late, not in outages) and of
    /// packets whose fate is final; the cumulative counts last seen.
    lost: f64,
    expected: f64,
    seen: Option<(u64, u64)>,
    /// Loss calls for a round of retransmission.
    arq: bool,
    /// The target holds one (it fits the bounds).
    holding: bool,
    /// The target with the round trip, whether held or not.
    recovery_us: u64,
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
            retransmits: false,
            rtt_us: None,
            lost: 0.0,
            expected: 0.0,
            seen: None,
            arq: false,
            holding: false,
            recovery_us: micros(bounds.min),
        }
    }

    /// The session retransmits lost packets (hybrid or ARQ recovery): loss
    /// lifts the target by a round of retransmission.
    pub fn with_retransmission(mut self) -> Self {
        self.retransmits = true;
        self
    }

    /// The transport's round trip.
    pub fn set_rtt(&mut self, rtt: Duration) {
        self.rtt_us = Some(micros(rtt));
    }

    /// The playout's cumulative counts at `now`: packets whose fate is
    /// final, and of them those lost on the way (neither late nor in an
    /// outage; rebuilt or retransmitted ones included: what recovery had
    /// to do, not what it failed at, or a target that let it succeed
    /// would let itself go).
    pub fn observe_counts(&mut self, now: Time, lost: u64, expected: u64) {
        self.fade_to(now);
        if let Some((l, e)) = self.seen {
            self.lost += lost.saturating_sub(l) as f64;
            self.expected += expected.saturating_sub(e) as f64;
        }
        self.seen = Some((lost, expected));
        // Over at least twice the packets the threshold is one in: a
        // single loss among the first few hundred is not a rate.
        let rate = self.lost / self.expected.max(LOSS_MIN_PACKETS);
        self.arq = self.retransmits
            && if self.arq {
                rate >= ARQ_OFF
            } else {
                rate >= ARQ_ON
            };
    }

    /// The target holds a round of retransmission now.
    pub fn holds_round_trip(&self) -> bool {
        self.holding
    }

    /// The latency retransmission can count on, microseconds, as of the
    /// last [`target_us`](Self::target_us): the target with the round
    /// trip that loss adds to it (if it fits; the target otherwise), held
    /// now or not. The sender plans FEC with it.
    pub fn recovery_us(&self) -> u64 {
        self.recovery_us
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
        let g = (-(steps as f64) * (FADE_EVERY_US as f64 / 1e6) / LOSS_TAU_S).exp();
        self.lost *= g;
        self.expected *= g;
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
            let (min, max) = (micros(self.bounds.min), micros(self.bounds.max));
            let jitter = (delay + self.margin_us).max(self.peak_us as u64);
            // FEC's wait, the spread until a gap is confirmed, and one
            // round (the round trip, the spread both ways); only if it
            // fits: a round trip beyond the bounds leaves FEC alone.
            let round = self
                .rtt_us
                .filter(|_| self.retransmits)
                .map(|rtt| self.margin_us + ARQ_MARGIN_US + 3 * delay + rtt + ROUND_SLACK_US)
                .filter(|&floor| floor <= max);
            self.recovery_us = jitter.max(round.unwrap_or(0)).clamp(min, max);
            self.holding = self.arq && round.is_some();
            self.target_us = if self.holding {
                self.recovery_us
            } else {
                jitter.clamp(min, max)
            };
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

    /// Feed `secs` of 400 packets a second, 2 ms of jitter, losing one in
    /// `every` (0: none); the target after.
    fn lossy(a: &mut AdaptiveLatency, t: &mut u64, secs: u64, every: u64) -> u64 {
        let mut rng = Rng::new(*t + 7);
        let (mut lost, mut expected) = a.seen.unwrap_or((0, 0));
        for i in 0..secs * 400 {
            *t += 2_500;
            expected += 1;
            if every > 0 && i % every == 0 {
                lost += 1;
            } else {
                a.observe(Time::from_micros(*t), (rng.range(0.0, 2.0) * 1e3) as u64);
            }
            if i % 40 == 0 {
                a.observe_counts(Time::from_micros(*t), lost, expected);
            }
        }
        a.target_us(Time::from_micros(*t))
    }

    /// 20 ms to `max_ms`, 12 ms of FEC margin, a 100 ms round trip.
    fn adaptive(max_ms: u64, retransmits: bool) -> AdaptiveLatency {
        let b = LatencyBounds {
            min: Duration::from_millis(20),
            max: Duration::from_millis(max_ms),
        };
        let a = AdaptiveLatency::new(b, Duration::from_millis(12), 0.97);
        let mut a = if retransmits {
            a.with_retransmission()
        } else {
            a
        };
        a.set_rtt(Duration::from_millis(100));
        a
    }

    #[test]
    fn loss_on_a_retransmitting_session_takes_in_a_round_trip_while_it_lasts() {
        let mut a = adaptive(500, true);
        let t = &mut 0;
        // FEC's wait + slack + 3 x ~2 ms + the round trip + slack.
        let round = 115_000..=130_000;
        let calm = lossy(&mut a, t, 10, 0);
        assert_eq!(calm, 20_000, "clean: the minimum");
        assert!(!a.holds_round_trip());
        assert!(round.contains(&a.recovery_us()), "{}", a.recovery_us());
        let at_1pc = lossy(&mut a, t, 2, 100);
        assert!(a.holds_round_trip());
        assert!(round.contains(&at_1pc), "{at_1pc}");
        assert_eq!(a.recovery_us(), at_1pc);
        let held = lossy(&mut a, t, 10, 0);
        assert!(
            a.holds_round_trip() && round.contains(&held),
            "10 s after: {held}"
        );
        let back = lossy(&mut a, t, 120, 0);
        assert!(!a.holds_round_trip());
        assert_eq!(back, 20_000, "2 min after");
    }

    #[test]
    fn no_round_trip_without_retransmission_beyond_the_bounds_or_for_a_rare_loss() {
        let mut fec = adaptive(500, false);
        let t = &mut 0;
        assert_eq!(lossy(&mut fec, t, 5, 50), 20_000, "FEC alone");
        assert!(!fec.holds_round_trip());
        assert_eq!(fec.recovery_us(), 20_000);
        let mut far = adaptive(100, true);
        let t = &mut 0;
        assert_eq!(lossy(&mut far, t, 5, 50), 20_000, "no round fits 100 ms");
        assert!(!far.holds_round_trip());
        assert_eq!(far.recovery_us(), 20_000);
        // One loss in 30 s (8e-5) once the rate has a base.
        let mut rare = adaptive(500, true);
        let t = &mut 0;
        lossy(&mut rare, t, 40, 0);
        for _ in 0..4 {
            assert_eq!(lossy(&mut rare, t, 30, 12_000), 20_000);
            assert!(!rare.holds_round_trip());
        }
    }
}
