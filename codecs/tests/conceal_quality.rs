//! The default audio concealment beats silence by a clear margin on the
//! music-like test signal with 2 % of 10 ms frames lost (seeded), both when
//! whole frames are lost and when sample interleaving spreads the loss.

use isochron_codecs::conceal::Method;
use isochron_codecs::quality::score_concealment;
use isochron_codecs::signal::{Music, Rng, Sensor};
use isochron_codecs::{Encoding, Rate, StreamFormat};

const FRAME: usize = 480;

fn music(seconds: usize) -> (Vec<f64>, StreamFormat) {
    let rate = Rate::hz(48_000).unwrap();
    let mut v = vec![0.0; seconds * 48_000 * 2];
    Music::new(1, rate).fill(&mut v);
    (v, StreamFormat::new(Encoding::L16, 2, rate).unwrap())
}

fn losses(frames: usize, seed: u64) -> Vec<bool> {
    let mut rng = Rng::new(seed);
    (0..frames).map(|_| rng.next_f64() < 0.02).collect()
}

#[test]
fn waveform_beats_silence_on_lost_frames() {
    let (signal, format) = music(20);
    let lost = losses(signal.len() / 2 / FRAME, 2024);
    assert!(
        lost.iter().filter(|&&l| l).count() > 20,
        "enough losses to measure"
    );
    let score = |method, la| {
        score_concealment(&signal, format, FRAME, |f, _| !lost[f], method, la).unwrap()
    };
    let silence = score(Method::Silence, false);
    assert!(
        silence.gap_snr_db.abs() < 1e-9,
        "silence scores 0 dB over the gaps"
    );
    for la in [false, true] {
        let wave = score(Method::Waveform, la);
        let margin = wave.snr_db - silence.snr_db;
        assert!(
            margin >= 3.0,
            "look-ahead {la}: waveform {:.1} dB vs silence {:.1} dB",
            wave.snr_db,
            silence.snr_db
        );
        assert!(
            wave.gap_snr_db >= 3.0,
            "look-ahead {la}: {:.1} dB",
            wave.gap_snr_db
        );
        assert_eq!(wave.stats.samples, silence.stats.samples);
        assert_eq!(
            wave.stats.frames_lost,
            lost.iter().filter(|&&l| l).count() as u64
        );
    }
}

#[test]
fn interpolation_beats_silence_on_interleaved_loss() {
    // G = 4: a lost packet is every 4th sample of a group of 4 frames.
    let (signal, format) = music(10);
    let frames = signal.len() / 2 / FRAME;
    let lanes = losses(frames, 2025);
    let present = |f: usize, i: usize| {
        let g = f / 4;
        let idx = (f % 4) * FRAME + i;
        !lanes[g * 4 + idx % 4]
    };
    let silence =
        score_concealment(&signal, format, FRAME, present, Method::Silence, false).unwrap();
    let wave = score_concealment(&signal, format, FRAME, present, Method::Waveform, false).unwrap();
    assert!(
        wave.snr_db - silence.snr_db >= 15.0,
        "waveform {:.1} dB vs silence {:.1} dB",
        wave.snr_db,
        silence.snr_db
    );
    // Without look-ahead only a lane's last sample of a frame lacks a right
    // neighbour; with it, every isolated sample is interpolated.
    assert!(wave.stats.synthesized * 50 < wave.stats.samples);
    let ahead = score_concealment(&signal, format, FRAME, present, Method::Waveform, true).unwrap();
    assert_eq!(ahead.stats.synthesized, 0);
    assert!(
        ahead.snr_db > wave.snr_db - 0.1,
        "{} vs {}",
        ahead.snr_db,
        wave.snr_db
    );
}

#[test]
fn linear_with_look_ahead_beats_hold_on_sensors() {
    let rate = Rate::hz(100).unwrap();
    let format = StreamFormat::new(Encoding::F64, 3, rate).unwrap();
    let mut signal = vec![0.0; 600 * 100 * 3];
    Sensor::new(1, rate).fill(&mut signal);
    let lost = losses(signal.len() / 3 / 10, 7);
    let score = |m, la| score_concealment(&signal, format, 10, |f, _| !lost[f], m, la).unwrap();
    let hold = score(Method::Hold, false);
    let linear = score(Method::Linear, true);
    assert!(
        linear.snr_db > hold.snr_db + 6.0,
        "{:.1} vs {:.1}",
        linear.snr_db,
        hold.snr_db
    );
    assert!(hold.snr_db > score(Method::Silence, false).snr_db + 20.0);
}
