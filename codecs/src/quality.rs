//! Output quality against a reference: signal-to-noise ratio in dB, and
//! the score of a concealment method on a simulated loss pattern.

use crate::conceal::{ConcealStats, Concealer, Lookahead, Method};
use crate::encoding;
use crate::error::Result;
use crate::format::StreamFormat;
use crate::mask::SampleMask;

/// SNR in dB of `test` against `reference`, sample by sample over the
/// common length: `10 log10(sum ref^2 / sum (ref - test)^2)`. Infinite when
/// they are identical; NaN values count as silence in `test`.
pub fn snr_db(test: &[f64], reference: &[f64]) -> f64 {
    let (mut signal, mut noise) = (0.0, 0.0);
    for (&t, &r) in test.iter().zip(reference) {
        let t = if t.is_nan() { 0.0 } else { t };
        signal += r * r;
        noise += (r - t) * (r - t);
    }
    ratio_db(signal, noise)
}

/// The best [`snr_db`] over whole-sample shifts of `test` by up to
/// `max_lag` samples either way, for outputs whose delay is unknown, and the
/// shift that gave it (positive: `test` lags `reference`). Interleaved
/// multichannel signals need `max_lag` in values and shifts that are
/// multiples of the channel count: use [`snr_db_aligned_frames`].
pub fn snr_db_aligned(test: &[f64], reference: &[f64], max_lag: usize) -> (f64, isize) {
    snr_db_aligned_frames(test, reference, max_lag, 1)
}

/// [`snr_db_aligned`] for interleaved signals of `channels` values a sample:
/// shifts are whole samples, `max_lag` counts samples.
pub fn snr_db_aligned_frames(
    test: &[f64],
    reference: &[f64],
    max_lag: usize,
    channels: usize,
) -> (f64, isize) {
    let ch = channels.max(1);
    let mut best = (f64::NEG_INFINITY, 0isize);
    for lag in -(max_lag as isize)..=max_lag as isize {
        let shift = lag.unsigned_abs() * ch;
        let (t, r) = if lag >= 0 {
            (test.get(shift..).unwrap_or(&[]), reference)
        } else {
            (test, reference.get(shift..).unwrap_or(&[]))
        };
        let n = t.len().min(r.len());
        let snr = snr_db(&t[..n], &r[..n]);
        if snr > best.0 || (snr == best.0 && lag.unsigned_abs() < best.1.unsigned_abs()) {
            best = (snr, lag);
        }
    }
    best
}

/// Mean of per-segment SNRs (each clamped to [-10, 35] dB, segments of
/// silent reference skipped): closer to what a listener hears than one
/// global figure, since a loud passage cannot hide a ruined quiet one.
pub fn segmental_snr_db(test: &[f64], reference: &[f64], segment: usize) -> f64 {
    let seg = segment.max(1);
    let (mut sum, mut count) = (0.0, 0usize);
    for (t, r) in test.chunks(seg).zip(reference.chunks(seg)) {
        if r.iter().all(|&v| v.abs() < 1e-9) {
            continue;
        }
        sum += snr_db(t, r).clamp(-10.0, 35.0);
        count += 1;
    }
    if count == 0 {
        f64::INFINITY
    } else {
        sum / count as f64
    }
}

/// A perceptual proxy: the log-spectral distance in dB between `test` and
/// `reference` (interleaved, `channels` values a sample, at `rate` Hz),
/// over 20 ms Hann-windowed frames and 24 log-spaced bands from 50 Hz to
/// 20 kHz (or Nyquist): `sqrt(mean (10 log10(E_ref / E_test))^2)` over
/// frames, bands and channels whose reference band is not silent. Blind to
/// phase, like the ear; ~1 dB is hard to hear, 3 dB and more is audible.
pub fn band_lsd_db(test: &[f64], reference: &[f64], rate: u32, channels: usize) -> f64 {
    let ch = channels.max(1);
    let n = (rate as usize / 50).max(16);
    let top = (rate as f64 / 2.0).min(20_000.0);
    let bands = 24;
    let edge = |b: usize| 50.0 * (top / 50.0).powf(b as f64 / bands as f64);
    let bin_of = |f: f64| ((f * n as f64 / rate as f64) as usize).clamp(1, n / 2);
    let window: Vec<f64> = (0..n)
        .map(|i| 0.5 - 0.5 * (std::f64::consts::TAU * i as f64 / n as f64).cos())
        .collect();
    // Twiddles for the DFT bins up to Nyquist.
    let (cos, sin): (Vec<f64>, Vec<f64>) = (0..n)
        .map(|i| {
            let a = std::f64::consts::TAU * i as f64 / n as f64;
            (a.cos(), a.sin())
        })
        .unzip();
    let power = |x: &[f64], out: &mut Vec<f64>| {
        out.clear();
        for k in 0..=n / 2 {
            let (mut re, mut im) = (0.0, 0.0);
            for (i, v) in x.iter().enumerate() {
                let j = (i * k) % n;
                re += v * cos[j];
                im -= v * sin[j];
            }
            out.push(re * re + im * im);
        }
    };
    let frames = test.len().min(reference.len()) / ch / n;
    let (mut sum, mut count) = (0.0, 0usize);
    let (mut xt, mut xr) = (vec![0.0; n], vec![0.0; n]);
    let (mut pt, mut pr) = (Vec::new(), Vec::new());
    for f in 0..frames {
        for c in 0..ch {
            for i in 0..n {
                let at = (f * n + i) * ch + c;
                xt[i] = test[at] * window[i];
                xr[i] = reference[at] * window[i];
            }
            power(&xt, &mut pt);
            power(&xr, &mut pr);
            let peak = pr.iter().cloned().fold(0.0, f64::max);
            for b in 0..bands {
                let (lo, hi) = (
                    bin_of(edge(b)),
                    bin_of(edge(b + 1)).max(bin_of(edge(b)) + 1),
                );
                let er: f64 = pr[lo..hi.min(pr.len())].iter().sum();
                let et: f64 = pt[lo..hi.min(pt.len())].iter().sum();
                // Bands 60 dB below the frame's peak bin are inaudible here.
                if er <= peak * 1e-6 || er == 0.0 {
                    continue;
                }
                let d = 10.0 * (er / et.max(er * 1e-6)).log10();
                sum += d * d;
                count += 1;
            }
        }
    }
    if count == 0 {
        0.0
    } else {
        (sum / count as f64).sqrt()
    }
}

/// How well a concealment method restored a signal.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConcealmentScore {
    /// SNR of the whole output against the loss-free output.
    pub snr_db: f64,
    /// SNR over the concealed samples only (silence scores 0 dB here).
    pub gap_snr_db: f64,
    /// What the concealer counted.
    pub stats: ConcealStats,
}

/// Runs `reference` (interleaved f64, `format.channels` values a sample)
/// through wire encoding, a loss pattern and a [`Concealer`], and scores the
/// result against the same signal without loss (so quantisation by the
/// encoding is not counted).
///
/// The signal is cut into frames of `frame` samples; `present(f, i)` says
/// whether sample `i` of frame `f` arrived. Lost bytes are zeroed before
/// concealment, as a receiver would see them. With `lookahead`, each frame
/// is concealed knowing the next one, as a playout with a buffered next
/// frame would.
pub fn score_concealment(
    reference: &[f64],
    format: StreamFormat,
    frame: usize,
    mut present: impl FnMut(usize, usize) -> bool,
    method: Method,
    lookahead: bool,
) -> Result<ConcealmentScore> {
    let ch = format.channels as usize;
    let enc = format.encoding;
    let stride = format.stride();
    let samples = reference.len() / ch;
    let mut clean = vec![0u8; samples * stride];
    encoding::encode(enc, &reference[..samples * ch], &mut clean);
    let frames = samples.div_ceil(frame.max(1));
    let words_per = frame.div_ceil(64);
    let mut words = vec![0u64; frames * words_per];
    let mut lossy = clean.clone();
    let mut lost_at = vec![false; samples];
    for f in 0..frames {
        let len = frame.min(samples - f * frame);
        for i in 0..len {
            if present(f, i) {
                words[f * words_per + i / 64] |= 1 << (i % 64);
            } else {
                let g = f * frame + i;
                lost_at[g] = true;
                lossy[g * stride..(g + 1) * stride].fill(0);
            }
        }
    }
    let mut concealer = Concealer::new(method, format, frame)?;
    let mut out = lossy.clone();
    for f in 0..frames {
        let (a, b) = (f * frame, (f * frame + frame).min(samples));
        let mask = SampleMask::new(&words[f * words_per..(f + 1) * words_per], b - a);
        let next = (lookahead && f + 1 < frames).then(|| {
            let (c, d) = (b, (b + frame).min(samples));
            Lookahead {
                bytes: &lossy[c * stride..d * stride],
                mask: SampleMask::new(&words[(f + 1) * words_per..(f + 2) * words_per], d - c),
            }
        });
        concealer.conceal_with(&mut out[a * stride..b * stride], mask, next)?;
    }
    let mut want = vec![0f64; samples * ch];
    let mut got = vec![0f64; samples * ch];
    encoding::decode(enc, &clean, &mut want);
    encoding::decode(enc, &out, &mut got);
    let gaps = |v: &[f64]| -> Vec<f64> {
        v.chunks_exact(ch)
            .zip(&lost_at)
            .filter(|(_, lost)| **lost)
            .flat_map(|(s, _)| s.iter().copied())
            .collect()
    };
    Ok(ConcealmentScore {
        snr_db: snr_db(&got, &want),
        gap_snr_db: snr_db(&gaps(&got), &gaps(&want)),
        stats: concealer.stats(),
    })
}

fn ratio_db(signal: f64, noise: f64) -> f64 {
    if noise == 0.0 {
        f64::INFINITY
    } else if signal == 0.0 {
        f64::NEG_INFINITY
    } else {
        10.0 * (signal / noise).log10()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snr_of_known_noise() {
        let r: Vec<f64> = (0..1000).map(|i| (i as f64 * 0.1).sin()).collect();
        assert_eq!(snr_db(&r, &r), f64::INFINITY);
        let t: Vec<f64> = r.iter().map(|v| v * 0.9).collect();
        assert!((snr_db(&t, &r) - 20.0).abs() < 1e-9);
        let silence = vec![0.0; 1000];
        assert!(snr_db(&silence, &r).abs() < 1e-9, "silence is 0 dB");
    }

    #[test]
    fn alignment_finds_the_delay() {
        let r: Vec<f64> = (0..2000)
            .map(|i| (i as f64 * 0.05).sin() * (i as f64 * 0.001).cos())
            .collect();
        let mut t = vec![0.0; 7];
        t.extend_from_slice(&r[..r.len() - 7]);
        let (snr, lag) = snr_db_aligned(&t, &r, 20);
        assert_eq!(lag, 7);
        assert!(snr == f64::INFINITY, "{snr}");
        assert!(segmental_snr_db(&r, &r, 100) == 35.0);
    }
}
