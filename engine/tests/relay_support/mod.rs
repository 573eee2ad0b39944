//! Test kit for the relay: a UDP echo server and a probe client that stamps
//! each datagram with a sequence number and its send time.

#![allow(dead_code)] // each test binary uses a part

use std::collections::HashSet;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use isochron_engine::net::relay::{RelayConfig, RelayHandle, RelayStats};
use isochron_engine::sim::Impairment;
use socket2::{Domain, Protocol, Socket, Type};

/// Large buffers on the test's own sockets too, so the kernel drops nothing.
const BUF: usize = 4 << 20;
/// Header of every probe datagram: sequence number, send time.
pub const HEADER: usize = 16;

pub fn udp() -> UdpSocket {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
    s.set_recv_buffer_size(BUF).unwrap();
    s.set_send_buffer_size(BUF).unwrap();
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    s.bind(&any.into()).unwrap();
    s.into()
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A relay in front of `upstream` with these impairments.
pub fn relay(upstream: SocketAddr, forward: Impairment, backward: Impairment) -> RelayHandle {
    RelayHandle::start(RelayConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        upstream,
        forward,
        backward,
        seed: 42,
    })
    .unwrap()
}

/// Echoes every datagram to its sender, on its own thread, until dropped.
pub struct Echo {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    peers: Arc<Mutex<HashSet<SocketAddr>>>,
    thread: Option<JoinHandle<()>>,
}

impl Echo {
    pub fn start() -> Echo {
        Echo::on(udp())
    }

    pub fn on(sock: UdpSocket) -> Echo {
        let addr = sock.local_addr().unwrap();
        // Only so the thread notices `stop`; not a synchronisation.
        sock.set_read_timeout(Some(ms(20))).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let peers = Arc::new(Mutex::new(HashSet::new()));
        let thread = std::thread::spawn({
            let (stop, peers) = (stop.clone(), peers.clone());
            move || {
                let mut buf = vec![0; 65_536];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok((n, from)) = sock.recv_from(&mut buf) {
                        peers.lock().unwrap().insert(from);
                        let _ = sock.send_to(&buf[..n], from);
                    }
                }
            }
        });
        Echo {
            addr,
            stop,
            peers,
            thread: Some(thread),
        }
    }

    /// The distinct addresses that sent to it.
    pub fn peers(&self) -> HashSet<SocketAddr> {
        self.peers.lock().unwrap().clone()
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One datagram that came back.
#[derive(Debug, Clone, Copy)]
pub struct Echoed {
    pub seq: u64,
    pub sent: Instant,
    pub at: Instant,
    pub len: usize,
}

impl Echoed {
    pub fn rtt(&self) -> Duration {
        self.at - self.sent
    }
}

/// A client of the relay.
pub struct Probe {
    pub sock: UdpSocket,
    base: Instant,
}

impl Probe {
    pub fn new(relay: SocketAddr) -> Probe {
        let sock = udp();
        sock.connect(relay).unwrap();
        // The poll interval of `collect`, not a synchronisation.
        sock.set_read_timeout(Some(ms(10))).unwrap();
        Probe {
            sock,
            base: Instant::now(),
        }
    }

    fn datagram(base: Instant, seq: u64, len: usize) -> (Vec<u8>, Instant) {
        let now = Instant::now();
        let mut d = vec![0u8; len.max(HEADER)];
        d[..8].copy_from_slice(&seq.to_be_bytes());
        d[8..16].copy_from_slice(&((now - base).as_nanos() as u64).to_be_bytes());
        (d, now)
    }

    /// Send one datagram now.
    pub fn send(&self, seq: u64, len: usize) -> Instant {
        let (d, now) = Probe::datagram(self.base, seq, len);
        self.sock.send(&d).unwrap();
        now
    }

    /// Send datagrams 0..n of `len` bytes, datagram i at start + i * interval
    /// (absolute deadlines: no drift), from a thread. Joins to the send times.
    pub fn send_paced(&self, n: u64, interval: Duration, len: usize) -> JoinHandle<Vec<Instant>> {
        let sock = self.sock.try_clone().unwrap();
        let base = self.base;
        std::thread::spawn(move || {
            let start = Instant::now();
            let mut sent = Vec::with_capacity(n as usize);
            for seq in 0..n {
                let due = start + interval * seq as u32;
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                let (d, at) = Probe::datagram(base, seq, len);
                sock.send(&d).unwrap();
                sent.push(at);
            }
            sent
        })
    }

    /// The next echo, or `None` after the poll interval.
    pub fn recv(&self) -> Option<Echoed> {
        let mut buf = [0u8; 65_536];
        let n = self.sock.recv(&mut buf).ok()?;
        let at = Instant::now();
        assert!(n >= HEADER, "short echo: {n} bytes");
        let seq = u64::from_be_bytes(buf[..8].try_into().unwrap());
        let ns = u64::from_be_bytes(buf[8..16].try_into().unwrap());
        Some(Echoed {
            seq,
            sent: self.base + Duration::from_nanos(ns),
            at,
            len: n,
        })
    }

    /// Receive until `done(echoes so far)`; panics after `guard` (a failure
    /// guard, never the expected way out). `done` is asked after every
    /// 512 echoes and whenever the line goes quiet.
    pub fn collect(&self, guard: Duration, mut done: impl FnMut(&[Echoed]) -> bool) -> Vec<Echoed> {
        let start = Instant::now();
        let mut got = Vec::new();
        loop {
            if let Some(e) = self.recv() {
                got.push(e);
                if got.len() % 512 != 0 {
                    continue;
                }
            }
            if done(&got) {
                return got;
            }
            assert!(
                start.elapsed() < guard,
                "timed out with {} echoes (UDP receive buffer overflows on this host \
                 since boot: {:?}; a starved process loses datagrams there)",
                got.len(),
                udp_rcvbuf_errors()
            );
        }
    }
}

/// Every datagram of a run of `sent` is accounted for: each one the model
/// let through forward was echoed, and each echo the model let through came
/// back. True only once the run has settled.
pub fn settled(s: &RelayStats, sent: u64, received: usize) -> bool {
    s.forward.packets == sent
        && s.in_flight == 0
        && s.backward.packets == s.forward.delivered
        && received as u64 == s.backward.delivered
}

/// Sequence numbers below `n` that never came back.
pub fn missing(n: u64, got: &[Echoed]) -> Vec<u64> {
    let seen: HashSet<u64> = got.iter().map(|e| e.seq).collect();
    (0..n).filter(|s| !seen.contains(s)).collect()
}

/// Runs of consecutive sequence numbers in a sorted list.
pub fn runs(seqs: &[u64]) -> Vec<u64> {
    let mut out: Vec<u64> = Vec::new();
    for (i, s) in seqs.iter().enumerate() {
        if i > 0 && seqs[i - 1] + 1 == *s {
            *out.last_mut().unwrap() += 1;
        } else {
            out.push(1);
        }
    }
    out
}

/// The q-quantile of some durations.
pub fn quantile(mut v: Vec<Duration>, q: f64) -> Duration {
    v.sort();
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// The kernel's count of datagrams dropped for full receive buffers, where
/// readable (Linux), to tell a relay bug from a starved test.
pub fn udp_rcvbuf_errors() -> Option<u64> {
    let snmp = std::fs::read_to_string("/proc/net/snmp").ok()?;
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let (names, values) = (udp.next()?, udp.next()?);
    let i = names.split_whitespace().position(|n| n == "RcvbufErrors")?;
    values.split_whitespace().nth(i)?.parse().ok()
}
