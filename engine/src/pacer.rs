//! Pacer: decides how much media the sender may have produced by `now`.
//!
//! Live, media time runs with real time from the start. In file mode the
//! sender reads ahead at `fill` times real time up to the receiver's
//! credit: a lead ahead of the receiver's playout position. The playout
//! runs at real time, so the sender extrapolates the position on its own
//! clock, from the credit that arrived fastest over a sliding window (a
//! late credit, resent after a loss, only ever shows an older position):
//! in steady state the sender follows the playout one lead ahead, at real
//! time, and credits only correct it. Until the first credit the sender
//! assumes the playout started the moment it did (the earliest it could),
//! with the accept's high-water mark as the lead, so it never sends less
//! than the receiver will need.
//! A live source that has its own clock (a pipe, a sound card) is paced by
//! arrival instead: its media clock is its sample count, so every frame
//! may leave the moment its samples are in.

use std::time::Duration;

use crate::playout::clock::OffsetEstimator;
use crate::time::{Time, micros};
use crate::wire::control::Credit;

/// How far back the fastest credit is looked for.
const CREDIT_WINDOW: Duration = Duration::from_secs(8);

/// The sender's media allowance: how far frames may be produced by `now`.
#[derive(Debug, Clone)]
pub struct Pacer {
    live: bool,
    /// No allowance from the clock: the source's arrival paces it.
    arrival: bool,
    fill: f64,
    start: Option<Time>,
    paused: bool,
    /// File mode: media microseconds allowed so far, at `last`.
    pos: f64,
    last: Time,
    /// File mode: local time minus playout position, fastest credit first.
    offsets: OffsetEstimator,
    /// The latest estimate (kept through a silent window).
    offset: i64,
    /// Media allowed ahead of the playout position.
    lead: f64,
    /// Media allowed at once (file mode).
    head_start: f64,
}

impl Pacer {
    /// Media time runs with real time from [`start`](Self::start).
    pub fn live() -> Self {
        Self::file(1.0, 0, 0).with_live()
    }

    fn with_live(mut self) -> Self {
        self.live = true;
        self
    }

    /// Live, paced by the source's own arrival: whatever has arrived may
    /// be produced (media time is the sample count, not the system clock).
    pub fn arrival() -> Self {
        Self {
            arrival: true,
            ..Self::live()
        }
    }

    /// Paced by the source's arrival rather than by a clock.
    pub fn is_arrival(&self) -> bool {
        self.arrival
    }

    /// `fill`: speed below the credit (times real time, above 1);
    /// `head_start_us`: media allowed at once; `first_lead_us`: the lead
    /// until the first credit.
    pub fn file(fill: f64, head_start_us: u64, first_lead_us: u64) -> Self {
        Self {
            live: false,
            arrival: false,
            fill: fill.max(1.0 + 1e-3),
            start: None,
            paused: false,
            pos: 0.0,
            last: Time::ZERO,
            offsets: OffsetEstimator::new(micros(CREDIT_WINDOW)),
            offset: 0,
            lead: first_lead_us as f64,
            head_start: head_start_us.min(first_lead_us) as f64,
        }
    }

    /// Media time zero is `now`; nothing is allowed before this call.
    pub fn start(&mut self, now: Time) {
        self.start = Some(now);
        self.last = now;
        self.offset = now.as_micros() as i64;
        self.pos = self.head_start;
    }

    /// [`start`](Self::start) has been called.
    pub fn started(&self) -> bool {
        self.start.is_some()
    }

    /// Held by the receiver's PAUSE.
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// The credit's limit at `t` (file mode): the estimated playout
    /// position plus the lead.
    fn limit(&self, t: Time) -> f64 {
        (t.as_micros() as i64 - self.offset) as f64 + self.lead
    }

    /// Move the allowance to `now`: `fill` times real time below the
    /// limit, then along it (it moves at real time, slower than `fill`);
    /// never backwards when the limit dropped.
    fn advance(&mut self, now: Time) {
        if now <= self.last {
            return;
        }
        if let Some(o) = self.offsets.estimate(now) {
            self.offset = o;
        }
        if !self.paused {
            let limit = self.limit(now);
            if self.pos < limit {
                let run = now.diff_micros(self.last) as f64 * self.fill;
                self.pos = (self.pos + run).min(limit);
            }
        }
        self.last = now;
    }

    /// Hold production at `now` (file mode; live ignores it).
    pub fn pause(&mut self, now: Time) {
        self.advance(now);
        self.paused = true;
    }

    /// End a hold at `now`.
    pub fn resume(&mut self, now: Time) {
        self.advance(now);
        self.paused = false;
    }

    /// A credit from the receiver, read at `now` (file mode).
    pub fn credit(&mut self, now: Time, c: &Credit) {
        self.advance(now);
        let now = now.max(self.last);
        self.offsets.observe(now, c.position_us);
        if let Some(o) = self.offsets.estimate(now) {
            self.offset = o;
        }
        self.lead = c.lead_us as f64;
    }

    /// Media time (microseconds) up to which frames may be produced.
    pub fn allowance(&mut self, now: Time) -> u64 {
        let Some(start) = self.start else { return 0 };
        if self.arrival {
            return u64::MAX;
        }
        if self.live {
            return now.saturating_since(start).as_micros() as u64;
        }
        self.advance(now);
        self.pos as u64
    }

    /// When the allowance reaches `media_us`; `None` while paused.
    pub fn wake_at(&self, media_us: u64) -> Option<Time> {
        let start = self.start?;
        if self.arrival {
            // New media wakes the driver, not a clock.
            return None;
        }
        if self.live {
            return Some(Time::from_micros(start.as_micros() + media_us));
        }
        if self.paused {
            return None;
        }
        let m = media_us as f64;
        let by_fill = self.last.as_micros() as f64 + ((m - self.pos).max(0.0) / self.fill);
        let by_credit = m - self.lead + self.offset as f64;
        Some(Time::from_micros(
            by_fill.max(by_credit).max(0.0).ceil() as u64
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(us: u64) -> Time {
        Time::from_micros(us)
    }

    #[test]
    fn file_mode_fills_fast_then_follows_the_assumed_playout() {
        let mut p = Pacer::file(2.0, 40_000, 160_000);
        assert_eq!(p.allowance(t(0)), 0, "not started");
        p.start(t(0));
        assert_eq!(p.allowance(t(0)), 40_000, "head start at once");
        assert_eq!(p.allowance(t(10_000)), 60_000, "twice real time");
        // Meets the running credit (160 ms + t) at t = 120 ms, then follows it.
        assert_eq!(p.wake_at(280_000), Some(t(120_000)));
        assert_eq!(p.allowance(t(120_000)), 280_000);
        assert_eq!(
            p.allowance(t(130_000)),
            290_000,
            "real time along the credit"
        );
        assert_eq!(p.wake_at(300_000), Some(t(140_000)));
    }

    #[test]
    fn credits_correct_the_position_and_a_late_one_changes_nothing() {
        let mut p = Pacer::file(2.0, 40_000, 160_000);
        p.start(t(0));
        assert_eq!(p.allowance(t(120_000)), 280_000, "assumed playing since 0");
        // The playout really started at 30 ms: it plays 90 ms as this
        // leaves, read 10 ms later; the lead is 150 ms.
        let c = |position_us, lead_us| Credit {
            position_us,
            lead_us,
        };
        p.credit(t(130_000), &c(90_000, 150_000));
        // Position estimate: 90 ms at 130 ms; limit 240 + (t - 130).
        // (It ran on the assumption until it read the credit: 290 ms.)
        assert_eq!(p.allowance(t(150_000)), 290_000, "waits, never back");
        assert_eq!(p.wake_at(291_000), Some(t(181_000)));
        assert_eq!(p.allowance(t(200_000)), 310_000, "follows it at real time");
        // A credit resent after a loss shows an older position: ignored.
        p.credit(t(300_000), &c(100_000, 150_000));
        assert_eq!(p.allowance(t(300_000)), 410_000);
        // A faster one moves the estimate forward; a new lead applies at once.
        p.credit(t(400_000), &c(365_000, 100_000));
        assert_eq!(p.allowance(t(450_000)), 515_000);
    }

    #[test]
    fn a_pause_holds_production_while_the_credit_runs_on() {
        let mut p = Pacer::file(2.0, 40_000, 160_000);
        p.start(t(0));
        assert_eq!(p.allowance(t(10_000)), 60_000);
        p.pause(t(10_000));
        assert_eq!(p.allowance(t(50_000)), 60_000);
        assert_eq!(p.wake_at(70_000), None);
        p.resume(t(50_000));
        assert_eq!(p.wake_at(70_000), Some(t(55_000)));
    }

    #[test]
    fn arrival_allows_whatever_has_arrived() {
        let mut p = Pacer::arrival();
        assert_eq!(p.allowance(Time::from_micros(5)), 0, "not started");
        p.start(Time::from_micros(1_000));
        assert_eq!(p.allowance(Time::from_micros(1_000)), u64::MAX);
        assert_eq!(p.wake_at(20_000), None, "new media wakes the driver");
        p.pause(Time::from_micros(2_000));
        assert_eq!(
            p.allowance(Time::from_micros(3_000)),
            u64::MAX,
            "live ignores pauses"
        );
    }

    #[test]
    fn live_follows_real_time() {
        let mut p = Pacer::live();
        assert_eq!(p.allowance(t(5)), 0, "not started");
        p.start(t(1_000));
        assert_eq!(p.allowance(t(11_000)), 10_000);
        assert_eq!(p.wake_at(20_000), Some(t(21_000)));
    }
}
