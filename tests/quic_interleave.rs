//! Automatic interleaving depth over real QUIC through the netem relay:
//! the hello asks for it, the receiver grants what its latency allows, and
//! on a bursty link the sender's adaptive FEC goes deeper than 1 while the
//! stream plays out whole (`sim_interleave.rs` measures the residuals).

mod common;

use common::{Impaired, ms, stereo48k, with_length};
use isochron::engine::sim::{Impairment, Loss};

#[test]
fn auto_depth_rises_on_a_bursty_link_and_plays_out_whole() {
    let secs = 15.0;
    let mut ropts = common::receiver_options();
    ropts.config.latency = ms(250);
    let link = Impairment {
        loss: Loss::from_mean(0.05, 10.0),
        delay: ms(20),
        jitter: ms(5),
        ..Default::default()
    };
    let net = Impaired::start(ropts, link, 41);
    let subs = with_length(&[stereo48k(0, ms(10))], secs);
    let mut opts = net.sender_options();
    opts.config.fec.depth = 8;
    opts.config.fec.auto_depth = true;
    // FEC alone: with retransmission in a 250 ms budget the depth stays 1
    // (sim_interleave shows both).
    opts.config.recovery = isochron::engine::Recovery::Fec;
    let mut granted = 0;
    let sent = net.send(opts, &subs, |tx| {
        granted = tx.accept().max_depth;
        assert!(granted >= 4, "250 ms leaves room for depth: {granted}");
    });
    let end = net.next_end();
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
        net.relay.stats().forward
    );
    assert!(!end.truncated);
    assert_eq!(s.fec_depth_max, granted);
    assert!(s.fec_depth > 1, "bursts: the depth rose ({})", s.fec_depth);
    assert_eq!(end.stats.invalid.too_deep, 0);
    assert_eq!(p.recovered + p.unrecovered, p.lost);
    net.assert_whole(0, (48_000.0 * secs) as u64);
}
