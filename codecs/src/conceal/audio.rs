//! The audio method: interpolation across short gaps, waveform continuation
//! across long ones.

use std::f64::consts::PI;

use super::Concealer;
use crate::mask::SampleMask;

/// The time constants of waveform concealment, in samples at the stream rate.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WaveTiming {
    /// Gaps up to this many samples with a neighbour on each side are
    /// interpolated (the lanes of a sample-interleaved group).
    pub short: usize,
    /// Lags searched: 2 ms to 50 ms. Chords in equal temperament have no
    /// short common period; long lags find the stretch that repeats best.
    pub min_lag: usize,
    pub max_lag: usize,
    /// Samples compared at each lag (40 ms).
    pub window: usize,
    /// The repeated segment is a whole number of periods of at least this (5 ms).
    pub min_source: usize,
    pub max_source: usize,
    /// Cross-fade from the real signal into the repetition (2 ms).
    pub xfade_in: usize,
    /// Cross-fade from the fill into real samples after the gap (2.5 ms).
    pub xfade_out: usize,
    /// Known samples after a gap matched against the history (10 ms), and
    /// the fewest worth matching (2.5 ms).
    pub match_len: usize,
    pub min_match: usize,
    /// Full level for the first 10 ms of a gap, then a 50 ms fade to silence.
    pub hold: usize,
    pub fade: usize,
}

impl WaveTiming {
    pub fn new(rate: f64) -> Self {
        let ms = |x: f64| ((rate * x / 1000.0).ceil() as usize).max(1);
        let min_source = ms(5.0);
        let max_lag = ms(50.0).max(4);
        Self {
            short: 4,
            min_lag: ms(2.0).min(max_lag),
            max_lag,
            window: ms(40.0).max(4),
            min_source,
            max_source: min_source + max_lag,
            xfade_in: ms(2.0),
            xfade_out: ms(2.5),
            match_len: ms(10.0),
            min_match: ms(2.5),
            hold: ms(10.0),
            fade: ms(50.0),
        }
    }

    /// Level of sample `q` of a gap (1, then a linear fade to 0).
    fn level(&self, q: usize) -> f64 {
        if q < self.hold {
            1.0
        } else if q < self.hold + self.fade {
            1.0 - (q - self.hold) as f64 / self.fade as f64
        } else {
            0.0
        }
    }

    /// Raised-cosine weight of the real signal at sample `q` of a gap:
    /// 1 at the start, 0 after `xfade_in`.
    fn entry(&self, q: usize) -> f64 {
        if q < self.xfade_in {
            0.5 + 0.5 * (PI * q as f64 / self.xfade_in as f64).cos()
        } else {
            0.0
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Repeat `src` (a whole number of pitch periods).
    Periodic,
    /// Too little history for a period: fade the last value out.
    Decay,
    /// Nothing heard yet.
    Zero,
}

/// An ongoing waveform fill, which may span several lost frames.
#[derive(Debug, Clone)]
pub(crate) struct Wave {
    /// A fill reached the end of the previous frame and may continue.
    pub active: bool,
    mode: Mode,
    /// Length of the repeated segment.
    len: usize,
    /// Samples of this gap filled so far.
    pos: usize,
    /// Level of the repetition: how well the signal repeated at its period.
    gain: f64,
    src: Vec<f64>,
    /// Per channel: the step between the real signal and the repetition at
    /// the gap start, faded out over `xfade_in` so the fill starts without
    /// a jump.
    offset: Vec<f64>,
    last: Vec<f64>,
    /// Per channel: what the blended fill predicts for the sample after it.
    next: Vec<f64>,
    channels: usize,
}

impl Wave {
    pub fn new(max_source: usize, channels: usize) -> Self {
        Self {
            active: false,
            mode: Mode::Zero,
            len: 1,
            pos: 0,
            gain: 0.0,
            src: vec![0.0; max_source * channels],
            offset: vec![0.0; channels],
            last: vec![0.0; channels],
            next: vec![0.0; channels],
            channels,
        }
    }

    /// Channel `c` of sample `q` of the gap.
    fn value(&self, q: usize, c: usize, t: &WaveTiming) -> f64 {
        match self.mode {
            Mode::Zero => 0.0,
            Mode::Decay => {
                let d = t.xfade_out.max(2);
                if q < d {
                    self.last[c] * (0.5 + 0.5 * (PI * (q + 1) as f64 / d as f64).cos())
                } else {
                    0.0
                }
            }
            Mode::Periodic => {
                let w = t.entry(q);
                let g = (w + (1.0 - w) * self.gain) * t.level(q);
                g * (self.src[(q % self.len) * self.channels + c] + self.offset[c] * w)
            }
        }
    }
}

impl Concealer {
    /// Fills the gap `[s, e)` of an `n`-sample frame.
    pub(super) fn fill_audio(
        &mut self,
        frame: &mut [u8],
        mask: SampleMask<'_>,
        s: usize,
        e: usize,
        n: usize,
    ) {
        // A known sample just after the gap: in the frame, or the look-ahead.
        let known = |j: usize| {
            if j < n {
                mask.present(j)
            } else {
                self.ahead.get(j - n).copied().unwrap_or(false)
            }
        };
        let right = known(e);
        let len = e - s;
        if len <= self.timing.short && right && self.hist_len + s >= 1 {
            self.interpolate(s, e, known(e + 1));
            self.count(len, 0);
        } else {
            // Known samples right after the gap, up to one repeated segment.
            let right_run = (e..e + self.timing.max_source)
                .take_while(|&j| known(j))
                .count();
            self.synthesize(s, e, right_run);
            self.wave.active = e == n;
            self.count(0, len);
        }
        for j in s..e {
            let base = self.at(j as isize, 0);
            self.write_sample(frame, j, |c| self.work[base + c]);
        }
    }

    /// Lagrange interpolation through up to two known samples on each side.
    fn interpolate(&mut self, s: usize, e: usize, second_right: bool) {
        let (s, e) = (s as isize, e as isize);
        let mut xs = [0isize; 4];
        let mut m = 0;
        if self.hist_len as isize + s >= 2 {
            xs[m] = s - 2;
            m += 1;
        }
        xs[m] = s - 1;
        xs[m + 1] = e;
        m += 2;
        if second_right {
            xs[m] = e + 1;
            m += 1;
        }
        let xs = &xs[..m];
        for j in s..e {
            for c in 0..self.channels {
                let mut y = 0.0;
                for (i, &xi) in xs.iter().enumerate() {
                    let mut l = 1.0;
                    for (k, &xk) in xs.iter().enumerate() {
                        if k != i {
                            l *= (j - xk) as f64 / (xi - xk) as f64;
                        }
                    }
                    y += l * self.work[self.at(xi, c)];
                }
                let at = self.at(j, c);
                self.work[at] = y;
            }
        }
    }

    /// Waveform continuation over `[s, e)`. When enough real signal follows
    /// the gap (`right_run` known samples from `e`), the stretch of history
    /// that best leads into it is cross-faded in across the gap; when only a
    /// little follows, the fill is bent to meet it.
    fn synthesize(&mut self, s: usize, e: usize, right_run: usize) {
        if !(s == 0 && self.wave.active) {
            self.start_wave(s);
        }
        let t = self.timing;
        for j in s..e {
            for c in 0..self.channels {
                let y = self.wave.value(self.wave.pos, c, &t);
                let at = self.at(j as isize, c);
                self.work[at] = y;
            }
            self.wave.pos += 1;
        }
        let matched =
            right_run >= t.min_match && self.match_right(s, e, right_run.min(t.match_len));
        if right_run > 0 {
            // Bend the end of the fill so that it meets the first real sample.
            let m = (e - s).min(t.xfade_out);
            for c in 0..self.channels {
                let predicted = if matched {
                    self.wave.next[c]
                } else {
                    self.wave.value(self.wave.pos, c, &t)
                };
                let delta = self.work[self.at(e as isize, c)] - predicted;
                for k in 0..m {
                    let w = 0.5 - 0.5 * (PI * (k + 1) as f64 / (m + 1) as f64).cos();
                    let at = self.at((e - m + k) as isize, c);
                    self.work[at] += delta * w;
                }
            }
        }
    }

    /// Blends into the forward fill of `[s, e)` the history that best
    /// matches the `r` known samples after the gap, aligned to end where
    /// they begin. Returns false (leaving the fill alone) without a match.
    fn match_right(&mut self, s: usize, e: usize, r: usize) -> bool {
        let ch = self.channels;
        let avail = self.hist_len + s;
        let len = e - s;
        let first = s as isize - avail as isize;
        for i in 0..avail {
            let base = self.at(first + i as isize, 0);
            self.pitch.past[i] = self.work[base..base + ch].iter().sum::<f64>() / ch as f64;
        }
        for i in 0..r {
            let base = self.at((e + i) as isize, 0);
            self.pitch.target[i] = self.work[base..base + ch].iter().sum::<f64>() / ch as f64;
        }
        let Some((p, corr)) = self.pitch.find(avail, r, len) else {
            return false;
        };
        let gain = corr.clamp(0.0, 1.0);
        let t = self.timing;
        // What the matched history would put at `e`, to meet the real sample.
        let at_e = first + p as isize;
        for c in 0..ch {
            self.wave.next[c] = gain * self.work[self.at(at_e, c)];
        }
        for j in s..e {
            let w = 0.5 - 0.5 * (PI * (j - s + 1) as f64 / (len + 1) as f64).cos();
            let g = w * gain * t.level(e - 1 - j);
            // The history sample that played the role of sample j.
            let source = first + p as isize + j as isize - e as isize;
            for c in 0..ch {
                let at = self.at(j as isize, c);
                let back = self.work[self.at(source, c)];
                self.work[at] = (1.0 - w) * self.work[at] + g * back;
            }
        }
        true
    }

    /// Sets up a fill for a gap starting at `s` from the signal before it.
    fn start_wave(&mut self, s: usize) {
        let ch = self.channels;
        let avail = self.hist_len + s;
        let s = s as isize;
        let ctx = self.pitch.context();
        let wave = &mut self.wave;
        wave.pos = 0;
        wave.active = true;
        if avail >= ctx {
            for i in 0..ctx {
                let base = self.at(s - ctx as isize + i as isize, 0);
                let sum: f64 = self.work[base..base + ch].iter().sum();
                self.pitch.mono[i] = sum / ch as f64;
            }
            let (period, corr) = self.pitch.search();
            let t = &self.timing;
            let mut len = period * t.min_source.div_ceil(period).max(1);
            if len + 1 > avail || len > t.max_source {
                len = period;
            }
            let wave = &mut self.wave;
            wave.mode = Mode::Periodic;
            wave.len = len;
            wave.gain = if corr.is_finite() {
                corr.clamp(0.0, 1.0)
            } else {
                0.0
            };
            let start = (self.origin as isize + s - len as isize) as usize * ch;
            wave.src[..len * ch].copy_from_slice(&self.work[start..start + len * ch]);
            for c in 0..ch {
                let last = self.work[(self.origin as isize + s - 1) as usize * ch + c];
                let before =
                    self.work[(self.origin as isize + s - 1 - len as isize) as usize * ch + c];
                wave.offset[c] = last - before;
            }
        } else if avail >= 1 {
            wave.mode = Mode::Decay;
            let base = (self.origin as isize + s - 1) as usize * ch;
            wave.last.copy_from_slice(&self.work[base..base + ch]);
        } else {
            wave.mode = Mode::Zero;
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::conceal::Method;
    use crate::format::{Encoding, Rate, StreamFormat};
    use crate::quality::score_concealment;

    /// A stationary two-tone chord: the fill should be near perfect.
    #[test]
    fn a_stationary_chord_is_continued_closely() {
        let rate = 48_000.0;
        let tone: Vec<f64> = (0..48_000)
            .flat_map(|i| {
                let t = i as f64 / rate;
                let v = 0.3 * (std::f64::consts::TAU * 220.0 * t).sin()
                    + 0.2 * (std::f64::consts::TAU * 277.2 * t).sin();
                [v, v * 0.5]
            })
            .collect();
        let f = StreamFormat::new(Encoding::F32, 2, Rate::hz(48_000).unwrap()).unwrap();
        for la in [false, true] {
            let s = score_concealment(&tone, f, 480, |fr, _| fr % 17 != 9, Method::Waveform, la)
                .unwrap();
            assert!(
                s.gap_snr_db > 12.0,
                "lookahead {la}: {:.1} dB",
                s.gap_snr_db
            );
        }
    }
}
