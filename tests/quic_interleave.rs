//! Automatic interleaving depth over real QUIC through the netem relay:
//! the hello asks for it, the receiver grants what its latency allows, and
//! on a bursty link the sender's adaptive FEC goes deeper than 1 while the
//! stream plays out whole (`sim_interleave.rs` measures the residuals).

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{CheckSink, feed_pattern, ms, stereo48k, with_length};
use isochron::engine::net::relay::{RelayConfig, RelayHandle};
use isochron::engine::net::{Identity, Receiver, ReceiverEvent, Sender};
use isochron::engine::sim::{Impairment, Loss};

#[test]
fn auto_depth_rises_on_a_bursty_link_and_plays_out_whole() {
    let secs = 15.0;
    let identity = Identity::ephemeral().unwrap();
    let sinks = Arc::new(Mutex::new(Vec::new()));
    let s = sinks.clone();
    let mut ropts = common::receiver_options();
    ropts.config.latency = ms(250);
    let rx = Receiver::start(ropts, &identity, move |info| {
        let sink = CheckSink::new(&info.session.substreams);
        s.lock().unwrap().push(sink.clone());
        Ok(Box::new(sink))
    })
    .unwrap();
    let link = Impairment {
        loss: Loss::from_mean(0.05, 10.0),
        delay: ms(20),
        jitter: ms(5),
        ..Default::default()
    };
    let relay = RelayHandle::start(RelayConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        upstream: rx.local_addr(),
        forward: link.clone(),
        backward: link,
        seed: 41,
    })
    .unwrap();
    let subs = with_length(&[stereo48k(0, ms(10))], secs);
    let mut opts = common::sender_options(relay.local_addr(), &rx);
    opts.config.fec.depth = 8;
    opts.config.fec.auto_depth = true;
    // FEC alone: with retransmission in a 250 ms budget the depth stays 1
    // (sim_interleave shows both).
    opts.config.recovery = isochron::engine::Recovery::Fec;
    let mut tx = Sender::connect(opts, subs.clone()).unwrap();
    let granted = tx.accept().max_depth;
    assert!(granted >= 4, "250 ms leaves room for depth: {granted}");
    feed_pattern(&mut tx, &subs);
    let sent = tx.wait().unwrap();
    assert!(sent.completed);
    let end = loop {
        match rx
            .events()
            .recv_timeout(Duration::from_secs(30))
            .expect("the session ends")
        {
            ReceiverEvent::Ended { end, .. } => break *end,
            ReceiverEvent::Refused { reason, .. } => panic!("refused: {reason}"),
            ReceiverEvent::Started(_) => {}
        }
    };
    let (p, s) = (end.stats.packets, &sent.stats);
    eprintln!(
        "auto over QUIC: granted {granted}, depth {} ({} changes); expected {} lost {} recovered {} unrecovered {}; redundancy {:.1} %; link {:?}",
        s.fec_depth,
        s.fec_depth_changes,
        p.expected,
        p.lost,
        p.recovered,
        p.unrecovered,
        s.redundancy_ratio * 100.0,
        relay.stats().forward
    );
    assert!(!end.truncated);
    assert_eq!(s.fec_depth_max, granted);
    assert!(s.fec_depth > 1, "bursts: the depth rose ({})", s.fec_depth);
    assert_eq!(end.stats.invalid.too_deep, 0);
    assert_eq!(p.recovered + p.unrecovered, p.lost);
    let c = sinks.lock().unwrap()[0].check.lock().unwrap().counts(0);
    assert_eq!(c.samples, (48_000.0 * secs) as u64, "sample count equal");
    assert_eq!((c.corrupt_frames, c.out_of_order), (0, 0));
}
