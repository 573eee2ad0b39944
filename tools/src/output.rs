//! What the tools print: one live status line, summaries, JSON.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use isochron_engine::net::{SessionEnd, SessionInfo};
use isochron_engine::stats::{ReceiverStats, SubstreamStats};
use serde_json::json;

fn pct(n: u64, of: u64) -> f64 {
    if of == 0 {
        0.0
    } else {
        100.0 * n as f64 / of as f64
    }
}

/// One line: buffer against the marks, loss, recovery, jitter, late,
/// concealed frames per substream.
pub fn status_line(s: &ReceiverStats) -> String {
    let p = &s.packets;
    let concealed: Vec<String> = s
        .substreams
        .iter()
        .map(|d| format!("{} {}", d.name, d.frames.concealed))
        .collect();
    // File mode: the marks in force (adapted to the path).
    let (low, high) = if s.flow.lead_us > 0 {
        (s.flow.start_level_us, s.flow.lead_us)
    } else {
        (s.low_water_us, s.high_water_us)
    };
    format!(
        "buffer {:>4.0} ms [{:.0}..{:.0}] | loss {:.2} % recovered {} unrecovered {} ({:.3} %) | jitter {:.1} ms | late {} | concealed frames {}",
        ms(s.buffer_us),
        ms(low),
        ms(high),
        pct(p.lost, p.expected),
        p.recovered,
        p.unrecovered,
        pct(p.unrecovered, p.expected),
        ms(s.jitter_us),
        p.late,
        concealed.join(", "),
    )
}

/// Microseconds as milliseconds, for people.
fn ms(us: u64) -> f64 {
    us as f64 / 1e3
}

/// The packet account in the words both ends print.
pub fn packets_line(
    expected: u64,
    lost: u64,
    recovered: u64,
    unrecovered: u64,
    late: u64,
) -> String {
    format!(
        "packets {expected} expected, lost {lost} ({:.2} %), recovered {recovered}, unrecovered {unrecovered} ({:.4} %), late {late}",
        pct(lost, expected),
        pct(unrecovered, expected),
    )
}

/// A status line rewritten in place on a terminal; plain lines every few
/// seconds otherwise (logs stay readable).
pub struct Status {
    tty: bool,
    last: Option<Instant>,
    shown: bool,
}

impl Status {
    pub fn new(quiet: bool) -> Self {
        Self {
            tty: !quiet && std::io::stderr().is_terminal(),
            last: if quiet {
                Some(Instant::now() + Duration::from_secs(1 << 30))
            } else {
                None
            },
            shown: false,
        }
    }

    /// Whether [`show`](Self::show) would print now: a caller can skip
    /// making the line (a snapshot of every session's statistics, their
    /// histograms copied) five times a second for a log line every 5 s.
    pub fn due(&self) -> bool {
        self.tty
            || self
                .last
                .is_none_or(|t| t.elapsed() >= Duration::from_secs(5))
    }

    pub fn show(&mut self, line: &str) {
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[2K{line}");
            let _ = err.flush();
            self.shown = true;
        } else if self
            .last
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(5))
        {
            let _ = writeln!(err, "{line}");
            self.last = Some(Instant::now());
        }
    }

    /// End the in-place line before printing something else.
    pub fn clear(&mut self) {
        if self.tty && self.shown {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
            self.shown = false;
        }
    }
}

/// A few lines summing up a received session.
pub fn session_summary(info: &SessionInfo, end: &SessionEnd) -> String {
    let s = &end.stats;
    let p = &s.packets;
    let mut out = format!(
        "session {} from {} {}: {}\n",
        info.id,
        info.peer,
        if end.truncated {
            "TRUNCATED"
        } else {
            "completed"
        },
        end.reason
    );
    out += &format!(
        "  {}, duplicate {}; {} sent again; {} recovery, redundancy {:.0} %\n",
        packets_line(p.expected, p.lost, p.recovered, p.unrecovered, p.late),
        p.duplicate,
        p.retransmitted,
        s.recovery.name(),
        s.redundancy_ratio * 100.0,
    );
    out += &format!(
        "  jitter {:.2} ms; network delay p50 {:.2} ms p99 {:.2} ms; end-to-end delay p50 {:.2} ms p99 {:.2} ms\n",
        ms(s.jitter_us),
        ms(s.network_delay.p50_us),
        ms(s.network_delay.p99_us),
        ms(s.end_to_end_delay.p50_us),
        ms(s.end_to_end_delay.p99_us),
    );
    for d in &s.substreams {
        let f = &d.frames;
        out += &format!(
            "  {} ({}): frames played {}, concealed {}; samples {}; underruns {}, overruns {}{}\n",
            d.name,
            d.encoding,
            f.played,
            f.concealed,
            f.samples_played,
            f.underruns,
            f.overruns,
            codec_counts(d),
        );
    }
    let f = &s.flow;
    if f.credits > 0 {
        out += &format!(
            "  file mode: {} credits; round trip {:.1} ms, delay spread {:.1} ms -> floor {:.0} ms, start {:.0} ms, lead {:.0} ms; least early packet {:.1} ms ahead\n",
            f.credits,
            ms(f.rtt_us),
            ms(f.delay_spread_us),
            ms(f.floor_us),
            ms(f.start_level_us),
            ms(f.lead_us),
            f.min_slack_us as f64 / 1e3,
        );
    }
    for (path, samples) in &end.files {
        out += &format!("  wrote {} ({samples} samples)\n", path.display());
    }
    for e in &end.errors {
        out += &format!("  output error: {e}\n");
    }
    out
}

/// How a coded substream's decoder played lost frames (empty for PCM).
pub fn codec_counts(d: &SubstreamStats) -> String {
    if d.encoding != "opus" {
        return String::new();
    }
    format!(
        "; Opus decoder: {} lost frames rebuilt from in-band FEC (LBRR), {} concealed by PLC",
        d.codec_fec_frames, d.codec_plc_frames
    )
}

/// The JSON record of a received session.
pub fn session_json(info: &SessionInfo, end: &SessionEnd) -> serde_json::Value {
    json!({
        "id": info.id,
        "peer": info.peer.to_string(),
        "name": info.session.name,
        "completed": !end.truncated,
        "truncated": end.truncated,
        "reason": end.reason,
        "files": end.files.iter().map(|(p, n)| json!({"path": p.display().to_string(), "samples": n})).collect::<Vec<_>>(),
        "errors": end.errors,
        "stats": end.stats,
    })
}
