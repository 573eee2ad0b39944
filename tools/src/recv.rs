//! `isochron recv`: listen, write each incoming stream into files.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use crossbeam_channel::RecvTimeoutError;
use isochron_codecs::conceal::Method;
use isochron_engine::config::{LatencyBounds, ReceiverConfig};
use isochron_engine::net::pipe_sink::pick_substream;
use isochron_engine::net::tls::AuthorizedSenders;
use isochron_engine::net::{
    Admission, FileSink, Fingerprint, OutputBudget, OutputLimits, PipeOutput, PipeSink, Receiver,
    ReceiverEvent, ReceiverOptions, TransportError,
};
use serde_json::json;

use crate::output::{Status, session_json, session_summary, status_line};
use crate::stats_lines::StatsLines;
use crate::{args, exit, interrupted, say, write_json};

#[derive(Args)]
pub struct RecvArgs {
    /// Address to listen on: :4433 (every interface), localhost:4433, 10.0.0.2, [::]:4433;
    /// the port defaults to 4433 (0 picks a free one)
    #[arg(long, value_name = "ADDR", value_parser = crate::addr::listen)]
    listen: SocketAddr,
    /// Directory to write received files into (one file per substream)
    #[arg(long, value_name = "DIR", required_unless_present_any = ["stdout", "play"])]
    out: Option<PathBuf>,
    /// Write one substream to standard output at its playout instants, as a WAV stream
    /// (or raw PCM with --raw), e.g. `| aplay`; logs stay on stderr. Implies --once
    #[arg(long, conflicts_with = "out")]
    stdout: bool,
    /// Play one audio substream on a sound device (the default output without a NAME;
    /// `isochron devices` lists them), kept in step with the card's clock. Implies --once
    #[arg(long, value_name = "NAME", num_args = 0..=1, default_missing_value = "", conflicts_with_all = ["out", "stdout"])]
    play: Option<String>,
    /// With --play: media queued for the card beyond the playout latency (absorbs its
    /// periods and clock drift)
    #[arg(long = "device-buffer", default_value = "20ms", value_parser = args::duration)]
    device_buffer: Duration,
    /// With --stdout or --play: the substream to write, by name [default: the first audio one]
    #[arg(long, value_name = "NAME")]
    substream: Option<String>,
    /// With --stdout: bare little-endian samples (the stream's s16le, s24le, s32le, f32le
    /// or u8) instead of a WAV stream
    #[arg(long, requires = "stdout")]
    raw: bool,
    /// Target playout latency above the fastest path (live streams), e.g. 80ms; or
    /// auto[:MIN..MAX] to follow the measured delay [auto: 20ms..500ms]
    #[arg(long, default_value = "80ms", value_parser = args::latency)]
    latency: args::Latency,
    /// Low-water mark: playback starts / the sender resumes at this much buffered media (ms)
    #[arg(long = "low-water", default_value = "40ms", value_parser = args::duration)]
    low_water: Duration,
    /// High-water mark: the sender is paused at this much buffered media (ms)
    #[arg(long = "high-water", default_value = "160ms", value_parser = args::duration)]
    high_water: Duration,
    /// Directory of this user's persistent self-signed identity
    /// (default: ~/.config/isochron/identity, or under $XDG_CONFIG_HOME)
    #[arg(long, value_name = "DIR")]
    identity: Option<PathBuf>,
    /// Admit this sender (its identity's fingerprint, as `isochron id` prints it) besides
    /// those in the authorized-senders file; repeatable
    #[arg(long, value_name = "sha256:HEX")]
    allow: Vec<Fingerprint>,
    /// The authorized-senders file, one `sha256:HEX [comment]` a line, managed by
    /// `isochron trust` (default: ~/.config/isochron/authorized_senders); re-read when it changes
    #[arg(long = "authorized-senders", value_name = "FILE")]
    authorized_senders: Option<PathBuf>,
    /// Admit ANY sender that reaches this receiver, without authorization: anyone can write
    /// files into --out (a --token is then the only check)
    #[arg(long = "dangerously-allow-any-sender", conflicts_with = "allow")]
    allow_any: bool,
    /// Certificate chain (PEM) of a CA-signed identity, instead of the self-signed one
    #[arg(long, value_name = "PEM", requires = "key")]
    cert: Option<PathBuf>,
    /// Private key (PEM) for --cert
    #[arg(long, value_name = "PEM", requires = "cert")]
    key: Option<PathBuf>,
    /// Shared secret senders must present, besides being authorized (visible in `ps`:
    /// prefer --token-file or $ISOCHRON_TOKEN)
    #[arg(long, value_name = "T", conflicts_with = "token_file")]
    token: Option<String>,
    /// Read the shared secret from this file (one line); $ISOCHRON_TOKEN also works
    #[arg(long = "token-file", value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Exit after the first stream ends: 0 if it completed, 3 if truncated, 4 if refused,
    /// 7 if its output could not be written (or was refused for lack of room)
    #[arg(long)]
    once: bool,
    /// Bytes one session may write into --out (e.g. 500MB, 4GiB; none: no limit); the
    /// session then ends, its files finalised, and both ends exit 7
    #[arg(long = "max-bytes", value_name = "SIZE", default_value = "4GiB", value_parser = args::size_limit)]
    max_bytes: std::option::Option<u64>,
    /// Media one session may write, per substream (e.g. 30m, 12h; none: no limit)
    #[arg(long = "max-duration", value_name = "DUR", default_value = "12h", value_parser = args::duration_limit)]
    max_duration: std::option::Option<Duration>,
    /// Bytes all sessions of this receiver may write into --out together (none: no limit)
    #[arg(long = "max-total-bytes", value_name = "SIZE", default_value = "64GiB", value_parser = args::size_limit)]
    max_total_bytes: std::option::Option<u64>,
    /// Files all sessions of this receiver may create together (none: no limit)
    #[arg(long = "max-files", value_name = "N", default_value = "10000", value_parser = args::count_limit)]
    max_files: std::option::Option<u64>,
    /// Free space to leave on --out's file system: writing stops, and new sessions are
    /// refused, below it (e.g. 1GiB; 0: write until the disk is full)
    #[arg(long = "min-free", value_name = "SIZE", default_value = "1GiB", value_parser = args::size)]
    min_free: u64,
    /// Write {"addr": ..., "fingerprint": ...} here once listening
    #[arg(long = "ready-file", value_name = "PATH")]
    ready_file: Option<PathBuf>,
    /// Write the final statistics of every session here (JSON)
    #[arg(long = "stats-json", value_name = "PATH")]
    stats_json: Option<PathBuf>,
    /// While sessions run, append their statistics to --stats-lines this often (e.g. 1s):
    /// one JSON object a line per session, for dashboards
    #[arg(long = "stats-every", value_parser = args::duration, requires = "stats_lines")]
    stats_every: Option<Duration>,
    /// The JSON-lines file --stats-every appends to (created if missing)
    #[arg(long = "stats-lines", value_name = "PATH", requires = "stats_every")]
    stats_lines: Option<PathBuf>,
    /// A sender silent this long is gone: its stream ends truncated (e.g. 5s)
    #[arg(long = "idle-timeout", default_value = "5s", value_parser = args::duration)]
    idle_timeout: Duration,
    /// Concealment of lost audio: waveform, silence
    #[arg(long = "conceal-audio", default_value = "waveform")]
    conceal_audio: Method,
    /// Concealment of lost sensor rows: linear, hold, empty
    #[arg(long = "conceal-sensor", default_value = "linear")]
    conceal_sensor: Method,
    /// No live status line
    #[arg(long, short)]
    quiet: bool,
}

/// Who may send: the authorized-senders file and `--allow`, or anyone
/// (loudly). A file that is unusable now is an error now, not a refusal of
/// every sender later.
fn admission(a: &RecvArgs) -> Result<Admission> {
    if a.allow_any {
        eprintln!(
            "WARNING: --dangerously-allow-any-sender: sender authorization is OFF; anyone who \
             reaches {} can write files into {}",
            a.listen,
            a.out
                .as_ref()
                .map_or("its output".into(), |o| o.display().to_string())
        );
        return Ok(Admission::DangerouslyAnyone);
    }
    let file = a
        .authorized_senders
        .clone()
        .unwrap_or_else(AuthorizedSenders::default_path);
    let listed = AuthorizedSenders::load(&file).context("the authorized-senders file")?;
    if listed.entries().is_empty() && a.allow.is_empty() {
        eprintln!(
            "no sender is authorized yet ({} lists none): each is refused with the \
             `isochron trust add` command that admits it",
            file.display()
        );
    }
    Ok(Admission::file(file, a.allow.iter().copied()))
}

pub fn run(a: RecvArgs) -> Result<u8> {
    let identity =
        crate::identity::load(a.identity.as_deref(), a.cert.as_deref(), a.key.as_deref())?;
    let admission = admission(&a)?;
    if let Some(out) = &a.out {
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    }
    let once = a.once || a.stdout || a.play.is_some();
    if let Some(name) = &a.play
        && let Err(e) = probe_player(name)
    {
        eprintln!("error: {e}");
        return Ok(exit::OUTPUT);
    }
    let mut opts = ReceiverOptions::new(a.listen, admission);
    let (latency, adaptive) = match a.latency {
        args::Latency::Fixed(d) => (d, None),
        args::Latency::Auto(min, max) => (max, Some(LatencyBounds { min, max })),
    };
    opts.config = ReceiverConfig {
        latency,
        adaptive,
        low_water: a.low_water,
        high_water: a.high_water,
        token: crate::token::resolve(a.token.as_deref(), a.token_file.as_deref())?,
        ..Default::default()
    };
    opts.idle_timeout = a.idle_timeout;
    opts.conceal_audio = a.conceal_audio;
    opts.conceal_sensor = a.conceal_sensor;
    if a.low_water >= a.high_water {
        return Err(exit::usage("--low-water must be below --high-water"));
    }
    let out = a.out.clone();
    let (to_stdout, substream) = (a.stdout, a.substream.clone());
    let kind = if a.raw {
        PipeOutput::Raw
    } else {
        PipeOutput::Wav
    };
    // Standard output (or the sound card) carries one session's media.
    let taken = std::sync::atomic::AtomicBool::new(false);
    let budget = Arc::new(OutputBudget::new(OutputLimits {
        max_bytes: a.max_bytes,
        max_duration: a.max_duration,
        min_free: a.min_free,
        max_total_bytes: a.max_total_bytes,
        max_files: a.max_files,
    }));
    // A session refused because its output could not be made (no room, a
    // limit): `--once` then exits with the output code, not "refused".
    let output_refused = Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
    let refused_here = output_refused.clone();
    let (play, device_buffer) = (a.play.clone(), a.device_buffer);
    let mut rx = Receiver::start(opts, &identity, move |info| {
        if play.is_some() || to_stdout {
            let i =
                pick_substream(&info.session, substream.as_deref()).map_err(|e| e.to_string())?;
            if taken.swap(true, Ordering::SeqCst) {
                return Err("this receiver's output already carries another stream".into());
            }
            if let Some(name) = &play {
                return open_player(name, &info.session, i, device_buffer);
            }
            return PipeSink::new(std::io::stdout(), &info.session, i, kind)
                .map(|s| Box::new(s) as _)
                .map_err(|e| e.to_string());
        }
        let out = out.as_ref().ok_or("no output directory")?;
        FileSink::create_within(out, &info.session, &budget)
            .map(|s| Box::new(s) as _)
            .map_err(|e| {
                if once {
                    // Only `--once` reads it, after the first refusal.
                    let mut peers = refused_here.lock().unwrap_or_else(|e| e.into_inner());
                    peers.insert(info.peer);
                }
                format!("cannot create output files: {e}")
            })
    })
    .map_err(|e| match e {
        TransportError::Bind { addr, source } if source.kind() == std::io::ErrorKind::AddrInUse => {
            anyhow::anyhow!(
                "address {addr} is already in use (another receiver?); pick another --listen port"
            )
        }
        other => other.into(),
    })?;
    let interrupted = interrupted();
    // The ready file first: whoever sees the printed lines may read it.
    if let Some(p) = &a.ready_file {
        write_json(
            p,
            &json!({"addr": rx.local_addr().to_string(), "fingerprint": rx.fingerprint().to_string()}),
        )?;
    }
    // With --stdout, standard output is the media's: these go to stderr.
    let announce = |line: String| {
        if a.stdout {
            eprintln!("{line}");
        } else {
            say(line);
        }
    };
    announce(format!("listening on {}", rx.local_addr()));
    announce(format!("fingerprint {}", rx.fingerprint()));
    let mut status = Status::new(a.quiet);
    let mut lines = match (a.stats_every, &a.stats_lines) {
        (Some(every), _) if every.is_zero() => {
            return Err(exit::usage("--stats-every must be above 0"));
        }
        (Some(every), Some(path)) => Some(StatsLines::open(every, path)?),
        _ => None,
    };
    let mut sessions = Vec::new();
    let mut code = 0;
    let mut output_failed = false;
    loop {
        if interrupted.load(Ordering::SeqCst) {
            status.clear();
            eprintln!("interrupted: finishing files");
            rx.shutdown();
            // Sessions cut short report themselves on the way out.
            while let Ok(ev) = rx.events().try_recv() {
                if let ReceiverEvent::Ended { info, end } = ev {
                    eprint!("{}", session_summary(&info, &end));
                    sessions.push(session_json(&info, &end));
                }
            }
            code = exit::INTERRUPTED;
            break;
        }
        let mut wait = Duration::from_millis(200);
        if let Some(l) = &mut lines {
            if l.due() {
                l.write(&rx.sessions())?;
            }
            wait = wait.min(l.until_due());
        }
        match rx.events().recv_timeout(wait) {
            Ok(ReceiverEvent::Started(info)) => {
                status.clear();
                let names: Vec<&str> = info
                    .session
                    .substreams
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect();
                eprintln!(
                    "session {} from {}: {}",
                    info.id,
                    info.peer,
                    names.join(", ")
                );
            }
            Ok(ReceiverEvent::Ended { info, end }) => {
                status.clear();
                eprint!("{}", session_summary(&info, &end));
                sessions.push(session_json(&info, &end));
                if !end.errors.is_empty() {
                    output_failed = true;
                }
                if once {
                    code = if end.truncated { exit::TRUNCATED } else { 0 };
                    break;
                }
            }
            Ok(ReceiverEvent::Refused { peer, reason }) => {
                status.clear();
                eprintln!("refused {peer}: {reason}");
                if once {
                    let peers = output_refused.lock().unwrap_or_else(|e| e.into_inner());
                    code = if peers.contains(&peer) {
                        exit::OUTPUT
                    } else {
                        exit::REFUSED
                    };
                    break;
                }
            }
            Err(RecvTimeoutError::Timeout) if status.due() => {
                if let Some((_, s)) = rx.sessions().into_iter().last() {
                    status.show(&status_line(&s));
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    if let Some(p) = &a.stats_json {
        write_json(p, &json!({ "sessions": sessions }))?;
    }
    // Output that could not be written in full outranks how the stream
    // ended; an interruption outranks both.
    Ok(match code {
        exit::INTERRUPTED => code,
        _ if output_failed => exit::OUTPUT,
        _ => code,
    })
}

#[cfg(feature = "device")]
fn open_player(
    name: &str,
    session: &isochron_engine::wire::control::SessionDesc,
    index: usize,
    target: Duration,
) -> Result<Box<dyn isochron_engine::net::Sink>, String> {
    use isochron_engine::net::device::playback::DeviceSink;
    let name = (!name.is_empty()).then_some(name);
    DeviceSink::open(name, session, index, target)
        .map(|s| Box::new(s) as _)
        .map_err(|e| e.to_string())
}

/// Fail at start, not at the first stream, when there is nothing to play on.
#[cfg(feature = "device")]
fn probe_player(name: &str) -> Result<String, String> {
    isochron_engine::net::device::probe((!name.is_empty()).then_some(name), true)
        .map_err(|e| e.to_string())
}

#[cfg(not(feature = "device"))]
fn probe_player(_name: &str) -> Result<String, String> {
    Err("this isochron was built without sound devices (feature `device`)".into())
}

#[cfg(not(feature = "device"))]
fn open_player(
    _name: &str,
    _session: &isochron_engine::wire::control::SessionDesc,
    _index: usize,
    _target: Duration,
) -> Result<Box<dyn isochron_engine::net::Sink>, String> {
    Err("this isochron was built without sound devices (feature `device`)".into())
}
