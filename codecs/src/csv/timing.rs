//! The rate of a sensor CSV from its time column, and the proof that the
//! column is regular enough for times to be rebuilt from the media clock.

use crate::format::Rate;

/// Why a time column cannot be carried: the offending data row (0-based)
/// and what was wrong with it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Irregular {
    pub row: usize,
    pub detail: String,
}

/// The nominal grid of a time column: row `i` is due at
/// `origin + i / rate`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Grid {
    pub rate: Rate,
    /// Units (`10^-decimals` s) of row 0's slot: the first row's time for a
    /// regular column, the best fit through the rows when they jitter.
    pub origin: i64,
    /// Some row's time is not the grid's (to the printed digit): each row's
    /// offset from the grid travels with it.
    pub jitter: bool,
}

/// Row `i`'s grid time after the origin, in units of `10^-decimals` s:
/// `i / rate`, rounded to nearest (exact integer maths).
pub(crate) fn grid_units(i: u64, rate: Rate, decimals: u8) -> i64 {
    let scale = 10i128.pow(decimals as u32);
    let n = i as i128 * rate.den() as i128 * scale;
    let d = rate.num() as i128;
    ((2 * n + d) / (2 * d)) as i64
}

/// Fits a grid to `times` (units of `10^-decimals` s, one per row).
///
/// The rate is `given`, or the least-squares step made exact: the
/// simplest fraction the printed precision allows when the column is
/// regular, else the simplest within half a period over the whole span (a
/// 100 Hz logger with jitter reads as 100 Hz). The origin is the first
/// row's time, or the mean fit when the rows jitter. Every time must then
/// lie within `tolerance` periods of its slot (a gap, a jump or drift names
/// its row); times off the grid are jitter, carried exactly.
pub(crate) fn fit_grid(
    times: &[i64],
    given: Option<Rate>,
    decimals: u8,
    tolerance: f64,
) -> Result<Grid, Irregular> {
    let scale = 10f64.powi(decimals as i32);
    let secs = |u: i64| u as f64 / scale;
    for i in 1..times.len() {
        if times[i] <= times[i - 1] {
            return Err(Irregular {
                row: i,
                detail: format!(
                    "time {} s does not come after {} s",
                    secs(times[i] - times[0]),
                    secs(times[i - 1] - times[0])
                ),
            });
        }
    }
    let t0 = times[0];
    let n = times.len();
    let median_step = {
        let mut steps: Vec<i64> = times.windows(2).map(|w| w[1] - w[0]).collect();
        steps.sort_unstable();
        steps.get(steps.len() / 2).copied().unwrap_or(1) as f64
    };
    // The grid for `rate` with its origin fitted, checked row by row.
    let fit = |rate: Rate| -> Result<Grid, Irregular> {
        let period = scale * rate.den() as f64 / rate.num() as f64;
        let regular = times
            .iter()
            .enumerate()
            .all(|(i, &t)| t == t0 + grid_units(i as u64, rate, decimals));
        let origin = if regular {
            t0
        } else {
            let sum: i128 = times
                .iter()
                .enumerate()
                .map(|(i, &t)| (t - t0 - grid_units(i as u64, rate, decimals)) as i128)
                .sum();
            t0 + (sum as f64 / n as f64).round() as i64
        };
        // Measured against the exact slot: printed times are coarse.
        let off = |i: usize| (times[i] - origin) as f64 - i as f64 * period;
        let bad = (0..n)
            .find(|&i| off(i).abs() >= tolerance * period)
            .map(|first| {
                // Blame the row where it goes wrong as seen from the first row
                // (a gap or a jump shows there), else the first off the fit.
                // with the median step (or the given rate) as the period.
                let p = if given.is_some() { period } else { median_step };
                (1..n)
                    .find(|&i| ((times[i] - t0) as f64 - i as f64 * p).abs() >= tolerance * p)
                    .unwrap_or(first)
            });
        if let Some(i) = bad {
            let (t, off) = (times[i], off(i));
            {
                let step = if i > 0 { t - times[i - 1] } else { 0 };
                return Err(Irregular {
                    row: i,
                    detail: format!(
                        "time {} s (a step of {} s from the row before) is {} s off the \
                         grid of {} Hz through the rows, {:.0} % of a period where at \
                         most {:.0} % is carried",
                        round_for_humans(secs(t - t0)),
                        round_for_humans(secs(step)),
                        round_for_humans(off / scale),
                        round_for_humans(rate.as_f64()),
                        100.0 * off.abs() / period,
                        100.0 * tolerance
                    ),
                });
            }
        }
        Ok(Grid {
            rate,
            origin,
            jitter: !regular,
        })
    };
    if let Some(rate) = given {
        return fit(rate);
    }
    // Least-squares period over the rows.
    let mean_i = (n - 1) as f64 / 2.0;
    let mean_t = times.iter().map(|&t| (t - t0) as f64).sum::<f64>() / n as f64;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (i, &t) in times.iter().enumerate() {
        let dx = i as f64 - mean_i;
        sxy += dx * ((t - t0) as f64 - mean_t);
        sxx += dx * dx;
    }
    let period = sxy / sxx / scale;
    let span = secs(times[n - 1] - t0);
    let unusable = || Irregular {
        row: 1,
        detail: format!("a period of {period} s is not a usable sample rate"),
    };
    let tight = (1.0 / scale / span).clamp(1e-12, 1e-4);
    let loose = (0.5 * period / span).clamp(1e-12, 0.1);
    let tight_rate = simplest_rate(1.0 / period, tight).ok_or_else(unusable)?;
    let first = fit(tight_rate);
    if matches!(first, Ok(Grid { jitter: false, .. })) {
        return first;
    }
    if let Some(rate) = simplest_rate(1.0 / period, loose)
        && let Ok(g) = fit(rate)
    {
        return Ok(g);
    }
    first
}

/// The first continued-fraction convergent of `x` within `precision`
/// (relative), as an exact [`Rate`]: 100.00003 Hz read from 2-decimal
/// times becomes 100/1, 29.97003 Hz becomes 30000/1001.
pub(crate) fn simplest_rate(x: f64, precision: f64) -> Option<Rate> {
    if !x.is_finite() || x <= 0.0 {
        return None;
    }
    let (mut h0, mut h1) = (0u128, 1u128);
    let (mut k0, mut k1) = (1u128, 0u128);
    let mut r = x;
    for _ in 0..64 {
        let a = r.floor();
        if a > u32::MAX as f64 {
            break;
        }
        let a = a as u128;
        let (h2, k2) = (a * h1 + h0, a * k1 + k0);
        if h2 > u32::MAX as u128 || k2 > u32::MAX as u128 {
            break;
        }
        (h0, h1, k0, k1) = (h1, h2, k1, k2);
        let approx = h1 as f64 / k1 as f64;
        if h1 > 0 && ((approx - x) / x).abs() <= precision {
            return Rate::new(h1 as u32, k1 as u32).ok();
        }
        let frac = r - a as f64;
        if frac < 1e-15 {
            break;
        }
        r = 1.0 / frac;
    }
    if h1 > 0 && k1 > 0 {
        Rate::new(h1 as u32, k1 as u32).ok()
    } else {
        None
    }
}

/// Six significant digits: enough to see what is wrong, short to read.
fn round_for_humans(v: f64) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    let mag = 10f64.powi(5 - v.abs().log10().floor() as i32);
    (v * mag).round() / mag
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(n: usize, start: f64, rate: f64, decimals: i32) -> Vec<i64> {
        let s = 10f64.powi(decimals);
        (0..n)
            .map(|i| ((start + i as f64 / rate) * s).round() as i64)
            .collect()
    }

    #[test]
    fn printed_rates_become_exact_fractions() {
        let g = fit_grid(&grid(1000, 12.5, 100.0, 2), None, 2, 0.5).unwrap();
        assert_eq!((g.rate.num(), g.rate.den(), g.jitter), (100, 1, false));
        let g = fit_grid(&grid(5000, 0.0, 30_000.0 / 1001.0, 6), None, 6, 0.5).unwrap();
        assert_eq!((g.rate.num(), g.rate.den()), (30_000, 1_001));
        let g = fit_grid(&grid(10, 0.0, 0.5, 0), None, 0, 0.5).unwrap();
        assert_eq!((g.rate.num(), g.rate.den(), g.jitter), (1, 2, false));
        // 3 Hz printed with 3 decimals: 0.333, 0.667, 1.000 ...
        let g = fit_grid(&grid(300, 0.0, 3.0, 3), None, 3, 0.5).unwrap();
        assert_eq!((g.rate.num(), g.rate.den(), g.jitter), (3, 1, false));
    }

    #[test]
    fn jitter_of_30_percent_is_carried() {
        let mut t = grid(500, 0.0, 100.0, 4);
        let mut x = 7u64;
        for v in &mut t {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            *v += ((x >> 33) % 61) as i64 - 30; // +-30 % of a 100-unit period
        }
        let g = fit_grid(&t, None, 4, 0.5).unwrap();
        assert_eq!((g.rate.num(), g.rate.den(), g.jitter), (100, 1, true));
        assert!((g.origin - t[0]).abs() <= 30, "the fit, not the first row");
    }

    #[test]
    fn a_gap_is_reported_at_its_row() {
        let mut t = grid(100, 0.0, 50.0, 2);
        t.remove(40);
        let e = fit_grid(&t, None, 2, 0.5).unwrap_err();
        assert_eq!(e.row, 40);
        assert!(e.detail.contains("step of 0.04 s"), "{}", e.detail);
    }

    #[test]
    fn drift_and_disagreeing_rates_are_caught() {
        // 1 % slow drift: steps look fine, the grid does not.
        let t: Vec<i64> = (0..1000)
            .map(|i| (i as f64 * 0.01 * (1.0 + i as f64 * 1e-4) * 1e6).round() as i64)
            .collect();
        assert!(fit_grid(&t, None, 6, 0.5).is_err());
        let t = grid(100, 0.0, 100.0, 2);
        let e = fit_grid(&t, Some(Rate::hz(50).unwrap()), 2, 0.5).unwrap_err();
        assert_eq!(e.row, 1);
        let e = fit_grid(&[0, 1, 1], None, 1, 0.5).unwrap_err();
        assert!(e.detail.contains("does not come after"), "{}", e.detail);
    }

    #[test]
    fn grid_units_round_to_nearest() {
        let r = Rate::hz(3).unwrap();
        let v: Vec<i64> = (0..4).map(|i| grid_units(i, r, 3)).collect();
        assert_eq!(v, vec![0, 333, 667, 1000]);
    }
}
