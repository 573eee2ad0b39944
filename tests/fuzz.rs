//! The fuzz targets' seed corpus (`fuzz/seeds/TARGET/`), checked in so the
//! fuzzers start from inputs that reach validation and the playout buffers
//! rather than from nothing. `.ci/run` runs each target briefly from them
//! (`fuzz/run`); run longer by hand, e.g.
//! `fuzz/run 600`, or one target as the README says (its finds in `fuzz/corpus/`).
//!
//! This test checks that every seed is still a valid input of today's
//! formats (a protocol change makes stale seeds worthless, silently);
//! `ISOCHRON_WRITE_SEEDS=1 cargo test --test fuzz` writes them afresh.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use isochron::engine::catalog::SubstreamDesc;
use isochron::engine::config::ReceiverConfig;
use isochron::engine::limits::Limits;
use isochron::engine::net::Identity;
use isochron::engine::wire::control::{
    Accept, CONTROL_VERSION, Control, EndOfStream, FecParams, Hello, Mode, Reject, RejectReason,
    Report, SessionDesc, SubstreamTotals,
};
use isochron::engine::wire::fanout::{
    self, KeyOffer, PublisherControl, SealedMessage, Signed, StreamCatalog, context,
};
use isochron::engine::wire::packet::{self, BlockPos};
use isochron::engine::{ReceiverCore, handshake};
use isochron::{Rate, StreamFormat};

/// Every target in `fuzz/Cargo.toml`.
const TARGETS: [&str; 7] = [
    "packet", "control", "wav", "csv", "session", "fanout", "sender",
];

fn seeds_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target)
}

fn session_desc() -> SessionDesc {
    let format = StreamFormat::new(isochron::Encoding::L16, 2, Rate::hz(48_000).unwrap()).unwrap();
    SessionDesc {
        name: "seed".into(),
        mode: Mode::Live,
        speed: 1.0,
        fec: FecParams {
            k: 4,
            m: 2,
            depth: 1,
            window_us: 20_000,
            auto_depth: false,
        },
        substreams: vec![SubstreamDesc::audio(0, "a.wav", format)],
        recovery: Default::default(),
    }
}

fn hello() -> Control {
    Control::Hello(Hello {
        version: CONTROL_VERSION,
        token: None,
        session: session_desc(),
    })
}

fn eos() -> EndOfStream {
    EndOfStream {
        totals: vec![SubstreamTotals {
            id: 0,
            packets: 4,
            frames: 4,
            samples: 1920,
        }],
        repair_packets: 2,
    }
}

/// A source datagram of the seed session (stereo 48 kHz, 10 ms frames).
fn datagram(seq: u32) -> Vec<u8> {
    let pos = BlockPos {
        block: 0,
        index: seq as u8,
        k: 4,
        m: 2,
    };
    common::stereo_source(seq, seq as u64, 1_000_000 + seq as u64 * 10_000, pos, 0x5a)
}

fn body(m: &Control) -> Vec<u8> {
    m.to_frame()[4..].to_vec()
}

/// `[tag][len lo][len hi][bytes]` records, as the session target reads them.
fn records(recs: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut s = Vec::new();
    for (tag, b) in recs {
        s.push(*tag);
        s.extend_from_slice(&(b.len() as u16).to_le_bytes());
        s.extend_from_slice(b);
    }
    s
}

fn wav_bytes(channels: u16, encoding: isochron::Encoding, bits: u16, frames: usize) -> Vec<u8> {
    use isochron::codecs::wav::WavWriter;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seed.wav");
    let format = StreamFormat::new(encoding, channels, Rate::hz(48_000).unwrap()).unwrap();
    let layout = isochron::codecs::WavLayout::pcm(bits);
    let mut w = WavWriter::create(&path, format, &isochron::Origin::Wav(layout)).unwrap();
    let data: Vec<u8> = (0..frames * format.stride())
        .map(|i| (i * 37) as u8)
        .collect();
    w.write(&data).unwrap();
    w.finish().unwrap();
    std::fs::read(&path).unwrap()
}

fn catalog(identity: &Identity) -> StreamCatalog {
    StreamCatalog {
        stream: "studio/seed".into(),
        publisher_cert: identity.certificate_der().to_vec(),
        instance: [3; 16],
        session: session_desc(),
        latency_floor_us: 40_000,
        max_datagram: 1200,
        key: KeyOffer {
            check: [9; 16],
            passphrase_iterations: Some(1000),
            wrapped: true,
            open: false,
        },
    }
}

/// The seeds of `target`, generated from today's formats.
fn seeds(target: &str) -> Vec<Vec<u8>> {
    match target {
        "packet" => vec![datagram(0), datagram(3)],
        "control" => [
            hello(),
            Control::Accept(Accept {
                session_id: 1,
                latency_us: 80_000,
                low_water_us: 40_000,
                high_water_us: 160_000,
                fec_window_us: 20_000,
                max_depth: 1,
            }),
            Control::Reject(Reject {
                reason: RejectReason::Limit,
                message: "limit".into(),
            }),
            Control::Pause,
            Control::EndOfStream(eos()),
            Control::Report(Report::default()),
        ]
        .iter()
        .map(body)
        .collect(),
        "session" => vec![records(&[
            (0, body(&hello())),
            (1, datagram(0)),
            (1, datagram(1)),
            (3, vec![10]),
            (1, datagram(2)),
            (1, datagram(3)),
            (2, body(&Control::EndOfStream(eos()))),
            (3, vec![100]),
            (3, vec![100]),
        ])],
        "wav" => vec![
            wav_bytes(2, isochron::Encoding::L16, 16, 64),
            wav_bytes(1, isochron::Encoding::L24, 24, 32),
        ],
        "csv" => vec![
            b"time,a,b\n0,1,2\n0.005,3,4\n0.010,5,6\n".to_vec(),
            b"t,a,b\n0.000,1.5,\n0.005,,2\n0.010,nan,3\n".to_vec(),
            // The shape that was slow (a short row under a wide header made
            // a whole row of values from two bytes), now refused at its row.
            format!("{0}\n{0}\n{1}", ",".repeat(63), "0\n".repeat(8)).into_bytes(),
        ],
        "fanout" => {
            let id = Identity::ephemeral().unwrap();
            let body = fanout::encode(&catalog(&id));
            let (scheme, signature) = id.sign(context::CATALOG, &body).unwrap();
            vec![
                fanout::encode(&Signed {
                    body,
                    scheme,
                    signature,
                }),
                fanout::encode(&PublisherControl::EndOfStream(eos())),
                fanout::encode(&SealedMessage {
                    instance: [3; 16],
                    sender: [0; 16],
                    sealed: vec![0; 40],
                }),
                fanout::encode(&Report::default()),
            ]
        }
        "sender" => {
            let mut nack = isochron::engine::wire::nack::NackWriter::new();
            nack.push(isochron::engine::wire::nack::NackRange {
                substream: 0,
                first: 2,
                count: 2,
            });
            vec![records(&[
                (0, body(&sender_accept())),
                (3, vec![10]),
                (3, vec![10]),
                (
                    2,
                    body(&Control::Report(Report {
                        received: 3,
                        lost: 1,
                        loss_runs: 1,
                        jitter_us: 2_000,
                        latency_us: 80_000,
                        ..Report::default()
                    })),
                ),
                (1, nack.bytes().to_vec()),
                (3, vec![20]),
                (2, body(&Control::Pause)),
                (3, vec![20]),
                (2, body(&Control::Resume)),
                (3, vec![100]),
            ])]
        }
        other => panic!("no seeds for {other}"),
    }
}

/// What a receiver answers the sender target's session (16+4, depth 1).
fn sender_accept() -> Control {
    Control::Accept(Accept {
        session_id: 1,
        latency_us: 80_000,
        low_water_us: 40_000,
        high_water_us: 160_000,
        fec_window_us: 35_000,
        max_depth: 1,
    })
}

/// What makes a seed worth having: it gets past the target's first gate.
fn check(target: &str, seed: &[u8]) -> Result<(), String> {
    let e = |e: &dyn std::fmt::Display| e.to_string();
    match target {
        "packet" => packet::parse(seed).map(drop).map_err(|x| e(&x)),
        "control" => Control::decode_body(seed)
            .and_then(|m| m.validate().map(|_| m))
            .map(drop)
            .map_err(|x| e(&x)),
        "session" => {
            let len = u16::from_le_bytes([seed[1], seed[2]]) as usize;
            let Ok(Control::Hello(h)) = Control::decode_body(&seed[3..3 + len]) else {
                return Err("the first record is not a hello".into());
            };
            let cfg = ReceiverConfig::default();
            let a = handshake::answer(&cfg, &h, 1).map_err(|r| r.message)?;
            let window = Duration::from_micros(a.fec_window_us as u64);
            Limits::default()
                .check_session(&cfg, &h.session, window)
                .map_err(|r| r.message)?;
            let _ = ReceiverCore::new(&cfg, &h.session, &a);
            Ok(())
        }
        "wav" => isochron::codecs::wav::WavReader::from_reader(
            std::io::Cursor::new(seed.to_vec()),
            "seed.wav",
            None,
        )
        .map(drop)
        .map_err(|x| e(&x)),
        "csv" => isochron::codecs::csv::CsvStream::new(
            seed,
            "seed.csv",
            Rate::hz(200).ok(),
            isochron::Encoding::F64,
        )
        .map(drop)
        .map_err(|x| e(&x)),
        "fanout" => {
            let ok = fanout::decode::<Signed>(seed).is_ok()
                || fanout::decode::<PublisherControl>(seed).is_ok()
                || fanout::decode::<SealedMessage>(seed).is_ok()
                || fanout::decode::<Report>(seed).is_ok();
            ok.then_some(()).ok_or_else(|| "no fan-out message".into())
        }
        "sender" => {
            let len = u16::from_le_bytes([seed[1], seed[2]]) as usize;
            match Control::decode_body(&seed[3..3 + len]) {
                Ok(Control::Accept(a)) => {
                    let desc = SubstreamDesc::audio(
                        0,
                        "a.wav",
                        StreamFormat::new(isochron::Encoding::L16, 2, Rate::hz(48_000).unwrap())
                            .unwrap(),
                    );
                    let mut tx = isochron::engine::SenderCore::new(
                        "fuzz",
                        vec![desc],
                        &isochron::engine::SenderConfig::default(),
                    )
                    .map_err(|x| e(&x))?;
                    tx.on_accept(isochron::engine::Time::from_micros(1_000_000), &a)
                        .map_err(|x| e(&x))
                }
                _ => Err("the first record is not an accept".into()),
            }
        }
        other => Err(format!("unknown target {other}")),
    }
}

#[test]
fn every_fuzz_target_has_valid_seeds() {
    let write = std::env::var("ISOCHRON_WRITE_SEEDS").is_ok_and(|v| v == "1");
    for t in TARGETS {
        let dir = seeds_dir(t);
        if write {
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            for (i, s) in seeds(t).iter().enumerate() {
                std::fs::write(dir.join(format!("seed-{i}")), s).unwrap();
            }
        }
        let files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|f| f.unwrap().path())
            .collect();
        assert!(!files.is_empty(), "no seeds in {}", dir.display());
        for f in files {
            let seed = std::fs::read(&f).unwrap();
            if let Err(why) = check(t, &seed) {
                panic!(
                    "{} is no longer a valid {t} input ({why}): \
                     ISOCHRON_WRITE_SEEDS=1 cargo test --test fuzz writes them afresh",
                    f.display()
                );
            }
        }
    }
}

#[test]
fn every_target_is_declared_in_the_fuzz_crate() {
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/Cargo.toml"))
            .unwrap();
    for t in TARGETS {
        assert!(
            manifest.contains(&format!("name = \"{t}\"")),
            "{t} missing from fuzz/Cargo.toml"
        );
        assert!(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(format!("fuzz/fuzz_targets/{t}.rs"))
                .exists()
        );
    }
}
