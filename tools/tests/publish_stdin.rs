//! `... | isochron publish NAME -`: standard input into the fan-out
//! publisher, as the README runs it, through a real `isochron router` on
//! 127.0.0.1 to a real subscriber: a WAV stream, raw PCM and CSV rows
//! arrive as they were written.

mod fanout_support;
mod pipe_support;

use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use fanout_support::*;
use pipe_support::{logger_rows, noise, streaming_wav_header};

/// Publish `pieces` written to `publish NAME -` through a router to one
/// subscriber writing into `dir/rx`; both must exit 0. The first `preamble`
/// pieces at once (what says the format: a WAV header, a CSV header and
/// the rows that give its rate), the others once on air, one every `every`
/// (the producer's own pace, as a recorder writes). The publisher's stderr.
fn publish_stdin(
    dir: &Path,
    name: &str,
    args: &[&str],
    pieces: Vec<Vec<u8>>,
    preamble: usize,
    every: Duration,
) -> String {
    let id = identity(dir, "identity");
    let port = free_port();
    let _router = router(port, &[], &[]);
    let out = dir.join("rx");
    // A latency that rides out a loaded machine's stalls of the writer:
    // bit-exactness is the point here, not how low it goes.
    let sub = subscriber(
        name,
        &out,
        port,
        &id,
        &["--latency", "400ms", "--high-water", "800ms"],
    );
    let mut cmd = bin();
    cmd.args(["publish", name, "-", "--quiet", "--router"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--identity")
        .arg(&id)
        .args(["--wait-listeners", "1"])
        .args(args)
        .stdin(Stdio::piped());
    let mut publ = Proc::spawn("publisher", &mut cmd);
    let mut stdin = publ.child.stdin.take().unwrap();
    for p in &pieces[..preamble] {
        stdin.write_all(p).unwrap();
    }
    // On air (the listener is there): write as a live source would.
    publ.line("publishing ", Duration::from_secs(60));
    let start = Instant::now();
    for (i, p) in pieces[preamble..].iter().enumerate() {
        let due = start + every * i as u32;
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        stdin.write_all(p).unwrap();
    }
    drop(stdin);
    let (code, err) = publ.wait(Duration::from_secs(60));
    assert_eq!(code, 0, "publisher: {err}");
    let (code, log) = sub.wait(Duration::from_secs(60));
    assert_eq!(code, 0, "subscriber: {log}");
    let st = stream_stats(&out);
    assert_eq!(st["completed"], true, "{st}");
    err
}

/// The samples of a WAV our writer made: what follows its `data` header.
fn wav_body(path: &Path) -> Vec<u8> {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let at = b
        .windows(4)
        .position(|w| w == b"data")
        .unwrap_or_else(|| panic!("{}: no data chunk", path.display()));
    b[at + 8..].to_vec()
}

/// 10 ms pieces of `bytes` (of `frame` bytes a sample frame at 48 kHz).
fn pieces(bytes: &[u8], frame: usize) -> Vec<Vec<u8>> {
    bytes.chunks(480 * frame).map(<[u8]>::to_vec).collect()
}

#[test]
fn raw_pcm_from_stdin_is_published_bit_exact() {
    let dir = tempfile::tempdir().unwrap();
    // 1.5 s of s24le stereo at 48 kHz.
    let pcm = noise(72_000 * 2 * 3, 3);
    publish_stdin(
        dir.path(),
        "live/raw",
        &["--format", "s24le", "--rate", "48000", "--channels", "2"],
        pieces(&pcm, 6),
        0,
        Duration::from_millis(10),
    );
    let got = wav_body(&dir.path().join("rx/stdin.wav"));
    assert_eq!(got.len(), pcm.len());
    assert!(got == pcm, "samples differ");
}

#[test]
fn a_wav_stream_from_stdin_is_published_bit_exact() {
    let dir = tempfile::tempdir().unwrap();
    // A pipe writer's WAV (sox, arecord, ffmpeg): sizes 0xFFFFFFFF.
    let pcm = noise(72_000 * 2 * 2, 5);
    let wav = streaming_wav_header(2);
    let mut all = vec![wav];
    all.extend(pieces(&pcm, 4));
    publish_stdin(
        dir.path(),
        "live/wav",
        &[],
        all,
        1,
        Duration::from_millis(10),
    );
    let got = wav_body(&dir.path().join("rx/stdin.wav"));
    assert_eq!(got.len(), pcm.len());
    assert!(got == pcm, "samples differ");
}

#[test]
fn sensor_rows_from_stdin_are_published_as_they_come() {
    let dir = tempfile::tempdir().unwrap();
    // One row every 5 ms, as a 200 Hz logger writes them.
    let (csv, rows) = logger_rows(300);
    // The header and the two rows whose times give the rate, then the rest.
    publish_stdin(
        dir.path(),
        "live/imu",
        &[],
        rows,
        3,
        Duration::from_millis(5),
    );
    let got = std::fs::read_to_string(dir.path().join("rx/stdin.csv")).unwrap();
    assert_eq!(got, csv);
}

#[test]
fn publish_stdin_explains_a_missing_description() {
    let dir = tempfile::tempdir().unwrap();
    let o = bin()
        .args(["publish", "live/x", "-", "--format", "s16le", "--router"])
        .arg("127.0.0.1:9")
        .arg("--identity")
        .arg(identity(dir.path(), "identity"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("--rate HZ and --channels N"), "{err}");
}
