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
    /// Mono history for [`Self::find`], filled by the caller.
    pub past: Vec<f64>,
    past_coarse: Vec<f64>,
    /// Mono signal to look for in `past`, filled by the caller.
    pub target: Vec<f64>,
    target_coarse: Vec<f64>,
}

impl PitchSearch {
    /// Buffers for lags up to `max_lag` compared over `window` samples, a
    /// history of `past` samples and targets of up to `target` samples.
    pub fn new(
        rate: f64,
        (min_lag, max_lag, window): (usize, usize, usize),
        past: usize,
        target: usize,
    ) -> Self {
        let factor = ((rate / 8_000.0).floor() as usize).max(1);
        let ctx = max_lag + window;
        Self {
            factor,
            min_lag,
            max_lag,
            window,
            mono: vec![0.0; ctx],
            coarse: vec![0.0; ctx / factor + 1],
            past: vec![0.0; past],
            past_coarse: vec![0.0; past / factor + 1],
            target: vec![0.0; target],
            target_coarse: vec![0.0; target / factor + 1],
        }
    }

    /// Where in `past[..past_len]` the first `target_len` values of `target`
    /// recur best, starting at or after `from`: the start index and the
    /// correlation. `None` when there is no room to look.
    pub fn find(
        &mut self,
        past_len: usize,
        target_len: usize,
        from: usize,
    ) -> Option<(usize, f64)> {
        let d = self.factor;
        if target_len < 2 * d || past_len < from + target_len {
            return None;
        }
        let (np, nt) = (past_len / d, target_len / d);
        decimate(&self.past[..np * d], d, &mut self.past_coarse[..np]);
        decimate(&self.target[..nt * d], d, &mut self.target_coarse[..nt]);
        let mut best = (from, f64::NEG_INFINITY);
        for p in from.div_ceil(d)..=np.saturating_sub(nt) {
            let c = normalised(&self.target_coarse[..nt], &self.past_coarse[p..p + nt]);
            if c > best.1 {
                best = (p * d, c);
            }
        }
        let (lo, hi) = (
            best.0.saturating_sub(d).max(from),
            (best.0 + d).min(past_len - target_len),
        );
        let mut fine = (best.0.clamp(lo, hi), f64::NEG_INFINITY);
        for p in lo..=hi {
            let c = normalised(&self.target[..target_len], &self.past[p..p + target_len]);
            if c > fine.1 {
                fine = (p, c);
            }
        }
        fine.1.is_finite().then_some(fine)
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
        decimate(&self.mono[..nd * d], d, &mut self.coarse[..nd]);
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

/// Block means of `d` values: a cheap low-pass and decimation.
fn decimate(x: &[f64], d: usize, out: &mut [f64]) {
    for (o, block) in out.iter_mut().zip(x.chunks_exact(d)) {
        *o = block.iter().sum::<f64>() / d as f64;
    }
}

/// Normalised correlation of the last `w` values of `x` with the `w`
/// values `lag` earlier; 0 for silence.
fn correlation(x: &[f64], w: usize, lag: usize) -> f64 {
    let n = x.len();
    normalised(&x[n - w..], &x[n - w - lag..n - lag])
}

/// Normalised correlation of two equal-length slices; 0 for silence.
fn normalised(a: &[f64], b: &[f64]) -> f64 {
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
        let mut s = PitchSearch::new(rate, (96, 960, 480), 0, 0);
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
