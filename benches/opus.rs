//! Opus per 10 ms stereo frame at the default settings (96 kbit/s, in-band
//! FEC planned for 5 % loss): encode, decode, and the bitrate of the
//! packets beside PCM's. `cargo bench --bench opus`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use isochron::codecs::Rate;
use isochron::codecs::opus::{OpusConfig, OpusDecoder, OpusEncoder};
use isochron::codecs::signal::music;

fn stereo_music(secs: f64) -> Vec<f32> {
    let frames = (48_000.0 * secs) as usize;
    music(5, Rate::hz(48_000).unwrap(), frames)
        .iter()
        .map(|&v| (v * 0.8) as f32)
        .collect()
}

fn opus(c: &mut Criterion) {
    let cfg = OpusConfig::default();
    let pcm = stereo_music(10.0);
    let mut packets = Vec::new();
    let mut enc = OpusEncoder::new(2, 48_000, &cfg).unwrap();
    enc.push(&pcm, &mut |p| packets.push(p.to_vec())).unwrap();
    let bytes: usize = packets.iter().map(Vec::len).sum();
    let kbps = bytes as f64 * 8.0 / 10.0 / 1000.0;
    eprintln!(
        "opus default packets: {kbps:.1} kbit/s for 48 kHz stereo (L16 PCM: 1536.0 kbit/s, \
         {:.1}x less) before packet headers and FEC blocks",
        1536.0 / kbps
    );

    let frame = 480 * 2;
    let mut g = c.benchmark_group("opus_10ms_stereo");
    let mut enc = OpusEncoder::new(2, 48_000, &cfg).unwrap();
    let mut at = 0;
    g.bench_function("encode", |b| {
        b.iter(|| {
            let f = &pcm[at..at + frame];
            at = (at + frame) % (pcm.len() - frame);
            enc.push(black_box(f), &mut |p| {
                black_box(p);
            })
            .unwrap();
        })
    });
    let mut dec = OpusDecoder::new(enc.header(), 48_000).unwrap();
    let mut out = Vec::with_capacity(frame * 2);
    let mut i = 0;
    g.bench_function("decode", |b| {
        b.iter(|| {
            out.clear();
            dec.decode(Some(black_box(&packets[i])), None, &mut out)
                .unwrap();
            i = (i + 1) % packets.len();
            black_box(&out);
        })
    });
    g.finish();
}

criterion_group!(benches, opus);
criterion_main!(benches);
