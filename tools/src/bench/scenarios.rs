//! The scenario matrix: what link each scenario impairs and how the engine
//! is configured for it, built in or from the command line.

use std::time::Duration;

use isochron_engine::Recovery;
use isochron_engine::sim::{Impairment, Loss, Outage};
use serde::Serialize;

/// One benchmark scenario: a link (the same impairment each way, as
/// `isochron netem` applies it) and the engine's configuration.
#[derive(Debug, Clone, Serialize)]
pub struct Scenario {
    pub name: String,
    /// One line for people.
    pub about: String,
    pub link: Impairment,
    pub config: Config,
    /// Seed of the link's random decisions and of the music.
    pub seed: u64,
}

/// The engine's configuration for a scenario. The defaults are the CLI's:
/// `isochron recv` and `isochron send --live` with no options.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// The latency; with `adaptive`, its upper bound.
    pub latency: Duration,
    /// Adaptive latency (`--latency auto:MIN..MAX`): `(MIN, MAX)`.
    pub adaptive: Option<(Duration, Duration)>,
    pub low_water: Duration,
    pub high_water: Duration,
    pub frame: Duration,
    /// `(k, m)`, or `None` for FEC off.
    pub fec: Option<(u8, u8)>,
    /// Packet interleaving depth D.
    pub interleave: u8,
    /// FEC block time budget; `None`: the receiver picks it from its latency.
    pub fec_window: Option<Duration>,
    /// Adaptive FEC (the sender raises m from the receiver's loss reports).
    pub adaptive_fec: bool,
    /// How losses are recovered (FEC, retransmission, both).
    pub recovery: Recovery,
    /// Add a 200 Hz 3-axis sensor substream next to the audio.
    pub sensor: bool,
    /// File mode at this many times real time (`isochron send` without
    /// `--live`: read ahead, paced by the receiver's credits); `None`: live.
    pub file: Option<f64>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            latency: Duration::from_millis(80),
            adaptive: None,
            low_water: Duration::from_millis(40),
            high_water: Duration::from_millis(160),
            frame: Duration::from_millis(10),
            fec: Some((16, 4)),
            interleave: 1,
            fec_window: None,
            adaptive_fec: true,
            recovery: Recovery::Hybrid,
            sensor: false,
            file: None,
        }
    }
}

/// File mode's fill rate in the bench: `isochron send`'s default.
pub const FILE_FILL: f64 = 2.0;

/// The name of the scale scenario (N sessions into one receiver).
pub const SCALE: &str = "scale";

/// Latency of the low-latency scenario: the smallest that played 2.5 ms
/// frames with zero concealment on loopback here (see `--min-latency` and
/// the README's figures).
pub const LOW_LATENCY: Duration = Duration::from_millis(7);

/// Frame duration of the low-latency scenario.
pub const LOW_LATENCY_FRAME: Duration = Duration::from_micros(2_500);

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

fn scenario(name: &str, about: &str, link: Impairment) -> Scenario {
    Scenario {
        name: name.into(),
        about: about.into(),
        link,
        config: Config::default(),
        seed: 1,
    }
}

/// The same scenario in file mode, as `isochron send` runs it by default
/// (its interleaving depth too), named `file-<name>`: the live scenario of
/// that link is its twin in the report.
fn file_mode(live: &Scenario) -> Scenario {
    let mut s = live.clone();
    s.name = format!("file-{}", live.name);
    s.about = format!("{}; file mode", live.about);
    s.config.file = Some(FILE_FILL);
    s.config.interleave = isochron_engine::config::FILE_INTERLEAVE;
    s
}

fn loss(mean: f64, burst: f64) -> Impairment {
    Impairment {
        loss: Loss::from_mean(mean, burst),
        ..Default::default()
    }
}

/// The built-in matrix, in the order it runs (the scale scenario is run
/// apart: see [`SCALE`]).
pub fn builtin() -> Vec<Scenario> {
    let mut low = scenario(
        "clean-lowlatency",
        "no impairment; 2.5 ms frames at the smallest latency that holds",
        Impairment::default(),
    );
    low.config.frame = LOW_LATENCY_FRAME;
    low.config.latency = LOW_LATENCY;
    let mut v = vec![
        scenario("clean", "no impairment", Impairment::default()),
        low,
        scenario("bernoulli-1", "1 % independent loss", loss(0.01, 1.0)),
        scenario("bernoulli-5", "5 % independent loss", loss(0.05, 1.0)),
        scenario(
            "ge-2-b3",
            "Gilbert-Elliott loss, 2 % mean, bursts of 3",
            loss(0.02, 3.0),
        ),
        scenario(
            "ge-5-b3",
            "Gilbert-Elliott loss, 5 % mean, bursts of 3",
            loss(0.05, 3.0),
        ),
        scenario(
            "ge-5-b10",
            "Gilbert-Elliott loss, 5 % mean, bursts of 10",
            loss(0.05, 10.0),
        ),
        scenario(
            "jitter-10",
            "delay 20 ms +- 10 ms (uniform)",
            Impairment {
                delay: ms(20),
                jitter: ms(10),
                ..Default::default()
            },
        ),
        scenario(
            "jitter-40",
            "delay 50 ms +- 40 ms (uniform): an 80 ms spread against 80 ms of latency",
            Impairment {
                delay: ms(50),
                jitter: ms(40),
                ..Default::default()
            },
        ),
        {
            // The issue 11 step: jitter 2 ms, 40 ms from 5 s, 2 ms again
            // from 10 s, under the adaptive latency's default bounds.
            let mut s = scenario(
                "jitter-step-auto",
                "delay 50 ms, jitter +- 2 ms stepping to +- 40 ms from 5 s to 10 s; latency auto",
                Impairment {
                    delay: ms(50),
                    jitter: ms(2),
                    jitter_steps: vec![(ms(5_000), ms(40)), (ms(10_000), ms(2))],
                    ..Default::default()
                },
            );
            s.config.adaptive = Some((ms(20), ms(500)));
            s.config.latency = ms(500);
            s
        },
        scenario(
            "reorder-2",
            "2 % of packets held back 5 ms (overtaken by later ones)",
            Impairment {
                reorder: 0.02,
                reorder_by: ms(5),
                ..Default::default()
            },
        ),
        scenario(
            "b5-d20",
            "5 % independent loss, 20 +- 5 ms each way: a round trip fits in the latency once",
            delayed(loss(0.05, 1.0), 20, 5),
        ),
        scenario(
            "ge-5-b10-d20",
            "Gilbert-Elliott 5 %, bursts of 10, 20 +- 5 ms each way",
            delayed(loss(0.05, 10.0), 20, 5),
        ),
        scenario(
            "ge-2-b3-d20",
            "Gilbert-Elliott 2 %, bursts of 3, 20 ms each way (a link SRT was measured on)",
            delayed(loss(0.02, 3.0), 20, 0),
        ),
        scenario(
            "b5-d20-j10",
            "5 % independent loss, 20 +- 10 ms each way (a link SRT was measured on)",
            delayed(loss(0.05, 1.0), 20, 10),
        ),
        scenario(
            "b5-d60",
            "5 % independent loss, 60 +- 5 ms each way: the round trip exceeds the latency",
            delayed(loss(0.05, 1.0), 60, 5),
        ),
    ];
    // The README's bad network, delayed: the link file mode once failed on
    // (issue 15), and the outage, each in both modes.
    let bursty = scenario(
        "ge-5-b3-jitter",
        "Gilbert-Elliott loss, 5 % mean, bursts of 3, delay 15 ms +- 10 ms",
        Impairment {
            loss: Loss::from_mean(0.05, 3.0),
            delay: ms(15),
            jitter: ms(10),
            ..Default::default()
        },
    );
    let outage = scenario(
        "outage-1s",
        "nothing passes for 1 s, 5 s into the stream",
        Impairment {
            outages: vec![Outage {
                start: ms(5_000),
                duration: ms(1_000),
            }],
            ..Default::default()
        },
    );
    v.extend([file_mode(&bursty), bursty, file_mode(&outage), outage]);
    v
}

/// `link` with `delay_ms +- jitter_ms` each way.
fn delayed(link: Impairment, delay_ms: u64, jitter_ms: u64) -> Impairment {
    Impairment {
        delay: ms(delay_ms),
        jitter: ms(jitter_ms),
        ..link
    }
}

/// Every built-in name, the scale scenario last.
pub fn builtin_names() -> Vec<String> {
    let mut v: Vec<String> = builtin().into_iter().map(|s| s.name).collect();
    v.push(SCALE.into());
    v
}

/// Random loss model of a link, when it has one (the scenarios the MDS
/// bound applies to).
pub fn loss_model(link: &Impairment) -> Option<Loss> {
    match link.loss {
        Loss::None => None,
        l => Some(l),
    }
}

/// A short description of a link, for tables.
pub fn describe_link(l: &Impairment) -> String {
    let mut parts = Vec::new();
    match l.loss {
        Loss::None => {}
        Loss::Bernoulli { p } => parts.push(format!("loss {:.1} %", p * 100.0)),
        Loss::GilbertElliott { p, r } => parts.push(format!(
            "GE loss {:.1} % burst {:.0}",
            100.0 * p / (p + r),
            1.0 / r
        )),
    }
    let msf = |d: Duration| d.as_secs_f64() * 1e3;
    if !l.delay.is_zero() || !l.jitter.is_zero() {
        parts.push(format!("delay {} +- {} ms", msf(l.delay), msf(l.jitter)));
    }
    if l.reorder > 0.0 {
        parts.push(format!(
            "reorder {:.1} % by {} ms",
            l.reorder * 100.0,
            msf(l.reorder_by)
        ));
    }
    if l.duplicate > 0.0 {
        parts.push(format!("duplicate {:.1} %", l.duplicate * 100.0));
    }
    if l.rate_bps > 0 {
        parts.push(format!("rate {} kbit/s", l.rate_bps / 1000));
    }
    for o in &l.outages {
        parts.push(format!(
            "outage {} s at {} s",
            o.duration.as_secs_f64(),
            o.start.as_secs_f64()
        ));
    }
    if parts.is_empty() {
        "clean".into()
    } else {
        parts.join(", ")
    }
}

/// A short description of a configuration, for tables.
pub fn describe_config(c: &Config) -> String {
    let msf = |d: Duration| d.as_secs_f64() * 1e3;
    let fec = match c.fec {
        Some((k, m)) => format!(
            "FEC {k}+{m}{}",
            if c.adaptive_fec { " adaptive" } else { "" }
        ),
        None => "FEC off".into(),
    };
    let latency = match c.adaptive {
        Some((lo, hi)) => format!("auto {}..{}", msf(lo), msf(hi)),
        None => msf(c.latency).to_string(),
    };
    let mode = match c.file {
        Some(fill) => format!("file mode at {fill}x"),
        None => "live".into(),
    };
    format!(
        "{mode}, latency {latency} ms, frame {} ms, {fec}, D={}, {} recovery",
        msf(c.frame),
        c.interleave,
        c.recovery.name()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_cover_the_issue() {
        let names = builtin_names();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len());
        for want in [
            "clean",
            "clean-lowlatency",
            "bernoulli-1",
            "bernoulli-5",
            "ge-2-b3",
            "ge-5-b10",
            "jitter-10",
            "jitter-40",
            "jitter-step-auto",
            "reorder-2",
            "outage-1s",
            "b5-d20",
            "ge-5-b10-d20",
            "ge-2-b3-d20",
            "b5-d20-j10",
            "b5-d60",
            "ge-5-b3-jitter",
            "file-ge-5-b3-jitter",
            "file-outage-1s",
            "scale",
        ] {
            assert!(names.iter().any(|n| n == want), "{want}");
        }
    }

    #[test]
    fn links_describe_themselves() {
        let b = builtin();
        let ge = b.iter().find(|s| s.name == "ge-5-b10").unwrap();
        assert_eq!(describe_link(&ge.link), "GE loss 5.0 % burst 10");
        assert_eq!(describe_link(&Impairment::default()), "clean");
        assert!(loss_model(&ge.link).is_some());
    }

    #[test]
    fn file_mode_scenarios_have_a_live_twin_on_the_same_link() {
        let b = builtin();
        let files: Vec<_> = b.iter().filter(|s| s.config.file.is_some()).collect();
        assert!(files.len() >= 2);
        for f in files {
            let live = b
                .iter()
                .find(|s| format!("file-{}", s.name) == f.name)
                .unwrap();
            assert_eq!(live.config.file, None);
            assert_eq!(describe_link(&live.link), describe_link(&f.link));
            assert!(describe_config(&f.config).starts_with("file mode"));
        }
    }
}
