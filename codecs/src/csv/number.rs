//! Number styles of CSV columns: which of a few printf / repr styles
//! reproduces every cell of a column, and printing values in it.

use std::fmt::Write;

use crate::format::NumberStyle;

/// Appends `v` (finite) in `style`; `single`: the value went through f32,
/// so shortest styles print f32 digits.
pub(crate) fn push_number(out: &mut String, v: f64, style: NumberStyle, single: bool) {
    match style {
        NumberStyle::Fixed { decimals, plus } => {
            if plus && v.is_sign_positive() {
                out.push('+');
            }
            let _ = write!(out, "{v:.*}", decimals as usize);
        }
        NumberStyle::Exp {
            decimals,
            upper,
            exp_digits,
            exp_plus,
        } => {
            let s = format!("{v:.*e}", decimals as usize);
            push_exp(out, &s, upper, exp_digits, exp_plus);
        }
        NumberStyle::Shortest { point } => {
            let start = out.len();
            let a = v.abs();
            let _ = if a != 0.0 && !(1e-4..1e15).contains(&a) {
                if single {
                    write!(out, "{:e}", v as f32)
                } else {
                    write!(out, "{v:e}")
                }
            } else if single {
                write!(out, "{}", v as f32)
            } else {
                write!(out, "{v}")
            };
            if point && !out[start..].contains(['.', 'e']) {
                out.push_str(".0");
            }
        }
        NumberStyle::Repr => {
            let s = if single {
                format!("{:e}", v as f32)
            } else {
                format!("{v:e}")
            };
            let exp: i32 = s
                .split_once('e')
                .and_then(|(_, e)| e.parse().ok())
                .unwrap_or(0);
            if (-4..16).contains(&exp) {
                let start = out.len();
                let _ = if single {
                    write!(out, "{}", v as f32)
                } else {
                    write!(out, "{v}")
                };
                if !out[start..].contains('.') {
                    out.push_str(".0");
                }
            } else {
                push_exp(out, &s, false, 2, true);
            }
        }
    }
}

/// Rewrites Rust's `1.5e-5` as `1.5e-05`, `1.5E+05`... and appends it.
fn push_exp(out: &mut String, rust: &str, upper: bool, digits: u8, plus: bool) {
    let (m, e) = rust.split_once('e').unwrap_or((rust, "0"));
    let (neg, mag) = match e.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, e),
    };
    out.push_str(m);
    out.push(if upper { 'E' } else { 'e' });
    if neg {
        out.push('-');
    } else if plus {
        out.push('+');
    }
    for _ in mag.len()..digits as usize {
        out.push('0');
    }
    out.push_str(mag);
}

/// The styles a cell's look suggests, most specific first.
fn candidates(cell: &str) -> Vec<NumberStyle> {
    let plus = cell.starts_with('+');
    let body = cell.trim_start_matches(['+', '-']);
    let mut c = Vec::with_capacity(5);
    if let Some(at) = body.find(['e', 'E']) {
        let (m, e) = body.split_at(at);
        let e = &e[1..];
        let decimals = m.split_once('.').map_or(0, |(_, f)| f.len()).min(255) as u8;
        let exp_plus = e.starts_with('+');
        let digits = e.trim_start_matches(['+', '-']);
        let exp_digits = if digits.starts_with('0') && digits.len() > 1 {
            digits.len().min(4) as u8
        } else {
            1
        };
        c.push(NumberStyle::Exp {
            decimals,
            upper: body.as_bytes()[at] == b'E',
            exp_digits,
            exp_plus,
        });
    } else {
        let decimals = body.split_once('.').map_or(0, |(_, f)| f.len()).min(255) as u8;
        c.push(NumberStyle::Fixed { decimals, plus });
    }
    c.push(NumberStyle::Shortest { point: false });
    c.push(NumberStyle::Shortest { point: true });
    c.push(NumberStyle::Repr);
    c
}

/// Finds the style of one column from its cells.
#[derive(Debug, Default, Clone)]
pub(crate) struct StyleGuess {
    alive: Option<Vec<NumberStyle>>,
}

impl StyleGuess {
    /// One more finite cell (trimmed text) and its value.
    pub fn see(&mut self, cell: &str, v: f64) {
        let alive = self.alive.get_or_insert_with(|| candidates(cell));
        if alive.is_empty() {
            return;
        }
        let mut s = String::with_capacity(32);
        alive.retain(|&style| {
            s.clear();
            push_number(&mut s, v, style, false);
            s == cell
        });
    }

    /// The style that reproduced every cell, if one did.
    pub fn finish(&self) -> Option<NumberStyle> {
        self.alive.as_ref().and_then(|a| a.first().copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guess(cells: &[&str]) -> Option<NumberStyle> {
        let mut g = StyleGuess::default();
        for c in cells {
            g.see(c, c.parse().unwrap());
        }
        g.finish()
    }

    #[test]
    fn each_writer_style_is_recognised_and_reproduced() {
        assert_eq!(
            guess(&["1.250", "-0.500", "12.000"]),
            Some(NumberStyle::Fixed {
                decimals: 3,
                plus: false
            })
        );
        assert_eq!(
            guess(&["+1.25", "-0.50", "+0.00"]),
            Some(NumberStyle::Fixed {
                decimals: 2,
                plus: true
            })
        );
        assert_eq!(
            guess(&["1.2340E+05", "-9.8100E-01"]),
            Some(NumberStyle::Exp {
                decimals: 4,
                upper: true,
                exp_digits: 2,
                exp_plus: true
            })
        );
        // Python / pandas floats.
        assert_eq!(
            guess(&["0.1", "1.0", "1e-05", "2.5e+16", "-3.25"]),
            Some(NumberStyle::Repr)
        );
        // Shortest text, whole numbers without a point.
        assert_eq!(
            guess(&["0.1", "1", "0.25"]),
            Some(NumberStyle::Shortest { point: false })
        );
        // Mixed decimals that no style reproduces.
        assert_eq!(guess(&["1.50", "1.250"]), None);
        let mut s = String::new();
        push_number(&mut s, 0.1f32 as f64, NumberStyle::Repr, true);
        assert_eq!(s, "0.1");
    }
}
