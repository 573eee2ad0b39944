//! Real QUIC through the impairment relay: loss and jitter, and a sender
//! that vanishes mid-stream.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{CheckSink, feed_pattern, ms, stereo48k, with_length};
use isochron::codecs::wav::WavReader;
use isochron::engine::net::relay::{RelayConfig, RelayHandle};
use isochron::engine::net::{Identity, Receiver, ReceiverEvent, Sender, SessionEnd};
use isochron::engine::sim::{Impairment, Loss};
use isochron::engine::wire::control::FecParams;

fn next_end(rx: &Receiver, within: Duration) -> SessionEnd {
    loop {
        match rx.events().recv_timeout(within).expect("the session ends") {
            ReceiverEvent::Ended { end, .. } => return *end,
            ReceiverEvent::Refused { reason, .. } => panic!("refused: {reason}"),
            ReceiverEvent::Started(_) => {}
        }
    }
}

#[test]
fn five_percent_loss_with_jitter_is_repaired() {
    let identity = Identity::ephemeral().unwrap();
    let sinks = Arc::new(Mutex::new(Vec::new()));
    let s = sinks.clone();
    let rx = Receiver::start(common::receiver_options(), &identity, move |info| {
        let sink = CheckSink::new(&info.session.substreams);
        s.lock().unwrap().push(sink.clone());
        Ok(Box::new(sink))
    })
    .unwrap();
    let link = Impairment {
        loss: Loss::from_mean(0.05, 1.0),
        delay: ms(20),
        jitter: ms(10),
        ..Default::default()
    };
    let relay = RelayHandle::start(RelayConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        upstream: rx.local_addr(),
        forward: link.clone(),
        backward: link,
        seed: 11,
    })
    .unwrap();
    let subs = with_length(&[stereo48k(0, ms(10))], 10.0);
    let mut opts = common::sender_options(relay.local_addr(), &rx);
    opts.config.fec = FecParams {
        k: 16,
        m: 4,
        depth: 1,
        window_us: 0, // the receiver picks it from its latency
        auto_depth: false,
    };
    let mut tx = Sender::connect(opts, subs.clone()).unwrap();
    feed_pattern(&mut tx, &subs);
    let sent = tx.wait().unwrap();
    assert!(sent.completed);
    let end = next_end(&rx, Duration::from_secs(30));
    assert!(!end.truncated);
    let p = end.stats.packets;
    eprintln!(
        "expected {} lost {} recovered {} (sent again {}) unrecovered {} late {}; redundancy {:.0} % (FEC {:.0} %); link {:?}",
        p.expected,
        p.lost,
        p.recovered,
        p.retransmitted,
        p.unrecovered,
        p.late,
        sent.stats.redundancy_ratio * 100.0,
        end.stats.fec_overhead_ratio * 100.0,
        relay.stats().forward
    );
    let loss = p.lost as f64 / p.expected as f64;
    assert!((0.03..0.07).contains(&loss), "the link lost {loss}");
    assert!(p.recovered > 50, "FEC rebuilt what was lost: {p:?}");
    assert!(
        p.unrecovered as f64 <= 1e-3 * p.expected as f64,
        "unrecovered {} of {}",
        p.unrecovered,
        p.expected
    );
    let c = sinks.lock().unwrap()[0].check.lock().unwrap().counts(0);
    assert_eq!(c.samples, 480_000, "sample count equal");
    assert_eq!((c.corrupt_frames, c.out_of_order), (0, 0));
    assert_eq!(
        end.stats.substreams[0].frames.concealed, c.concealed_frames,
        "concealment counted"
    );
}

#[test]
fn a_vanished_sender_ends_truncated_with_a_valid_file() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().to_path_buf();
    let identity = Identity::ephemeral().unwrap();
    let mut ropts = common::receiver_options();
    ropts.idle_timeout = Duration::from_secs(1);
    let rx = common::file_receiver(ropts, &identity, &dir);
    let relay = RelayHandle::start(RelayConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        upstream: rx.local_addr(),
        forward: Impairment::default(),
        backward: Impairment::default(),
        seed: 1,
    })
    .unwrap();
    let subs = with_length(&[stereo48k(0, ms(10))], 30.0);
    let mut opts = common::sender_options(relay.local_addr(), &rx);
    opts.idle_timeout = Duration::from_secs(1);
    let mut tx = Sender::connect(opts, subs.clone()).unwrap();
    feed_pattern(&mut tx, &subs);
    // Two seconds in, the sender vanishes: nothing more gets through, not
    // even a close.
    let started = Instant::now();
    while tx.stats().frames(0) < 200 {
        std::thread::sleep(Duration::from_millis(10));
    }
    relay.stop();
    let vanished = started.elapsed();
    let end = next_end(&rx, Duration::from_secs(10));
    let ended = started.elapsed();
    assert!(end.truncated, "{}", end.reason);
    assert!(end.stats.truncated);
    assert!(end.reason.contains("idle"), "{}", end.reason);
    let waited = ended - vanished;
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
    // The file is valid and finalised: it reads back, and ends where the
    // media ended (about two seconds in), not padded with a second of
    // concealment up to the idle timeout.
    assert_eq!(end.files.len(), 1);
    let r = WavReader::open(&end.files[0].0).expect("a valid WAV");
    let secs = r.total_samples() as f64 / 48_000.0;
    assert_eq!(r.total_samples(), end.files[0].1);
    assert_eq!(end.media_samples, [r.total_samples()]);
    assert!(secs > 1.5 && secs < 2.5, "{secs} s written");
    let frames = end.stats.substreams[0].frames;
    assert_eq!(frames.samples_played, r.total_samples());
    assert!(
        frames.concealed < 10,
        "nothing concealed past the end: {frames:?}"
    );
    drop(tx);
}
