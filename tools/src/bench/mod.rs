//! `isochron bench`: delay, jitter, loss and output quality across a matrix
//! of impaired links, with plots.
//!
//! - [`scenarios`]: the built-in matrix and custom scenarios from flags,
//! - [`media`]: the music (and sensor) sent, and the feeder threads,
//! - [`record`]: the sink that notes playout instants and checks the audio,
//! - [`run`]: one scenario over real QUIC through the impairment relay,
//! - [`scale`]: N sessions into one receiver, [`senders`]: their process,
//! - [`fanout`]: one publisher to N subscribers through two router processes,
//! - [`measure`]: figures, the MDS bound, results per scenario,
//! - [`cpu`], [`plots`], [`report`]: CPU time, SVGs, report.md and results.json.

mod cpu;
mod fanout;
mod measure;
mod media;
mod plots;
mod record;
mod report;
mod run;
mod scale;
mod scenarios;
mod senders;

pub use senders::{SendersArgs, run as run_senders};

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use isochron_engine::net::Identity;
use isochron_engine::sim::{Impairment, Loss, Outage};

use crate::{args, interrupted, say};
use measure::{Plots, ScenarioResult};
use media::Media;
use report::{LatencySearch, Results, Scale, Trial};
use run::Settings;
use scenarios::{Config, SCALE, Scenario};

#[derive(Args)]
#[command(after_help = "\
Without --scenario or custom options, runs the whole built-in matrix (see --list), the \
scale scenario last. Link or engine options (--loss ... --interleave, --name) describe a \
custom scenario: the defaults plus those options, run after any --scenario given.

Examples:
  isochron bench                                  # the full matrix, 20 s each
  isochron bench --scenario clean bernoulli-5 --duration 10s
  isochron bench --name my-link --loss 3% --jitter 15ms
  isochron bench --min-latency --frame 2.5ms --duration 5s
  isochron bench --scenario fanout --listeners 10,100 --duration 10s
  isochron bench --scenario fanout --listeners 3 --loss 5% --jitter 10ms  # impaired router link")]
pub struct BenchArgs {
    /// Built-in scenarios to run (see --list); repeatable or space separated
    #[arg(long = "scenario", value_name = "NAME", num_args = 1..)]
    scenarios: Vec<String>,
    /// Print the built-in scenarios and exit
    #[arg(long)]
    list: bool,
    /// Media length of each session
    #[arg(long, default_value = "20s", value_parser = args::duration, value_name = "TIME")]
    duration: Duration,
    /// Directory for report.md, results.json and the plots
    #[arg(long, default_value = "bench-out", value_name = "DIR")]
    out: PathBuf,
    /// Scale scenario: the session counts to try, in order
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1,10,50,100,200",
        value_name = "N,N..."
    )]
    sessions: Vec<usize>,
    /// Fan-out scenario (only when named: --scenario fanout): the listener
    /// counts to try, in order. Its link between the two routers is the
    /// link options' (clean unless given; they also run as a custom
    /// point-to-point scenario, for comparison)
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "10,100",
        value_name = "N,N..."
    )]
    listeners: Vec<usize>,
    /// Seed of the music and of the links' random decisions
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Add a 200 Hz 3-axis sensor substream next to the audio (every scenario)
    #[arg(long)]
    sensor: bool,
    /// Find the smallest latency that plays with zero concealment for the
    /// custom configuration (clean link unless link options are given)
    #[arg(long = "min-latency")]
    min_latency: bool,

    /// Name of the custom scenario [default: custom]
    #[arg(long, value_name = "NAME", help_heading = "Custom scenario")]
    name: Option<String>,
    /// Mean packet loss each way, e.g. 5%
    #[arg(long, value_parser = args::percent, value_name = "PCT", help_heading = "Custom scenario")]
    loss: Option<f64>,
    /// Mean loss burst in packets (1: independent; more: Gilbert-Elliott)
    #[arg(long, value_name = "N", help_heading = "Custom scenario")]
    burst: Option<f64>,
    /// One-way delay each way, e.g. 20ms
    #[arg(long, value_parser = args::duration, value_name = "TIME", help_heading = "Custom scenario")]
    delay: Option<Duration>,
    /// Delay varies uniformly by up to this much either way, e.g. 10ms
    #[arg(long, value_parser = args::duration, value_name = "TIME", help_heading = "Custom scenario")]
    jitter: Option<Duration>,
    /// Share of packets held back so later ones overtake them, e.g. 1%
    #[arg(long, value_parser = args::percent, value_name = "PCT", help_heading = "Custom scenario")]
    reorder: Option<f64>,
    /// How long reordered packets are held back [default: 5ms]
    #[arg(long = "reorder-by", value_parser = args::duration, value_name = "TIME", help_heading = "Custom scenario")]
    reorder_by: Option<Duration>,
    /// Share of packets delivered twice, e.g. 1%
    #[arg(long, value_parser = args::percent, value_name = "PCT", help_heading = "Custom scenario")]
    duplicate: Option<f64>,
    /// Bottleneck rate each way, e.g. 10mbit
    #[arg(long, value_parser = args::rate, value_name = "RATE", help_heading = "Custom scenario")]
    rate: Option<u64>,
    /// Bottleneck queue: packets waiting longer are dropped [default: 200ms]
    #[arg(long = "queue-limit", value_parser = args::duration, value_name = "TIME", help_heading = "Custom scenario")]
    queue_limit: Option<Duration>,
    /// Outage LENGTH@START from the link's start, e.g. 2s@5s; repeatable
    #[arg(long, value_parser = args::outage, value_name = "LEN@START", help_heading = "Custom scenario")]
    outage: Vec<(Duration, Duration)>,
    /// Receiver's target latency, or auto[:MIN..MAX] to adapt it (as recv --latency) [default: 80ms]
    #[arg(long, value_parser = args::latency, value_name = "TIME", help_heading = "Custom scenario")]
    latency: Option<args::Latency>,
    /// Low-water mark [default: 40ms]
    #[arg(long = "low-water", value_parser = args::duration, value_name = "TIME", help_heading = "Custom scenario")]
    low_water: Option<Duration>,
    /// High-water mark [default: 160ms]
    #[arg(long = "high-water", value_parser = args::duration, value_name = "TIME", help_heading = "Custom scenario")]
    high_water: Option<Duration>,
    /// Frame duration, e.g. 10ms, 5ms, 2.5ms [default: 10ms]
    #[arg(long, value_parser = args::duration, value_name = "TIME", help_heading = "Custom scenario")]
    frame: Option<Duration>,
    /// FEC code K+M, or off [default: 16+4]
    #[arg(long, value_parser = args::fec, value_name = "K+M", help_heading = "Custom scenario")]
    fec: Option<args::Fec>,
    /// Packet interleaving depth D [default: 1; 2 with --file-mode]
    #[arg(long, value_name = "D", help_heading = "Custom scenario")]
    interleave: Option<u8>,
    /// FEC block time budget [default: chosen by the receiver from its latency]
    #[arg(long = "fec-window", value_parser = args::duration, value_name = "TIME", help_heading = "Custom scenario")]
    fec_window: Option<Duration>,
    /// Keep the FEC code fixed (no adaptation to the measured loss)
    #[arg(long = "fixed-fec", help_heading = "Custom scenario")]
    fixed_fec: bool,
    /// Recovery: fec, arq or hybrid [default: hybrid]
    #[arg(long, value_parser = args::recovery, value_name = "MODE", help_heading = "Custom scenario")]
    recovery: Option<isochron_engine::Recovery>,
    /// File mode, as `isochron send` without --live: read ahead (2x real
    /// time), paced by the receiver's credits [default: live]
    #[arg(long = "file-mode", help_heading = "Custom scenario")]
    file_mode: bool,
}

impl BenchArgs {
    fn link_given(&self) -> bool {
        self.loss.is_some()
            || self.burst.is_some()
            || self.delay.is_some()
            || self.jitter.is_some()
            || self.reorder.is_some()
            || self.reorder_by.is_some()
            || self.duplicate.is_some()
            || self.rate.is_some()
            || self.queue_limit.is_some()
            || !self.outage.is_empty()
    }

    fn custom_given(&self) -> bool {
        self.name.is_some()
            || self.link_given()
            || self.latency.is_some()
            || self.low_water.is_some()
            || self.high_water.is_some()
            || self.frame.is_some()
            || self.fec.is_some()
            || self.interleave.is_some()
            || self.fec_window.is_some()
            || self.fixed_fec
            || self.recovery.is_some()
            || self.file_mode
    }

    /// The impairment the link options describe (as `isochron netem` builds it).
    fn impairment(&self) -> Impairment {
        let d = Impairment::default();
        Impairment {
            loss: Loss::from_mean(self.loss.unwrap_or(0.0), self.burst.unwrap_or(1.0)),
            delay: self.delay.unwrap_or(d.delay),
            jitter: self.jitter.unwrap_or(d.jitter),
            reorder: self.reorder.unwrap_or(d.reorder),
            reorder_by: self.reorder_by.unwrap_or(d.reorder_by),
            duplicate: self.duplicate.unwrap_or(d.duplicate),
            rate_bps: self.rate.unwrap_or(d.rate_bps),
            queue_limit: self.queue_limit.unwrap_or(d.queue_limit),
            outages: self
                .outage
                .iter()
                .map(|&(duration, start)| Outage { start, duration })
                .collect(),
            jitter_steps: Vec::new(),
        }
    }

    fn custom(&self) -> Scenario {
        let d = Config::default();
        let (latency, adaptive) = match self.latency {
            None => (d.latency, None),
            Some(args::Latency::Fixed(l)) => (l, None),
            Some(args::Latency::Auto(min, max)) => (max, Some((min, max))),
        };
        let config = Config {
            latency,
            adaptive,
            low_water: self.low_water.unwrap_or(d.low_water),
            high_water: self.high_water.unwrap_or(d.high_water),
            frame: self.frame.unwrap_or(d.frame),
            fec: self.fec.map_or(d.fec, |f| f.0),
            interleave: self.interleave.unwrap_or(if self.file_mode {
                isochron_engine::config::FILE_INTERLEAVE
            } else {
                d.interleave
            }),
            fec_window: self.fec_window,
            adaptive_fec: !self.fixed_fec,
            recovery: self.recovery.unwrap_or(d.recovery),
            sensor: self.sensor,
            file: self.file_mode.then_some(scenarios::FILE_FILL),
        };
        let link = self.impairment();
        Scenario {
            name: self.name.clone().unwrap_or_else(|| "custom".into()),
            about: format!("custom: {}", scenarios::describe_link(&link)),
            link,
            config,
            seed: self.seed,
        }
    }
}

fn list() {
    say("Built-in scenarios (each with the default configuration unless noted):");
    for s in scenarios::builtin() {
        say(format!(
            "  {:<18} {} [{}]",
            s.name,
            s.about,
            scenarios::describe_config(&s.config)
        ));
    }
    say(format!(
        "  {:<18} N concurrent stereo 48 kHz sessions into one receiver (see --sessions)",
        SCALE
    ));
    say(format!(
        "  {:<18} one publisher, two router processes, N listeners (see --listeners; only when named)",
        fanout::FANOUT
    ));
}

/// The plan: stream scenarios in order, and whether the scale one runs.
fn plan(a: &BenchArgs) -> Result<(Vec<Scenario>, bool)> {
    let builtin = scenarios::builtin();
    let mut out = Vec::new();
    let mut scale = false;
    let all = a.scenarios.is_empty() && !a.custom_given();
    let names: Vec<String> = if all {
        scenarios::builtin_names()
    } else {
        a.scenarios.clone()
    };
    for n in names {
        if n == SCALE {
            scale = true;
            continue;
        }
        if n == fanout::FANOUT {
            continue;
        }
        match builtin.iter().find(|s| s.name == n) {
            Some(s) => {
                let mut s = s.clone();
                s.seed = a.seed;
                s.config.sensor = a.sensor;
                out.push(s);
            }
            None => bail!(
                "no scenario '{n}'; the built-in ones are: {}",
                scenarios::builtin_names().join(", ")
            ),
        }
    }
    if a.custom_given() {
        let c = a.custom();
        if out.iter().any(|s| s.name == c.name) {
            bail!("--name {}: a built-in scenario has that name", c.name);
        }
        out.push(c);
    }
    Ok((out, scale))
}

fn progress_bar(units: u64) -> ProgressBar {
    let pb = ProgressBar::new(units);
    if !std::io::stderr().is_terminal() {
        pb.set_draw_target(ProgressDrawTarget::hidden());
    }
    pb.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {percent:>3}% {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    pb.enable_steady_tick(Duration::from_millis(200));
    pb
}

/// Plots of one scenario; returns their file names.
fn plot(dir: &Path, r: &ScenarioResult, o: &run::Outcome) -> Result<Plots> {
    let p = Plots {
        delay: format!("{}-delay.svg", r.name),
        buffer: format!("{}-buffer.svg", r.name),
        histogram: format!("{}-histogram.svg", r.name),
    };
    let series = measure::e2e_series(o);
    let lat = r.config.latency_ms;
    plots::delay_over_time(
        &dir.join(&p.delay),
        &format!("{}: end-to-end delay ({})", r.name, r.link.summary),
        &series,
        lat,
        if r.config.adaptive_latency_ms.is_some() {
            &o.targets
        } else {
            &[]
        },
    )?;
    plots::buffer_over_time(
        &dir.join(&p.buffer),
        &format!("{}: buffer level ({})", r.name, r.link.summary),
        &o.levels,
        r.config.low_water_ms,
        r.config.high_water_ms,
    )?;
    let values: Vec<f64> = series.iter().map(|s| s.1).collect();
    plots::delay_histogram(
        &dir.join(&p.histogram),
        &format!("{}: end-to-end delay distribution", r.name),
        &values,
        lat,
    )?;
    Ok(p)
}

fn one_line(r: &ScenarioResult) -> String {
    format!(
        "{:<18} e2e p50 {:.2} p99 {:.2} ms, overhead p99 {:.2} ms, tick p99 {:.3} ms, loss {:.2} %, unrecovered {}, concealed {}, underruns {}{}",
        r.name,
        r.e2e_delay_ms.p50,
        r.e2e_delay_ms.p99,
        r.overhead_ms.p99,
        r.tick_deviation_ms.p99,
        r.loss_before_fec * 100.0,
        r.packets.unrecovered,
        r.frames.concealed,
        r.frames.underruns,
        if r.completed {
            ""
        } else {
            " (did not complete)"
        }
    )
}

pub fn run(a: BenchArgs) -> Result<u8> {
    if a.list {
        list();
        return Ok(0);
    }
    if a.duration < Duration::from_secs(1) {
        bail!("--duration must be at least 1 s");
    }
    if a.sessions.is_empty() || a.sessions.contains(&0) {
        bail!("--sessions takes counts of at least 1, e.g. 1,10,100");
    }
    if a.listeners.is_empty() || a.listeners.contains(&0) {
        bail!("--listeners takes counts of at least 1, e.g. 10,100");
    }
    let fanout = !a.min_latency && a.scenarios.iter().any(|s| s == fanout::FANOUT);
    let (scenarios, scale) = if a.min_latency {
        (Vec::new(), false)
    } else {
        plan(&a)?
    };
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let set = Settings {
        duration: a.duration,
        lead: Duration::from_millis(40),
        sample_every: Duration::from_millis(20),
    };
    // One identity for both ends of every session (one user, every role):
    // the receiver admits the fingerprint the senders present.
    let identity = Identity::ephemeral()?;
    eprintln!(
        "pairing: each receiver admits the senders' identity {} and they pin its \
         (between hosts: `isochron trust add` on the receiver, `send --pin`)",
        identity.fingerprint()
    );
    let mut results = Results {
        tool: "isochron bench",
        version: env!("CARGO_PKG_VERSION"),
        command: report::command_line(),
        machine: report::Machine::probe(),
        duration_s: a.duration.as_secs_f64(),
        scenarios: Vec::new(),
        scale: None,
        fanout: None,
        min_latency: None,
    };
    if a.min_latency {
        results.min_latency = Some(min_latency(&a, &set, &identity)?);
        report::write_json(&a.out, &results)?;
        report::write_markdown(&a.out, &results)?;
        eprintln!("wrote {}", a.out.display());
        return Ok(0);
    }
    let units = scenarios.len() as u64
        + if scale { a.sessions.len() as u64 } else { 0 }
        + if fanout { a.listeners.len() as u64 } else { 0 };
    let bar = progress_bar(units * 1000);
    let stop = interrupted();
    let mut failed = 0;
    for (i, sc) in scenarios.iter().enumerate() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        bar.set_message(format!("{} ({}/{})", sc.name, i + 1, units));
        let media = Media::generate(sc.seed, a.duration, sc.config.frame, sc.config.sensor)?;
        let base = i as u64 * 1000;
        let outcome = run::run(sc, &set, &identity, &media, &|f| {
            bar.set_position(base + (f * 999.0) as u64);
        });
        let o = match outcome {
            Ok(o) => o,
            Err(e) => {
                failed += 1;
                bar.suspend(|| eprintln!("{}: {e:#}", sc.name));
                continue;
            }
        };
        let mut r = measure::summarise(sc, a.duration.as_secs_f64(), &o);
        r.plots = plot(&a.out, &r, &o)?;
        bar.suspend(|| eprintln!("{}", one_line(&r)));
        results.scenarios.push(r);
        // Partial results survive an interruption.
        report::write_json(&a.out, &results)?;
        bar.set_position(base + 1000);
    }
    if scale && !stop.load(Ordering::SeqCst) {
        let media = Media::generate(a.seed, a.duration, Config::default().frame, false)?;
        let mut rows = Vec::new();
        for (j, &n) in a.sessions.iter().enumerate() {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let base = (scenarios.len() + j) as u64 * 1000;
            let row = scale::run(n, &set, a.seed, &identity, &media, &|msg, f| {
                bar.set_message(format!("scale {msg}"));
                bar.set_position(base + (f * 999.0) as u64);
            });
            match row {
                Ok(row) => {
                    bar.suspend(|| {
                        eprintln!(
                            "scale N={:<4} completed {}/{}, underruns {}, tick p99 median {:.3} ms worst {:.3} ms, CPU/session: receiver {:.3} %, senders {:.3} %",
                            n,
                            row.completed,
                            n,
                            row.underruns,
                            row.tick_deviation_p99_median_ms,
                            row.tick_deviation_p99_max_ms,
                            row.cpu_per_session.receiver_percent,
                            row.cpu_per_session.sender_percent
                        )
                    });
                    rows.push(row);
                }
                Err(e) => {
                    failed += 1;
                    bar.suspend(|| eprintln!("scale N={n}: {e:#}"));
                }
            }
            results.scale = Some(Scale::new(a.duration.as_secs_f64(), rows.clone()));
            report::write_json(&a.out, &results)?;
        }
    }
    if fanout && !stop.load(Ordering::SeqCst) {
        let media = Media::generate(a.seed, a.duration, Config::default().frame, false)?;
        let link = a.impairment();
        let done = units - a.listeners.len() as u64;
        let mut rows = Vec::new();
        for (j, &n) in a.listeners.iter().enumerate() {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let base = (done + j as u64) * 1000;
            let row = fanout::run(n, &link, &set, &identity, &media, &|msg, f| {
                bar.set_message(msg);
                bar.set_position(base + (f * 999.0) as u64);
            });
            match row {
                Ok(row) => {
                    bar.suspend(|| eprintln!("{}", fanout::one_line(&row)));
                    rows.push(row);
                }
                Err(e) => {
                    failed += 1;
                    bar.suspend(|| eprintln!("fanout N={n}: {e:#}"));
                }
            }
            results.fanout = Some(fanout::Fanout::new(a.duration.as_secs_f64(), rows.clone()));
            report::write_json(&a.out, &results)?;
        }
    }
    bar.finish_and_clear();
    report::write_json(&a.out, &results)?;
    report::write_markdown(&a.out, &results)?;
    say(report::scenario_table(&results.scenarios));
    if let Some(s) = &results.scale {
        say(report::scale_table(s));
    }
    if let Some(f) = &results.fanout {
        say(fanout::table(f));
    }
    eprintln!("wrote {}", a.out.display());
    Ok(if stop.load(Ordering::SeqCst) {
        crate::exit::INTERRUPTED
    } else if failed > 0 {
        crate::exit::ERROR
    } else {
        0
    })
}

/// Try latencies upward from the smallest the engine accepts until one
/// holds (zero concealed frames, underruns, late or unrecovered packets)
/// three runs in a row.
fn min_latency(a: &BenchArgs, set: &Settings, identity: &Identity) -> Result<LatencySearch> {
    let base = a.custom();
    let c = &base.config;
    let media = Media::generate(base.seed, a.duration, c.frame, c.sensor)?;
    let frame_ms = c.frame.as_secs_f64() * 1e3;
    // FEC needs a window of at least 1 ms: latency >= frame + 2 ms.
    let mut lat = if c.fec.is_some() {
        frame_ms + 2.0
    } else {
        frame_ms
    };
    lat = (lat * 2.0).ceil() / 2.0;
    let mut search = LatencySearch {
        frame_ms,
        fec: c.fec.map_or("off".into(), |(k, m)| format!("{k}+{m}")),
        trials: Vec::new(),
        found_ms: None,
        criterion: "zero concealed frames, underruns, late and unrecovered packets, three runs in a row",
    };
    let bar = progress_bar(0);
    let stop = interrupted();
    'outer: while lat <= 500.0 && !stop.load(Ordering::SeqCst) {
        let mut sc = base.clone();
        sc.name = format!("latency-{lat}ms");
        sc.config.latency = Duration::from_secs_f64(lat / 1e3);
        for round in 0..3 {
            bar.set_message(format!("latency {lat} ms, run {}/3", round + 1));
            sc.seed = base.seed + round;
            let o = run::run(&sc, set, identity, &media, &|_| {});
            let trial = match o {
                Ok(o) => {
                    let r = measure::summarise(&sc, a.duration.as_secs_f64(), &o);
                    Trial {
                        latency_ms: lat,
                        held: r.completed
                            && r.frames.concealed == 0
                            && r.frames.underruns == 0
                            && r.packets.late == 0
                            && r.packets.unrecovered == 0,
                        concealed_frames: r.frames.concealed,
                        underruns: r.frames.underruns,
                        late: r.packets.late,
                        overhead_p99_ms: r.overhead_ms.p99,
                    }
                }
                Err(e) => {
                    bar.suspend(|| eprintln!("latency {lat} ms: {e:#}"));
                    Trial {
                        latency_ms: lat,
                        held: false,
                        concealed_frames: 0,
                        underruns: 0,
                        late: 0,
                        overhead_p99_ms: f64::NAN,
                    }
                }
            };
            let held = trial.held;
            bar.suspend(|| {
                eprintln!(
                    "latency {lat} ms run {}: {} (concealed {}, underruns {}, late {})",
                    round + 1,
                    if held { "held" } else { "failed" },
                    trial.concealed_frames,
                    trial.underruns,
                    trial.late
                )
            });
            search.trials.push(trial);
            if !held {
                lat += if lat < 10.0 {
                    0.5
                } else if lat < 20.0 {
                    1.0
                } else {
                    5.0
                };
                continue 'outer;
            }
        }
        search.found_ms = Some(lat);
        break;
    }
    bar.finish_and_clear();
    say(format!(
        "smallest latency that held for {frame_ms} ms frames: {}",
        search
            .found_ms
            .map_or("none found".into(), |v| format!("{v} ms"))
    ));
    Ok(search)
}
