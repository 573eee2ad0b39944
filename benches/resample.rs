//! The drift resampler's cost: one stereo 48 kHz stream, one second of
//! audio per iteration, at a speed 300 ppm off (a typical sound card), in
//! both qualities. The figure per second of audio is the fraction of a
//! core one stream takes.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use isochron::codecs::resample::{DriftResampler, Quality};

fn one_second(r: &mut DriftResampler, input: &[f32], out: &mut [f32]) {
    let mut made = 0;
    let mut at = 0;
    while made < 48_000 {
        let need = r.input_needed() * 2;
        if at + need > input.len() {
            at = 0;
        }
        r.process(&input[at..at + need], out).expect("resamples");
        at += need;
        made += r.chunk();
    }
}

fn bench(c: &mut Criterion) {
    let input: Vec<f32> = (0..96_000 * 2)
        .map(|i| ((i / 2) as f32 * 0.0576).sin() * 0.5)
        .collect();
    let mut g = c.benchmark_group("resample_stereo_48k");
    g.throughput(Throughput::Elements(48_000));
    g.sample_size(20);
    for (name, q) in [("sinc", Quality::High), ("fast", Quality::Fast)] {
        let mut r = DriftResampler::new(2, 128, q, 1.02).unwrap();
        r.set_speed(1.0 + 300e-6);
        let mut out = vec![0f32; 256];
        g.bench_function(format!("{name}_1s"), |b| {
            b.iter(|| one_second(&mut r, &input, &mut out))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
