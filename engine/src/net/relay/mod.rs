//! A UDP relay that impairs traffic in both directions with the simulation
//! kit's model ([`Impairment`]): what `isochron netem` runs, and what tests
//! put between a real sender and receiver, since these machines have no
//! netem qdisc.
//!
//! ```no_run
//! use isochron_engine::net::relay::{RelayConfig, RelayHandle};
//! use isochron_engine::sim::{Impairment, Loss};
//!
//! let lossy = Impairment { loss: Loss::from_mean(0.05, 3.0), ..Default::default() };
//! let relay = RelayHandle::start(RelayConfig {
//!     listen: "127.0.0.1:0".parse().unwrap(),
//!     upstream: "127.0.0.1:4433".parse().unwrap(),
//!     forward: lossy.clone(),
//!     backward: lossy,
//!     seed: 1,
//! })?;
//! println!("send to {}", relay.local_addr());
//! // ...
//! println!("{}", relay.stop());
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Each client address gets its own upstream socket, so the upstream sees
//! one flow per client and replies find their way back. Each direction has
//! its own [`Impairer`](crate::sim::Impairer) (one shared link per direction,
//! as with a real bottleneck) and its own timer queue; packets leave at the
//! instant the model decided, to within tens of microseconds on Linux.

mod queue;
mod socket;
mod timer;
mod worker;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::oneshot;

use crate::sim::impair::{ImpairStats, Impairment};

/// What to relay and how to impair it.
#[derive(Debug, Clone, PartialEq)]
pub struct RelayConfig {
    /// Where clients send to; port 0 picks a free one (see [`RelayHandle::local_addr`]).
    pub listen: SocketAddr,
    /// Where their traffic goes.
    pub upstream: SocketAddr,
    /// Impairment of client -> upstream traffic. Outages count from the relay's start.
    pub forward: Impairment,
    /// Impairment of upstream -> client traffic.
    pub backward: Impairment,
    /// One seed for the whole run; each direction draws from its own stream
    /// derived from it (see [`RelayConfig::direction_seeds`]).
    pub seed: u64,
}

impl RelayConfig {
    /// The seeds of the forward and backward [`Impairer`](crate::sim::Impairer)s:
    /// the first two outputs of SplitMix64 from [`seed`](Self::seed), so the
    /// directions are independent and a simulation can replay either one.
    pub fn direction_seeds(&self) -> (u64, u64) {
        let mut state = self.seed;
        (splitmix64(&mut state), splitmix64(&mut state))
    }
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Bounds on what the relay holds, so its memory stays bounded whatever the
/// traffic. The defaults suit a test bench.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayLimits {
    /// Most clients (each has a socket and a task). Datagrams from a new
    /// client beyond this are dropped and counted as [`RelayStats::refused`].
    pub max_clients: usize,
    /// A client with no datagram either way for this long is forgotten
    /// (like a NAT mapping); its next datagram opens a new upstream flow.
    pub idle_timeout: Duration,
    /// Most packets in flight per direction; overflow is counted as
    /// [`RelayStats::queue_drops`].
    pub max_in_flight_packets: usize,
    /// Most payload bytes in flight per direction (a duplicate counts twice).
    pub max_in_flight_bytes: usize,
}

impl Default for RelayLimits {
    fn default() -> Self {
        Self {
            max_clients: 1024,
            idle_timeout: Duration::from_secs(60),
            // A second of 1 Gbit/s of full-size datagrams, or 64 Ki packets.
            max_in_flight_packets: 65_536,
            max_in_flight_bytes: 128 << 20,
        }
    }
}

/// How late packets left the relay: from the instant the model scheduled to
/// the return of the send call, over every packet sent so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Lateness {
    /// Packets measured.
    pub samples: u64,
    /// Median lateness.
    pub p50: Duration,
    /// 99th percentile lateness.
    pub p99: Duration,
    /// Worst lateness.
    pub max: Duration,
    /// Whether the high-resolution timer is in use (else tokio's 1 ms timer).
    pub precise_timer: bool,
}

/// What the relay did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RelayStats {
    /// The model's account of client -> upstream traffic.
    pub forward: ImpairStats,
    /// The model's account of upstream -> client traffic.
    pub backward: ImpairStats,
    /// Clients in the table now.
    pub clients: usize,
    /// Clients ever seen (each got its own upstream flow).
    pub clients_seen: u64,
    /// Clients forgotten after the idle timeout.
    pub clients_evicted: u64,
    /// Datagrams from new clients dropped: table full or no socket available.
    /// Not seen by the model.
    pub refused: u64,
    /// Packets the model delivered but the in-flight bound had no room for,
    /// both directions.
    pub queue_drops: u64,
    /// ICMP errors (port or host unreachable) reported on a socket: each says
    /// an earlier datagram found nobody listening, e.g. the upstream is down.
    pub unreachable: u64,
    /// Datagrams the relay could not send (full socket buffer, no route).
    pub send_errors: u64,
    /// Other receive errors.
    pub recv_errors: u64,
    /// Packets waiting for their delivery instant now.
    pub in_flight: usize,
    /// Delivery precision.
    pub lateness: Lateness,
}

fn direction(f: &mut fmt::Formatter<'_>, name: &str, s: &ImpairStats) -> fmt::Result {
    let pct = if s.packets == 0 {
        0.0
    } else {
        100.0 * s.lost as f64 / s.packets as f64
    };
    write!(
        f,
        "{name}: {} packets, {} lost ({pct:.1} %), {} in outages, {} over the rate queue, \
         {} reordered, {} duplicated",
        s.packets, s.lost, s.outage_drops, s.queue_drops, s.reordered, s.duplicated
    )
}

impl fmt::Display for RelayStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        direction(f, "forward", &self.forward)?;
        writeln!(f)?;
        direction(f, "backward", &self.backward)?;
        writeln!(f)?;
        let us = |d: Duration| d.as_micros();
        write!(
            f,
            "relay: {} clients ({} seen, {} idle, {} datagrams refused), {} queue drops, \
             {} unreachable, {} send and {} receive errors, lateness p50 {} us p99 {} us max {} us",
            self.clients,
            self.clients_seen,
            self.clients_evicted,
            self.refused,
            self.queue_drops,
            self.unreachable,
            self.send_errors,
            self.recv_errors,
            us(self.lateness.p50),
            us(self.lateness.p99),
            us(self.lateness.max),
        )
    }
}

/// A running relay on its own thread (its own current-thread tokio runtime),
/// so tests, tools and benchmarks can start one without owning a runtime.
/// Dropping it stops the relay.
pub struct RelayHandle {
    local_addr: SocketAddr,
    started: Instant,
    core: Arc<Mutex<worker::Core>>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl RelayHandle {
    /// Start a relay with the default [`RelayLimits`]. Returns once it is
    /// bound; binding errors (address in use, ...) are returned.
    pub fn start(cfg: RelayConfig) -> io::Result<RelayHandle> {
        Self::start_with_limits(cfg, RelayLimits::default())
    }

    /// Start a relay with explicit limits.
    pub fn start_with_limits(cfg: RelayConfig, limits: RelayLimits) -> io::Result<RelayHandle> {
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
        let (stop_tx, stop_rx) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("isochron-relay".into())
            .spawn(move || {
                // It stands for the network: it must not add its own delays
                // on a loaded machine.
                crate::net::priority::raise(crate::net::priority::Urgency::Network);
                worker::run(cfg, limits, ready_tx, stop_rx)
            })
            .map_err(|e| {
                io::Error::new(e.kind(), format!("relay: cannot start its thread: {e}"))
            })?;
        let ready = match ready_rx.recv() {
            Ok(Ok(ready)) => ready,
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => {
                let _ = thread.join();
                return Err(io::Error::other("relay: its thread ended before binding"));
            }
        };
        Ok(RelayHandle {
            local_addr: ready.local_addr,
            started: ready.started,
            core: ready.core,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// The address clients send to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The relay's start: the origin of scheduled outages.
    pub fn started_at(&self) -> Instant {
        self.started
    }

    /// A snapshot of the statistics, at any time, from any thread.
    pub fn stats(&self) -> RelayStats {
        worker::lock(&self.core).stats()
    }

    /// Stop the relay, wait for its thread, and return the final statistics.
    /// Packets still in flight are discarded (see [`RelayStats::in_flight`]).
    pub fn stop(mut self) -> RelayStats {
        self.shutdown();
        self.stats()
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("relay: its thread panicked");
            }
        }
    }
}

impl Drop for RelayHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl fmt::Debug for RelayHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RelayHandle")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::impair::{Impairer, Loss};
    use crate::time::Time;

    fn cfg(seed: u64) -> RelayConfig {
        RelayConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            upstream: "127.0.0.1:9".parse().unwrap(),
            forward: Impairment::default(),
            backward: Impairment::default(),
            seed,
        }
    }

    #[test]
    fn directions_draw_distinct_reproducible_streams() {
        let (f, b) = cfg(7).direction_seeds();
        assert_ne!(f, b);
        assert_eq!(cfg(7).direction_seeds(), (f, b));
        assert_ne!(cfg(8).direction_seeds(), (f, b));
        // Same model, different seed: different drop decisions.
        let drops = |seed| {
            let lossy = Impairment {
                loss: Loss::Bernoulli { p: 0.1 },
                ..Default::default()
            };
            let mut imp = Impairer::new(lossy, seed, Time::ZERO);
            (0..200)
                .map(|_| imp.decide(Time::ZERO, 10).dropped())
                .collect::<Vec<_>>()
        };
        assert_ne!(drops(f), drops(b));
    }

    #[test]
    fn summary_reads_well() {
        let mut s = RelayStats::default();
        s.forward.packets = 10_234;
        s.forward.lost = 512;
        s.clients = 1;
        let text = s.to_string();
        assert!(
            text.starts_with("forward: 10234 packets, 512 lost (5.0 %)"),
            "{text}"
        );
        assert!(
            text.contains("backward: 0 packets, 0 lost (0.0 %)"),
            "{text}"
        );
        assert_eq!(text.lines().count(), 3);
    }

    #[test]
    fn address_in_use_is_an_error() {
        let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut c = cfg(1);
        c.listen = taken.local_addr().unwrap();
        let e = RelayHandle::start(c).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse, "{e}");
        assert!(
            e.to_string()
                .contains(&taken.local_addr().unwrap().to_string()),
            "{e}"
        );
    }

    #[test]
    fn starts_and_stops_without_traffic() {
        let relay = RelayHandle::start(cfg(1)).unwrap();
        assert_ne!(relay.local_addr().port(), 0);
        let s = relay.stop();
        assert_eq!((s.forward.packets, s.clients, s.in_flight), (0, 0, 0));
    }
}
