//! `isochron send`: stream files as one complex stream.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use isochron_engine::config::{Pacing, SenderConfig};
use isochron_engine::files::{FileInput, InputOptions};
use isochron_engine::net::tls::Fingerprint;
use isochron_engine::net::{Sender, SenderOptions, SenderReport, TransportError, Trust};
use serde_json::json;

use crate::media_args::{InputArgs, fec_params, is_stdin};
use crate::output::packets_line;
use crate::{args, exit, interrupted, resolve, write_json};

#[derive(Args)]
pub struct SendArgs {
    /// Files to send: WAV (PCM, float, A-law/mu-law, EXTENSIBLE, RF64), FLAC (also Ogg Vorbis, MP3, AAC/M4A; received as WAV) and sensor CSV; each becomes a substream
    /// (`-` reads standard input: a WAV stream, CSV rows, or raw PCM with --format)
    #[arg(required_unless_present = "device", value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Capture from a sound device as one more substream (the default input without a
    /// NAME; `isochron devices` lists them)
    #[arg(long, value_name = "NAME", num_args = 0..=1, default_missing_value = "")]
    device: Option<String>,
    /// Stop capturing from --device after this much media (e.g. 10s)
    #[arg(long, value_parser = args::duration, requires = "device")]
    duration: Option<Duration>,
    /// The receiver's address as printed by `isochron recv`: host or host:port, names allowed
    /// (port 4433 by default)
    #[arg(long, value_name = "ADDR")]
    to: String,
    /// The receiver's certificate fingerprint (sha256:HEX, printed by `isochron recv`); repeatable
    #[arg(long, value_name = "sha256:HEX")]
    pin: Vec<Fingerprint>,
    /// Trust a CA-signed receiver through this CA certificate (PEM) instead of a pin
    #[arg(long, value_name = "PEM")]
    ca: Option<PathBuf>,
    /// Name to verify in the receiver's CA-signed certificate (default: the host of --to)
    #[arg(long = "server-name", value_name = "NAME")]
    server_name: Option<String>,
    /// Turn certificate verification OFF. Anyone on the path can read and alter the stream.
    #[arg(long = "dangerously-skip-verification")]
    insecure: bool,
    /// Shared secret the receiver requires (visible in `ps`: prefer --token-file or
    /// $ISOCHRON_TOKEN)
    #[arg(long, value_name = "T", conflicts_with = "token_file")]
    token: Option<String>,
    /// Read the shared secret from this file (one line); $ISOCHRON_TOKEN also works
    #[arg(long = "token-file", value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Directory of this user's persistent identity, presented to the receiver, which admits
    /// it by fingerprint (default: ~/.config/isochron/identity, or under $XDG_CONFIG_HOME)
    #[arg(long, value_name = "DIR")]
    identity: Option<PathBuf>,
    #[command(flatten)]
    input: InputArgs,
    /// FEC code: K source + M repair packets a block (e.g. 16+4), or off
    #[arg(long, default_value = "16+4", value_parser = args::fec)]
    fec: args::Fec,
    /// FEC block time budget (default: chosen by the receiver from its latency)
    #[arg(long = "fec-window", value_parser = args::duration)]
    fec_window: Option<Duration>,
    /// How losses are recovered: fec (FEC alone), arq (retransmission alone, no FEC) or hybrid
    /// (FEC sized for what a round trip cannot recover, retransmission for the rest)
    #[arg(long, default_value = "hybrid", value_parser = args::recovery, value_name = "MODE")]
    recovery: isochron_engine::Recovery,
    /// Residual loss adaptive FEC and retransmission aim for (a ratio, or a percentage like
    /// 0.1%): a higher target sends less redundancy and leaves more gaps to conceal
    #[arg(long = "target-loss", default_value = "1e-4", value_parser = args::loss_target, value_name = "RATIO")]
    target_loss: f64,
    /// Packet interleaving depth D: FEC blocks sent column by column (spreads bursts);
    /// auto[:N]: adaptive FEC picks it from the measured bursts, 1 on random loss, up to N
    /// (default 8) or what the receiver's latency allows [default: 2 in file mode, 1 with --live]
    #[arg(long, value_name = "D", value_parser = args::interleave)]
    interleave: Option<args::Interleave>,
    /// Pace by real time (live) instead of file mode, which reads ahead as far as the
    /// receiver's credits allow (standard input and --device are then paced by their own
    /// arrival: their sample count is the media clock)
    #[arg(long)]
    live: bool,
    /// File mode: refill the receiver's buffer at up to X times real time while the sender is
    /// behind its credit. This does not shorten the transfer: the receiver plays out in real
    /// time, so a 10 s file takes about 10 s plus the latency whatever X is
    #[arg(long, default_value_t = 2.0, value_name = "X")]
    fill: f64,
    /// Clock speed factor for both ends (tests, quick runs): every duration scales, the
    /// receiver's latency and marks too
    #[arg(long, default_value_t = 1.0, value_name = "X")]
    speed: f64,
    /// Give up connecting after this long
    #[arg(long = "connect-timeout", default_value = "5s", value_parser = args::duration)]
    connect_timeout: Duration,
    /// Write the final statistics here (JSON)
    #[arg(long = "stats-json", value_name = "PATH")]
    stats_json: Option<PathBuf>,
    /// Give up (exit 3) when the receiver has held the stream paused this long (e.g. 60s)
    #[arg(long = "max-pause", default_value = "60s", value_parser = args::duration)]
    max_pause: Duration,
    /// No progress bar or progress lines
    #[arg(long, short)]
    quiet: bool,
}

fn trust(a: &SendArgs) -> Result<Trust> {
    match (&a.pin[..], &a.ca, a.insecure) {
        (pins, None, false) if !pins.is_empty() => Ok(Trust::Pinned(pins.to_vec())),
        ([], Some(ca), false) => {
            let host = a.server_name.clone().unwrap_or_else(|| {
                a.to.rsplit_once(':')
                    .map_or(a.to.clone(), |(h, _)| h.trim_matches(['[', ']']).to_owned())
            });
            Ok(Trust::Roots {
                ca_pem: ca.clone(),
                server_name: host,
            })
        }
        ([], None, true) => {
            eprintln!(
                "WARNING: --dangerously-skip-verification: the receiver is NOT authenticated; \
                 anyone on the path can read and alter this stream"
            );
            Ok(Trust::DangerouslyUnverified)
        }
        ([], None, false) => Err(exit::usage(
            "say how to trust the receiver: --pin sha256:... (the fingerprint `isochron recv` prints), \
             or --ca FILE for a CA-signed receiver",
        )),
        _ => Err(exit::usage(
            "use one of --pin, --ca or --dangerously-skip-verification",
        )),
    }
}

pub fn run(a: SendArgs) -> Result<u8> {
    let trust = trust(&a)?;
    let identity = crate::identity::load(a.identity.as_deref(), None, None)?;
    let to = resolve(&a.to)?;
    let input = a.input.options()?;
    let stdin = a.files.iter().any(|p| is_stdin(p));
    let mut inputs = a.input.open(&a.files, a.device.is_some())?;
    if let Some(name) = &a.device {
        let dev = open_device(&a, name, inputs.len() as u16, &input)?;
        inputs.push(a.input.apply_codec(dev)?);
    }
    let catalog: Vec<_> = inputs.iter().map(|f| f.desc.clone()).collect();
    crate::media_args::say_codecs(&catalog);
    let total_samples: u64 = catalog.iter().filter_map(|d| d.length).sum();
    let open_ended = catalog.iter().any(|d| d.length.is_none());
    let mut opts = SenderOptions::new(to, trust, identity);
    opts.token = crate::token::resolve(a.token.as_deref(), a.token_file.as_deref())?;
    opts.connect_timeout = a.connect_timeout;
    opts.name = a
        .files
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect::<Vec<_>>()
        .join(", ");
    let base = if a.live {
        SenderConfig::default()
    } else {
        SenderConfig::file(a.fill)
    };
    let il = a.interleave.unwrap_or(args::Interleave {
        depth: base.fec.depth,
        auto: false,
    });
    let mut fec = fec_params(&a.fec, a.fec_window, il.depth);
    fec.auto_depth = il.auto;
    opts.config = SenderConfig {
        fec,
        speed: a.speed,
        recovery: a.recovery,
        fec_target: Some(a.target_loss),
        // A live stream from a pipe or a card has its own clock: its sample count.
        pacing: if a.live && (stdin || a.device.is_some()) {
            Pacing::Arrival
        } else {
            Pacing::Clock
        },
        max_pause: a.max_pause,
        ..base
    };
    let mut tx = Sender::connect(opts, catalog.clone()).map_err(explain)?;
    let acc = tx.accept();
    eprintln!(
        "connected to {to}: latency {} ms, marks {}..{} ms, FEC window {} ms",
        acc.latency_us / 1000,
        acc.low_water_us / 1000,
        acc.high_water_us / 1000,
        acc.fec_window_us as f64 / 1000.0
    );
    for (i, f) in inputs.into_iter().enumerate() {
        tx.feed_from(i, f.reader)?;
    }
    // Progress: samples produced over all substreams.
    let bar = (!a.quiet && !open_ended && std::io::stderr().is_terminal())
        .then(|| progress_bar(total_samples));
    let interrupted = interrupted();
    let mut last_line = std::time::Instant::now();
    let mut stopped = false;
    while !tx.is_finished() {
        std::thread::sleep(Duration::from_millis(100));
        if interrupted.load(Ordering::SeqCst) {
            stopped = true;
            break;
        }
        let done: u64 = tx.stats().substreams.iter().map(|d| d.samples).sum();
        // A receiver holding the stream paused is said, with the limit.
        let paused = tx
            .paused_for()
            .filter(|p| *p >= Duration::from_secs(1))
            .map(|p| {
                format!(
                    "paused by the receiver for {} s (giving up at {} s: --max-pause)",
                    p.as_secs(),
                    a.max_pause.as_secs()
                )
            });
        match &bar {
            Some(b) => {
                b.set_position(done);
                b.set_message(paused.unwrap_or_default());
            }
            None if !a.quiet
                && paused.is_some()
                && last_line.elapsed() >= Duration::from_secs(5) =>
            {
                eprintln!("{}", paused.unwrap_or_default());
                last_line = std::time::Instant::now();
            }
            None if !a.quiet && last_line.elapsed() >= Duration::from_secs(5) => {
                if open_ended {
                    eprintln!("sent {done} samples");
                } else {
                    eprintln!(
                        "sent {:.1} % ({done} of {total_samples} samples)",
                        100.0 * done as f64 / total_samples.max(1) as f64
                    );
                }
                last_line = std::time::Instant::now();
            }
            None => {}
        }
    }
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let report = if stopped {
        // Close now: the receiver keeps what it has and ends there.
        eprintln!("interrupted: stopping the stream");
        tx.stop()
    } else {
        tx.wait()
    }
    .map_err(|e| match e {
        // A reader failed: the input file broke mid-stream.
        TransportError::Io(e) => exit::input(e),
        other => explain(other),
    })?;
    print_summary(&report);
    if let Some(p) = &a.stats_json {
        write_json(p, &report_json(&report))?;
    }
    Ok(if stopped {
        exit::INTERRUPTED
    } else if report.completed {
        0
    } else {
        exit::TRUNCATED
    })
}

/// Open the capture device `name` (empty: the default one).
#[cfg(feature = "device")]
fn open_device(a: &SendArgs, name: &str, id: u16, opts: &InputOptions) -> Result<FileInput> {
    use isochron_engine::net::device::capture::{CaptureOptions, open_capture};
    let c = CaptureOptions {
        name: (!name.is_empty()).then(|| name.to_owned()),
        rate: a.input.rate,
        channels: a.input.channels,
        duration: a.duration,
    };
    open_capture(id, &c, opts).map_err(|e| exit::input(anyhow::anyhow!("{e}")))
}

#[cfg(not(feature = "device"))]
fn open_device(_a: &SendArgs, _name: &str, _id: u16, _opts: &InputOptions) -> Result<FileInput> {
    Err(exit::input(anyhow::anyhow!(
        "this isochron was built without sound devices (feature `device`)"
    )))
}

fn progress_bar(total: u64) -> ProgressBar {
    let pb = ProgressBar::new(total);
    pb.set_style(
        ProgressStyle::with_template(
            "{spinner} sending [{elapsed_precise}] {wide_bar} {percent}% eta {eta} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    pb
}

/// Turn transport errors into what the user should do.
fn explain(e: TransportError) -> anyhow::Error {
    match e {
        TransportError::Rejected { reason, message } => exit::coded(
            exit::transport_code(&TransportError::Rejected {
                reason,
                message: String::new(),
            }),
            format!("the receiver refused the stream ({reason:?}): {message}"),
        ),
        other => other.into(),
    }
}

fn print_summary(r: &SenderReport) {
    let s = &r.stats;
    let frames: Vec<String> = s
        .substreams
        .iter()
        .map(|d| format!("{} frames, {} samples", d.frames, d.samples))
        .collect();
    eprintln!(
        "{}: {}; {} source + {} repair packets, {} sent again ({} recovery, redundancy {:.0} %: FEC {:.0} %); credits {}; dropped {}, late frames {}",
        if r.completed { "done" } else { "ended early" },
        frames.join("; "),
        s.source_packets,
        s.repair_packets,
        s.retransmit_packets,
        s.recovery.name(),
        s.redundancy_ratio * 100.0,
        s.fec_overhead_ratio * 100.0,
        s.credits,
        s.dropped_expired + s.dropped_overflow,
        s.late_frames,
    );
    match r.receiver {
        // The receiver's final account when it completed (its last
        // periodic report otherwise).
        Some(rep) => eprintln!(
            "receiver{}: {}, jitter {:.2} ms",
            if r.completed { "" } else { " (last report)" },
            packets_line(
                rep.expected,
                rep.lost,
                rep.recovered,
                rep.unrecovered,
                rep.late
            ),
            rep.jitter_us as f64 / 1e3
        ),
        None => eprintln!("receiver: no report received"),
    }
}

fn report_json(r: &SenderReport) -> serde_json::Value {
    json!({
        "completed": r.completed,
        "stats": r.stats,
        "receiver": r.receiver,
        "end": r.end,
    })
}
