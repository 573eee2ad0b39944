//! Clock-drift control for sinks with a clock of their own (sound cards).
//!
//! The playout hands frames over at its instants, on the system clock
//! locked to the sender's media clock; a sound card takes samples at its
//! own rate, a few hundred ppm off. Between them sits a queue of samples.
//! [`DriftPull`], on the card's side, keeps that queue at its target: a PI
//! controller on the queue's level (as Roc does) sets the speed of a
//! resampler ([`DriftResampler`]) that turns queued input into exactly the
//! frames the card asks for. The level is read continuously: a frame pushed
//! whole at its instant counts as arriving over its duration, so the
//! sawtooth of frame pushes does not reach the loop.
//!
//! Sans-IO: [`DriftPull::pull`] takes the time and the queue; the device
//! driver calls it from the card's callback, the simulation at virtual
//! instants. File sinks have no clock and never go through here: they get
//! exactly the samples that were sent.

use isochron_codecs::resample::{DriftResampler, Quality, ResampleError};

use crate::time::Time;

/// The queue between the playout (producer) and the card (consumer):
/// interleaved f32 values.
pub trait SampleQueue {
    /// Values waiting.
    fn len(&self) -> usize;
    /// Nothing waiting.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Move the first `out.len()` values into `out`; false (and nothing
    /// moved) if fewer are waiting.
    fn pop_exact(&mut self, out: &mut [f32]) -> bool;
}

impl SampleQueue for std::collections::VecDeque<f32> {
    fn len(&self) -> usize {
        std::collections::VecDeque::len(self)
    }

    fn pop_exact(&mut self, out: &mut [f32]) -> bool {
        if self.len() < out.len() {
            return false;
        }
        let n = out.len();
        for (o, v) in out.iter_mut().zip(self.drain(..n)) {
            *o = v;
        }
        true
    }
}

/// The producer's last hand-over, for the continuous level.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LastPush {
    /// When the last frame was pushed (local clock).
    pub at: Time,
    /// Its length in frames (samples per channel).
    pub frames: u32,
}

/// A PI controller on the level error: speed = 1 + kp e + ki \u{222b} e dt,
/// clamped, without winding up against the clamp.
#[derive(Debug, Clone)]
pub struct PiController {
    kp: f64,
    ki: f64,
    limit: f64,
    integral: f64,
}

impl PiController {
    /// Gains per second (`kp`) and per second squared (`ki`), speed held
    /// within `1 +- limit`.
    pub fn new(kp: f64, ki: f64, limit: f64) -> Self {
        Self {
            kp,
            ki,
            limit,
            integral: 0.0,
        }
    }

    /// A critically damped loop with natural frequency `omega` (rad/s):
    /// a step in drift is followed within a few `1 / omega`.
    pub fn critically_damped(omega: f64, limit: f64) -> Self {
        Self::new(2.0 * omega, omega * omega, limit)
    }

    /// The speed for a level `error_s` seconds above target, `dt_s` after
    /// the last update.
    pub fn update(&mut self, error_s: f64, dt_s: f64) -> f64 {
        let next = self.integral + error_s * dt_s;
        let raw = self.kp * error_s + self.ki * next;
        if raw.abs() <= self.limit {
            self.integral = next;
        }
        1.0 + (self.kp * error_s + self.ki * self.integral).clamp(-self.limit, self.limit)
    }
}

/// Settings of a drift-controlled sink.
#[derive(Debug, Clone, Copy)]
pub struct DriftConfig {
    /// The stream's sample rate (Hz), which the queue carries.
    pub rate: f64,
    /// Interleaved channels.
    pub channels: usize,
    /// Output frames per resampler call (the card's callbacks are served
    /// from these).
    pub chunk: usize,
    /// Level the loop holds, microseconds of media in the queue.
    pub target_us: u64,
    /// The resampler's quality.
    pub quality: Quality,
    /// Speed stays within `1 +- max_speed` (drift is ppm; latency changes
    /// stretch by up to this).
    pub max_speed: f64,
    /// Natural frequency of the loop, rad/s.
    pub omega: f64,
}

impl DriftConfig {
    /// Defaults for a stream: 128-frame chunks, sinc quality, 2 % speed
    /// range, a loop that settles in about 20 s.
    pub fn new(rate: f64, channels: usize, target_us: u64) -> Self {
        Self {
            rate,
            channels,
            chunk: 128,
            target_us,
            quality: Quality::High,
            max_speed: 0.02,
            omega: 0.1,
        }
    }
}

/// What the drift loop did, for statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DriftStats {
    /// Chunks played with nothing to play (silence instead).
    pub underruns: u64,
    /// Frames the producer could not queue (the queue was full).
    pub overruns: u64,
    /// The speed in force (input frames per output frame).
    pub speed: f64,
    /// Level the loop saw last, microseconds (continuous estimate).
    pub level_us: f64,
    /// Its target, microseconds.
    pub target_us: f64,
    /// Output frames written.
    pub frames_out: u64,
}

/// The card's side of a drift-controlled sink.
pub struct DriftPull {
    cfg: DriftConfig,
    resampler: DriftResampler,
    ctl: PiController,
    input: Vec<f32>,
    staged: Vec<f32>,
    staged_at: usize,
    playing: bool,
    last: Option<Time>,
    stats: DriftStats,
}

impl std::fmt::Debug for DriftPull {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DriftPull")
            .field("stats", &self.stats)
            .finish()
    }
}

impl DriftPull {
    /// Build the resampler and the loop; nothing allocates after this.
    pub fn new(cfg: DriftConfig) -> Result<Self, ResampleError> {
        let resampler =
            DriftResampler::new(cfg.channels, cfg.chunk, cfg.quality, 1.0 + cfg.max_speed)?;
        let input = vec![0.0; resampler.input_max() * cfg.channels];
        Ok(Self {
            ctl: PiController::critically_damped(cfg.omega, cfg.max_speed),
            staged: vec![0.0; cfg.chunk * cfg.channels],
            staged_at: cfg.chunk * cfg.channels,
            input,
            resampler,
            playing: false,
            last: None,
            stats: DriftStats {
                speed: 1.0,
                target_us: cfg.target_us as f64,
                ..Default::default()
            },
            cfg,
        })
    }

    /// Queue capacity (values) that leaves room for the loop to work: four
    /// targets plus a frame of `frame_samples`.
    pub fn queue_capacity(&self, frame_samples: usize) -> usize {
        let target = self.cfg.target_us as f64 * 1e-6 * self.cfg.rate;
        (4.0 * target) as usize * self.cfg.channels + 2 * frame_samples * self.cfg.channels
    }

    /// The level, in frames of media: what is queued, less the part of the
    /// last frame that "has not arrived yet" if frames flowed continuously.
    fn level_frames(&self, now: Time, queued: usize, push: LastPush) -> f64 {
        let queued = (queued / self.cfg.channels) as f64;
        let since = now.diff_micros(push.at).max(0) as f64 * 1e-6 * self.cfg.rate;
        queued - (push.frames as f64 - since).max(0.0)
    }

    /// Fill `out` (interleaved, any length) for the card at `now`, taking
    /// from `queue`; `push` is the producer's last hand-over.
    pub fn pull(
        &mut self,
        now: Time,
        queue: &mut dyn SampleQueue,
        push: LastPush,
        out: &mut [f32],
    ) {
        // The loop runs once a callback, on the level at its start: what is
        // queued plus what is resampled but not yet handed to the card.
        let staged = (self.staged.len() - self.staged_at) / self.cfg.channels;
        let level = self.level_frames(now, queue.len(), push) + staged as f64 * self.stats.speed;
        self.control(now, level / self.cfg.rate * 1e6);
        let mut at = 0;
        while at < out.len() {
            if self.staged_at == self.staged.len() {
                self.refill(queue);
            }
            let n = (self.staged.len() - self.staged_at).min(out.len() - at);
            out[at..at + n].copy_from_slice(&self.staged[self.staged_at..self.staged_at + n]);
            self.staged_at += n;
            at += n;
        }
    }

    fn control(&mut self, now: Time, level_us: f64) {
        self.stats.level_us = level_us;
        let target = self.cfg.target_us as f64;
        if !self.playing {
            // Start (or restart after an underrun) once the target is in.
            if level_us < target {
                return;
            }
            self.playing = true;
            self.last = Some(now);
        }
        let dt = self
            .last
            .map_or(0.0, |l| now.diff_micros(l).max(0) as f64 * 1e-6);
        self.last = Some(now);
        let speed = self.ctl.update((level_us - target) * 1e-6, dt);
        self.resampler.set_speed(speed);
        self.stats.speed = self.resampler.speed();
    }

    fn refill(&mut self, queue: &mut dyn SampleQueue) {
        if !self.playing {
            self.staged.fill(0.0);
            self.staged_at = 0;
            return;
        }
        let need = self.resampler.input_needed() * self.cfg.channels;
        if !queue.pop_exact(&mut self.input[..need]) {
            self.stats.underruns += 1;
            self.playing = false;
            self.staged.fill(0.0);
            self.staged_at = 0;
            return;
        }
        if self
            .resampler
            .process(&self.input[..need], &mut self.staged)
            .is_err()
        {
            self.staged.fill(0.0);
        }
        self.staged_at = 0;
        self.stats.frames_out += self.cfg.chunk as u64;
    }

    /// Count a frame the producer had no room for.
    pub fn note_overrun(&mut self) {
        self.stats.overruns += 1;
    }

    /// What the loop has done so far.
    pub fn stats(&self) -> DriftStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_integral_holds_a_steady_drift_without_error() {
        // Level dynamics: dL/dt = -(drift + speed - 1).
        let drift = 300e-6;
        let mut pi = PiController::critically_damped(0.1, 0.02);
        let (mut level, dt) = (0.0f64, 0.005);
        let mut worst_late = 0.0f64;
        for i in 0..(600.0 / dt) as usize {
            let speed = pi.update(level, dt);
            level -= (drift + speed - 1.0) * dt;
            if i as f64 * dt > 150.0 {
                worst_late = worst_late.max(level.abs());
            }
        }
        assert!(worst_late < 1e-5, "steady error {worst_late}");
    }

    #[test]
    fn the_clamp_does_not_wind_up() {
        let mut pi = PiController::new(1.0, 1.0, 0.01);
        for _ in 0..1000 {
            assert!((pi.update(1.0, 0.1) - 1.01).abs() < 1e-12);
        }
        // Back at zero error, the speed recovers at once rather than after
        // unwinding a huge integral.
        assert!(pi.update(0.0, 0.1) < 1.01);
    }
}
