//! The whole pipeline in deterministic simulation: sender core, impaired
//! network, receiver core, checked sample by sample.

mod common;

use common::{ms, run, sensor200, stereo48k};
use isochron::engine::sim::SimConfig;
use isochron::engine::sim::impair::Impairment;

#[test]
fn clean_network_is_bit_exact() {
    let cfg = SimConfig {
        link: Impairment {
            delay: ms(20),
            ..Default::default()
        },
        ..Default::default()
    };
    let subs = [stereo48k(0, ms(10)), sensor200(1, ms(10))];
    let (out, check) = run(&cfg, &subs, 60.0);
    assert!(out.finished, "{out:#?}");
    let audio = check.counts(0);
    assert_eq!(audio.samples, 48_000 * 60, "sample count equal");
    assert_eq!(check.counts(1).samples, 200 * 60);
    for i in 0..2 {
        let c = check.counts(i);
        assert_eq!(
            (c.corrupt_frames, c.missing_samples, c.out_of_order),
            (0, 0, 0),
            "{c:?}"
        );
    }
    let r = &out.receiver;
    assert!(
        r.substreams.iter().all(|s| s.frames.concealed == 0),
        "{r:?}"
    );
    assert_eq!(r.packets.unrecovered, 0);
    assert_eq!(r.packets.lost, 0);
    assert_eq!(r.packets.expected, out.sender.source_packets);
    assert!(!r.truncated);
}

/// Residual-loss test: audio of 1 ms frames (one 192-byte packet each, 1000
/// packets/s) so a long run stays quick; checks the residual is within 1.5x
/// of the MDS bound and returns it. A failing block costs several packets at
/// once, so runs are about 4x the length that puts 100 unrecovered packets
/// at the bound (checked): enough failing blocks that 1.5x is far outside
/// the noise.
fn residual_near_the_bound(
    loss: isochron::engine::sim::Loss,
    jitter: u64,
    depth: u8,
    latency: u64,
    seconds: f64,
    seed: u64,
) -> f64 {
    use isochron::engine::sim::bound::mds_residual;
    let cfg = common::fixed_fec_sim(loss, jitter, depth, latency, seed);
    let (out, check) = run(&cfg, &[stereo48k(0, ms(1))], seconds);
    assert!(out.finished);
    let c = check.counts(0);
    assert_eq!(c.samples, (48_000.0 * seconds) as u64, "sample count equal");
    assert_eq!((c.corrupt_frames, c.out_of_order), (0, 0));
    let r = &out.receiver;
    assert_eq!(r.packets.expected, out.sender.source_packets);
    assert_eq!(r.packets.recovered + r.packets.unrecovered, r.packets.lost);
    assert_eq!(
        r.substreams[0].frames.concealed, c.concealed_frames,
        "concealment counted"
    );
    assert_eq!(r.packets.late, 0, "latency covers FEC and jitter");
    let bound = mds_residual(loss, 16, 4, depth as usize);
    let expected_at_bound = bound * r.packets.expected as f64;
    eprintln!(
        "{loss:?} D={depth}: residual {:.3e} (bound {bound:.3e}), {} unrecovered of {}, lost {}, recovered {}",
        r.residual_loss_ratio,
        r.packets.unrecovered,
        r.packets.expected,
        r.packets.lost,
        r.packets.recovered
    );
    assert!(
        expected_at_bound >= 100.0,
        "run long enough: {expected_at_bound} unrecovered expected at the bound"
    );
    let residual = r.residual_loss_ratio;
    assert!(
        residual <= 1.5 * bound,
        "residual {residual:.3e} vs bound {bound:.3e}"
    );
    residual
}

#[test]
fn bernoulli_5_percent_with_jitter_stays_near_the_mds_bound() {
    use isochron::engine::sim::Loss;
    let residual = residual_near_the_bound(Loss::from_mean(0.05, 1.0), 10, 1, 80, 600.0, 2);
    assert!(residual > 0.0);
}

#[test]
fn gilbert_elliott_bursts_are_spread_by_interleaving() {
    use isochron::engine::sim::Loss;
    residual_near_the_bound(Loss::from_mean(0.02, 3.0), 0, 8, 200, 12_000.0, 3);
}

#[test]
fn reordering_and_duplicates_never_play_a_frame_twice_or_out_of_order() {
    let cfg = SimConfig {
        seed: 4,
        link: Impairment {
            delay: ms(20),
            jitter: ms(5),
            reorder: 0.05,
            reorder_by: ms(15),
            duplicate: 0.05,
            ..Default::default()
        },
        ..Default::default()
    };
    let subs = [stereo48k(0, ms(10)), sensor200(1, ms(10))];
    let (out, check) = run(&cfg, &subs, 60.0);
    assert!(out.finished);
    assert!(
        out.link.reordered > 500 && out.link.duplicated > 500,
        "{:?}",
        out.link
    );
    for i in 0..2 {
        let c = check.counts(i);
        assert_eq!(c.out_of_order, 0, "substream {i}: {c:?}");
        assert_eq!(
            (c.corrupt_frames, c.missing_samples),
            (0, 0),
            "substream {i}: {c:?}"
        );
    }
    assert_eq!(check.counts(0).frames, 6000, "each frame exactly once");
    let r = &out.receiver;
    assert!(
        r.packets.duplicate > 500,
        "duplicates detected: {:?}",
        r.packets
    );
    assert_eq!(r.packets.unrecovered, 0);
}

/// A 500 ms outage ten seconds in: what is concealed, and what follows.
fn outage_run(fec: bool) -> (Vec<(u64, usize)>, common::CheckSummary) {
    use isochron::engine::FecParams;
    use isochron::engine::sim::Outage;
    let mut cfg = SimConfig {
        link: Impairment {
            delay: ms(20),
            outages: vec![Outage {
                start: ms(10_000),
                duration: ms(500),
            }],
            ..Default::default()
        },
        ..Default::default()
    };
    if !fec {
        cfg.sender.fec = FecParams::OFF;
    }
    // What FEC (or nothing) makes of an outage: no retransmission.
    cfg.sender.recovery = isochron::engine::Recovery::Fec;
    let (out, check) = run(&cfg, &[stereo48k(0, ms(10))], 30.0);
    assert!(out.finished);
    assert!(out.link.outage_drops > 90, "{:?}", out.link);
    (check.concealed[0].clone(), common::summary(&check, 0))
}

#[test]
fn an_outage_is_concealed_for_its_length_then_playback_is_clean() {
    for fec in [false, true] {
        let (concealed, c) = outage_run(fec);
        assert_eq!(c.samples, 48_000 * 30, "sample count equal");
        assert_eq!((c.corrupt_frames, c.out_of_order), (0, 0));
        let first = concealed.first().expect("something concealed").0;
        let last = concealed.last().unwrap().0;
        let span = last - first + 1;
        assert_eq!(
            span as usize,
            concealed.len(),
            "one contiguous span, fec={fec}"
        );
        assert!(
            concealed.iter().all(|&(_, missing)| missing == 480),
            "whole frames"
        );
        if fec {
            // FEC may rebuild a frame or two at the edges, never add any.
            assert!((45..=51).contains(&span), "span {span} frames");
        } else {
            assert!(
                (49..=51).contains(&span),
                "500 ms = 50 frames of 10 ms: {span}"
            );
        }
        // Clean playback after it: nothing concealed in the remaining 19 s.
        assert!(
            last < 1060,
            "concealment ended with the outage: frame {last}"
        );
    }
}

#[test]
fn file_mode_follows_the_playout_one_credit_lead_ahead() {
    use isochron::engine::Mode;
    use isochron::engine::wire::control::Control;
    let mut cfg = SimConfig {
        seed: 6,
        link: Impairment {
            delay: ms(10),
            jitter: ms(2),
            ..Default::default()
        },
        control_delay: ms(10),
        level_every: ms(5),
        ..Default::default()
    };
    cfg.sender.mode = Mode::File { fill_percent: 200 };
    // FEC alone: the floor below has no retransmission rounds in it (those
    // are sim_recovery's file-mode tests).
    cfg.sender.recovery = isochron::engine::Recovery::Fec;
    cfg.receiver.low_water = ms(40);
    cfg.receiver.high_water = ms(160);
    let subs = [stereo48k(0, ms(10)), sensor200(1, ms(10))];
    let (out, check) = run(&cfg, &subs, 30.0);
    assert!(out.finished);
    for i in 0..2 {
        let c = check.counts(i);
        assert_eq!(
            (c.corrupt_frames, c.missing_samples, c.out_of_order),
            (0, 0, 0)
        );
    }
    assert_eq!(check.counts(0).samples, 48_000 * 30);
    // Marks: the floor is the FEC window (file mode gives one block all of
    // the latency's FEC half: (80 - 40 ms hold) / 2) + the longest frame
    // hold (the sensor's four 10 ms frames) + the measured spread (+-2 ms) +
    // one frame + 5 ms; playback starts there.
    let flow = out.receiver.flow;
    assert!((3_900..=4_000).contains(&flow.delay_spread_us), "{flow:?}");
    let hold = subs.iter().map(|d| d.unit_delay()).max().unwrap();
    let window = out.accept.as_ref().unwrap().fec_window_us as u64;
    assert_eq!((window, hold.as_micros()), (20_000, 40_000));
    assert_eq!(flow.floor_us, 60_000 + flow.delay_spread_us + 15_000);
    let (start_at, level) = out.playback_start.expect("playback started");
    assert!(
        level >= flow.start_level_us && level <= flow.start_level_us + 10_000,
        "start level {level} us, {flow:?}"
    );
    assert!(
        flow.start_level_us > 40_000,
        "above the configured low mark"
    );
    assert_eq!(
        flow.lead_us, 160_000,
        "the configured high mark covers the path"
    );
    // After the fill (at twice real time), the buffer sits one lead minus the
    // round trip (20 ms) ahead, within a frame and the jitter; then the end
    // of the stream drains it.
    let steady: Vec<u64> = out
        .levels
        .iter()
        .filter(|&&(t, _)| t > start_at + ms(500) && t < start_at + ms(29_500))
        .map(|&(_, l)| l)
        .collect();
    assert!(steady.len() > 5000);
    let (lo, hi) = steady
        .iter()
        .fold((u64::MAX, 0), |(lo, hi), &l| (lo.min(l), hi.max(l)));
    assert!(lo >= 120_000 && hi <= 150_000, "level ranged {lo}..{hi} us");
    // Ten credits a second, each one read; no PAUSE or RESUME.
    let credits = out
        .flow
        .iter()
        .filter(|e| matches!(e.msg, Control::Credit(_)))
        .count() as u64;
    assert!((290..=300).contains(&credits), "{credits} credits");
    assert_eq!(credits, flow.credits);
    assert_eq!(out.sender.credits, credits, "ideal path: all arrive");
    assert_eq!(out.flow.len() as u64, credits);
    assert_eq!(out.receiver.substreams[0].frames.underruns, 0);
    assert_eq!(out.receiver.packets.late, 0);
    assert!(flow.min_slack_us >= 55_000, "{flow:?}");
}

#[test]
fn adaptive_fec_meets_its_target_where_the_fixed_code_does_not() {
    use isochron::engine::FecParams;
    use isochron::engine::sim::Loss;
    let run_with = |target: Option<f64>| {
        let mut cfg = SimConfig {
            seed: 8,
            link: Impairment {
                loss: Loss::from_mean(0.06, 1.0),
                delay: ms(20),
                jitter: ms(5),
                ..Default::default()
            },
            ..Default::default()
        };
        cfg.sender.fec = FecParams {
            k: 16,
            m: 4,
            depth: 1,
            window_us: 10_000, // ~10 packets a block at 1000 packets/s
            auto_depth: false,
        };
        cfg.sender.fec_target = target;
        // FEC against FEC: nothing asked for again.
        cfg.sender.recovery = isochron::engine::Recovery::Fec;
        let (out, check) = run(&cfg, &[stereo48k(0, ms(1))], 300.0);
        assert!(out.finished);
        assert_eq!(check.counts(0).samples, 48_000 * 300);
        out
    };
    let fixed = run_with(None);
    let adaptive = run_with(Some(1e-4));
    let (f, a) = (&fixed.receiver, &adaptive.receiver);
    eprintln!(
        "fixed: residual {:.2e}, overhead {:.0} %; adaptive: residual {:.2e}, overhead {:.0} %",
        f.residual_loss_ratio,
        fixed.sender.fec_overhead_ratio * 100.0,
        a.residual_loss_ratio,
        adaptive.sender.fec_overhead_ratio * 100.0
    );
    assert!(
        f.residual_loss_ratio > 2e-4,
        "the fixed 16+4 code is too weak here"
    );
    assert!(a.residual_loss_ratio <= 1e-4, "adaptation meets its target");
    assert!(adaptive.sender.fec_overhead_ratio > fixed.sender.fec_overhead_ratio);
    assert!(
        adaptive.sender.fec_overhead_ratio < 1.0,
        "but not by brute force"
    );
}

#[test]
fn file_mode_start_up_waits_for_the_first_frames_despite_reordering() {
    use isochron::engine::Mode;
    // The head start leaves as a burst; jitter and reordering make later
    // frames overtake frame 0. Playback must not start (and make frame 0
    // due) before frame 0 is here.
    for seed in 0..20 {
        let mut cfg = SimConfig {
            seed,
            link: Impairment {
                delay: ms(5),
                jitter: ms(4),
                reorder: 0.2,
                reorder_by: ms(6),
                ..Default::default()
            },
            control_delay: ms(5),
            ..Default::default()
        };
        cfg.sender.mode = Mode::File { fill_percent: 200 };
        let (out, check) = run(&cfg, &[stereo48k(0, ms(10)), sensor200(1, ms(10))], 2.0);
        assert!(out.finished);
        for i in 0..2 {
            let c = check.counts(i);
            assert_eq!(
                (c.missing_samples, c.corrupt_frames, c.out_of_order),
                (0, 0, 0),
                "seed {seed} substream {i}: {c:?}"
            );
        }
    }
}
