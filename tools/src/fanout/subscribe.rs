//! `isochron subscribe`: play a stream by name into files.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use isochron_codecs::conceal::Method;
use isochron_engine::config::ReceiverConfig;
use isochron_engine::net::tls::Fingerprint;
use isochron_engine::net::zenoh::{StreamInfo, Subscriber, SubscriberOptions, keys};
use isochron_engine::net::{FileSink, SessionEnd};
use serde_json::json;

use super::{RouterArgs, exit_code, passphrase};
use crate::output::{Status, status_line};
use crate::{args, exit, interrupted, say, write_json};

#[derive(Args)]
pub struct SubscribeArgs {
    /// The stream's name, as published (e.g. studio/a/mix)
    #[arg(value_name = "NAME")]
    name: String,
    /// Directory to write the stream's files into (one file per substream)
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// The publisher's fingerprint (sha256:HEX, printed by `isochron publish`); repeatable.
    /// Default: this machine's own identity (a publisher run by the same user)
    #[arg(long, value_name = "sha256:HEX")]
    pin: Vec<Fingerprint>,
    #[command(flatten)]
    router: RouterArgs,
    /// The stream's passphrase, in this file (first line); default: $ISOCHRON_PASSPHRASE if set
    #[arg(long = "passphrase-file", value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
    /// Target playout latency above the fastest path, e.g. 80ms (at least the stream's floor)
    #[arg(long, default_value = "80ms", value_parser = args::duration)]
    latency: Duration,
    /// Low-water mark of buffered media, e.g. 40ms
    #[arg(long = "low-water", default_value = "40ms", value_parser = args::duration)]
    low_water: Duration,
    /// High-water mark of buffered media, e.g. 160ms (live: widens the buffer's horizon)
    #[arg(long = "high-water", default_value = "160ms", value_parser = args::duration)]
    high_water: Duration,
    /// Concealment of lost audio: waveform, silence
    #[arg(long = "conceal-audio", default_value = "waveform")]
    conceal_audio: Method,
    /// Concealment of lost sensor rows: linear, hold, empty
    #[arg(long = "conceal-sensor", default_value = "linear")]
    conceal_sensor: Method,
    /// Wait this long for the stream to come on air, e.g. 10s
    #[arg(long, default_value = "10s", value_parser = args::duration)]
    wait: Duration,
    /// A publisher silent this long is gone: the stream ends truncated (e.g. 10s)
    #[arg(long = "idle-timeout", default_value = "10s", value_parser = args::duration)]
    idle_timeout: Duration,
    /// Exit after the first stream ends: 0 if it completed, 3 if truncated, 4 if refused
    #[arg(long)]
    once: bool,
    /// Write {"stream", "publisher", "listener", ...} here once subscribed
    #[arg(long = "ready-file", value_name = "PATH")]
    ready_file: Option<PathBuf>,
    /// Write the final statistics of every stream played here (JSON)
    #[arg(long = "stats-json", value_name = "PATH")]
    stats_json: Option<PathBuf>,
    /// Directory of this listener's persistent identity (default: ~/.config/isochron/identity)
    #[arg(long, value_name = "DIR")]
    identity: Option<PathBuf>,
    /// No live status line
    #[arg(long, short)]
    quiet: bool,
}

pub fn run(a: SubscribeArgs) -> Result<u8> {
    let identity = super::identity(a.identity.as_ref())?;
    let pins = if a.pin.is_empty() {
        eprintln!(
            "no --pin: trusting this identity's own publisher ({})",
            identity.fingerprint()
        );
        vec![identity.fingerprint()]
    } else {
        a.pin.clone()
    };
    let mut opts = SubscriberOptions::new(a.name.clone(), a.router.options()?, pins);
    opts.passphrase = passphrase(a.passphrase_file.as_ref())?;
    opts.config = ReceiverConfig {
        latency: a.latency,
        low_water: a.low_water,
        high_water: a.high_water,
        ..Default::default()
    };
    opts.conceal_audio = a.conceal_audio;
    opts.conceal_sensor = a.conceal_sensor;
    opts.wait = a.wait;
    opts.idle_timeout = a.idle_timeout;
    let stop = interrupted();
    let mut streams = Vec::new();
    let mut code;
    say(format!("listener {}", identity.fingerprint()));
    loop {
        let out = a.out.clone();
        let sub = Subscriber::start(opts.clone(), &identity, move |_info| {
            FileSink::create(&out, &_info.catalog.session)
                .map(|s| Box::new(s) as _)
                .map_err(|e| format!("cannot create output files in {}: {e}", out.display()))
        });
        let sub = match sub {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e}");
                code = exit_code(&e);
                break;
            }
        };
        let info = sub.info().clone();
        describe(&info);
        if let Some(p) = &a.ready_file {
            write_json(
                p,
                &json!({
                    "stream": a.name,
                    "publisher": info.publisher.to_string(),
                    "listener": keys::hex(&info.listener),
                    "latency_floor_us": info.catalog.latency_floor_us,
                }),
            )?;
        }
        let mut status = Status::new(a.quiet);
        while !sub.is_finished() {
            std::thread::sleep(Duration::from_millis(200));
            if stop.load(Ordering::SeqCst) {
                status.clear();
                eprintln!("interrupted: finishing files");
                sub.stop();
                let end = sub.wait();
                report(&a, &info, &end, &mut streams);
                write_stats(&a, &streams)?;
                return Ok(exit::INTERRUPTED);
            }
            if status.due() {
                status.show(&status_line(&sub.stats()));
            }
        }
        status.clear();
        let end = sub.wait();
        let truncated = end.truncated;
        let failed = !end.errors.is_empty();
        report(&a, &info, &end, &mut streams);
        code = if failed {
            exit::OUTPUT
        } else if truncated {
            exit::TRUNCATED
        } else {
            0
        };
        if a.once {
            break;
        }
        // Keep listening for the stream's next run (a new publisher
        // instance), as long as it takes.
        opts.skip_instance = Some(info.catalog.instance);
        opts.wait = Duration::from_secs(365 * 24 * 3600);
    }
    write_stats(&a, &streams)?;
    Ok(code)
}

fn describe(info: &StreamInfo) {
    let c = &info.catalog;
    let names: Vec<&str> = c
        .session
        .substreams
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    eprintln!(
        "subscribed to {} from {}: {} (FEC {}+{}, window {:.1} ms, interleave {})",
        c.stream,
        info.publisher,
        names.join(", "),
        c.session.fec.k,
        c.session.fec.m,
        c.session.fec.window_us as f64 / 1e3,
        c.session.fec.depth
    );
}

fn report(
    a: &SubscribeArgs,
    info: &StreamInfo,
    end: &SessionEnd,
    streams: &mut Vec<serde_json::Value>,
) {
    let s = &end.stats;
    let p = &s.packets;
    eprintln!(
        "{} {}: {}",
        a.name,
        if end.truncated {
            "TRUNCATED"
        } else {
            "completed"
        },
        end.reason
    );
    let mut frames = isochron_engine::stats::FrameCounts::default();
    for sub in &s.substreams {
        frames.add(&sub.frames);
    }
    eprintln!(
        "  started at media time {:.3} s; packets {} expected, lost {}, recovered {}, unrecovered {}; frames played {}, concealed {}; underruns {}; network delay p50 {:.2} ms p99 {:.2} ms",
        s.start_media_us as f64 / 1e6,
        p.expected,
        p.lost,
        p.recovered,
        p.unrecovered,
        frames.played,
        frames.concealed,
        frames.underruns,
        s.network_delay.p50_us as f64 / 1e3,
        s.network_delay.p99_us as f64 / 1e3,
    );
    for d in s.substreams.iter().filter(|d| d.encoding == "opus") {
        eprintln!("  {} (opus){}", d.name, crate::output::codec_counts(d));
    }
    for (path, n) in &end.files {
        eprintln!("  wrote {} ({n} samples)", path.display());
    }
    for e in &end.errors {
        eprintln!("  output error: {e}");
    }
    streams.push(json!({
        "stream": a.name,
        "publisher": info.publisher.to_string(),
        "listener": keys::hex(&info.listener),
        "completed": !end.truncated,
        "truncated": end.truncated,
        "reason": end.reason,
        "files": end.files.iter().map(|(p, n)| json!({"path": p.display().to_string(), "samples": n})).collect::<Vec<_>>(),
        "errors": end.errors,
        "stats": end.stats,
    }));
}

fn write_stats(a: &SubscribeArgs, streams: &[serde_json::Value]) -> Result<()> {
    if let Some(p) = &a.stats_json {
        write_json(p, &json!({ "streams": streams }))?;
    }
    Ok(())
}
