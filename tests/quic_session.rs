//! Real QUIC on 127.0.0.1: secure sessions, the control protocol, water-mark
//! flow control, the playout thread, file output.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{CheckSink, feed_pattern, ms, sensor200, stereo48k, with_length};
use isochron::engine::catalog::SubstreamDesc;
use isochron::engine::config::ReceiverConfig;
use isochron::engine::net::{
    Identity, Receiver, ReceiverEvent, Sender, SenderOptions, SessionEnd, TransportError, Trust,
};
use isochron::engine::wire::control::{Mode, RejectReason};

/// A receiver whose sessions each get a [`CheckSink`] (kept for the test).
fn check_receiver(
    cfg: ReceiverConfig,
) -> (Receiver, Arc<Mutex<Vec<CheckSink>>>, Vec<SubstreamDesc>) {
    let mut opts = common::receiver_options();
    opts.config = cfg;
    let (rx, sinks) = common::checked_receiver(opts);
    (rx, sinks, Vec::new())
}

fn pinned(rx: &Receiver) -> SenderOptions {
    common::sender_options(rx.local_addr(), rx)
}

/// The next session end (or refusal) the receiver reports.
fn next_end(rx: &Receiver) -> SessionEnd {
    common::next_end(rx, Duration::from_secs(30))
}

fn next_refusal(rx: &Receiver) -> String {
    match rx
        .events()
        .recv_timeout(Duration::from_secs(10))
        .expect("an event")
    {
        ReceiverEvent::Refused { reason, .. } => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn five_seconds_of_stereo_arrive_bit_exact() {
    let (rx, sinks, _) = check_receiver(ReceiverConfig::default());
    let subs = with_length(&[stereo48k(0, ms(10)), sensor200(1, ms(10))], 5.0);
    let mut tx = Sender::connect(pinned(&rx), subs.clone()).unwrap();
    feed_pattern(&mut tx, &subs);
    let report = tx.wait().unwrap();
    assert!(report.completed, "{report:?}");
    let end = next_end(&rx);
    assert!(!end.truncated, "{}", end.reason);
    let check = sinks.lock().unwrap()[0].check.lock().unwrap().counts(0);
    assert_eq!(check.samples, 48_000 * 5, "sample count equal");
    assert_eq!(
        (
            check.missing_samples,
            check.corrupt_frames,
            check.out_of_order
        ),
        (0, 0, 0)
    );
    let sensor = sinks.lock().unwrap()[0].check.lock().unwrap().counts(1);
    assert_eq!((sensor.samples, sensor.missing_samples), (1000, 0));
    assert_eq!(end.stats.packets.unrecovered, 0);
    assert_eq!(end.stats.packets.expected, report.stats.source_packets);
}

#[test]
fn two_senders_at_once_both_arrive_whole() {
    let (rx, sinks, _) = check_receiver(ReceiverConfig::default());
    let run = |id: u16| {
        let subs = with_length(&[stereo48k(id, ms(10))], 3.0);
        let mut tx = Sender::connect(pinned(&rx), subs.clone()).unwrap();
        feed_pattern(&mut tx, &subs);
        tx
    };
    let a = run(7);
    let b = run(9);
    let (ra, rb) = (a.wait().unwrap(), b.wait().unwrap());
    assert!(ra.completed && rb.completed);
    let ends = [next_end(&rx), next_end(&rx)];
    assert!(ends.iter().all(|e| !e.truncated));
    let sinks = sinks.lock().unwrap();
    assert_eq!(sinks.len(), 2);
    for s in sinks.iter() {
        let c = s.check.lock().unwrap().counts(0);
        assert_eq!(
            (c.samples, c.missing_samples, c.corrupt_frames),
            (144_000, 0, 0)
        );
    }
}

#[test]
fn wrong_fingerprint_is_refused_on_both_ends_and_nothing_is_written() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().to_path_buf();
    let identity = Identity::ephemeral().unwrap();
    let other = Identity::ephemeral().unwrap();
    let rx = common::file_receiver(common::receiver_options(), &identity, &dir);
    let subs = with_length(&[stereo48k(0, ms(10))], 1.0);
    let mut opts = pinned(&rx);
    opts.trust = Trust::Pinned(vec![other.fingerprint()]);
    let err = Sender::connect(opts, subs).err().expect("refused");
    let msg = err.to_string();
    assert!(matches!(err, TransportError::Handshake { .. }), "{msg}");
    assert!(
        msg.contains(&identity.fingerprint().to_string()),
        "names what was presented: {msg}"
    );
    assert!(
        msg.contains(&other.fingerprint().to_string()),
        "names what was pinned: {msg}"
    );
    let reason = next_refusal(&rx);
    assert!(reason.to_lowercase().contains("certificate"), "{reason}");
    assert_eq!(
        std::fs::read_dir(out.path()).unwrap().count(),
        0,
        "nothing written"
    );
}

#[test]
fn wrong_token_is_refused_with_the_reason_and_nothing_is_written() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().to_path_buf();
    let identity = Identity::ephemeral().unwrap();
    let mut ropts = common::receiver_options();
    ropts.config.token = Some("open sesame".into());
    let rx = common::file_receiver(ropts, &identity, &dir);
    let subs = with_length(&[stereo48k(0, ms(10))], 1.0);
    for token in [None, Some("guess".to_string())] {
        let mut opts = pinned(&rx);
        opts.token = token;
        match Sender::connect(opts, subs.clone()) {
            Err(TransportError::Rejected { reason, message }) => {
                assert_eq!(reason, RejectReason::Token);
                assert!(message.contains("token"), "{message}");
            }
            other => panic!("expected a token rejection, got {:?}", other.err()),
        }
        assert!(next_refusal(&rx).contains("token"));
    }
    assert_eq!(
        std::fs::read_dir(out.path()).unwrap().count(),
        0,
        "nothing written"
    );
}

#[test]
fn file_mode_follows_its_credits_between_the_floor_and_the_lead() {
    let cfg = ReceiverConfig {
        low_water: ms(40),
        high_water: ms(160),
        ..Default::default()
    };
    let (rx, sinks, _) = check_receiver(cfg);
    let subs = with_length(&[stereo48k(0, ms(10))], 6.0);
    let mut opts = pinned(&rx);
    opts.config.mode = Mode::File { fill_percent: 200 };
    let mut tx = Sender::connect(opts, subs.clone()).unwrap();
    feed_pattern(&mut tx, &subs);
    // Sample the buffer level from the stats while the sender still has media.
    let total_frames = 600;
    let mut levels = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while tx.stats().frames(0) < total_frames && Instant::now() < deadline {
        if let Some((_, s)) = rx.sessions().into_iter().next()
            && s.substreams.first().is_some_and(|d| d.frames.played > 0)
        {
            levels.push((s.buffer_us as f64 / 1e3, s.flow));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let sent = tx.stats();
    let report = tx.wait().unwrap();
    assert!(report.completed);
    let end = next_end(&rx);
    let flow = end.stats.flow;
    // Ten credits a second, and every one read (loopback loses nothing).
    assert!(flow.credits >= 40, "{flow:?}");
    assert!(sent.credits + 2 >= flow.credits, "{sent:?} {flow:?}");
    assert_eq!((sent.pauses, sent.resumes), (0, 0));
    assert!(levels.len() > 50, "{} samples", levels.len());
    // Loopback: the floor is the FEC window (35 ms) + one 10 ms frame held
    // + one frame + 5 ms + a spread of scheduling noise (wide: a loaded
    // machine), then hybrid's three rounds of retransmission, each a round
    // trip + twice the spread + 1 ms (the spread the marks were set with
    // may be up to twice the one reported at the end); the lead is the
    // configured high mark. The buffer stays between them, within a frame
    // (and the start-up's assumption that the playout starts at once).
    assert_eq!(flow.retransmit_rounds, 3, "{flow:?}");
    let rounds = flow.retransmit_rounds;
    let least = 60_000 + rounds * (flow.rtt_us + 1_000);
    let most = 120_000 + rounds * (flow.rtt_us + 4 * flow.delay_spread_us + 1_000);
    assert!((least..=most).contains(&flow.floor_us), "{flow:?}");
    assert!(flow.lead_us >= 160_000, "{flow:?}");
    let (lo, hi) = levels
        .iter()
        .fold((f64::MAX, 0f64), |(a, b), &(l, _)| (a.min(l), b.max(l)));
    assert!(
        lo * 1e3 + 10_000.0 >= flow.floor_us as f64 && hi * 1e3 <= flow.lead_us as f64 + 20_000.0,
        "buffer ranged {lo}..{hi} ms over {} samples, {flow:?}",
        levels.len()
    );
    assert_eq!(end.stats.substreams[0].frames.underruns, 0);
    let c = sinks.lock().unwrap()[0].check.lock().unwrap().counts(0);
    assert_eq!(
        (c.samples, c.missing_samples, c.corrupt_frames),
        (288_000, 0, 0)
    );
}

#[test]
fn hostile_substream_names_stay_inside_the_output_directory() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("received");
    let identity = Identity::ephemeral().unwrap();
    let rx = common::file_receiver(common::receiver_options(), &identity, &dir);
    let mut subs = with_length(&[stereo48k(0, ms(10)), stereo48k(1, ms(10))], 0.5);
    subs[0].name = "../../escape.wav".into();
    subs[1].name = "/etc/passwd".into();
    let mut tx = Sender::connect(pinned(&rx), subs.clone()).unwrap();
    feed_pattern(&mut tx, &subs);
    assert!(tx.wait().unwrap().completed);
    let end = next_end(&rx);
    let names: Vec<_> = end.files.iter().map(|(p, _)| p.clone()).collect();
    assert_eq!(names, vec![dir.join("escape.wav"), dir.join("passwd.wav")]);
    assert!(!out.path().join("escape.wav").exists());
    // Nothing else appeared anywhere above the output directory.
    let above: Vec<_> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(above, vec![std::ffi::OsString::from("received")]);
}

#[test]
fn the_speed_factor_runs_a_live_session_faster_than_real_time() {
    let cfg = ReceiverConfig {
        latency: ms(200),
        high_water: ms(400),
        ..Default::default()
    };
    let (rx, sinks, _) = check_receiver(cfg);
    let subs = with_length(&[stereo48k(0, ms(10))], 8.0);
    let mut opts = pinned(&rx);
    opts.config.speed = 4.0;
    opts.config.mode = Mode::Live;
    let started = Instant::now();
    let mut tx = Sender::connect(opts, subs.clone()).unwrap();
    feed_pattern(&mut tx, &subs);
    assert!(tx.wait().unwrap().completed);
    let end = next_end(&rx);
    let took = started.elapsed();
    assert!(!end.truncated);
    assert!(
        took < Duration::from_secs(4),
        "8 s of media at 4x took {took:?}"
    );
    let c = sinks.lock().unwrap()[0].check.lock().unwrap().counts(0);
    assert_eq!(
        (c.samples, c.missing_samples, c.corrupt_frames),
        (384_000, 0, 0)
    );
}
