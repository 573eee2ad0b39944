//! The built `isochron` binary: each subcommand, and each error a user can
//! act on.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use isochron_codecs::StreamFormat;
use isochron_codecs::wav::WavReader;

mod common;
use common::song;

mod schema;

/// The config directory (`XDG_CONFIG_HOME`) of every command these tests
/// run: one user, so no test touches the real `~/.config`.
fn config_home() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().unwrap()).path()
}

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_isochron"));
    c.env("XDG_CONFIG_HOME", config_home());
    c
}

/// The identity `send` presents by default, as `isochron id` prints it:
/// what [`Recv::start`] admits (one step of pairing, done once).
fn sender_fingerprint() -> &'static str {
    static FP: OnceLock<String> = OnceLock::new();
    FP.get_or_init(|| {
        let o = run(&["id"]);
        assert!(o.status.success(), "{}", text(&o));
        String::from_utf8(o.stdout).unwrap().trim().to_owned()
    })
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

/// A running `isochron recv` admitting the tests' sender
/// ([`sender_fingerprint`]), with the address and fingerprint it printed.
struct Recv {
    child: Child,
    addr: String,
    fingerprint: String,
}

impl Recv {
    /// `isochron send INPUTS` to this receiver, pinned, quiet: what most
    /// tests here run, before their own options.
    fn sender<P: AsRef<std::ffi::OsStr>>(&self, inputs: &[P]) -> Command {
        let mut cmd = bin();
        cmd.arg("send").args(inputs).args([
            "--to",
            &self.addr,
            "--pin",
            &self.fingerprint,
            "--quiet",
        ]);
        cmd
    }

    fn start(out: &Path, extra: &[&str]) -> Recv {
        Recv::start_on("127.0.0.1:0", out, extra)
    }

    fn start_on(listen: &str, out: &Path, extra: &[&str]) -> Recv {
        let ident = out.parent().unwrap().join("identity");
        let child = bin()
            .args(["recv", "--listen", listen, "--out"])
            .arg(out)
            .arg("--identity")
            .arg(&ident)
            .args(["--quiet", "--allow", sender_fingerprint()])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("recv starts");
        Recv::from_child(child)
    }

    /// A started `isochron recv`, once it printed its address and
    /// fingerprint.
    fn from_child(mut child: Child) -> Recv {
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
    // What file mode's --fill does, and what it does not (words, whatever
    // the wrapping).
    let words = t.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        words.contains("This does not shorten the transfer")
            && words.contains("a 10 s file takes about 10 s"),
        "{t}"
    );
    let t = text(&run(&["recv", "--help"]));
    for needle in [
        "--latency",
        "80ms",
        "--low-water",
        "--high-water",
        "--once",
        "--ready-file",
        "--stats-every",
        ":4433",
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
    let sent = recv.sender(&[&input]).output().unwrap();
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
    // Missing file: the input exit code, and the cause said once.
    let (code, t) = send(&pin, &tmp.path().join("nope.wav"));
    assert_eq!(code, Some(6), "{t}");
    assert!(
        t.contains("nope.wav") && t.to_lowercase().contains("no such file"),
        "{t}"
    );
    assert_eq!(t.matches("No such file").count(), 1, "said once: {t}");
    // Not a WAV.
    let fake = tmp.path().join("fake.wav");
    std::fs::write(&fake, "hello, this is text").unwrap();
    let (code, t) = send(&pin, &fake);
    assert_eq!(code, Some(6), "{t}");
    assert!(
        t.contains("fake.wav") && t.to_lowercase().contains("wav"),
        "{t}"
    );
    assert_eq!(t.matches("fake.wav").count(), 1, "said once: {t}");
    // Unreachable receiver: a timeout, not a hang.
    let started = Instant::now();
    let (code, t) = send(&["--to", "127.0.0.1:9", "--pin", &recv.fingerprint], &input);
    assert_eq!(code, Some(5), "{t}");
    assert!(
        t.contains("no answer") || t.to_lowercase().contains("timed out"),
        "{t}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    // Fingerprint mismatch: refused (4).
    let wrong = format!("sha256:{}", "ab".repeat(32));
    let (code, t) = send(
        &["--to", &recv.addr, "--pin", &wrong, "--token", "right"],
        &input,
    );
    assert_eq!(code, Some(4), "{t}");
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
    assert_eq!(code, Some(4), "{t}");
    assert!(t.contains("token"), "{t}");
    // No trust given at all: a usage error.
    let (code, t) = send(&["--to", &recv.addr], &input);
    assert_eq!(code, Some(2), "{t}");
    assert!(t.contains("--pin"), "{t}");
    // Nothing was written by any of these.
    assert_eq!(std::fs::read_dir(&out).map(|d| d.count()).unwrap_or(0), 0);
}

/// A default receiver refuses a sender it does not list: the sender exits
/// 4 printing the exact command that admits it, the receiver logs the same,
/// nothing is written; once that command has run, the sender gets in.
#[test]
fn an_unknown_sender_is_refused_with_the_command_that_admits_it() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let authorized = tmp.path().join("authorized_senders");
    let stranger = tmp.path().join("stranger");
    let input = song(tmp.path(), 0.5);
    let o = run(&["id", "--identity", stranger.to_str().unwrap()]);
    let fingerprint = String::from_utf8(o.stdout).unwrap().trim().to_owned();
    let recv_args = [
        "--once",
        "--authorized-senders",
        authorized.to_str().unwrap(),
    ];
    let send = |recv: &Recv| {
        recv.sender(&[&input])
            .arg("--identity")
            .arg(&stranger)
            .output()
            .unwrap()
    };
    let recv = Recv::start(&out, &recv_args);
    let refused = send(&recv);
    let t = text(&refused);
    assert_eq!(refused.status.code(), Some(4), "{t}");
    let command = format!(
        "isochron trust add {fingerprint} --file {}",
        authorized.display()
    );
    assert!(
        t.contains(&format!("sender {fingerprint} is not authorized")),
        "{t}"
    );
    assert!(
        t.contains(&format!("run on the receiving host: {command}")),
        "{t}"
    );
    let (code, logged) = recv.wait(Duration::from_secs(10));
    assert_eq!(code, 4, "{logged}");
    assert!(logged.contains(&command), "{logged}");
    assert_eq!(
        std::fs::read_dir(&out).unwrap().count(),
        0,
        "nothing written"
    );
    // The command, as printed, admits the sender.
    let admitted = bin()
        .args(command.split_whitespace().skip(1))
        .output()
        .unwrap();
    assert!(admitted.status.success(), "{}", text(&admitted));
    let listed = text(&run(&[
        "trust",
        "list",
        "--file",
        authorized.to_str().unwrap(),
    ]));
    assert!(listed.contains(&fingerprint), "{listed}");
    let recv = Recv::start(&out, &recv_args);
    let sent = send(&recv);
    assert!(sent.status.success(), "{}", text(&sent));
    let (code, err) = recv.wait(Duration::from_secs(20));
    assert_eq!(code, 0, "{err}");
    assert_eq!(samples(&input), samples(&out.join("song.wav")));
}

#[test]
fn trust_manages_the_authorized_senders_file() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("cfg/authorized");
    let f = file.to_str().unwrap();
    let a = format!("sha256:{}", "ab".repeat(32));
    let b = format!("SHA256:{}", "CD".repeat(32));
    let o = run(&["trust", "add", &a, "--file", f, "ann's", "laptop"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(run(&["trust", "add", &b, "--file", f]).status.success());
    let again = run(&["trust", "add", &a, "--file", f]);
    assert!(again.status.success() && text(&again).contains("already"));
    let list = run(&["trust", "list", "--file", f]);
    let stdout = String::from_utf8(list.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            format!("{a} ann's laptop"),
            format!("sha256:{}", "cd".repeat(32))
        ]
    );
    assert!(run(&["trust", "remove", &a, "--file", f]).status.success());
    let gone = run(&["trust", "remove", &a, "--file", f]);
    assert_eq!(gone.status.code(), Some(1));
    assert!(text(&gone).contains("is not in"), "{}", text(&gone));
    let bad = run(&["trust", "add", "sha256:nothex", "--file", f]);
    assert_eq!(bad.status.code(), Some(2), "usage error: {}", text(&bad));
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
        "loss before recovery",
        "recovered by FEC / by retransmission",
        "loss after recovery",
        "redundancy (hybrid recovery)",
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
    // The demo's link (5 % loss, 20 +- 10 ms each way, 80 ms) is one where
    // a round trip fits only some of the time: hybrid repairs it, but not
    // always to 1e-3. Measured here over QUIC (debug build, 28 runs): 0
    // unrecovered in 22, 1-5 in 5, 9 once, of about 140 lost; a 1e-3 limit
    // failed CI 1 run in 2 of one day. Issue 13 tracks the rest.
    let lost = p["lost"].as_f64().unwrap();
    assert!(
        expected > 2000.0 && unrec / expected < 5e-3 && unrec * 10.0 <= lost,
        "{unrec} of {expected} ({lost} lost)"
    );
    assert!(lost / expected > 0.02, "the link really lost packets");
    assert!(out.join("received/song.wav").exists() && out.join("received/imu.csv").exists());
    assert!(out.join("report.md").exists());
    schema::assert_valid("demo_stats_json", &stats);
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("FEC 16+4 configured"), "{report}");
    for row in [
        "FEC code used",
        "network delay",
        "end-to-end delay",
        "frames concealed (song.wav)",
        "frames concealed (imu.csv)",
    ] {
        assert!(report.contains(row), "report.md lacks {row}:\n{report}");
    }
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
    assert_eq!(code, 130, "the interrupted exit code: {text}");
    assert!(text.contains("TRUNCATED"), "the session's summary: {text}");
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
    let mut sender = recv
        .sender(&[&wav, &csv])
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

/// A finalised WAV: the header's sample count covers the file's data.
fn assert_finalised(path: &Path) -> u64 {
    let r = WavReader::open(path).expect("a valid WAV");
    let total = r.total_samples();
    let len = std::fs::metadata(path).unwrap().len();
    let header = len - total * r.format().stride() as u64;
    assert!(
        header < 100,
        "the header lags the data: {header} bytes unaccounted"
    );
    total
}

/// systemd and docker stop with SIGTERM: `recv` finishes as on Ctrl-C,
/// with the summary, `--stats-json` and finalised files.
#[test]
fn sigterm_on_recv_leaves_final_stats_and_finalised_files() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let stats = tmp.path().join("stats.json");
    let recv = Recv::start(&out, &["--stats-json", stats.to_str().unwrap()]);
    let input = song(tmp.path(), 30.0);
    let mut sender = live_sender(&recv, &input);
    // SAFETY: signalling our own child.
    unsafe { libc::kill(recv.child.id() as i32, libc::SIGTERM) };
    let (code, text) = recv.wait(Duration::from_secs(15));
    let _ = sender.kill();
    let _ = sender.wait();
    assert_eq!(code, 130, "{text}");
    assert!(text.contains("packets"), "the summary: {text}");
    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(&stats).unwrap()).unwrap();
    let session = &s["sessions"][0];
    assert_eq!(session["truncated"], true, "{s}");
    assert!(session["stats"]["datagrams"].as_u64().unwrap() > 100, "{s}");
    let samples = assert_finalised(&out.join("song.wav"));
    assert_eq!(session["files"][0]["samples"].as_u64(), Some(samples));
}

/// Ctrl-C on `send`: it stops the stream at once (the receiver ends it
/// there, without waiting for an idle timeout), prints its summary, writes
/// its statistics and exits with the interrupted code.
#[test]
fn sigint_on_send_stops_the_stream_with_a_summary() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let recv = Recv::start(&out, &["--once", "--idle-timeout", "10s"]);
    let input = song(tmp.path(), 30.0);
    let stats = tmp.path().join("send.json");
    let mut sender = recv
        .sender(&[&input])
        .arg("--stats-json")
        .arg(&stats)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(sender.stderr.take().unwrap()).lines();
    let line = err.next().unwrap().unwrap();
    assert!(line.starts_with("connected"), "{line}");
    std::thread::sleep(Duration::from_millis(1000)); // media time, not synchronisation
    let stopped = Instant::now();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(sender.id() as i32, libc::SIGINT) };
    let rest: Vec<String> = err.map_while(Result::ok).collect();
    let status = sender.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{rest:?}");
    assert!(rest.iter().any(|l| l.contains("ended early")), "{rest:?}");
    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(&stats).unwrap()).unwrap();
    assert_eq!(s["completed"], false);
    let (code, text) = recv.wait(Duration::from_secs(15));
    assert!(
        stopped.elapsed() < Duration::from_secs(5),
        "the receiver did not wait for its 10 s idle timeout"
    );
    assert_eq!(code, 3, "{text}");
    assert!(text.contains("stopped"), "{text}");
    let secs = assert_finalised(&out.join("song.wav")) as f64 / 48_000.0;
    assert!(secs > 0.5 && secs < 3.0, "{secs} s");
}

/// `netem` on SIGTERM: its statistics, and the interrupted code.
#[test]
fn sigterm_on_netem_prints_what_it_did() {
    let mut netem = bin()
        .args(["netem", "--listen", "127.0.0.1:0", "--to", "127.0.0.1:9"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(netem.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.starts_with("relaying"), "{first}");
    // SAFETY: signalling our own child.
    unsafe { libc::kill(netem.id() as i32, libc::SIGTERM) };
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = netem.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(rest.join("\n").contains("forward"), "{rest:?}");
}

/// The demo on SIGTERM: it stops its stream and still writes its report
/// and statistics, with the interrupted code.
#[test]
fn sigterm_on_demo_still_writes_its_report() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("demo");
    let mut demo = bin()
        .args(["demo", "--duration", "20s", "--out"])
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(demo.stderr.take().unwrap()).lines();
    let streaming = err
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.starts_with("streaming"));
    assert!(streaming.is_some(), "the demo never streamed");
    std::thread::sleep(Duration::from_millis(1000)); // media time, not synchronisation
    // SAFETY: signalling our own child.
    unsafe { libc::kill(demo.id() as i32, libc::SIGTERM) };
    let rest: Vec<String> = err.map_while(Result::ok).collect();
    let status = demo.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{rest:?}");
    let stats: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("stats.json")).unwrap()).unwrap();
    assert!(
        stats["receiver"]["datagrams"].as_u64().unwrap() > 0,
        "{stats}"
    );
    assert!(out.join("report.md").exists());
    assert_finalised(&out.join("received/song.wav"));
}

/// What both ends write (`--stats-json`) and what `recv --stats-every`
/// appends while a session runs match `docs/stats.schema.json`: every field
/// listed, units by name, frames per substream, end-to-end delay beside the
/// network delay, and the sender's summary holds the receiver's final
/// account.
#[test]
fn stats_json_and_stats_lines_match_the_schema() {
    schema::assert_units_by_name();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let stats = tmp.path().join("recv.json");
    let lines = tmp.path().join("lines.jsonl");
    let sent_stats = tmp.path().join("send.json");
    let recv = Recv::start(
        &out,
        &[
            "--once",
            "--stats-json",
            stats.to_str().unwrap(),
            "--stats-every",
            "200ms",
            "--stats-lines",
            lines.to_str().unwrap(),
        ],
    );
    let (wav, csv) = (song(tmp.path(), 2.0), imu(tmp.path(), 2.0));
    // Automatic depth: the grant and the depth in force are in the stats.
    let sent = recv
        .sender(&[&wav, &csv])
        .args(["--interleave", "auto"])
        .arg("--stats-json")
        .arg(&sent_stats)
        .output()
        .unwrap();
    assert!(sent.status.success(), "{}", text(&sent));
    let (code, err) = recv.wait(Duration::from_secs(20));
    assert_eq!(code, 0, "{err}");

    let r = schema::read(&stats);
    schema::assert_valid("recv_stats_json", &r);
    let st = &r["sessions"][0]["stats"];
    let subs = st["substreams"].as_array().unwrap();
    let kinds: Vec<&str> = subs.iter().map(|s| s["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["Audio", "Sensor"]);
    assert_eq!(subs[0]["frames"]["samples_played"], 96_000, "audio samples");
    assert_eq!(subs[1]["frames"]["samples_played"], 400, "sensor rows");
    let (e2e, net) = (
        st["end_to_end_delay"]["p50_us"].as_u64().unwrap(),
        st["network_delay"]["p50_us"].as_u64().unwrap(),
    );
    // File mode buffers at least the low-water mark (40 ms) between the
    // read and the playout; loopback is far faster.
    assert!(e2e > net + 20_000, "end-to-end {e2e} us, network {net} us");
    assert!(st["end_to_end_delay"]["count"].as_u64().unwrap() > 100);

    let s = schema::read(&sent_stats);
    schema::assert_valid("send_stats_json", &s);
    assert_eq!(s["completed"], true);
    let granted = s["stats"]["fec_depth_max"].as_u64().unwrap();
    assert!(
        (2..=8).contains(&granted),
        "file mode grants depth: {granted}"
    );
    assert_eq!(s["stats"]["fec_depth"], 1, "a clean link: depth 1");
    assert_eq!(
        s["receiver"]["expected"], st["packets"]["expected"],
        "the sender holds the receiver's final account"
    );
    assert_eq!(s["receiver"]["received"], st["packets"]["received"]);
    assert_eq!(s["stats"]["substreams"][1]["samples"], 400);
    let summary = text(&sent);
    let expected = st["packets"]["expected"].as_u64().unwrap();
    assert!(
        summary.contains(&format!("receiver: packets {expected} expected")),
        "{summary}"
    );

    let text = std::fs::read_to_string(&lines).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object a line"))
        .collect();
    // About 2 s of streaming at 200 ms: a few lines, even on a busy machine.
    assert!(lines.len() >= 3, "{} lines:\n{text}", lines.len());
    let mut last = (0, 0);
    for l in &lines {
        schema::assert_valid("recv_stats_line", l);
        let t = l["t_us"].as_u64().unwrap();
        // (A session just started has no substream figures yet.)
        let played = l["stats"]["substreams"][0]["frames"]["played"]
            .as_u64()
            .unwrap_or(0);
        assert!(t > last.0 && played >= last.1, "{l}");
        last = (t, played);
    }
    assert!(last.1 > 0, "the lines follow the playout");
}

/// `--listen` and `--to` take host names and default the port (4433): a
/// receiver on `localhost:0`, a sender dialling `localhost:PORT`.
#[test]
fn addresses_take_host_names() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let recv = Recv::start_on("localhost:0", &out, &["--once"]);
    let port = recv
        .addr
        .strip_prefix("127.0.0.1:")
        .expect("localhost is 127.0.0.1");
    let input = song(tmp.path(), 0.5);
    let sent = bin()
        .arg("send")
        .arg(&input)
        .args(["--to", &format!("localhost:{port}")])
        .args(["--pin", &recv.fingerprint, "--quiet"])
        .output()
        .unwrap();
    assert!(sent.status.success(), "{}", text(&sent));
    let (code, err) = recv.wait(Duration::from_secs(20));
    assert_eq!(code, 0, "{err}");
    let o = run(&["recv", "--listen", "127.0.0.1:99999", "--out", "x"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("not a port"), "{}", text(&o));
}

/// `RUST_LOG` is honoured (as `ISOCHRON_LOG` was).
#[test]
fn rust_log_is_honoured() {
    let tmp = tempfile::tempdir().unwrap();
    let id = |dir: &str, log: Option<&str>| {
        let mut c = bin();
        c.args(["id", "--identity"]).arg(tmp.path().join(dir));
        c.env_remove("ISOCHRON_LOG").env_remove("RUST_LOG");
        if let Some(l) = log {
            c.env("RUST_LOG", l);
        }
        let o = c.output().unwrap();
        assert!(o.status.success(), "{}", text(&o));
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    assert!(id("a", Some("info")).contains("created a new TLS identity"));
    assert!(!id("b", None).contains("created a new TLS identity"));
}

/// `--version` names the commit; completions and man pages come from the
/// same clap definitions as `--help`.
#[test]
fn version_completions_and_man_pages() {
    let o = run(&["--version"]);
    assert!(o.status.success());
    let v = String::from_utf8(o.stdout).unwrap();
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8(o.stdout).unwrap().trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    assert_eq!(
        v.trim(),
        format!("isochron {} (git {head})", env!("CARGO_PKG_VERSION"))
    );

    let bash = run(&["completions", "bash"]);
    assert!(bash.status.success(), "{}", text(&bash));
    let bash = String::from_utf8(bash.stdout).unwrap();
    assert!(
        bash.contains("_isochron") && bash.contains("--stats-every"),
        "{bash}"
    );
    let zsh = String::from_utf8(run(&["completions", "zsh"]).stdout).unwrap();
    assert!(zsh.starts_with("#compdef isochron"), "{zsh}");

    let man = run(&["man"]);
    assert!(man.status.success(), "{}", text(&man));
    let page = String::from_utf8(man.stdout).unwrap();
    assert!(page.contains(".TH isochron 1"), "{page}");
    let tmp = tempfile::tempdir().unwrap();
    let o = bin()
        .args(["man", "--out"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let send = std::fs::read_to_string(tmp.path().join("isochron-send.1")).unwrap();
    assert!(send.contains("stats\\-json"), "{send}");
}

/// `--speed` works for every substream kind: a sensor-only stream at 8x
/// plays whole and its delays are measured on one clock (both ends scale
/// `CLOCK_MONOTONIC` alike, not each from its own start).
#[test]
fn speed_works_for_a_sensor_only_stream() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let stats = tmp.path().join("stats.json");
    // Marks wide enough (in media time) that 8x leaves a busy machine
    // some real time.
    let recv = Recv::start(
        &out,
        &[
            "--once",
            "--stats-json",
            stats.to_str().unwrap(),
            "--low-water",
            "400ms",
            "--high-water",
            "1600ms",
        ],
    );
    let csv = imu(tmp.path(), 8.0);
    let started = Instant::now();
    let sent = recv
        .sender(&[&csv])
        .args(["--speed", "8"])
        .output()
        .unwrap();
    assert!(sent.status.success(), "{}", text(&sent));
    let (code, err) = recv.wait(Duration::from_secs(20));
    assert_eq!(code, 0, "{err}");
    assert!(started.elapsed() < Duration::from_secs(6), "8 s at 8x");
    let s = schema::read(&stats);
    let st = &s["sessions"][0]["stats"];
    let sub = &st["substreams"][0];
    assert_eq!(sub["frames"]["samples_played"], 1600, "{st:#}");
    assert_eq!(sub["frames"]["concealed"], 0, "{st:#}");
    assert_eq!(st["packets"]["late"], 0, "{st:#}");
    let net = st["network_delay"]["p50_us"].as_u64().unwrap();
    let e2e = st["end_to_end_delay"]["p50_us"].as_u64().unwrap();
    // Loopback in media time at 8x: above zero (the clocks agree), far
    // below the marks.
    assert!(net > 0 && net < 100_000, "network delay {net} us");
    assert!(e2e > net, "end-to-end {e2e} us, network {net} us");
}

/// Send `input` to `recv`: both ends exit 7 (output), the sender saying
/// `why`. Returns the receiver's log.
fn output_error_on_both_ends(recv: Recv, input: &Path, why: &str) -> String {
    let sent = recv.sender(&[input]).output().unwrap();
    let t = text(&sent);
    assert_eq!(sent.status.code(), Some(7), "{t}");
    assert!(t.contains(why), "{t}");
    let (code, err) = recv.wait(Duration::from_secs(20));
    assert_eq!(code, 7, "{err}");
    err
}

/// Issue #10 item 8: a session over `--max-bytes` ends with its file
/// finalised (valid, shorter), and both ends exit 7 (output), not 4 or 0.
#[test]
fn an_output_limit_ends_the_session_and_both_ends_exit_7() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let recv = Recv::start(&out, &["--once", "--max-bytes", "64KiB"]);
    let input = song(tmp.path(), 3.0);
    let err = output_error_on_both_ends(recv, &input, "(max bytes 65536)");
    assert!(err.contains("(max bytes 65536)"), "{err}");
    // Finalised with what it holds: a valid WAV, cut near the limit.
    let path = out.join("song.wav");
    let written = WavReader::open(&path).unwrap().total_samples();
    assert!(written > 0 && written < 3 * 48_000, "{written} samples");
    let bytes = std::fs::metadata(&path).unwrap().len();
    assert!(bytes < 256 << 10, "{bytes} bytes");
}

/// Item 8: under the free-space floor a receiver refuses new sessions
/// before anything is written; both ends exit 7 and say which limit.
#[test]
fn a_receiver_under_its_free_space_floor_refuses_with_exit_7() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    // More than any disk has free.
    let recv = Recv::start(&out, &["--once", "--min-free", "1000000TB"]);
    let input = song(tmp.path(), 0.5);
    output_error_on_both_ends(recv, &input, "(min free)");
    assert_eq!(
        std::fs::read_dir(&out).unwrap().count(),
        0,
        "nothing written"
    );
}

/// Item 9: a disk that fills up was reported as success on both ends. The
/// receiver writes into a 256 KiB tmpfs of its own (a mount namespace, so
/// root only; skipped and said otherwise) with no free-space floor.
#[test]
fn a_full_disk_is_an_output_error_on_both_ends() {
    let probe = Command::new("unshare")
        .args(["-m", "true"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !probe {
        eprintln!("skipped: `unshare -m` is not permitted here (needs root)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let ident = tmp.path().join("identity");
    let child = Command::new("unshare")
        .args([
            "-m",
            "sh",
            "-c",
            "mount -t tmpfs -o size=256k isochron-full \"$0\" && exec \"$@\"",
        ])
        .arg(&out)
        .arg(env!("CARGO_BIN_EXE_isochron"))
        .args(["recv", "--listen", "127.0.0.1:0", "--out"])
        .arg(&out)
        .arg("--identity")
        .arg(&ident)
        .args(["--quiet", "--once", "--min-free", "0"])
        .args(["--allow", sender_fingerprint()])
        .env("XDG_CONFIG_HOME", config_home())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let recv = Recv::from_child(child);
    // 4 s of stereo 16-bit is 768 KB: three times the disk.
    let input = song(tmp.path(), 4.0);
    let err = output_error_on_both_ends(recv, &input, "No space left on device");
    assert!(err.contains("No space left on device"), "{err}");
}
