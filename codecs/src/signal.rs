//! Deterministic test signals: a music-like stereo signal (harmonic notes
//! with envelopes, vibrato, chords, a bass line and a little noise, so that
//! concealment quality means something) and a smooth 3-axis sensor signal.
//!
//! Same seed and rate, same samples, on every run. Used by the demo, the
//! bench tool and the concealment measurements.

use crate::encoding;
use crate::format::{Encoding, Rate};

/// SplitMix64: a tiny, fast, seedable generator, so test signals and loss
/// patterns need no RNG crate and never change under a dependency update.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator whose whole sequence is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[lo, hi)`.
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.next_f64()
    }

    /// Uniform integer in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// Standard normal (Box-Muller).
    pub fn gaussian(&mut self) -> f64 {
        let u = self.next_f64().max(1e-300);
        let v = self.next_f64();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

const HARMONICS: usize = 6;
const VOICES: usize = 12;

/// One sounding note.
#[derive(Debug, Clone, Copy, Default)]
struct Voice {
    on: bool,
    freq: f64,
    amp: f64,
    /// Left and right gains (constant-power pan).
    gain: [f64; 2],
    harm: [f64; HARMONICS],
    phase: f64,
    /// Seconds since note on.
    age: f64,
    /// Seconds until release starts.
    hold: f64,
    vibrato: f64,
}

impl Voice {
    fn envelope(&self) -> f64 {
        const ATTACK: f64 = 0.012;
        const DECAY: f64 = 0.15;
        const SUSTAIN: f64 = 0.55;
        const RELEASE: f64 = 0.25;
        let a = self.age;
        let level = if a < ATTACK {
            a / ATTACK
        } else if a < ATTACK + DECAY {
            1.0 - (1.0 - SUSTAIN) * (a - ATTACK) / DECAY
        } else {
            SUSTAIN
        };
        if a > self.hold {
            level * (-(a - self.hold) / RELEASE * 4.0).exp()
        } else {
            level
        }
    }

    fn done(&self) -> bool {
        self.age > self.hold + 1.0
    }
}

/// A music-like stereo signal: a melody with vibrato, a chord every bar, a
/// bass line, each note a few harmonics under an ADSR envelope, panned, with
/// noise 45 dB down. Peaks stay below full scale.
#[derive(Debug, Clone)]
pub struct Music {
    rng: Rng,
    rate: f64,
    t: u64,
    next_beat: u64,
    beat: u64,
    voices: [Voice; VOICES],
}

/// A major pentatonic scale over three octaves (MIDI notes from A2).
const SCALE: [u8; 15] = [45, 47, 49, 52, 54, 57, 59, 61, 64, 66, 69, 71, 73, 76, 78];

fn midi_hz(note: u8) -> f64 {
    440.0 * 2f64.powf((note as f64 - 69.0) / 12.0)
}

impl Music {
    /// Channels the generator produces (interleaved left, right).
    pub const CHANNELS: u16 = 2;

    /// A generator for `rate`, whose notes are fixed by `seed`.
    pub fn new(seed: u64, rate: Rate) -> Self {
        Self {
            rng: Rng::new(seed ^ 0x006d_7573_6963),
            rate: rate.as_f64(),
            t: 0,
            next_beat: 0,
            beat: 0,
            voices: [Voice::default(); VOICES],
        }
    }

    fn start(&mut self, note: u8, amp: f64, hold: f64, vibrato: f64) {
        let Some(v) = self.voices.iter_mut().find(|v| !v.on) else {
            return;
        };
        let pan = self.rng.range(0.15, 0.85) * std::f64::consts::FRAC_PI_2;
        let mut harm = [0.0; HARMONICS];
        for (k, h) in harm.iter_mut().enumerate() {
            *h = self.rng.range(0.5, 1.0) / ((k + 1) as f64).powf(1.4);
        }
        *v = Voice {
            on: true,
            freq: midi_hz(note),
            amp,
            gain: [pan.cos(), pan.sin()],
            harm,
            phase: 0.0,
            age: 0.0,
            hold,
            vibrato,
        };
    }

    fn on_beat(&mut self) {
        let beat_s = 0.5;
        let bar = self.beat % 4;
        if self.rng.next_f64() < 0.85 {
            let note = SCALE[5 + self.rng.below(10) as usize];
            let len = beat_s * [0.5, 1.0, 1.0, 2.0][self.rng.below(4) as usize];
            self.start(note, 0.16, len, 0.004);
        }
        if bar == 0 {
            let root = self.rng.below(6) as usize;
            for step in [0, 2, 4] {
                self.start(SCALE[root + step], 0.07, beat_s * 3.5, 0.0);
            }
        }
        if bar % 2 == 0 {
            let note = SCALE[self.rng.below(5) as usize] - 12;
            self.start(note, 0.14, beat_s * 1.8, 0.0);
        }
        self.beat += 1;
        self.next_beat = self.t + (beat_s * self.rate).round() as u64;
    }

    /// Fills `out` with interleaved stereo samples in [-1, 1]; a trailing
    /// odd value is left alone.
    pub fn fill(&mut self, out: &mut [f64]) {
        let dt = 1.0 / self.rate;
        for frame in out.chunks_exact_mut(2) {
            if self.t >= self.next_beat {
                self.on_beat();
            }
            let time = self.t as f64 * dt;
            let mut lr = [0.0; 2];
            for v in self.voices.iter_mut().filter(|v| v.on) {
                let env = v.envelope() * v.amp;
                let mut s = 0.0;
                for (k, h) in v.harm.iter().enumerate() {
                    let f = (k + 1) as f64 * v.freq;
                    if f < self.rate * 0.45 {
                        s += h * (std::f64::consts::TAU * (k + 1) as f64 * v.phase).sin();
                    }
                }
                lr[0] += s * env * v.gain[0];
                lr[1] += s * env * v.gain[1];
                let vib = 1.0 + v.vibrato * (std::f64::consts::TAU * 5.0 * time).sin();
                v.phase = (v.phase + v.freq * vib * dt).fract();
                v.age += dt;
                if v.done() {
                    v.on = false;
                }
            }
            let noise = 0.004 * self.rng.gaussian();
            frame[0] = (lr[0] + noise).clamp(-1.0, 1.0);
            frame[1] = (lr[1] + noise * 0.7).clamp(-1.0, 1.0);
            self.t += 1;
        }
    }

    /// Fills `out` with whole stereo samples as wire bytes of `encoding`;
    /// returns the samples written. Does not allocate.
    pub fn fill_wire(&mut self, encoding: Encoding, out: &mut [u8]) -> usize {
        fill_wire(out, encoding, 2, |buf| self.fill(buf))
    }
}

/// The first `samples` stereo samples of [`Music`], interleaved.
pub fn music(seed: u64, rate: Rate, samples: usize) -> Vec<f64> {
    let mut v = vec![0.0; samples * 2];
    Music::new(seed, rate).fill(&mut v);
    v
}

/// A smooth 3-axis sensor (an accelerometer at rest on a moving platform):
/// per axis a few slow sinusoids (0.05 to 2 Hz), an offset (gravity on z)
/// and a little white noise.
#[derive(Debug, Clone)]
pub struct Sensor {
    rng: Rng,
    rate: f64,
    t: u64,
    /// Per axis: (frequency, amplitude, phase) of each component.
    parts: [[(f64, f64, f64); 3]; 3],
    noise: f64,
}

impl Sensor {
    /// Axes the generator produces (interleaved x, y, z).
    pub const CHANNELS: u16 = 3;

    /// A generator for `rate`, whose motion is fixed by `seed`.
    pub fn new(seed: u64, rate: Rate) -> Self {
        let mut rng = Rng::new(seed ^ 0x7365_6e73_6f72);
        let mut parts = [[(0.0, 0.0, 0.0); 3]; 3];
        for axis in &mut parts {
            for p in axis.iter_mut() {
                *p = (
                    rng.range(0.05, 2.0),
                    rng.range(0.05, 0.5),
                    rng.range(0.0, std::f64::consts::TAU),
                );
            }
        }
        Self {
            rng,
            rate: rate.as_f64(),
            t: 0,
            parts,
            noise: 0.002,
        }
    }

    /// Fills `out` with interleaved x, y, z values (m/s^2).
    pub fn fill(&mut self, out: &mut [f64]) {
        for frame in out.chunks_exact_mut(3) {
            let time = self.t as f64 / self.rate;
            for (axis, v) in frame.iter_mut().enumerate() {
                let offset = if axis == 2 { 9.81 } else { 0.0 };
                *v = offset
                    + self.parts[axis]
                        .iter()
                        .map(|&(f, a, p)| a * (std::f64::consts::TAU * f * time + p).sin())
                        .sum::<f64>()
                    + self.noise * self.rng.gaussian();
            }
            self.t += 1;
        }
    }

    /// Fills `out` with whole samples as wire bytes of `encoding`; returns
    /// the samples written. Does not allocate.
    pub fn fill_wire(&mut self, encoding: Encoding, out: &mut [u8]) -> usize {
        fill_wire(out, encoding, 3, |buf| self.fill(buf))
    }
}

/// Generates into `out` through a stack buffer, `channels` values a sample.
fn fill_wire(
    out: &mut [u8],
    encoding: Encoding,
    channels: usize,
    mut generate: impl FnMut(&mut [f64]),
) -> usize {
    let stride = encoding.bytes() * channels;
    let samples = out.len() / stride;
    let mut buf = [0.0f64; 240];
    let per = buf.len() / channels;
    for chunk in out[..samples * stride].chunks_mut(per * stride) {
        let n = chunk.len() / stride;
        let vals = &mut buf[..n * channels];
        generate(vals);
        encoding::encode(encoding, vals, chunk);
    }
    samples
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_are_deterministic_and_bounded() {
        let r = Rate::hz(48_000).unwrap();
        let a = music(7, r, 48_000);
        assert_eq!(a, music(7, r, 48_000));
        assert_ne!(a, music(8, r, 48_000));
        let peak = a.iter().fold(0f64, |m, v| m.max(v.abs()));
        let rms = (a.iter().map(|v| v * v).sum::<f64>() / a.len() as f64).sqrt();
        assert!(peak < 1.0 && rms > 0.02, "peak {peak} rms {rms}");
        let mut wire = vec![0u8; 1000 * 4];
        assert_eq!(Music::new(7, r).fill_wire(Encoding::L16, &mut wire), 1000);
        let mut s = [0.0; 300];
        Sensor::new(1, Rate::hz(100).unwrap()).fill(&mut s);
        assert!(s.chunks(3).all(|v| (v[2] - 9.81).abs() < 2.0));
    }
}
