//! Running one scenario: a receiver, the impairment relay in front of it and
//! a live sender, all over real QUIC on loopback in this process (so both
//! ends read the same clock and delays are true one-way values).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use crossbeam_channel::RecvTimeoutError;
use isochron_engine::config::{LatencyBounds, ReceiverConfig, SenderConfig};
use isochron_engine::net::relay::{RelayConfig, RelayHandle, RelayStats};
use isochron_engine::net::{
    Admission, Fingerprint, Identity, Receiver, ReceiverEvent, ReceiverOptions, SenderOptions,
    Sink, Trust,
};
use isochron_engine::stats::{ReceiverStats, SenderStats};
use isochron_engine::wire::control::{Accept, FecParams};

use super::cpu::{Snapshot, Usage};
use super::media::{Feeder, Feeding, Media, STATS_EVERY};
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
    /// `(seconds since media time zero, target latency in ms)`: the
    /// receiver's `latency_target_us`, sampled with the level.
    pub targets: Vec<(f64, f64)>,
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
        adaptive: c.adaptive.map(|(min, max)| LatencyBounds { min, max }),
        low_water: c.low_water,
        high_water: c.high_water,
        ..Default::default()
    };
    // Every session comes from this one host, and the scale runs hold
    // hundreds: the per-source limits are the whole receiver's here.
    o.limits.max_sessions = max_sessions;
    o.limits.max_sessions_per_source = max_sessions;
    o.limits.max_handshakes_per_source = o.limits.max_handshakes;
    // ... and their buffers may take what that many sessions need (about
    // 4 MiB each for a stereo stream at the default latency, at most).
    o.limits.total_memory = o.limits.total_memory.max(max_sessions as u64 * (5 << 20));
    o.limits.source_memory = o.limits.total_memory;
    o
}

/// Sender options for a configuration: live, paced by real time, or file
/// mode ([`Config::file`]) paced by the receiver's credits.
pub fn sender_options(
    c: &Config,
    to: std::net::SocketAddr,
    pin: Fingerprint,
    identity: &Identity,
    name: &str,
) -> SenderOptions {
    let mut o = SenderOptions::new(to, Trust::Pinned(vec![pin]), identity.clone());
    o.name = name.into();
    let window_us = c.fec_window.map_or(0, |w| w.as_micros() as u32);
    let base = c
        .file
        .map_or_else(SenderConfig::default, SenderConfig::file);
    o.config = SenderConfig {
        mode: base.mode,
        fec: match c.fec {
            Some((k, m)) => FecParams {
                k,
                m,
                depth: c.interleave.max(1),
                window_us,
                auto_depth: false,
            },
            None => FecParams {
                depth: c.interleave.max(1),
                ..FecParams::OFF
            },
        },
        fec_target: fec_target(c),
        recovery: c.recovery,
        ..base
    };
    o
}

/// How a run's sender gets its media.
#[allow(clippy::large_enum_variant)]
enum Supply {
    /// Pushed as real time passes, from media time zero (microseconds).
    Live(Feeder, u64),
    /// Read ahead by the sender; its counters every [`STATS_EVERY`].
    File(isochron_engine::net::Sender, Vec<SenderStats>),
}

/// A reader over `data` for [`Sender::feed_from`](isochron_engine::net::Sender::feed_from):
/// whole samples, as much as fits.
fn reader(data: bytes::Bytes) -> impl FnMut(&mut [u8]) -> std::io::Result<usize> + Send {
    let mut at = 0;
    move |buf| {
        let n = buf.len().min(data.len() - at);
        buf[..n].copy_from_slice(&data[at..at + n]);
        at += n;
        Ok(n)
    }
}

/// Start a receiver whose sessions record into `recordings`, presenting
/// `identity` and admitting senders that present it too. The bench is one
/// user on both ends, and one identity per user serves every role, so
/// pairing is this one step.
pub fn start_receiver(
    opts: ReceiverOptions,
    identity: &Identity,
    recordings: &Arc<Recordings>,
) -> Result<Receiver> {
    start_receiver_admitting(opts, identity, None, recordings)
}

/// [`start_receiver`], admitting `also` as well (the scale scenario's
/// senders, in their own process with their own identity).
pub fn start_receiver_admitting(
    mut opts: ReceiverOptions,
    identity: &Identity,
    also: Option<Fingerprint>,
    recordings: &Arc<Recordings>,
) -> Result<Receiver> {
    opts.admission = Admission::only(std::iter::once(identity.fingerprint()).chain(also));
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
    let mut tx = isochron_engine::net::Sender::connect(
        sender_options(
            &sc.config,
            relay.local_addr(),
            rx.fingerprint(),
            identity,
            &name,
        ),
        media.catalog.clone(),
    )
    .map_err(|e| anyhow::anyhow!("{}: the session did not start: {e}", sc.name))?;
    let accept = *tx.accept();
    let mut feeding = match sc.config.file {
        // Live: media time zero now; the feeder schedules its pushes from it.
        None => {
            let started_at = tx.start_clock().as_micros();
            let feeder = Feeder::spawn("bench-feeder".into(), media.clone(), set.lead)?;
            feeder.add(Feeding::new(tx));
            Supply::Live(feeder, started_at)
        }
        // File mode: the sender reads the whole media as `isochron send`
        // reads a file, as fast as the receiver's credits let it.
        Some(_) => {
            for (i, data) in media.data.iter().enumerate() {
                tx.feed_from(i, reader(data.clone()))
                    .map_err(|e| anyhow::anyhow!("{}: feeding the sender: {e}", sc.name))?;
            }
            Supply::File(tx, Vec::with_capacity(1024))
        }
    };
    let started_at = match &feeding {
        Supply::Live(_, at) => *at,
        Supply::File(tx, _) => tx.started_at().as_micros(),
    };

    // Sample the buffer level and take the CPU window inside the stream.
    let media_s = set.duration.as_secs_f64();
    let since_start =
        || (isochron_engine::net::clock::monotonic().as_micros() as f64 - started_at as f64) / 1e6;
    let cpu_from = (media_s / 10.0).min(0.5);
    let mut cpu_a: Option<Snapshot> = None;
    let mut cpu_b: Option<Snapshot> = None;
    let mut levels = Vec::with_capacity((media_s / set.sample_every.as_secs_f64()) as usize + 64);
    let mut targets = Vec::with_capacity(levels.capacity());
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
            levels.push((t, s.buffer_us as f64 / 1e3));
            // Zero until the session's first snapshot.
            if s.latency_target_us > 0 {
                targets.push((t, s.latency_target_us as f64 / 1e3));
            }
        }
        if cpu_a.is_none() && t >= cpu_from {
            cpu_a = Some(Snapshot::now());
        }
        if cpu_b.is_none() && t >= media_s {
            cpu_b = Some(Snapshot::now());
        }
        if let Supply::File(tx, series) = &mut feeding {
            let due = series.len() as f64 * STATS_EVERY.as_secs_f64();
            if t >= due {
                series.push(tx.stats());
            }
        }
        progress((t / media_s).clamp(0.0, 1.0));
        if Instant::now() > give_up {
            bail!("{}: the session did not end", sc.name);
        }
    };
    let cpu_b = cpu_b.unwrap_or_else(Snapshot::now);
    let cpu = cpu_a.map_or_else(Usage::default, |a| Usage::between(&a, &cpu_b));
    let (sender, mut sender_series) = match feeding {
        Supply::Live(feeder, _) => {
            let fed = feeder
                .finish()
                .pop()
                .context("the feeder lost the sender")?;
            (fed.sender, fed.stats)
        }
        Supply::File(tx, series) => (tx, series),
    };
    let report = sender
        .wait()
        .map_err(|e| anyhow::anyhow!("{}: sender: {e}", sc.name))?;
    sender_series.push(report.stats.clone());
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
        targets,
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

/// The residual adaptive FEC is asked for: the sender's default, or none
/// without adaptive FEC.
pub fn fec_target(c: &Config) -> Option<f64> {
    if c.adaptive_fec {
        SenderConfig::default().fec_target
    } else {
        None
    }
}
