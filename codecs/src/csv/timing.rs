//! The rate of a sensor CSV from its time column, and the proof that the
//! column is regular enough for times to be rebuilt from the media clock.

use crate::format::Rate;

/// Why a time column is not a regular grid: the offending data row (0-based)
/// and what was wrong with it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Irregular {
    pub row: usize,
    pub detail: String,
}

/// Checks `times` against a grid and returns its rate.
///
/// Without `given`, the first step sets the expected period and each later
/// step must stay within `tolerance` periods of it, which finds the exact
/// row of a gap or a jump; the rate is then the mean step over the whole
/// span, made exact as the simplest fraction the printed precision allows.
/// Either way every time must lie within `tolerance` periods of
/// `start + i / rate`, which also catches slow drift.
pub(crate) fn regular_rate(
    times: &[f64],
    given: Option<Rate>,
    decimals: u8,
    tolerance: f64,
) -> Result<Rate, Irregular> {
    for i in 1..times.len() {
        if times[i] <= times[i - 1] || !times[i].is_finite() {
            return Err(Irregular {
                row: i,
                detail: format!("time {} s does not come after {} s", times[i], times[i - 1]),
            });
        }
    }
    let rate = match given {
        Some(r) => r,
        None => {
            let (t0, t1) = (times[0], times[1]);
            let first = t1 - t0;
            for i in 2..times.len() {
                let step = times[i] - times[i - 1];
                if (step - first).abs() > tolerance * first {
                    return Err(Irregular {
                        row: i,
                        detail: format!(
                            "a step of {} s from {} s, where the first step set the period \
                             to {} s (tolerance {} %)",
                            round_for_humans(step),
                            times[i - 1],
                            round_for_humans(first),
                            tolerance * 100.0
                        ),
                    });
                }
            }
            let span = times[times.len() - 1] - t0;
            let period = span / (times.len() - 1) as f64;
            // Printed times carry +-half a unit in their last place at each end;
            // with few rows that allows far too much, so never accept a
            // fraction more than 1e-4 away from the measured rate.
            let precision = (10f64.powi(-(decimals as i32)) / span).clamp(1e-12, 1e-4);
            simplest_rate(1.0 / period, precision).ok_or_else(|| Irregular {
                row: 1,
                detail: format!("a period of {period} s is not a usable sample rate"),
            })?
        }
    };
    let period = 1.0 / rate.as_f64();
    let t0 = times[0];
    for (i, &t) in times.iter().enumerate() {
        let ideal = t0 + i as f64 * rate.den() as f64 / rate.num() as f64;
        if (t - ideal).abs() > tolerance * period {
            return Err(Irregular {
                row: i,
                detail: format!(
                    "time {t} s is {} s off the regular grid of {} Hz starting at {t0} s, \
                     where it should be {} s",
                    round_for_humans(t - ideal),
                    round_for_humans(rate.as_f64()),
                    round_for_humans(ideal)
                ),
            });
        }
    }
    Ok(rate)
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

    fn grid(n: usize, start: f64, rate: f64, decimals: i32) -> Vec<f64> {
        let s = 10f64.powi(decimals);
        (0..n)
            .map(|i| ((start + i as f64 / rate) * s).round() / s)
            .collect()
    }

    #[test]
    fn printed_rates_become_exact_fractions() {
        let r = regular_rate(&grid(1000, 12.5, 100.0, 2), None, 2, 0.1).unwrap();
        assert_eq!((r.num(), r.den()), (100, 1));
        let r = regular_rate(&grid(5000, 0.0, 30_000.0 / 1001.0, 6), None, 6, 0.1).unwrap();
        assert_eq!((r.num(), r.den()), (30_000, 1_001));
        let r = regular_rate(&grid(10, 0.0, 0.5, 0), None, 0, 0.1).unwrap();
        assert_eq!((r.num(), r.den()), (1, 2));
        // 3 Hz printed with 3 decimals: 0.333, 0.667, 1.000 ...
        let r = regular_rate(&grid(300, 0.0, 3.0, 3), None, 3, 0.1).unwrap();
        assert_eq!((r.num(), r.den()), (3, 1));
    }

    #[test]
    fn a_gap_is_reported_at_its_row() {
        let mut t = grid(100, 0.0, 50.0, 2);
        t.remove(40);
        let e = regular_rate(&t, None, 2, 0.1).unwrap_err();
        assert_eq!(e.row, 40);
        assert!(e.detail.contains("0.04 s"), "{}", e.detail);
    }

    #[test]
    fn drift_and_disagreeing_rates_are_caught() {
        // 1 % slow drift: every step is within tolerance, the grid is not.
        let t: Vec<f64> = (0..1000)
            .map(|i| i as f64 * 0.01 * (1.0 + i as f64 * 1e-4))
            .collect();
        assert!(regular_rate(&t, None, 6, 0.1).is_err());
        let t = grid(100, 0.0, 100.0, 2);
        let e = regular_rate(&t, Some(Rate::hz(50).unwrap()), 2, 0.1).unwrap_err();
        assert_eq!(e.row, 1);
        let e = regular_rate(&[0.0, 0.1, 0.1], None, 1, 0.1).unwrap_err();
        assert!(e.detail.contains("does not come after"), "{}", e.detail);
    }
}
