//! Pipes in and out, as the README tells a user: `... | isochron send -`
//! and `isochron recv --stdout | ...`, through the built binary with real
//! pipes, bit-exact.

mod pipe_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pipe_support::{logger_rows, noise, streaming_wav_header};

/// One config home for every command of these tests: the sender's
/// identity lives there, and each receiver admits it.
fn config_home() -> &'static std::path::Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().unwrap()).path()
}

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_isochron"));
    c.env("XDG_CONFIG_HOME", config_home());
    c
}

/// The fingerprint `send` presents (`isochron id`), for `recv --allow`.
fn sender_fingerprint() -> &'static str {
    static FP: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    FP.get_or_init(|| {
        let o = bin().arg("id").output().unwrap();
        assert!(o.status.success());
        String::from_utf8(o.stdout).unwrap().trim().to_owned()
    })
}

/// What came out of `recv --stdout`, and (bytes so far, when) after each read.
type Media = (Vec<u8>, Vec<(usize, Instant)>);

/// `isochron recv --stdout`, its address and fingerprint read from stderr
/// (stdout carries the media), and a thread collecting the media.
struct Recv {
    child: Child,
    addr: String,
    fingerprint: String,
    /// The media, and (bytes so far, when) after each read.
    media: Option<JoinHandle<Media>>,
    log: Option<JoinHandle<String>>,
}

impl Recv {
    fn start(dir: &std::path::Path, extra: &[&str]) -> Recv {
        let mut child = bin()
            .args(["recv", "--listen", "127.0.0.1:0", "--stdout", "--quiet"])
            .args(["--allow", sender_fingerprint()])
            .arg("--identity")
            .arg(dir.join("identity"))
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("recv starts");
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        let mut next = |what: &str| {
            line.clear();
            err.read_line(&mut line).unwrap();
            line.trim()
                .strip_prefix(what)
                .unwrap_or_else(|| panic!("expected '{what}', got '{line}'"))
                .to_owned()
        };
        let addr = next("listening on ");
        let fingerprint = next("fingerprint ");
        let mut out = child.stdout.take().unwrap();
        let media = std::thread::spawn(move || {
            let (mut v, mut stamps) = (Vec::new(), Vec::new());
            let mut buf = vec![0u8; 1 << 16];
            loop {
                match out.read(&mut buf) {
                    Ok(0) | Err(_) => return (v, stamps),
                    Ok(n) => {
                        v.extend_from_slice(&buf[..n]);
                        stamps.push((v.len(), Instant::now()));
                    }
                }
            }
        });
        let log = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        Recv {
            child,
            addr,
            fingerprint,
            media: Some(media),
            log: Some(log),
        }
    }

    /// Wait (bounded) for exit: code, media written, stderr.
    fn finish(self, within: Duration) -> (i32, Vec<u8>, String) {
        let (code, media, _, log) = self.finish_stamped(within);
        (code, media, log)
    }

    /// [`Recv::finish`], with the media's arrival stamps.
    fn finish_stamped(mut self, within: Duration) -> (i32, Vec<u8>, Vec<(usize, Instant)>, String) {
        let deadline = Instant::now() + within;
        let code = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("recv did not finish within {within:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let (media, stamps) = self.media.take().unwrap().join().unwrap();
        let log = self.log.take().unwrap().join().unwrap();
        (code, media, stamps, log)
    }
}

impl Drop for Recv {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `isochron send - ...` with `input` written to its stdin by a thread,
/// `chunk` bytes at a time, one chunk per `every` (zero: all at once).
fn send(r: &Recv, args: &[&str], input: Vec<u8>, chunk: usize, every: Duration) -> (i32, String) {
    let pieces = input.chunks(chunk.max(1)).map(<[u8]>::to_vec).collect();
    send_to(&r.addr, &r.fingerprint, args, pieces, every)
}

fn send_to(
    addr: &str,
    fingerprint: &str,
    args: &[&str],
    pieces: Vec<Vec<u8>>,
    every: Duration,
) -> (i32, String) {
    let mut child = bin()
        .args(["send", "-", "--to", addr, "--pin", fingerprint, "--quiet"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("send starts");
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let start = Instant::now();
        for (i, c) in pieces.iter().enumerate() {
            if !every.is_zero() {
                // The producer's own pace (a recorder), not synchronisation.
                let due = start + every * i as u32;
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
            }
            if stdin.write_all(c).is_err() {
                return;
            }
        }
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Issue 11, must show 1: a WAV stream (sizes 0xFFFFFFFF, as sox and
/// arecord write it) piped into `send -` comes out of `recv --stdout` as a
/// WAV stream with the same samples.
#[test]
fn a_wav_stream_piped_in_comes_out_of_stdout_bit_exact() {
    let dir = tempfile::tempdir().unwrap();
    // One second of 16-bit stereo at 48 kHz.
    let pcm = noise(48_000 * 2 * 2, 7);
    let mut input = streaming_wav_header(2);
    input.extend_from_slice(&pcm);
    let r = Recv::start(dir.path(), &[]);
    let (code, err) = send(&r, &[], input, 4096, Duration::ZERO);
    assert_eq!(code, 0, "send failed: {err}");
    let (code, media, log) = r.finish(Duration::from_secs(30));
    assert_eq!(code, 0, "{log}");
    assert_eq!(&media[..4], b"RIFF");
    assert_eq!(&media[22..24], &2u16.to_le_bytes(), "channels");
    assert_eq!(&media[24..28], &48_000u32.to_le_bytes(), "rate");
    assert_eq!(&media[34..36], &16u16.to_le_bytes(), "bits");
    assert_eq!(&media[36..40], b"data");
    let body = &media[44..];
    assert_eq!(body.len(), pcm.len(), "{log}");
    assert!(body == pcm.as_slice(), "samples differ");
}

#[test]
fn raw_pcm_in_every_format_arrives_bit_exact() {
    let dir = tempfile::tempdir().unwrap();
    for (i, (fmt, bytes)) in [
        ("s16le", 2),
        ("s24le", 3),
        ("s32le", 4),
        ("f32le", 4),
        ("u8", 1),
    ]
    .into_iter()
    .enumerate()
    {
        // Half a second of stereo 48 kHz.
        let input = noise(24_000 * 2 * bytes, i as u64 + 1);
        let r = Recv::start(dir.path(), &["--raw"]);
        let (code, err) = send(
            &r,
            &["--format", fmt, "--rate", "48000", "--channels", "2"],
            input.clone(),
            4096,
            Duration::ZERO,
        );
        assert_eq!(code, 0, "{fmt}: send failed: {err}");
        let (code, media, log) = r.finish(Duration::from_secs(30));
        assert_eq!(code, 0, "{fmt}: {log}");
        assert_eq!(media.len(), input.len(), "{fmt}: length ({log})");
        assert!(media == input, "{fmt}: samples differ");
    }
}

#[test]
fn a_live_pipe_paced_by_its_own_arrival_plays_out_as_a_wav_stream() {
    let dir = tempfile::tempdir().unwrap();
    // Two seconds of s16le stereo, written as a recorder would: 10 ms at a time.
    let input = noise(96_000 * 2 * 2, 9);
    let r = Recv::start(dir.path(), &[]);
    let (code, err) = send(
        &r,
        &[
            "--live",
            "--format",
            "s16le",
            "--rate",
            "48000",
            "--channels",
            "2",
        ],
        input.clone(),
        1920,
        Duration::from_millis(10),
    );
    assert_eq!(code, 0, "send failed: {err}");
    let (code, media, log) = r.finish(Duration::from_secs(30));
    assert_eq!(code, 0, "{log}");
    assert_eq!(&media[..4], b"RIFF");
    assert_eq!(
        &media[4..8],
        &[0xff; 4],
        "streaming WAV: size until the end"
    );
    assert_eq!(&media[36..40], b"data");
    let body = &media[44..];
    assert_eq!(body.len(), input.len(), "{log}");
    assert!(body == input.as_slice(), "samples differ");
}

#[test]
fn sensor_rows_from_stdin_arrive_as_they_come() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let ident = dir.path().join("identity");
    let mut child = bin()
        .args([
            "recv",
            "--listen",
            "127.0.0.1:0",
            "--once",
            "--quiet",
            "--allow",
            sender_fingerprint(),
            "--out",
        ])
        .arg(&out)
        .arg("--identity")
        .arg(&ident)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = lines.next().unwrap().unwrap().replace("listening on ", "");
    let fp = lines.next().unwrap().unwrap().replace("fingerprint ", "");
    // One row every 5 ms, as a 200 Hz logger writes them.
    let (csv, rows) = logger_rows(400);
    let (code, err) = send_to(&addr, &fp, &["--live"], rows, Duration::from_millis(5));
    assert_eq!(code, 0, "send failed: {err}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("recv did not finish");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let got = std::fs::read_to_string(out.join("stdin.csv")).unwrap();
    assert_eq!(got, csv);
}

#[test]
fn bad_pipe_input_gets_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let r = Recv::start(dir.path(), &["--raw"]);
    let (code, err) = send(&r, &["--format", "s16le"], vec![0; 64], 64, Duration::ZERO);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--rate HZ and --channels N"), "{err}");
    let (code, err) = send(&r, &["--format", "s16be"], vec![0; 64], 64, Duration::ZERO);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("s16le"), "{err}");
    let (code, err) = send(
        &r,
        &[],
        b"not,a\nsensor,table\n".to_vec(),
        64,
        Duration::ZERO,
    );
    assert_eq!(code, 6, "{err}");
    assert!(err.contains("standard input"), "{err}");
}

/// End-to-end delay from pipe in to pipe out on loopback, 2.5 ms frames:
/// a writer hands `send -` a 2.5 ms chunk at each 2.5 ms instant, each
/// chunk's first sample carrying its index; a reader of `recv --stdout`
/// notes when each chunk comes out. Tries latencies upward and reports the
/// lowest that played 20 s with no concealment.
/// `cargo test --release -p isochron-tools --test pipes -- --ignored --nocapture`
#[test]
#[ignore = "a 20 s real-time measurement per latency tried; figures for the README"]
fn pipe_to_pipe_delay() {
    let latencies: Vec<u64> = std::env::var("ISOCHRON_PIPE_LATENCIES")
        .unwrap_or_else(|_| "5,6,7,8,10".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let seconds = 20usize;
    let chunk = 120 * 4; // 2.5 ms of s16le stereo at 48 kHz
    let chunks = seconds * 400;
    for lat in latencies {
        let dir = tempfile::tempdir().unwrap();
        let stats = dir.path().join("stats.json");
        let r = Recv::start(
            dir.path(),
            &[
                "--raw",
                "--latency",
                &format!("{lat}ms"),
                "--stats-json",
                stats.to_str().unwrap(),
            ],
        );
        let mut child = bin()
            .args([
                "send",
                "-",
                "--to",
                &r.addr,
                "--pin",
                &r.fingerprint,
                "--quiet",
            ])
            .args(["--live", "--frame", "2.5ms", "--format", "s16le"])
            .args(["--rate", "48000", "--channels", "2"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let start = Instant::now() + Duration::from_millis(200);
        let writer = std::thread::spawn(move || {
            let mut written = Vec::with_capacity(chunks);
            let mut buf = vec![0u8; chunk];
            for i in 0..chunks {
                let due = start + Duration::from_micros(2_500 * i as u64);
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
                buf[..4].copy_from_slice(&(i as u32).to_le_bytes());
                stdin.write_all(&buf).unwrap();
                written.push(Instant::now());
            }
            written
        });
        let written = writer.join().unwrap();
        let _ = child.wait();
        let (code, media, stamps, log) = r.finish_stamped(Duration::from_secs(60));
        assert_eq!(code, 0, "{log}");
        let s: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&stats).unwrap()).unwrap();
        let concealed = s["sessions"][0]["stats"]["substreams"][0]["frames"]["concealed"]
            .as_u64()
            .unwrap_or(u64::MAX);
        assert_eq!(media.len(), chunks * chunk, "{log}");
        // Chunk i is out once byte (i + 1) x chunk has been read (44-byte
        // header aside: --raw has none).
        let mut delays: Vec<f64> = Vec::with_capacity(chunks);
        let mut k = 0;
        for (i, w) in written.iter().enumerate() {
            let end = (i + 1) * chunk;
            while stamps[k].0 < end {
                k += 1;
            }
            assert_eq!(
                u32::from_le_bytes(media[i * chunk..i * chunk + 4].try_into().unwrap()) as usize,
                i
            );
            delays.push(stamps[k].1.duration_since(*w).as_secs_f64() * 1e3);
        }
        let mut sorted = delays.clone();
        sorted.sort_by(f64::total_cmp);
        let q = |p: f64| sorted[((sorted.len() - 1) as f64 * p) as usize];
        eprintln!(
            "latency {lat} ms, 2.5 ms frames: {concealed} frames concealed; pipe-to-pipe delay p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            q(0.5),
            q(0.99),
            sorted[sorted.len() - 1]
        );
    }
}
