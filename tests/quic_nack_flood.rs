//! Issue 13's must-show 4 over real QUIC: a hostile receiver floods the
//! sender with NACK datagrams (the same ranges again and again, substreams
//! and sequence numbers it never sent, the largest ranges the format
//! allows, and bytes that are no NACK at all). The sender's work per NACK
//! is bounded by its retransmission store, not by what the NACK names: it
//! counts and ignores what it cannot answer, sends no more again than it
//! sent once, keeps its memory, and streams to the end on time.
//!
//! The receiver here is a bare quinn endpoint speaking just enough of the
//! control protocol (accept, bye) to keep the session up. One test in this
//! file, so the process's memory is the flood's alone.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{feed_pattern, ms, stereo48k, with_length};
use isochron::engine::Recovery;
use isochron::engine::arq::store::INITIAL_CREDIT;
use isochron::engine::net::quic::control_stream::{self, ControlReader};
use isochron::engine::net::quic::transport;
use isochron::engine::net::tls::{Trust, server_config};
use isochron::engine::net::{Identity, Sender, SenderOptions};
use isochron::engine::wire::control::{Accept, Control};
use isochron::engine::wire::nack::{MAX_NACK_RANGES, MAX_RANGE_COUNT, NackRange, NackWriter};
use isochron::engine::wire::packet;

/// One NACK of `ranges` (at most [`MAX_NACK_RANGES`]).
fn nack(ranges: impl IntoIterator<Item = NackRange>) -> bytes::Bytes {
    let mut w = NackWriter::new();
    for r in ranges {
        if !w.push(r) {
            break;
        }
    }
    bytes::Bytes::copy_from_slice(w.bytes())
}

/// The four kinds of hostile NACK, in turn, around the newest sequence
/// number seen (`seq`).
fn hostile(turn: u64, seq: u32) -> bytes::Bytes {
    let r = |substream, first, count| NackRange {
        substream,
        first,
        count,
    };
    match turn % 4 {
        // The same few packets named again and again.
        0 => nack((0..MAX_NACK_RANGES).map(|i| r(0, seq.wrapping_sub(8 + (i % 2) as u32 * 4), 3))),
        // Substreams and sequence numbers never sent.
        1 => nack((0..MAX_NACK_RANGES as u32).map(|i| {
            if i % 2 == 0 {
                r(900 + i as u16, seq, 100)
            } else {
                r(0, seq.wrapping_add(1_000_000 + i * 70_000), MAX_RANGE_COUNT)
            }
        })),
        // The largest ranges there are, over everything ever sent and more.
        2 => nack((0..MAX_NACK_RANGES as u32).map(|i| {
            r(
                0,
                seq.wrapping_sub(MAX_RANGE_COUNT / 2).wrapping_add(i),
                MAX_RANGE_COUNT,
            )
        })),
        // Not a NACK.
        _ => bytes::Bytes::from(vec![0xff; 77]),
    }
}

#[test]
fn a_hostile_nack_flood_costs_the_sender_bounded_work_and_memory() {
    let secs = 6.0;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let identity = Identity::ephemeral().unwrap();
    let endpoint = {
        let _g = rt.enter();
        let cfg = server_config(
            &identity,
            Arc::new(transport::config(Duration::from_secs(10))),
        )
        .unwrap();
        quinn::Endpoint::server(cfg, "127.0.0.1:0".parse().unwrap()).unwrap()
    };
    let addr = endpoint.local_addr().unwrap();
    let flooded = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let newest = Arc::new(AtomicU32::new(0));
    let (f, d, n) = (flooded.clone(), done.clone(), newest);
    let receiver = rt.spawn(async move {
        let conn = endpoint.accept().await.unwrap().await.unwrap();
        let (mut send, recv) = conn.accept_bi().await.unwrap();
        let mut reader = ControlReader::new(recv);
        let Some(Control::Hello(_)) = reader.next(Duration::from_secs(10)).await.unwrap() else {
            panic!("no hello");
        };
        let accept = Accept {
            session_id: 1,
            latency_us: 80_000,
            low_water_us: 40_000,
            high_water_us: 160_000,
            fec_window_us: 20_000,
            max_depth: 1,
        };
        control_stream::send(&mut send, &Control::Accept(accept))
            .await
            .unwrap();
        // Media in: the newest sequence number aims the flood.
        let c = conn.clone();
        let aim = n.clone();
        let media = tokio::spawn(async move {
            while let Ok(b) = c.read_datagram().await {
                if let Ok(p) = packet::parse(&b) {
                    n.fetch_max(p.meta.seq, Ordering::Relaxed);
                }
            }
        });
        // The flood: 16 NACKs every millisecond, as fast as QUIC takes them.
        let c = conn.clone();
        let flood = tokio::spawn(async move {
            let mut turn = 0u64;
            let mut tick = tokio::time::interval(Duration::from_millis(1));
            loop {
                tick.tick().await;
                for _ in 0..16 {
                    let seq = aim.load(Ordering::Relaxed);
                    if c.send_datagram(hostile(turn, seq)).is_err() {
                        return;
                    }
                    f.fetch_add(1, Ordering::Relaxed);
                    turn += 1;
                }
            }
        });
        // The end of stream is answered with a bye.
        loop {
            match reader.next(Duration::from_secs(30)).await {
                Ok(Some(Control::EndOfStream(_))) => break,
                Ok(Some(_)) => {}
                other => panic!("control stream: {other:?}"),
            }
        }
        d.store(true, Ordering::Relaxed);
        flood.abort();
        let _ = control_stream::send(&mut send, &Control::Bye).await;
        let _ = send.finish();
        conn.closed().await;
        media.abort();
    });
    let before = common::rss();
    let started = Instant::now();
    let subs = with_length(&[stereo48k(0, ms(10))], secs);
    let mut opts = SenderOptions::new(
        addr,
        Trust::Pinned(vec![identity.fingerprint()]),
        common::sender_identity().clone(),
    );
    opts.config.recovery = Recovery::Arq;
    let mut tx = Sender::connect(opts, subs.clone()).unwrap();
    feed_pattern(&mut tx, &subs);
    let sent = tx.wait().unwrap();
    let took = started.elapsed();
    let grown = common::rss().saturating_sub(before);
    rt.block_on(receiver).unwrap();
    assert!(done.load(Ordering::Relaxed));
    let s = &sent.stats;
    let nacks = flooded.load(Ordering::Relaxed);
    eprintln!(
        "flood: {nacks} NACKs sent, {} received, {} not NACKs; sent again {} of {} source; \
         suppressed {}, unknown {}, expired {}, throttled {}; {:.1} s for {secs} s; RSS +{} KiB",
        s.nacks_received,
        s.nack_invalid,
        s.retransmit_packets,
        s.source_packets,
        s.nack_suppressed,
        s.nack_unknown,
        s.nack_expired,
        s.nack_throttled,
        took.as_secs_f64(),
        grown / 1024
    );
    assert!(sent.completed, "the session ended with a bye");
    assert_eq!(
        s.source_packets,
        2 * (secs * 100.0) as u64,
        "every frame sent"
    );
    // The flood reached the sender, and every kind was counted.
    assert!(s.nacks_received > 1_000, "{s:?}");
    assert!(s.nack_invalid > 100, "garbage counted: {s:?}");
    assert!(s.nack_suppressed > 1_000, "repeats suppressed: {s:?}");
    // Out-of-range and huge ranges are counted by the packet, without a
    // step per packet (millions per second here).
    assert!(s.nack_unknown > 10_000_000, "{s:?}");
    // Never more sent again than sent once (but for the store's initial
    // credit): the flood cannot turn the sender into an amplifier.
    assert!(
        s.retransmit_packets <= s.source_packets + INITIAL_CREDIT,
        "{s:?}"
    );
    // Bounded work: the session streamed in real time through the flood
    // (a margin for a loaded machine, far below a per-packet cost, which
    // would take minutes).
    assert!(
        took < Duration::from_secs_f64(secs + 20.0),
        "{:.1} s",
        took.as_secs_f64()
    );
    // Bounded memory: the store was sized at accept; nothing grows with
    // what the NACKs name.
    assert!(grown < 64 << 20, "RSS grew {} MiB", grown >> 20);
}
