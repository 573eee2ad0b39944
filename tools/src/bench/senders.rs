//! The scale scenario's senders, in a process of their own
//! (`isochron bench-senders`, hidden; the bench starts it): N live senders
//! of the bench's music on a shared [`SendNetwork`] (one network thread
//! per core instead of one per sender), fed by a few feeder threads with
//! slices of one pre-generated buffer. Apart from the receiver, so the
//! receiver's CPU is measured alone and the senders cost little.
//!
//! It talks to the bench on stdout, one line per event:
//! `started NAME STARTED_AT_US`, `error TEXT`, `done NAME DROPS COMPLETED`,
//! and `end` last.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use isochron_engine::net::{Fingerprint, Identity, SendNetwork, Sender};

use super::media::{Feeder, Feeding, Media};
use super::run::sender_options;
use super::scenarios::Config;
use crate::args;

/// Arguments of `isochron bench-senders`.
#[derive(Args)]
pub struct SendersArgs {
    /// The receiver's address
    #[arg(long)]
    to: SocketAddr,
    /// The receiver's fingerprint
    #[arg(long)]
    pin: Fingerprint,
    /// Sessions to start (a few at a time)
    #[arg(long)]
    sessions: usize,
    /// Session names: PREFIX0, PREFIX1, ...
    #[arg(long)]
    prefix: String,
    /// Media length of each session
    #[arg(long, value_parser = args::duration)]
    duration: Duration,
    /// Seed of the music (the bench checks the audio against it)
    #[arg(long)]
    seed: u64,
    /// Network threads shared by the senders
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// How far ahead of real time the feeders push media
    #[arg(long, default_value = "40ms", value_parser = args::duration)]
    lead: Duration,
    /// Directory of the identity the senders present (the bench admits it)
    #[arg(long)]
    identity: std::path::PathBuf,
}

/// Sessions connecting at once.
const CONNECTING: usize = 4;

fn line(s: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{s}");
    let _ = out.flush();
}

/// Run the senders; every outcome is reported on stdout.
pub fn run(a: SendersArgs) -> Result<u8> {
    let cfg = Config::default();
    let media = Media::generate(a.seed, a.duration, cfg.frame, false)?;
    let network = SendNetwork::new(a.threads, "0.0.0.0:0".parse()?)?;
    let identity = Identity::load_or_create(&a.identity)?;
    let feeders: Vec<Feeder> = (0..a.sessions.div_ceil(100).clamp(1, 2))
        .map(|j| Feeder::spawn(format!("bench-feed-{j}"), media.clone(), a.lead))
        .collect::<std::io::Result<_>>()?;
    let stop = crate::interrupted();
    // A few handshakes in flight at once: one after the other, 500
    // sessions take longer to connect than a stream lasts.
    std::thread::scope(|s| {
        for j in 0..CONNECTING.min(a.sessions) {
            let (a, cfg, media, identity) = (&a, &cfg, &media, &identity);
            let (network, feeders, stop) = (&network, &feeders, &stop);
            s.spawn(move || {
                for i in (j..a.sessions).step_by(CONNECTING) {
                    if stop.load(std::sync::atomic::Ordering::SeqCst) {
                        break;
                    }
                    let name = format!("{}{i}", a.prefix);
                    let mut opts = sender_options(cfg, a.to, a.pin, identity, &name);
                    opts.network = Some(network.clone());
                    match Sender::connect(opts, media.catalog.clone()) {
                        Ok(tx) => {
                            line(&format!("started {name} {}", tx.start_clock().as_micros()));
                            feeders[i % feeders.len()].add(Feeding::new(tx));
                        }
                        Err(e) => line(&format!("error {name}: {e}")),
                    }
                }
            });
        }
    });
    for f in feeders {
        for fed in f.finish() {
            let name = fed.sender.session().name.clone();
            match fed.sender.wait() {
                Ok(r) => line(&format!(
                    "done {name} {} {}",
                    r.stats.dropped_expired + r.stats.dropped_overflow,
                    r.completed
                )),
                Err(e) => line(&format!("error {name}: sender: {e}")),
            }
        }
    }
    line("end");
    Ok(0)
}
