//! `report.md` (a table a person reads at a glance) and `results.json`
//! (everything, machine readable).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use super::fanout::Fanout;
use super::measure::ScenarioResult;
use super::scale::{ScaleRow, largest_clean};

/// The smallest-latency search, if one ran.
#[derive(Debug, Clone, Serialize)]
pub struct LatencySearch {
    pub frame_ms: f64,
    pub fec: String,
    /// Each trial: latency and whether it held.
    pub trials: Vec<Trial>,
    /// The smallest latency that held in every confirmation run.
    pub found_ms: Option<f64>,
    pub criterion: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct Trial {
    pub latency_ms: f64,
    pub held: bool,
    pub concealed_frames: u64,
    pub underruns: u64,
    pub late: u64,
    pub overhead_p99_ms: f64,
}

/// The scale scenario's rows and its verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Scale {
    pub about: &'static str,
    pub duration_s: f64,
    pub rows: Vec<ScaleRow>,
    /// Largest N (in increasing order, stopping at the first failure) whose
    /// sessions all completed with zero underruns.
    pub largest_n_zero_underruns: Option<usize>,
}

impl Scale {
    pub fn new(duration_s: f64, rows: Vec<ScaleRow>) -> Scale {
        Scale {
            about: "N concurrent live stereo 48 kHz sessions (default configuration) into one \
                    receiver over loopback, no relay; the senders run in another process \
                    (isochron bench-senders) on shared network threads, fed by a few feeder \
                    threads",
            duration_s,
            largest_n_zero_underruns: largest_clean(&rows),
            rows,
        }
    }
}

/// What `results.json` holds.
#[derive(Debug, Clone, Serialize)]
pub struct Results {
    pub tool: &'static str,
    pub version: &'static str,
    pub command: String,
    pub machine: Machine,
    pub duration_s: f64,
    pub scenarios: Vec<ScenarioResult>,
    pub scale: Option<Scale>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fanout: Option<Fanout>,
    pub min_latency: Option<LatencySearch>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub kernel: String,
    pub load_average: String,
}

impl Machine {
    pub fn probe() -> Machine {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        Machine {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model: read("/proc/cpuinfo")
                .lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map_or_else(String::new, |s| s.trim().to_owned()),
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
            load_average: read("/proc/loadavg")
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

/// The command line as typed (quoted where a shell would need it).
pub fn command_line() -> String {
    std::env::args()
        .enumerate()
        .map(|(i, a)| {
            let a = if i == 0 { "isochron".to_owned() } else { a };
            if a.is_empty()
                || a.contains(|c: char| c.is_whitespace() || "'\"$\\;&|<>*?".contains(c))
            {
                format!("'{}'", a.replace('\'', "'\\''"))
            } else {
                a
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Write `results.json` atomically.
pub fn write_json(dir: &Path, r: &Results) -> Result<()> {
    let v = serde_json::to_value(r).context("serialising results")?;
    crate::write_json(&dir.join("results.json"), &v)
}

fn sci(x: f64) -> String {
    if x == 0.0 {
        "0".into()
    } else {
        format!("{x:.1e}")
    }
}

fn pct(x: f64) -> String {
    if x == 0.0 {
        "0".into()
    } else if x < 0.001 {
        format!("{:.3} %", x * 100.0)
    } else {
        format!("{:.2} %", x * 100.0)
    }
}

/// The one-row-per-scenario table.
pub fn scenario_table(rs: &[ScenarioResult]) -> String {
    let mut t = String::from(
        "| scenario | link | e2e delay p50 / p99 (ms) | overhead p99 (ms) | jitter (ms) \
         | tick dev. p99 (ms) | loss before FEC | unrecovered (residual) \
         | MDS bound: configured / code used | concealed frames | underruns | FEC overhead \
         | recovery | redundancy: sent (FEC + ARQ) / minimum (ratio) | residual bound at that redundancy \
         | CPU (% core) | SNR |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rs {
        let bound = match &r.bound {
            Some(b) => format!(
                "{} ({}+{}) / {} ({:.1}+{:.1})",
                sci(b.configured.residual),
                b.configured.k,
                b.configured.m,
                sci(b.effective.residual),
                b.effective.k_mean,
                b.effective.m_mean
            ),
            None => "-".into(),
        };
        let snr = if r.bit_exact {
            "bit-exact".to_owned()
        } else {
            r.snr_db.map_or("-".into(), |s| format!("{s:.1} dB"))
        };
        let red = &r.redundancy;
        let redundancy = format!(
            "{:.1} % ({:.1} + {:.1}) / {}",
            red.sent * 100.0,
            red.fec * 100.0,
            red.retransmission * 100.0,
            match (red.minimum, red.ratio) {
                (Some(m), Some(x)) => format!("{:.1} % ({x:.2}x)", m * 100.0),
                (Some(m), None) => format!("{:.1} %", m * 100.0),
                _ => "-".into(),
            }
        );
        // Beside it, the least that reaches the sender's own target, when
        // the run lost nothing (its residual only says "under one packet").
        let redundancy = match (
            red.sender_target,
            red.minimum_at_target,
            red.ratio_at_target,
        ) {
            (Some(t), Some(m), Some(x)) if r.packets.unrecovered == 0 => {
                format!("{redundancy}; at {}: {:.1} % ({x:.2}x)", sci(t), m * 100.0)
            }
            _ => redundancy,
        };
        let residual_bound = red.residual_bound.map_or("-".into(), sci);
        let _ = writeln!(
            t,
            "| {} | {} | {:.2} / {:.2} | {:.2} | {:.2} | {:.3} | {} | {} ({}) | {} | {} of {} | {} | {:.0} % | {} | {} | {} | {:.1} | {} |",
            r.name,
            r.link.summary,
            r.e2e_delay_ms.p50,
            r.e2e_delay_ms.p99,
            r.overhead_ms.p99,
            r.jitter_ms,
            r.tick_deviation_ms.p99,
            pct(r.loss_before_fec),
            r.packets.unrecovered,
            sci(r.residual_loss),
            bound,
            r.frames.concealed,
            r.frames.played,
            r.frames.underruns,
            r.fec_overhead * 100.0,
            r.recovery,
            redundancy,
            residual_bound,
            r.cpu.total_percent,
            snr
        );
    }
    t
}

/// File-mode scenarios beside their live twins (`file-<name>` and `<name>`,
/// the same link and seed): what issue 15 compares.
pub fn file_mode_table(rs: &[ScenarioResult]) -> Option<String> {
    let pairs: Vec<_> = rs
        .iter()
        .filter(|f| f.config.mode == "file")
        .map(|f| {
            let twin = f.name.strip_prefix("file-").and_then(|n| {
                rs.iter()
                    .find(|l| l.name == n && l.config.mode == "live" && l.link.seed == f.link.seed)
            });
            (f, twin)
        })
        .collect();
    if pairs.is_empty() {
        return None;
    }
    let mut t = String::from(
        "| link | mode | unrecovered (residual) | late packets | underruns | concealed frames \
         | file mode: round trip / delay spread / floor / start / lead (ms) | least early packet (ms) |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    let ms = |us: u64| us as f64 / 1e3;
    for (f, live) in pairs {
        for r in std::iter::once(f).chain(live) {
            let flow = &r.receiver_stats.flow;
            let (marks, slack) = if r.config.mode == "file" {
                (
                    format!(
                        "{:.1} / {:.1} / {:.0} / {:.0} / {:.0}",
                        ms(flow.rtt_us),
                        ms(flow.delay_spread_us),
                        ms(flow.floor_us),
                        ms(flow.start_level_us),
                        ms(flow.lead_us)
                    ),
                    format!("{:.1}", flow.min_slack_us as f64 / 1e3),
                )
            } else {
                ("-".into(), "-".into())
            };
            let _ = writeln!(
                t,
                "| {} | {} (`{}`) | {} ({}) | {} | {} | {} | {} | {} |",
                r.link.summary,
                r.config.mode,
                r.name,
                r.packets.unrecovered,
                sci(r.residual_loss),
                r.packets.late,
                r.frames.underruns,
                r.frames.concealed,
                marks,
                slack
            );
        }
    }
    Some(t)
}

/// The scale table.
pub fn scale_table(s: &Scale) -> String {
    let mut t = String::from(
        "| N | connected / completed | all N at once (s) | underruns | concealed frames \
         | late packets | tick dev. p99, median / worst session (ms) | e2e delay p99 (ms) \
         | CPU per session: receiver / senders (% core) | playout wake-ups/s (sessions a wake-up) \
         | bit-exact sessions |\n\
         |---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in &s.rows {
        let _ = writeln!(
            t,
            "| {} | {} / {} | {} | {} | {} | {} | {:.3} / {:.3} | {:.2} | {:.3} / {:.3} | {:.0} ({:.1}) | {} |",
            r.sessions,
            r.connected,
            r.completed,
            if r.all_concurrent_s > 0.0 {
                format!("{:.1}", r.all_concurrent_s)
            } else {
                "never".into()
            },
            r.underruns,
            r.concealed_frames,
            r.late_packets,
            r.tick_deviation_p99_median_ms,
            r.tick_deviation_p99_max_ms,
            r.e2e_delay_ms.p99,
            r.cpu_per_session.receiver_percent,
            r.cpu_per_session.sender_percent,
            r.playout_wakeups_per_s,
            r.serves_per_wakeup,
            r.bit_exact_sessions
        );
    }
    let _ = writeln!(
        t,
        "\nLargest N with zero underruns (every smaller N clean too): **{}**.",
        s.largest_n_zero_underruns
            .map_or("none".into(), |n| n.to_string())
    );
    t
}

const FILE_MODE: &str = "\
File mode (`isochron send` without `--live`) reads ahead at twice real time as far as the \
receiver's credits allow, with FEC interleaved two deep; the receiver sizes its marks from \
the round trip and the one-way delay spread it measures (`receiver_stats.flow` in \
results.json). Each file-mode scenario runs the same link and seed as its live twin. Its \
e2e delay counts from the accept (file mode has no live media clock): below zero, a frame \
played before its real-time instant.

";

const METHOD: &str = "\
## How it is measured

- Each scenario runs a receiver, the impairment relay (the same model as `isochron netem`, \
applied the same way in both directions) and a sender (live, or file mode) in this one process, over real \
QUIC on 127.0.0.1, so both ends read one `CLOCK_MONOTONIC`: delays are true values.
- Media: seeded music, 48 kHz stereo 16-bit, pushed by a feeder thread 40 ms ahead of real \
time in 20 ms chunks (the sender's pacer releases each frame at its real-time instant); in \
file mode the sender reads it itself, as `isochron send` reads a file.
- **e2e delay** of audio frame n: its playout instant (read in the sink, on the playout \
thread) minus the instant it was complete at the sender, `started_at + (n + 1) x frame`. \
**Overhead** = e2e delay minus the configured latency. The playout anchors on the fastest \
path, so on a link with a fixed delay (the jitter scenarios) the overhead includes the \
link's minimum one-way delay; there the p99 also holds a start-up transient: the clock \
mapping starts from the first packet's delay and slews toward the fastest path at 0.5 % \
of real time. The jitter scenarios keep the default 80 ms latency: `jitter-40` spreads \
delay over 80 ms, as wide as the latency, to show what happens at the edge.
- **jitter**: RFC 3550 interarrival jitter. **tick dev.**: playout tick lateness (tick \
instant minus deadline), from the engine's statistics.
- **loss before FEC**: source packets that did not arrive directly in time, over expected. \
**unrecovered**: the engine's residual loss counter (not there when due).
- **MDS bound**: exact residual loss of an ideal code under the link's nominal loss model \
(`sim::bound::mds_residual`), for the configured code, and for the code really sent, \
second by second (each second's mean sources and repairs per block, weighted by its \
packets; the mean code over the run is shown). Blocks close early at their time budget \
(35 ms holds about 8 of 16 sources at 10 ms frames) and adaptive FEC raises m, so the \
code really sent differs from 16+4: usually stronger, which is why the measured residual \
can sit far below the 16+4 bound. The link's realised loss differs from the nominal one \
over a 20 s run (bursty models most), so expect the measured residual within a factor of \
about two of the bound, either way.
- **redundancy**: repair plus retransmitted bytes over source bytes, as the sender sent \
them, beside the **minimum**: the least redundancy any plan needs to reach the residual \
measured (one packet in the run when none was lost for good), computed exactly \
(`arq::model`) for the link's nominal loss model, blocks of the session's FEC window, \
the retransmission rounds its delay and jitter leave in the latency, NACKs sent three \
times, retransmissions up to three times in the last round, FEC or retransmission or \
both, whatever the scenario ran with. The **residual bound** is the other side: the \
lowest residual any such plan reaches with no more redundancy than was sent. Links \
without random loss have no minimum (it is zero). Where nothing was lost for good the \
column adds the least that reaches the sender's own residual target (`send \
--target-loss`, 1e-4 by default): one packet in a 20 s run is a looser goal than that, \
so the first ratio counts the target's price as waste.
- **CPU**: user + system time of the whole process (sender, relay, receiver, feeder) over \
the stream, in percent of one core; results.json splits it by thread role. Scale: the \
receiver's threads (network thread and playout pool) of this process, and the senders' \
process (`isochron bench-senders`, read from /proc) over the window all N stream.
- **SNR**: played audio against what was sent (bit-exact when nothing differs).
- Plots per scenario: `<name>-delay.svg` (e2e delay over time), `<name>-buffer.svg` \
(buffer level with the water marks; the engine publishes it every 100 ms), \
`<name>-histogram.svg`.
";

/// The whole `report.md`.
pub fn markdown(r: &Results) -> String {
    let mut s = String::from("# isochron bench\n\n");
    let _ = writeln!(s, "Command: `{}`\n", r.command);
    let _ = writeln!(
        s,
        "Machine: {} CPUs ({}), Linux {}, load average at start {}. isochron {}. \
         Each session streams {} s of media.\n",
        r.machine.cpus,
        r.machine.cpu_model,
        r.machine.kernel,
        r.machine.load_average,
        r.version,
        r.duration_s
    );
    if !r.scenarios.is_empty() {
        s.push_str("## Scenarios\n\n");
        s.push_str(&scenario_table(&r.scenarios));
        s.push('\n');
        s.push_str("Configurations:\n\n");
        for x in &r.scenarios {
            let _ = writeln!(
                s,
                "- `{}`: {}. {}; FEC window {} ms{}. Plots: [delay]({}), [buffer]({}), \
                 [histogram]({}).",
                x.name,
                x.about,
                x.config.summary,
                x.config.fec_window_ms,
                if x.completed {
                    String::new()
                } else {
                    format!(" (**did not complete**: {})", x.end_reason)
                },
                x.plots.delay,
                x.plots.buffer,
                x.plots.histogram
            );
        }
        s.push('\n');
        if let Some(t) = file_mode_table(&r.scenarios) {
            s.push_str("## File mode beside live mode\n\n");
            s.push_str(FILE_MODE);
            s.push_str(&t);
            s.push('\n');
        }
    }
    if let Some(sc) = &r.scale {
        s.push_str("## Scale\n\n");
        let _ = writeln!(s, "{} ({} s each).\n", sc.about, sc.duration_s);
        s.push_str(&scale_table(sc));
        s.push('\n');
    }
    if let Some(f) = &r.fanout {
        s.push_str("## Fan-out\n\n");
        let _ = writeln!(s, "{} ({} s each).\n", f.about, f.duration_s);
        s.push_str(&super::fanout::table(f));
        s.push('\n');
    }
    if let Some(m) = &r.min_latency {
        s.push_str("## Smallest latency\n\n");
        let _ = writeln!(
            s,
            "Frames of {} ms, FEC {}. A latency holds when {}.\n",
            m.frame_ms, m.fec, m.criterion
        );
        s.push_str("| latency (ms) | held | concealed | underruns | late | overhead p99 (ms) |\n|---|---|---|---|---|---|\n");
        for t in &m.trials {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {:.2} |",
                t.latency_ms, t.held, t.concealed_frames, t.underruns, t.late, t.overhead_p99_ms
            );
        }
        let _ = writeln!(
            s,
            "\nSmallest latency that held: **{}**.\n",
            m.found_ms
                .map_or("none found".into(), |v| format!("{v} ms"))
        );
    }
    s.push_str(METHOD);
    s
}

/// Write `report.md`.
pub fn write_markdown(dir: &Path, r: &Results) -> Result<()> {
    let p = dir.join("report.md");
    std::fs::write(&p, markdown(r)).with_context(|| format!("writing {}", p.display()))
}
