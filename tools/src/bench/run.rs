//! Running one scenario: a receiver, the impairment relay in front of it and
//! a live sender, all over real QUIC on loopback in this process (so both
//! ends read the same clock and delays are true one-way values).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use crossbeam_channel::RecvTimeoutError;
use isochron_engine::config::{ReceiverConfig, SenderConfig};
use isochron_engine::net::relay::{RelayConfig, RelayHandle, RelayStats};
use isochron_engine::net::{
    Admission, Identity, Receiver, ReceiverEvent, ReceiverOptions, SenderOptions, Sink, Trust,
};
use isochron_engine::stats::{ReceiverStats, SenderStats};
use isochron_engine::wire::control::{Accept, FecParams, Mode};

use super::cpu::{Snapshot, Usage};
use super::media::{Feeder, Feeding, Media};
use super::record::{Recording, Recordings};
use super::scenarios::{Config, Scenario};

/// How every scenario runs.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Media length of each session.
    pub duration: Duration,
    /// How far ahead of real time the feeder pushes media.
    pub lead: Duration,
    /// Buffer level sampling period.
    pub sample_every: Duration,
}

/// Everything measured in one scenario, before it is summarised.
pub struct Outcome {
    pub accept: Accept,
    /// Media time zero of the session (microseconds of CLOCK_MONOTONIC).
    pub started_at: u64,
    pub recording: Recording,
    /// `(seconds since media time zero, buffer level in ms)`.
    pub levels: Vec<(f64, f64)>,
    pub receiver: ReceiverStats,
    pub sender: SenderStats,
    /// The sender's counters every 100 ms, the final ones last.
    pub sender_series: Vec<SenderStats>,
    pub sender_completed: bool,
    pub truncated: bool,
    pub end_reason: String,
    pub relay: RelayStats,
    pub cpu: Usage,
    pub samples_sent: u64,
}

/// Receiver options for a configuration (the CLI's defaults otherwise).
pub fn receiver_options(c: &Config, max_sessions: usize) -> ReceiverOptions {
    // Admits nobody yet: `start_receiver` pairs it with the run's identity.
    let mut o = ReceiverOptions::new("127.0.0.1:0".parse().expect("literal"), Admission::only([]));
    o.config = ReceiverConfig {
        latency: c.latency,
        low_water: c.low_water,
        high_water: c.high_water,
        ..Default::default()
    };
    o.max_sessions = max_sessions;
    o
}

/// Sender options for a configuration: live, paced by real time.
pub fn sender_options(
    c: &Config,
    to: std::net::SocketAddr,
    rx: &Receiver,
    identity: &Identity,
    name: &str,
) -> SenderOptions {
    let trust = Trust::Pinned(vec![rx.fingerprint()]);
    let mut o = SenderOptions::new(to, trust, identity.clone());
    o.name = name.into();
    let window_us = c.fec_window.map_or(0, |w| w.as_micros() as u32);
    o.config = SenderConfig {
        mode: Mode::Live,
        fec: match c.fec {
            Some((k, m)) => FecParams {
                k,
                m,
                depth: c.interleave.max(1),
                window_us,
            },
            None => FecParams {
                depth: c.interleave.max(1),
                ..FecParams::OFF
            },
        },
        fec_target: if c.adaptive_fec {
            SenderConfig::default().fec_target
        } else {
            None
        },
        recovery: c.recovery,
        ..Default::default()
    };
    o
}

/// Start a receiver whose sessions record into `recordings`, presenting
/// `identity` and admitting senders that present it too. The bench is one
/// user on both ends, and one identity per user serves every role, so
/// pairing is this one step.
pub fn start_receiver(
    mut opts: ReceiverOptions,
    identity: &Identity,
    recordings: &Arc<Recordings>,
) -> Result<Receiver> {
    opts.admission = Admission::only([identity.fingerprint()]);
    let recs = recordings.clone();
    Receiver::start(opts, identity, move |info| {
        recs.sink(&info.session.name)
            .map(|s| Box::new(s) as Box<dyn Sink>)
            .ok_or_else(|| format!("no benchmark session named {}", info.session.name))
    })
    .context("starting the receiver")
}

/// Run `sc` once. `progress` is told how far the media has got (0..1).
pub fn run(
    sc: &Scenario,
    set: &Settings,
    identity: &Identity,
    media: &Media,
    progress: &dyn Fn(f64),
) -> Result<Outcome> {
    let name = format!("bench-{}", sc.name);
    let recordings = Arc::new(Recordings::default());
    recordings.expect(
        &name,
        Recording::new(media.catalog[0].clone(), media.data[0].clone()),
    );
    let rx = start_receiver(receiver_options(&sc.config, 4), identity, &recordings)?;
    let relay = RelayHandle::start(RelayConfig {
        listen: "127.0.0.1:0".parse()?,
        upstream: rx.local_addr(),
        forward: sc.link.clone(),
        backward: sc.link.clone(),
        seed: sc.seed,
    })
    .context("starting the relay")?;
    let feeder = Feeder::spawn("bench-feeder".into(), media.clone(), set.lead)?;
    let tx = isochron_engine::net::Sender::connect(
        sender_options(&sc.config, relay.local_addr(), &rx, identity, &name),
        media.catalog.clone(),
    )
    .map_err(|e| anyhow::anyhow!("{}: the session did not start: {e}", sc.name))?;
    let accept = *tx.accept();
    // Media time zero now: the feeder schedules its pushes from it.
    let started_at = tx.start_clock().as_micros();
    feeder.add(Feeding::new(tx));

    // Sample the buffer level and take the CPU window inside the stream.
    let media_s = set.duration.as_secs_f64();
    let since_start =
        || (isochron_engine::net::clock::monotonic().as_micros() as f64 - started_at as f64) / 1e6;
    let cpu_from = (media_s / 10.0).min(0.5);
    let mut cpu_a: Option<Snapshot> = None;
    let mut cpu_b: Option<Snapshot> = None;
    let mut levels = Vec::with_capacity((media_s / set.sample_every.as_secs_f64()) as usize + 64);
    let give_up = Instant::now() + set.duration + Duration::from_secs(30);
    let end = loop {
        match rx.events().recv_timeout(set.sample_every) {
            Ok(ReceiverEvent::Ended { end, .. }) => break end,
            Ok(ReceiverEvent::Refused { reason, .. }) => {
                bail!("{}: the receiver refused the session: {reason}", sc.name)
            }
            Ok(ReceiverEvent::Started(_)) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => bail!("{}: the receiver stopped", sc.name),
        }
        let t = since_start();
        if let Some((_, s)) = rx.sessions().first() {
            levels.push((t, s.buffer_ms));
        }
        if cpu_a.is_none() && t >= cpu_from {
            cpu_a = Some(Snapshot::now());
        }
        if cpu_b.is_none() && t >= media_s {
            cpu_b = Some(Snapshot::now());
        }
        progress((t / media_s).clamp(0.0, 1.0));
        if Instant::now() > give_up {
            bail!("{}: the session did not end", sc.name);
        }
    };
    let cpu_b = cpu_b.unwrap_or_else(Snapshot::now);
    let cpu = cpu_a.map_or_else(Usage::default, |a| Usage::between(&a, &cpu_b));
    let fed = feeder
        .finish()
        .pop()
        .context("the feeder lost the sender")?;
    let mut sender_series = fed.stats;
    let report = fed
        .sender
        .wait()
        .map_err(|e| anyhow::anyhow!("{}: sender: {e}", sc.name))?;
    sender_series.push(report.stats);
    let relay_stats = relay.stop();
    drop(rx);
    let recording = recordings
        .take(&name)
        .context("the session's recording is missing")?;
    Ok(Outcome {
        accept,
        started_at,
        recording,
        levels,
        receiver: end.stats,
        sender: report.stats,
        sender_series,
        sender_completed: report.completed,
        truncated: end.truncated,
        end_reason: end.reason,
        relay: relay_stats,
        cpu,
        samples_sent: media.catalog[0].length.unwrap_or(0),
    })
}
