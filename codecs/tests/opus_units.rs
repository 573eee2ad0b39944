//! Opus units (the engine's variable-size frames): every frame decodes to
//! exactly its input frame's samples, aligned, at every frame duration and
//! rate; a lost unit is rebuilt from the next unit's LBRR or concealed.

use isochron_codecs::Rate;
use isochron_codecs::opus::{Decoded, OpusConfig, OpusParams, UnitDecoder, UnitEncoder};
use isochron_codecs::quality::snr_db;
use isochron_codecs::signal::{Rng, music};

/// Samples of frame `n` at `rate` for `frame_us` frames (the engine's geometry).
fn frame_len(n: u64, rate: u32, frame_us: u32) -> usize {
    let before = |t: u64| (t as u128 * rate as u128).div_ceil(1_000_000) as u64;
    (before((n + 1) * frame_us as u64) - before(n * frame_us as u64)) as usize
}

struct Run {
    out: Vec<f32>,
    kinds: [usize; 4],
    bytes: usize,
    short: u64,
}

/// Frames of `pcm` in, units through a channel losing `lost(frame)`, frames out.
fn through(pcm: &[f32], ch: usize, rate: u32, cfg: &OpusConfig, lost: &dyn Fn(u64) -> bool) -> Run {
    let mut enc = UnitEncoder::new(ch as u16, rate, cfg, 1100).unwrap();
    let params: OpusParams = enc.params().clone();
    let mut units: Vec<Vec<u8>> = Vec::new();
    let (mut at, mut n) = (0, 0u64);
    while at < pcm.len() / ch {
        let len = frame_len(n, rate, cfg.frame_us).min(pcm.len() / ch - at);
        enc.push(&pcm[at * ch..(at + len) * ch], &mut |f, u| {
            assert_eq!(f as usize, units.len());
            units.push(u.to_vec())
        })
        .unwrap();
        at += len;
        n += 1;
    }
    enc.finish(n, &mut |f, u| {
        assert_eq!(f as usize, units.len());
        units.push(u.to_vec())
    })
    .unwrap();
    assert_eq!(units.len() as u64, n, "one unit per frame");
    let mut dec = UnitDecoder::new(&params, rate).unwrap();
    let mut out = vec![0.0; pcm.len()];
    let mut kinds = [0; 4];
    let mut at = 0;
    for f in 0..n {
        let len = frame_len(f, rate, cfg.frame_us).min(pcm.len() / ch - at);
        let this = (!lost(f)).then(|| &units[f as usize][..]);
        let next = units
            .get(f as usize + 1)
            .filter(|_| !lost(f + 1))
            .map(|u| &u[..]);
        let how = dec
            .decode(f, this, next, &mut out[at * ch..(at + len) * ch])
            .unwrap();
        kinds[match how {
            Decoded::Packet => 0,
            Decoded::Fec => 1,
            Decoded::Plc => 2,
            Decoded::Corrupt => 3,
        }] += 1;
        at += len;
    }
    Run {
        out,
        kinds,
        bytes: units.iter().map(Vec::len).sum(),
        short: dec.short(),
    }
}

fn signal(ch: usize, rate: u32, secs: f64) -> Vec<f32> {
    let frames = (rate as f64 * secs) as usize;
    let stereo = music(5, Rate::hz(rate).unwrap(), frames);
    (0..frames * ch)
        .map(|i| (stereo[(i / ch) * 2 + (i % ch) % 2] * 0.8) as f32)
        .collect()
}

/// SNR at lag `lag` (samples per channel, output behind input).
fn snr_at(out: &[f32], pcm: &[f32], ch: usize, lag: isize) -> f64 {
    let n = pcm.len() / ch;
    let skip = 2_000.min(n / 4);
    let (a, b): (Vec<f64>, Vec<f64>) = (skip..n - skip)
        .flat_map(|i| (0..ch).map(move |c| (i, c)))
        .map(|(i, c)| {
            let j = (i as isize + lag) as usize;
            (out[j * ch + c] as f64, pcm[i * ch + c] as f64)
        })
        .unzip();
    snr_db(&a, &b)
}

#[test]
fn every_frame_and_rate_is_aligned_to_the_sample() {
    for frame_us in [2_500, 5_000, 10_000, 20_000] {
        for rate in [44_100, 48_000, 22_050] {
            let pcm = signal(2, rate, 0.6);
            let cfg = OpusConfig {
                frame_us,
                bitrate: 128_000,
                ..Default::default()
            };
            let run = through(&pcm, 2, rate, &cfg, &|_| false);
            assert_eq!(run.out.len(), pcm.len());
            assert_eq!(
                run.short, 0,
                "{frame_us} us at {rate} Hz: the frame was not ready"
            );
            let at0 = snr_at(&run.out, &pcm, 2, 0);
            for lag in [-2, -1, 1, 2] {
                let other = snr_at(&run.out, &pcm, 2, lag);
                assert!(
                    at0 > other + 1.0,
                    "{frame_us} us at {rate} Hz: lag {lag} {other:.1} dB >= lag 0 {at0:.1} dB"
                );
            }
            assert!(at0 > 8.0, "{frame_us} us at {rate} Hz: SNR {at0:.1} dB");
        }
    }
}

#[test]
fn lost_units_are_rebuilt_or_concealed_without_shifting_the_timeline() {
    let rate = 48_000;
    let pcm = signal(2, rate, 2.0);
    // 20 ms frames at a speech-like bitrate: SILK/hybrid packets, with LBRR.
    let cfg = OpusConfig {
        frame_us: 20_000,
        bitrate: 24_000,
        loss_percent: 10,
        ..Default::default()
    };
    let mut rng = Rng::new(3);
    let lost: Vec<bool> = (0..200).map(|i| i > 0 && rng.next_f64() < 0.1).collect();
    let clean = through(&pcm, 2, rate, &cfg, &|_| false);
    let lossy = through(&pcm, 2, rate, &cfg, &|f| lost[f as usize]);
    assert_eq!(lossy.out.len(), pcm.len());
    assert_eq!(lossy.short, 0);
    let n_lost = lost.iter().take(100).filter(|&&l| l).count();
    assert_eq!(lossy.kinds[0] + lossy.kinds[1] + lossy.kinds[2], 100);
    assert_eq!(lossy.kinds[1] + lossy.kinds[2], n_lost);
    assert!(
        lossy.kinds[1] > 0,
        "some losses rebuilt from LBRR: {:?}",
        lossy.kinds
    );
    // The timeline survives the losses: against the loss-free decode the
    // best lag is still 0, and frames before the first loss are identical.
    let at0 = snr_at(&lossy.out, &clean.out, 2, 0);
    for lag in [-16, -4, -1, 1, 4, 16] {
        let other = snr_at(&lossy.out, &clean.out, 2, lag);
        assert!(at0 > other, "lag {lag}: {other:.1} dB vs {at0:.1} dB at 0");
    }
    let first = lost.iter().position(|&l| l).unwrap();
    let upto = (first - 1) * 960 * 2;
    assert_eq!(lossy.out[..upto], clean.out[..upto]);
    let (c, l) = (
        snr_at(&clean.out, &pcm, 2, 0),
        snr_at(&lossy.out, &pcm, 2, 0),
    );
    eprintln!(
        "24 kbit/s 20 ms, 10 % loss: SNR {l:.1} dB (no loss {c:.1} dB), kinds {:?}",
        lossy.kinds
    );
    assert!(c >= l);
    assert!(clean.bytes > 0);
}

#[test]
fn damaged_units_are_concealed_not_trusted() {
    let rate = 48_000;
    let pcm = signal(1, rate, 0.3);
    let cfg = OpusConfig::default();
    let mut enc = UnitEncoder::new(1, rate, &cfg, 1100).unwrap();
    let mut dec = UnitDecoder::new(enc.params(), rate).unwrap();
    let mut units = Vec::new();
    enc.push(&pcm, &mut |_, u| units.push(u.to_vec())).unwrap();
    let mut out = vec![0.0; 480];
    let garbage: [&[u8]; 4] = [&[], &[0], &[2, 0, 1, 7], &[1]];
    assert_eq!(
        dec.decode(0, Some(&units[0]), None, &mut out).unwrap(),
        Decoded::Packet
    );
    for (i, g) in garbage.iter().enumerate() {
        let how = dec.decode(1 + i as u64, Some(g), None, &mut out).unwrap();
        assert_eq!(how, Decoded::Corrupt, "{g:?}");
    }
    assert_eq!(dec.short(), 0);
}
