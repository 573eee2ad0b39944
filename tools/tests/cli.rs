//! The built `isochron` binary: each subcommand, and each error a user can
//! act on.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use isochron_codecs::signal::Music;
use isochron_codecs::wav::{WavReader, WavWriter};
use isochron_codecs::{Encoding, Origin, Rate, StreamFormat, WavLayout};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_isochron"))
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A running `isochron recv`, with the address and fingerprint it printed.
struct Recv {
    child: Child,
    addr: String,
    fingerprint: String,
}

impl Recv {
    fn start(out: &Path, extra: &[&str]) -> Recv {
        let ident = out.parent().unwrap().join("identity");
        let mut child = bin()
            .args(["recv", "--listen", "127.0.0.1:0", "--out"])
            .arg(out)
            .arg("--identity")
            .arg(&ident)
            .args(["--quiet"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("recv starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let addr = lines.next().unwrap().unwrap();
        let fingerprint = lines.next().unwrap().unwrap();
        Recv {
            child,
            addr: addr
                .strip_prefix("listening on ")
                .expect("address line")
                .to_owned(),
            fingerprint: fingerprint
                .strip_prefix("fingerprint ")
                .expect("fingerprint line")
                .to_owned(),
        }
    }

    /// Wait for exit (bounded), returning the code and stderr.
    fn wait(mut self, within: Duration) -> (i32, String) {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut err = String::new();
                use std::io::Read;
                self.child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut err)
                    .unwrap();
                return (status.code().unwrap_or(-1), err);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("recv did not exit within {within:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Recv {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn song(dir: &Path, secs: f64) -> PathBuf {
    let path = dir.join("song.wav");
    let rate = Rate::hz(48_000).unwrap();
    let format = StreamFormat::new(Encoding::L16, 2, rate).unwrap();
    let mut w = WavWriter::create(
        &path,
        format,
        &Origin::Wav(WavLayout {
            bits: 16,
            float: false,
            channel_mask: None,
        }),
    )
    .unwrap();
    let n = (48_000.0 * secs) as usize;
    let mut v = vec![0.0; n * 2];
    Music::new(5, rate).fill(&mut v);
    let mut wire = vec![0u8; n * 4];
    isochron_codecs::encoding::encode::<f64>(Encoding::L16, &v, &mut wire);
    w.write(&wire).unwrap();
    w.finish().unwrap();
    path
}

fn samples(path: &Path) -> (StreamFormat, Vec<u8>) {
    let mut r = WavReader::open(path).unwrap();
    let mut buf = vec![0u8; r.total_samples() as usize * r.format().stride()];
    let n = r.read(&mut buf).unwrap();
    buf.truncate(n * r.format().stride());
    (r.format(), buf)
}

#[test]
fn help_explains_options_with_units() {
    let o = run(&["send", "--help"]);
    let t = text(&o);
    assert!(o.status.success());
    for needle in [
        "--pin",
        "--frame",
        "e.g. 10ms",
        "--fec",
        "16+4",
        "--interleave",
        "--live",
        "--speed",
    ] {
        assert!(t.contains(needle), "send --help lacks {needle}:\n{t}");
    }
    let t = text(&run(&["recv", "--help"]));
    for needle in [
        "--latency",
        "80ms",
        "--low-water",
        "--high-water",
        "--once",
        "--ready-file",
    ] {
        assert!(t.contains(needle), "recv --help lacks {needle}");
    }
    let t = text(&run(&["netem", "--help"]));
    for needle in [
        "--loss", "--burst", "--jitter", "--rate", "10mbit", "--outage", "2s@5s", "--seed",
    ] {
        assert!(t.contains(needle), "netem --help lacks {needle}");
    }
}

#[test]
fn send_and_recv_a_wav_bit_exact_with_ready_file_and_stats() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let ready = tmp.path().join("ready.json");
    let stats = tmp.path().join("stats.json");
    let recv = Recv::start(
        &out,
        &[
            "--once",
            "--ready-file",
            ready.to_str().unwrap(),
            "--stats-json",
            stats.to_str().unwrap(),
        ],
    );
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&ready).unwrap()).unwrap();
    assert_eq!(r["addr"], recv.addr.as_str());
    assert_eq!(r["fingerprint"], recv.fingerprint.as_str());
    assert!(recv.fingerprint.starts_with("sha256:") && recv.fingerprint.len() == 7 + 64);
    let input = song(tmp.path(), 2.0);
    let sent = bin()
        .arg("send")
        .arg(&input)
        .args(["--to", &recv.addr, "--pin", &recv.fingerprint, "--quiet"])
        .output()
        .unwrap();
    assert!(sent.status.success(), "{}", text(&sent));
    assert!(text(&sent).contains("done"), "{}", text(&sent));
    let (code, err) = recv.wait(Duration::from_secs(20));
    assert_eq!(code, 0, "{err}");
    assert_eq!(samples(&input), samples(&out.join("song.wav")), "bit-exact");
    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(&stats).unwrap()).unwrap();
    assert_eq!(s["sessions"][0]["completed"], true);
    assert_eq!(s["sessions"][0]["stats"]["packets"]["unrecovered"], 0);
}

#[test]
fn send_reports_errors_a_user_can_act_on() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let recv = Recv::start(&out, &["--token", "right"]);
    let input = song(tmp.path(), 0.5);
    let send = |extra: &[&str], file: &Path| {
        let o = bin()
            .arg("send")
            .arg(file)
            .args(["--quiet", "--connect-timeout", "2s"])
            .args(extra)
            .output()
            .unwrap();
        (o.status.code(), text(&o))
    };
    let pin = [
        "--to",
        recv.addr.as_str(),
        "--pin",
        recv.fingerprint.as_str(),
        "--token",
        "right",
    ];
    // Missing file.
    let (code, t) = send(&pin, &tmp.path().join("nope.wav"));
    assert_eq!(code, Some(1));
    assert!(
        t.contains("nope.wav") && t.to_lowercase().contains("no such file"),
        "{t}"
    );
    // Not a WAV.
    let fake = tmp.path().join("fake.wav");
    std::fs::write(&fake, "hello, this is text").unwrap();
    let (code, t) = send(&pin, &fake);
    assert_eq!(code, Some(1));
    assert!(
        t.contains("fake.wav") && t.to_lowercase().contains("wav"),
        "{t}"
    );
    // Unreachable receiver: a timeout, not a hang.
    let started = Instant::now();
    let (code, t) = send(&["--to", "127.0.0.1:9", "--pin", &recv.fingerprint], &input);
    assert_eq!(code, Some(1));
    assert!(
        t.contains("no answer") || t.to_lowercase().contains("timed out"),
        "{t}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    // Fingerprint mismatch.
    let wrong = format!("sha256:{}", "ab".repeat(32));
    let (code, t) = send(
        &["--to", &recv.addr, "--pin", &wrong, "--token", "right"],
        &input,
    );
    assert_eq!(code, Some(1));
    assert!(t.contains(&wrong) && t.contains(&recv.fingerprint), "{t}");
    // Token rejected.
    let (code, t) = send(
        &[
            "--to",
            &recv.addr,
            "--pin",
            &recv.fingerprint,
            "--token",
            "wrong",
        ],
        &input,
    );
    assert_eq!(code, Some(1));
    assert!(t.contains("token"), "{t}");
    // No trust given at all.
    let (code, t) = send(&["--to", &recv.addr], &input);
    assert_eq!(code, Some(1));
    assert!(t.contains("--pin"), "{t}");
    // Nothing was written by any of these.
    assert_eq!(std::fs::read_dir(&out).map(|d| d.count()).unwrap_or(0), 0);
}

#[test]
fn recv_reports_an_address_in_use() {
    let tmp = tempfile::tempdir().unwrap();
    let recv = Recv::start(&tmp.path().join("a"), &[]);
    let o = bin()
        .args(["recv", "--listen", &recv.addr, "--out"])
        .arg(tmp.path().join("b"))
        .arg("--identity")
        .arg(tmp.path().join("identity"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("already in use"), "{}", text(&o));
}

/// A live `send` of `input` to `recv`, once it has connected (it says so)
/// and a second and a half of media has flowed.
fn live_sender(recv: &Recv, input: &Path) -> Child {
    let mut sender = bin()
        .arg("send")
        .arg(input)
        .args([
            "--to",
            &recv.addr,
            "--pin",
            &recv.fingerprint,
            "--live",
            "--quiet",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(sender.stderr.take().unwrap()).lines();
    let line = err.next().unwrap().unwrap();
    assert!(line.starts_with("connected"), "{line}");
    std::thread::sleep(Duration::from_millis(1500)); // media time, not synchronisation
    sender
}

#[test]
fn a_killed_sender_leaves_a_truncated_but_valid_file() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let recv = Recv::start(&out, &["--once", "--idle-timeout", "1s"]);
    let input = song(tmp.path(), 20.0);
    // Once media flows, kill the sender outright.
    let mut sender = live_sender(&recv, &input);
    sender.kill().unwrap();
    let _ = sender.wait();
    let (code, err) = recv.wait(Duration::from_secs(15));
    assert_eq!(code, 3, "truncated exit code: {err}");
    assert!(err.contains("TRUNCATED"), "{err}");
    let r = WavReader::open(out.join("song.wav")).expect("a valid, finalised WAV");
    let secs = r.total_samples() as f64 / 48_000.0;
    assert!(secs > 1.0 && secs < 6.0, "{secs} s");
}

#[test]
fn netem_relays_and_reports_what_it_did() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let recv = Recv::start(&out, &["--once"]);
    let ready = tmp.path().join("netem.json");
    let mut netem = bin()
        .args(["netem", "--listen", "127.0.0.1:0", "--to", &recv.addr])
        .args([
            "--loss",
            "5%",
            "--delay",
            "5ms",
            "--jitter",
            "2ms",
            "--seed",
            "3",
            "--duration",
            "20s",
        ])
        .arg("--ready-file")
        .arg(&ready)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(netem.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.starts_with("relaying"), "{first}");
    let relay_addr = serde_json::from_slice::<serde_json::Value>(&std::fs::read(&ready).unwrap())
        .unwrap()["addr"]
        .as_str()
        .unwrap()
        .to_owned();
    let input = song(tmp.path(), 3.0);
    let sent = bin()
        .arg("send")
        .arg(&input)
        .args(["--to", &relay_addr, "--pin", &recv.fingerprint, "--quiet"])
        .output()
        .unwrap();
    assert!(sent.status.success(), "{}", text(&sent));
    let (code, err) = recv.wait(Duration::from_secs(20));
    assert_eq!(code, 0, "{err}");
    // Sample count exact despite the loss.
    let (fa, a) = samples(&input);
    let (fb, b) = samples(&out.join("song.wav"));
    assert_eq!((fa, a.len()), (fb, b.len()));
    // Ctrl-C: it prints what it did on exit.
    // SAFETY: sending SIGINT to our own child.
    unsafe { libc::kill(netem.id() as i32, libc::SIGINT) };
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let _ = netem.wait();
    let summary = rest.join("\n");
    assert!(
        summary.contains("forward") && summary.contains("lost"),
        "{summary}"
    );
}

#[test]
fn demo_runs_on_defaults_and_repairs_the_link() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("demo");
    let started = Instant::now();
    let o = bin().args(["demo", "--out"]).arg(&out).output().unwrap();
    let took = started.elapsed();
    assert!(o.status.success(), "{}", text(&o));
    assert!(took < Duration::from_secs(20), "demo took {took:?}");
    let t = text(&o);
    for row in [
        "loss before FEC",
        "loss after FEC",
        "jitter",
        "delay",
        "concealed",
        "SNR",
    ] {
        assert!(t.contains(row), "summary lacks {row}:\n{t}");
    }
    let stats: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("stats.json")).unwrap()).unwrap();
    let p = &stats["receiver"]["packets"];
    let (unrec, expected) = (
        p["unrecovered"].as_f64().unwrap(),
        p["expected"].as_f64().unwrap(),
    );
    assert!(
        expected > 2000.0 && unrec / expected < 1e-3,
        "{unrec} of {expected}"
    );
    assert!(
        p["lost"].as_f64().unwrap() / expected > 0.02,
        "the link really lost packets"
    );
    assert!(out.join("received/song.wav").exists() && out.join("received/imu.csv").exists());
    assert!(out.join("report.md").exists());
}

#[test]
fn ctrl_c_on_recv_finalises_the_files() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let recv = Recv::start(&out, &[]);
    let input = song(tmp.path(), 30.0);
    let mut sender = live_sender(&recv, &input);
    // SAFETY: sending SIGINT to our own child.
    unsafe { libc::kill(recv.child.id() as i32, libc::SIGINT) };
    let (code, text) = recv.wait(Duration::from_secs(15));
    let _ = sender.kill();
    let _ = sender.wait();
    assert_eq!(code, 3, "interrupted sessions end truncated: {text}");
    assert!(text.contains("interrupted"), "{text}");
    let r = WavReader::open(out.join("song.wav")).expect("a valid, finalised WAV");
    assert!(
        r.total_samples() > 48_000 / 2,
        "{} samples",
        r.total_samples()
    );
}

/// A sensor CSV with a time column: `secs` of 3 axes at 200 Hz.
fn imu(dir: &Path, secs: f64) -> PathBuf {
    let path = dir.join("imu.csv");
    let mut text = String::from("time,ax,ay,az\n");
    for i in 0..(200.0 * secs) as usize {
        let t = i as f64 / 200.0;
        text += &format!(
            "{t:.3},{:.4},{:.4},{:.4}\n",
            t.sin(),
            t.cos(),
            1.0 + t / 100.0
        );
    }
    std::fs::write(&path, text).unwrap();
    path
}

/// The crash: a file-mode sender killed partway through a long
/// file. The received WAV and CSV end where the media ended (what had
/// arrived, buffer included), not padded with concealment until the idle
/// timeout noticed, nor to the catalog's length.
#[test]
fn a_crashed_sender_leaves_files_that_end_where_the_media_ended() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let recv = Recv::start(&out, &["--once", "--idle-timeout", "3s"]);
    let (wav, csv) = (song(tmp.path(), 12.0), imu(tmp.path(), 12.0));
    let mut sender = bin()
        .arg("send")
        .arg(&wav)
        .arg(&csv)
        .args(["--to", &recv.addr, "--pin", &recv.fingerprint, "--quiet"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(sender.stderr.take().unwrap()).lines();
    let line = err.next().unwrap().unwrap();
    assert!(line.starts_with("connected"), "{line}");
    std::thread::sleep(Duration::from_millis(1500)); // media time, not synchronisation
    sender.kill().unwrap(); // SIGKILL: no goodbye, as in a crash
    let _ = sender.wait();
    let (code, err) = recv.wait(Duration::from_secs(20));
    assert_eq!(code, 3, "truncated: {err}");
    let r = WavReader::open(out.join("song.wav")).expect("a valid, finalised WAV");
    let secs = r.total_samples() as f64 / 48_000.0;
    // About 1.5 s arrived; the 3 s until the idle timeout are not media.
    assert!(secs > 0.5 && secs < 3.0, "{secs} s of WAV");
    let text = std::fs::read_to_string(out.join("imu.csv")).unwrap();
    let rows: Vec<&str> = text.lines().skip(1).collect();
    let last = rows.last().expect("rows");
    assert!(
        !last.split(',').any(str::is_empty),
        "no empty rows at the end: {last}"
    );
    let last_t: f64 = last.split(',').next().unwrap().parse().unwrap();
    assert!(
        (last_t - secs).abs() < 0.1,
        "the CSV ends with the WAV: {last_t} vs {secs}"
    );
}
