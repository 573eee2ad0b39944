//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::time::Duration;

use isochron::codecs::{Encoding, Origin, Rate, StreamFormat};
use isochron::engine::catalog::{MediaKind, SubstreamDesc};
use isochron::engine::sim::{self, PatternCheck, PatternSource, SimConfig, SimOutcome};

/// 48 kHz stereo 16-bit audio.
pub fn stereo48k(id: u16, frame: Duration) -> SubstreamDesc {
    SubstreamDesc {
        id,
        name: format!("audio{id}.wav"),
        kind: MediaKind::Audio,
        format: StreamFormat::new(Encoding::L16, 2, Rate::hz(48_000).unwrap()).unwrap(),
        frame_us: frame.as_micros() as u32,
        sample_interleave: 1,
        frames_per_packet: 1,
        origin: Origin::Raw,
        length: None,
        codec: None,
    }
}

/// A 3-axis f64 sensor at 200 Hz, small frames aggregated four to a packet.
pub fn sensor200(id: u16, frame: Duration) -> SubstreamDesc {
    SubstreamDesc {
        id,
        name: format!("imu{id}.csv"),
        kind: MediaKind::Sensor,
        format: StreamFormat::new(Encoding::F64, 3, Rate::hz(200).unwrap()).unwrap(),
        frame_us: frame.as_micros() as u32,
        sample_interleave: 1,
        frames_per_packet: 4,
        origin: Origin::Raw,
        length: None,
        codec: None,
    }
}

/// Run the pattern through a simulated session; `samples` per substream.
pub fn run(cfg: &SimConfig, subs: &[SubstreamDesc], seconds: f64) -> (SimOutcome, PatternCheck) {
    let subs: Vec<SubstreamDesc> = subs
        .iter()
        .map(|d| {
            let mut d = d.clone();
            d.length = Some((d.format.rate.as_f64() * seconds).round() as u64);
            d
        })
        .collect();
    let mut source = PatternSource::new(&subs, None);
    let mut check = PatternCheck::new(&subs);
    let out = sim::run(cfg, subs.clone(), &mut source, &mut |f| check.on_frame(&f))
        .expect("session runs");
    (out, check)
}

pub fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

pub type CheckSummary = isochron::engine::sim::media::CheckCounts;

pub fn summary(check: &PatternCheck, i: usize) -> CheckSummary {
    check.counts(i)
}

use std::sync::{Arc, Mutex};

use isochron::engine::net::{Sender, SessionEnd, Sink};
use isochron::engine::playout::PlayedFrame;
use isochron::engine::sim::media::fill_pattern;

/// A sink that checks frames against the pattern, shareable with the test.
#[derive(Clone)]
pub struct CheckSink {
    pub check: Arc<Mutex<PatternCheck>>,
    pub end: Arc<Mutex<Option<SessionEnd>>>,
}

impl CheckSink {
    pub fn new(subs: &[SubstreamDesc]) -> Self {
        Self {
            check: Arc::new(Mutex::new(PatternCheck::new(subs))),
            end: Arc::new(Mutex::new(None)),
        }
    }
}

impl Sink for CheckSink {
    fn frame(&mut self, f: PlayedFrame<'_>) {
        self.check.lock().unwrap().on_frame(&f);
    }
    fn end(&mut self, end: &mut SessionEnd) {
        *self.end.lock().unwrap() = Some(end.clone());
    }
}

/// Give each substream a length of `seconds`.
pub fn with_length(subs: &[SubstreamDesc], seconds: f64) -> Vec<SubstreamDesc> {
    subs.iter()
        .map(|d| {
            let mut d = d.clone();
            d.length = Some((d.format.rate.as_f64() * seconds).round() as u64);
            d
        })
        .collect()
}

/// Feed every substream its pattern from reader threads, to its length.
pub fn feed_pattern(sender: &mut Sender, subs: &[SubstreamDesc]) {
    for (i, d) in subs.iter().enumerate() {
        let (id, stride, total) = (d.id, d.format.stride(), d.length.expect("length set"));
        let mut pos = 0u64;
        sender
            .feed_from(i, move |buf| {
                let n = ((buf.len() / stride) as u64).min(total - pos) as usize;
                fill_pattern(id, pos, stride, &mut buf[..n * stride]);
                pos += n as u64;
                Ok(n * stride)
            })
            .unwrap();
    }
}

/// A receiver writing each session into files in `dir`.
pub fn file_receiver(
    opts: isochron::engine::net::ReceiverOptions,
    identity: &isochron::engine::net::Identity,
    dir: &std::path::Path,
) -> isochron::engine::net::Receiver {
    let dir = dir.to_path_buf();
    isochron::engine::net::Receiver::start(opts, identity, move |info| {
        Ok(Box::new(
            isochron::engine::net::FileSink::create(&dir, &info.session)
                .map_err(|e| e.to_string())?,
        ))
    })
    .expect("receiver starts")
}

/// A simulated link with a fixed FEC code RS(16,4) (adaptation off) whose
/// blocks fill completely: for measuring the code against its bound.
pub fn fixed_fec_sim(
    loss: isochron::engine::sim::Loss,
    jitter: u64,
    depth: u8,
    latency: u64,
    seed: u64,
) -> SimConfig {
    let mut cfg = SimConfig {
        seed,
        link: isochron::engine::sim::Impairment {
            loss,
            delay: ms(20),
            jitter: ms(jitter),
            ..Default::default()
        },
        ..Default::default()
    };
    cfg.sender.fec = isochron::engine::FecParams {
        k: 16,
        m: 4,
        depth,
        window_us: 20_000, // room for 16 packets at 1000 packets/s
        auto_depth: false,
    };
    cfg.sender.fec_target = None;
    // FEC measured alone: nothing is asked for again.
    cfg.sender.recovery = isochron::engine::Recovery::Fec;
    cfg.receiver.latency = ms(latency);
    cfg.receiver.high_water = ms(latency * 2);
    cfg
}

use isochron::engine::net::{Admission, Identity, Receiver, ReceiverOptions, SenderOptions, Trust};

/// The identity every sender in these tests presents: made once per test
/// binary (ephemeral), admitted by [`receiver_options`].
pub fn sender_identity() -> &'static Identity {
    static ID: std::sync::OnceLock<Identity> = std::sync::OnceLock::new();
    ID.get_or_init(|| Identity::ephemeral().expect("an identity"))
}

/// Receiver options on 127.0.0.1:0 admitting [`sender_identity`]: one half
/// of the pairing.
pub fn receiver_options() -> ReceiverOptions {
    ReceiverOptions::new(
        "127.0.0.1:0".parse().unwrap(),
        Admission::only([sender_identity().fingerprint()]),
    )
}

/// Sender options to `to` (`rx.local_addr()`, or a relay in front of it)
/// pinning `rx` and presenting [`sender_identity`]: the other half.
pub fn sender_options(to: std::net::SocketAddr, rx: &Receiver) -> SenderOptions {
    SenderOptions::new(
        to,
        Trust::Pinned(vec![rx.fingerprint()]),
        sender_identity().clone(),
    )
}

use isochron::engine::net::relay::{RelayConfig, RelayHandle};
use isochron::engine::net::{ReceiverEvent, SenderReport};
use isochron::engine::sim::Impairment;

/// The next session end `rx` reports within `within` (starts pass by; a
/// refusal fails the test).
pub fn next_end(rx: &Receiver, within: Duration) -> SessionEnd {
    loop {
        match rx.events().recv_timeout(within).expect("the session ends") {
            ReceiverEvent::Ended { end, .. } => return *end,
            ReceiverEvent::Refused { reason, .. } => panic!("refused: {reason}"),
            ReceiverEvent::Started(_) => {}
        }
    }
}

/// A relay on 127.0.0.1 in front of `upstream`, impairing each direction.
pub fn relay(
    upstream: std::net::SocketAddr,
    forward: Impairment,
    backward: Impairment,
    seed: u64,
) -> RelayHandle {
    RelayHandle::start(RelayConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        upstream,
        forward,
        backward,
        seed,
    })
    .expect("the relay starts")
}

/// A receiver (its own identity, admitting [`sender_identity`]) whose
/// sessions each get a [`CheckSink`], behind a relay doing one link each
/// way: the setup of the tests over real QUIC through impairment.
pub struct Impaired {
    pub rx: Receiver,
    pub relay: RelayHandle,
    sinks: Arc<Mutex<Vec<CheckSink>>>,
}

/// A receiver with `ropts` whose every session gets a [`CheckSink`], kept
/// in the order the sessions started.
pub fn checked_receiver(ropts: ReceiverOptions) -> (Receiver, Arc<Mutex<Vec<CheckSink>>>) {
    let identity = Identity::ephemeral().unwrap();
    let sinks = Arc::new(Mutex::new(Vec::new()));
    let s = sinks.clone();
    let rx = Receiver::start(ropts, &identity, move |info| {
        let sink = CheckSink::new(&info.session.substreams);
        s.lock().unwrap().push(sink.clone());
        Ok(Box::new(sink))
    })
    .expect("the receiver starts");
    (rx, sinks)
}

impl Impaired {
    /// `ropts` (from [`receiver_options`]) behind `link` both ways, drawn
    /// from `seed`.
    pub fn start(ropts: ReceiverOptions, link: Impairment, seed: u64) -> Self {
        let (rx, sinks) = checked_receiver(ropts);
        let relay = relay(rx.local_addr(), link.clone(), link, seed);
        Self { rx, relay, sinks }
    }

    /// Sender options through the relay, pinning the receiver.
    pub fn sender_options(&self) -> SenderOptions {
        sender_options(self.relay.local_addr(), &self.rx)
    }

    /// Connect with `opts`, let `connected` look at the sender, feed `subs`
    /// their pattern and wait: the sender's report, which must say the
    /// session completed (the receiver's bye came).
    pub fn send(
        &self,
        opts: SenderOptions,
        subs: &[SubstreamDesc],
        connected: impl FnOnce(&Sender),
    ) -> SenderReport {
        let mut tx = Sender::connect(opts, subs.to_vec()).expect("the sender is accepted");
        connected(&tx);
        feed_pattern(&mut tx, subs);
        let sent = tx.wait().expect("the sender ends with its account");
        assert!(sent.completed, "the receiver's bye came: {sent:?}");
        sent
    }

    /// The next session's end, within 30 s.
    pub fn next_end(&self) -> SessionEnd {
        next_end(&self.rx, Duration::from_secs(30))
    }

    /// What session `i`'s sink saw of substream `sub`.
    pub fn counts(&self, i: usize, sub: usize) -> CheckSummary {
        self.sinks.lock().unwrap()[i]
            .check
            .lock()
            .unwrap()
            .counts(sub)
    }

    /// Session `i`'s first substream played `samples` samples, none of them
    /// corrupt or out of order.
    pub fn assert_whole(&self, i: usize, samples: u64) -> CheckSummary {
        let c = self.counts(i, 0);
        assert_eq!(c.samples, samples, "sample count equal");
        assert_eq!((c.corrupt_frames, c.out_of_order), (0, 0));
        c
    }
}

/// When a [`Gate`] drops what comes back: shut by the test (from a sink's
/// callback, say) at the instant it chooses, for a while; shared with the
/// gate, so it can be handed out before the gate exists.
#[derive(Clone, Default)]
pub struct Shutter {
    inner: Arc<Mutex<ShutterState>>,
}

#[derive(Default)]
struct ShutterState {
    /// From when, for how long.
    shut: Option<(std::time::Instant, Duration)>,
    dropped: u64,
    passed_after: u64,
}

impl Shutter {
    /// Drop every datagram coming back from now on, for `d`.
    pub fn shut_for(&self, d: Duration) {
        self.inner.lock().unwrap().shut = Some((std::time::Instant::now(), d));
    }

    /// Whether it was shut.
    pub fn was_shut(&self) -> bool {
        self.inner.lock().unwrap().shut.is_some()
    }

    /// Datagrams coming back dropped while shut.
    pub fn dropped(&self) -> u64 {
        self.inner.lock().unwrap().dropped
    }

    /// Datagrams coming back passed after it opened again.
    pub fn passed_after(&self) -> u64 {
        self.inner.lock().unwrap().passed_after
    }

    /// Whether a datagram coming back now passes (and count it).
    fn pass(&self) -> bool {
        let mut s = self.inner.lock().unwrap();
        match s.shut {
            Some((from, d)) if from.elapsed() < d => {
                s.dropped += 1;
                false
            }
            Some(_) => {
                s.passed_after += 1;
                true
            }
            None => true,
        }
    }
}

/// A relay of one client's datagrams to `upstream` and back, unimpaired,
/// except that what comes back is dropped while its [`Shutter`] is shut: a
/// loss burst on the way back at an instant of the test's choosing (the
/// impairment relay's outages are timed from its start).
pub struct Gate {
    addr: std::net::SocketAddr,
    stop: Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Gate {
    /// Relay between a client and `upstream`, dropping what comes back
    /// while `shutter` is shut.
    pub fn start(upstream: std::net::SocketAddr, shutter: Shutter) -> Self {
        use std::net::UdpSocket;
        use std::sync::atomic::{AtomicBool, Ordering};
        let front = UdpSocket::bind("127.0.0.1:0").unwrap();
        let back = UdpSocket::bind("127.0.0.1:0").unwrap();
        back.connect(upstream).unwrap();
        for s in [&front, &back] {
            s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        }
        let addr = front.local_addr().unwrap();
        let client = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        let (front2, back2) = (front.try_clone().unwrap(), back.try_clone().unwrap());
        let (c, st) = (client.clone(), stop.clone());
        let out = std::thread::spawn(move || {
            let mut buf = vec![0u8; 65_536];
            while !st.load(Ordering::Relaxed) {
                if let Ok((n, from)) = front.recv_from(&mut buf) {
                    *c.lock().unwrap() = Some(from);
                    let _ = back.send(&buf[..n]);
                }
            }
        });
        let st = stop.clone();
        let home = std::thread::spawn(move || {
            let mut buf = vec![0u8; 65_536];
            while !st.load(Ordering::Relaxed) {
                if let Ok(n) = back2.recv(&mut buf) {
                    let to = *client.lock().unwrap();
                    if let Some(to) = to
                        && shutter.pass()
                    {
                        let _ = front2.send_to(&buf[..n], to);
                    }
                }
            }
        });
        Self {
            addr,
            stop,
            threads: vec![out, home],
        }
    }

    /// Where the client sends to.
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.addr
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// A source datagram of substream 0 of a stereo 48 kHz stream in 10 ms
/// frames, one frame whole (480 samples of `fill` bytes): `seq`, media
/// frame `frame`, sender time `sender_ts` (us), at `pos` in its FEC block.
pub fn stereo_source(
    seq: u32,
    frame: u64,
    sender_ts: u64,
    pos: isochron::engine::wire::packet::BlockPos,
    fill: u8,
) -> Vec<u8> {
    source_packet(seq, frame * 10_000, sender_ts, pos, &vec![fill; 480 * 4])
}

/// A source datagram of substream 0 (one frame, one fragment) at any
/// media time, on the frame grid or not.
pub fn source_packet(
    seq: u32,
    media_ts: u64,
    sender_ts: u64,
    pos: isochron::engine::wire::packet::BlockPos,
    payload: &[u8],
) -> Vec<u8> {
    use isochron::engine::wire::packet::{self, Kind, SourceMeta};
    let meta = SourceMeta {
        substream: 0,
        seq,
        media_ts,
        sender_ts,
        group: 1,
        lane: 0,
        frag_index: 0,
        frag_count: 1,
        frames: 1,
    };
    let mut buf = vec![0u8; packet::HEADER_LEN + payload.len()];
    let n = packet::encode(&mut buf, Kind::Source, pos, &meta, payload);
    buf.truncate(n);
    buf
}

/// Where cargo put the examples (beside this test's `deps/`), built if a
/// filtered test run skipped them.
pub fn example(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name);
    if !path.exists() {
        let status = std::process::Command::new(env!("CARGO"))
            .args(["build", "--example", name])
            .status()
            .unwrap();
        assert!(status.success(), "building example {name}");
    }
    path
}

/// Resident memory of this process (everything the test runs in it),
/// bytes (Linux: `VmRSS` in /proc/self/status).
pub fn rss() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = s.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}
