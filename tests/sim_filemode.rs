//! File mode on bad networks, in deterministic simulation (issue 15): the
//! README's bad-network links, file mode against live mode with the same
//! seeds, default options otherwise, the control stream modelled on QUIC's
//! (each message a packet on the impaired path, a lost one resent after
//! loss detection and holding back those behind it).

mod common;

use common::{ms, run, stereo48k};
use isochron::engine::config::SenderConfig;
use isochron::engine::sim::{ControlModel, Impairment, Loss, SimConfig, SimOutcome};

/// The links of the table, as `isochron netem` options.
fn links() -> Vec<(&'static str, Impairment)> {
    let link = |loss: f64, burst: f64, delay: u64, jitter: u64| Impairment {
        loss: Loss::from_mean(loss, burst),
        delay: ms(delay),
        jitter: ms(jitter),
        ..Default::default()
    };
    vec![
        ("--jitter 10ms --delay 15ms", link(0.0, 1.0, 15, 10)),
        ("--loss 5% --delay 15ms", link(0.05, 1.0, 15, 0)),
        ("--loss 5% --burst 3", link(0.05, 3.0, 0, 0)),
        ("--loss 5% --burst 3 --delay 15ms", link(0.05, 3.0, 15, 0)),
        (
            "--loss 5% --burst 3 --jitter 10ms --delay 15ms",
            link(0.05, 3.0, 15, 10),
        ),
    ]
}

/// 10 s of 48 kHz stereo over `link` (both ways, control included), the
/// sender's defaults for its mode; checked sample by sample.
fn session(link: &Impairment, seed: u64, live: bool) -> SimOutcome {
    let mut cfg = SimConfig {
        seed,
        link: link.clone(),
        control: ControlModel::quic_over(link),
        control_delay: link.delay,
        level_every: ms(5),
        ..Default::default()
    };
    if !live {
        cfg.sender = SenderConfig::file(2.0);
    }
    let (out, check) = run(&cfg, &[stereo48k(0, ms(10))], 10.0);
    assert!(out.finished, "{out:#?}");
    let c = check.counts(0);
    assert_eq!(c.samples, 480_000, "sample count equal");
    assert_eq!((c.corrupt_frames, c.out_of_order), (0, 0));
    assert_eq!(
        out.receiver.substreams[0].frames.concealed,
        c.concealed_frames
    );
    out
}

#[test]
fn file_mode_never_does_worse_than_live_on_the_readme_bad_links() {
    for (name, link) in links() {
        for seed in [5, 9] {
            let file = session(&link, seed, false);
            let live = session(&link, seed, true);
            let (f, l) = (&file.receiver, &live.receiver);
            eprintln!(
                "{name:48} seed {seed}: file {} / {} / {} / {:.2} % | live {:.2} % | {:?}",
                f.packets.unrecovered,
                f.packets.late,
                f.substreams[0].frames.underruns,
                f.residual_loss_ratio * 100.0,
                l.residual_loss_ratio * 100.0,
                f.flow
            );
            let at = format!("{name}, seed {seed}");
            assert_eq!(f.packets.late, 0, "{at}: no late packets");
            assert_eq!(f.substreams[0].frames.underruns, 0, "{at}: no underruns");
            assert!(
                f.residual_loss_ratio <= l.residual_loss_ratio,
                "{at}: file {} > live {}",
                f.residual_loss_ratio,
                l.residual_loss_ratio
            );
            // Every packet arrived early enough for its block's repairs:
            // the FEC span (window x depth + frame hold) ahead of its playout.
            let span = 35_000 * 2 + 10_000;
            assert!(
                f.flow.min_slack_us >= span,
                "{at}: least early packet {} us ahead",
                f.flow.min_slack_us
            );
            assert!(f.flow.credits > 50, "{at}: {:?}", f.flow);
        }
    }
}
