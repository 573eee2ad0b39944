//! FEC per block at 1200-byte shards: isochron's encoder and decoder against
//! bare reed-solomon-erasure on the same parameters, in the same run.
//!
//! `cargo bench --bench fec`.
//!
//! - encode: ours folds each packet's shard into the parity as it leaves,
//!   then emits the repairs; bare encodes the prepared shards in one call.
//! - rebuild (`m` sources lost): ours handles the arrival that makes the
//!   block decodable: stores that shard, rebuilds, parses and hands on the
//!   lost packets (the other arrivals were stored untimed); bare reconstructs
//!   prepared buffers. The crate's inversion cache is warm in both, and both
//!   are timed per block with the same clock reads.
//! - ingest: ours storing a whole block as it arrives (one copy per shard,
//!   the receive-path cost that rebuild excludes), for the record.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use isochron::engine::Time;
use isochron::engine::fec::{FecDecoder, FecEncoder};
use isochron::engine::wire::packet::{self, Kind, SourceMeta};
use reed_solomon_erasure::galois_8::ReedSolomon;

const SHARD: usize = 1200;
const PARAMS: [(usize, usize); 3] = [(8, 2), (16, 4), (32, 8)];

/// Source packets whose shard (bytes 8..) is exactly SHARD bytes.
fn packets(k: usize) -> Vec<Vec<u8>> {
    let payload = SHARD - packet::SHARD_HEADER_LEN;
    (0..k)
        .map(|i| {
            let meta = SourceMeta {
                substream: 0,
                seq: i as u32,
                media_ts: 0,
                sender_ts: 0,
                group: 1,
                lane: 0,
                frag_index: 0,
                frag_count: 1,
                frames: 1,
            };
            let body: Vec<u8> = (0..payload).map(|b| (b * 7 + i * 13) as u8).collect();
            let mut buf = vec![0u8; packet::HEADER_LEN + payload];
            packet::write_shard_header(
                &mut buf[packet::SHARD_OFFSET..packet::HEADER_LEN],
                &meta,
                payload,
            );
            buf[packet::HEADER_LEN..].copy_from_slice(&body);
            buf
        })
        .collect()
}

/// One FEC block as datagrams: the `k` sources, then the `m` repairs.
fn datagrams(k: usize, m: usize) -> Vec<Vec<u8>> {
    let mut enc = FecEncoder::new(k, m, 1, Duration::from_secs(3600)).unwrap();
    let mut wire: Vec<Vec<u8>> = Vec::new();
    for mut p in packets(k) {
        let pos = enc.add_source(Time::ZERO, 0, &p[packet::SHARD_OFFSET..]);
        packet::write_block_header(&mut p[..packet::SHARD_OFFSET], Kind::Source, pos);
        wire.push(p);
    }
    enc.close(Time::ZERO, &mut |pos, meta, parity| {
        let mut buf = vec![0u8; packet::HEADER_LEN + parity.len()];
        packet::encode(&mut buf, Kind::Repair, pos, meta, parity);
        wire.push(buf);
    });
    wire
}

fn encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("fec_encode");
    for (k, m) in PARAMS {
        g.throughput(Throughput::Bytes((k * SHARD) as u64));
        let pk = packets(k);
        let rs = ReedSolomon::new(k, m).unwrap();
        let data: Vec<&[u8]> = pk.iter().map(|p| &p[packet::SHARD_OFFSET..]).collect();
        let mut parity = vec![vec![0u8; SHARD]; m];
        g.bench_function(BenchmarkId::new("bare", format!("{k}+{m}")), |b| {
            b.iter(|| rs.encode_sep(black_box(&data), &mut parity).unwrap())
        });
        let mut enc = FecEncoder::new(k, m, 1, Duration::from_secs(3600)).unwrap();
        g.bench_function(BenchmarkId::new("isochron", format!("{k}+{m}")), |b| {
            b.iter(|| {
                for p in &pk {
                    black_box(enc.add_source(Time::ZERO, 0, &p[packet::SHARD_OFFSET..]));
                }
                enc.close(Time::ZERO, &mut |pos, _, parity| {
                    black_box((pos, parity));
                });
            })
        });
    }
    g.finish();
}

fn rebuild(c: &mut Criterion) {
    let mut g = c.benchmark_group("fec_rebuild");
    for (k, m) in PARAMS {
        g.throughput(Throughput::Bytes((k * SHARD) as u64));
        let pk = packets(k);
        let rs = ReedSolomon::new(k, m).unwrap();
        // Shards as they would stand after m sources were lost.
        let mut all: Vec<Vec<u8>> = pk
            .iter()
            .map(|p| p[packet::SHARD_OFFSET..].to_vec())
            .collect();
        all.extend((0..m).map(|_| vec![0u8; SHARD]));
        {
            let (d, p) = all.split_at_mut(k);
            rs.encode_sep(d, p).unwrap();
        }
        let lost = |i: usize| i < m; // the first m sources
        g.bench_function(BenchmarkId::new("bare", format!("{k}+{m}")), |b| {
            let mut bufs = all.clone();
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let mut shards: Vec<(&mut [u8], bool)> = bufs
                        .iter_mut()
                        .enumerate()
                        .map(|(i, s)| (&mut s[..], !lost(i)))
                        .collect();
                    let t = Instant::now();
                    rs.reconstruct_data(&mut shards).unwrap();
                    total += t.elapsed();
                    black_box(&shards);
                }
                total
            })
        });
        // The same block as datagrams: sources k.., then repairs.
        let wire = datagrams(k, m);
        let arriving: Vec<packet::PacketView<'_>> = wire
            .iter()
            .enumerate()
            .filter(|(i, _)| !lost(*i))
            .map(|(_, w)| packet::parse(w).unwrap())
            .collect();
        let (last, rest) = arriving.split_last().expect("a block");
        let feed = |dec: &mut FecDecoder,
                    v: &packet::PacketView<'_>,
                    block: u32,
                    sink: &mut dyn FnMut(&SourceMeta, &[u8])| {
            let mut pos = v.pos;
            pos.block = block;
            match v.kind {
                Kind::Source => dec.on_source(Time::ZERO, pos, v.shard, sink),
                Kind::Repair => {
                    dec.on_repair(Time::ZERO, pos, v.meta.frames as usize, v.payload, sink)
                }
            }
        };
        let mut dec = FecDecoder::new(8, Duration::from_secs(3600));
        let mut block = 0u32;
        g.bench_function(BenchmarkId::new("isochron", format!("{k}+{m}")), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    // A fresh block each time, as on the wire; codecs stay warm.
                    block = block.wrapping_add(1);
                    for v in rest {
                        feed(&mut dec, v, block, &mut |_, _| {
                            unreachable!("not decodable yet")
                        });
                    }
                    let mut rebuilt = 0;
                    let t = Instant::now();
                    feed(&mut dec, last, block, &mut |_, p| rebuilt += p.len());
                    total += t.elapsed();
                    assert_eq!(rebuilt, m * (SHARD - packet::SHARD_HEADER_LEN));
                }
                total
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("fec_ingest");
    for (k, m) in PARAMS {
        g.throughput(Throughput::Bytes(((k + m) * SHARD) as u64));
        let wire = datagrams(k, m);
        let views: Vec<packet::PacketView<'_>> =
            wire.iter().map(|w| packet::parse(w).unwrap()).collect();
        let mut dec = FecDecoder::new(8, Duration::from_secs(3600));
        let mut block = 0u32;
        g.bench_function(BenchmarkId::new("isochron", format!("{k}+{m}")), |b| {
            b.iter(|| {
                block = block.wrapping_add(1);
                for v in &views {
                    let mut pos = v.pos;
                    pos.block = block;
                    match v.kind {
                        Kind::Source => dec.on_source(Time::ZERO, pos, v.shard, &mut |_, _| {}),
                        Kind::Repair => {
                            dec.on_repair(Time::ZERO, pos, k, v.payload, &mut |_, _| {})
                        }
                    }
                }
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = encode, rebuild
}
criterion_main!(benches);
