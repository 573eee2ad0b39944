//! Clock drift in deterministic simulation: the playout hands 10 ms frames
//! over on its clock (with tick jitter), a sound card takes 256-frame
//! periods on a clock 300 ppm fast or slow, for 30 minutes of media. The
//! drift loop must keep the queue at its target (within 2 ms) with no
//! underrun or overrun once started.

use std::collections::VecDeque;

use isochron::codecs::resample::Quality;
use isochron::codecs::signal::Rng;
use isochron::engine::playout::drift::{DriftConfig, DriftPull, LastPush, SampleQueue};
use isochron::engine::time::Time;

const RATE: f64 = 48_000.0;
const FRAME: usize = 480;
const PERIOD: usize = 256;

struct Run {
    underruns: u64,
    overruns: u64,
    worst_us: f64,
    final_speed: f64,
    frames_out: u64,
}

fn run(ppm: f64, media_s: f64, quality: Quality, seed: u64) -> Run {
    let target_us = 10_000;
    let mut cfg = DriftConfig::new(RATE, 2, target_us);
    cfg.quality = quality;
    let mut pull = DriftPull::new(cfg).unwrap();
    let cap = pull.queue_capacity(FRAME);
    let mut queue: VecDeque<f32> = VecDeque::with_capacity(cap);
    let mut rng = Rng::new(seed);
    let frames = (media_s * 1e6 / 10_000.0) as u64;
    let card_period_us = PERIOD as f64 / (RATE * (1.0 + ppm * 1e-6)) * 1e6;
    let start = 1_000_000.0;
    let mut n = 0u64;
    let mut k = 0u64;
    let mut push = LastPush::default();
    let mut out = vec![0f32; PERIOD * 2];
    let mut worst = 0.0f64;
    let startup_us = 60e6;
    let (mut under0, mut over0) = (0, 0);
    let mut phase = 0.0f64;
    while n < frames {
        // The playout's tick: on time within +-0.2 ms.
        let t_push = start + n as f64 * 10_000.0 + rng.range(-200.0, 200.0);
        let t_pull = start + 5_000.0 + k as f64 * card_period_us;
        if t_push <= t_pull {
            let at = Time::from_micros(t_push as u64);
            if queue.len() + FRAME * 2 > cap {
                pull.note_overrun();
            } else {
                for _ in 0..FRAME {
                    let v = (phase.sin() * 0.5) as f32;
                    phase += 2.0 * std::f64::consts::PI * 440.0 / RATE;
                    queue.push_back(v);
                    queue.push_back(-v);
                }
            }
            push = LastPush {
                at,
                frames: FRAME as u32,
            };
            n += 1;
        } else {
            let at = Time::from_micros(t_pull as u64);
            pull.pull(at, &mut queue as &mut dyn SampleQueue, push, &mut out);
            let s = pull.stats();
            if t_pull - start < startup_us {
                (under0, over0) = (s.underruns, s.overruns);
            } else {
                worst = worst.max((s.level_us - s.target_us).abs());
            }
            k += 1;
        }
    }
    let s = pull.stats();
    Run {
        underruns: s.underruns - under0,
        overruns: s.overruns - over0,
        worst_us: worst,
        final_speed: s.speed,
        frames_out: s.frames_out,
    }
}

#[test]
fn thirty_minutes_at_plus_and_minus_300_ppm_stay_on_target() {
    for ppm in [300.0, -300.0] {
        let r = run(ppm, 1800.0, Quality::Fast, 7);
        eprintln!(
            "{ppm} ppm: worst level error {:.0} us after start-up, speed {:.6}",
            r.worst_us, r.final_speed
        );
        assert_eq!(
            (r.underruns, r.overruns),
            (0, 0),
            "{ppm} ppm: underruns/overruns after start-up"
        );
        assert!(
            r.worst_us <= 2_000.0,
            "{ppm} ppm: level {:.0} us off target",
            r.worst_us
        );
        // A card 300 ppm fast needs 300 ppm less input per output frame.
        let want = 1.0 / (1.0 + ppm * 1e-6);
        assert!(
            (r.final_speed - want).abs() < 50e-6,
            "{ppm} ppm: speed {} (want {want})",
            r.final_speed
        );
        assert!(r.frames_out as f64 > 1790.0 * RATE);
    }
}

#[test]
fn the_sinc_resampler_holds_the_same_loop() {
    // Same loop, the quality devices use, over a shorter run.
    let r = run(300.0, 60.0, Quality::High, 3);
    assert_eq!((r.underruns, r.overruns), (0, 0));
    assert!(
        r.worst_us <= 2_000.0,
        "level {:.0} us off target",
        r.worst_us
    );
}
