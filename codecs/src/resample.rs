//! A variable-ratio resampler for clock-drift control: it turns a stream
//! at the sender's rate into one a sound card consumes at its own, slightly
//! different rate (a few hundred ppm), and can stretch by a few percent
//! while latency changes. rubato does the signal processing.
//!
//! Fixed output: each [`DriftResampler::process`] writes `chunk` frames and
//! takes [`DriftResampler::input_needed`] frames (which follows the
//! ratio), the shape a pull-driven sound card callback needs. Interleaved
//! f32 in and out; no allocation after construction.

use rubato::{
    FastFixedOut, PolynomialDegree, Resampler, SincFixedOut, SincInterpolationParameters,
    SincInterpolationType, WindowFunction,
};

/// How much work each output sample gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quality {
    /// Windowed sinc (256 taps, cubic between 256 phases): above 90 dB SNR
    /// on a sine, for what people listen to.
    High,
    /// An 8-point polynomial (no anti-aliasing filter): for simulation of
    /// long runs, where only the sample counts matter.
    Fast,
}

/// Why a resampler could not be built or run.
#[derive(Debug, thiserror::Error)]
pub enum ResampleError {
    /// rubato refused the parameters.
    #[error("resampler: {0}")]
    Construction(#[from] rubato::ResamplerConstructionError),
    /// rubato refused the buffers or the ratio.
    #[error("resampler: {0}")]
    Process(#[from] rubato::ResampleError),
}

enum Inner {
    Sinc(SincFixedOut<f32>),
    Fast(FastFixedOut<f32>),
}

/// Both resamplers, called alike (rubato's trait is not object safe).
macro_rules! each {
    ($inner:expr, $r:ident => $e:expr) => {
        match $inner {
            Inner::Sinc($r) => $e,
            Inner::Fast($r) => $e,
        }
    };
}

/// Resamples interleaved f32 audio by a ratio that may change every call.
pub struct DriftResampler {
    inner: Inner,
    channels: usize,
    chunk: usize,
    max_relative: f64,
    ratio: f64,
    planes_in: Vec<Vec<f32>>,
    planes_out: Vec<Vec<f32>>,
}

impl std::fmt::Debug for DriftResampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DriftResampler")
            .field("channels", &self.channels)
            .field("chunk", &self.chunk)
            .field("ratio", &self.ratio)
            .finish()
    }
}

impl DriftResampler {
    /// `chunk` output frames a call; the ratio may move within
    /// `1 / max_relative ..= max_relative` of 1 (e.g. 1.05 for 5 %).
    pub fn new(
        channels: usize,
        chunk: usize,
        quality: Quality,
        max_relative: f64,
    ) -> Result<Self, ResampleError> {
        let channels = channels.max(1);
        let max_relative = max_relative.max(1.0001);
        let inner = match quality {
            Quality::High => Inner::Sinc(SincFixedOut::new(
                1.0,
                max_relative,
                SincInterpolationParameters {
                    sinc_len: 256,
                    f_cutoff: 0.95,
                    oversampling_factor: 256,
                    interpolation: SincInterpolationType::Cubic,
                    window: WindowFunction::BlackmanHarris2,
                },
                chunk,
                channels,
            )?),
            Quality::Fast => Inner::Fast(FastFixedOut::new(
                1.0,
                max_relative,
                PolynomialDegree::Septic,
                chunk,
                channels,
            )?),
        };
        let max_in = each!(&inner, r => r.input_frames_max());
        Ok(Self {
            inner,
            channels,
            chunk,
            max_relative,
            ratio: 1.0,
            planes_in: vec![vec![0.0; max_in]; channels],
            planes_out: vec![vec![0.0; chunk]; channels],
        })
    }

    /// Output frames per call.
    pub fn chunk(&self) -> usize {
        self.chunk
    }

    /// Channels.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Set the speed: input frames consumed per output frame (1.001
    /// plays 0.1 % faster, for a sink whose clock is slow). Clamped to the
    /// range given at construction.
    pub fn set_speed(&mut self, speed: f64) {
        let speed = speed.clamp(1.0 / self.max_relative, self.max_relative);
        if (speed - self.ratio).abs() > 0.0 {
            self.ratio = speed;
            // rubato's ratio is output over input rate.
            let _ = each!(&mut self.inner, r => r.set_resample_ratio_relative(1.0 / speed, false));
        }
    }

    /// The speed in force.
    pub fn speed(&self) -> f64 {
        self.ratio
    }

    /// Input frames the next [`process`](Self::process) takes.
    pub fn input_needed(&self) -> usize {
        each!(&self.inner, r => r.input_frames_next())
    }

    /// Largest [`input_needed`](Self::input_needed) can be.
    pub fn input_max(&self) -> usize {
        each!(&self.inner, r => r.input_frames_max())
    }

    /// Delay through the filter, in output frames.
    pub fn delay(&self) -> usize {
        each!(&self.inner, r => r.output_delay())
    }

    /// Resample `input` (exactly [`input_needed`](Self::input_needed)
    /// interleaved frames) into `output` (`chunk` interleaved frames).
    pub fn process(&mut self, input: &[f32], output: &mut [f32]) -> Result<(), ResampleError> {
        let c = self.channels;
        let n = input.len() / c;
        for (ch, plane) in self.planes_in.iter_mut().enumerate() {
            for (dst, frame) in plane[..n].iter_mut().zip(input.chunks_exact(c)) {
                *dst = frame[ch];
            }
        }
        let Self {
            inner,
            planes_in,
            planes_out,
            ..
        } = self;
        let ins = planes_in_slices(planes_in, n);
        let (_, written) = each!(inner, r => r.process_into_buffer(&ins, planes_out, None))?;
        for (i, frame) in output.chunks_exact_mut(c).take(written).enumerate() {
            for (ch, v) in frame.iter_mut().enumerate() {
                *v = planes_out[ch][i];
            }
        }
        Ok(())
    }
}

/// The first `n` frames of each plane, without allocating for up to 8
/// channels (more channels allocate a small vector of slices).
fn planes_in_slices(planes: &[Vec<f32>], n: usize) -> smallvec_like::Slices<'_> {
    smallvec_like::Slices::new(planes, n)
}

mod smallvec_like {
    /// Plane slices on the stack for the common channel counts.
    pub struct Slices<'a> {
        fixed: [&'a [f32]; 8],
        more: Vec<&'a [f32]>,
        len: usize,
    }

    impl<'a> Slices<'a> {
        pub fn new(planes: &'a [Vec<f32>], n: usize) -> Self {
            let mut fixed: [&'a [f32]; 8] = [&[]; 8];
            let mut more = Vec::new();
            if planes.len() <= 8 {
                for (slot, p) in fixed.iter_mut().zip(planes) {
                    *slot = &p[..n];
                }
            } else {
                more = planes.iter().map(|p| &p[..n]).collect();
            }
            Self {
                fixed,
                more,
                len: planes.len(),
            }
        }
    }

    impl<'a> std::ops::Deref for Slices<'a> {
        type Target = [&'a [f32]];
        fn deref(&self) -> &Self::Target {
            if self.more.is_empty() {
                &self.fixed[..self.len]
            } else {
                &self.more
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SNR of `y` against the best-fitting sine of frequency `f` (cycles
    /// per sample): what is not that sine is noise and distortion.
    fn sine_snr_db(y: &[f64], f: f64) -> f64 {
        let w = 2.0 * std::f64::consts::PI * f;
        let (mut ss, mut sc, mut cc, mut ys, mut yc) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for (i, &v) in y.iter().enumerate() {
            let (s, c) = (w * i as f64).sin_cos();
            ss += s * s;
            sc += s * c;
            cc += c * c;
            ys += v * s;
            yc += v * c;
        }
        let det = ss * cc - sc * sc;
        let a = (ys * cc - yc * sc) / det;
        let b = (yc * ss - ys * sc) / det;
        let (mut sig, mut err) = (0.0, 0.0);
        for (i, &v) in y.iter().enumerate() {
            let (s, c) = (w * i as f64).sin_cos();
            let fit = a * s + b * c;
            sig += fit * fit;
            err += (v - fit) * (v - fit);
        }
        10.0 * (sig / err).log10()
    }

    fn run(quality: Quality, speed: f64, seconds: f64) -> f64 {
        let rate = 48_000.0;
        let f_in = 1_000.0 / rate;
        let mut r = DriftResampler::new(2, 256, quality, 1.01).unwrap();
        r.set_speed(speed);
        let mut pos = 0usize;
        let mut out = vec![0f32; 512];
        let mut left = Vec::new();
        let mut input = Vec::new();
        while (left.len() as f64) < seconds * rate {
            let need = r.input_needed();
            input.clear();
            for i in pos..pos + need {
                let v = (0.5 * (2.0 * std::f64::consts::PI * f_in * i as f64).sin()) as f32;
                input.extend_from_slice(&[v, -v]);
            }
            pos += need;
            r.process(&input, &mut out).unwrap();
            left.extend(out.chunks_exact(2).map(|s| {
                assert_eq!(s[0], -s[1], "channels stay apart");
                s[0] as f64
            }));
        }
        // Past the filter's start-up, the output is a sine at f_in x speed.
        sine_snr_db(&left[4_096..], f_in * speed)
    }

    #[test]
    fn a_sine_through_the_drift_resampler_stays_clean() {
        for speed in [1.0 + 300e-6, 1.0 - 300e-6, 1.004] {
            let snr = run(Quality::High, speed, 0.5);
            assert!(snr >= 90.0, "speed {speed}: SNR {snr:.1} dB");
        }
    }

    #[test]
    fn speed_sets_how_much_input_a_chunk_takes() {
        let mut r = DriftResampler::new(1, 480, Quality::Fast, 1.05).unwrap();
        let base = r.input_needed();
        r.set_speed(1.04);
        let mut input = vec![0f32; r.input_max()];
        let mut out = vec![0f32; 480];
        let mut taken = 0;
        for _ in 0..100 {
            let n = r.input_needed();
            r.process(&input[..n], &mut out).unwrap();
            taken += n;
        }
        let speed = taken as f64 / (100.0 * 480.0);
        assert!(
            (speed - 1.04).abs() < 0.002,
            "took {speed} input per output"
        );
        r.set_speed(9.0);
        assert!((r.speed() - 1.05).abs() < 1e-12, "clamped");
        input.clear();
        assert!(base >= 480);
    }
}
