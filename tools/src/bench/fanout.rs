//! The fan-out scenario: one publisher, N subscribers, two routers.
//!
//! Each router is its own `isochron router` process on 127.0.0.1: R1, the
//! publisher's, and R2, the listeners', connected to R1 over tcp (for
//! declarations) and udp (media), the udp link through the impairment
//! relay when the link is impaired (a clean link leaves the relay out, so
//! the hop measured is routers alone). The publisher and the listeners run
//! in this process, so they read one clock and delays are true one-way
//! values; the routers' CPU is read from `/proc`.
//!
//! A tap behind each router ([`Tap`]) notes when every sealed datagram
//! passed it; the same datagram behind R2 minus behind R1 is the delay one
//! router hop (the link and R2) adds.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use isochron_engine::config::{ReceiverConfig, SenderConfig};
use isochron_engine::net::clock::monotonic;
use isochron_engine::net::relay::{RelayConfig, RelayHandle};
use isochron_engine::net::zenoh::{
    Publisher, PublisherOptions, PublisherStats, Subscriber, SubscriberOptions, Tap, ZenohOptions,
};
use isochron_engine::net::{Identity, SessionEnd, Sink};
use isochron_engine::sim::Impairment;
use isochron_engine::wire::control::{FecParams, Mode};
use serde::Serialize;

use super::cpu::{Snapshot, Usage};
use super::measure::Dist;
use super::media::Media;
use super::record::{Recording, Recordings};
use super::run::Settings;
use super::scenarios::{Config, describe_link};

/// The scenario's name (`--scenario fanout`).
pub const FANOUT: &str = "fanout";

/// Datagrams a tap remembers (two minutes of a 48 kHz stereo stream).
const TAP_CAPACITY: usize = 80_000;

/// One N of the fan-out scenario.
#[derive(Debug, Clone, Serialize)]
pub struct FanoutRow {
    pub listeners: usize,
    /// The link between the two routers.
    pub link: String,
    /// The udp link went through the impairment relay.
    pub relay: bool,
    /// Listeners that started, and that played to their end.
    pub started: usize,
    pub completed: usize,
    /// Listeners whose audio came out bit-exact, every sample.
    pub bit_exact: usize,
    /// End-to-end delay (publisher's media clock to playout instant) over
    /// every frame of every listener (ms).
    pub delay_ms: Dist,
    /// Each listener's p50 and p99 delay, as distributions over listeners.
    pub listener_delay_p50_ms: Dist,
    pub listener_delay_p99_ms: Dist,
    /// Loss before FEC, mean over listeners; residual loss, worst listener.
    pub loss_before_fec_mean: f64,
    pub residual_loss_max: f64,
    pub concealed_frames: u64,
    pub underruns: u64,
    pub listeners_with_underruns: usize,
    /// Delay one router hop adds: the same datagram behind R2 minus behind
    /// R1 (ms), over the datagrams both taps saw.
    pub hop_delay_ms: Dist,
    /// CPU of this process (the publisher, the listeners, the two taps)
    /// over the window, split by thread role; zenoh's own threads are
    /// `other`.
    pub cpu: Usage,
    /// The publisher's threads (its network thread, its readers).
    pub publisher_percent: f64,
    /// Everything in this process but the publisher's threads, per
    /// listener (an upper bound: zenoh's shared threads serve the
    /// publisher's session too).
    pub cpu_per_listener_percent: f64,
    /// Each router process over the same window (percent of one core).
    pub router_percent: [f64; 2],
    /// Listeners one core of R2 would serve at this per-listener cost.
    pub listeners_per_router_core: f64,
    pub publisher: PublisherStats,
    pub errors: Vec<String>,
}

/// A router process, killed on drop.
struct RouterProc {
    child: Child,
    ready: PathBuf,
}

impl RouterProc {
    fn start(dir: &Path, name: &str, port: u16, connect: &[String]) -> Result<RouterProc> {
        let ready = dir.join(format!("{name}.json"));
        let mut cmd = Command::new(std::env::current_exe().context("this executable")?);
        cmd.args(["router", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--ready-file")
            .arg(&ready);
        for c in connect {
            cmd.args(["--connect", c]);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting a router process")?;
        let mut r = RouterProc { child, ready };
        let until = Instant::now() + Duration::from_secs(20);
        while !r.ready.exists() {
            if let Some(status) = r.child.try_wait()? {
                bail!("router {name} exited at start ({status})");
            }
            if Instant::now() > until {
                bail!("router {name} was not listening within 20 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(r)
    }

    /// CPU seconds the process has used.
    fn cpu_s(&self) -> f64 {
        proc_cpu_s(self.child.id())
    }
}

impl Drop for RouterProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.ready);
    }
}

/// utime + stime of process `pid`, seconds (0 if unreadable).
fn proc_cpu_s(pid: u32) -> f64 {
    // SAFETY: sysconf has no preconditions.
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let Some(close) = stat.rfind(')') else {
        return 0.0;
    };
    let f: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    let n = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (n(11) + n(12)) / tick
}

/// A port free for both TCP and UDP on 127.0.0.1 (a router listens on both).
fn free_port() -> Result<u16> {
    for _ in 0..100 {
        let t = TcpListener::bind("127.0.0.1:0")?;
        let port = t.local_addr()?.port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no port free for both tcp and udp on 127.0.0.1")
}

/// Arrival instants of datagrams at one tap, by a hash of their bytes
/// (sealed datagrams are unique: each has its own nonce).
#[derive(Default)]
struct Seen(Mutex<HashMap<u64, u64>>);

impl Seen {
    fn note(&self, bytes: &[u8]) {
        let now = monotonic().as_micros();
        let mut h = DefaultHasher::new();
        bytes.hash(&mut h);
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() < TAP_CAPACITY {
            m.entry(h.finish()).or_insert(now);
        }
    }

    fn hop_delays_ms(&self, behind: &Seen) -> Vec<f64> {
        let a = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let b = behind.0.lock().unwrap_or_else(|e| e.into_inner());
        a.iter()
            .filter_map(|(k, &t1)| b.get(k).map(|&t2| (t2 as f64 - t1 as f64) / 1e3))
            .collect()
    }
}

fn tap(port: u16, stream: &str, seen: &Arc<Seen>) -> Result<Tap> {
    let s = seen.clone();
    Tap::start(&zenoh(port), stream, move |b| s.note(b)).context("starting a tap")
}

fn zenoh(port: u16) -> ZenohOptions {
    ZenohOptions {
        routers: vec![format!("127.0.0.1:{port}")],
        ..Default::default()
    }
}

fn publisher_options(c: &Config, stream: &str, port: u16, listeners: usize) -> PublisherOptions {
    let mut o = PublisherOptions::new(stream, zenoh(port));
    let (k, m) = c.fec.unwrap_or((0, 0));
    o.config = SenderConfig {
        mode: Mode::Live,
        fec: if c.fec.is_some() {
            FecParams {
                k,
                m,
                depth: c.interleave.max(1),
                window_us: c.fec_window.map_or(0, |w| w.as_micros() as u32),
                auto_depth: false,
            }
        } else {
            FecParams {
                depth: c.interleave.max(1),
                ..FecParams::OFF
            }
        },
        ..Default::default()
    };
    o.latency = c.latency;
    o.wait_listeners = listeners;
    // Within a listener's patience for its first media (30 s): if some
    // never arrive, the others still get the stream.
    o.wait_timeout = Duration::from_secs(25);
    o.linger = Duration::from_secs(1);
    o
}

/// Run the fan-out to `n` listeners over `link` between the routers.
pub fn run(
    n: usize,
    link: &Impairment,
    set: &Settings,
    identity: &Identity,
    media: &Media,
    progress: &dyn Fn(String, f64),
) -> Result<FanoutRow> {
    let cfg = Config::default();
    let stream = format!("bench/fanout/{}-{n}", std::process::id());
    let dir = std::env::temp_dir().join(format!("isochron-bench-fanout-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let relayed = *link != Impairment::default();
    let (p1, p2) = (free_port()?, free_port()?);
    progress(format!("N={n}: starting the routers"), 0.0);
    let r1 = RouterProc::start(&dir, "r1", p1, &[])?;
    let relay = if relayed {
        Some(RelayHandle::start(RelayConfig {
            listen: "127.0.0.1:0".parse().expect("literal"),
            upstream: format!("127.0.0.1:{p1}").parse().expect("literal"),
            forward: link.clone(),
            backward: link.clone(),
            seed: 1,
        })?)
    } else {
        None
    };
    let connect = match &relay {
        Some(r) => vec![
            format!("tcp/127.0.0.1:{p1}"),
            format!("udp/{}", r.local_addr()),
        ],
        None => vec![format!("127.0.0.1:{p1}")],
    };
    let r2 = RouterProc::start(&dir, "r2", p2, &connect)?;
    let (seen1, seen2) = (Arc::new(Seen::default()), Arc::new(Seen::default()));
    let taps = [tap(p1, &stream, &seen1)?, tap(p2, &stream, &seen2)?];

    // The publisher waits for its audience; listeners wait for the catalog.
    let publisher = {
        let opts = publisher_options(&cfg, &stream, p1, n);
        let (id, catalog, data) = (identity.clone(), media.catalog.clone(), media.data.clone());
        std::thread::spawn(move || -> Result<Publisher> {
            let mut p = Publisher::start(opts, &id, catalog)?;
            for (i, bytes) in data.into_iter().enumerate() {
                let mut at = 0;
                p.feed_from(i, move |buf: &mut [u8]| {
                    let k = buf.len().min(bytes.len() - at);
                    buf[..k].copy_from_slice(&bytes[at..at + k]);
                    at += k;
                    Ok(k)
                })?;
            }
            Ok(p)
        })
    };
    let recordings = Arc::new(Recordings::default());
    let mut subs = Vec::new();
    let mut errors = Vec::new();
    for i in 0..n {
        progress(format!("N={n}: listener {}/{n} subscribing", i + 1), 0.0);
        let name = format!("listener-{i}");
        recordings.expect(
            &name,
            Recording::new(media.catalog[0].clone(), media.data[0].clone()),
        );
        let mut opts = SubscriberOptions::new(&stream, zenoh(p2), vec![identity.fingerprint()]);
        opts.config = ReceiverConfig {
            latency: cfg.latency,
            low_water: cfg.low_water,
            high_water: cfg.high_water,
            ..Default::default()
        };
        opts.wait = Duration::from_secs(30);
        let recs = recordings.clone();
        match Subscriber::start(opts, identity, move |_| {
            recs.sink(&name)
                .map(|s| Box::new(s) as Box<dyn Sink>)
                .ok_or_else(|| format!("no recording for {name}"))
        }) {
            Ok(s) => subs.push((i, s)),
            Err(e) => errors.push(format!("listener {i}: {e}")),
        }
    }
    if subs.is_empty() {
        bail!("fanout N={n}: no listener started: {}", errors.join("; "));
    }
    let publisher = publisher
        .join()
        .map_err(|_| anyhow::anyhow!("the publisher thread panicked"))?
        .context("starting the publisher")?;
    let until = Instant::now() + Duration::from_secs(10);
    while publisher.started_at().as_micros() == 0 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(5));
    }
    let started_at = publisher.started_at().as_micros();
    let media_us = set.duration.as_micros() as u64;
    let (win_a, win_b) = (started_at + 1_000_000, started_at + media_us - 300_000);
    let (mut cpu_a, mut cpu_b) = (None, None);
    let give_up = Instant::now() + set.duration + Duration::from_secs(60);
    loop {
        let now = monotonic().as_micros();
        let snap = || (Snapshot::now(), [r1.cpu_s(), r2.cpu_s()]);
        if cpu_a.is_none() && now >= win_a {
            cpu_a = Some(snap());
        }
        if cpu_b.is_none() && cpu_a.is_some() && now >= win_b {
            cpu_b = Some(snap());
        }
        let finished = subs.iter().filter(|(_, s)| s.is_finished()).count();
        progress(
            format!("N={n}: streaming, {finished}/{} ended", subs.len()),
            (now.saturating_sub(started_at) as f64 / media_us as f64).min(1.0),
        );
        if finished == subs.len() && publisher.is_finished() {
            break;
        }
        if Instant::now() > give_up {
            errors.push("the stream did not end in time".into());
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let report = match publisher.finish() {
        Ok(r) => r.stats,
        Err(e) => {
            errors.push(format!("publisher: {e}"));
            PublisherStats::default()
        }
    };
    let ends: Vec<(usize, SessionEnd)> = subs.into_iter().map(|(i, s)| (i, s.wait())).collect();
    for t in taps {
        t.close();
    }
    drop(relay);
    let (cpu, routers) = match (&cpu_a, &cpu_b) {
        (Some((a, ra)), Some((b, rb))) => {
            let u = Usage::between(a, b);
            let pct = |i: usize| 100.0 * (rb[i] - ra[i]).max(0.0) / u.wall_s;
            (u, [pct(0), pct(1)])
        }
        _ => (Usage::default(), [0.0; 2]),
    };
    drop((r1, r2));
    let _ = std::fs::remove_dir(&dir);

    let mut row = FanoutRow {
        listeners: n,
        link: describe_link(link),
        relay: relayed,
        started: ends.len(),
        completed: 0,
        bit_exact: 0,
        delay_ms: Dist::default(),
        listener_delay_p50_ms: Dist::default(),
        listener_delay_p99_ms: Dist::default(),
        loss_before_fec_mean: 0.0,
        residual_loss_max: 0.0,
        concealed_frames: 0,
        underruns: 0,
        listeners_with_underruns: 0,
        hop_delay_ms: Dist::of(&seen1.hop_delays_ms(&seen2)),
        cpu,
        publisher_percent: cpu.sender_percent,
        cpu_per_listener_percent: (cpu.total_percent - cpu.sender_percent).max(0.0)
            / ends.len().max(1) as f64,
        router_percent: routers,
        listeners_per_router_core: 0.0,
        publisher: report,
        errors,
    };
    if routers[1] > 0.0 {
        row.listeners_per_router_core = ends.len() as f64 / (routers[1] / 100.0);
    }
    let (mut all, mut p50s, mut p99s, mut loss) = (Vec::new(), Vec::new(), Vec::new(), 0.0);
    for (i, end) in &ends {
        let s = &end.stats;
        row.completed += !end.truncated as usize;
        let mut frames = isochron_engine::stats::FrameCounts::default();
        for sub in &s.substreams {
            frames.add(&sub.frames);
        }
        row.concealed_frames += frames.concealed;
        row.underruns += frames.underruns;
        row.listeners_with_underruns += (frames.underruns > 0) as usize;
        row.residual_loss_max = row.residual_loss_max.max(s.residual_loss_ratio);
        loss += s.packets.lost as f64 / s.packets.expected.max(1) as f64;
        if let Some(rec) = recordings.take(&format!("listener-{i}")) {
            let f = rec.frame_us();
            let d: Vec<f64> = rec
                .plays
                .iter()
                .map(|&(k, play)| (play as f64 - (started_at + (k + 1) * f) as f64) / 1e3)
                .collect();
            let one = Dist::of(&d);
            p50s.push(one.p50);
            p99s.push(one.p99);
            all.extend(d);
            row.bit_exact += (rec.differing == 0
                && rec.samples == media.catalog[0].length.unwrap_or(0))
                as usize;
        }
    }
    row.loss_before_fec_mean = loss / ends.len().max(1) as f64;
    row.delay_ms = Dist::of(&all);
    row.listener_delay_p50_ms = Dist::of(&p50s);
    row.listener_delay_p99_ms = Dist::of(&p99s);
    Ok(row)
}

/// The fan-out rows of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Fanout {
    pub about: &'static str,
    pub duration_s: f64,
    pub rows: Vec<FanoutRow>,
}

impl Fanout {
    pub fn new(duration_s: f64, rows: Vec<FanoutRow>) -> Fanout {
        Fanout {
            about: "one publisher -> router R1 -> router R2 -> N listeners, each router its own \
                    process on 127.0.0.1 (the udp link R1-R2 through the impairment relay when \
                    impaired); publisher and listeners in the bench process",
            duration_s,
            rows,
        }
    }
}

/// The markdown table of the fan-out rows.
pub fn table(f: &Fanout) -> String {
    use std::fmt::Write;
    let mut t = String::from(
        "| N | link | started / completed | bit-exact | delay p50 / p99, all (ms) \
         | worst listener p99 (ms) | loss before FEC | worst residual | concealed | underruns \
         | hop delay p50 / p99 (ms) | publisher CPU (% core) | CPU per listener (% core) \
         | routers R1 / R2 (% core) | listeners per R2 core |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in &f.rows {
        let _ = writeln!(
            t,
            "| {} | {} | {} / {} | {} | {:.2} / {:.2} | {:.2} | {:.2} % | {:.1e} | {} | {} | {:.3} / {:.3} | {:.2} | {:.2} | {:.1} / {:.1} | {:.0} |",
            r.listeners,
            r.link,
            r.started,
            r.completed,
            r.bit_exact,
            r.delay_ms.p50,
            r.delay_ms.p99,
            r.listener_delay_p99_ms.max,
            r.loss_before_fec_mean * 100.0,
            r.residual_loss_max,
            r.concealed_frames,
            r.underruns,
            r.hop_delay_ms.p50,
            r.hop_delay_ms.p99,
            r.publisher_percent,
            r.cpu_per_listener_percent,
            r.router_percent[0],
            r.router_percent[1],
            r.listeners_per_router_core
        );
    }
    t
}

/// One line per row, for the terminal.
pub fn one_line(r: &FanoutRow) -> String {
    format!(
        "fanout N={:<4} {}: completed {}/{}, bit-exact {}, delay p50 {:.2} p99 {:.2} ms, residual max {:.1e}, underruns {}, hop p50 {:.3} p99 {:.3} ms, publisher {:.2} %, per listener {:.2} %, R2 {:.1} %",
        r.listeners,
        r.link,
        r.completed,
        r.started,
        r.bit_exact,
        r.delay_ms.p50,
        r.delay_ms.p99,
        r.residual_loss_max,
        r.underruns,
        r.hop_delay_ms.p50,
        r.hop_delay_ms.p99,
        r.publisher_percent,
        r.cpu_per_listener_percent,
        r.router_percent[1]
    )
}
