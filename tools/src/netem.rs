//! `isochron netem`: a UDP relay that impairs traffic in both directions.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use isochron_engine::net::relay::{RelayConfig, RelayHandle};
use isochron_engine::sim::{Impairment, Loss, Outage};
use serde_json::json;

use crate::{args, exit, interrupted, resolve, say, write_json};

#[derive(Args, Clone)]
pub struct NetemArgs {
    /// Address clients send to: :4433, localhost:4433, 10.0.0.2 (port 4433 by default, 0 picks
    /// a free one)
    #[arg(long, value_name = "ADDR", value_parser = crate::addr::listen)]
    listen: SocketAddr,
    /// Address traffic is relayed to: host or host:port (port 4433 by default)
    #[arg(long, value_name = "ADDR")]
    to: String,
    /// Mean packet loss each way, e.g. 5%
    #[arg(long, default_value = "0%", value_parser = args::percent)]
    loss: f64,
    /// Mean loss burst length in packets (1: independent losses; more: Gilbert-Elliott)
    #[arg(long, default_value_t = 1.0, value_name = "N")]
    burst: f64,
    /// One-way delay each way, e.g. 20ms
    #[arg(long, default_value = "0ms", value_parser = args::duration)]
    delay: Duration,
    /// Delay varies uniformly by up to this much either way, e.g. 10ms
    #[arg(long, default_value = "0ms", value_parser = args::duration)]
    jitter: Duration,
    /// Share of packets held back so later ones overtake them, e.g. 1%
    #[arg(long, default_value = "0%", value_parser = args::percent)]
    reorder: f64,
    /// How long reordered packets are held back
    #[arg(long = "reorder-by", default_value = "5ms", value_parser = args::duration)]
    reorder_by: Duration,
    /// Share of packets delivered twice, e.g. 1%
    #[arg(long, default_value = "0%", value_parser = args::percent)]
    duplicate: f64,
    /// Bottleneck rate each way, e.g. 10mbit (default: unlimited)
    #[arg(long, value_parser = args::rate)]
    rate: Option<u64>,
    /// Bottleneck queue: packets waiting longer are dropped
    #[arg(long = "queue-limit", default_value = "200ms", value_parser = args::duration)]
    queue_limit: Duration,
    /// Scheduled outage LENGTH@START from the relay's start, e.g. 2s@5s; repeatable
    #[arg(long, value_parser = args::outage)]
    outage: Vec<(Duration, Duration)>,
    /// Seed of the random decisions (same seed, same decisions)
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write {"addr": ...} here once listening
    #[arg(long = "ready-file", value_name = "PATH")]
    ready_file: Option<PathBuf>,
    /// Stop after this long (default: until Ctrl-C)
    #[arg(long = "duration", value_parser = args::duration)]
    run_for: Option<Duration>,
}

impl NetemArgs {
    /// The impairment these options describe (the same each way).
    pub fn impairment(&self) -> Impairment {
        Impairment {
            loss: Loss::from_mean(self.loss, self.burst),
            delay: self.delay,
            jitter: self.jitter,
            reorder: self.reorder,
            reorder_by: self.reorder_by,
            duplicate: self.duplicate,
            rate_bps: self.rate.unwrap_or(0),
            queue_limit: self.queue_limit,
            outages: self
                .outage
                .iter()
                .map(|&(duration, start)| Outage { start, duration })
                .collect(),
            jitter_steps: Vec::new(),
        }
    }
}

pub fn run(a: NetemArgs) -> Result<u8> {
    let imp = a.impairment();
    let relay = RelayHandle::start(RelayConfig {
        listen: a.listen,
        upstream: resolve(&a.to)?,
        forward: imp.clone(),
        backward: imp,
        seed: a.seed,
    })
    .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", a.listen))?;
    if let Some(p) = &a.ready_file {
        write_json(p, &json!({"addr": relay.local_addr().to_string()}))?;
    }
    say(format!("relaying {} -> {}", relay.local_addr(), a.to));
    let interrupted = interrupted();
    let started = std::time::Instant::now();
    while !interrupted.load(Ordering::SeqCst) && a.run_for.is_none_or(|d| started.elapsed() < d) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let stats = relay.stop();
    say(stats);
    Ok(if interrupted.load(Ordering::SeqCst) {
        exit::INTERRUPTED
    } else {
        0
    })
}
