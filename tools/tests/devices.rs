//! Sound devices for real, through ALSA's own plugins: a temporary HOME
//! whose `.asoundrc` defines a capture PCM that reads a raw file (ALSA's
//! `file` plugin with `infile`, over `null`) and a playback PCM that writes
//! one. No sound card is needed, and none is pretended: cpal opens, runs
//! and closes these through alsa-lib exactly as it would a card.

mod pipe_support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use isochron_codecs::wav::{WavReader, WavWriter};
use isochron_codecs::{Encoding, Origin, Rate, StreamFormat, WavLayout};
use pipe_support::noise;

fn bin(home: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_isochron"));
    c.env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env_remove("ALSA_CONFIG_PATH");
    c
}

/// The fingerprint `send` presents from this HOME, for `recv --allow`.
fn sender_fingerprint(home: &Path) -> String {
    let o = bin(home).arg("id").output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap().trim().to_owned()
}

/// A HOME whose ALSA `default` device captures from `in.raw` and plays into
/// `out.raw` (s16le) through ALSA's file plugin: cpal reaches ALSA's
/// builtin names and the cards, so this is how a machine without one gets
/// a device (as a user would point `default` at a card).
fn alsa_home(dir: &Path, input: &[u8]) {
    std::fs::write(dir.join("in.raw"), input).unwrap();
    let rc = format!(
        "pcm.isocap {{\n type file\n slave.pcm null\n file \"/dev/null\"\n infile \"{0}/in.raw\"\n format raw\n}}\n\
         pcm.isoplay {{\n type file\n slave.pcm null\n file \"{0}/out.raw\"\n format raw\n}}\n\
         pcm.!default {{\n type asym\n playback.pcm \"isoplay\"\n capture.pcm \"isocap\"\n}}\n",
        dir.display()
    );
    std::fs::write(dir.join(".asoundrc"), rc).unwrap();
}

/// `isochron recv` with extra args; returns the child, address, fingerprint.
fn recv(home: &Path, extra: &[&str]) -> (std::process::Child, String, String) {
    let mut child = bin(home)
        .args(["recv", "--listen", "127.0.0.1:0", "--quiet", "--once"])
        .args(["--allow", &sender_fingerprint(home)])
        .arg("--identity")
        .arg(home.join("identity"))
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = lines.next().unwrap().unwrap().replace("listening on ", "");
    let fp = lines.next().unwrap().unwrap().replace("fingerprint ", "");
    (child, addr, fp)
}

fn wait(mut child: std::process::Child, within: Duration) -> (i32, String) {
    let deadline = Instant::now() + within;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            let mut err = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return (s.code().unwrap_or(-1), err);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("did not finish within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn devices_lists_the_alsa_pcms() {
    let home = tempfile::tempdir().unwrap();
    alsa_home(home.path(), &[0; 16]);
    let o = bin(home.path()).arg("devices").output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains("default\tcapture+playback"), "{out}");
}

#[test]
fn capture_through_an_alsa_plugin_arrives_bit_exact() {
    let home = tempfile::tempdir().unwrap();
    // Half a second of stereo 48 kHz s16le for the capture PCM to deliver.
    let input = noise(24_000 * 4, 0x9e37_79b9_7f4a_7c15);
    alsa_home(home.path(), &input);
    let out = home.path().join("out");
    let (rx, addr, fp) = recv(home.path(), &["--out", out.to_str().unwrap()]);
    let o = bin(home.path())
        .args(["send", "--device", "--rate", "48000", "--channels", "2"])
        .args([
            "--duration",
            "500ms",
            "--quiet",
            "--to",
            &addr,
            "--pin",
            &fp,
        ])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "send: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let (code, err) = wait(rx, Duration::from_secs(30));
    assert_eq!(code, 0, "{err}");
    let mut r = WavReader::open(out.join("default.wav")).unwrap();
    assert_eq!(r.total_samples(), 24_000);
    let mut wire = vec![0u8; input.len()];
    assert_eq!(r.read(&mut wire).unwrap(), 24_000);
    // Wire bytes are big-endian; the capture file was little-endian.
    for s in wire.chunks_exact_mut(2) {
        s.swap(0, 1);
    }
    assert!(wire == input, "captured samples differ");
}

#[test]
fn playback_through_an_alsa_plugin_opens_runs_and_closes() {
    let home = tempfile::tempdir().unwrap();
    alsa_home(home.path(), &[0; 16]);
    // A WAV of a loud square wave to send.
    let wav = home.path().join("tone.wav");
    {
        let format = StreamFormat::new(Encoding::L16, 2, Rate::hz(48_000).unwrap()).unwrap();
        let origin = Origin::Wav(WavLayout::pcm(16));
        let mut w = WavWriter::create(&wav, format, &origin).unwrap();
        let mut wire = Vec::new();
        for i in 0..24_000 {
            let v: i16 = if (i / 50) % 2 == 0 { 8000 } else { -8000 };
            wire.extend_from_slice(&v.to_be_bytes());
            wire.extend_from_slice(&v.to_be_bytes());
        }
        w.write(&wire).unwrap();
        w.finish().unwrap();
    }
    let (rx, addr, fp) = recv(home.path(), &["--play"]);
    let o = bin(home.path())
        .args(["send", "--live", "--quiet", "--to", &addr, "--pin", &fp])
        .arg(&wav)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "send: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let (code, err) = wait(rx, Duration::from_secs(30));
    assert_eq!(code, 0, "{err}");
    // ALSA's file plugin wrote what the card was given: our samples
    // (resampled) among the silence of a card with no clock of its own.
    let played = std::fs::read(home.path().join("out.raw")).unwrap();
    let loud = played
        .chunks_exact(2)
        .filter(|s| i16::from_le_bytes([s[0], s[1]]).unsigned_abs() > 4000)
        .count();
    assert!(loud > 1000, "{loud} loud samples in {} bytes", played.len());
}

#[test]
fn no_such_device_is_a_clear_error() {
    let home = tempfile::tempdir().unwrap();
    alsa_home(home.path(), &[0; 16]);
    let o = bin(home.path())
        .args(["recv", "--listen", "127.0.0.1:0", "--play", "nosuch"])
        .arg("--identity")
        .arg(home.path().join("identity"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(7), "{err}");
    assert!(
        err.contains("no playback sound device named 'nosuch'"),
        "{err}"
    );
    assert!(
        err.contains("there are: default"),
        "names what there is: {err}"
    );
    let o = bin(home.path())
        .args(["send", "--device", "nosuch", "--to", "127.0.0.1:9", "--pin"])
        .arg(format!("sha256:{}", "0".repeat(64)))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(6), "{err}");
    assert!(
        err.contains("no capture sound device named 'nosuch'"),
        "{err}"
    );
    // This machine has no sound card (CI's neither): the default device
    // fails with a message, not a panic.
    let no_card =
        std::fs::read_to_string("/proc/asound/cards").map_or(true, |c| c.contains("no soundcards"));
    if no_card {
        let bare = tempfile::tempdir().unwrap();
        let o = bin(bare.path())
            .args(["recv", "--listen", "127.0.0.1:0", "--play"])
            .arg("--identity")
            .arg(bare.path().join("identity"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(7), "{err}");
        assert!(err.contains("is there a sound card?"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}
