//! Finds the period to continue a waveform with: the lag at which the most
//! recent stretch of signal best matches an earlier one (normalised
//! cross-correlation), searched coarse on a decimated copy and refined at
//! full rate, so the cost stays the same from 8 kHz to 192 kHz.

/// Preallocated buffers and lag limits for one substream.
#[derive(Debug, Clone)]
pub(crate) struct PitchSearch {
    /// Decimation factor of the coarse search (about 8 kHz).
    factor: usize,
    pub min_lag: usize,
    pub max_lag: usize,
    /// Samples compared at each lag.
    pub window: usize,
    /// Mono context, `max_lag + window` samples, filled by the caller.
    pub mono: Vec<f64>,
    coarse: Vec<f64>,
}

impl PitchSearch {
    pub fn new(rate: f64, min_lag: usize, max_lag: usize, window: usize) -> Self {
        let factor = ((rate / 8_000.0).floor() as usize).max(1);
        let ctx = max_lag + window;
        Self {
            factor,
            min_lag,
            max_lag,
            window,
            mono: vec![0.0; ctx],
            coarse: vec![0.0; ctx / factor + 1],
        }
    }

    /// Samples of context the search needs before the gap.
    pub fn context(&self) -> usize {
        self.max_lag + self.window
    }

    /// The best lag over `mono` and its correlation in [-1, 1].
    pub fn search(&mut self) -> (usize, f64) {
        let d = self.factor;
        let ctx = self.context();
        let nd = ctx / d;
        for (k, c) in self.coarse[..nd].iter_mut().enumerate() {
            *c = self.mono[k * d..(k + 1) * d].iter().sum::<f64>() / d as f64;
        }
        let wd = (self.window / d).max(1);
        let lo = (self.min_lag / d).max(1);
        let hi = (self.max_lag / d).min(nd.saturating_sub(wd));
        let mut best = (self.min_lag, f64::NEG_INFINITY);
        for p in lo..=hi {
            let c = correlation(&self.coarse[..nd], wd, p);
            if c > best.1 {
                best = (p * d, c);
            }
        }
        let centre = best.0;
        let lo = centre.saturating_sub(d).max(self.min_lag);
        let hi = (centre + d).min(self.max_lag).min(ctx - self.window);
        let mut fine = (centre.clamp(self.min_lag, self.max_lag), f64::NEG_INFINITY);
        for p in lo..=hi {
            let c = correlation(&self.mono[..ctx], self.window, p);
            if c > fine.1 {
                fine = (p, c);
            }
        }
        if fine.1.is_finite() {
            fine
        } else {
            (fine.0, 0.0)
        }
    }
}

/// Normalised correlation of the last `w` values of `x` with the `w`
/// values `lag` earlier; 0 for silence.
fn correlation(x: &[f64], w: usize, lag: usize) -> f64 {
    let n = x.len();
    let a = &x[n - w..];
    let b = &x[n - w - lag..n - lag];
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for (&u, &v) in a.iter().zip(b) {
        ab += u * v;
        aa += u * u;
        bb += v * v;
    }
    let den = (aa * bb).sqrt();
    if den > 1e-20 { ab / den } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_period_of_a_harmonic_tone() {
        let rate = 48_000.0;
        let mut s = PitchSearch::new(rate, 96, 960, 480);
        let f0 = 150.0; // period 320 samples
        for (i, m) in s.mono.iter_mut().enumerate() {
            let t = i as f64 / rate;
            *m = (std::f64::consts::TAU * f0 * t).sin()
                + 0.5 * (std::f64::consts::TAU * 2.0 * f0 * t).sin();
        }
        let (lag, c) = s.search();
        assert!(lag == 320 || lag == 640 || lag == 960, "{lag}");
        assert!(c > 0.99, "{c}");
    }
}
