//! `isochron recv`: listen, write each incoming stream into files.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use crossbeam_channel::RecvTimeoutError;
use isochron_codecs::conceal::Method;
use isochron_engine::config::ReceiverConfig;
use isochron_engine::net::{
    FileSink, Identity, Receiver, ReceiverEvent, ReceiverOptions, TransportError,
};
use serde_json::json;

use crate::output::{Status, session_json, session_summary, status_line};
use crate::{args, exit, interrupted, say, write_json};

#[derive(Args)]
pub struct RecvArgs {
    /// Address to listen on, e.g. 0.0.0.0:4433 (port 0 picks a free one)
    #[arg(long, value_name = "ADDR")]
    listen: SocketAddr,
    /// Directory to write received files into (one file per substream)
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Target playout latency above the fastest path (live streams), e.g. 80ms
    #[arg(long, default_value = "80ms", value_parser = args::duration)]
    latency: Duration,
    /// Low-water mark: playback starts / the sender resumes at this much buffered media (ms)
    #[arg(long = "low-water", default_value = "40ms", value_parser = args::duration)]
    low_water: Duration,
    /// High-water mark: the sender is paused at this much buffered media (ms)
    #[arg(long = "high-water", default_value = "160ms", value_parser = args::duration)]
    high_water: Duration,
    /// Directory of the receiver's persistent self-signed identity
    /// (default: ~/.config/isochron/identity)
    #[arg(long, value_name = "DIR")]
    identity: Option<PathBuf>,
    /// Certificate chain (PEM) of a CA-signed identity, instead of the self-signed one
    #[arg(long, value_name = "PEM", requires = "key")]
    cert: Option<PathBuf>,
    /// Private key (PEM) for --cert
    #[arg(long, value_name = "PEM", requires = "cert")]
    key: Option<PathBuf>,
    /// Shared secret senders must present
    #[arg(long, value_name = "T")]
    token: Option<String>,
    /// Exit after the first stream ends: 0 if it completed, 3 if truncated, 4 if refused
    #[arg(long)]
    once: bool,
    /// Write {"addr": ..., "fingerprint": ...} here once listening
    #[arg(long = "ready-file", value_name = "PATH")]
    ready_file: Option<PathBuf>,
    /// Write the final statistics of every session here (JSON)
    #[arg(long = "stats-json", value_name = "PATH")]
    stats_json: Option<PathBuf>,
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

fn default_identity_dir() -> PathBuf {
    match std::env::var_os("XDG_CONFIG_HOME") {
        Some(d) => PathBuf::from(d).join("isochron/identity"),
        None => match std::env::var_os("HOME") {
            Some(h) => PathBuf::from(h).join(".config/isochron/identity"),
            None => PathBuf::from(".isochron-identity"),
        },
    }
}

pub fn run(a: RecvArgs) -> Result<u8> {
    let identity = match (&a.cert, &a.key) {
        (Some(c), Some(k)) => Identity::from_pem_files(c, k).context("loading --cert/--key")?,
        _ => {
            let dir = a.identity.clone().unwrap_or_else(default_identity_dir);
            Identity::load_or_create(&dir)
                .with_context(|| format!("identity in {}", dir.display()))?
        }
    };
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let mut opts = ReceiverOptions::new(a.listen);
    opts.config = ReceiverConfig {
        latency: a.latency,
        low_water: a.low_water,
        high_water: a.high_water,
        token: a.token.clone(),
        ..Default::default()
    };
    opts.idle_timeout = a.idle_timeout;
    opts.conceal_audio = a.conceal_audio;
    opts.conceal_sensor = a.conceal_sensor;
    if a.low_water >= a.high_water {
        return Err(exit::usage("--low-water must be below --high-water"));
    }
    let out = a.out.clone();
    let mut rx = Receiver::start(opts, &identity, move |info| {
        FileSink::create(&out, &info.session)
            .map(|s| Box::new(s) as _)
            .map_err(|e| format!("cannot create output files: {e}"))
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
    say(format!("listening on {}", rx.local_addr()));
    say(format!("fingerprint {}", rx.fingerprint()));
    let mut status = Status::new(a.quiet);
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
        match rx.events().recv_timeout(Duration::from_millis(200)) {
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
                if a.once {
                    code = if end.truncated { exit::TRUNCATED } else { 0 };
                    break;
                }
            }
            Ok(ReceiverEvent::Refused { peer, reason }) => {
                status.clear();
                eprintln!("refused {peer}: {reason}");
                if a.once {
                    code = exit::REFUSED;
                    break;
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                if let Some((_, s)) = rx.sessions().into_iter().last() {
                    status.show(&status_line(&s));
                }
            }
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
