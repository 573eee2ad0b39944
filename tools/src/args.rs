//! Parsing the units people type: `80ms`, `5%`, `10mbit`, `2s@5s`, `16+4`.

use std::time::Duration;

/// A number and the (lowercased) unit after it: `80ms` -> (80.0, "ms").
fn number_unit(s: &str) -> Option<(f64, String)> {
    let t = s.trim().to_lowercase();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    Some((num.parse().ok()?, unit.trim().to_owned()))
}

/// `250us`, `80ms`, `2s`, `1.5s`, `1m` (a bare number is milliseconds).
pub fn duration(s: &str) -> Result<Duration, String> {
    let (v, unit) =
        number_unit(s).ok_or_else(|| format!("'{s}' is not a duration (try 80ms, 2s, 500us)"))?;
    let secs = match unit.as_str() {
        "us" | "µs" => v / 1e6,
        "" | "ms" => v / 1e3,
        "s" => v,
        "m" | "min" => v * 60.0,
        "h" => v * 3600.0,
        other => {
            return Err(format!(
                "unknown time unit '{other}' in '{s}' (use us, ms, s, m or h)"
            ));
        }
    };
    if !(0.0..=86_400.0).contains(&secs) {
        return Err(format!("'{s}' is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `5%`, `0.5%`, or a fraction `0.05`; between 0 and 100 %.
pub fn percent(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let v = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|p| p / 100.0),
        None => t.parse::<f64>(),
    }
    .map_err(|_| format!("'{s}' is not a percentage (try 5%)"))?;
    if !(0.0..=1.0).contains(&v) {
        return Err(format!("'{s}' is outside 0..100 %"));
    }
    Ok(v)
}

/// `10mbit`, `500kbit`, `1gbit`, `64kbps`... or bits per second.
pub fn rate(s: &str) -> Result<u64, String> {
    let (v, unit) = number_unit(s).ok_or_else(|| format!("'{s}' is not a rate (try 10mbit)"))?;
    let mult = match unit.as_str() {
        "" | "bit" | "bps" => 1.0,
        "k" | "kbit" | "kbps" => 1e3,
        "m" | "mbit" | "mbps" => 1e6,
        "g" | "gbit" | "gbps" => 1e9,
        other => {
            return Err(format!(
                "unknown rate unit '{other}' in '{s}' (use kbit, mbit, gbit)"
            ));
        }
    };
    let bps = v * mult;
    if !(bps.is_finite() && bps >= 1000.0) {
        return Err(format!("'{s}' is below 1 kbit/s"));
    }
    Ok(bps as u64)
}

/// `64KiB`, `500MB`, `4GiB`, `1TB`... or bytes: decimal (k, M, G, T) and
/// binary (KiB, MiB, GiB, TiB) units, a `B` optional.
pub fn size(s: &str) -> Result<u64, String> {
    let (v, unit) =
        number_unit(s).ok_or_else(|| format!("'{s}' is not a size (try 64KiB, 500MB, 4GiB)"))?;
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1e3,
        "m" => 1e6,
        "g" => 1e9,
        "t" => 1e12,
        "ki" => 1024.0,
        "mi" => 1024.0 * 1024.0,
        "gi" => 1024.0 * 1024.0 * 1024.0,
        "ti" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => {
            return Err(format!(
                "unknown size unit in '{s}' (use B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)"
            ));
        }
    };
    let bytes = v * mult;
    if !(bytes.is_finite() && bytes < u64::MAX as f64) {
        return Err(format!("'{s}' is out of range"));
    }
    Ok(bytes.round() as u64)
}

/// A limit that may be lifted: `none` (no limit) or what `parse` takes.
fn or_none<T>(s: &str, parse: fn(&str) -> Result<T, String>) -> Result<Option<T>, String> {
    if s.trim().eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    parse(s).map(Some)
}

/// A size limit: `4GiB`, ... or `none`.
pub fn size_limit(s: &str) -> Result<Option<u64>, String> {
    or_none(s, size)
}

/// A duration limit: `12h`, `30m`, ... or `none`.
pub fn duration_limit(s: &str) -> Result<Option<Duration>, String> {
    or_none(s, duration)
}

/// A count limit: `10000` or `none`.
pub fn count_limit(s: &str) -> Result<Option<u64>, String> {
    or_none(s, |t| {
        t.trim()
            .parse()
            .map_err(|_| format!("'{t}' is not a count (or none)"))
    })
}

/// An outage `LENGTH@START`: `2s@5s` is two seconds of nothing from second five.
pub fn outage(s: &str) -> Result<(Duration, Duration), String> {
    let (len, at) = s
        .split_once('@')
        .ok_or_else(|| format!("'{s}' is not an outage (use LENGTH@START, e.g. 2s@5s)"))?;
    Ok((duration(len)?, duration(at)?))
}

/// `--latency`: a fixed target, or `auto[:MIN..MAX]` following the delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Latency {
    /// This much above the fastest path.
    Fixed(Duration),
    /// Adaptive within these bounds.
    Auto(Duration, Duration),
}

/// `80ms`, `auto` (20ms..500ms) or `auto:10ms..200ms`.
pub fn latency(s: &str) -> Result<Latency, String> {
    let t = s.trim();
    let Some(rest) = t.strip_prefix("auto") else {
        return duration(t).map(Latency::Fixed);
    };
    let (min, max) = match rest.strip_prefix(':') {
        None if rest.is_empty() => (Duration::from_millis(20), Duration::from_millis(500)),
        Some(b) => {
            let (lo, hi) = b.split_once("..").ok_or_else(|| {
                format!("'{s}': use auto or auto:MIN..MAX (e.g. auto:10ms..200ms)")
            })?;
            (duration(lo)?, duration(hi)?)
        }
        None => return Err(format!("'{s}': use auto or auto:MIN..MAX")),
    };
    if min.is_zero() || min >= max {
        return Err(format!("'{s}': need 0 < MIN < MAX"));
    }
    Ok(Latency::Auto(min, max))
}

/// A FEC code from the command line: `Some((k, m))`, or `None` for off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fec(pub Option<(u8, u8)>);

/// `16+4` (k source + m repair packets a block) or `off`.
pub fn fec(s: &str) -> Result<Fec, String> {
    fec_code(s).map(Fec)
}

fn fec_code(s: &str) -> Result<Option<(u8, u8)>, String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("off") || t == "0" {
        return Ok(None);
    }
    let bad = || format!("'{s}' is not a FEC code (use K+M such as 16+4, or off)");
    let (k, m) = t.split_once('+').ok_or_else(bad)?;
    let k: u16 = k.trim().parse().map_err(|_| bad())?;
    let m: u16 = m.trim().parse().map_err(|_| bad())?;
    if k == 0 || m == 0 || k + m > 256 {
        return Err(format!("FEC {k}+{m}: need k >= 1, m >= 1 and k + m <= 256"));
    }
    Ok(Some((k as u8, m as u8)))
}

/// Packet interleaving asked for: a fixed depth, or automatic up to a
/// most (the receiver may grant less).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interleave {
    /// The depth, or with `auto` the most.
    pub depth: u8,
    /// Adaptive FEC picks the depth in force from the measured bursts.
    pub auto: bool,
}

/// Deepest automatic interleaving `--interleave auto` asks for.
pub const AUTO_DEPTH: u8 = 8;

/// `D` (1..=64), `auto` (up to [`AUTO_DEPTH`]) or `auto:N`.
pub fn interleave(s: &str) -> Result<Interleave, String> {
    let t = s.trim().to_ascii_lowercase();
    let bad = || format!("'{s}' is no interleave depth (use 1..=64, auto or auto:N)");
    let depth = |d: &str| -> Result<u8, String> {
        match d.trim().parse::<u8>() {
            Ok(n) if (1..=64).contains(&n) => Ok(n),
            _ => Err(bad()),
        }
    };
    match t.strip_prefix("auto") {
        Some("") => Ok(Interleave {
            depth: AUTO_DEPTH,
            auto: true,
        }),
        Some(rest) => Ok(Interleave {
            depth: depth(rest.strip_prefix(':').ok_or_else(bad)?)?,
            auto: true,
        }),
        None => Ok(Interleave {
            depth: depth(&t)?,
            auto: false,
        }),
    }
}

/// A residual loss to aim for: a ratio (`1e-4`, `0.001`) or a percentage
/// (`0.1%`), above 0 and below 0.5.
pub fn loss_target(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let bad =
        || format!("'{s}' is no loss target (use a ratio like 1e-4, or a percentage like 0.1%)");
    let v = match t.strip_suffix('%') {
        Some(pct) => pct.trim().parse::<f64>().map_err(|_| bad())? / 100.0,
        None => t.parse::<f64>().map_err(|_| bad())?,
    };
    if (1e-9..0.5).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{}: it must lie between 1e-9 and 0.5", bad()))
    }
}

/// `fec`, `arq` or `hybrid`.
pub fn recovery(s: &str) -> Result<isochron_engine::Recovery, String> {
    use isochron_engine::Recovery;
    match s.trim().to_ascii_lowercase().as_str() {
        "fec" => Ok(Recovery::Fec),
        "arq" => Ok(Recovery::Arq),
        "hybrid" => Ok(Recovery::Hybrid),
        _ => Err(format!(
            "'{s}' is no recovery mode (use fec, arq or hybrid)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleave_depths() {
        let i = |d, auto| Interleave { depth: d, auto };
        assert_eq!(interleave("2").unwrap(), i(2, false));
        assert_eq!(interleave("auto").unwrap(), i(AUTO_DEPTH, true));
        assert_eq!(interleave("Auto:12").unwrap(), i(12, true));
        for bad in ["0", "65", "auto:", "auto:0", "autox", "deep"] {
            assert!(interleave(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes_and_limits() {
        assert_eq!(size("65536").unwrap(), 65_536);
        assert_eq!(size("64KiB").unwrap(), 65_536);
        assert_eq!(size("500MB").unwrap(), 500_000_000);
        assert_eq!(size("4GiB").unwrap(), 4 << 30);
        assert_eq!(size("1.5k").unwrap(), 1500);
        assert!(size("12 parsecs").is_err());
        assert_eq!(size_limit("none").unwrap(), None);
        assert_eq!(size_limit("1GiB").unwrap(), Some(1 << 30));
        assert_eq!(
            duration_limit("12h").unwrap(),
            Some(Duration::from_secs(43_200))
        );
        assert_eq!(count_limit("None").unwrap(), None);
        assert_eq!(count_limit("10").unwrap(), Some(10));
        assert!(count_limit("ten").is_err());
    }

    #[test]
    fn loss_targets() {
        assert_eq!(loss_target("1e-4").unwrap(), 1e-4);
        assert_eq!(loss_target(" 0.001 ").unwrap(), 0.001);
        assert!((loss_target("0.25%").unwrap() - 0.0025).abs() < 1e-12);
        for bad in ["0", "-1e-3", "0.5", "50%", "NaN", "inf", "lots", "%"] {
            assert!(loss_target(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn recovery_modes() {
        use isochron_engine::Recovery;
        assert_eq!(recovery("ARQ").unwrap(), Recovery::Arq);
        assert_eq!(recovery("hybrid").unwrap(), Recovery::Hybrid);
        assert!(recovery("both").unwrap_err().contains("fec, arq or hybrid"));
    }

    #[test]
    fn units() {
        assert_eq!(duration("80ms").unwrap(), Duration::from_millis(80));
        assert_eq!(duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(duration("250us").unwrap(), Duration::from_micros(250));
        assert_eq!(duration("40").unwrap(), Duration::from_millis(40));
        assert!(
            duration("5 parsecs")
                .unwrap_err()
                .contains("unknown time unit")
        );
        assert_eq!(percent("5%").unwrap(), 0.05);
        assert_eq!(percent("0.02").unwrap(), 0.02);
        assert!(percent("150%").is_err());
        assert_eq!(rate("10mbit").unwrap(), 10_000_000);
        assert_eq!(rate("500kbit").unwrap(), 500_000);
        assert_eq!(
            outage("2s@5s").unwrap(),
            (Duration::from_secs(2), Duration::from_secs(5))
        );
        assert_eq!(fec("16+4").unwrap(), Fec(Some((16, 4))));
        assert_eq!(fec("off").unwrap(), Fec(None));
        assert!(fec("250+10").unwrap_err().contains("k + m <= 256"));
        assert_eq!(
            latency("80ms").unwrap(),
            Latency::Fixed(Duration::from_millis(80))
        );
        assert_eq!(
            latency("auto:10ms..200ms").unwrap(),
            Latency::Auto(Duration::from_millis(10), Duration::from_millis(200))
        );
        assert!(matches!(latency("auto").unwrap(), Latency::Auto(..)));
        assert!(latency("auto:50ms..10ms").is_err());
    }

    proptest::proptest! {
        #[test]
        fn parsers_never_panic(s in ".{0,20}") {
            let _ = (duration(&s), percent(&s), rate(&s), outage(&s), fec(&s), latency(&s));
        }

        #[test]
        fn durations_round_trip(ms in 0u64..10_000_000) {
            proptest::prop_assert_eq!(duration(&format!("{ms}ms")).unwrap(), Duration::from_millis(ms));
        }
    }
}
