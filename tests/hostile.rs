//! Hostile peers against a default receiver over real QUIC on loopback
//! (issue #10): each attack is sent exactly as reproduced, beside an honest
//! live sender that must still arrive bit-exact, with the process's RSS
//! bounded. The attacker connects from 127.0.0.2 (another source address,
//! as a remote attacker would be), with an admitted identity: these are the
//! limits that hold after authentication.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{CheckSink, feed_pattern, ms, stereo48k, with_length};
use isochron::engine::catalog::SubstreamDesc;
use isochron::engine::net::quic::control_stream::{self, ControlReader};
use isochron::engine::net::quic::transport;
use isochron::engine::net::{Identity, Receiver, ReceiverEvent, Sender, tls};
use isochron::engine::wire::control::{
    CONTROL_VERSION, Control, EndOfStream, FecParams, Hello, Mode, RejectReason, SessionDesc,
    SubstreamTotals,
};
use isochron::engine::wire::packet::BlockPos;

/// A receiver whose sessions each get a [`CheckSink`], by session name.
struct Arena {
    rx: Receiver,
    sinks: Arc<Mutex<Vec<(String, CheckSink)>>>,
    /// Sessions that ended while the test waited for another one.
    ended: Mutex<Vec<(String, Box<isochron::engine::net::SessionEnd>)>>,
}

fn arena() -> Arena {
    let identity = Identity::ephemeral().unwrap();
    let mut opts = common::receiver_options();
    // What a default receiver allows, but concealment given up sooner so
    // the test need not wait the default 10 s.
    opts.limits.max_concealed = Duration::from_secs(2);
    let sinks = Arc::new(Mutex::new(Vec::new()));
    let s = sinks.clone();
    let rx = Receiver::start(opts, &identity, move |info| {
        let sink = CheckSink::new(&info.session.substreams);
        s.lock()
            .unwrap()
            .push((info.session.name.clone(), sink.clone()));
        Ok(Box::new(sink))
    })
    .unwrap();
    Arena {
        rx,
        sinks,
        ended: Mutex::new(Vec::new()),
    }
}

/// The honest live sender: `seconds` of stereo at 48 kHz, started now.
fn honest(a: &Arena, seconds: f64) -> std::thread::JoinHandle<()> {
    let mut opts = common::sender_options(a.rx.local_addr(), &a.rx);
    opts.name = "honest".into();
    std::thread::spawn(move || {
        let subs = with_length(&[stereo48k(0, ms(10))], seconds);
        let mut tx = Sender::connect(opts, subs.clone()).expect("the honest sender is admitted");
        feed_pattern(&mut tx, &subs);
        let r = tx.wait().expect("the honest sender completes");
        assert!(r.completed, "{r:?}");
    })
}

impl Arena {
    /// Wait for the honest session's end (the events of others pass by) and
    /// check it arrived whole and bit-exact.
    fn honest_arrived_whole(&self, seconds: f64) {
        let end = self.ended("honest", Duration::from_secs(60));
        assert!(!end.truncated, "honest session: {}", end.reason);
        assert_eq!(end.stats.packets.unrecovered, 0, "{:?}", end.stats.packets);
        let sinks = self.sinks.lock().unwrap();
        let (_, sink) = sinks.iter().find(|(n, _)| n == "honest").unwrap();
        let c = sink.check.lock().unwrap().counts(0);
        let want = (48_000.0 * seconds).round() as u64;
        assert_eq!(
            (
                c.samples,
                c.missing_samples,
                c.corrupt_frames,
                c.out_of_order
            ),
            (want, 0, 0, 0),
            "the honest stream arrived bit-exact"
        );
    }

    /// The next end of a session named `name`, within `within`.
    /// (Others that end meanwhile are kept for their own wait.)
    fn ended(&self, name: &str, within: Duration) -> Box<isochron::engine::net::SessionEnd> {
        let mut kept = self.ended.lock().unwrap();
        if let Some(i) = kept.iter().position(|(n, _)| n == name) {
            return kept.remove(i).1;
        }
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.events().recv_timeout(left) {
                Ok(ReceiverEvent::Ended { info, end }) if info.session.name == name => return end,
                Ok(ReceiverEvent::Ended { info, end }) => kept.push((info.session.name, end)),
                Ok(_) => {}
                Err(e) => panic!("{name} did not end within {within:?}: {e}"),
            }
        }
    }
}

/// A peer that speaks the protocol by hand, from 127.0.0.2.
struct Hostile {
    rt: tokio::runtime::Runtime,
    endpoint: quinn::Endpoint,
    to: SocketAddr,
}

fn hostile(a: &Arena) -> Hostile {
    hostile_to(a.rx.local_addr(), a.rx.fingerprint(), "127.0.0.2:0".into())
}

/// An open session of a [`Hostile`] peer (or its refusal).
struct Open {
    conn: quinn::Connection,
    send: quinn::SendStream,
    answer: Option<Control>,
}

impl Hostile {
    fn connect(&self) -> quinn::Connection {
        self.try_connect().expect("the TLS handshake completes")
    }

    /// A connection, unless the receiver refuses it (its handshake limits).
    fn try_connect(&self) -> Option<quinn::Connection> {
        self.rt
            .block_on(async { self.endpoint.connect(self.to, "isochron").ok()?.await.ok() })
    }

    /// Send `msgs` (the hello first) in one write and read the answer.
    fn open(&self, msgs: &[Control]) -> Open {
        let conn = self.connect();
        self.rt.block_on(async {
            let (mut send, recv) = conn.open_bi().await.unwrap();
            let bytes: Vec<u8> = msgs.iter().flat_map(|m| m.to_frame()).collect();
            send.write_all(&bytes).await.unwrap();
            let mut reader = ControlReader::new(recv);
            let answer = reader.next(Duration::from_secs(10)).await.ok().flatten();
            Open { conn, send, answer }
        })
    }

    fn datagram(&self, o: &Open, bytes: Vec<u8>) {
        let _ = o.conn.send_datagram(bytes.into());
    }

    fn control(&self, o: &mut Open, m: &Control) {
        self.rt
            .block_on(control_stream::send(&mut o.send, m))
            .unwrap();
    }
}

fn hello(name: &str, mode: Mode, speed: f64, fec: FecParams, subs: Vec<SubstreamDesc>) -> Control {
    Control::Hello(Hello {
        version: CONTROL_VERSION,
        token: None,
        session: SessionDesc {
            name: name.into(),
            mode,
            speed,
            fec,
            substreams: subs,
            recovery: Default::default(),
        },
    })
}

const NO_FEC: FecParams = FecParams {
    k: 1,
    m: 0,
    depth: 1,
    window_us: 0,
    auto_depth: false,
};

fn live(name: &str, subs: Vec<SubstreamDesc>) -> Control {
    hello(name, Mode::Live, 1.0, NO_FEC, subs)
}

/// A source packet of substream 0 (stereo 48 kHz, 10 ms frames), alone in
/// its block.
fn source(seq: u32, frame: u64, sender_ts: u64) -> Vec<u8> {
    let pos = BlockPos {
        block: 0,
        index: 0,
        k: 1,
        m: 0,
    };
    common::stereo_source(seq, frame, sender_ts, pos, 0x55)
}

/// The `i`th datagram of items 4 and 5: sequence numbers jumping by 2^31
/// and sender timestamps over 2^63.
fn wild_numbers(i: u32) -> Vec<u8> {
    let seq = i.wrapping_mul(1 << 31).wrapping_add(i);
    source(seq, i as u64, u64::MAX - i as u64)
}

/// Item 13: an end of stream of u64::MAX packets, frames and samples.
fn endless_eos() -> Control {
    Control::EndOfStream(EndOfStream {
        totals: vec![SubstreamTotals {
            id: 0,
            packets: u64::MAX,
            frames: u64::MAX,
            samples: u64::MAX,
        }],
        repair_packets: 0,
    })
}

/// Item 2: a file-mode hello asking for a FEC window of u32::MAX x depth 64.
fn huge_window(name: &str) -> Control {
    hello(
        name,
        Mode::file(2.0),
        1.0,
        FecParams {
            k: 16,
            m: 4,
            depth: 64,
            window_us: u32::MAX,
            auto_depth: false,
        },
        vec![stereo48k(0, Duration::from_micros(250))],
    )
}

fn refused_with(o: &Open, reason: RejectReason) -> String {
    match &o.answer {
        Some(Control::Reject(r)) if r.reason == reason => r.message.clone(),
        other => panic!("expected a {reason:?} reject, got {other:?}"),
    }
}

// Each attack, alone, beside the honest sender.

/// Item 1: a catalog length of u64::MAX hung the receiver's network thread.
#[test]
fn a_catalog_length_of_u64_max_is_refused_at_once() {
    let a = arena();
    let h = hostile(&a);
    let honest_tx = honest(&a, 1.0);
    let mut d = stereo48k(0, ms(10));
    for len in [u64::MAX, 1 << 60] {
        d.length = Some(len);
        // Refused: with a reject, or (as a hello no valid sender makes) by
        // closing the connection; never accepted, and at once.
        let started = Instant::now();
        let o = h.open(&[live("long", vec![d.clone()])]);
        assert!(
            !matches!(o.answer, Some(Control::Accept(_))),
            "{:?}",
            o.answer
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    honest_tx.join().unwrap();
    a.honest_arrived_whole(1.0);
}

/// Items 2 and 3: peers chose the receiver's buffer sizes (a file-mode FEC
/// window of u32::MAX x depth 64 aborted the process; a 100 s window x
/// depth 4 cost 387 MB; 256 substreams of 256 KiB frames 8 GiB).
#[test]
fn hellos_asking_for_huge_buffers_are_refused_with_the_limit_named() {
    let a = arena();
    let h = hostile(&a);
    let before = common::rss();
    let honest_tx = honest(&a, 1.5);
    let file = Mode::file(2.0);
    let o = h.open(&[huge_window("window")]);
    let why = refused_with(&o, RejectReason::Latency);
    assert!(why.contains("FEC window"), "{why}");
    for _ in 0..8 {
        let o = h.open(&[hello(
            "deep",
            file,
            1.0,
            FecParams {
                k: 16,
                m: 4,
                depth: 4,
                window_us: 100_000_000,
                auto_depth: false,
            },
            vec![stereo48k(0, ms(10))],
        )]);
        assert!(
            matches!(&o.answer, Some(Control::Reject(_))),
            "{:?}",
            o.answer
        );
    }
    // 256 substreams of the largest frames: over the per-session limit.
    let wide: Vec<SubstreamDesc> = (0..256).map(|i| stereo48k(i, ms(10))).collect();
    let o = h.open(&[live("wide", wide)]);
    let why = refused_with(&o, RejectReason::Limit);
    assert!(why.contains("(session_memory)"), "{why}");
    honest_tx.join().unwrap();
    a.honest_arrived_whole(1.5);
    let grew = common::rss().saturating_sub(before);
    assert!(grew < 128 << 20, "RSS grew by {} MiB", grew >> 20);
}

/// Item 7: a speed factor of 1000 wrote concealment at 1000x real time.
#[test]
fn a_speed_factor_over_the_limit_is_refused() {
    let a = arena();
    let h = hostile(&a);
    let o = h.open(&[hello(
        "fast",
        Mode::Live,
        1000.0,
        NO_FEC,
        vec![stereo48k(0, ms(10))],
    )]);
    let why = refused_with(&o, RejectReason::Limit);
    assert!(why.contains("(max_speed)"), "{why}");
}

/// Items 4, 5, 7 and 13: sequence numbers jumping by 2^31 (4 s of CPU
/// each), sender timestamps over 2^63 (an overflow), an end of stream of
/// u64::MAX samples (pinned the playout for ever) and media that never
/// comes (concealment without end): the session ends, the honest one
/// arrives.
#[test]
fn hostile_numbers_in_a_session_cost_bounded_work() {
    let a = arena();
    let h = hostile(&a);
    let honest_tx = honest(&a, 1.5);
    let mut o = h.open(&[live("numbers", vec![stereo48k(0, ms(10))])]);
    assert!(
        matches!(o.answer, Some(Control::Accept(_))),
        "{:?}",
        o.answer
    );
    let started = Instant::now();
    for i in 0..200u32 {
        h.datagram(&o, wild_numbers(i));
    }
    h.control(&mut o, &endless_eos());
    // Concealment stops at max_concealed (2 s here), not never.
    let end = a.ended("numbers", Duration::from_secs(30));
    assert!(end.truncated, "{}", end.reason);
    assert!(started.elapsed() < Duration::from_secs(20));
    honest_tx.join().unwrap();
    a.honest_arrived_whole(1.5);
}

/// Item 6: connections that never finish their handshake locked honest
/// senders out; sessions that never send media lived for ever.
#[test]
fn half_open_and_silent_connections_do_not_lock_honest_senders_out() {
    let a = arena();
    let h = hostile(&a);
    // Connections that complete TLS and then say nothing: past the
    // per-source handshake limit, the rest are refused at once.
    // A session accepted and then silent (keep-alives only).
    let silent = h.open(&[live("silent", vec![stereo48k(0, ms(10))])]);
    assert!(matches!(silent.answer, Some(Control::Accept(_))));
    let idle: Vec<quinn::Connection> = (0..24).filter_map(|_| h.try_connect()).collect();
    assert!(
        idle.len() < 24,
        "the per-source handshake limit refused some"
    );
    let honest_tx = honest(&a, 1.0);
    honest_tx.join().unwrap();
    a.honest_arrived_whole(1.0);
    let end = a.ended("silent", Duration::from_secs(30));
    assert!(end.reason.contains("idle"), "{}", end.reason);
    // The half-open ones were dropped at the handshake deadline.
    let closed = h.rt.block_on(async {
        let mut n = 0;
        for c in &idle {
            if tokio::time::timeout(Duration::from_secs(15), c.closed())
                .await
                .is_ok()
            {
                n += 1;
            }
        }
        n
    });
    assert_eq!(closed, idle.len(), "every half-open connection closed");
}

/// Item 15: a message in the same read as the hello was left until the
/// next read; an end of stream sent with the hello ends the session now.
#[test]
fn an_end_of_stream_sent_with_the_hello_is_applied() {
    let a = arena();
    let h = hostile(&a);
    let mut d = stereo48k(0, ms(10));
    d.length = Some(0);
    let eos = Control::EndOfStream(EndOfStream {
        totals: vec![SubstreamTotals {
            id: 0,
            packets: 0,
            frames: 0,
            samples: 0,
        }],
        repair_packets: 0,
    });
    let started = Instant::now();
    let o = h.open(&[live("at-once", vec![d]), eos]);
    assert!(
        matches!(o.answer, Some(Control::Accept(_))),
        "{:?}",
        o.answer
    );
    let end = a.ended("at-once", Duration::from_secs(10));
    assert!(!end.truncated, "{}", end.reason);
    // Well before the idle timeout (5 s) would have ended it.
    assert!(started.elapsed() < Duration::from_secs(4));
}

/// Items 1-7, 13 and 15 at once from one process, beside the honest live
/// sender: it arrives bit-exact and the receiver's process stays under
/// 256 MiB of RSS.
#[test]
fn all_attacks_at_once_leave_the_honest_sender_whole_within_256_mib() {
    let a = arena();
    let honest_tx = honest(&a, 3.0);
    let to = a.rx.local_addr();
    let fp = a.rx.fingerprint();
    let attackers: Vec<_> = (0..4)
        .map(|who| {
            std::thread::spawn(move || {
                // Each from its own address: the per-source limits are
                // each attacker's, and the totals hold them all.
                let h = hostile_to(to, fp, format!("127.0.0.{}:0", 10 + who));
                attack(&h, who);
            })
        })
        .collect();
    let mut peak = 0;
    while !honest_tx.is_finished() {
        peak = peak.max(common::rss());
        std::thread::sleep(Duration::from_millis(50));
    }
    honest_tx.join().unwrap();
    for t in attackers {
        t.join().unwrap();
    }
    peak = peak.max(common::rss());
    a.honest_arrived_whole(3.0);
    assert!(peak < 256 << 20, "peak RSS {} MiB", peak >> 20);
}

fn hostile_to(to: SocketAddr, fp: isochron::engine::net::Fingerprint, from: String) -> Hostile {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let trust = tls::Trust::Pinned(vec![fp]);
    let transport = Arc::new(transport::config(Duration::from_secs(30)));
    let (client, _) = tls::client_config(&trust, common::sender_identity(), transport).unwrap();
    let endpoint = rt.block_on(async {
        let mut e = quinn::Endpoint::client(from.parse().unwrap()).unwrap();
        e.set_default_client_config(client);
        e
    });
    Hostile { rt, endpoint, to }
}

/// One attacker's share of everything.
fn attack(h: &Hostile, who: u16) {
    let mut d = stereo48k(0, ms(10));
    d.length = Some(u64::MAX);
    let _ = h.open(&[live("long", vec![d])]);
    let _ = h.open(&[huge_window("deep")]);
    let _ = h.open(&[hello(
        "fast",
        Mode::Live,
        1000.0,
        NO_FEC,
        vec![stereo48k(0, ms(10))],
    )]);
    let mut o = h.open(&[live(&format!("numbers-{who}"), vec![stereo48k(0, ms(10))])]);
    for i in 0..300u32 {
        h.datagram(&o, wild_numbers(i));
        // Garbage as well.
        h.datagram(&o, vec![0xffu8; 64 + (i as usize % 1200)]);
    }
    if matches!(o.answer, Some(Control::Accept(_))) {
        h.control(&mut o, &endless_eos());
    }
    // Half-open connections last (they hold this source's handshakes).
    let idle: Vec<_> = (0..20).filter_map(|_| h.try_connect()).collect();
    drop(idle);
}
