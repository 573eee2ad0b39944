//! The whole core pipeline on one core: sender core + receiver core with
//! RS(16,4), no network. `cargo bench --bench pipeline`.
//!
//! Each iteration streams one second of 48 kHz stereo (10 ms frames, two
//! packets each, plus repairs) from source to playout; throughput is in
//! datagrams through both cores.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use isochron::codecs::{Encoding, Origin, Rate, StreamFormat};
use isochron::engine::catalog::{MediaKind, SubstreamDesc};
use isochron::engine::config::{ReceiverConfig, SenderConfig};
use isochron::engine::sim::PatternSource;
use isochron::engine::wire::control::{Control, FecParams};
use isochron::engine::{ReceiverCore, SenderCore, Time, handshake};

fn stereo() -> SubstreamDesc {
    SubstreamDesc {
        id: 0,
        name: "a".into(),
        kind: MediaKind::Audio,
        format: StreamFormat::new(Encoding::L16, 2, Rate::hz(48_000).unwrap()).unwrap(),
        frame_us: 10_000,
        sample_interleave: 1,
        frames_per_packet: 1,
        origin: Origin::Raw,
        length: None,
        codec: None,
    }
}

/// Stream `secs` of media through both cores; returns datagrams.
fn stream(secs: u64) -> u64 {
    let subs = vec![stereo()];
    let scfg = SenderConfig {
        fec: FecParams {
            k: 16,
            m: 4,
            depth: 1,
            window_us: 100_000,
            auto_depth: false,
        },
        ..Default::default()
    };
    let rcfg = ReceiverConfig {
        latency: Duration::from_millis(150),
        high_water: Duration::from_millis(300),
        ..Default::default()
    };
    let mut tx = SenderCore::new("bench", subs.clone(), &scfg).unwrap();
    let Control::Hello(hello) = tx.hello(None) else {
        unreachable!()
    };
    let accept = handshake::answer(&rcfg, &hello, 1).unwrap();
    let mut rx = ReceiverCore::new(&rcfg, &hello.session, &accept);
    let mut src = PatternSource::new(&subs, None);
    let mut now = Time::from_micros(1_000_000);
    tx.on_accept(now, &accept).unwrap();
    let mut datagrams = 0u64;
    let mut played = 0u64;
    for _ in 0..secs * 100 {
        now += Duration::from_millis(10);
        tx.poll(now, &mut src).unwrap();
        while let Some(d) = tx.poll_transmit() {
            rx.on_datagram(now, d);
            datagrams += 1;
        }
        rx.poll(now, &mut |f| played += f.data.len() as u64);
    }
    black_box(played);
    datagrams
}

fn pipeline(c: &mut Criterion) {
    let per_iter = stream(10);
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(per_iter));
    g.bench_function("rs16+4_stereo48k_10s", |b| b.iter(|| stream(10)));
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    targets = pipeline
}
criterion_main!(benches);
