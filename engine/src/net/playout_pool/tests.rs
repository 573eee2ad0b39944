//! The pool on real threads and real clocks (sped up): many sessions on two
//! workers, every behaviour a playout thread of its own had.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel as cb;
use crossbeam_queue::ArrayQueue;
use isochron_codecs::{Encoding, Origin, Rate, StreamFormat};
use tokio::sync::Notify;

use super::*;
use crate::catalog::{MediaKind, SubstreamDesc};
use crate::config::{ReceiverConfig, SenderConfig};
use crate::ingress::Ingress;
use crate::playout::PlayedFrame;
use crate::receiver::fec_wait;
use crate::sender::SenderCore;
use crate::sim::{PatternCheck, PatternSource};
use crate::wire::control::{Accept, Mode};

const SPEED: f64 = 10.0;

fn stereo(seconds: f64) -> Vec<SubstreamDesc> {
    vec![SubstreamDesc {
        id: 0,
        name: "a.wav".into(),
        kind: MediaKind::Audio,
        format: StreamFormat::new(Encoding::L16, 2, Rate::hz(48_000).unwrap()).unwrap(),
        frame_us: 10_000,
        sample_interleave: 1,
        frames_per_packet: 1,
        origin: Origin::Raw,
        length: Some((48_000.0 * seconds) as u64),
    }]
}

/// Checks frames against the pattern and that none is played early.
struct Check {
    check: Arc<Mutex<PatternCheck>>,
    clock: Clock,
    early: Arc<Mutex<u64>>,
    panic_at: Option<u64>,
    ended: Arc<Mutex<bool>>,
}

impl Sink for Check {
    fn frame(&mut self, f: PlayedFrame<'_>) {
        if self.clock.now() < f.deadline {
            *self.early.lock().unwrap() += 1;
        }
        if Some(f.frame) == self.panic_at {
            panic!("sink failure on purpose");
        }
        self.check.lock().unwrap().on_frame(&f);
    }
    fn end(&mut self, _: &mut SessionEnd) {
        *self.ended.lock().unwrap() = true;
    }
}

/// A sender core feeding one attached session through ingress, on the
/// test's thread (the network side's role).
struct Fed {
    core: SenderCore,
    source: PatternSource,
    ingress: Ingress,
    input: Option<PlayoutInput>,
    ended: Option<SessionEnded>,
    clock: Clock,
    pool_bufs: Pool,
    check: Arc<Mutex<PatternCheck>>,
    early: Arc<Mutex<u64>>,
    sink_ended: Arc<Mutex<bool>>,
    ctl: cb::Receiver<Control>,
    reports: u32,
    credits: u32,
    eos: bool,
}

fn session(pool: &PlayoutPool, name: &str, seconds: f64, panic_at: Option<u64>) -> Fed {
    session_with(pool, name, seconds, panic_at, Mode::Live, SPEED)
}

fn session_with(
    pool: &PlayoutPool,
    name: &str,
    seconds: f64,
    panic_at: Option<u64>,
    mode: Mode,
    speed: f64,
) -> Fed {
    let subs = stereo(seconds);
    let scfg = SenderConfig {
        speed,
        mode,
        ..Default::default()
    };
    let rcfg = ReceiverConfig::default();
    let mut core = SenderCore::new(name, subs.clone(), &scfg).unwrap();
    let Control::Hello(hello) = core.hello(None) else {
        unreachable!()
    };
    let accept: Accept = crate::handshake::answer(&rcfg, &hello, 1).unwrap();
    let clock = Clock::new(speed);
    core.on_accept(clock.now(), &accept).unwrap();
    let window = Duration::from_micros(accept.fec_window_us as u64);
    let session = &hello.session;
    let check = Arc::new(Mutex::new(PatternCheck::new(&subs)));
    let early = Arc::new(Mutex::new(0));
    let sink_ended = Arc::new(Mutex::new(false));
    let (to_net, ctl) = cb::bounded(64);
    let pool_bufs: Pool = Arc::new(ArrayQueue::new(INPUT_DEPTH + 64));
    let parts = PlayoutParts {
        name: name.into(),
        playout: Playout::new(&rcfg, session, window),
        sink: Box::new(Check {
            check: check.clone(),
            clock,
            early: early.clone(),
            panic_at,
            ended: sink_ended.clone(),
        }),
        concealers: vec![None],
        clock,
        to_net,
        wake_net: Arc::new(Notify::new()),
        pool: pool_bufs.clone(),
        shared: Arc::new(Shared::default()),
        input_depth: INPUT_DEPTH,
    };
    let (input, ended) = pool.attach(parts).unwrap();
    Fed {
        ingress: Ingress::new(
            session,
            rcfg.max_fec_blocks,
            fec_wait(&rcfg, session, window),
        ),
        core,
        source: PatternSource::new(&subs, None),
        input: Some(input),
        ended: Some(ended),
        clock,
        pool_bufs,
        check,
        early,
        sink_ended,
        ctl,
        reports: 0,
        credits: 0,
        eos: false,
    }
}

impl Fed {
    /// Send what is due now; end of stream once everything left.
    fn step(&mut self) {
        let now = self.clock.now();
        // Credits and reports go back to the sender, as over QUIC (the
        // last ones may come as the session ends).
        while let Ok(c) = self.ctl.try_recv() {
            self.reports += matches!(c, Control::Report(_)) as u32;
            self.credits += matches!(c, Control::Credit(_)) as u32;
            self.core.on_control(now, &c);
        }
        let Some(input) = &self.input else { return };
        self.core.poll(now, &mut self.source).unwrap();
        let bufs = &self.pool_bufs;
        while let Some(d) = self.core.poll_transmit() {
            self.ingress.on_datagram(now, d, &mut |meta, payload, via| {
                let mut buf = bufs
                    .pop()
                    .unwrap_or_else(|| vec![0u8; PAYLOAD_CAP].into_boxed_slice());
                buf[..payload.len()].copy_from_slice(payload);
                let m = ToPlayout::Packet(PacketMsg {
                    arrival: now,
                    meta: *meta,
                    via,
                    len: payload.len(),
                    buf,
                });
                // Full never happens here; disconnected once the session
                // ended, which the test checks by itself.
                if let Err(cb::TrySendError::Full(_)) = input.try_send(m) {
                    panic!("input full");
                }
            });
        }
        if self.core.is_finished() && !self.eos {
            self.eos = true;
            let _ = input.try_send(ToPlayout::End(self.core.end_of_stream()));
        }
    }
}

/// End the sink as a driver does (with the stats as published).
fn end_sink(fin: Finished) -> SessionEnd {
    let stats = fin.end.stats.clone();
    fin.end(stats)
}

/// Pace the feeders (the network side's arrivals) until every session ended.
fn run_all(fed: &mut [Fed]) -> Vec<SessionEnd> {
    let mut ends: Vec<Option<SessionEnd>> = fed.iter().map(|_| None).collect();
    let give_up = std::time::Instant::now() + Duration::from_secs(30);
    while ends.iter().any(Option::is_none) {
        for f in fed.iter_mut() {
            f.step();
        }
        for (f, e) in fed.iter_mut().zip(&mut ends) {
            if e.is_none()
                && let Some(rx) = &mut f.ended
                && let Ok(fin) = rx.rx.try_recv()
            {
                *e = Some(end_sink(fin));
                f.input = None;
                f.step();
            }
        }
        assert!(std::time::Instant::now() < give_up, "sessions did not end");
        // Pacing the live sources, not synchronisation.
        std::thread::sleep(Duration::from_micros(500));
    }
    ends.into_iter().map(Option::unwrap).collect()
}

#[test]
fn many_sessions_play_bit_exact_on_two_workers() {
    let pool = PlayoutPool::new(2).unwrap();
    let n = 24;
    let mut fed: Vec<Fed> = (0..n)
        .map(|i| session(&pool, &format!("s{i}"), 2.0, None))
        .collect();
    assert_eq!(pool.stats().sessions, n);
    assert!(
        pool.workers
            .iter()
            .all(|w| w.load.load(Ordering::Relaxed) == n / 2)
    );
    let ends = run_all(&mut fed);
    for (f, end) in fed.iter().zip(&ends) {
        assert!(!end.truncated, "{}", end.reason);
        assert_eq!(end.reason, "completed");
        assert!(*f.sink_ended.lock().unwrap(), "sink end called");
        let c = f.check.lock().unwrap().counts(0);
        assert_eq!(c.samples, 96_000, "every sample played once");
        assert_eq!((c.corrupt_frames, c.out_of_order), (0, 0));
        assert_eq!(*f.early.lock().unwrap(), 0, "no frame before its instant");
        assert_eq!(end.stats.substreams[0].frames.played, 200);
        assert!(end.stats.packets.received > 0);
        assert!(f.reports >= 1, "a report a second");
    }
    let s = pool.stats();
    assert_eq!(s.sessions, 0);
    // Served at most once a tick (200 ticks of 10 ms; a late wake-up plays
    // what is due in one serve), not once a packet (two and more a tick).
    assert!(s.serves < (n * 200 * 3 / 2) as u64, "{s:?}");
}

#[test]
fn file_mode_flow_control_and_reports_reach_the_sender() {
    let pool = PlayoutPool::new(1).unwrap();
    // Real time: the harness's control loop is a step, not a sped-up one.
    let file = Mode::File { fill_percent: 300 };
    let mut fed = vec![session_with(&pool, "file", 1.5, None, file, 1.0)];
    let ends = run_all(&mut fed);
    let end = &ends[0];
    assert!(!end.truncated, "{}", end.reason);
    // File mode paces the sender by credits (issue 15), no longer by
    // PAUSE/RESUME: they are issued and reach the sender.
    assert!(end.stats.flow.credits >= 1, "{:?}", end.stats.flow);
    assert!(fed[0].credits >= 1 && fed[0].core.stats().credits >= 1);
    assert!(fed[0].reports >= 1);
    let c = fed[0].check.lock().unwrap().counts(0);
    let f = end.stats.substreams[0].frames;
    assert_eq!((f.overruns, f.underruns), (0, 0), "{f:?}");
    assert_eq!(
        (c.samples, c.missing_samples, c.corrupt_frames),
        (72_000, 0, 0)
    );
}

#[test]
fn stop_and_a_vanished_network_side_end_a_session_that_never_started() {
    let pool = PlayoutPool::new(1).unwrap();
    let mut a = session(&pool, "a", 1.0, None);
    let mut b = session(&pool, "b", 1.0, None);
    a.input
        .as_ref()
        .unwrap()
        .try_send(ToPlayout::Stop("bye now".into()))
        .ok()
        .unwrap();
    let end = end_sink(a.ended.take().unwrap().wait().unwrap());
    assert!(end.truncated);
    assert_eq!(end.reason, "bye now");
    assert!(*a.sink_ended.lock().unwrap());
    drop(b.input.take());
    let end = end_sink(b.ended.take().unwrap().wait().unwrap());
    assert!(end.truncated);
    assert_eq!(end.reason, "the network side went away");
}

#[test]
fn a_panicking_sink_ends_only_its_own_session() {
    let pool = PlayoutPool::new(1).unwrap();
    let mut fed = vec![
        session(&pool, "bad", 1.0, Some(5)),
        session(&pool, "good", 1.0, None),
    ];
    let ends = run_all(&mut fed);
    assert!(ends[0].truncated);
    assert!(ends[0].reason.contains("panicked"), "{}", ends[0].reason);
    assert!(!ends[1].truncated, "{}", ends[1].reason);
    assert_eq!(fed[1].check.lock().unwrap().counts(0).samples, 48_000);
}

#[test]
fn dropping_the_pool_finishes_its_sessions() {
    let pool = PlayoutPool::new(2).unwrap();
    let mut f = session(&pool, "left", 5.0, None);
    f.step();
    drop(pool);
    let end = end_sink(f.ended.take().unwrap().wait().unwrap());
    assert!(end.truncated);
    assert_eq!(end.reason, "the playout pool stopped");
    assert!(*f.sink_ended.lock().unwrap());
}
