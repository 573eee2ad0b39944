//! Runs each fuzz target in `fuzz/` briefly (cargo-fuzz on nightly). With
//! `ISOCHRON_FUZZ=1` (CI's `.ci/run` sets it) a missing cargo-fuzz is a
//! failure, not a skip; `ISOCHRON_FUZZ_SECONDS` sets the time per target
//! (default 15). Run longer by hand:
//! `cd fuzz && cargo +nightly fuzz run session -- -max_total_time=3600`.

use std::path::{Path, PathBuf};
use std::process::Command;

use isochron::engine::catalog::SubstreamDesc;
use isochron::engine::wire::control::{
    Accept, CONTROL_VERSION, Control, EndOfStream, FecParams, Hello, Mode, Reject, RejectReason,
    SessionDesc, SubstreamTotals,
};
use isochron::{Rate, StreamFormat};

const TARGETS: [&str; 5] = ["packet", "control", "wav", "csv", "session"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn cargo_fuzz_installed() -> bool {
    Command::new("cargo")
        .args(["+nightly", "fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn hello() -> Control {
    let format = StreamFormat::new(isochron::Encoding::L16, 2, Rate::hz(48_000).unwrap()).unwrap();
    Control::Hello(Hello {
        version: CONTROL_VERSION,
        token: None,
        session: SessionDesc {
            name: "seed".into(),
            mode: Mode::Live,
            speed: 1.0,
            fec: FecParams {
                k: 4,
                m: 2,
                depth: 1,
                window_us: 20_000,
            },
            substreams: vec![SubstreamDesc::audio(0, "a.wav", format)],
        },
    })
}

/// Valid messages, so the fuzzers start from what reaches validation.
fn seeds(target: &str) -> Vec<Vec<u8>> {
    let body = |m: &Control| m.to_frame()[4..].to_vec();
    let eos = Control::EndOfStream(EndOfStream {
        totals: vec![SubstreamTotals {
            id: 0,
            packets: 100,
            frames: 100,
            samples: 48_000,
        }],
        repair_packets: 50,
    });
    match target {
        "control" => [
            hello(),
            Control::Accept(Accept {
                session_id: 1,
                latency_us: 80_000,
                low_water_us: 40_000,
                high_water_us: 160_000,
                fec_window_us: 20_000,
            }),
            Control::Reject(Reject {
                reason: RejectReason::Limit,
                message: "limit".into(),
            }),
            Control::Pause,
            eos.clone(),
        ]
        .iter()
        .map(body)
        .collect(),
        "session" => {
            let mut s = Vec::new();
            for (tag, b) in [(0u8, body(&hello())), (2, body(&eos)), (3, vec![10])] {
                s.push(tag);
                s.extend_from_slice(&(b.len() as u16).to_le_bytes());
                s.extend_from_slice(&b);
            }
            vec![s]
        }
        "csv" => vec![b"time,a,b\n0,1,2\n0.005,3,4\n".to_vec()],
        _ => vec![],
    }
}

#[test]
fn every_fuzz_target_runs_clean_for_a_while() {
    let required = std::env::var("ISOCHRON_FUZZ").is_ok_and(|v| v == "1");
    if !cargo_fuzz_installed() {
        assert!(
            !required,
            "ISOCHRON_FUZZ=1 but `cargo +nightly fuzz` is not installed (cargo install cargo-fuzz)"
        );
        eprintln!("skipped: cargo-fuzz is not installed (ISOCHRON_FUZZ=1 makes this a failure)");
        return;
    }
    let seconds: u64 = std::env::var("ISOCHRON_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15);
    let fuzz = root().join("fuzz");
    // One build for all targets; no sanitizer keeps it short (the targets
    // are safe Rust: panics and aborts are what they look for).
    let st = Command::new("cargo")
        .current_dir(&fuzz)
        .args(["+nightly", "fuzz", "build", "--sanitizer", "none"])
        .status()
        .unwrap();
    assert!(st.success(), "cargo fuzz build failed");
    for t in TARGETS {
        let corpus = tempfile::tempdir().unwrap();
        for (i, s) in seeds(t).iter().enumerate() {
            std::fs::write(corpus.path().join(format!("seed-{i}")), s).unwrap();
        }
        let o = Command::new("cargo")
            .current_dir(&fuzz)
            .args(["+nightly", "fuzz", "run", "--sanitizer", "none", t])
            .arg(corpus.path())
            .arg("--")
            .arg(format!("-max_total_time={seconds}"))
            .arg("-rss_limit_mb=1024")
            .arg("-timeout=10")
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "fuzz target {t} found a failure:\n{}",
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .rev()
                .take(60)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}
