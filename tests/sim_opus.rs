//! Opus on the wire, in deterministic simulation (must-show 1 of issue 12):
//! a music signal at 96 kbit/s stereo through the whole pipeline (sender
//! core, FEC, impaired link, jitter buffer, playout, decoder) comes out with
//! the input's sample count, aligned to the sample; its SNR and a perceptual
//! proxy are reported; at 5 % loss with FEC the concealed share is reported
//! beside PCM's, and so is the bitrate on the wire.

mod common;

use common::ms;
use isochron::codecs::encoding::{decode, encode};
use isochron::codecs::opus::OpusConfig;
use isochron::codecs::quality::{band_lsd_db, snr_db};
use isochron::codecs::signal::music;
use isochron::codecs::{Encoding, Rate, StreamFormat};
use isochron::engine::catalog::SubstreamDesc;
use isochron::engine::codec::WireCodec;
use isochron::engine::sim::impair::Impairment;
use isochron::engine::sim::{self, Loss, SimConfig, SimOutcome};
use isochron::engine::{FrameRead, FrameSource};

const SECS: f64 = 8.0;

/// A file-like source of one substream's wire bytes.
struct Music {
    desc: SubstreamDesc,
    bytes: Vec<u8>,
}

impl FrameSource for Music {
    fn read_frame(&mut self, _: usize, frame: u64, out: &mut [u8]) -> FrameRead {
        let stride = self.desc.format.stride();
        let total = self.bytes.len() / stride;
        let a = self.desc.frame_start(frame) as usize;
        if a >= total {
            return FrameRead::End;
        }
        let n = (out.len() / stride).min(total - a);
        out[..n * stride].copy_from_slice(&self.bytes[a * stride..(a + n) * stride]);
        FrameRead::Ready(n)
    }
}

struct Run {
    out: SimOutcome,
    pcm: Vec<f64>,
    input: Vec<f64>,
    played: usize,
}

/// Music at `rate` (stereo) through a session; `codec` None is PCM.
fn session(rate: u32, codec: Option<OpusConfig>, loss: f64, seed: u64) -> Run {
    session_with(rate, codec, loss, seed, true)
}

fn session_with(rate: u32, codec: Option<OpusConfig>, loss: f64, seed: u64, fec: bool) -> Run {
    let format = StreamFormat::new(Encoding::L16, 2, Rate::hz(rate).unwrap()).unwrap();
    let frames = (rate as f64 * SECS) as usize;
    let input: Vec<f64> = music(5, Rate::hz(rate).unwrap(), frames)
        .iter()
        .map(|v| v * 0.8)
        .collect();
    let mut bytes = vec![0u8; input.len() * 2];
    encode(Encoding::L16, &input, &mut bytes);
    // What the receiver can at best give back: the L16 samples.
    let mut quantized = vec![0.0f64; input.len()];
    decode(Encoding::L16, &bytes, &mut quantized);
    let mut desc = SubstreamDesc::audio(0, "music.wav", format).with_length(frames as u64);
    if let Some(cfg) = codec {
        desc = desc.with_codec(WireCodec::opus(format, &cfg).unwrap());
    }
    let cfg = SimConfig {
        seed,
        link: Impairment {
            delay: ms(20),
            jitter: ms(5),
            loss: Loss::from_mean(loss, 1.0),
            ..Default::default()
        },
        ..Default::default()
    };
    let mut cfg = cfg;
    if !fec {
        // Nothing recovers a loss: what the codec's LBRR and PLC do alone.
        cfg.sender.recovery = isochron::engine::Recovery::Fec;
        cfg.sender.fec.m = 0;
        cfg.sender.fec_target = None;
    }
    let mut source = Music {
        desc: desc.clone(),
        bytes,
    };
    let mut pcm = vec![0.0f64; input.len()];
    let mut played = 0;
    let out = sim::run(&cfg, vec![desc.clone()], &mut source, &mut |f| {
        let at = desc.frame_start(f.frame) as usize * 2;
        let n = f.data.len() / 2;
        assert!(at + n <= pcm.len(), "frame {} beyond the stream", f.frame);
        assert!(f.mask.is_full(), "decoded frames are whole");
        decode(Encoding::L16, f.data, &mut pcm[at..at + n]);
        played += n / 2;
    })
    .expect("session runs");
    Run {
        out,
        pcm,
        input: quantized,
        played,
    }
}

/// SNR of `out` against `input` with `out` shifted by `lag` samples.
fn snr_at(out: &[f64], input: &[f64], lag: isize) -> f64 {
    let n = input.len() / 2;
    let (a, b): (Vec<f64>, Vec<f64>) = (100..n - 100)
        .flat_map(|i| [(i, 0), (i, 1)])
        .map(|(i, c)| (out[(i as isize + lag) as usize * 2 + c], input[i * 2 + c]))
        .unzip();
    snr_db(&a, &b)
}

fn concealed_share(out: &SimOutcome) -> f64 {
    let f = &out.receiver.substreams[0].frames;
    f.samples_concealed as f64 / f.samples_played as f64
}

fn wire_kbps(out: &SimOutcome) -> f64 {
    (out.sender.source_bytes + out.sender.repair_bytes) as f64 * 8.0 / SECS / 1000.0
}

#[test]
fn music_at_96k_stereo_through_the_pipeline_is_counted_aligned_and_clean() {
    for rate in [48_000, 44_100] {
        let run = session(rate, Some(OpusConfig::default()), 0.0, 1);
        assert!(run.out.finished, "{:#?}", run.out.receiver);
        assert_eq!(
            run.played,
            run.input.len() / 2,
            "sample count equal at {rate} Hz"
        );
        let frames = &run.out.receiver.substreams[0].frames;
        assert_eq!(frames.samples_played as usize, run.input.len() / 2);
        assert_eq!(frames.samples_concealed, 0);
        let at0 = snr_at(&run.pcm, &run.input, 0);
        for lag in [-8, -2, -1, 1, 2, 8] {
            let other = snr_at(&run.pcm, &run.input, lag);
            assert!(
                at0 > other,
                "{rate} Hz: aligned at lag 0 ({at0:.1} dB), not {lag} ({other:.1} dB)"
            );
        }
        let lsd = band_lsd_db(&run.pcm, &run.input, rate, 2);
        eprintln!(
            "opus 96 kbit/s stereo {rate} Hz: SNR {at0:.1} dB, band LSD {lsd:.2} dB, wire {:.1} kbit/s",
            wire_kbps(&run.out)
        );
        assert!(at0 > 12.0, "SNR {at0:.1} dB");
        assert!(lsd < 3.0, "band log-spectral distance {lsd:.2} dB");
    }
}

#[test]
fn at_5_percent_loss_with_fec_opus_conceals_beside_pcm() {
    let opus = session(48_000, Some(OpusConfig::default()), 0.05, 7);
    let pcm = session(48_000, None, 0.05, 7);
    for run in [&opus, &pcm] {
        assert!(run.out.finished);
        assert_eq!(run.played, run.input.len() / 2, "sample count equal");
        assert!(run.out.link.lost > 0);
    }
    let s = &opus.out.receiver.substreams[0];
    let (os, ps) = (concealed_share(&opus.out), concealed_share(&pcm.out));
    let snr = snr_at(&opus.pcm, &opus.input, 0);
    let lsd = band_lsd_db(&opus.pcm, &opus.input, 48_000, 2);
    eprintln!(
        "5 % loss, FEC at the defaults: concealed share opus {os:.2e} ({} frames from LBRR, {} by PLC), \
         PCM {ps:.2e}; opus SNR {snr:.1} dB, band LSD {lsd:.2} dB; wire: opus {:.1} kbit/s, PCM {:.1} kbit/s \
         (packets lost {} / {}, unrecovered {} / {})",
        s.codec_fec_frames,
        s.codec_plc_frames,
        wire_kbps(&opus.out),
        wire_kbps(&pcm.out),
        opus.out.receiver.packets.lost,
        pcm.out.receiver.packets.lost,
        opus.out.receiver.packets.unrecovered,
        pcm.out.receiver.packets.unrecovered,
    );
    // What FEC could not rebuild, the decoder played: counted alike.
    assert_eq!(s.codec_fec_frames + s.codec_plc_frames, s.frames.concealed);
    assert!(
        os < 0.01 && ps < 0.01,
        "FEC rebuilds most of 5 % loss: {os} {ps}"
    );
    assert!(wire_kbps(&opus.out) * 5.0 < wire_kbps(&pcm.out));
    assert!(snr > 8.0 && lsd < 4.0, "SNR {snr:.1} dB, LSD {lsd:.2} dB");
}

#[test]
fn without_fec_losses_are_rebuilt_from_lbrr_or_concealed_by_plc() {
    // 20 ms frames at 24 kbit/s: SILK/hybrid packets, which carry LBRR.
    let speechy = OpusConfig {
        frame_us: 20_000,
        bitrate: 24_000,
        loss_percent: 10,
        ..Default::default()
    };
    for (cfg, name) in [
        (OpusConfig::default(), "96 kbit/s 10 ms"),
        (speechy, "24 kbit/s 20 ms"),
    ] {
        let run = session_with(48_000, Some(cfg), 0.05, 11, false);
        assert!(run.out.finished);
        assert_eq!(run.played, run.input.len() / 2, "sample count equal");
        let s = &run.out.receiver.substreams[0];
        let lost = run.out.receiver.packets.lost;
        eprintln!(
            "opus {name}, 5 % loss, no FEC: {lost} packets lost, {} frames from LBRR, {} by PLC, \
             concealed share {:.3}, SNR {:.1} dB",
            s.codec_fec_frames,
            s.codec_plc_frames,
            concealed_share(&run.out),
            snr_at(&run.pcm, &run.input, 0)
        );
        assert!(lost > 0);
        assert_eq!(s.codec_fec_frames + s.codec_plc_frames, s.frames.concealed);
        assert_eq!(s.frames.concealed, lost, "one frame a packet");
        if cfg.frame_us == 20_000 {
            assert!(s.codec_fec_frames > 0, "LBRR used");
        }
    }
}
