//! The per-substream concealment state machine: validation, history, runs
//! of missing samples, counting; the methods live in `audio` and `sensor`.

use super::audio::{Wave, WaveTiming};
use super::pitch::PitchSearch;
use super::{ConcealStats, Concealed, Lookahead, Method};
use crate::encoding;
use crate::error::{Error, Result};
use crate::format::StreamFormat;
use crate::mask::SampleMask;

/// Fills the missing samples of each frame of one substream, in place.
/// See the [module docs](super).
#[derive(Debug, Clone)]
pub struct Concealer {
    pub(super) method: Method,
    pub(super) format: StreamFormat,
    pub(super) channels: usize,
    pub(super) max_frame: usize,
    /// Samples of decoded history kept before the current frame.
    pub(super) hist_cap: usize,
    /// Valid history samples (right-aligned, ending at `origin`).
    pub(super) hist_len: usize,
    /// Where the current frame starts in `work`, in samples: the history
    /// window slides forward frame by frame through room for `hist_cap`
    /// more samples, and is moved back only when that room runs out (every
    /// frame, moving 145 ms of decoded stereo history cost more than the
    /// rest of the concealer on complete frames).
    pub(super) origin: usize,
    /// `[room | history | frame | look-ahead]`, interleaved f64.
    pub(super) work: Vec<f64>,
    /// The same layout in wire bytes: where complete frames are kept until
    /// a gap needs them decoded. Most frames are complete and need no
    /// concealment, and decoding every one into `work` was most of a
    /// receiver's playout cost (hundreds of sessions per process).
    raw: Vec<u8>,
    /// The last `stale` history samples (ending at `origin`) are valid in
    /// `raw` only; [`catch_up`](Self::catch_up) decodes them.
    stale: usize,
    /// Tests: decode every frame as it comes (the reference for the lazy
    /// history).
    #[cfg(test)]
    eager: bool,
    /// Which look-ahead samples (decoded into `work` after the frame) arrived.
    pub(super) ahead: Vec<bool>,
    pub(super) timing: WaveTiming,
    pub(super) pitch: PitchSearch,
    pub(super) wave: Wave,
    /// Sensors: last known (non-NaN) value per channel and its absolute index.
    pub(super) last: Vec<f64>,
    pub(super) last_at: Vec<i64>,
    /// Absolute index of the current frame's first sample.
    pub(super) position: i64,
    /// The previous frame ended inside a gap.
    run_open: bool,
    stats: ConcealStats,
}

impl Concealer {
    /// Values of history and scratch one concealer may hold (256 MiB of f64),
    /// so a hostile catalog cannot make it allocate without bound.
    pub const MAX_VALUES: usize = 1 << 25;

    /// A concealer for frames of at most `max_frame` samples of `format`.
    /// All memory is allocated here; refused beyond [`Self::MAX_VALUES`].
    pub fn new(method: Method, format: StreamFormat, max_frame: usize) -> Result<Self> {
        let rate = format.rate.as_f64();
        let timing = WaveTiming::new(rate);
        let channels = format.channels as usize;
        let audio = method == Method::Waveform;
        // Enough for the pitch search context plus the repeated segment.
        let hist_cap = if audio {
            timing.max_lag + timing.window + timing.max_source + 2
        } else {
            2
        };
        // Look-ahead: one repeated segment, to continue the waveform backwards.
        let lookahead = if audio { timing.max_source } else { 0 };
        // Room to slide the window through (audio only).
        let room = if audio { hist_cap } else { 0 };
        let values = hist_cap
            .checked_add(room)
            .and_then(|v| v.checked_add(max_frame))
            .and_then(|v| v.checked_add(lookahead))
            .and_then(|v| v.checked_mul(channels))
            .filter(|&v| v <= Self::MAX_VALUES);
        let Some(values) = values else {
            return Err(Error::Size {
                what: "concealer memory in values (frame length x channels)",
                expected: Self::MAX_VALUES,
                found: max_frame.saturating_mul(channels),
            });
        };
        let work_len = if audio { values } else { 0 };
        let raw_len = work_len / channels.max(1) * format.stride();
        let pitch = if audio {
            PitchSearch::new(
                rate,
                (timing.min_lag, timing.max_lag, timing.window),
                hist_cap + max_frame,
                timing.match_len,
            )
        } else {
            PitchSearch::new(rate, (1, 1, 1), 0, 0)
        };
        Ok(Self {
            method,
            format,
            channels,
            max_frame,
            hist_cap,
            hist_len: 0,
            origin: hist_cap,
            work: vec![0.0; work_len],
            raw: vec![0; raw_len],
            stale: 0,
            #[cfg(test)]
            eager: false,
            ahead: vec![false; lookahead],
            wave: Wave::new(if audio { timing.max_source } else { 0 }, channels),
            timing,
            pitch,
            last: vec![f64::NAN; channels],
            last_at: vec![i64::MIN; channels],
            position: 0,
            run_open: false,
            stats: ConcealStats::default(),
        })
    }

    /// A concealer for frames of `frame_us` microseconds (frames of a
    /// fractional sample count alternate; this takes the longer).
    pub fn for_frame_duration(method: Method, format: StreamFormat, frame_us: u64) -> Result<Self> {
        let max = usize::try_from(format.rate.samples_before(frame_us))
            .unwrap_or(usize::MAX)
            .saturating_add(1);
        Self::new(method, format, max)
    }

    /// The method in use.
    pub fn method(&self) -> Method {
        self.method
    }

    /// The substream format.
    pub fn format(&self) -> StreamFormat {
        self.format
    }

    /// Longest frame accepted, in samples.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// Totals since construction (or [`reset`](Self::reset)).
    pub fn stats(&self) -> ConcealStats {
        self.stats
    }

    /// Forgets history and totals, e.g. after a seek.
    pub fn reset(&mut self) {
        self.hist_len = 0;
        self.stale = 0;
        self.wave.active = false;
        self.last.fill(f64::NAN);
        self.last_at.fill(i64::MIN);
        self.position = 0;
        self.run_open = false;
        self.stats = ConcealStats::default();
    }

    /// Conceals the samples of `frame` that `mask` marks missing, without
    /// look-ahead.
    pub fn conceal(&mut self, frame: &mut [u8], mask: SampleMask<'_>) -> Result<Concealed> {
        self.conceal_with(frame, mask, None)
    }

    /// Conceals the samples of `frame` that `mask` marks missing, using the
    /// next frame when it is already there.
    pub fn conceal_with(
        &mut self,
        frame: &mut [u8],
        mask: SampleMask<'_>,
        next: Option<Lookahead<'_>>,
    ) -> Result<Concealed> {
        let n = mask.len();
        let stride = self.format.stride();
        if frame.len() != n * stride {
            return Err(Error::Size {
                what: "the frame (mask length x sample size)",
                expected: n * stride,
                found: frame.len(),
            });
        }
        if n > self.max_frame {
            return Err(Error::Size {
                what: "a frame no longer than the concealer's maximum",
                expected: self.max_frame,
                found: n,
            });
        }
        if let Some(la) = next
            && la.bytes.len() != la.mask.len() * stride
        {
            return Err(Error::Size {
                what: "the look-ahead frame (mask length x sample size)",
                expected: la.mask.len() * stride,
                found: la.bytes.len(),
            });
        }
        if n == 0 {
            return Ok(Concealed::default());
        }
        self.stats.frames += 1;
        let present = mask.count_present();
        let mut done = Concealed::default();
        if present == 0 {
            self.stats.frames_lost += 1;
        } else if present < n {
            self.stats.frames_partial += 1;
        }
        let audio = self.method == Method::Waveform;
        if audio {
            #[cfg(test)]
            let lazy = !self.eager;
            #[cfg(not(test))]
            let lazy = true;
            if present == n && lazy {
                // Nothing to fill: keep the bytes, decode only if a gap
                // comes while they are still history.
                let stride = self.format.stride();
                let at = self.origin * stride;
                self.raw[at..at + n * stride].copy_from_slice(frame);
                self.stale += n;
            } else {
                self.catch_up();
                self.decode_frame(frame, mask, next);
            }
        }
        if present < n {
            let mut i = 0;
            while i < n {
                if mask.present(i) {
                    if !audio {
                        self.note_known(frame, i);
                    }
                    i += 1;
                    continue;
                }
                let start = i;
                while i < n && !mask.present(i) {
                    i += 1;
                }
                if !(start == 0 && self.run_open) {
                    done.events += 1;
                }
                done.samples += i - start;
                match self.method {
                    Method::Waveform => self.fill_audio(frame, mask, start, i, n),
                    Method::Silence => self.fill_constant(frame, start, i, Some(0.0)),
                    Method::Empty => self.fill_constant(frame, start, i, None),
                    Method::Hold | Method::Linear => self.fill_sensor(frame, mask, next, start, i),
                }
            }
        } else if !audio {
            self.note_tail(frame, n);
        }
        if present == n || mask.present(n - 1) {
            self.wave.active = false;
        }
        self.run_open = !mask.present(n - 1);
        if audio {
            self.push_history(n);
        }
        self.position += n as i64;
        self.stats.samples += done.samples as u64;
        self.stats.events += done.events as u64;
        Ok(done)
    }

    pub(super) fn count(&mut self, interpolated: usize, synthesized: usize) {
        self.stats.interpolated += interpolated as u64;
        self.stats.synthesized += synthesized as u64;
    }

    /// Index in `work` of sample `j` (negative: history, `n..`: look-ahead).
    pub(super) fn at(&self, j: isize, c: usize) -> usize {
        (self.origin as isize + j) as usize * self.channels + c
    }

    /// Decodes the frame's present samples and the look-ahead's first ones.
    fn decode_frame(&mut self, frame: &[u8], mask: SampleMask<'_>, next: Option<Lookahead<'_>>) {
        let enc = self.format.encoding;
        let w = enc.bytes();
        let ch = self.channels;
        let n = mask.len();
        let base = self.origin * ch;
        for (i, sample) in frame.chunks_exact(w * ch).enumerate() {
            let dst = &mut self.work[base + i * ch..base + (i + 1) * ch];
            if mask.present(i) {
                encoding::decode(enc, sample, dst);
            } else {
                dst.fill(0.0);
            }
        }
        self.ahead.fill(false);
        if let Some(la) = next {
            let base = base + n * ch;
            let take = self.ahead.len();
            for (k, sample) in la.bytes.chunks_exact(w * ch).take(take).enumerate() {
                if la.mask.present(k) {
                    self.ahead[k] = true;
                    encoding::decode(
                        enc,
                        sample,
                        &mut self.work[base + k * ch..base + (k + 1) * ch],
                    );
                }
            }
        }
    }

    /// Decodes the history samples kept as wire bytes only.
    fn catch_up(&mut self) {
        let s = self.stale.min(self.hist_len);
        if s > 0 {
            let (ch, stride) = (self.channels, self.format.stride());
            let from = self.origin - s;
            encoding::decode(
                self.format.encoding,
                &self.raw[from * stride..self.origin * stride],
                &mut self.work[from * ch..self.origin * ch],
            );
        }
        self.stale = 0;
    }

    /// Appends the (now complete) frame to the history window: slides the
    /// window over it, and moves the window back to the start of its room
    /// when the next frame and look-ahead would not fit (each sample moves
    /// in the form it is kept in: decoded, or wire bytes not yet decoded).
    fn push_history(&mut self, n: usize) {
        let ch = self.channels;
        let keep = (self.hist_len + n).min(self.hist_cap);
        self.stale = self.stale.min(keep);
        let end = self.origin + n;
        if (end + self.max_frame + self.ahead.len()) * ch > self.work.len() {
            let from = end - keep;
            let to = self.hist_cap - keep;
            let decoded = keep - self.stale;
            self.work
                .copy_within(from * ch..(from + decoded) * ch, to * ch);
            let stride = self.format.stride();
            self.raw.copy_within(
                (from + decoded) * stride..end * stride,
                (to + decoded) * stride,
            );
            self.origin = self.hist_cap;
        } else {
            self.origin = end;
        }
        self.hist_len = keep;
    }

    /// Writes one filled sample (all channels) back to the wire bytes.
    pub(super) fn write_sample(&self, frame: &mut [u8], j: usize, values: impl Fn(usize) -> f64) {
        let enc = self.format.encoding;
        let w = enc.bytes();
        for c in 0..self.channels {
            let at = (j * self.channels + c) * w;
            encoding::write_f64(enc, values(c), &mut frame[at..at + w]);
        }
    }

    /// Zeros (`Some(0.0)`) or the missing-value marker (`None`) for `[s, e)`.
    fn fill_constant(&mut self, frame: &mut [u8], s: usize, e: usize, value: Option<f64>) {
        let enc = self.format.encoding;
        let w = enc.bytes();
        let stride = self.format.stride();
        for slot in frame[s * stride..e * stride].chunks_exact_mut(w) {
            match value {
                Some(v) => encoding::write_f64(enc, v, slot),
                None => {
                    encoding::write_missing(enc, slot);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::{Music, Rng};
    use crate::{Encoding, Rate};

    /// Frames through a concealer (lazy history, or decoding every frame
    /// as it comes); frames lose runs of samples as `rng` decides, some
    /// with a look-ahead of the next frame.
    fn run(enc: Encoding, eager: bool, seed: u64) -> (Vec<u8>, ConcealStats) {
        let format = StreamFormat::new(enc, 2, Rate::hz(48_000).unwrap()).unwrap();
        let (frame, frames) = (480, 120);
        let stride = format.stride();
        let mut wire = vec![0u8; (frames + 1) * frame * stride];
        Music::new(seed, format.rate).fill_wire(enc, &mut wire);
        let mut c = Concealer::new(Method::Waveform, format, frame).unwrap();
        c.eager = eager;
        let mut rng = Rng::new(seed);
        let mut out = Vec::new();
        let full = vec![u64::MAX; frame.div_ceil(64)];
        for f in 0..frames {
            let mut words = full.clone();
            // Mostly complete runs of frames (the lazy path), then gaps of
            // every length: a few samples, most of a frame, whole frames.
            if rng.below(4) == 0 {
                let start = rng.below(frame as u64) as usize;
                let len = 1 + rng.below(frame as u64) as usize;
                for i in start..(start + len).min(frame) {
                    words[i / 64] &= !(1 << (i % 64));
                }
            }
            let mut bytes = wire[f * frame * stride..(f + 1) * frame * stride].to_vec();
            let next = &wire[(f + 1) * frame * stride..(f + 2) * frame * stride];
            let ahead = (rng.below(2) == 0).then(|| Lookahead {
                bytes: next,
                mask: SampleMask::new(&full, frame),
            });
            c.conceal_with(&mut bytes, SampleMask::new(&words, frame), ahead)
                .unwrap();
            out.extend_from_slice(&bytes);
        }
        (out, c.stats())
    }

    #[test]
    fn lazy_history_conceals_exactly_as_decoding_every_frame() {
        for enc in [Encoding::L16, Encoding::L24, Encoding::F32] {
            for seed in 1..6 {
                let (lazy, ls) = run(enc, false, seed);
                let (eager, es) = run(enc, true, seed);
                assert!(ls.events > 0 && ls.samples > 0, "{enc:?} {seed}: {ls:?}");
                assert_eq!(ls, es, "{enc:?} seed {seed}");
                assert!(lazy == eager, "{enc:?} seed {seed}: the outputs differ");
            }
        }
    }
}
