//! Two hosts: network namespaces joined by a veth pair. `recv` runs in one,
//! `netem` and `send` in the other, so media crosses a real (virtual) link.
//! Needs root and `ip`; otherwise it is skipped and says why.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use isochron_codecs::signal::Music;
use isochron_codecs::wav::{WavReader, WavWriter};
use isochron_codecs::{Encoding, Origin, Rate, StreamFormat, WavLayout};

fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Why this machine cannot run the test, if it cannot.
fn unavailable() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not running as root (network namespaces need it)".into());
    }
    if Command::new("ip").arg("-V").output().is_err() {
        return Some("the `ip` command (iproute2) is not installed".into());
    }
    None
}

/// Two namespaces and a veth pair, removed on drop.
struct Hosts {
    a: String,
    b: String,
    addr_a: String,
}

impl Hosts {
    fn new() -> Result<Hosts, String> {
        let id = std::process::id() % 100_000;
        let (a, b) = (format!("isoA{id}"), format!("isoB{id}"));
        let (va, vb) = (format!("va{id}"), format!("vb{id}"));
        let net = 10 + id % 200;
        let addr_a = format!("10.231.{net}.1");
        let addr_b = format!("10.231.{net}.2");
        let h = Hosts {
            a: a.clone(),
            b: b.clone(),
            addr_a: addr_a.clone(),
        };
        let steps: Vec<Vec<String>> = vec![
            vec!["netns".into(), "add".into(), a.clone()],
            vec!["netns".into(), "add".into(), b.clone()],
            vec![
                "link".into(),
                "add".into(),
                va.clone(),
                "type".into(),
                "veth".into(),
                "peer".into(),
                "name".into(),
                vb.clone(),
            ],
            vec![
                "link".into(),
                "set".into(),
                va.clone(),
                "netns".into(),
                a.clone(),
            ],
            vec![
                "link".into(),
                "set".into(),
                vb.clone(),
                "netns".into(),
                b.clone(),
            ],
            vec![
                "-n".into(),
                a.clone(),
                "addr".into(),
                "add".into(),
                format!("{addr_a}/24"),
                "dev".into(),
                va.clone(),
            ],
            vec![
                "-n".into(),
                b.clone(),
                "addr".into(),
                "add".into(),
                format!("{addr_b}/24"),
                "dev".into(),
                vb.clone(),
            ],
            vec![
                "-n".into(),
                a.clone(),
                "link".into(),
                "set".into(),
                va,
                "up".into(),
            ],
            vec![
                "-n".into(),
                b.clone(),
                "link".into(),
                "set".into(),
                vb,
                "up".into(),
            ],
            vec![
                "-n".into(),
                a.clone(),
                "link".into(),
                "set".into(),
                "lo".into(),
                "up".into(),
            ],
            vec![
                "-n".into(),
                b.clone(),
                "link".into(),
                "set".into(),
                "lo".into(),
                "up".into(),
            ],
        ];
        for s in steps {
            let args: Vec<&str> = s.iter().map(String::as_str).collect();
            if !ip(&args) {
                return Err(format!("`ip {}` failed", args.join(" ")));
            }
        }
        Ok(h)
    }

    /// `isochron` in namespace `ns`, with a config directory of its own
    /// (each host is its own user: its identity, its authorized senders).
    fn exec(&self, ns: &str, config: &Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns, env!("CARGO_BIN_EXE_isochron")]);
        c.env("XDG_CONFIG_HOME", config.join(ns));
        c
    }

    /// The pairing a user does once: the receiving host (A) admits the
    /// sending host's (B) identity, as `isochron id` prints it on B.
    fn pair(&self, config: &Path) {
        let id = self.exec(&self.b, config).arg("id").output().unwrap();
        assert!(
            id.status.success(),
            "{}",
            String::from_utf8_lossy(&id.stderr)
        );
        let fingerprint = String::from_utf8(id.stdout).unwrap();
        let added = self
            .exec(&self.a, config)
            .args(["trust", "add", fingerprint.trim(), "host B"])
            .output()
            .unwrap();
        assert!(
            added.status.success(),
            "{}",
            String::from_utf8_lossy(&added.stderr)
        );
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        ip(&["netns", "del", &self.a]);
        ip(&["netns", "del", &self.b]);
    }
}

fn song(dir: &Path) -> PathBuf {
    let path = dir.join("take.wav");
    let rate = Rate::hz(48_000).unwrap();
    let format = StreamFormat::new(Encoding::L16, 2, rate).unwrap();
    let layout = WavLayout::pcm(16);
    let mut w = WavWriter::create(&path, format, &Origin::Wav(layout)).unwrap();
    let mut v = vec![0.0; 48_000 * 3 * 2];
    Music::new(9, rate).fill(&mut v);
    let mut wire = vec![0u8; v.len() * 2];
    isochron_codecs::encoding::encode::<f64>(Encoding::L16, &v, &mut wire);
    w.write(&wire).unwrap();
    w.finish().unwrap();
    path
}

fn samples(path: &Path) -> Vec<u8> {
    let mut r = WavReader::open(path).unwrap();
    let mut buf = vec![0u8; r.total_samples() as usize * r.format().stride()];
    let n = r.read(&mut buf).unwrap();
    buf.truncate(n * r.format().stride());
    buf
}

/// recv in A, netem and send in B; returns the received file.
fn stream_across(h: &Hosts, dir: &Path, input: &Path, loss: &str, tag: &str) -> PathBuf {
    let out = dir.join(format!("out-{tag}"));
    let config = dir.join("config");
    let mut recv = h
        .exec(&h.a, &config)
        .args([
            "recv",
            "--listen",
            &format!("{}:0", h.addr_a),
            "--once",
            "--quiet",
            "--out",
        ])
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(recv.stdout.take().unwrap()).lines();
    let addr = lines.next().unwrap().unwrap().replace("listening on ", "");
    let pin = lines.next().unwrap().unwrap().replace("fingerprint ", "");
    let mut netem = h
        .exec(&h.b, &config)
        .args([
            "netem",
            "--listen",
            "127.0.0.1:0",
            "--to",
            &addr,
            "--loss",
            loss,
            "--delay",
            "5ms",
            "--jitter",
            "2ms",
        ])
        .args(["--duration", "60s"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut nl = BufReader::new(netem.stdout.take().unwrap()).lines();
    let relay = nl
        .next()
        .unwrap()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_owned();
    let sent = h
        .exec(&h.b, &config)
        .arg("send")
        .arg(input)
        .args(["--to", &relay, "--pin", &pin, "--quiet"])
        .output()
        .unwrap();
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let status = recv.wait().unwrap();
    let _ = netem.kill();
    let _ = netem.wait();
    assert_eq!(status.code(), Some(0), "recv completed");
    out.join("take.wav")
}

#[test]
fn two_hosts_across_a_veth_pair() {
    if let Some(why) = unavailable() {
        eprintln!("SKIPPED two_hosts_across_a_veth_pair: {why}");
        return;
    }
    let hosts = match Hosts::new() {
        Ok(h) => h,
        Err(why) => {
            eprintln!("SKIPPED two_hosts_across_a_veth_pair: cannot make namespaces: {why}");
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let input = song(dir.path());
    hosts.pair(&dir.path().join("config"));
    let clean = stream_across(&hosts, dir.path(), &input, "0%", "clean");
    let (a, b) = (samples(&input), samples(&clean));
    if a != b {
        let first = a.iter().zip(&b).position(|(x, y)| x != y);
        let stats =
            std::fs::read_to_string(dir.path().join("stats-clean.json")).unwrap_or_default();
        panic!(
            "not bit-exact at zero loss: {} vs {} bytes, first difference at {first:?}\n{stats}",
            a.len(),
            b.len()
        );
    }
    let lossy = stream_across(&hosts, dir.path(), &input, "5%", "lossy");
    assert_eq!(
        samples(&input).len(),
        samples(&lossy).len(),
        "sample count exact at 5 % loss"
    );
}
