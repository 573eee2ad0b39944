//! Time cells as exact integers: seconds (`12.345`) or ISO 8601 date and
//! time (`2024-05-01T12:00:00.125Z`), read into units of the last printed
//! digit and printed back as they were written. No floating point on the
//! way, so a time comes back character for character.

use chrono::{DateTime, NaiveDateTime, Timelike};

use crate::format::{IsoTime, TimeStyle};

/// Most decimals of time carried exactly (nanoseconds).
pub(crate) const MAX_DECIMALS: u8 = 9;

/// What a time cell looks like, before the column's decimals are known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Shape {
    /// Seconds with this many decimals (`None`: exponent notation).
    Seconds(Option<u8>),
    /// ISO 8601 with this separator, decimals and suffix.
    Iso {
        separator: u8,
        decimals: u8,
        suffix: String,
    },
}

/// The shape of a cell, if it is a time at all.
pub(crate) fn shape(cell: &str) -> Option<Shape> {
    let cell = cell.trim();
    if let Some(iso) = parse_iso(cell) {
        return Some(Shape::Iso {
            separator: iso.separator,
            decimals: iso.decimals,
            suffix: iso.suffix.to_owned(),
        });
    }
    let v: f64 = cell.parse().ok()?;
    v.is_finite()
        .then(|| Shape::Seconds(super::text::decimals_of(cell)))
}

struct Iso<'a> {
    separator: u8,
    decimals: u8,
    suffix: &'a str,
    /// Whole Unix seconds of the wall-clock time as written.
    secs: i64,
    /// The fraction's digits.
    frac: &'a str,
}

/// `YYYY-MM-DD[T ]hh:mm:ss[.f+][suffix]`, the calendar checked by chrono.
fn parse_iso(cell: &str) -> Option<Iso<'_>> {
    let b = cell.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let separator = b[10];
    if !matches!(separator, b'T' | b' ') {
        return None;
    }
    let mut end = 19;
    let mut frac = "";
    if b.get(19) == Some(&b'.') {
        let digits = b[20..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 || digits > MAX_DECIMALS as usize {
            return None;
        }
        frac = &cell[20..20 + digits];
        end = 20 + digits;
    }
    let suffix = &cell[end..];
    let zone_ok = match suffix.as_bytes() {
        [] | [b'Z'] => true,
        [b'+' | b'-', h1, h2, rest @ ..] if h1.is_ascii_digit() && h2.is_ascii_digit() => {
            matches!(rest, [] | [_, _] | [b':', _, _])
                && rest.iter().all(|c| c.is_ascii_digit() || *c == b':')
        }
        _ => false,
    };
    if !zone_ok {
        return None;
    }
    let mut fixed = cell[..19].to_owned();
    fixed.replace_range(10..11, "T");
    let t = NaiveDateTime::parse_from_str(&fixed, "%Y-%m-%dT%H:%M:%S").ok()?;
    Some(Iso {
        separator,
        decimals: frac.len() as u8,
        suffix,
        secs: t.and_utc().timestamp(),
        frac,
    })
}

/// A time cell in units of `10^-decimals` s (ISO: from the style's epoch),
/// if it has the column's style and at most its decimals.
pub(crate) fn to_units(cell: &str, style: &TimeStyle, decimals: u8) -> Option<i64> {
    let cell = cell.trim();
    let scale = 10i64.checked_pow(decimals as u32)?;
    match style {
        TimeStyle::Seconds => seconds_units(cell, decimals),
        TimeStyle::Iso(iso) => {
            let p = parse_iso(cell)?;
            if p.separator != iso.separator || p.suffix != iso.suffix || p.decimals > decimals {
                return None;
            }
            let frac = digits_scaled(p.frac, decimals)?;
            (p.secs - iso.epoch).checked_mul(scale)?.checked_add(frac)
        }
    }
}

/// `12.345` as units of `10^-decimals`, exactly when it has at most that
/// many decimals; exponent notation through f64, rounded.
fn seconds_units(cell: &str, decimals: u8) -> Option<i64> {
    let (neg, digits) = match cell.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, cell.strip_prefix('+').unwrap_or(cell)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let plain = !int.is_empty() || !frac.is_empty();
    if plain
        && int.bytes().all(|c| c.is_ascii_digit())
        && frac.bytes().all(|c| c.is_ascii_digit())
        && frac.len() <= decimals as usize
    {
        let scale = 10i64.checked_pow(decimals as u32)?;
        let i: i64 = if int.is_empty() { 0 } else { int.parse().ok()? };
        let v = i
            .checked_mul(scale)?
            .checked_add(digits_scaled(frac, decimals)?)?;
        return Some(if neg { -v } else { v });
    }
    let v: f64 = cell.parse().ok()?;
    let u = (v * 10f64.powi(decimals as i32)).round();
    (u.is_finite() && u.abs() < 9e18).then_some(u as i64)
}

/// Fraction digits as units of `10^-decimals` (`"25"` at 3 decimals: 250).
fn digits_scaled(frac: &str, decimals: u8) -> Option<i64> {
    if frac.len() > decimals as usize {
        return None;
    }
    let v: i64 = if frac.is_empty() {
        0
    } else {
        frac.parse().ok()?
    };
    v.checked_mul(10i64.checked_pow((decimals as usize - frac.len()) as u32)?)
}

/// The style and epoch for a column whose first time is `first`.
pub(crate) fn style_of(first: &Shape, first_cell: &str) -> TimeStyle {
    match first {
        Shape::Seconds(_) => TimeStyle::Seconds,
        Shape::Iso {
            separator, suffix, ..
        } => TimeStyle::Iso(IsoTime {
            separator: *separator,
            suffix: suffix.clone(),
            epoch: parse_iso(first_cell.trim()).map_or(0, |p| p.secs),
        }),
    }
}

/// Appends a time of `units` (`10^-decimals` s from the epoch) as the
/// column writes it.
pub(crate) fn push_time(out: &mut String, units: i64, style: &TimeStyle, decimals: u8) {
    use std::fmt::Write;
    let scale = 10i64.pow(decimals.min(MAX_DECIMALS) as u32);
    let (secs, frac) = (units.div_euclid(scale), units.rem_euclid(scale));
    let d = decimals as usize;
    match style {
        TimeStyle::Seconds => {
            // -0.25 is secs -1, frac 0.75: print from the magnitude instead.
            let (sign, mag) = if units < 0 {
                ("-", -(units as i128))
            } else {
                ("", units as i128)
            };
            let (s, f) = (mag / scale as i128, mag % scale as i128);
            let _ = if d == 0 {
                write!(out, "{sign}{s}")
            } else {
                write!(out, "{sign}{s}.{f:0d$}")
            };
        }
        TimeStyle::Iso(iso) => {
            let Some(t) = iso
                .epoch
                .checked_add(secs)
                .and_then(|s| DateTime::from_timestamp(s, 0))
            else {
                return;
            };
            let t = t.naive_utc();
            let _ = write!(
                out,
                "{}{}{:02}:{:02}:{:02}",
                t.date().format("%Y-%m-%d"),
                iso.separator as char,
                t.hour(),
                t.minute(),
                t.second()
            );
            if d > 0 {
                let _ = write!(out, ".{frac:0d$}");
            }
            out.push_str(&iso.suffix);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(cell: &str, decimals: u8) {
        let shape = shape(cell).unwrap();
        let style = style_of(&shape, cell);
        let u = to_units(cell, &style, decimals).unwrap();
        let mut s = String::new();
        push_time(&mut s, u, &style, decimals);
        assert_eq!(s, cell, "{style:?} {u}");
    }

    #[test]
    fn times_come_back_character_for_character() {
        for (cell, d) in [
            ("12.345", 3),
            ("-0.250", 3),
            ("0", 0),
            ("1700000000.123456789", 9),
            ("2024-05-01T12:00:00.125Z", 3),
            ("2024-02-29 23:59:59", 0),
            ("1999-12-31T23:59:59.000001+02:00", 6),
            ("2024-05-01T00:00:00.5-0500", 1),
        ] {
            round_trip(cell, d);
        }
        assert_eq!(seconds_units("1.5", 3), Some(1500));
        assert_eq!(seconds_units(".5", 1), Some(5));
        assert_eq!(seconds_units("1.5e-3", 4), Some(15));
    }

    #[test]
    fn not_times() {
        for cell in [
            "2024-13-01T00:00:00",
            "2024-05-01X00:00:00",
            "2024-05-01T00:00:00+5",
            "abc",
            "inf",
        ] {
            assert_eq!(shape(cell), None, "{cell}");
        }
        let style = style_of(
            &shape("2024-05-01T00:00:00Z").unwrap(),
            "2024-05-01T00:00:00Z",
        );
        assert_eq!(
            to_units("2024-05-01T00:00:01+01:00", &style, 0),
            None,
            "zone changed"
        );
        assert_eq!(to_units("2024-05-01T00:00:01Z", &style, 0), Some(1));
    }
}
