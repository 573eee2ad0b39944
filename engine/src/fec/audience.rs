//! Feedback from many listeners, reduced to what adaptive FEC serves.
//!
//! One stream, one FEC code, many listeners with different paths. The
//! publisher adapts to a high percentile of its audience's loss (by default
//! the 90th: the worst tenth is left to concealment rather than taxing
//! everyone), and the figure it adapts to is capped, so one listener behind
//! a terrible link, or a flood of hostile reports, cannot raise everyone's
//! overhead without bound. Memory is bounded too: at most `max_listeners`
//! are tracked, and those silent for a while are forgotten.

use std::collections::HashMap;
use std::time::Duration;

use crate::fec::adapt::LossSample;
use crate::time::Time;
use crate::wire::control::Report;

/// How the audience's loss is reduced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AudiencePolicy {
    /// Quantile of the listeners' loss to serve (0..=1; 0.9: all but the
    /// worst tenth).
    pub quantile: f64,
    /// Largest loss fraction FEC is asked to cover, whatever listeners say.
    pub max_loss: f64,
    /// Listeners tracked at once; reports from more are ignored (counted).
    pub max_listeners: usize,
    /// A listener silent this long is forgotten.
    pub forget_after: Duration,
}

impl Default for AudiencePolicy {
    fn default() -> Self {
        Self {
            quantile: 0.9,
            max_loss: 0.2,
            max_listeners: 4096,
            forget_after: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Listener {
    last: Report,
    heard: Time,
    /// The loss pattern between the last two reports.
    interval: Option<LossSample>,
}

/// The audience's reports, per listener id.
#[derive(Debug, Clone)]
pub struct Audience {
    policy: AudiencePolicy,
    listeners: HashMap<[u8; 16], Listener>,
    /// Reports from listeners beyond `max_listeners`.
    pub ignored: u64,
}

impl Audience {
    /// An empty audience.
    pub fn new(policy: AudiencePolicy) -> Self {
        Self {
            policy,
            listeners: HashMap::new(),
            ignored: 0,
        }
    }

    /// Listeners heard from lately.
    pub fn len(&self) -> usize {
        self.listeners.len()
    }

    /// No listener reports.
    pub fn is_empty(&self) -> bool {
        self.listeners.is_empty()
    }

    /// A listener's (cumulative) report arrived.
    pub fn on_report(&mut self, now: Time, id: [u8; 16], r: Report) {
        let full = self.listeners.len() >= self.policy.max_listeners;
        match self.listeners.get_mut(&id) {
            Some(l) => {
                l.interval = Some(LossSample::between(&l.last, &r));
                l.last = r;
                l.heard = now;
            }
            None if full => self.ignored += 1,
            None => {
                self.listeners.insert(
                    id,
                    Listener {
                        last: r,
                        heard: now,
                        interval: None,
                    },
                );
            }
        }
    }

    /// Forget silent listeners; then the loss pattern to adapt to over the
    /// latest intervals: the chosen quantile's listener (ranked by loss
    /// fraction, outages left out as adaptive FEC leaves them out), its
    /// losses and runs scaled down to `max_loss` when above it. `None`
    /// until a listener has reported twice.
    pub fn loss(&mut self, now: Time) -> Option<LossSample> {
        let forget = self.policy.forget_after;
        self.listeners
            .retain(|_, l| now.saturating_since(l.heard) <= forget);
        let fraction = |s: &LossSample| {
            let total = s.total.saturating_sub(s.outage_lost);
            s.lost.saturating_sub(s.outage_lost) as f64 / total.max(1) as f64
        };
        let mut intervals: Vec<(f64, LossSample)> = self
            .listeners
            .values()
            .filter_map(|l| l.interval)
            .filter(|s| s.total > 0)
            .map(|s| (fraction(&s), s))
            .collect();
        if intervals.is_empty() {
            return None;
        }
        intervals.sort_by(|a, b| a.0.total_cmp(&b.0));
        let n = intervals.len();
        let rank = ((self.policy.quantile.clamp(0.0, 1.0) * n as f64).ceil() as usize).clamp(1, n);
        let (p, mut s) = intervals[rank - 1];
        let cap = self.policy.max_loss.clamp(0.0, 1.0);
        if p > cap {
            // The same pattern (runs as long), at the capped rate.
            let scale = cap / p;
            let counted = s.lost.saturating_sub(s.outage_lost);
            let runs = s.runs.saturating_sub(s.outage_runs);
            // Counters are a listener's word: sums saturate.
            s.lost = s
                .outage_lost
                .saturating_add((counted as f64 * scale).round() as u64);
            s.runs = s
                .outage_runs
                .saturating_add(((runs as f64 * scale).round() as u64).max(1));
        }
        Some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(received: u64, lost: u64) -> Report {
        Report {
            received,
            lost,
            ..Report::default()
        }
    }

    fn id(i: u8) -> [u8; 16] {
        [i; 16]
    }

    #[test]
    fn the_worst_tenth_does_not_drive_fec_and_the_figure_is_capped() {
        let mut a = Audience::new(AudiencePolicy::default());
        let t0 = Time::from_micros(1_000_000);
        let t1 = t0 + Duration::from_secs(1);
        // 19 listeners at 2 % loss, one at 60 %.
        for i in 0..20u8 {
            a.on_report(t0, id(i), report(0, 0));
            let (got, lost) = if i == 7 { (40, 60) } else { (98, 2) };
            a.on_report(t1, id(i), report(got, lost));
        }
        let s = a.loss(t1).unwrap();
        assert_eq!((s.lost, s.total), (2, 100));
        // Three listeners, one bad: the quantile is the bad one, but capped
        // (its runs as long as they were: 80 lost in 20 runs of 4).
        let mut a = Audience::new(AudiencePolicy::default());
        for i in 0..3u8 {
            a.on_report(t0, id(i), report(0, 0));
            let (got, lost) = if i == 0 { (20, 80) } else { (99, 1) };
            let mut r = report(got, lost);
            r.loss_runs = if i == 0 { 20 } else { 1 };
            a.on_report(t1, id(i), r);
        }
        let s = a.loss(t1).unwrap();
        assert_eq!((s.lost, s.total, s.runs), (20, 100, 5), "capped at 20 %");
    }

    #[test]
    fn an_outage_neither_ranks_a_listener_nor_counts_as_random_loss() {
        let mut a = Audience::new(AudiencePolicy::default());
        let t0 = Time::from_micros(1_000_000);
        let t1 = t0 + Duration::from_secs(1);
        // Listener 0 lost 50 packets in one outage and 1 more; listener 1
        // lost 5 at random.
        let reports = [(49, 51, 2, 50, 1), (95, 5, 5, 0, 0)];
        for (i, &(got, lost, runs, outage_lost, outage_runs)) in reports.iter().enumerate() {
            a.on_report(t0, id(i as u8), report(0, 0));
            let r = Report {
                received: got,
                lost,
                loss_runs: runs,
                outage_lost,
                outage_runs,
                ..Report::default()
            };
            a.on_report(t1, id(i as u8), r);
        }
        // The worst (quantile 90 % of 2: the second ranked) is the one at 5
        // %: the outage's 50 do not rank listener 0 above it.
        let s = a.loss(t1).unwrap();
        assert_eq!((s.lost, s.total, s.runs, s.outage_lost), (5, 100, 5, 0));
    }

    /// A listener claiming every counter at its largest costs a capped
    /// figure, never a panic.
    #[test]
    fn a_listener_with_counters_at_their_largest_is_capped() {
        let mut a = Audience::new(AudiencePolicy::default());
        let t0 = Time::from_micros(1_000_000);
        let huge = Report {
            received: 10,
            lost: 1_000,
            loss_runs: 0,
            outage_lost: 0,
            outage_runs: u64::MAX,
            ..Report::default()
        };
        a.on_report(t0, id(1), Report::default());
        a.on_report(t0 + Duration::from_secs(1), id(1), huge);
        let s = a.loss(t0 + Duration::from_secs(1)).unwrap();
        assert_eq!(s.runs, u64::MAX);
        assert!(s.lost <= 1_000);
    }

    #[test]
    fn memory_is_bounded_and_silent_listeners_are_forgotten() {
        let policy = AudiencePolicy {
            max_listeners: 8,
            ..Default::default()
        };
        let mut a = Audience::new(policy);
        let t0 = Time::from_micros(1_000_000);
        for i in 0..100u8 {
            a.on_report(t0, id(i), report(0, 0));
        }
        assert_eq!((a.len(), a.ignored), (8, 92));
        assert_eq!(a.loss(t0 + Duration::from_secs(6)), None);
        assert!(a.is_empty());
    }
}
