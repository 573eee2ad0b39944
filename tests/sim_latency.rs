//! Adaptive latency in deterministic simulation: the link's jitter steps
//! from 2 ms to 40 ms and back; the target must rise within 2 s of the
//! step with under 1 % of frames concealed meanwhile, and come back within
//! 30 s of the jitter falling. Every sample still arrives in order.

mod common;

use std::time::Duration;

use common::{ms, stereo48k};
use isochron::engine::config::LatencyBounds;
use isochron::engine::sim::impair::Impairment;
use isochron::engine::sim::media::{PatternCheck, PatternSource};
use isochron::engine::sim::{self, SimConfig};
use isochron::engine::time::Time;

#[test]
fn the_target_follows_a_jitter_step_up_and_back_down() {
    let seconds = 120.0;
    let (up, down) = (30.0, 60.0);
    let mut cfg = SimConfig {
        link: Impairment {
            delay: ms(50),
            jitter: ms(2),
            jitter_steps: vec![
                (Duration::from_secs_f64(up), ms(40)),
                (Duration::from_secs_f64(down), ms(2)),
            ],
            ..Default::default()
        },
        level_every: ms(100),
        ..Default::default()
    };
    cfg.receiver.latency = ms(300);
    cfg.receiver.adaptive = Some(LatencyBounds {
        min: ms(20),
        max: ms(300),
    });
    let mut d = stereo48k(0, ms(10));
    d.length = Some((48_000.0 * seconds) as u64);
    let subs = vec![d];
    let mut source = PatternSource::new(&subs, None);
    let mut check = PatternCheck::new(&subs);
    // (deadline, concealed) of every frame.
    let mut frames: Vec<(Time, bool)> = Vec::new();
    let out = sim::run(&cfg, subs.clone(), &mut source, &mut |f| {
        frames.push((f.deadline, f.mask.count_present() < f.mask.len()));
        check.on_frame(&f);
    })
    .expect("session runs");
    assert!(out.finished, "{out:#?}");
    let c = check.counts(0);
    assert_eq!(c.samples, (48_000.0 * seconds) as u64, "sample count equal");
    assert_eq!((c.corrupt_frames, c.out_of_order), (0, 0));

    let t0 = out.start.as_micros() as f64 * 1e-6;
    let at = |s: f64| {
        out.latency_targets
            .iter()
            .rev()
            .find(|(t, _)| (t.as_micros() as f64 * 1e-6 - t0) <= s)
            .map(|(_, v)| *v)
            .expect("sampled")
    };
    let calm = at(up - 1.0);
    assert!(calm < 30_000, "calm target {calm} us");
    let risen = at(up + 2.0);
    assert!(
        risen >= 70_000,
        "2 s after the step: {risen} us (calm {calm})"
    );
    // Frames due during the rise (the step, 2 s on, and the 3 s after it).
    let in_window = |t: &Time, a: f64, b: f64| {
        let s = t.as_micros() as f64 * 1e-6 - t0;
        s >= a && s < b
    };
    let rise: Vec<bool> = frames
        .iter()
        .filter(|(t, _)| in_window(t, up, up + 5.0))
        .map(|&(_, c)| c)
        .collect();
    let concealed = rise.iter().filter(|&&c| c).count();
    assert!(
        (concealed as f64) < 0.01 * rise.len() as f64,
        "{concealed} of {} frames concealed during the rise",
        rise.len()
    );
    let back = at(down + 30.0);
    eprintln!(
        "target: calm {calm} us, 2 s after the step {risen} us, 30 s after the fall {back} us; \
         {concealed} of {} frames concealed in the 5 s from the step",
        rise.len()
    );
    assert!(
        back <= calm + 5_000,
        "30 s after the jitter fell: {back} us (calm {calm})"
    );
}
