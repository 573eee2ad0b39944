//! Hybrid recovery (FEC + retransmission inside the latency budget) in
//! deterministic simulation: issue 13's must-show items 1 to 4.

mod common;

use std::time::Duration;

use common::{ms, run, stereo48k};
use isochron::engine::Recovery;
use isochron::engine::sim::{Impairment, Loss, SimConfig, SimOutcome};

/// The path: `loss` each way, 20 +- 5 ms each way, latency 80 ms,
/// the CLI's defaults otherwise (16+4 adaptive, D = 1, 10 ms frames).
fn path(loss: Loss, seed: u64, recovery: Recovery) -> SimConfig {
    let link = Impairment {
        loss,
        delay: ms(20),
        jitter: ms(5),
        ..Default::default()
    };
    let mut cfg = SimConfig {
        seed,
        link,
        ..Default::default()
    };
    cfg.sender.recovery = recovery;
    cfg
}

/// Run `secs` of stereo 48 kHz through `cfg`; check the output and print
/// the figures.
fn stream(cfg: &SimConfig, secs: f64) -> SimOutcome {
    let (out, check) = run(cfg, &[stereo48k(0, ms(10))], secs);
    assert!(out.finished, "{out:#?}");
    let c = check.counts(0);
    assert_eq!(c.samples, (48_000.0 * secs) as u64, "sample count equal");
    assert_eq!((c.corrupt_frames, c.out_of_order), (0, 0));
    let (r, s) = (&out.receiver, &out.sender);
    assert_eq!(r.packets.expected, s.source_packets);
    assert_eq!(r.packets.recovered + r.packets.unrecovered, r.packets.lost);
    eprintln!(
        "{:?} {:?}: residual {:.2e} ({} of {}), lost {}, FEC {} ARQ {}; redundancy {:.1} % (FEC {:.1} %, ARQ {:.1} %); NACK {:?}; sender {} sent again, suppressed {}, expired {}",
        s.recovery,
        cfg.link.loss,
        r.residual_loss_ratio,
        r.packets.unrecovered,
        r.packets.expected,
        r.packets.lost,
        r.packets.recovered - r.packets.retransmitted,
        r.packets.retransmitted,
        s.redundancy_ratio * 100.0,
        s.fec_overhead_ratio * 100.0,
        (s.redundancy_ratio - s.fec_overhead_ratio) * 100.0,
        r.nack,
        s.retransmit_packets,
        s.nack_suppressed,
        s.nack_expired,
    );
    out
}

#[test]
fn bernoulli_5_percent_hybrid_meets_1e4_within_20_percent() {
    // 1200 s: 240 000 packets, so 1e-4 is 24 packets, measured.
    let out = stream(
        &path(Loss::from_mean(0.05, 1.0), 21, Recovery::Hybrid),
        1200.0,
    );
    let (r, s) = (&out.receiver, &out.sender);
    assert!(r.packets.expected >= 200_000);
    assert!(
        r.residual_loss_ratio <= 1e-4,
        "residual {:.2e}",
        r.residual_loss_ratio
    );
    assert!(
        s.redundancy_ratio <= 0.20,
        "redundancy {:.3}",
        s.redundancy_ratio
    );
    assert!(r.packets.retransmitted > 100, "retransmission did its part");
    assert!(
        r.packets.recovered - r.packets.retransmitted > 100,
        "and FEC"
    );
    // Asked for before FEC's verdict (the last call came first: one
    // round trip and the spread both ways leave no time to wait for a
    // group's repairs), and of those what FEC rebuilt anyway, counted.
    let n = r.nack;
    assert!(n.eager > 0 && n.eager < n.requested, "{n:?}");
    assert!(
        n.eager_rebuilt > 0 && n.eager_rebuilt <= n.eager.min(n.filled_otherwise),
        "{n:?}"
    );
}

/// Gilbert-Elliott 5 %, bursts of 10 packets against 80 ms of latency.
/// Hybrid recovery does what retransmission alone does, for what it costs
/// (FEC that buys a fraction of a residual 30 times the target is not
/// bought: 28 % of it took 3.37e-3 to 3.13e-3 here), well under the fixed
/// code. The chain steps once a packet: sent evenly at the rate hybrid
/// sends on average, a lost packet is lost for good when the next 15
/// packets are all lost too (everything that leaves within the 70 ms its
/// deadline allows), 1.0e-2 of the packets (`burst_floor`). Hybrid is
/// below that, because what it sends is not even: a burst falls overdue as
/// it happens and the packets asked for again (2.9 a lost packet, most
/// of them copies) partly go out while it lasts, each a step of the
/// chain, so the burst ends sooner in time. Reaching the 1e-3
/// that way takes 38 steps within those 70 ms, over 540 packets a second
/// while a burst lasts: buying the chain's steps, which helps nothing on a
/// path whose bursts last a time (a fade) and adds to one whose bursts
/// are an overflowing queue, so it is not done.
#[test]
fn gilbert_elliott_bursts_of_10_as_far_as_the_budget_allows() {
    use isochron::engine::sim::bound::burst_floor;
    let ge = Loss::from_mean(0.05, 10.0);
    let hybrid = stream(&path(ge, 22, Recovery::Hybrid), 300.0);
    let arq = stream(&path(ge, 22, Recovery::Arq), 300.0);
    let mut fixed = path(ge, 22, Recovery::Fec);
    fixed.sender.fec_target = None;
    let fixed = stream(&fixed, 300.0);
    let h = hybrid.receiver.residual_loss_ratio;
    let a = arq.receiver.residual_loss_ratio;
    assert!(h <= 1.1 * a, "{h:.2e} against {a:.2e}");
    let (hr, ar) = (hybrid.sender.redundancy_ratio, arq.sender.redundancy_ratio);
    assert!(hr <= 1.2 * ar, "{hr:.3} against {ar:.3}");
    assert!(h < 0.3 * fixed.receiver.residual_loss_ratio, "{h:.2e}");
    assert!(h < 1e-2, "several times better than FEC alone was: {h:.2e}");
    // The floor at an even rate: 200 source packets a second plus what was
    // sent besides, over the 70 ms a lost packet's information can still
    // be sent in. Hybrid's retransmissions partly go out while a burst
    // lasts, so it is below it; 1e-3 takes 38 steps in those 70 ms.
    let per_s = 200.0 * (1.0 + hybrid.sender.redundancy_ratio);
    let floor = burst_floor(ge, (per_s * 0.070) as usize);
    eprintln!("floor at an even {per_s:.0} packets/s: {floor:.2e}");
    assert!(h < floor, "{h:.2e} vs floor {floor:.2e}");
    assert!(burst_floor(ge, 37) > 1e-3 && burst_floor(ge, 38) <= 1e-3);
}

/// Gilbert-Elliott 2 %, bursts of 3, with the 20 +- 5 ms each way:
/// a burst's packets are taken for lost as they fall overdue, and the gap a
/// later packet then shows is placed in media time after them. It was
/// placed after the last packet that came, so its deadline fell up to the
/// silence's length early, and it was found with no round trip left and
/// never asked for: 13-21 such gaps a seed in 120 s (`nack.no_time`),
/// 17-26 packets lost for good (7e-4 to 1.1e-3). Now none, and 3-6.
#[test]
fn gaps_after_an_overdue_run_keep_their_deadline_and_are_asked_for() {
    for seed in [1, 2, 3] {
        let out = stream(
            &path(Loss::from_mean(0.02, 3.0), seed, Recovery::Hybrid),
            120.0,
        );
        let r = &out.receiver;
        assert!(r.nack.overdue > 100, "bursts fell overdue: {:?}", r.nack);
        assert_eq!(r.nack.no_time, 0, "seed {seed}: {:?}", r.nack);
        assert!(r.packets.unrecovered <= 12, "seed {seed}: {:?}", r.packets);
    }
}

/// Issue 13 saw each lost packet sent again 2-2.5 times on bursty links.
/// Not the NACK timers: a packet is answered about once per packet asked
/// for (the NACK's echoes are suppressed, no repeat fits in 80 ms), and
/// what goes besides are the further copies adaptive FEC asks for when no
/// round trip is left to ask again (here every retransmission is the last
/// chance: the path leaves one round). Those copies are what 1e-4 costs
/// with one round: with the copies forced to one (this path, seeds 1-3,
/// 120 s each) GE 2 % burst 3 lost 36 of 72 000 (5.0e-4) at 3.7 %
/// redundancy against 14 (1.9e-4) at 6.5 %, and Bernoulli 5 % lost 172
/// (2.4e-3) at 7.2 % against 0 at 16 %.
#[test]
fn a_lost_packet_is_answered_once_and_the_rest_are_planned_copies() {
    let out = stream(
        &path(Loss::from_mean(0.02, 3.0), 1, Recovery::Hybrid),
        120.0,
    );
    let (r, s) = (&out.receiver, &out.sender);
    let answers = s.retransmit_packets - s.retransmit_copies;
    eprintln!(
        "answers {answers}, copies {}, asked for {}, recovered by retransmission {}",
        s.retransmit_copies, r.nack.requested, r.packets.retransmitted
    );
    assert_eq!(r.nack.repeated, 0, "{:?}", r.nack);
    assert!(
        answers as f64 <= 1.02 * r.nack.requested as f64,
        "{answers} answers for {} asked for",
        r.nack.requested
    );
    assert!(
        answers as f64 <= 1.1 * r.packets.retransmitted as f64,
        "{answers} answers for {:?}",
        r.packets
    );
    assert!(s.retransmit_copies > 0, "the copies are there");
    assert!(
        s.retransmit_copies <= 2 * answers,
        "at most {} copies",
        isochron::engine::arq::store::MAX_COPIES
    );
    assert!(
        s.nack_suppressed >= r.nack.echoes * 9 / 10,
        "echoes cost nothing"
    );
}

#[test]
fn a_round_trip_beyond_the_budget_sends_no_retransmission_and_fec_behaves_as_alone() {
    // 60 ms each way: a 120 ms round trip cannot fit in 80 ms of latency.
    let far = |recovery| {
        let mut cfg = path(Loss::from_mean(0.05, 1.0), 23, recovery);
        cfg.link.delay = ms(60);
        cfg.receiver.latency = ms(80);
        stream(&cfg, 120.0)
    };
    let hybrid = far(Recovery::Hybrid);
    let fec = far(Recovery::Fec);
    assert_eq!(hybrid.sender.retransmit_packets, 0);
    assert_eq!(
        hybrid.receiver.nack.datagrams, 0,
        "{:?}",
        hybrid.receiver.nack
    );
    assert!(
        hybrid.receiver.nack.no_time > 0,
        "gaps were seen, none asked for"
    );
    // FEC alone, exactly as without retransmission.
    assert_eq!(hybrid.receiver.packets, fec.receiver.packets);
    assert_eq!(hybrid.sender.repair_bytes, fec.sender.repair_bytes);
}

/// Before the first report adaptive FEC knows nothing of the path. FEC
/// alone protects strongly meanwhile; hybrid, with round trips to spare,
/// leaves random loss to them (it paid the configured code's 25 % for the
/// first two seconds of every session: 5.5 % of a 10 s stream, the bench's
/// length, on a clean path). The first report comes at 300 ms and counts.
#[test]
fn hybrid_with_round_trips_to_spare_pays_no_fec_while_waiting_for_the_first_report() {
    let quick = |recovery| {
        let mut cfg = path(Loss::from_mean(0.01, 1.0), 27, recovery);
        (cfg.link.delay, cfg.link.jitter) = (ms(2), ms(0));
        cfg.level_every = ms(100);
        stream(&cfg, 10.0)
    };
    let hybrid = quick(Recovery::Hybrid);
    let fec = quick(Recovery::Fec);
    assert_eq!(hybrid.receiver.packets.unrecovered, 0);
    let (h, f) = (&hybrid.sender, &fec.sender);
    assert!(
        h.fec_overhead_ratio < 0.01,
        "hybrid's FEC over 10 s: {:.4}",
        h.fec_overhead_ratio
    );
    // What it sends instead: about one retransmission per loss.
    let lost = hybrid.receiver.packets.lost as f64 / hybrid.receiver.packets.expected as f64;
    assert!(
        h.redundancy_ratio < 1.5 * lost + 0.01,
        "{:.4}",
        h.redundancy_ratio
    );
    // FEC alone still starts at twice its floor, and the first second
    // costs it more than the rest.
    let first = |o: &SimOutcome| {
        let t = o.start + Duration::from_secs(1);
        let s = o.sent.iter().rfind(|s| s.0 <= t).expect("sampled");
        s.2 as f64 / s.1.max(1) as f64
    };
    assert!(
        first(&fec) > 0.4,
        "FEC alone's first second: {:.3}",
        first(&fec)
    );
    assert!(first(&fec) > f.fec_overhead_ratio);
}

/// The path has one round trip that fits the whole spread. The
/// first report (300 ms in) tells the spread, and from then on hybrid plans
/// for typical random loss (no FEC) until the loss is measured, a second
/// later. It paid twice the FEC floor meanwhile (50 % on the 8-source
/// blocks 80 ms allows): 22.4 % redundancy over a 15 s stream (FEC 9.0 %),
/// what over-quic runs of that length showed (20.9-22.1 %), against
/// 16.5 % over 1200 s. Now 16.8 % (FEC 1.2 %).
#[test]
fn one_round_that_fits_the_spread_pays_no_fec_before_the_loss_is_measured() {
    let out = stream(
        &path(Loss::from_mean(0.05, 1.0), 21, Recovery::Hybrid),
        15.0,
    );
    let (r, s) = (&out.receiver, &out.sender);
    assert_eq!(r.packets.unrecovered, 0, "{:?}", r.packets);
    assert!(
        s.fec_overhead_ratio < 0.04,
        "FEC {:.3}",
        s.fec_overhead_ratio
    );
    assert!(
        s.redundancy_ratio <= 0.20,
        "redundancy {:.3}",
        s.redundancy_ratio
    );
}

#[test]
fn retransmission_alone_recovers_random_loss_without_fec() {
    let out = stream(&path(Loss::from_mean(0.02, 1.0), 24, Recovery::Arq), 120.0);
    let (r, s) = (&out.receiver, &out.sender);
    assert_eq!(s.repair_packets, 0, "no FEC");
    assert!(
        r.packets.retransmitted * 10 > r.packets.lost * 8,
        "{:?}",
        r.packets
    );
    assert!(
        r.residual_loss_ratio <= 1e-4,
        "{:.2e}",
        r.residual_loss_ratio
    );
    // Only what was lost goes again (in copies when no round trip is left).
    let lost = r.packets.lost as f64 / r.packets.expected as f64;
    assert!(
        s.redundancy_ratio < 3.5 * lost,
        "{} for {lost}",
        s.redundancy_ratio
    );
}

/// File mode on the hardest row of the file-mode table (`isochron netem
/// --loss 5% --burst 3 --jitter 10ms --delay 15ms`, the control stream
/// modelled on QUIC's), with the marks file mode sets from the path: the
/// floor leaves rounds of retransmission after FEC's span, so hybrid
/// loses nothing, as FEC alone, at a fraction of its redundancy. (With a
/// floor of one round it left 0.3-0.55 % over QUIC.)
#[test]
fn file_mode_hybrid_loses_no_more_than_fec_with_the_marks_it_sets() {
    use isochron::engine::config::SenderConfig;
    use isochron::engine::sim::ControlModel;
    let link = Impairment {
        loss: Loss::from_mean(0.05, 3.0),
        delay: ms(15),
        jitter: ms(10),
        ..Default::default()
    };
    let file = |recovery, seed| {
        let mut cfg = SimConfig {
            seed,
            link: link.clone(),
            control: ControlModel::quic_over(&link),
            control_delay: link.delay,
            level_every: ms(5),
            ..Default::default()
        };
        cfg.sender = SenderConfig::file(2.0);
        cfg.sender.recovery = recovery;
        stream(&cfg, 30.0)
    };
    for seed in [5, 9, 25] {
        let hybrid = file(Recovery::Hybrid, seed);
        let fec = file(Recovery::Fec, seed);
        let (h, f) = (&hybrid.receiver, &fec.receiver);
        eprintln!("seed {seed}: hybrid {:?} | fec {:?}", h.flow, f.flow);
        assert_eq!(h.flow.retransmit_rounds, 3, "{:?}", h.flow);
        assert_eq!(f.flow.retransmit_rounds, 0, "{:?}", f.flow);
        assert!(h.flow.floor_us > f.flow.floor_us + 3 * 30_000);
        assert_eq!(h.packets.late, 0, "seed {seed}: {:?}", h.packets);
        assert_eq!(h.substreams[0].frames.underruns, 0);
        assert!(h.packets.retransmitted > 0);
        assert!(
            h.packets.unrecovered <= f.packets.unrecovered,
            "seed {seed}: hybrid {:?}, fec {:?}",
            h.packets,
            f.packets
        );
        assert_eq!(h.packets.unrecovered, 0, "seed {seed}: {:?}", h.packets);
        assert!(
            hybrid.sender.redundancy_ratio < 0.5 * fec.sender.redundancy_ratio,
            "seed {seed}: hybrid {:.3}, fec {:.3}",
            hybrid.sender.redundancy_ratio,
            fec.sender.redundancy_ratio
        );
    }
}

/// Redundancy (FEC + retransmission over media bytes) the sender queued
/// from `from` after the session started to its end.
fn redundancy_after(out: &SimOutcome, from: Duration) -> f64 {
    let t0 = out.start + from;
    let first = out.sent.iter().find(|s| s.0 >= t0).expect("sampled then");
    let last = out.sent.last().unwrap();
    (last.2 - first.2) as f64 / (last.1 - first.1).max(1) as f64
}

/// Issue 13: after a 1 s outage adaptive FEC ran at 105-107 % for the rest
/// of the stream (28 % on a clean link). An outage is not random loss: the
/// estimate must be back down within seconds. Over the last 20 s (from 4 s
/// after the outage), FEC alone and hybrid each send about what they send
/// on the same link without the outage.
#[test]
fn after_an_outage_fec_comes_back_down_within_seconds() {
    use isochron::engine::sim::Outage;
    for recovery in [Recovery::Fec, Recovery::Hybrid] {
        let mut clean = path(Loss::None, 26, recovery);
        clean.level_every = ms(100);
        let mut cut = clean.clone();
        cut.link.outages = vec![Outage {
            start: Duration::from_secs(5),
            duration: Duration::from_secs(1),
        }];
        let clean = stream(&clean, 30.0);
        let cut = stream(&cut, 30.0);
        assert!(
            cut.receiver.packets.unrecovered > 50,
            "the outage cost media: {:?}",
            cut.receiver.packets
        );
        let (c, a) = (
            redundancy_after(&clean, Duration::from_secs(10)),
            redundancy_after(&cut, Duration::from_secs(10)),
        );
        eprintln!("{recovery:?}: redundancy over the last 20 s {a:.3}, {c:.3} without the outage");
        assert!(c > 0.0 || recovery == Recovery::Hybrid);
        assert!(
            a <= c * 1.1 + 0.01,
            "{recovery:?}: {a:.3} over the last 20 s with the outage, {c:.3} without"
        );
        // The whole run: the outage costs its second, not the rest.
        assert!(
            cut.sender.redundancy_ratio < clean.sender.redundancy_ratio * 1.15 + 0.01,
            "{recovery:?}: {:.3} with the outage, {:.3} without",
            cut.sender.redundancy_ratio,
            clean.sender.redundancy_ratio
        );
    }
}

/// The code adaptive FEC settles on in a live sender (the sans-IO core,
/// stereo 48 kHz in 10 ms frames, 16+4 proposed, 80 ms of latency) told
/// the round trip `rtt` and, in each second's report, a Bernoulli loss of
/// 5 % and an interarrival jitter of `jitter` (the delay spread it plans
/// with is three times that): `(k, m)` in force after 10 s.
fn planned_code(recovery: Recovery, rtt: Duration, jitter: Duration) -> (u8, u8) {
    planned_code_at(recovery, rtt, jitter, Duration::ZERO)
}

/// [`planned_code`] with reports telling `latency` as the latency
/// retransmission can count on (`Report::latency_us`; zero: not told).
fn planned_code_at(
    recovery: Recovery,
    rtt: Duration,
    jitter: Duration,
    latency: Duration,
) -> (u8, u8) {
    use isochron::engine::config::{ReceiverConfig, SenderConfig};
    use isochron::engine::sim::PatternSource;
    use isochron::engine::wire::control::{Control, Report};
    use isochron::engine::{SenderCore, Time, handshake};

    let subs = vec![stereo48k(0, ms(10))];
    let scfg = SenderConfig {
        recovery,
        ..Default::default()
    };
    let rcfg = ReceiverConfig {
        latency: ms(80),
        ..Default::default()
    };
    let mut tx = SenderCore::new("plan", subs.clone(), &scfg).unwrap();
    let Control::Hello(hello) = tx.hello(None) else {
        unreachable!()
    };
    let accept = handshake::answer(&rcfg, &hello, 1).unwrap();
    let mut src = PatternSource::new(&subs, None);
    let start = Time::from_micros(1_000_000);
    tx.on_accept(start, &accept).unwrap();
    tx.set_rtt(rtt);
    let mut now = start;
    let mut next_report = start + Duration::from_secs(1);
    while now < start + Duration::from_secs(10) {
        tx.poll(now, &mut src).unwrap();
        while tx.poll_transmit().is_some() {}
        if now >= next_report {
            // What a receiver behind 5 % independent loss reports: every
            // twentieth source packet lost, each a run of its own.
            let sources = tx.stats().source_packets;
            let lost = sources / 20;
            let report = Report {
                received: sources - lost,
                lost,
                loss_runs: lost,
                jitter_us: jitter.as_micros() as u32,
                latency_us: latency.as_micros() as u32,
                ..Default::default()
            };
            tx.on_control(now, &Control::Report(report));
            next_report += Duration::from_secs(1);
        }
        now = tx.next_timeout().expect("live: the next frame is due");
    }
    let f = tx.session().fec;
    eprintln!(
        "{recovery:?}, round trip {rtt:?}, jitter {jitter:?}: {}+{} (loss estimate {:?})",
        f.k,
        f.m,
        tx.loss_estimate()
    );
    (f.k, f.m)
}

/// Hybrid sizes FEC only for the retransmission rounds that fit the whole
/// delay spread (`rounds_that_fit`). With rounds to spare (10 ms round
/// trip, 5 ms spread, 80 ms of latency) FEC shrinks to next to nothing on
/// 5 % random loss; with a round that fits only part of the time (40 ms
/// round trip, 30 ms spread: one round fits 17 % of the time, none
/// whole) the plan is exactly FEC alone's. Counting that partial round as
/// one (the `.max(reach > 0)` d293791 removed) cut FEC below it and
/// missed the target tenfold on 20 +- 10 ms paths.
#[test]
fn hybrid_sizes_fec_only_for_rounds_that_fit_the_whole_spread() {
    let fits = planned_code(Recovery::Hybrid, ms(10), Duration::from_micros(1_667));
    let (far, jitter) = (ms(40), ms(10));
    let partly = planned_code(Recovery::Hybrid, far, jitter);
    let alone = planned_code(Recovery::Fec, far, jitter);
    assert_eq!(partly, alone, "no whole round: FEC sized as alone");
    assert!(
        alone.1 >= 2,
        "5 % needs repairs without retransmission: {alone:?}"
    );
    assert!(fits.1 <= 1, "rounds to spare: little FEC ({fits:?})");
    assert!(fits.1 < alone.1);
}

/// `isochron demo`'s link (5 % random loss, 20 +- 10 ms each way, 80 ms),
/// with its two substreams (stereo 48 kHz and a 200 Hz sensor, 10 ms
/// frames, 250 packets a second), seeded: where its unrecovered packets
/// come from. `DEMO_SECS` (default 120) and `DEMO_SEEDS` (default 4).
///
/// Measured on 4d4ddf6, seeds 1-60: at 10 s (the demo's length) 56 runs
/// lose none, 4 lose 1-3 (8 of 150 000), up to 1.2e-3 in one run; 7 of the
/// 8 fall in the first second, before the first receiver report (adaptive
/// FEC at its start-up floor), the 8th by 4 s. At 120 s the same seeds
/// lose 10 of 1.8 million (5.6e-6): 2 after the first 10 s, at 89-97 %
/// redundancy (hybrid plans FEC for a round trip that fits only some of
/// the time; retransmissions almost never arrive first, `answered` 0-1).
/// The demo's residual is its start-up, not the planner's steady state.
#[test]
#[ignore = "measurement: run with --ignored --nocapture"]
fn demo_link_measured() {
    use common::sensor200;
    let secs: f64 = std::env::var("DEMO_SECS").map_or(120.0, |v| v.parse().unwrap());
    let seeds: u64 = std::env::var("DEMO_SEEDS").map_or(4, |v| v.parse().unwrap());
    for seed in 1..=seeds {
        let mut cfg = path(Loss::from_mean(0.05, 1.0), seed, Recovery::Hybrid);
        cfg.link.jitter = ms(10);
        let mut s = sensor200(1, ms(10));
        s.frames_per_packet = 2;
        let (out, _) = run(&cfg, &[stereo48k(0, ms(10)), s], secs);
        let (r, sn) = (&out.receiver, &out.sender);
        eprintln!(
            "seed {seed}: residual {:.2e} ({} of {}, lost {}), late {}, redundancy {:.1} % (FEC {:.1} %); NACK {:?}; sender again {}, expired {}",
            r.residual_loss_ratio,
            r.packets.unrecovered,
            r.packets.expected,
            r.packets.lost,
            r.packets.late,
            sn.redundancy_ratio * 100.0,
            sn.fec_overhead_ratio * 100.0,
            r.nack,
            sn.retransmit_packets,
            sn.nack_expired,
        );
    }
}

/// The sender plans with the latency the reports say retransmission can
/// count on, not the most the accept allows: an adaptive receiver at 15 ms
/// (no round trip of 10 ms fits with the spread) gets FEC alone's code
/// though 80 ms were accepted, and one telling the 80 ms the same plan as
/// one telling nothing.
#[test]
fn hybrid_plans_with_the_latency_the_reports_tell() {
    let jitter = Duration::from_micros(1_667);
    let fits = planned_code(Recovery::Hybrid, ms(10), jitter);
    let told_80 = planned_code_at(Recovery::Hybrid, ms(10), jitter, ms(80));
    let told_15 = planned_code_at(Recovery::Hybrid, ms(10), jitter, ms(15));
    let alone = planned_code(Recovery::Fec, ms(10), jitter);
    assert_eq!(told_80, fits);
    assert_eq!(told_15, alone, "no round in 15 ms: FEC sized as alone");
    assert!(told_15.1 > fits.1, "{told_15:?} against {fits:?}");
}

/// FEC alone (adaptive, 1e-4 target) over long runs on the links where a
/// code can meet the target at D = 1: the residual it leaves and what it
/// pays, the measurement behind adaptive FEC's safety margin.
#[test]
#[ignore = "measurement: run with --ignored --nocapture"]
fn fec_alone_against_its_target_measured() {
    for (loss, seed) in [
        (Loss::from_mean(0.01, 1.0), 31),
        (Loss::from_mean(0.02, 1.0), 32),
        (Loss::from_mean(0.05, 1.0), 33),
        (Loss::from_mean(0.10, 1.0), 34),
        (Loss::from_mean(0.02, 2.0), 35),
    ] {
        let mut cfg = path(loss, seed, Recovery::Fec);
        cfg.link.delay = ms(60);
        stream(&cfg, 1200.0);
    }
}

/// Bursty loss on a short path (the bench's `ge-2-b3` and `ge-5-b3`: no
/// delay), 120 s: hybrid costs about what retransmission alone does. Before
/// the model asked for a loss left to FEC on a calmer chain, with the rounds
/// its wait leaves (6336da9), it priced every retransmission as leaving in
/// the burst and bought FEC instead: 22.2 % (FEC 20.7 %) and 35.4 % (FEC
/// 32.2 %) where retransmission alone lost nothing at 2.2 % and 5.2 %; now
/// 2.9 % and 6.3 %, 0 lost.
#[test]
fn bursty_loss_on_a_short_path_costs_hybrid_about_what_retransmission_alone_does() {
    for (loss, seed) in [
        (Loss::from_mean(0.02, 3.0), 41),
        (Loss::from_mean(0.05, 3.0), 42),
    ] {
        let run = |recovery| {
            let mut cfg = path(loss, seed, recovery);
            cfg.link.delay = ms(1);
            cfg.link.jitter = Duration::ZERO;
            stream(&cfg, 120.0)
        };
        let (hybrid, arq) = (run(Recovery::Hybrid), run(Recovery::Arq));
        let (h, a) = (&hybrid.sender, &arq.sender);
        assert!(
            hybrid.receiver.residual_loss_ratio <= 1e-4,
            "{loss:?}: {:.2e}",
            hybrid.receiver.residual_loss_ratio
        );
        assert!(
            h.redundancy_ratio <= 1.5 * a.redundancy_ratio,
            "{loss:?}: hybrid {:.3} (FEC {:.3}) vs retransmission alone {:.3}",
            h.redundancy_ratio,
            h.fec_overhead_ratio,
            a.redundancy_ratio
        );
    }
}
