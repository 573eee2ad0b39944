//! File mode on bad networks through `isochron netem` over real QUIC (issue
//! 15): the built binaries as the README runs them (`recv`, `netem`, `send`
//! with and without `--live`), 10 s of 48 kHz stereo, default options
//! otherwise, the same seeds as the simulation's table
//! (`tests/sim_filemode.rs`). File mode must play with no late packet and
//! no underrun, and lose no more than live mode on the same link; with
//! hybrid recovery, no more than with FEC alone.
//!
//! A session during which the host stalled the receiver itself (its playout
//! thread ran late) runs again: that is the machine, not the link.
//! The hardest row runs by default; the whole table (about 4 minutes of
//! media) with `cargo test --test filemode_netem -- --ignored`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use isochron_codecs::wav::WavReader;
use serde_json::Value;

mod common;

const SEEDS: [u64; 2] = [5, 9];

/// The table: `isochron netem` options per row.
const TABLE: [&str; 5] = [
    "--jitter 10ms --delay 15ms",
    "--loss 5% --delay 15ms",
    "--loss 5% --burst 3",
    "--loss 5% --burst 3 --delay 15ms",
    HARDEST,
];

/// The README's bad network, delayed: where file mode once lost 19 %.
const HARDEST: &str = "--loss 5% --burst 3 --jitter 10ms --delay 15ms";

fn bin(config: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_isochron"));
    c.env("XDG_CONFIG_HOME", config);
    c
}

/// Wait (bounded) for a ready file and read it.
fn ready(path: &Path, child: &mut Child) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(b) = std::fs::read(path)
            && let Ok(v) = serde_json::from_slice::<Value>(&b)
        {
            return v;
        }
        assert!(child.try_wait().unwrap().is_none(), "exited before ready");
        assert!(Instant::now() < deadline, "not ready: {}", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Kills a child on drop (a failed assertion leaves nothing running).
struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What the receiver's `--stats-json` said of one session.
#[derive(Debug)]
struct Row {
    unrecovered: u64,
    late: u64,
    underruns: u64,
    residual: f64,
    flow: Value,
    /// How late the receiver's playout thread ran at worst, microseconds.
    tick_late_us: u64,
}

/// A playout tick this late means the host stalled the receiver (a loaded
/// machine, a blocked disk), not the link: such a session says nothing
/// about the path and runs again.
const HOST_STALL_US: u64 = 100_000;
/// Attempts per session before a stalled host fails the test.
const ATTEMPTS: usize = 3;

/// One session of `input` through `isochron netem <link> --seed <seed>`,
/// file mode unless `live`, with `send` options `extra`; the receiver's
/// statistics.
fn session(dir: &Path, input: &Path, link: &str, seed: u64, live: bool, extra: &[&str]) -> Row {
    let config = dir.join("config");
    let out = dir.join("out");
    let o = bin(&config).arg("id").output().unwrap();
    assert!(o.status.success());
    let sender = String::from_utf8(o.stdout).unwrap().trim().to_owned();
    let mut recv = bin(&config)
        .args(["recv", "--listen", "127.0.0.1:0", "--once", "--quiet"])
        .arg("--out")
        .arg(&out)
        .arg("--identity")
        .arg(dir.join("recv-identity"))
        .args(["--allow", &sender])
        .arg("--ready-file")
        .arg(dir.join("recv.json"))
        .arg("--stats-json")
        .arg(dir.join("stats.json"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let r = ready(&dir.join("recv.json"), &mut recv);
    let mut recv = Reap(recv);
    let mut netem = bin(&config)
        .args(["netem", "--listen", "127.0.0.1:0", "--to"])
        .arg(r["addr"].as_str().unwrap())
        .args(link.split_whitespace())
        .args(["--seed", &seed.to_string()])
        .arg("--ready-file")
        .arg(dir.join("netem.json"))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let n = ready(&dir.join("netem.json"), &mut netem);
    let _netem = Reap(netem);
    let mut send = bin(&config);
    send.arg("send")
        .arg(input)
        .args(["--to", n["addr"].as_str().unwrap()])
        .args(["--pin", r["fingerprint"].as_str().unwrap(), "--quiet"]);
    if live {
        send.arg("--live");
    }
    send.args(extra);
    let sent = send.output().unwrap();
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = recv.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "recv did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    if let Some(e) = recv.0.stderr.take() {
        for l in BufReader::new(e).lines().map_while(Result::ok) {
            err += &l;
            err.push('\n');
        }
    }
    assert!(status.success(), "recv: {err}");
    // Every sample there, in order: the file is as long as the input.
    let played = WavReader::open(out.join("song.wav"))
        .unwrap()
        .total_samples();
    assert_eq!(played, 480_000, "{err}");
    let v: Value = serde_json::from_slice(&std::fs::read(dir.join("stats.json")).unwrap()).unwrap();
    let s = &v["sessions"][0]["stats"];
    let n = |v: &Value| v.as_u64().unwrap();
    Row {
        unrecovered: n(&s["packets"]["unrecovered"]),
        late: n(&s["packets"]["late"]),
        underruns: n(&s["substreams"][0]["frames"]["underruns"]),
        residual: s["residual_loss_ratio"].as_f64().unwrap(),
        flow: s["flow"].clone(),
        tick_late_us: n(&s["tick_deviation"]["max_us"]),
    }
}

/// [`session`], again while the host stalled the receiver ([`HOST_STALL_US`]).
fn unstalled(dir: &Path, input: &Path, link: &str, seed: u64, live: bool, extra: &[&str]) -> Row {
    for attempt in 1..=ATTEMPTS {
        let d = dir.join(attempt.to_string());
        std::fs::create_dir_all(&d).unwrap();
        let row = session(&d, input, link, seed, live, extra);
        if row.tick_late_us <= HOST_STALL_US {
            return row;
        }
        eprintln!(
            "{link}, seed {seed}, live {live}: the receiver's playout ran {} ms late (host stall), again",
            row.tick_late_us / 1000
        );
    }
    panic!("{link}, seed {seed}: the host stalled the receiver in {ATTEMPTS} attempts");
}

/// Each row of `links` with each seed: file mode with hybrid recovery
/// against file mode with FEC alone (hybrid must never lose more) and
/// against live mode (file mode must never lose more).
fn table(links: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let input = common::song(tmp.path(), 10.0);
    for (i, link) in links.iter().enumerate() {
        for seed in SEEDS {
            let run = |name: &str, live: bool, extra: &[&str]| {
                let dir = tmp.path().join(format!("{i}-{seed}-{name}"));
                unstalled(&dir, &input, link, seed, live, extra)
            };
            let file = run("file", false, &["--recovery", "hybrid"]);
            let fec = run("file-fec", false, &["--recovery", "fec"]);
            let live = run("live", true, &[]);
            eprintln!(
                "{link:48} seed {seed}: file {} / {} / {} / {:.2} % | FEC alone {:.2} % | live {:.2} % | {}",
                file.unrecovered,
                file.late,
                file.underruns,
                file.residual * 100.0,
                fec.residual * 100.0,
                live.residual * 100.0,
                file.flow
            );
            let at = format!("{link}, seed {seed}");
            assert_eq!(file.late, 0, "{at}: no late packets: {file:?}");
            assert_eq!(file.underruns, 0, "{at}: no underruns: {file:?}");
            assert!(
                file.residual <= live.residual,
                "{at}: file {file:?} lost more than live {live:?}"
            );
            assert!(
                file.residual <= fec.residual,
                "{at}: hybrid {file:?} lost more than FEC alone {fec:?}"
            );
            // The floor left retransmission its rounds after FEC's span.
            assert!(
                file.flow["retransmit_rounds"].as_u64().unwrap() >= 2,
                "{at}: {}",
                file.flow
            );
            // The marks came from the measured path, and the stats say so.
            let f = &file.flow;
            assert!(f["credits"].as_u64().unwrap() > 50, "{at}: {f}");
            assert!(f["rtt_us"].as_u64().unwrap() > 0, "{at}: {f}");
            assert!(
                f["floor_us"].as_u64().unwrap() >= f["delay_spread_us"].as_u64().unwrap(),
                "{at}: {f}"
            );
        }
    }
}

#[test]
fn file_mode_through_netem_beats_live_on_the_readme_bad_network() {
    table(&[HARDEST]);
}

#[test]
#[ignore = "the issue's whole table, about 4 minutes: run with --ignored"]
fn file_mode_through_netem_the_whole_table() {
    table(&TABLE);
}
