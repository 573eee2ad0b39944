//! The library as a new user meets it: the top-level API, the pull sink,
//! the examples, the build profile advice.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use isochron::{
    Accept, Admission, Encoding, Fingerprint, Frame, Identity, Mode, PlayedFrame, PullReceiver,
    Pulled, Rate, ReceivedFrame, Receiver, ReceiverEvent, ReceiverOptions, Recovery, Report,
    Sender, SenderOptions, SenderReport, SessionEnd, SessionInfo, StreamFormat, SubstreamDesc,
    Trust, pull_channel,
};

fn stereo() -> StreamFormat {
    StreamFormat::new(Encoding::L16, 2, Rate::hz(48_000).unwrap()).unwrap()
}

/// Push `secs` of a tone at once (a live sender paces it in real time).
fn push_tone(tx: &Sender, format: StreamFormat, secs: f64) {
    let n = (48_000.0 * secs) as usize * format.channels as usize;
    let v: Vec<f32> = (0..n).map(|i| (i as f32 * 0.01).sin() * 0.3).collect();
    tx.push(0, Frame::from_f32(format, &v).unwrap().into_bytes())
        .unwrap();
}

fn ended(rx: &Receiver) -> (SessionInfo, SessionEnd) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.events().recv_timeout(left).expect("a session ends") {
            ReceiverEvent::Ended { info, end } => return (info, *end),
            ReceiverEvent::Refused { reason, .. } => panic!("refused: {reason}"),
            ReceiverEvent::Started(_) => {}
        }
    }
}

/// The order: the application reads nothing until `finish` has
/// returned, with far fewer slots than frames. The session must still end
/// on time and completed, with the drops counted where the application can
/// read them after handing the sink over.
#[test]
fn a_pull_sink_the_application_does_not_read_never_stalls_the_session() {
    let (rx, frames, opts) = paired("127.0.0.1:0", 4);
    let format = stereo();
    let started = Instant::now();
    let tx = Sender::connect(opts, vec![SubstreamDesc::audio(0, "a.wav", format)]).unwrap();
    push_tone(&tx, format, 1.0);
    let report: SenderReport = tx.finish().unwrap();
    let took = started.elapsed();
    assert!(report.completed, "{report:?}");
    // 1 s of media, 80 ms of latency: nowhere near the 30 s linger.
    assert!(took < Duration::from_secs(10), "finish took {took:?}");
    let (_, end) = ended(&rx);
    assert!(!end.truncated, "{}", end.reason);
    assert_eq!(end.stats.substreams[0].frames.played, 100);
    assert_eq!(end.sink_dropped, 96, "100 frames, 4 slots");
    assert_eq!(frames.dropped(), 96, "readable after hand-over");
    let pulled: Vec<Pulled> = frames.iter().collect();
    assert_eq!(pulled.len(), 5, "four frames and the end");
    let firsts: Vec<u64> = pulled
        .iter()
        .filter_map(|p| match p {
            Pulled::Frame(f) => Some(f.frame),
            Pulled::End(_) => None,
        })
        .collect();
    assert_eq!(firsts, [0, 1, 2, 3], "the oldest frames are kept");
    match pulled.last() {
        Some(Pulled::End(e)) => {
            assert!(!e.truncated);
            assert_eq!(e.sink_dropped, 96);
        }
        other => panic!("expected the end, got {other:?}"),
    }
}

/// A receiver on every interface reports `0.0.0.0:PORT`; dialling that is
/// dialling this host (the README snippet's first failure).
#[test]
fn a_sender_reaches_a_receiver_listening_on_every_interface() {
    let (rx, frames, opts) = paired("0.0.0.0:0", 64);
    assert!(rx.local_addr().ip().is_unspecified());
    let format = stereo();
    let desc = SubstreamDesc::audio(0, "a.wav", format).with_length(4_800);
    let tx = Sender::connect(opts, vec![desc]).expect("dials this host");
    push_tone(&tx, format, 0.1);
    assert!(tx.finish().unwrap().completed);
    let samples: usize = frames
        .iter()
        .map(|p| match p {
            Pulled::Frame(f) => f.data.len() / format.stride(),
            Pulled::End(_) => 0,
        })
        .sum();
    assert_eq!(samples, 4_800);
}

/// Every type an application handles is reachable (and documented) at
/// the top level.
#[test]
fn the_types_an_application_handles_are_at_the_top_level() {
    fn accept_of(i: &SessionInfo) -> Accept {
        i.accept
    }
    fn deadline(f: &ReceivedFrame) -> isochron::engine::Time {
        f.deadline
    }
    fn index(f: &PlayedFrame<'_>) -> usize {
        f.index
    }
    fn received(r: &Report) -> u64 {
        r.received
    }
    let _ = (accept_of, deadline, index, received);
    let fp: Fingerprint = format!("sha256:{}", "ab".repeat(32)).parse().unwrap();
    assert!(fp.to_string().starts_with("sha256:"));
    assert_eq!(
        Mode::default(),
        Mode::Live,
        "the library's documented default"
    );
    assert_eq!(Mode::file(2.0), Mode::File { fill_percent: 200 });
    assert_eq!(
        Mode::file(1000.0),
        Mode::File {
            fill_percent: 10_000
        }
    );
    assert_eq!(isochron::SenderConfig::default().mode, Mode::default());
}

/// The README and the crate documentation give the profile override the
/// engine's warning names.
#[test]
fn the_profile_override_is_documented_where_users_look() {
    let advice = isochron::engine::build_profile::PROFILE_OVERRIDE;
    let readme = include_str!("../README.md");
    let lib = include_str!("../src/lib.rs")
        .replace("//! ", "")
        .replace("//!", "");
    assert!(readme.contains(advice), "README lacks:\n{advice}");
    assert!(lib.contains(advice), "crate docs lack:\n{advice}");
}

/// `receive_wav` listens where it is told (here a loopback address other
/// than 127.0.0.1), and `send_tone` reaches it by name.
#[test]
fn receive_wav_takes_its_address_and_send_tone_reaches_it() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("received");
    // Both ends as one user, in a config directory of the test's own.
    let config = tmp.path().join("config");
    let mut rx = Command::new(common::example("receive_wav"))
        .env("XDG_CONFIG_HOME", &config)
        .arg(&out)
        .arg("127.0.0.2:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(rx.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let (addr, fingerprint) = first.split_once(' ').expect("ADDR FINGERPRINT");
    assert!(addr.starts_with("127.0.0.2:"), "{first}");
    let port = addr.rsplit_once(':').unwrap().1;
    let sent = Command::new(common::example("send_tone"))
        .env("XDG_CONFIG_HOME", &config)
        .args([&format!("127.0.0.2:{port}"), fingerprint, "0.3"])
        .output()
        .unwrap();
    if !sent.status.success() {
        let _ = rx.kill();
        let _ = rx.wait();
        panic!("send_tone: {}", String::from_utf8_lossy(&sent.stderr));
    }
    // It exits by itself once the session has ended.
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let _ = rx.wait();
    assert!(
        rest.iter().any(|l| l.contains("tone.wav")),
        "receive_wav wrote no tone: {rest:?}"
    );
}

/// The statistics the sink is handed at the end are the ones the
/// receiver's `Ended` event reports: network counters included.
#[test]
fn the_sink_and_the_ended_event_see_one_snapshot() {
    let (rx, frames, mut opts) = paired("127.0.0.1:0", 256);
    // FEC from the first packet (hybrid waits for a loss report): repairs
    // must be counted too.
    opts.config.recovery = Recovery::Fec;
    let format = stereo();
    let tx = Sender::connect(opts, vec![SubstreamDesc::audio(0, "a.wav", format)]).unwrap();
    push_tone(&tx, format, 0.5);
    let report = tx.finish().unwrap();
    assert!(report.completed);
    let (_, event) = ended(&rx);
    let sink_end = frames
        .iter()
        .find_map(|p| match p {
            Pulled::End(e) => Some(e),
            Pulled::Frame(_) => None,
        })
        .expect("the end");
    let s = &event.stats;
    assert!(s.datagrams > 0 && s.fec.repair_received > 0, "{s:?}");
    assert_eq!(
        s.datagrams,
        report.stats.source_packets + report.stats.repair_packets,
        "every datagram counted (loopback loses none)"
    );
    assert_eq!(sink_end.stats, event.stats);
}

/// A receiver on `listen` that admits one sender, whose one session plays
/// into a pull sink of `slots` frames, and that sender's options (pinned
/// to the receiver, one identity on both ends).
fn paired(listen: &str, slots: usize) -> (Receiver, PullReceiver, SenderOptions) {
    let identity = Identity::ephemeral().unwrap();
    let (sink, frames) = pull_channel(slots);
    let mut sink = Some(sink);
    let rx = Receiver::start(
        ReceiverOptions::new(
            listen.parse().unwrap(),
            Admission::only([identity.fingerprint()]),
        ),
        &identity,
        move |_| Ok(Box::new(sink.take().ok_or("one session")?)),
    )
    .unwrap();
    let opts = SenderOptions::new(
        rx.local_addr(),
        Trust::Pinned(vec![rx.fingerprint()]),
        identity,
    );
    (rx, frames, opts)
}

fn pull_receiver() -> (Receiver, PullReceiver) {
    let identity = Identity::ephemeral().unwrap();
    let (sink, frames) = pull_channel(1024);
    let mut sink = Some(sink);
    let rx = Receiver::start(common::receiver_options(), &identity, move |_| {
        Ok(Box::new(sink.take().ok_or("one session")?))
    })
    .unwrap();
    (rx, frames)
}

/// The live sender that starts pushing 0.3 s after connecting: the
/// media clock starts with the first push, so nothing expires, FEC stays
/// on and every frame plays.
#[test]
fn a_live_push_that_starts_after_connect_is_played_whole() {
    let (rx, _frames) = pull_receiver();
    let format = stereo();
    let mut opts = common::sender_options(rx.local_addr(), &rx);
    // FEC alone protects from the first packet (hybrid on a clean
    // loopback sends none): it must stay on.
    opts.config.recovery = Recovery::Fec;
    let tx = Sender::connect(opts, vec![SubstreamDesc::audio(0, "a.wav", format)]).unwrap();
    // The application gets going late (the scenario, not synchronisation).
    std::thread::sleep(Duration::from_millis(300));
    push_tone(&tx, format, 1.0);
    let report = tx.finish().unwrap();
    assert!(report.completed, "{report:?}");
    let s = report.stats;
    assert_eq!((s.late_frames, s.dropped_expired), (0, 0), "{s:?}");
    assert!(s.repair_packets > 0, "{s:?}");
    let (_, end) = ended(&rx);
    let st = &end.stats;
    assert_eq!(st.substreams[0].frames.played, 100);
    assert_eq!(st.substreams[0].frames.concealed, 0, "{st:?}");
    assert_eq!(st.packets.unrecovered, 0, "{st:?}");
}

/// An application that stalls for longer than the latency hears about it
/// from the push that brings the late media.
#[test]
fn a_push_later_than_the_latency_is_an_error_the_app_sees() {
    let (rx, _frames) = pull_receiver();
    let format = stereo();
    let opts = common::sender_options(rx.local_addr(), &rx);
    let tx = Sender::connect(opts, vec![SubstreamDesc::audio(0, "a.wav", format)]).unwrap();
    push_tone(&tx, format, 0.2); // frames 0..20; the clock starts here
    // The application stalls for half a second (the scenario).
    std::thread::sleep(Duration::from_millis(500));
    let samples: Vec<f32> = vec![0.0; 9_600 * 2];
    let late = tx.push(0, Frame::from_f32(format, &samples).unwrap().into_bytes());
    match late {
        // Frames 20..40 were due by 200..400 ms + 80 ms of latency.
        Err(isochron::TransportError::Late { frames, .. }) => assert_eq!(frames, 20),
        other => panic!("expected a late push, got {other:?}"),
    }
    let report = tx.finish().unwrap();
    assert!(report.stats.late_frames >= 20, "{:?}", report.stats);
    let (_, end) = ended(&rx);
    let frames = end.stats.substreams[0].frames;
    assert_eq!(frames.played, 40, "the timeline is kept");
    assert!(frames.concealed >= 20, "{frames:?}");
}
