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
            max_loss: 0.1,
            max_listeners: 4096,
            forget_after: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Listener {
    last: Report,
    heard: Time,
    /// Lost and total source packets between the last two reports.
    interval: Option<(u64, u64)>,
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
                let lost = r.lost.saturating_sub(l.last.lost);
                let got = r.received.saturating_sub(l.last.received);
                l.interval = Some((lost, lost + got));
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

    /// Forget silent listeners; then the loss to adapt to over the latest
    /// intervals, as (lost, total) packets: the chosen quantile's listener,
    /// its fraction capped at `max_loss`. `None` until a listener has
    /// reported twice.
    pub fn loss(&mut self, now: Time) -> Option<(u64, u64)> {
        let forget = self.policy.forget_after;
        self.listeners
            .retain(|_, l| now.saturating_since(l.heard) <= forget);
        let mut intervals: Vec<(f64, u64, u64)> = self
            .listeners
            .values()
            .filter_map(|l| l.interval)
            .filter(|&(_, total)| total > 0)
            .map(|(lost, total)| (lost as f64 / total as f64, lost, total))
            .collect();
        if intervals.is_empty() {
            return None;
        }
        intervals.sort_by(|a, b| a.0.total_cmp(&b.0));
        let n = intervals.len();
        let rank = ((self.policy.quantile.clamp(0.0, 1.0) * n as f64).ceil() as usize).clamp(1, n);
        let (p, lost, total) = intervals[rank - 1];
        let cap = self.policy.max_loss.clamp(0.0, 1.0);
        Some(if p > cap {
            ((cap * total as f64).round() as u64, total)
        } else {
            (lost, total)
        })
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
        assert_eq!(a.loss(t1), Some((2, 100)));
        // Three listeners, one bad: the quantile is the bad one, but capped.
        let mut a = Audience::new(AudiencePolicy::default());
        for i in 0..3u8 {
            a.on_report(t0, id(i), report(0, 0));
            let (got, lost) = if i == 0 { (20, 80) } else { (99, 1) };
            a.on_report(t1, id(i), report(got, lost));
        }
        assert_eq!(a.loss(t1), Some((10, 100)), "capped at 10 %");
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
