//! Water-mark flow control for file mode.
//!
//! PAUSE and RESUME take a control-loop delay to act, during which the
//! buffer keeps filling (or draining). The receiver therefore sends them that
//! much before the marks, so the buffer itself stays between low and high.

use std::time::Duration;

use crate::time::micros;
use crate::wire::control::Control;

/// Decides PAUSE and RESUME from the buffer level, with hysteresis, and
/// counts them.
#[derive(Debug, Clone)]
pub struct FlowControl {
    pause_at: u64,
    resume_at: u64,
    paused: bool,
    pending: Option<Control>,
    pauses: u64,
    resumes: u64,
}

impl FlowControl {
    /// `fill`: the sender's speed while resumed, as a multiple of real time;
    /// `loop_delay`: from sending a message until its effect reaches the
    /// buffer (a round trip plus jitter); `step`: the largest jump of the
    /// level (a frame played, or a packet of frames arriving).
    pub fn new(
        low: Duration,
        high: Duration,
        fill: f64,
        loop_delay: Duration,
        step: Duration,
    ) -> Self {
        let (low, high) = (micros(low), micros(high));
        let d = micros(loop_delay) as f64;
        let step = micros(step);
        let mut pause_at = high.saturating_sub((d * (fill - 1.0).max(0.0)) as u64 + step);
        let mut resume_at = low + d as u64 + step;
        if resume_at >= pause_at {
            // Marks too close for the loop: meet in the middle, with hysteresis.
            let mid = (low + high) / 2;
            resume_at = mid.saturating_sub((high - low) / 8);
            pause_at = mid + (high - low) / 8;
        }
        Self {
            pause_at,
            resume_at,
            paused: false,
            pending: None,
            pauses: 0,
            resumes: 0,
        }
    }

    /// Where the messages are sent (microseconds of buffered media).
    pub fn thresholds(&self) -> (u64, u64) {
        (self.resume_at, self.pause_at)
    }

    /// The buffer holds `level_us` microseconds of media: queue PAUSE if it
    /// reached the pause threshold while running, RESUME if it fell to the
    /// resume threshold while paused.
    pub fn update(&mut self, level_us: u64) {
        if !self.paused && level_us >= self.pause_at {
            self.paused = true;
            self.pauses += 1;
            self.pending = Some(Control::Pause);
        } else if self.paused && level_us <= self.resume_at {
            self.paused = false;
            self.resumes += 1;
            self.pending = Some(Control::Resume);
        }
    }

    /// The message to send, once.
    pub fn poll(&mut self) -> Option<Control> {
        self.pending.take()
    }

    /// PAUSE and RESUME messages issued so far.
    pub fn counts(&self) -> (u64, u64) {
        (self.pauses, self.resumes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_ahead_of_the_marks_with_hysteresis() {
        let ms = Duration::from_millis;
        let mut f = FlowControl::new(ms(40), ms(160), 2.0, ms(20), ms(10));
        assert_eq!(f.thresholds(), (70_000, 130_000));
        f.update(100_000);
        assert_eq!(f.poll(), None);
        f.update(130_000);
        assert_eq!(f.poll(), Some(Control::Pause));
        f.update(150_000);
        f.update(100_000);
        assert_eq!(f.poll(), None, "no repeat while paused");
        f.update(70_000);
        assert_eq!(f.poll(), Some(Control::Resume));
        assert_eq!(f.counts(), (1, 1));
    }
}
