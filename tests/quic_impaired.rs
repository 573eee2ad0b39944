//! Real QUIC through the impairment relay: loss and jitter, and a sender
//! that vanishes mid-stream.

mod common;

use std::time::{Duration, Instant};

use common::{Impaired, feed_pattern, ms, stereo48k, with_length};
use isochron::codecs::wav::WavReader;
use isochron::engine::net::{Identity, Sender};
use isochron::engine::sim::{Impairment, Loss};
use isochron::engine::wire::control::FecParams;

#[test]
fn five_percent_loss_with_jitter_is_repaired() {
    let link = Impairment {
        loss: Loss::from_mean(0.05, 1.0),
        delay: ms(20),
        jitter: ms(10),
        ..Default::default()
    };
    let net = Impaired::start(common::receiver_options(), link, 11);
    let subs = with_length(&[stereo48k(0, ms(10))], 10.0);
    let mut opts = net.sender_options();
    opts.config.fec = FecParams {
        k: 16,
        m: 4,
        depth: 1,
        window_us: 0, // the receiver picks it from its latency
        auto_depth: false,
    };
    let sent = net.send(opts, &subs, |_| {});
    let end = net.next_end();
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
        net.relay.stats().forward
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
    let c = net.assert_whole(0, 480_000);
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
    let relay = common::relay(
        rx.local_addr(),
        Impairment::default(),
        Impairment::default(),
        1,
    );
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
    let end = common::next_end(&rx, Duration::from_secs(10));
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
