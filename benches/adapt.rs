//! Adaptive FEC's plan: what one retune costs the sender (every report, a
//! second apart, and once at the start with a prior loss and nothing
//! measured), on the paths the bench and the side-by-side runs use.
//!
//! `cargo bench --bench adapt`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use isochron::engine::fec::FecAdapter;
use isochron::engine::fec::adapt::{ArqPath, LossSample};

/// Blocks of 16+4 at the CLI's defaults, hybrid, target 1e-4.
fn adapter(arq: ArqPath, sample: Option<LossSample>) -> FecAdapter {
    let mut a = FecAdapter::new(1e-4, 16, 4, true);
    a.set_arq(Some(arq));
    if let Some(s) = sample {
        a.observe_sample(s);
    }
    a
}

fn plans(c: &mut Criterion) {
    // Loopback: eight rounds fit, no loss measured yet (the prior).
    let loopback = ArqPath {
        rounds: 8,
        waited_rounds: 8.0,
        rtt_packets: 1,
        copy_gap: 1,
        eager: 0.0,
        reach: 1.0,
    };
    // 20 ms each way in 80 ms: one round, most losses asked for at once.
    let one_round = ArqPath {
        rounds: 1,
        waited_rounds: 1.0,
        rtt_packets: 10,
        copy_gap: 4,
        eager: 0.8,
        reach: 1.0,
    };
    let ge = LossSample {
        total: 200,
        lost: 4,
        runs: 2,
        ..Default::default()
    };
    let cases = [
        ("first plan, loopback", adapter(loopback, None)),
        ("GE 2 % burst 3, one round", adapter(one_round, Some(ge))),
    ];
    let mut g = c.benchmark_group("adapt_choose");
    for (name, a) in &cases {
        g.bench_function(*name, |b| b.iter(|| black_box(a.choose_plan(16, 1))));
    }
    g.finish();
}

criterion_group!(benches, plans);
criterion_main!(benches);
