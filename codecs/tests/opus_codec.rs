//! Opus as a wire encoding, codec layer: music at 96 kbit/s stereo comes
//! out with the same sample count, aligned to the sample, with its SNR and
//! a perceptual proxy (band log-spectral distance) reported; other rates
//! and channel counts keep their rate and layout; losses are rebuilt from
//! in-band FEC where the next packet carries it, else concealed by PLC.

use isochron_codecs::Rate;
use isochron_codecs::opus::{Decoded, OpusConfig, OpusDecoder, OpusEncoder};
use isochron_codecs::quality::{band_lsd_db, snr_db, snr_db_aligned_frames};
use isochron_codecs::signal::{Rng, music};

/// Counts of how frames were produced: packet, FEC, PLC, corrupt.
#[derive(Debug, Default)]
struct Kinds {
    packet: usize,
    fec: usize,
    plc: usize,
    corrupt: usize,
}

/// Music (stereo, spread over `ch` channels) at `rate`, `secs` long.
fn signal(ch: usize, rate: u32, secs: f64) -> Vec<f32> {
    let frames = (rate as f64 * secs) as usize;
    let stereo = music(5, Rate::hz(rate).unwrap(), frames);
    (0..frames * ch)
        .map(|i| (stereo[(i / ch) * 2 + (i % ch) % 2] * 0.8) as f32)
        .collect()
}

/// Encodes `pcm` (fed in odd-sized pieces), drops the packets `lost` says,
/// decodes with FEC from the next packet when it is there.
fn through(
    pcm: &[f32],
    ch: u16,
    rate: u32,
    cfg: &OpusConfig,
    lost: &dyn Fn(usize) -> bool,
) -> (Vec<f32>, Kinds, Vec<Vec<u8>>) {
    let mut enc = OpusEncoder::new(ch, rate, cfg).unwrap();
    let mut packets = Vec::new();
    for piece in pcm.chunks(ch as usize * 777) {
        enc.push(piece, &mut |p| packets.push(p.to_vec())).unwrap();
    }
    enc.finish(&mut |p| packets.push(p.to_vec())).unwrap();
    let total = enc.samples_in();
    assert_eq!(total as usize, pcm.len() / ch as usize);
    let mut dec = OpusDecoder::new(enc.header(), rate).unwrap();
    let mut out = Vec::new();
    let mut kinds = Kinds::default();
    for i in 0..packets.len() {
        let this = (!lost(i)).then(|| &packets[i][..]);
        let next = packets.get(i + 1).filter(|_| !lost(i + 1)).map(|p| &p[..]);
        match dec.decode(this, next, &mut out).unwrap() {
            Decoded::Packet => kinds.packet += 1,
            Decoded::Fec => kinds.fec += 1,
            Decoded::Plc => kinds.plc += 1,
            Decoded::Corrupt => kinds.corrupt += 1,
        }
    }
    let n = dec.finish(total);
    assert_eq!(n, total, "the output must cover every input sample");
    out.truncate(n as usize * ch as usize);
    (out, kinds, packets)
}

fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// A seeded loss pattern of about `rate` (independent losses).
fn losses(rate: f64, seed: u64, n: usize) -> Vec<bool> {
    let mut rng = Rng::new(seed);
    (0..n + 2).map(|_| rng.next_f64() < rate).collect()
}

#[test]
fn music_at_96k_stereo_is_counted_aligned_and_clean() {
    let rate = 48_000;
    let pcm = signal(2, rate, 3.0);
    let cfg = OpusConfig::default();
    let (out, kinds, packets) = through(&pcm, 2, rate, &cfg, &|_| false);
    assert_eq!(out.len(), pcm.len(), "sample count");
    assert_eq!(kinds.packet, packets.len());
    let (x, y) = (f64s(&pcm), f64s(&out));
    let (best, lag) = snr_db_aligned_frames(&y, &x, 48, 2);
    let snr = snr_db(&y, &x);
    let lsd = band_lsd_db(&y, &x, rate, 2);
    let bytes: usize = packets.iter().map(Vec::len).sum();
    let kbps = bytes as f64 * 8.0 / 3.0 / 1000.0;
    eprintln!(
        "opus 96k stereo 10 ms: SNR {snr:.1} dB (best lag {lag}), band LSD {lsd:.2} dB, \
         {kbps:.1} kbit/s of packets"
    );
    assert_eq!(lag, 0, "aligned sample for sample (best SNR {best:.1} dB)");
    assert!(snr > 12.0, "waveform SNR {snr:.1} dB");
    assert!(lsd < 2.0, "band log-spectral distance {lsd:.2} dB");
    assert!((80.0..112.0).contains(&kbps), "{kbps:.1} kbit/s");
}

#[test]
fn every_frame_size_rate_and_channel_count_keeps_count_and_alignment() {
    for (ch, rate, frame_us, bitrate) in [
        (2u16, 48_000u32, 2_500u32, 128_000u32),
        (2, 48_000, 5_000, 96_000),
        (2, 48_000, 20_000, 96_000),
        (2, 44_100, 10_000, 96_000),
        (1, 16_000, 20_000, 32_000),
        (6, 48_000, 10_000, 256_000),
        (3, 32_000, 10_000, 128_000),
        (12, 48_000, 20_000, 384_000),
    ] {
        let pcm = signal(ch as usize, rate, 1.0);
        let cfg = OpusConfig {
            bitrate,
            frame_us,
            ..Default::default()
        };
        let (out, _, _) = through(&pcm, ch, rate, &cfg, &|_| false);
        assert_eq!(
            out.len(),
            pcm.len(),
            "{ch} ch {rate} Hz {frame_us} us: count"
        );
        let (snr, lag) = snr_db_aligned_frames(&f64s(&out), &f64s(&pcm), 24, ch as usize);
        eprintln!("{ch} ch {rate} Hz {frame_us} us {bitrate} bit/s: SNR {snr:.1} dB lag {lag}");
        assert_eq!(lag, 0, "{ch} ch {rate} Hz {frame_us} us: aligned");
        // Low for 5.1: the LFE channel is coded below 120 Hz only.
        assert!(
            snr > 6.0,
            "{ch} ch {rate} Hz {frame_us} us: SNR {snr:.1} dB"
        );
    }
}

#[test]
fn five_percent_loss_concealed_share_beside_pcm() {
    let rate = 48_000;
    let pcm = signal(2, rate, 4.0);
    let cfg = OpusConfig::default();
    let pattern = losses(0.05, 11, 1000);
    let (out, kinds, packets) = through(&pcm, 2, rate, &cfg, &|i| pattern[i]);
    let lost = (0..packets.len()).filter(|&i| pattern[i]).count();
    let frames = packets.len();
    let concealed = (kinds.fec + kinds.plc) as f64 / frames as f64;
    // PCM without FEC blocks conceals every lost frame: the loss itself.
    let pcm_share = lost as f64 / frames as f64;
    let snr = snr_db(&f64s(&out), &f64s(&pcm));
    let lsd = band_lsd_db(&f64s(&out), &f64s(&pcm), rate, 2);
    eprintln!(
        "opus 96k stereo at 5 % loss: {lost} of {frames} frames lost; rebuilt from LBRR {}, \
         PLC {}; concealed share {concealed:.3} (PCM: {pcm_share:.3}); SNR {snr:.1} dB, \
         band LSD {lsd:.2} dB",
        kinds.fec, kinds.plc
    );
    assert_eq!(out.len(), pcm.len());
    assert_eq!(kinds.fec + kinds.plc, lost);
    assert!(lsd < 4.0, "band LSD under loss {lsd:.2} dB");
}

#[test]
fn in_band_fec_rebuilds_what_plc_only_guesses() {
    // Speech-rate settings where libopus codes SILK/hybrid and so carries
    // LBRR: the same losses decoded with and without the next packet's FEC.
    let rate = 16_000;
    let pcm = signal(1, rate, 4.0);
    let cfg = OpusConfig {
        bitrate: 24_000,
        frame_us: 20_000,
        fec: true,
        loss_percent: 10,
    };
    let pattern: Vec<bool> = (0..1000).map(|i| i % 10 == 5).collect();
    let (with_fec, kinds, packets) = through(&pcm, 1, rate, &cfg, &|i| pattern[i]);
    // The same packets, each loss concealed by PLC alone.
    let mut enc = OpusEncoder::new(1, rate, &cfg).unwrap();
    enc.push(&pcm, &mut |_| {}).unwrap();
    let mut dec = OpusDecoder::new(enc.header(), rate).unwrap();
    let mut plc = Vec::new();
    for (i, p) in packets.iter().enumerate() {
        let this = (!pattern[i]).then_some(&p[..]);
        dec.decode(this, None, &mut plc).unwrap();
    }
    plc.truncate(pcm.len());
    let (x, a, b) = (f64s(&pcm), f64s(&with_fec), f64s(&plc));
    let (fec_snr, plc_snr) = (snr_db(&a, &x), snr_db(&b, &x));
    eprintln!(
        "16 kHz mono 24k, 10 % loss: {} frames from LBRR, {} PLC; SNR with FEC \
         {fec_snr:.1} dB, PLC only {plc_snr:.1} dB",
        kinds.fec, kinds.plc
    );
    assert!(kinds.fec > kinds.plc, "{kinds:?}");
    assert!(
        fec_snr > plc_snr + 1.0,
        "FEC {fec_snr:.1} dB vs PLC {plc_snr:.1} dB"
    );
}

#[test]
fn damaged_packets_and_bad_headers_do_not_panic() {
    let rate = 48_000;
    let pcm = signal(2, rate, 0.5);
    let cfg = OpusConfig::default();
    let mut enc = OpusEncoder::new(2, rate, &cfg).unwrap();
    let mut packets = Vec::new();
    enc.push(&pcm, &mut |p| packets.push(p.to_vec())).unwrap();
    let mut dec = OpusDecoder::new(enc.header(), rate).unwrap();
    let mut out = Vec::new();
    let mut rng = Rng::new(3);
    let mut corrupt = 0;
    for p in &packets {
        let mut junk: Vec<u8> = (0..rng.below(40) as usize)
            .map(|_| rng.next_u64() as u8)
            .collect();
        if junk.is_empty() {
            junk = p.clone();
        }
        if dec.decode(Some(&junk), None, &mut out).unwrap() == Decoded::Corrupt {
            corrupt += 1;
        }
    }
    assert!(corrupt > 0, "random bytes must not all decode");
    assert_eq!(
        dec.samples_out() + enc.header().pre_skip as u64,
        (packets.len() * 480) as u64,
        "one frame out per packet, damaged or not"
    );
    // Settings and headers a peer could send.
    assert!(
        OpusEncoder::new(
            2,
            rate,
            &OpusConfig {
                frame_us: 7_000,
                ..cfg
            }
        )
        .is_err()
    );
    assert!(OpusEncoder::new(0, rate, &cfg).is_err());
    assert!(OpusEncoder::new(256, rate, &cfg).is_err());
    let mut h = enc.header().clone();
    h.mapping.streams = 0;
    assert!(OpusDecoder::new(&h, rate).is_err());
    let mut h = enc.header().clone();
    h.mapping.table = vec![9, 9];
    assert!(OpusDecoder::new(&h, rate).is_err());
    let mut h = enc.header().clone();
    h.pre_skip = 1;
    assert!(OpusDecoder::new(&h, 44_100).is_err());
}
