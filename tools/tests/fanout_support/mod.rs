//! What the fan-out tests share: routers, publishers and subscribers as
//! real `isochron` processes on 127.0.0.1 (killed on drop, so nothing is
//! left running), generated media, and comparisons of what was written.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use isochron_codecs::csv::CsvWriter;
use isochron_codecs::signal::{Music, Sensor};
use isochron_codecs::wav::{WavReader, WavWriter};
use isochron_codecs::{CsvLayout, Encoding, Origin, Rate, StreamFormat, TimeColumn, WavLayout};

/// One fan-out scenario at a time: each runs two routers, a publisher and
/// up to three listeners at real-time priority, and a 2-core machine that
/// runs several of them at once misses deadlines that no user's would.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_isochron"));
    // Never the shared default router, never someone else's.
    c.env_remove("ISOCHRON_ROUTER")
        .env_remove("ISOCHRON_PASSPHRASE");
    c
}

/// A port free for both TCP and UDP on 127.0.0.1 (zenoh listens on both).
pub fn free_port() -> u16 {
    loop {
        let t = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = t.local_addr().unwrap().port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A persistent identity in `dir/name`, created now (so processes started
/// together find it).
pub fn identity(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    isochron_engine::net::tls::Identity::load_or_create(&p).unwrap();
    p
}

/// A child process, killed and reaped on drop.
pub struct Proc {
    pub child: Child,
    pub what: String,
}

impl Proc {
    pub fn spawn(what: &str, cmd: &mut Command) -> Proc {
        let child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{what} starts: {e}"));
        Proc {
            child,
            what: what.to_owned(),
        }
    }

    /// The first stdout line that starts with `prefix` (bounded wait).
    pub fn line(&mut self, prefix: &str, within: Duration) -> String {
        let out = self.child.stdout.take().expect("stdout piped");
        let (tx, rx) = std::sync::mpsc::channel();
        let p = prefix.to_owned();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if l.starts_with(&p) {
                    let _ = tx.send(l);
                    return;
                }
            }
        });
        rx.recv_timeout(within).unwrap_or_else(|_| {
            panic!("{} printed no '{prefix}' line within {within:?}", self.what)
        })
    }

    /// Wait for exit (bounded): the code and everything on stderr.
    pub fn wait(mut self, within: Duration) -> (i32, String) {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut err = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    e.read_to_string(&mut err).unwrap();
                }
                return (status.code().unwrap_or(-1), err);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let mut err = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                panic!("{} did not exit within {within:?}:\n{err}", self.what);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kill it now (SIGKILL) and reap it.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `isochron router` on 127.0.0.1:`port`, connected to `connect`.
pub fn router(port: u16, connect: &[String], extra: &[&str]) -> Proc {
    let mut cmd = bin();
    cmd.args(["router", "--listen", &format!("127.0.0.1:{port}")]);
    for c in connect {
        cmd.args(["--connect", c]);
    }
    cmd.args(extra);
    let what = format!("router :{port}");
    let mut p = match std::env::var_os("FANOUT_TEST_LOG_DIR") {
        // Diagnosis: each router's log in a file of its own there (run
        // with ISOCHRON_LOG=... to choose what it logs).
        Some(dir) => {
            let f =
                std::fs::File::create(Path::new(&dir).join(format!("router-{port}.log"))).unwrap();
            let child = cmd
                .stdout(Stdio::piped())
                .stderr(f)
                .spawn()
                .unwrap_or_else(|e| panic!("{what} starts: {e}"));
            Proc { child, what }
        }
        None => Proc::spawn(&what, &mut cmd),
    };
    p.line("router ", Duration::from_secs(20));
    p
}

/// `isochron subscribe NAME --once` into `out` through the router on `port`.
pub fn subscriber(name: &str, out: &Path, port: u16, identity: &Path, extra: &[&str]) -> Proc {
    let mut cmd = bin();
    cmd.args(["subscribe", name, "--once", "--quiet", "--router"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--out")
        .arg(out)
        .arg("--identity")
        .arg(identity)
        .arg("--stats-json")
        .arg(out.with_extension("json"))
        // A loaded 2-core machine may take more than the default 10 s to
        // bring a publisher process up; how long is not what tests check.
        .args(["--wait", "60s"])
        .args(extra);
    Proc::spawn(&format!("subscriber {}", out.display()), &mut cmd)
}

/// Wait (bounded, generously: a loaded machine is slow to bring processes
/// up) until a subscriber started with `--ready-file path` has subscribed.
pub fn wait_ready(path: &Path) {
    let until = Instant::now() + Duration::from_secs(60);
    while !path.exists() {
        assert!(
            Instant::now() < until,
            "{} not written within 60 s",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `isochron publish NAME FILES` through the router on `port`.
pub fn publisher(
    name: &str,
    files: &[PathBuf],
    port: u16,
    identity: &Path,
    extra: &[&str],
) -> Proc {
    let mut cmd = bin();
    cmd.args(["publish", name])
        .args(files)
        .args(["--quiet", "--router"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--identity")
        .arg(identity)
        .args(extra);
    Proc::spawn("publisher", &mut cmd)
}

/// A song (48 kHz stereo 16-bit) and a 3-axis sensor CSV at 200 Hz.
pub fn media(dir: &Path, secs: f64) -> (PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    let rate = Rate::hz(48_000).unwrap();
    let format = StreamFormat::new(Encoding::L16, 2, rate).unwrap();
    let song = dir.join("song.wav");
    let mut w = WavWriter::create(&song, format, &Origin::Wav(WavLayout::pcm(16))).unwrap();
    let n = (48_000.0 * secs) as usize;
    let mut v = vec![0.0; n * 2];
    Music::new(5, rate).fill(&mut v);
    let mut wire = vec![0u8; n * 4];
    isochron_codecs::encoding::encode::<f64>(Encoding::L16, &v, &mut wire);
    w.write(&wire).unwrap();
    w.finish().unwrap();

    let srate = Rate::hz(200).unwrap();
    let sformat = StreamFormat::new(Encoding::F64, 3, srate).unwrap();
    let imu = dir.join("imu.csv");
    let origin = Origin::Csv(CsvLayout {
        columns: vec!["ax".into(), "ay".into(), "az".into()],
        time: Some(TimeColumn::seconds("time", 0, 0.0, 3)),
        decimals: vec![Some(4); 3],
        ..CsvLayout::new(Vec::new())
    });
    let mut w = CsvWriter::create(&imu, sformat, &origin).unwrap();
    let rows = (200.0 * secs) as usize;
    let mut v = vec![0.0; rows * 3];
    Sensor::new(5, srate).fill(&mut v);
    for x in &mut v {
        *x = (*x * 1e4).round() / 1e4;
    }
    let mut wire = vec![0u8; v.len() * 8];
    isochron_codecs::encoding::encode::<f64>(Encoding::F64, &v, &mut wire);
    w.write(&wire).unwrap();
    w.finish().unwrap();
    (song, imu)
}

/// A WAV's format and wire-encoded samples.
pub fn samples(path: &Path) -> (StreamFormat, Vec<u8>) {
    let mut r = WavReader::open(path).unwrap();
    let mut buf = vec![0u8; r.total_samples() as usize * r.format().stride()];
    let n = r.read(&mut buf).unwrap();
    buf.truncate(n * r.format().stride());
    (r.format(), buf)
}

/// The stats a subscriber wrote (its one stream).
pub fn stream_stats(out: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(out.with_extension("json"))
        .unwrap_or_else(|e| panic!("{}: {e}", out.with_extension("json").display()));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["streams"][0].clone()
}

/// Received files equal the sent ones from `start_sample` (per substream:
/// song, then imu) on: WAV samples bit-exact, CSV rows textually equal.
pub fn assert_same_from(sent: (&Path, &Path), out: &Path, start: (u64, u64)) {
    let (fmt, a) = samples(sent.0);
    let (fmt2, b) = samples(&out.join("song.wav"));
    assert_eq!(fmt, fmt2);
    let from = start.0 as usize * fmt.stride();
    assert_eq!(
        b.len(),
        a.len() - from,
        "{}: samples from the start point",
        out.display()
    );
    if a[from..] != b[..] {
        let stride = fmt.stride();
        let differ: Vec<usize> = (0..b.len() / stride)
            .filter(|&i| {
                a[from + i * stride..from + (i + 1) * stride] != b[i * stride..(i + 1) * stride]
            })
            .collect();
        panic!(
            "{}: song.wav bit-exact from sample {}: {} samples differ, from {} to {} (of the output); stats: {}",
            out.display(),
            start.0,
            differ.len(),
            differ[0],
            differ[differ.len() - 1],
            std::fs::read_to_string(out.with_extension("json")).unwrap_or_default()
        );
    }
    let csv_a = std::fs::read_to_string(sent.1).unwrap();
    let csv_b = std::fs::read_to_string(out.join("imu.csv")).unwrap();
    let la: Vec<&str> = csv_a.lines().collect();
    let lb: Vec<&str> = csv_b.lines().collect();
    assert_eq!(la[0], lb[0], "same header");
    assert_eq!(
        &la[1 + start.1 as usize..],
        &lb[1..],
        "{}: imu.csv rows from row {} (times are real media times)",
        out.display(),
        start.1
    );
}

/// Every byte a relay forwarded, per datagram or per TCP read, both ways.
pub type Recorded = std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>;

/// A UDP relay on 127.0.0.1 to `target`, recording every datagram. Returns
/// its port; it runs until the process ends (a thread, not a process).
pub fn udp_recorder(target: u16, log: Recorded) -> u16 {
    let listen = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = listen.local_addr().unwrap().port();
    let up = UdpSocket::bind("127.0.0.1:0").unwrap();
    up.connect(("127.0.0.1", target)).unwrap();
    let client = std::sync::Arc::new(std::sync::Mutex::new(None));
    let (l2, up2, c2, log2) = (
        listen.try_clone().unwrap(),
        up.try_clone().unwrap(),
        client.clone(),
        log.clone(),
    );
    std::thread::spawn(move || {
        let mut b = vec![0u8; 65536];
        while let Ok(n) = up2.recv(&mut b) {
            log2.lock().unwrap().push(b[..n].to_vec());
            if let Some(a) = *c2.lock().unwrap() {
                let _ = l2.send_to(&b[..n], a);
            }
        }
    });
    std::thread::spawn(move || {
        let mut b = vec![0u8; 65536];
        while let Ok((n, a)) = listen.recv_from(&mut b) {
            *client.lock().unwrap() = Some(a);
            log.lock().unwrap().push(b[..n].to_vec());
            let _ = up.send(&b[..n]);
        }
    });
    port
}

/// A TCP relay on 127.0.0.1 to `target`, recording every byte both ways.
pub fn tcp_recorder(target: u16, log: Recorded) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(a) = conn else { return };
            let Ok(b) = std::net::TcpStream::connect(("127.0.0.1", target)) else {
                return;
            };
            for (mut from, mut to) in [(a.try_clone().unwrap(), b.try_clone().unwrap()), (b, a)] {
                let log = log.clone();
                std::thread::spawn(move || {
                    use std::io::Write;
                    let mut buf = vec![0u8; 65536];
                    while let Ok(n) = from.read(&mut buf) {
                        if n == 0 || to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        log.lock().unwrap().push(buf[..n].to_vec());
                    }
                    let _ = to.shutdown(std::net::Shutdown::Both);
                });
            }
        }
    });
    port
}

/// How many 16-byte windows of `plain` (taken every `step` bytes, skipping
/// runs of one byte value) appear anywhere in `haystacks`.
pub fn plaintext_hits(plain: &[u8], step: usize, haystacks: &[Vec<u8>]) -> usize {
    let windows: std::collections::HashSet<&[u8]> = plain
        .windows(16)
        .step_by(step)
        .filter(|w| w.iter().any(|&b| b != w[0]))
        .collect();
    haystacks
        .iter()
        .map(|h| h.windows(16).filter(|w| windows.contains(w)).count())
        .sum()
}
