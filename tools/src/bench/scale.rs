//! The scale scenario: N concurrent live stereo 48 kHz sessions into one
//! receiver, straight over loopback (no relay: the relay is one more thread
//! relaying every session and would be measured instead of the receiver).
//!
//! Senders stay light: each is the engine's own network thread; the media
//! comes from a few feeder threads (one per 50 sessions, at most four) that
//! push slices of one pre-generated buffer, paced by real time, instead of
//! a reader thread per session.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use crossbeam_channel::RecvTimeoutError;
use isochron_engine::net::clock::monotonic;
use isochron_engine::net::{Identity, ReceiverEvent, Sender};
use serde::Serialize;

use super::cpu::{Snapshot, Usage};
use super::measure::Dist;
use super::media::{Feeder, Feeding, Media};
use super::record::{Recording, Recordings};
use super::run::{Settings, receiver_options, sender_options, start_receiver};
use super::scenarios::Config;

/// One N of the scale scenario.
#[derive(Debug, Clone, Serialize)]
pub struct ScaleRow {
    pub sessions: usize,
    /// Sessions that connected, and that played to their end.
    pub connected: usize,
    pub completed: usize,
    /// Seconds it took to connect them all (one after the other).
    pub connect_s: f64,
    pub underruns: u64,
    /// Sessions with at least one underrun.
    pub sessions_with_underruns: usize,
    pub concealed_frames: u64,
    pub late_packets: u64,
    pub unrecovered: u64,
    pub playout_queue_drops: u64,
    pub sender_drops: u64,
    /// Per-session playout tick deviation p99: the median and the worst
    /// session (ms).
    pub tick_deviation_p99_median_ms: f64,
    pub tick_deviation_p99_max_ms: f64,
    pub tick_deviation_max_ms: f64,
    /// End-to-end delay over every frame of every session (ms).
    pub e2e_delay_ms: Dist,
    /// Sessions whose audio came out bit-exact.
    pub bit_exact_sessions: usize,
    /// How long all N streamed at once (negative: never, connecting took
    /// longer than a stream lasts).
    pub all_concurrent_s: f64,
    /// Mean sessions streaming over the CPU window (N when all were).
    pub mean_concurrent: f64,
    /// CPU of the whole process over the window (percent of one core), and
    /// divided by the sessions streaming then.
    pub cpu: Usage,
    pub cpu_per_session: Usage,
    /// Errors, if a session could not connect.
    pub errors: Vec<String>,
}

/// Run N sessions at once.
pub fn run(
    n: usize,
    set: &Settings,
    identity: &Identity,
    media: &Media,
    progress: &dyn Fn(String, f64),
) -> Result<ScaleRow> {
    let cfg = Config::default();
    let recordings = Arc::new(Recordings::default());
    let names: Vec<String> = (0..n).map(|i| format!("scale-{n}-{i}")).collect();
    for name in &names {
        recordings.expect(
            name,
            Recording::new(media.catalog[0].clone(), media.data[0].clone()),
        );
    }
    let rx = start_receiver(receiver_options(&cfg, n + 8), identity, &recordings)?;
    let feeders: Vec<Feeder> = (0..n.div_ceil(50).clamp(1, 4))
        .map(|j| Feeder::spawn(format!("bench-feed-{j}"), media.clone(), set.lead))
        .collect::<std::io::Result<_>>()?;
    let t0 = Instant::now();
    let mut started: HashMap<String, u64> = HashMap::new();
    let mut errors = Vec::new();
    for (i, name) in names.iter().enumerate() {
        progress(format!("N={n}: connecting {}/{n}", i + 1), 0.0);
        match Sender::connect(
            sender_options(&cfg, rx.local_addr(), &rx, identity, name),
            media.catalog.clone(),
        ) {
            Ok(tx) => {
                started.insert(name.clone(), tx.start_clock().as_micros());
                feeders[i % feeders.len()].add(Feeding::new(tx));
            }
            Err(e) => errors.push(format!("{name}: {e}")),
        }
    }
    let connect_s = t0.elapsed().as_secs_f64();
    let connected = started.len();
    if connected == 0 {
        bail!("scale N={n}: no session connected: {}", errors.join("; "));
    }
    let first = started.values().copied().min().unwrap_or(0);
    let last = started.values().copied().max().unwrap_or(0);
    let media_us = set.duration.as_micros() as u64;
    // CPU is measured while all N stream (between the last start and the
    // first end). If connecting took longer than that leaves (an overloaded
    // machine), over the whole stream, divided by the mean number of
    // sessions streaming then.
    let all_together_us = (first + media_us) as i64 - last as i64;
    let (win_a, win_b) = if all_together_us >= 1_700_000 {
        (last + 500_000, first + media_us - 200_000)
    } else {
        (first + 500_000, last + media_us - 200_000)
    };
    let (mut cpu_a, mut cpu_b) = (None, None);
    let mut ends = Vec::new();
    let give_up = Instant::now() + set.duration + Duration::from_secs(60);
    while ends.len() < connected {
        match rx.events().recv_timeout(Duration::from_millis(50)) {
            Ok(ReceiverEvent::Ended { info, end }) => ends.push((info, end)),
            Ok(ReceiverEvent::Refused { peer, reason }) => {
                errors.push(format!("{peer} refused: {reason}"))
            }
            Ok(ReceiverEvent::Started(_)) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => bail!("scale N={n}: the receiver stopped"),
        }
        let now = monotonic().as_micros();
        if cpu_a.is_none() && now >= win_a {
            cpu_a = Some((now, Snapshot::now()));
        }
        if cpu_b.is_none() && cpu_a.is_some() && now >= win_b {
            cpu_b = Some((now, Snapshot::now()));
        }
        let done = now.saturating_sub(first) as f64 / (last - first + media_us).max(1) as f64;
        progress(
            format!("N={n}: streaming, {}/{connected} ended", ends.len()),
            done.min(1.0),
        );
        if Instant::now() > give_up {
            errors.push(format!(
                "{} sessions did not end in time",
                connected - ends.len()
            ));
            break;
        }
    }
    let (cpu, concurrency) = match (&cpu_a, &cpu_b) {
        (Some((ta, a)), Some((tb, b))) if tb > ta => {
            // Session-seconds inside the window over its length.
            let inside: u64 = started
                .values()
                .map(|&s| (s + media_us).min(*tb).saturating_sub(s.max(*ta)))
                .sum();
            (Usage::between(a, b), inside as f64 / (tb - ta) as f64)
        }
        _ => (Usage::default(), 0.0),
    };
    let mut sender_drops = 0;
    for f in feeders {
        for fed in f.finish() {
            match fed.sender.wait() {
                Ok(r) => sender_drops += r.stats.dropped_expired + r.stats.dropped_overflow,
                Err(e) => errors.push(format!("sender: {e}")),
            }
        }
    }
    drop(rx);

    let mut row = ScaleRow {
        sessions: n,
        connected,
        completed: 0,
        connect_s,
        underruns: 0,
        sessions_with_underruns: 0,
        concealed_frames: 0,
        late_packets: 0,
        unrecovered: 0,
        playout_queue_drops: 0,
        sender_drops,
        tick_deviation_p99_median_ms: 0.0,
        tick_deviation_p99_max_ms: 0.0,
        tick_deviation_max_ms: 0.0,
        e2e_delay_ms: Dist::default(),
        bit_exact_sessions: 0,
        all_concurrent_s: all_together_us as f64 / 1e6,
        mean_concurrent: concurrency,
        cpu,
        cpu_per_session: cpu.per_session(concurrency),
        errors,
    };
    let mut tick_p99 = Vec::new();
    let mut e2e = Vec::new();
    for (info, end) in &ends {
        let s = &end.stats;
        row.completed += !end.truncated as usize;
        // Each session is one audio substream.
        let frames = s.substreams.first().map(|d| d.frames).unwrap_or_default();
        row.underruns += frames.underruns;
        row.sessions_with_underruns += (frames.underruns > 0) as usize;
        row.concealed_frames += frames.concealed;
        row.late_packets += s.packets.late;
        row.unrecovered += s.packets.unrecovered;
        row.playout_queue_drops += s.playout_queue_drops;
        tick_p99.push(s.tick_deviation.p99_us as f64 / 1e3);
        row.tick_deviation_max_ms = row
            .tick_deviation_max_ms
            .max(s.tick_deviation.max_us as f64 / 1e3);
        let name = &info.session.name;
        if let (Some(rec), Some(&at)) = (recordings.take(name), started.get(name)) {
            let f = rec.frame_us();
            e2e.extend(
                rec.plays
                    .iter()
                    .map(|&(k, play)| (play as f64 - (at + (k + 1) * f) as f64) / 1e3),
            );
            row.bit_exact_sessions += (rec.differing == 0
                && rec.samples == media.catalog[0].length.unwrap_or(0))
                as usize;
        }
    }
    let t = Dist::of(&tick_p99);
    row.tick_deviation_p99_median_ms = t.p50;
    row.tick_deviation_p99_max_ms = t.max;
    row.e2e_delay_ms = Dist::of(&e2e);
    Ok(row)
}

/// The largest N whose sessions all completed with zero underruns, among
/// rows tried in increasing N (a larger N that passes after a smaller one
/// failed does not count).
pub fn largest_clean(rows: &[ScaleRow]) -> Option<usize> {
    let mut rows: Vec<&ScaleRow> = rows.iter().collect();
    rows.sort_by_key(|r| r.sessions);
    let mut best = None;
    for r in rows {
        if r.underruns == 0 && r.completed == r.sessions && r.connected == r.sessions {
            best = Some(r.sessions);
        } else {
            break;
        }
    }
    best
}
