//! `--encoding opus` on the command line (issue 12), run as the README
//! tells a user: `send --encoding opus` to `recv` over QUIC on loopback and
//! `publish --encoding opus` to a subscriber through a router. The output
//! keeps the input's rate, layout and sample count, aligned to the sample
//! (best-SNR lag 0), with an SNR above a floor measured with margin; the
//! receiver's stats name the encoding and count what the decoder
//! concealed; what Opus cannot code is refused with exit 2.

use std::path::{Path, PathBuf};
use std::time::Duration;

use isochron_codecs::quality::{band_lsd_db, snr_db_aligned_frames};
use isochron_codecs::signal::Music;
use isochron_codecs::wav::WavWriter;
use isochron_codecs::{Encoding, Origin, Rate, StreamFormat, WavLayout};

mod fanout_support;
use fanout_support::{Proc, free_port, identity, publisher, router, samples, serial};

/// The binary with `dir` as its config home: no test reads or writes the
/// real `~/.config` (the authorized-senders file lives there).
fn bin(dir: &Path) -> std::process::Command {
    let mut c = fanout_support::bin();
    c.env("XDG_CONFIG_HOME", dir);
    c
}

#[allow(dead_code)]
mod schema;

/// Measured on loopback (libopus 1.3.1, music-like input at 96 kbit/s):
/// 48 kHz stereo 20.5 dB, 44.1 kHz mono 23.0 dB (the codec alone gives
/// the same, see codecs/tests/opus_codec.rs). A floor 5 dB below: a broken
/// alignment, resampler or decoder gives less than 3 dB.
const SNR_FLOOR_DB: f64 = 15.0;

/// `secs` of seeded music at `rate` Hz, 16-bit, stereo or (its left
/// channel) mono, as `dir/name`.
fn music_wav(dir: &Path, name: &str, rate: u32, channels: u16, secs: f64) -> PathBuf {
    let path = dir.join(name);
    let r = Rate::hz(rate).unwrap();
    let format = StreamFormat::new(Encoding::L16, channels, r).unwrap();
    let n = (rate as f64 * secs) as usize;
    let mut stereo = vec![0.0; n * 2];
    Music::new(5, r).fill(&mut stereo);
    let v: Vec<f64> = match channels {
        2 => stereo.iter().map(|x| x * 0.8).collect(),
        _ => stereo.chunks(2).map(|s| s[0] * 0.8).collect(),
    };
    let mut wire = vec![0u8; v.len() * 2];
    isochron_codecs::encoding::encode::<f64>(Encoding::L16, &v, &mut wire);
    let mut w = WavWriter::create(&path, format, &Origin::Wav(WavLayout::pcm(16))).unwrap();
    w.write(&wire).unwrap();
    w.finish().unwrap();
    path
}

fn f64s(format: StreamFormat, wire: &[u8]) -> Vec<f64> {
    let mut v = vec![0.0; wire.len() / format.encoding.bytes()];
    isochron_codecs::encoding::decode::<f64>(format.encoding, wire, &mut v);
    v
}

/// The output WAV against the input: same format (rate, layout, encoding)
/// and sample count, best SNR at lag 0 and above the floor. Returns the
/// SNR and the band log-spectral distance (dB).
fn assert_coded_copy(input: &Path, output: &Path) -> (f64, f64) {
    let (fa, a) = samples(input);
    let (fb, b) = samples(output);
    assert_eq!(
        fa,
        fb,
        "{}: the input's rate, layout and encoding",
        output.display()
    );
    let ch = fa.channels as usize;
    assert_eq!(
        b.len() / fb.stride(),
        a.len() / fa.stride(),
        "{}: the input's sample count",
        output.display()
    );
    let (x, y) = (f64s(fa, &a), f64s(fb, &b));
    let (snr, lag) = snr_db_aligned_frames(&y, &x, 48, ch);
    let lsd = band_lsd_db(&y, &x, fa.rate.num(), ch);
    eprintln!(
        "{}: {} Hz {ch} ch, SNR {snr:.1} dB at best lag {lag}, band LSD {lsd:.2} dB",
        output.display(),
        fa.rate.num()
    );
    assert_eq!(lag, 0, "aligned sample for sample (best SNR {snr:.1} dB)");
    assert!(
        snr > SNR_FLOOR_DB,
        "SNR {snr:.1} dB above {SNR_FLOOR_DB} dB"
    );
    (snr, lsd)
}

/// `isochron recv --once` into `out`, admitting the identity `sender`:
/// the process and the address and fingerprint it printed.
fn recv(dir: &Path, out: &Path, sender: &Path) -> (Proc, String, String) {
    let fp = bin(dir)
        .arg("id")
        .arg("--identity")
        .arg(sender)
        .output()
        .unwrap();
    assert!(fp.status.success());
    let fp = String::from_utf8(fp.stdout).unwrap().trim().to_owned();
    let mut cmd = bin(dir);
    cmd.args([
        "recv",
        "--listen",
        "127.0.0.1:0",
        "--once",
        "--quiet",
        "--out",
    ])
    .arg(out)
    .arg("--identity")
    .arg(identity(dir, "receiver"))
    .args(["--allow", &fp, "--stats-json"])
    .arg(out.with_extension("json"));
    let mut p = Proc::spawn("recv", &mut cmd);
    let out = p.child.stdout.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(out));
    let addr = lines.next().unwrap().unwrap();
    let pin = lines.next().unwrap().unwrap();
    (
        p,
        addr.strip_prefix("listening on ").unwrap().to_owned(),
        pin.strip_prefix("fingerprint ").unwrap().to_owned(),
    )
}

/// `send FILE --encoding ...` to a fresh receiver: the received file's
/// path, the receiver's session stats and the sender's stats.
fn send_recv(
    dir: &Path,
    input: &Path,
    extra: &[&str],
) -> (PathBuf, serde_json::Value, serde_json::Value) {
    let out = dir.join("out");
    let sender = identity(dir, "sender");
    let (rx, addr, pin) = recv(dir, &out, &sender);
    let send_stats = dir.join("send.json");
    let sent = bin(dir)
        .arg("send")
        .arg(input)
        .args(["--to", &addr, "--pin", &pin, "--quiet", "--identity"])
        .arg(&sender)
        .arg("--stats-json")
        .arg(&send_stats)
        .args(extra)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&sent.stderr);
    assert!(sent.status.success(), "send: {err}");
    let (code, rerr) = rx.wait(Duration::from_secs(60));
    assert_eq!(code, 0, "recv: {rerr}");
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.with_extension("json")).unwrap()).unwrap();
    schema::assert_valid("recv_stats_json", &r);
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&send_stats).unwrap()).unwrap();
    if extra.contains(&"opus") {
        assert!(err.contains("Opus at"), "send says what it codes: {err}");
        assert!(
            rerr.contains("(opus)") && rerr.contains("concealed by PLC"),
            "{rerr}"
        );
    }
    let name = input.file_name().unwrap();
    (out.join(name), r["sessions"][0].clone(), s)
}

/// Bits on the wire (source and repair datagrams, headers included) per
/// second of media.
fn wire_kbps(send: &serde_json::Value, secs: f64) -> f64 {
    let s = &send["stats"];
    (s["source_bytes"].as_u64().unwrap() + s["repair_bytes"].as_u64().unwrap()) as f64 * 8.0
        / secs
        / 1e3
}

const SECS: f64 = 3.0;

#[test]
fn send_opus_48k_stereo_music_comes_back_counted_aligned_and_clean() {
    let dir = tempfile::tempdir().unwrap();
    let input = music_wav(dir.path(), "music.wav", 48_000, 2, SECS);
    let (output, session, send) = send_recv(dir.path(), &input, &["--encoding", "opus"]);
    let (snr, lsd) = assert_coded_copy(&input, &output);
    assert_eq!(session["completed"], true, "{session}");
    let sub = &session["stats"]["substreams"][0];
    assert_eq!(sub["encoding"], "opus", "{sub}");
    // Loopback loses nothing: the decoder concealed nothing either.
    assert_eq!(sub["packets"]["lost"], 0, "{sub}");
    assert_eq!(sub["codec_plc_frames"], 0, "{sub}");
    assert_eq!(sub["frames"]["concealed"], 0, "{sub}");
    let kbps = wire_kbps(&send, SECS);
    eprintln!(
        "send --encoding opus (96 kbit/s, 10 ms, FEC 16+4): {kbps:.0} kbit/s on the wire, SNR {snr:.1} dB, LSD {lsd:.2} dB"
    );
    // 96 kbit/s of packets, plus headers and repair: far below L16's
    // 1536 kbit/s before any overhead.
    assert!(
        (96.0..500.0).contains(&kbps),
        "{kbps:.0} kbit/s on the wire"
    );
}

#[test]
fn pcm_beside_it_costs_ten_times_the_bitrate() {
    let dir = tempfile::tempdir().unwrap();
    let input = music_wav(dir.path(), "music.wav", 48_000, 2, SECS);
    let (output, session, send) = send_recv(dir.path(), &input, &[]);
    assert_eq!(samples(&input), samples(&output), "PCM is bit-exact");
    assert_eq!(session["stats"]["substreams"][0]["encoding"], "l16");
    let kbps = wire_kbps(&send, SECS);
    eprintln!("send (L16 PCM, 10 ms, FEC 16+4): {kbps:.0} kbit/s on the wire");
    assert!(kbps > 1536.0, "{kbps:.0} kbit/s on the wire");
}

#[test]
fn send_opus_44k1_mono_keeps_its_rate_count_and_alignment() {
    let dir = tempfile::tempdir().unwrap();
    let input = music_wav(dir.path(), "mono.wav", 44_100, 1, SECS);
    let (output, session, _) = send_recv(
        dir.path(),
        &input,
        &["--encoding", "opus", "--bitrate", "64k", "--frame", "20ms"],
    );
    assert_coded_copy(&input, &output);
    let sub = &session["stats"]["substreams"][0];
    assert_eq!(sub["encoding"], "opus", "{sub}");
    assert_eq!(sub["codec_plc_frames"], 0, "{sub}");
}

#[test]
fn publish_opus_to_a_subscriber_comes_back_counted_and_aligned() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let id = identity(dir.path(), "identity");
    let input = music_wav(dir.path(), "music.wav", 48_000, 2, SECS);
    let port = free_port();
    let _router = router(port, &[], &[]);
    let out = dir.path().join("rx");
    let sub = fanout_support::subscriber("studio/opus", &out, port, &id, &[]);
    let publ = publisher(
        "studio/opus",
        std::slice::from_ref(&input),
        port,
        &id,
        &[
            "--wait-listeners",
            "1",
            "--encoding",
            "opus",
            "--frame",
            "5ms",
        ],
    );
    let (code, perr) = publ.wait(Duration::from_secs(60));
    assert_eq!(code, 0, "publisher: {perr}");
    assert!(perr.contains("Opus at 96 kbit/s, 5 ms frames"), "{perr}");
    let (code, serr) = sub.wait(Duration::from_secs(60));
    assert_eq!(code, 0, "subscriber: {serr}");
    assert!(serr.contains("(opus)"), "{serr}");
    let st = fanout_support::stream_stats(&out);
    let s = &st["stats"]["substreams"][0];
    assert_eq!(s["encoding"], "opus", "{st}");
    assert_eq!(s["start_sample"], 0, "{st}");
    assert_eq!(st["stats"]["packets"]["unrecovered"], 0, "{st}");
    assert_coded_copy(&input, &out.join("music.wav"));
}

/// What Opus cannot code is a usage error (exit 2) naming what it takes,
/// before anything connects.
#[test]
fn bad_frames_and_bitrates_are_refused_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let input = music_wav(dir.path(), "music.wav", 48_000, 2, 0.1);
    let id = identity(dir.path(), "identity");
    let pin = format!("sha256:{}", "0".repeat(64));
    let cases: [(&[&str], &str); 6] = [
        (
            &["--encoding", "opus", "--frame", "7ms"],
            "2.5, 5, 10 or 20 ms",
        ),
        (
            &["--encoding", "opus", "--frame", "40ms"],
            "2.5, 5, 10 or 20 ms",
        ),
        (&["--encoding", "opus", "--bitrate", "3k"], "6k to 2000k"),
        (&["--encoding", "opus", "--bitrate", "fast"], "not a rate"),
        (&["--bitrate", "96k"], "--bitrate is for --encoding opus"),
        (
            &["--encoding", "opus", "--sample-interleave", "4"],
            "whole frames",
        ),
    ];
    for (extra, needle) in cases {
        let send = bin(dir.path())
            .arg("send")
            .arg(&input)
            .args(["--to", "127.0.0.1:9", "--pin", &pin, "--identity"])
            .arg(&id)
            .args(extra)
            .output()
            .unwrap();
        let publish = bin(dir.path())
            .args(["publish", "studio/bad"])
            .arg(&input)
            .args([
                "--router",
                &format!("127.0.0.1:{}", free_port()),
                "--identity",
            ])
            .arg(&id)
            .args(extra)
            .output()
            .unwrap();
        for (what, o) in [("send", send), ("publish", publish)] {
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(2), "{what} {extra:?}: {err}");
            assert!(
                err.contains(needle),
                "{what} {extra:?} names {needle}: {err}"
            );
        }
    }
    // A rate the codec (and so the receiver) refuses: an input error, before connecting.
    let low = music_wav(dir.path(), "low.wav", 4_000, 1, 0.1);
    let o = bin(dir.path())
        .arg("send")
        .arg(&low)
        .args(["--to", "127.0.0.1:9", "--pin", &pin, "--identity"])
        .arg(&id)
        .args(["--encoding", "opus"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(6), "{err}");
    assert!(err.contains("low.wav: cannot be coded as Opus"), "{err}");
    // The bitrate takes kbit/s and bit/s alike.
    let help = bin(dir.path()).args(["send", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("--bitrate <KBIT/S>") && help.contains("opus"),
        "{help}"
    );
    for ok in ["96k", "96000", "128kbit"] {
        let o = bin(dir.path())
            .arg("send")
            .arg(&input)
            .args(["--to", "127.0.0.1:9", "--pin", &pin, "--identity"])
            .arg(&id)
            .args([
                "--encoding",
                "opus",
                "--bitrate",
                ok,
                "--connect-timeout",
                "1s",
            ])
            .output()
            .unwrap();
        // Past its options: only the connection fails (nobody on port 9).
        assert_eq!(
            o.status.code(),
            Some(5),
            "--bitrate {ok}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}
