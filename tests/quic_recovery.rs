//! Hybrid recovery over real QUIC through the netem relay: issue 13's
//! must-show items 1 and 3 on loopback (the simulation, `sim_recovery.rs`,
//! measures the residuals over runs long enough to mean something; here the
//! point is that NACKs, the retransmission store and the round trip quinn
//! measures work together on a real connection).

mod common;

use common::{Impaired, ms, stereo48k, with_length};
use isochron::engine::Recovery;
use isochron::engine::config::LatencyBounds;
use isochron::engine::net::{ReceiverOptions, SessionEnd};
use isochron::engine::sim::{Impairment, Loss};
use isochron::engine::stats::SenderStats;

/// One live session of `secs` of stereo 48 kHz through a relay doing `link`
/// each way, the sender recovering with `recovery`; checks the media and
/// returns what both ends counted.
fn session(
    link: Impairment,
    recovery: Recovery,
    secs: f64,
    seed: u64,
) -> (SenderStats, SessionEnd) {
    session_to(common::receiver_options(), link, recovery, secs, seed)
}

/// [`session`] into a receiver with `rx`'s options.
fn session_to(
    rx: ReceiverOptions,
    link: Impairment,
    recovery: Recovery,
    secs: f64,
    seed: u64,
) -> (SenderStats, SessionEnd) {
    let net = Impaired::start(rx, link, seed);
    let subs = with_length(&[stereo48k(0, ms(10))], secs);
    let mut opts = net.sender_options();
    opts.config.recovery = recovery;
    let sent = net.send(opts, &subs, |_| {});
    let end = net.next_end();
    assert!(!end.truncated);
    let p = end.stats.packets;
    let s = &sent.stats;
    eprintln!(
        "{recovery:?}: expected {} lost {} recovered {} (sent again {}, late {}) unrecovered {}; redundancy {:.1} % (FEC {:.1} %); NACK {:?}; sender sent again {}, suppressed {}, expired {}; link {:?}",
        p.expected,
        p.lost,
        p.recovered,
        p.retransmitted,
        p.retransmit_late,
        p.unrecovered,
        s.redundancy_ratio * 100.0,
        s.fec_overhead_ratio * 100.0,
        end.stats.nack,
        s.retransmit_packets,
        s.nack_suppressed,
        s.nack_expired,
        net.relay.stats().forward
    );
    assert_eq!(p.recovered + p.unrecovered, p.lost);
    net.assert_whole(0, (48_000.0 * secs) as u64);
    (sent.stats, end)
}

fn path(loss: Loss, delay_ms: u64) -> Impairment {
    Impairment {
        loss,
        delay: ms(delay_ms),
        jitter: ms(5),
        ..Default::default()
    }
}

/// Must-show 1 on a real connection: 5 % random loss, 20 +- 5 ms each way,
/// 80 ms of latency. Retransmission does part of the work, the redundancy
/// stays far below what FEC alone needs (78 % in the 0.1 bench), and next to
/// nothing is lost for good.
#[test]
fn hybrid_over_quic_retransmits_within_the_budget() {
    let (s, end) = session(
        path(Loss::from_mean(0.05, 1.0), 20),
        Recovery::Hybrid,
        15.0,
        31,
    );
    let p = end.stats.packets;
    let loss = p.lost as f64 / p.expected as f64;
    assert!((0.03..0.07).contains(&loss), "the link lost {loss}");
    assert!(p.retransmitted > 20, "retransmission did its part: {p:?}");
    assert!(s.retransmit_packets >= p.retransmitted);
    assert!(end.stats.nack.datagrams > 0);
    // Widened from the simulation's 1e-4 (a 15 s run holds 3 000 packets,
    // and real timing varies: 0 to 4 were lost for good over this session's
    // runs on an idle host, each late retransmissions asked for at the last
    // call): at most six (2e-3). The 1e-4 is measured in sim_recovery.
    assert!(
        p.unrecovered <= 6,
        "unrecovered {} of {}",
        p.unrecovered,
        p.expected
    );
    // 19.0-19.1 % over three idle runs, FEC 3-3.8 % of it (20.9-22.1 %
    // before hybrid used the first report's spread); the margin is for a
    // loaded host. Under 20 % over 1200 s in sim_recovery.
    assert!(
        s.redundancy_ratio <= 0.23,
        "redundancy {:.3}",
        s.redundancy_ratio
    );
}

/// Must-show 3 on a real connection: 60 ms each way leaves no round trip in
/// 80 ms of latency, so no NACK and no retransmission; FEC does it all.
#[test]
fn a_round_trip_beyond_the_budget_asks_for_nothing_over_quic() {
    let (s, end) = session(
        path(Loss::from_mean(0.05, 1.0), 60),
        Recovery::Hybrid,
        8.0,
        32,
    );
    let p = end.stats.packets;
    assert_eq!(s.retransmit_packets, 0);
    assert_eq!(end.stats.nack.datagrams, 0, "{:?}", end.stats.nack);
    assert_eq!(p.retransmitted, 0);
    assert!(end.stats.nack.no_time > 0, "gaps were seen, none asked for");
    assert!(p.recovered > 20, "FEC rebuilt them: {p:?}");
    assert!(s.repair_packets > 0);
}

/// Retransmission alone over a real connection: no repair is sent and the
/// losses come back by NACK.
#[test]
fn arq_alone_over_quic_recovers_random_loss() {
    let (s, end) = session(path(Loss::from_mean(0.02, 1.0), 20), Recovery::Arq, 8.0, 33);
    let p = end.stats.packets;
    assert_eq!(s.repair_packets, 0, "no FEC");
    assert!(p.lost > 10, "{p:?}");
    // Most come back. Not all on a loaded host: its scheduling delays eat
    // the round trip some gaps had (before the planner asked by the last call; a run
    // at load 30 got 75 % back where an idle one gets all but 2).
    assert!(p.retransmitted * 10 >= p.lost * 6, "{p:?}");
    assert!(p.unrecovered * 4 <= p.lost, "{p:?}");
}

/// An adaptive latency (`--latency auto`) on a real connection that loses
/// 1 % with a 100 ms round trip: the target takes in a round trip once
/// loss shows, and the retransmissions come in time (before, the target
/// stayed near its 20 ms minimum and next to every loss was lost for good).
#[test]
fn an_adaptive_latency_makes_room_for_retransmission_over_quic() {
    let mut rx = common::receiver_options();
    rx.config.latency = ms(500);
    rx.config.adaptive = Some(LatencyBounds {
        min: ms(20),
        max: ms(500),
    });
    let link = Impairment {
        loss: Loss::from_mean(0.01, 1.0),
        delay: ms(50),
        jitter: ms(2),
        ..Default::default()
    };
    let (s, end) = session_to(rx, link, Recovery::Hybrid, 10.0, 34);
    let st = &end.stats;
    let p = st.packets;
    eprintln!(
        "target {} us, holds a round trip: {}; redundancy {:.1} %",
        st.latency_target_us,
        st.latency_holds_round_trip,
        s.redundancy_ratio * 100.0
    );
    assert!(st.latency_holds_round_trip, "{st:#?}");
    assert!(
        (100_000..=300_000).contains(&st.latency_target_us),
        "{}",
        st.latency_target_us
    );
    // Over 10 s (2 000 packets): 16 lost, 15 sent again in time, and the
    // 1 before the target rose lost for good (one idle run).
    assert!(p.lost >= 8, "{p:?}");
    assert!(p.retransmitted * 2 >= p.lost, "{p:?}");
    assert!(p.unrecovered * 4 <= p.lost, "{p:?}");
}
