//! The drivers' clock.
//!
//! `CLOCK_MONOTONIC` in microseconds: every process on a host reads the same
//! clock, so a sender and a receiver on one machine measure true one-way
//! delay from the sender timestamps. A speed factor scales time for both
//! ends (tests and benchmarks run faster than real time): from
//! `CLOCK_MONOTONIC`'s own zero, so two ends on one host started at
//! different instants still read the same scaled time (a clock scaled from
//! its own start would put the later end behind by the gap times the
//! factor minus one, and every delay measured across them would be off).

use std::time::{Duration, Instant};

use crate::time::Time;

/// Microseconds of `CLOCK_MONOTONIC`.
pub fn monotonic() -> Time {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we own; CLOCK_MONOTONIC
    // exists on every Linux and macOS.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    Time::from_micros(ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000)
}

/// Media time for the core: `CLOCK_MONOTONIC` scaled by `speed`.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// `CLOCK_MONOTONIC` when made.
    start: Time,
    /// The core's time then: `start` times `speed`.
    origin: Time,
    start_instant: Instant,
    speed: f64,
}

impl Clock {
    /// A clock running at `speed` times real time from now (a speed that is
    /// not finite and positive means 1).
    pub fn new(speed: f64) -> Self {
        let speed = if speed.is_finite() && speed > 0.0 {
            speed
        } else {
            1.0
        };
        let start = monotonic();
        let origin = if speed == 1.0 {
            start
        } else {
            Time::from_micros((start.as_micros() as f64 * speed).round() as u64)
        };
        Self {
            start,
            origin,
            start_instant: Instant::now(),
            speed,
        }
    }

    /// The speed factor in use.
    pub fn speed(&self) -> f64 {
        self.speed
    }

    /// The core's `now`. At speed 1 this is `CLOCK_MONOTONIC` itself.
    pub fn now(&self) -> Time {
        if self.speed == 1.0 {
            return monotonic();
        }
        let real = monotonic().saturating_since(self.start);
        self.origin + real.mul_f64(self.speed)
    }

    /// The `Instant` at which the core's clock reads `t`.
    pub fn instant_of(&self, t: Time) -> Instant {
        let core = t.saturating_since(self.origin);
        self.start_instant + core.div_f64(self.speed)
    }

    /// The core's time at `instant` (past or future).
    pub fn time_of(&self, instant: Instant) -> Time {
        let now = Instant::now();
        let t = self.now();
        if instant <= now {
            t.saturating_sub((now - instant).mul_f64(self.speed))
        } else {
            t + (instant - now).mul_f64(self.speed)
        }
    }

    /// A core duration in real time.
    pub fn real(&self, d: Duration) -> Duration {
        d.div_f64(self.speed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speed_scales_and_instants_map_back() {
        let c = Clock::new(10.0);
        let t = c.now() + Duration::from_secs(10);
        let i = c.instant_of(t);
        let real = i.saturating_duration_since(Instant::now());
        assert!(
            real <= Duration::from_millis(1005) && real > Duration::from_millis(900),
            "{real:?}"
        );
        let one = Clock::new(1.0);
        let a = monotonic();
        assert!(one.now() >= a);
        let later = Instant::now() + Duration::from_millis(100);
        let back = c.instant_of(c.time_of(later));
        let err = back.max(later) - back.min(later);
        assert!(err < Duration::from_millis(5), "{err:?}");
        let earlier = Instant::now() - Duration::from_millis(100);
        let err = c.now().saturating_since(c.time_of(earlier));
        assert!(
            err > Duration::from_millis(990) && err < Duration::from_millis(1100),
            "10x: {err:?}"
        );
    }

    #[test]
    fn two_scaled_clocks_started_apart_read_the_same_time() {
        let a = Clock::new(8.0);
        std::thread::sleep(Duration::from_millis(50)); // the gap under test
        let b = Clock::new(8.0);
        let (ta, tb) = (a.now(), b.now());
        let skew = ta.as_micros().abs_diff(tb.as_micros());
        // From their own starts they would differ by 50 ms x 7 = 350 ms.
        assert!(skew < 20_000, "{skew} us apart");
    }
}
