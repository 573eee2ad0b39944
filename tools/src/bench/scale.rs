//! The scale scenario: N concurrent live stereo 48 kHz sessions into one
//! receiver, straight over loopback (no relay: the relay is one more thread
//! relaying every session and would be measured instead of the receiver).
//!
//! The senders run in another process (`isochron bench-senders`, see
//! [`super::senders`]) on shared network threads, so this process is the
//! receiver alone: its CPU is the receiver's, and the senders' is read from
//! `/proc` for the same window.

use std::collections::HashMap;
use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use crossbeam_channel::{self as cb, RecvTimeoutError};
use isochron_engine::net::clock::monotonic;
use isochron_engine::net::playout_pool::PlayoutPool;
use isochron_engine::net::{Fingerprint, Identity, ReceiverEvent};
use serde::Serialize;

use super::cpu::{Snapshot, Usage, process_cpu_s};
use super::measure::Dist;
use super::media::Media;
use super::record::{Recording, Recordings};
use super::run::{Settings, receiver_options, start_receiver_admitting};
use super::scenarios::Config;

/// One N of the scale scenario.
#[derive(Debug, Clone, Serialize)]
pub struct ScaleRow {
    pub sessions: usize,
    /// Sessions that connected, and that played to their end.
    pub connected: usize,
    pub completed: usize,
    /// Seconds it took to connect them all (a few handshakes at a time).
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
    /// CPU over the window (percent of one core), and divided by the
    /// sessions streaming then: `receiver_percent` is this process's
    /// receiver threads (network thread and playout pool), `sender_percent`
    /// the senders' process, `total_percent` both processes.
    pub cpu: Usage,
    pub cpu_per_session: Usage,
    /// Playout pool wake-ups per second over the window, and sessions
    /// served per wake-up.
    pub playout_wakeups_per_s: f64,
    pub serves_per_wakeup: f64,
    /// Errors, if a session could not connect.
    pub errors: Vec<String>,
}

/// What the senders' process says, line by line.
enum FromSenders {
    Started(String, u64),
    Done(u64),
    Error(String),
    End,
}

fn parse_line(l: &str) -> FromSenders {
    let mut w = l.splitn(3, ' ');
    match (w.next(), w.next(), w.next()) {
        (Some("started"), Some(name), Some(at)) => {
            FromSenders::Started(name.to_owned(), at.parse().unwrap_or(0))
        }
        (Some("done"), Some(_), Some(rest)) => FromSenders::Done(
            rest.split(' ')
                .next()
                .and_then(|d| d.parse().ok())
                .unwrap_or(0),
        ),
        (Some("end"), _, _) => FromSenders::End,
        _ => FromSenders::Error(l.trim_start_matches("error ").to_owned()),
    }
}

/// Start `isochron bench-senders` for N sessions named `prefix0..`; its
/// lines arrive on the channel.
fn start_senders(
    n: usize,
    set: &Settings,
    seed: u64,
    to: std::net::SocketAddr,
    pin: Fingerprint,
    prefix: &str,
    identity: &std::path::Path,
) -> Result<(Child, cb::Receiver<FromSenders>)> {
    let exe = std::env::current_exe().context("finding the isochron binary")?;
    let mut child = Command::new(exe)
        .args(["bench-senders", "--to", &to.to_string(), "--pin"])
        .arg(pin.to_string())
        .args(["--sessions", &n.to_string(), "--prefix", prefix])
        .args(["--duration", &format!("{}us", set.duration.as_micros())])
        .args(["--lead", &format!("{}us", set.lead.as_micros())])
        .args(["--seed", &seed.to_string()])
        .arg("--identity")
        .arg(identity)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting the senders' process")?;
    let out = child.stdout.take().context("the senders' stdout")?;
    let (tx, rx) = cb::unbounded();
    std::thread::Builder::new()
        .name("bench-senders-out".into())
        .spawn(move || {
            for l in std::io::BufReader::new(out).lines() {
                let Ok(l) = l else { break };
                let msg = parse_line(&l);
                let end = matches!(msg, FromSenders::End);
                if tx.send(msg).is_err() || end {
                    break;
                }
            }
        })?;
    Ok((child, rx))
}

/// Run N sessions at once.
pub fn run(
    n: usize,
    set: &Settings,
    seed: u64,
    identity: &Identity,
    media: &Media,
    progress: &dyn Fn(String, f64),
) -> Result<ScaleRow> {
    let cfg = Config::default();
    let recordings = Arc::new(Recordings::default());
    let prefix = format!("scale-{n}-");
    for i in 0..n {
        recordings.expect(
            &format!("{prefix}{i}"),
            Recording::new(media.catalog[0].clone(), media.data[0].clone()),
        );
    }
    // The senders' process presents an identity of its own, admitted here.
    let id_dir =
        std::env::temp_dir().join(format!("isochron-bench-senders-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&id_dir);
    let senders_id = Identity::load_or_create(&id_dir).context("the senders' identity")?;
    let rx = start_receiver_admitting(
        receiver_options(&cfg, n + 8),
        identity,
        Some(senders_id.fingerprint()),
        &recordings,
    )?;
    let spawned = start_senders(
        n,
        set,
        seed,
        rx.local_addr(),
        rx.fingerprint(),
        &prefix,
        &id_dir,
    );
    let (mut child, lines) = spawned?;
    let t0 = Instant::now();
    let media_us = set.duration.as_micros() as u64;
    let mut started: HashMap<String, u64> = HashMap::new();
    let mut errors = Vec::new();
    let mut sender_drops = 0;
    let mut senders_done = false;
    let mut connect_s = None;
    // The CPU window: while all N stream (between the last start and the
    // first end), or if connecting took longer than that leaves (an
    // overloaded machine), over the whole stream, divided by the mean
    // number of sessions streaming then. Known once every session started.
    let mut window: Option<(u64, u64)> = None;
    let (mut cpu_a, mut cpu_b) = (None, None);
    let mut ends = Vec::new();
    let give_up = Instant::now()
        + set.duration
        + Duration::from_secs(60)
        + Duration::from_millis(50 * n as u64);
    let pool = PlayoutPool::global()?;
    let pid = child.id();
    let sample = |now: u64| (now, Snapshot::now(), process_cpu_s(pid), pool.stats());
    while !(senders_done && ends.len() >= started.len()) {
        while let Ok(m) = lines.try_recv() {
            match m {
                FromSenders::Started(name, at) => {
                    started.insert(name, at);
                }
                FromSenders::Done(drops) => sender_drops += drops,
                FromSenders::Error(e) => errors.push(e),
                FromSenders::End => senders_done = true,
            }
        }
        if connect_s.is_none() && (started.len() + errors.len() >= n || senders_done) {
            connect_s = Some(t0.elapsed().as_secs_f64());
            let first = started.values().copied().min().unwrap_or(0);
            let last = started.values().copied().max().unwrap_or(0);
            let together = (first + media_us) as i64 - last as i64;
            window = Some(if together >= 1_700_000 {
                (last + 500_000, first + media_us - 200_000)
            } else {
                (first + 500_000, last + media_us - 200_000)
            });
        }
        match rx.events().recv_timeout(Duration::from_millis(50)) {
            Ok(ReceiverEvent::Ended { info, end }) => ends.push((info, end)),
            Ok(ReceiverEvent::Refused { peer, reason }) => {
                errors.push(format!("{peer} refused: {reason}"))
            }
            Ok(ReceiverEvent::Started(_)) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => bail!("scale N={n}: the receiver stopped"),
        }
        let now = monotonic().as_micros();
        if let Some((a, b)) = window {
            if cpu_a.is_none() && now >= a {
                cpu_a = Some(sample(now));
            }
            if cpu_b.is_none() && cpu_a.is_some() && now >= b {
                cpu_b = Some(sample(now));
            }
        }
        let msg = match connect_s {
            None => format!("N={n}: connecting {}/{n}", started.len()),
            Some(_) => format!("N={n}: streaming, {}/{} ended", ends.len(), started.len()),
        };
        let first = started.values().copied().min().unwrap_or(now);
        let done = now.saturating_sub(first) as f64 / (media_us + 1_000_000) as f64;
        progress(msg, done.min(1.0));
        if Instant::now() > give_up {
            errors.push(format!(
                "{} sessions did not end in time",
                started.len().saturating_sub(ends.len())
            ));
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&id_dir);
    let connected = started.len();
    let connect_s = connect_s.unwrap_or_else(|| t0.elapsed().as_secs_f64());
    let first = started.values().copied().min().unwrap_or(0);
    let last = started.values().copied().max().unwrap_or(0);
    let all_together_us = (first + media_us) as i64 - last as i64;
    if connected == 0 {
        bail!("scale N={n}: no session connected: {}", errors.join("; "));
    }
    let (cpu, concurrency, wakeups, serves) = match (&cpu_a, &cpu_b) {
        (Some((ta, a, c0, pa)), Some((tb, b, c1, pb))) if tb > ta => {
            // Session-seconds inside the window over its length.
            let inside: u64 = started
                .values()
                .map(|&s| (s + media_us).min(*tb).saturating_sub(s.max(*ta)))
                .sum();
            let wall = (tb - ta) as f64 / 1e6;
            let mut u = Usage::between(a, b);
            u.sender_percent = 100.0 * (c1 - c0).max(0.0) / wall;
            u.total_percent += u.sender_percent;
            let wakes = pb.wakeups.saturating_sub(pa.wakeups);
            let served = pb.serves.saturating_sub(pa.serves);
            (
                u,
                inside as f64 / (tb - ta) as f64,
                wakes as f64 / wall,
                served as f64 / wakes.max(1) as f64,
            )
        }
        _ => (Usage::default(), 0.0, 0.0, 0.0),
    };
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
        playout_wakeups_per_s: wakeups,
        serves_per_wakeup: serves,
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
