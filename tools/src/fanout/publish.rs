//! `isochron publish`: stream files (or standard input) live under a name,
//! to every listener.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Args;
use isochron_engine::config::{Pacing, SenderConfig};
use isochron_engine::fec::AudiencePolicy;
use isochron_engine::net::tls::Fingerprint;
use isochron_engine::net::zenoh::{Publisher, PublisherOptions, PublisherReport};
use isochron_engine::wire::control::Mode;
use serde_json::json;

use super::{RouterArgs, exit_code, passphrase};
use crate::media_args::{MediaArgs, is_stdin};
use crate::{args, exit, interrupted, say, write_json};

#[derive(Args)]
pub struct PublishArgs {
    /// The stream's name: parts of letters, digits, '.', '_', '-' separated by '/' (e.g. studio/a/mix)
    #[arg(value_name = "NAME")]
    name: String,
    /// Files to publish: WAV and sensor CSV; each becomes a substream, paced by real time
    /// (`-` reads standard input, paced by its own arrival: a WAV stream, CSV rows, or raw
    /// PCM with --format)
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    #[command(flatten)]
    router: RouterArgs,
    #[command(flatten)]
    media: MediaArgs,
    /// Latency of the listeners the FEC window is planned for (their floor follows), e.g. 80ms
    #[arg(long, default_value = "80ms", value_parser = args::duration)]
    latency: Duration,
    /// A listener allowed to receive the stream key, besides this identity (sha256:HEX, as
    /// `isochron subscribe` prints it); repeatable
    #[arg(long, value_name = "sha256:HEX")]
    allow: Vec<Fingerprint>,
    /// Give the stream key to ANY listener that asks: anyone who reaches a router can read it
    #[arg(long = "dangerously-allow-any-listener")]
    open: bool,
    /// Protect the stream with the passphrase in this file (first line); default: $ISOCHRON_PASSPHRASE if set
    #[arg(long = "passphrase-file", value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
    /// Start streaming only once this many listeners have subscribed
    #[arg(long = "wait-listeners", default_value_t = 0, value_name = "N")]
    wait_listeners: usize,
    /// Start anyway after waiting this long for --wait-listeners
    #[arg(long = "wait-timeout", default_value = "30s", value_parser = args::duration)]
    wait_timeout: Duration,
    /// After the end, stay on air this long (listeners are still playing their buffers)
    #[arg(long, default_value = "2s", value_parser = args::duration)]
    linger: Duration,
    /// Adaptive FEC serves this quantile of the listeners' loss (e.g. 90%: all but the worst tenth)
    #[arg(long = "fec-quantile", default_value = "90%", value_parser = args::percent)]
    fec_quantile: f64,
    /// Adaptive FEC never covers more loss than this, whatever listeners report (bounds overhead)
    #[arg(long = "fec-max-loss", default_value = "20%", value_parser = args::percent)]
    fec_max_loss: f64,
    /// Zenoh priorities media is dealt over, 1..=7: each priority's packets
    /// must arrive in order at every hop, so more lanes ride out more
    /// reordering jitter on router links (1: all at real-time priority)
    #[arg(long, default_value_t = 7, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=7))]
    lanes: u8,
    /// Directory of the persistent identity that signs the catalog (default: ~/.config/isochron/identity)
    #[arg(long, value_name = "DIR")]
    identity: Option<PathBuf>,
    /// Write the final statistics here (JSON)
    #[arg(long = "stats-json", value_name = "PATH")]
    stats_json: Option<PathBuf>,
    /// No progress lines
    #[arg(long, short)]
    quiet: bool,
}

pub fn run(a: PublishArgs) -> Result<u8> {
    let identity = super::identity(a.identity.as_ref())?;
    let inputs = a
        .media
        .input
        .open(&a.files, false)
        .map_err(|e| match exit::code_of(&e) {
            exit::USAGE => e,
            _ => exit::input(e),
        })?;
    let catalog: Vec<_> = inputs.iter().map(|f| f.desc.clone()).collect();
    crate::media_args::say_codecs(&catalog);
    let mut opts = PublisherOptions::new(a.name.clone(), a.router.options()?);
    opts.config = SenderConfig {
        mode: Mode::Live,
        fec: a.media.fec_params(),
        // A pipe's clock is its sample count.
        pacing: if a.files.iter().any(|p| is_stdin(p)) {
            Pacing::Arrival
        } else {
            Pacing::Clock
        },
        ..Default::default()
    };
    opts.latency = a.latency;
    opts.allow = a.allow.clone();
    opts.dangerously_open = a.open;
    opts.passphrase = passphrase(a.passphrase_file.as_ref())?;
    opts.wait_listeners = a.wait_listeners;
    opts.wait_timeout = a.wait_timeout;
    opts.linger = a.linger;
    opts.lanes = a.lanes as usize;
    opts.audience = AudiencePolicy {
        quantile: a.fec_quantile,
        max_loss: a.fec_max_loss,
        ..Default::default()
    };
    if a.open {
        eprintln!(
            "WARNING: --dangerously-allow-any-listener: the stream key goes to anyone who asks; \
             anyone who can reach a router can read this stream"
        );
    }
    let total: u64 = catalog.iter().filter_map(|d| d.length).sum();
    let open_ended = catalog.iter().any(|d| d.length.is_none());
    if a.wait_listeners > 0 {
        eprintln!("waiting for {} listener(s)...", a.wait_listeners);
    }
    let mut publisher = match Publisher::start(opts, &identity, catalog) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(exit_code(&e));
        }
    };
    let c = publisher.catalog();
    say(format!("publishing {}", a.name));
    say(format!("fingerprint {}", identity.fingerprint()));
    eprintln!(
        "FEC {}+{} window {:.1} ms, interleave {}; listeners need latency >= {:.1} ms; {}-byte datagrams",
        c.session.fec.k,
        c.session.fec.m,
        c.session.fec.window_us as f64 / 1e3,
        c.session.fec.depth,
        c.latency_floor_us as f64 / 1e3,
        c.max_datagram,
    );
    for (i, f) in inputs.into_iter().enumerate() {
        publisher.feed_from(i, f.reader)?;
    }
    let stop = interrupted();
    let tty = !a.quiet && std::io::stderr().is_terminal();
    let mut last = Instant::now();
    while !publisher.is_finished() {
        std::thread::sleep(Duration::from_millis(100));
        if stop.load(Ordering::SeqCst) {
            eprintln!("interrupted: ending the stream");
            for i in 0..a.files.len() {
                let _ = publisher.end(i);
            }
            let report = publisher.wait()?;
            summary(&report);
            write_stats(&a, &report, true)?;
            return Ok(exit::INTERRUPTED);
        }
        if !a.quiet
            && (tty || last.elapsed() >= Duration::from_secs(5))
            && last.elapsed() >= Duration::from_millis(500)
        {
            let s = publisher.stats();
            let sent = samples(&s.sender);
            let progress = if open_ended {
                format!("sent {sent} samples")
            } else {
                format!(
                    "sent {:.1} % ({sent} of {total} samples)",
                    100.0 * sent as f64 / total.max(1) as f64
                )
            };
            let line = format!(
                "{progress}, {} listener(s), FEC overhead {:.0} %",
                s.listeners,
                s.sender.fec_overhead_ratio * 100.0
            );
            if tty {
                eprint!("\r\x1b[2K{line}");
            } else {
                eprintln!("{line}");
            }
            last = Instant::now();
        }
    }
    if tty {
        eprint!("\r\x1b[2K");
    }
    let report = publisher.wait()?;
    summary(&report);
    write_stats(&a, &report, false)?;
    Ok(0)
}

/// Samples (and sensor rows) sent, all substreams.
fn samples(s: &isochron_engine::stats::SenderStats) -> u64 {
    s.substreams.iter().map(|x| x.samples).sum()
}

fn summary(r: &PublisherReport) {
    let s = &r.stats;
    eprintln!(
        "done: {} frames, {} samples; {} source + {} repair datagrams (FEC overhead {:.0} %); \
         listeners {} (most at once {}); keys granted {}, refused {}; reports {}",
        s.sender.substreams.iter().map(|x| x.frames).sum::<u64>(),
        samples(&s.sender),
        s.sender.source_packets,
        s.sender.repair_packets,
        s.sender.fec_overhead_ratio * 100.0,
        s.listeners,
        s.listeners_max,
        s.keys_granted,
        s.keys_refused,
        s.reports,
    );
}

fn write_stats(a: &PublishArgs, r: &PublisherReport, interrupted: bool) -> Result<()> {
    if let Some(p) = &a.stats_json {
        write_json(
            p,
            &json!({"stream": a.name, "interrupted": interrupted, "stats": r.stats, "end": r.end}),
        )?;
    }
    Ok(())
}
