//! Pacer: decides how much media the sender may have produced by `now`.
//!
//! Live, media time runs with real time from the start. In file mode the
//! sender reads ahead at `fill` times real time while the receiver has not
//! paused it, and stands still while paused; it starts with the low-water
//! mark's worth at once, so playback can begin after one round trip.
//! A live source that has its own clock (a pipe, a sound card) is paced by
//! arrival instead: its media clock is its sample count, so every frame
//! may leave the moment its samples are in.

use crate::time::Time;

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
}

impl Pacer {
    /// Media time runs with real time from [`start`](Self::start).
    pub fn live() -> Self {
        Self {
            live: true,
            arrival: false,
            fill: 1.0,
            start: None,
            paused: false,
            pos: 0.0,
            last: Time::ZERO,
        }
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

    /// `fill`: speed while resumed (times real time); `head_start_us`: media
    /// allowed at once.
    pub fn file(fill: f64, head_start_us: u64) -> Self {
        Self {
            live: false,
            arrival: false,
            fill,
            start: None,
            paused: false,
            pos: head_start_us as f64,
            last: Time::ZERO,
        }
    }

    /// Media time zero is `now`; nothing is allowed before this call.
    pub fn start(&mut self, now: Time) {
        self.start = Some(now);
        self.last = now;
    }

    /// [`start`](Self::start) has been called.
    pub fn started(&self) -> bool {
        self.start.is_some()
    }

    /// Paused by the receiver (file mode).
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    fn advance(&mut self, now: Time) {
        if !self.paused && now > self.last {
            self.pos += now.diff_micros(self.last) as f64 * self.fill;
        }
        self.last = self.last.max(now);
    }

    /// Stop the allowance at `now` (file mode; live ignores pauses).
    pub fn pause(&mut self, now: Time) {
        self.advance(now);
        self.paused = true;
    }

    /// Let the allowance run again from `now`.
    pub fn resume(&mut self, now: Time) {
        self.advance(now);
        self.paused = false;
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
        let wait = ((media_us as f64 - self.pos).max(0.0) / self.fill).ceil() as u64;
        Some(Time::from_micros(self.last.as_micros() + wait))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_mode_runs_fast_and_stops_when_paused() {
        let t = Time::from_micros;
        let mut p = Pacer::file(2.0, 40_000);
        p.start(t(0));
        assert_eq!(p.allowance(t(0)), 40_000);
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
        assert_eq!(p.allowance(Time::from_micros(5)), 0, "not started");
        p.start(Time::from_micros(1_000));
        assert_eq!(p.allowance(Time::from_micros(11_000)), 10_000);
        assert_eq!(p.wake_at(20_000), Some(Time::from_micros(21_000)));
    }
}
