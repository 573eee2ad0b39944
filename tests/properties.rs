//! Property tests: FEC, wire formats, and hostile input.

mod common;

use std::time::Duration;

use isochron::codecs::{Encoding, Origin, Rate, StreamFormat};
use isochron::engine::catalog::{MediaKind, SubstreamDesc};
use isochron::engine::config::ReceiverConfig;
use isochron::engine::fec::{FecDecoder, FecEncoder};
use isochron::engine::wire::control::{
    Accept, CONTROL_VERSION, Control, ControlDecoder, Credit, EndOfStream, FecParams, Hello, Mode,
    Recovery, Reject, RejectReason, Report, SessionDesc, SubstreamTotals,
};
use isochron::engine::wire::nack;
use isochron::engine::wire::packet::{self, BlockPos, Kind, SourceMeta};
use isochron::engine::{ReceiverCore, Time, handshake};
use proptest::prelude::*;

fn meta_strategy() -> impl Strategy<Value = SourceMeta> {
    (
        0u16..0xFFFF,
        any::<u32>(),
        any::<u64>(),
        any::<u64>(),
        1u8..=64,
        1u8..=255,
        1u8..=64,
    )
        .prop_flat_map(
            |(substream, seq, media_ts, sender_ts, group, frag_count, frames)| {
                (0..group, 0..frag_count).prop_map(move |(lane, frag_index)| SourceMeta {
                    substream,
                    seq,
                    media_ts,
                    sender_ts,
                    group,
                    lane,
                    frag_index,
                    frag_count,
                    frames,
                })
            },
        )
}

/// Build the source packets of one FEC block (`sources` of them, any
/// lengths) and its repairs.
fn block(
    k: usize,
    m: usize,
    sources: usize,
    lens: &[usize],
    seed: u8,
) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut enc = FecEncoder::new(k, m, 1, Duration::from_secs(1)).unwrap();
    let mut srcs = Vec::new();
    for i in 0..sources {
        let payload: Vec<u8> = (0..lens[i % lens.len()])
            .map(|b| (b as u8).wrapping_mul(31) ^ i as u8 ^ seed)
            .collect();
        let meta = SourceMeta {
            substream: 1,
            seq: i as u32,
            media_ts: i as u64 * 1000,
            sender_ts: 7,
            group: 1,
            lane: 0,
            frag_index: 0,
            frag_count: 1,
            frames: 1,
        };
        let mut buf = vec![0u8; packet::HEADER_LEN + payload.len()];
        packet::write_shard_header(
            &mut buf[packet::SHARD_OFFSET..packet::HEADER_LEN],
            &meta,
            payload.len(),
        );
        buf[packet::HEADER_LEN..].copy_from_slice(&payload);
        let pos = enc.add_source(Time::ZERO, meta.media_ts, &buf[packet::SHARD_OFFSET..]);
        packet::write_block_header(&mut buf[..packet::SHARD_OFFSET], Kind::Source, pos);
        srcs.push(buf);
    }
    let mut repairs = Vec::new();
    enc.close(Time::ZERO, &mut |pos, meta, parity| {
        let mut buf = vec![0u8; packet::HEADER_LEN + parity.len()];
        packet::encode(&mut buf, Kind::Repair, pos, meta, parity);
        repairs.push(buf);
    });
    (srcs, repairs)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any `sources` of the `sources + m` shards rebuild every source,
    /// whatever the shard lengths, including blocks closed early (shortened).
    #[test]
    fn fec_rebuilds_from_any_k_of_k_plus_m(
        k in 1usize..=40,
        m in 1usize..=12,
        short in 0usize..40,
        lens in prop::collection::vec(1usize..=1094, 1..6),
        picks in prop::collection::vec(any::<prop::sample::Index>(), 64),
        seed in any::<u8>(),
    ) {
        prop_assume!(k + m <= 256);
        let sources = k - short % k;
        let (srcs, repairs) = block(k, m, sources, &lens, seed);
        prop_assert_eq!(repairs.len(), m);
        let mut pool: Vec<(bool, usize)> = (0..sources).map(|i| (true, i))
            .chain((0..m).map(|j| (false, j))).collect();
        // Keep exactly `sources` shards, in a random order.
        let mut kept = Vec::new();
        for p in &picks {
            if kept.len() == sources || pool.is_empty() { break; }
            kept.push(pool.remove(p.index(pool.len())));
        }
        while kept.len() < sources { kept.push(pool.remove(0)); }
        let mut dec = FecDecoder::new(4, Duration::from_secs(10));
        let mut got: Vec<(SourceMeta, Vec<u8>)> = Vec::new();
        for (is_src, i) in &kept {
            let bytes = if *is_src { &srcs[*i] } else { &repairs[*i] };
            let p = packet::parse(bytes).unwrap();
            let mut sink = |m: &SourceMeta, pl: &[u8]| got.push((*m, pl.to_vec()));
            match p.kind {
                Kind::Source => dec.on_source(Time::ZERO, p.pos, p.shard, &mut sink),
                Kind::Repair => dec.on_repair(Time::ZERO, p.pos, p.meta.frames as usize, p.payload, &mut sink),
            }
        }
        let missing: Vec<usize> = (0..sources).filter(|i| !kept.contains(&(true, *i))).collect();
        prop_assert_eq!(got.len(), missing.len());
        for (meta, payload) in got {
            let orig = packet::parse(&srcs[meta.seq as usize]).unwrap();
            prop_assert_eq!(meta, orig.meta);
            prop_assert_eq!(&payload[..], orig.payload);
        }
    }

    #[test]
    fn media_packets_round_trip(
        meta in meta_strategy(),
        payload in prop::collection::vec(any::<u8>(), 0..1100),
        (k, m) in (1u8..=200).prop_flat_map(|k| (Just(k), 1u8..=(255 - k + 1).min(56))),
        block in any::<u32>(),
        index in any::<prop::sample::Index>(),
    ) {
        let pos = BlockPos { block, index: index.index(k as usize) as u8, k, m };
        let mut buf = vec![0u8; packet::HEADER_LEN + payload.len()];
        let n = packet::encode(&mut buf, Kind::Source, pos, &meta, &payload);
        let v = packet::parse(&buf[..n]).unwrap();
        prop_assert_eq!(v.pos, pos);
        prop_assert_eq!(v.meta, meta);
        prop_assert_eq!(v.payload, &payload[..]);
        let (m2, p2) = packet::parse_shard(v.shard).unwrap();
        prop_assert_eq!((m2, p2), (meta, &payload[..]));
    }

    #[test]
    fn control_messages_round_trip(msg in control_strategy()) {
        let frame = msg.to_frame();
        let mut d = ControlDecoder::new();
        // Split the frame anywhere: the decoder reassembles it.
        let cut = frame.len() / 3;
        d.push(&frame[..cut]).unwrap();
        d.push(&frame[cut..]).unwrap();
        prop_assert_eq!(d.next_message().unwrap(), Some(msg));
    }

    #[test]
    fn invalid_accepts_are_refused(latency in 0u32..2, low in any::<u32>(), high in any::<u32>()) {
        prop_assume!(latency == 0 || low >= high);
        let msg = Control::Accept(Accept {
            session_id: 1,
            latency_us: latency,
            low_water_us: low,
            high_water_us: high,
            fec_window_us: 0,
            max_depth: 1,
        });
        let mut d = ControlDecoder::new();
        d.push(&msg.to_frame()).unwrap();
        prop_assert!(d.next_message().is_err());
    }

    #[test]
    fn parsing_random_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..1600)) {
        let _ = packet::parse(&bytes);
        let _ = packet::parse_shard(&bytes);
        if let Ok(ranges) = nack::parse(&bytes) {
            prop_assert!(ranges.count() <= nack::MAX_NACK_RANGES);
        }
        let _ = Control::decode_body(&bytes);
        let mut d = ControlDecoder::new();
        if d.push(&bytes).is_ok() {
            while let Ok(Some(_)) = d.next_message() {}
        }
    }

    /// NACK ranges survive the wire, merged where they continue each other.
    #[test]
    fn nacks_round_trip(ranges in prop::collection::vec((0u16..4, any::<u32>(), 1u32..70_000), 1..80)) {
        let mut w = nack::NackWriter::new();
        let mut want: Vec<(u16, u64, u64)> = Vec::new();
        for &(substream, first, count) in &ranges {
            let r = nack::NackRange { substream, first, count };
            if !w.push(r) {
                break;
            }
            let count = count.min(nack::MAX_RANGE_COUNT) as u64;
            match want.last_mut() {
                Some(l) if l.0 == substream
                    && (l.1 + l.2) as u32 == first
                    && l.2 + count <= nack::MAX_RANGE_COUNT as u64 => l.2 += count,
                _ => want.push((substream, first as u64, count)),
            }
        }
        let got: Vec<(u16, u64, u64)> = nack::parse(w.bytes())
            .unwrap()
            .map(|r| (r.substream, r.first as u64, r.count as u64))
            .collect();
        prop_assert_eq!(got, want);
    }

    /// Listeners' reports are their word: any counters, from a handful of
    /// listeners in any order, give the publisher's FEC a loss figure it
    /// caps, never a panic.
    #[test]
    fn hostile_listener_reports_give_a_capped_loss(
        reports in prop::collection::vec(
            (0u8..4, prop::array::uniform6(prop_oneof![
                Just(0u64),
                Just(u64::MAX),
                0u64..2_000,
                any::<u64>(),
            ])),
            1..40,
        ),
    ) {
        use isochron::engine::fec::{Audience, AudiencePolicy};
        let policy = AudiencePolicy::default();
        let mut a = Audience::new(policy);
        let mut adapter = isochron::engine::fec::FecAdapter::new(1e-4, 16, 4, false);
        let mut t = Time::from_micros(1_000_000);
        for (who, v) in reports {
            let r = Report {
                received: v[0],
                lost: v[1],
                loss_runs: v[2],
                outage_lost: v[3],
                outage_runs: v[4],
                expected: v[5],
                ..Report::default()
            };
            a.on_report(t, [who; 16], r);
            t += Duration::from_millis(250);
            if let Some(s) = a.loss(t) {
                adapter.observe_sample(s);
                prop_assert!(adapter.loss().is_none_or(|l| (0.0..=1.0).contains(&l)));
                let m = adapter.choose(8, 1);
                prop_assert!(m <= 8, "{m}");
            }
        }
    }

    /// Random and mutated datagrams into a whole receiver: counted, never a
    /// panic, and the playout still emits exactly one frame per tick.
    #[test]
    fn hostile_datagrams_are_counted_not_fatal(
        garbage in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..1300), 1..40),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..40),
    ) {
        let (session, accept) = session_for_fuzz();
        let mut rx = ReceiverCore::new(&ReceiverConfig::default(), &session, &accept);
        // A valid packet to mutate.
        let (srcs, repairs) = block(4, 2, 4, &[100], 1);
        let mut t = Time::from_micros(1_000_000);
        for g in &garbage {
            rx.on_datagram(t, g);
        }
        for (i, (at, x)) in flips.iter().enumerate() {
            let mut p = if i % 2 == 0 { srcs[i % 4].clone() } else { repairs[i % 2].clone() };
            let j = at.index(p.len());
            p[j] ^= x | 1;
            rx.on_datagram(t, &p);
            t += Duration::from_millis(1);
        }
        let mut frames = 0;
        rx.poll(t + Duration::from_secs(1), &mut |_| frames += 1);
        // Whatever gaps the garbage suggested, NACKs are bounded.
        let mut nacks = 0;
        while rx.poll_feedback(t + Duration::from_secs(1)).is_some() {
            nacks += 1;
            prop_assert!(nacks < 100);
        }
        let s = rx.stats();
        prop_assert_eq!(s.datagrams, (garbage.len() + flips.len()) as u64);
    }
}

/// A late joiner starts at the first packet it can play: one whose media
/// time is off the frame grid or past the limit (a peer's word, here the
/// largest there is) is refused before it can choose the start, and does
/// not overflow working out the frame after it.
#[test]
fn a_media_time_off_the_grid_does_not_choose_where_a_late_joiner_starts() {
    let mut session = session_for_fuzz().0;
    session.fec = FecParams::OFF;
    session.recovery = Recovery::Fec;
    session.substreams = vec![common::stereo48k(0, Duration::from_millis(5))];
    let hello = Hello {
        version: CONTROL_VERSION,
        token: None,
        session: session.clone(),
    };
    let accept = handshake::answer(&ReceiverConfig::default(), &hello, 1).unwrap();
    let mut rx = ReceiverCore::new(&ReceiverConfig::default(), &session, &accept);
    rx.join_mid_stream(&session);
    let pos = BlockPos {
        block: 0,
        index: 0,
        k: 0,
        m: 0,
    };
    let t = Time::from_micros(1_000_000);
    let source = |seq, media_ts| common::source_packet(seq, media_ts, 0, pos, &[1; 240 * 4]);
    for (seq, media_ts) in [(100, u64::MAX), (101, u64::MAX - 9_999), (102, 12_345)] {
        rx.on_datagram(t, &source(seq, media_ts));
    }
    assert_eq!(rx.stats().start_media_us, 0, "no start chosen yet");
    rx.on_datagram(t, &source(103, 500_000));
    assert_eq!(
        rx.stats().start_media_us,
        505_000,
        "the frame after the valid one"
    );
    assert_eq!(rx.stats().packets.invalid, 3);
}

fn session_for_fuzz() -> (SessionDesc, Accept) {
    let desc = SubstreamDesc {
        id: 1,
        name: "a".into(),
        kind: MediaKind::Audio,
        format: StreamFormat::new(Encoding::L16, 1, Rate::hz(8000).unwrap()).unwrap(),
        frame_us: 10_000,
        sample_interleave: 2,
        frames_per_packet: 1,
        origin: Origin::Raw,
        length: None,
        codec: None,
    };
    let session = SessionDesc {
        name: "fuzz".into(),
        mode: Mode::Live,
        speed: 1.0,
        fec: FecParams {
            k: 4,
            m: 2,
            depth: 1,
            window_us: 10_000,
            auto_depth: false,
        },
        substreams: vec![desc],
        // Retransmitting: garbage also reaches the NACK planner.
        recovery: Recovery::Hybrid,
    };
    let hello = Hello {
        version: CONTROL_VERSION,
        token: None,
        session: session.clone(),
    };
    let accept = handshake::answer(&ReceiverConfig::default(), &hello, 1).unwrap();
    (session, accept)
}

fn substream_strategy() -> impl Strategy<Value = SubstreamDesc> {
    (
        0u16..1000,
        "[a-z0-9._-]{0,40}",
        prop_oneof![
            Just(Encoding::L16),
            Just(Encoding::L24),
            Just(Encoding::F32),
            Just(Encoding::F64),
            Just(Encoding::MuLaw)
        ],
        1u16..=4,
        prop_oneof![Just(8000u32), Just(44_100), Just(48_000), Just(200)],
        1000u32..=100_000,
        1u8..=8,
        any::<Option<u32>>(),
    )
        .prop_map(
            |(id, name, enc, ch, rate, frame_us, g, len)| SubstreamDesc {
                id,
                name,
                kind: if rate == 200 {
                    MediaKind::Sensor
                } else {
                    MediaKind::Audio
                },
                format: StreamFormat::new(enc, ch, Rate::hz(rate).unwrap()).unwrap(),
                frame_us,
                sample_interleave: g,
                frames_per_packet: 1,
                origin: Origin::Raw,
                length: len.map(u64::from),
                codec: None,
            },
        )
}

fn control_strategy() -> impl Strategy<Value = Control> {
    let hello = (
        prop::option::of("[ -~]{0,64}"),
        "[ -~]{0,64}",
        prop::collection::vec(substream_strategy(), 1..5),
        1u8..=32,
        0u8..=8,
        1u8..=8,
        any::<u32>(),
        prop_oneof![
            Just(Mode::Live),
            (101u16..1000).prop_map(|f| Mode::File { fill_percent: f })
        ],
    )
        .prop_map(|(token, name, mut subs, k, m, depth, window_us, mode)| {
            for (i, s) in subs.iter_mut().enumerate() {
                s.id = i as u16;
            }
            Control::Hello(Hello {
                version: CONTROL_VERSION,
                token,
                session: SessionDesc {
                    name,
                    mode,
                    speed: 1.0,
                    fec: FecParams {
                        k,
                        m,
                        depth,
                        window_us,
                        auto_depth: false,
                    },
                    substreams: subs,
                    recovery: [Recovery::Fec, Recovery::Arq, Recovery::Hybrid][k as usize % 3],
                },
            })
        });
    prop_oneof![
        hello,
        // Valid accepts: a positive latency, marks in order (the decoder
        // refuses others; `invalid_accepts_are_refused` covers those).
        (
            any::<u64>(),
            1u32..,
            0u32..u32::MAX,
            any::<u32>(),
            any::<u32>()
        )
            .prop_map(|(a, b, c, d, e)| {
                Control::Accept(Accept {
                    session_id: a,
                    latency_us: b,
                    low_water_us: c,
                    high_water_us: d.max(c + 1),
                    fec_window_us: e,
                    max_depth: 1,
                })
            }),
        "[ -~]{0,200}".prop_map(|message| Control::Reject(Reject {
            reason: RejectReason::Latency,
            message
        })),
        Just(Control::Pause),
        Just(Control::Resume),
        Just(Control::Bye),
        (
            0..=isochron::engine::wire::control::MAX_CREDIT_US,
            any::<u32>()
        )
            .prop_map(|(position_us, lead_us)| Control::Credit(Credit {
                position_us,
                lead_us
            })),
        any::<[u64; 7]>().prop_map(|v| Control::Report(Report {
            received: v[0],
            lost: v[1],
            recovered: v[2],
            unrecovered: v[3],
            late: v[4],
            concealed_frames: v[5],
            jitter_us: v[0] as u32,
            buffer_us: v[1] as u32,
            loss_runs: v[2],
            outage_lost: v[3],
            outage_runs: v[4],
            retransmit_useful: v[5],
            expected: v[6],
            latency_us: v[4] as u32,
        })),
        prop::collection::vec(any::<(u16, u64, u64, u64)>(), 0..10).prop_map(|t| {
            Control::EndOfStream(EndOfStream {
                totals: t
                    .into_iter()
                    .map(|(id, packets, frames, samples)| SubstreamTotals {
                        id,
                        packets,
                        frames,
                        samples,
                    })
                    .collect(),
                repair_packets: 3,
            })
        }),
    ]
}
